"""What a run leaves: the nightly report and check-log's re-judging of a recorded console."""
