"""The commands that chain the layers: boot, the FreeBSD recipe, nightly, bisect, bench, soak."""
