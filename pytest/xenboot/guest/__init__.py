"""The guest kernel and its domain: the kernel check, symbols, Xen's headers, xl."""
