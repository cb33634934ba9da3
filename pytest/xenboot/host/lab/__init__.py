"""The embedded Xen host: Xen and a Linux dom0 from Debian packages, in QEMU."""
