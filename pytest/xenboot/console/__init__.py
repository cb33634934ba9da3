"""Reading a running guest: its console session, Xen's console, progress, the console mirror."""
