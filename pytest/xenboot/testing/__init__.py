"""Replaying recorded consoles: the player and the transcripts."""
