"""What a boot must show: the milestone spec and the matcher that judges console output against it."""
