"""The FreeBSD source and kernel build."""
