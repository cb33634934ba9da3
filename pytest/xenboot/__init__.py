"""freebsd-xen-ci harness: build, image and boot Xen PV kernels, judge their consoles."""
