"""`xenboot nightly`: the whole pipeline over a matrix of boots, into one run folder.

Its modules, one job each: matrix (the matrix file and its rows), kernels
(the kernels stage), schedule (the boots stage: waves, memory packing,
retries), shard (--shard I/N: which rows are this run's share), run (the
stages in order, into the run folder), command (the command line);
summary.json and junit.xml are xenboot.report.summary's, and the merge of
shards xenboot.report.merge's.

Stages, timed in summary.json `stages`:
  source   is freebsd-src there, and at the pinned commit?
  kernels  every kernel the matrix names: the probe built, Debian's Linux
           taken from the lab cache, FreeBSD built from the source (and its
           root image made); without the source its rows are "not run"
  boots    the rows, up to --parallel at once, several guests to one
           embedded host; a boot that ends INFRA is tried again on a fresh
           host, at most twice, and stays flagged; guest verdicts are final
  report   summary.json, junit.xml (one suite per row), report.html

The run folder:
  summary.json junit.xml report.html matrix.toml
  kernels/<kernel>/          result.json (+ build.log, image/) of each kernel
  boots/<row>-<attempt>/     each boot's own folder (console.log, result.json,
                             junit.xml, reproduce.sh, host.log)
  hosts/<n>/                 each embedded host's logs (host.log, qemu.*)
The exit status is the contract's: 0 when every row that ran ended as the
matrix expects, else 3 if some boot stayed INFRA, 4 if a kernel did not
build, 2 for bad input, 1 when a guest did not do what was expected.
"""
