"""Matcher throughput: judges generated 10 MB and 100 MB FreeBSD-like console
logs against the freebsd-xen-pv spec, as the live driver feeds it (64 KiB
reads), and prints MB/s and the 100 MB / 10 MB time ratio. Linear cost means
a ratio near 10; the target is at least 50 MB/s.

    python3 -m xenboot.pipeline.bench_matcher [--sizes 10 100] [--check]
"""
import argparse
import random
import sys
import time

from xenboot.console.console import READ_SIZE
from xenboot.core.errors import Verdict
from xenboot.judge.matcher import Judge, Scanner
from xenboot.judge.spec import load_spec

TARGET_MB_S = 50
MB = 1000 * 1000

# The branch's amd64 lines (its real console's); the chatter goes between
# the xenstore's attach and the disk's.
BOOT = (b"GDB: no debug ports present\r\nKDB: debugger backends: ddb\r\nKDB: current backend: ddb\r\n"
        b"Copyright (c) 1992-2014 The FreeBSD Project.\r\n"
        b"FreeBSD 10.1-RELEASE #10: Thu Jan  1 00:00:00 UTC 1970\r\n"
        b"Event timer \"XENTIMER\" frequency 1000000000 Hz quality 950\r\n"
        b"xenbusb_front0: <Xen Frontend Devices> on xenstore0\r\n")
END = (b"xbd0: 16MB <Virtual Block Device> at device/vbd/51712 on xenbusb_front0\r\n"
       b"Trying to mount root from ufs:/dev/xbd0 []...\r\nfreebsd-xen-ci init: name=/sbin/init\r\n")


def chatter(seed=1, lines=1000):
    """Lines the boot's patterns must read past: VERBOSE_SYSINIT progress,
    colour, near misses of fatal patterns, and output split mid-line."""
    rnd = random.Random(seed)
    funcs = [b"kmem_init", b"vm_mem_init", b"linker_preload", b"tunable_int_init",
             b"module_register_init", b"sched_setup", b"pmap_pv_init", b"xen_evtchn_init"]
    out = []
    for i in range(lines):
        f = rnd.choice(funcs)
        kind = i % 16
        if kind == 0:
            out.append(b"subsystem %x\r\n" % (i * 4096))
        elif kind == 1:
            out.append(b"\x1b[1m" + f + b"\x1b[0m: attached at 0x%x\r\n" % rnd.getrandbits(48))
        elif kind == 2:
            out.append(b"debug.kdb.panic: 0 (near miss of a fatal pattern)\r\n")
        elif kind == 3:
            out.append(b"panic() at panic+0x155/frame 0x%x\r\n" % rnd.getrandbits(48))
        else:
            out.append(b"   " + f + b"(&" + f + b"_data)... done.\r\n")
    return b"".join(out)


def make_log(size):
    unit = chatter()
    return BOOT + unit * max(1, round((size - len(BOOT) - len(END)) / len(unit))) + END


def judge_bytes(spec, data):
    """Seconds to judge `data`; the outcome must be PASS (all of it was read,
    and the domain powered off)."""
    judge, scanner = Judge(spec), Scanner()
    start = time.perf_counter()
    for i in range(0, len(data), READ_SIZE):
        block, tail = scanner.feed(data[i:i + READ_SIZE])
        judge.feed(block, None, None)
        if tail is not None:
            judge.feed("", tail, None)
    seconds = time.perf_counter() - start
    judge.end("poweroff", None)     # what init does after its line
    if judge.outcome.verdict is not Verdict.PASS:
        raise RuntimeError(f"benchmark log judged {judge.outcome}")
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m xenboot.pipeline.bench_matcher",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100], metavar="MB")
    parser.add_argument("--check", action="store_true",
                        help=f"exit 1 below {TARGET_MB_S} MB/s or when time is not linear")
    args = parser.parse_args(argv)
    spec = load_spec("freebsd-xen-pv")
    times = {}
    for size in args.sizes:
        data = make_log(size * MB)
        times[size] = judge_bytes(spec, data)
        print(f"matcher: {len(data) / MB:7.1f} MB in {times[size]:6.2f} s ="
              f" {len(data) / MB / times[size]:6.1f} MB/s")
    slowest = min(size / seconds for size, seconds in times.items())
    ok = slowest >= TARGET_MB_S
    if len(times) > 1:
        small, large = min(times), max(times)
        ratio = times[large] / times[small]
        print(f"matcher: time ratio {large} MB / {small} MB = {ratio:.2f} (linear: {large / small:g})")
        ok = ok and ratio < 1.5 * large / small
    print(f"matcher: {'meets' if ok else 'MISSES'} the target (>= {TARGET_MB_S} MB/s, linear)")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
