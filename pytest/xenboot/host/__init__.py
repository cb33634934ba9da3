"""The Xen host a guest boots on: this machine's xl (hosts) or QEMU's embedded lab (lab/)."""
