# freebsd-xen-ci: every target is a thin wrapper over ci/xenboot, whose exit
# status is the contract (0 PASS, 1 guest failed, 2 bad input, 3 infra,
# 4 build failed); make turns any failure into its own exit 2, after the
# tool has printed its verdict line.

XENBOOT  := ci/xenboot
PYTHON   := /usr/bin/python3
KERNEL   ?=
SPEC     ?=
CMDLINE  ?=
HOST     ?= lab
# The lab's Xen: debian (Debian's release build) or debug (built from its
# source, 32-bit PV); empty: lab.toml's default for the kind of boot.
LAB      ?=
# The lab's CPU: pv or hvm (SVM, for PVH guests); empty: the one the kernel needs.
LAB_CPU  ?=
OUT      ?=
# Guest MiB; empty: the tool's default (128, or 256 for a FreeBSD kernel).
MEMORY   ?=
DISK     ?=
PYTEST_ARGS ?=

# $(call q,VALUE): VALUE as one shell word, whatever it holds (quotes,
# backticks, spaces): a path or a kernel command line never reaches the
# shell unquoted.
q = '$(subst ','\'',$(1))'

MEMORY_ARG = $(if $(MEMORY),--memory $(call q,$(MEMORY)))
BOOT_ARGS = --host $(call q,$(HOST)) $(MEMORY_ARG) \
	$(if $(OUT),--out $(call q,$(OUT))) $(if $(DISK),--disk $(call q,$(DISK))) $(if $(INTERACTIVE),--interactive) \
	$(if $(LAB),--lab $(call q,$(LAB))) $(if $(NOCORE),--no-core)

.PHONY: help deps lab lab-clean lab-serve shell console gdb probe init boot kernel image pin test bench soak check-log nightly merge bisect test-fast

help:
	@echo "make boot [KERNEL=PATH|probe] [SPEC=NAME|PATH] [CMDLINE=...] [MEMORY=MiB] [OUT=DIR] [HOST=lab|xl] [LAB=debian|debug] [LAB_CPU=pv|hvm] [INTERACTIVE=1] [NOCORE=1]"
	@echo "make test | make test-fast | make bench | make soak [BOOTS=500] [LAB=...] [PARALLEL=4] | make probe | make lab [LAB=debian|debug] | make lab-serve [LAB=...] [SHARE=out] | make shell | make console [OUT=DIR] | make gdb [OUT=DIR] | make check-log LOG=... SPEC=... [KERNEL=...]"
	@echo "make nightly [MATRIX=...|KERNELS=DIR [SPEC=...] [GLOB=...] [LAB=...]] [OUT=DIR] [PARALLEL=4] [HOST=xl] [SHARD=I/N] | make merge [SHARDS='out/nightly/shard-*'] OUT=DIR | make bisect GOOD=rev BAD=rev MILESTONE=name"

deps:
	@ci/deps install

lab: deps
	@$(XENBOOT) lab build $(if $(LAB),--lab $(call q,$(LAB)))
	@$(XENBOOT) lab prune

lab-clean:
	@$(XENBOOT) lab clean

# Another terminal on a running boot's guest console (OUT=its run folder,
# default the newest); Ctrl-] leaves, the boot goes on.
console:
	@$(XENBOOT) console $(if $(OUT),$(call q,$(OUT)))

# gdb on the domain of a running boot (LAB=debug: Xen's gdbsx), with its kernel.
gdb:
	@$(XENBOOT) gdb $(if $(OUT),$(call q,$(OUT)))

# A shell in the embedded host's dom0, which lives as long as the shell.
shell: deps
	@$(XENBOOT) lab shell $(if $(LAB),--lab $(call q,$(LAB))) $(if $(LAB_CPU),--lab-cpu $(call q,$(LAB_CPU)))

# A host kept running for the boots of other terminals (a labgrid-style
# exporter) until Ctrl-C: boots whose run folders are in SHARE (default out)
# take it under XENBOOT_LAB_SERVER=<SHARE>, skipping the host's start.
SHARE ?= out
lab-serve: deps
	@mkdir -p $(call q,$(SHARE))
	@$(XENBOOT) lab serve --share $(call q,$(SHARE)) $(if $(LAB),--lab $(call q,$(LAB))) \
		$(if $(LAB_CPU),--lab-cpu $(call q,$(LAB_CPU)))

probe:
	@$(MAKE) --no-print-directory -C images/probe O=$(CURDIR)/build/probe

# Without KERNEL: the FreeBSD XEN kernel from freebsd-src, its root image,
# and the freebsd-xen-pv spec. KERNEL=probe builds the probe kernel first.
boot: deps $(if $(filter probe,$(KERNEL)),probe)
ifeq ($(KERNEL),)
	@$(XENBOOT) freebsd $(if $(SPEC),--spec $(call q,$(SPEC))) --cmdline $(call q,$(CMDLINE)) --host $(call q,$(HOST)) \
		$(if $(OUT),--out $(call q,$(OUT))) $(if $(FREEBSD_SRC),--src $(call q,$(FREEBSD_SRC))) \
		$(if $(KERNCONF),--kernconf $(call q,$(KERNCONF))) $(if $(TARGET),--target $(call q,$(TARGET))) \
		$(if $(WORLD),--world $(call q,$(WORLD))) $(if $(LAB),--lab $(call q,$(LAB))) \
		$(if $(OBJDIR),--objdir $(call q,$(OBJDIR))) $(MEMORY_ARG) $(if $(INTERACTIVE),--interactive) \
		$(if $(NOCORE),--no-core)
else
	@$(XENBOOT) boot --kernel $(call q,$(KERNEL)) --spec $(call q,$(or $(SPEC),generic)) \
		--cmdline $(call q,$(CMDLINE)) $(BOOT_ARGS) $(if $(LAB_CPU),--lab-cpu $(call q,$(LAB_CPU)))
endif

# FreeBSD: the pinned amd64_xen_pv source (freebsd-src, or FREEBSD_SRC), its
# XEN kernel (KERNCONF, TARGET=amd64|i386) and a UFS root image. Without the
# source, `kernel` says how to fetch it (exit 2).
kernel: deps
	@$(XENBOOT) kernel --kernconf $(call q,$(or $(KERNCONF),XEN)) $(if $(TARGET),--target $(call q,$(TARGET))) \
		$(if $(FREEBSD_SRC),--src $(call q,$(FREEBSD_SRC))) \
		$(if $(OBJDIR),--objdir $(call q,$(OBJDIR))) $(if $(OUT),--out $(call q,$(OUT)))

image: deps
	@$(XENBOOT) image $(if $(MANIFEST),--manifest $(call q,$(MANIFEST))) $(if $(WORLD),--world $(call q,$(WORLD))) \
		$(if $(FORMAT),--format $(call q,$(FORMAT))) $(if $(SIZE),--size $(call q,$(SIZE))) $(if $(OUT),--out $(call q,$(OUT))) \
		$(if $(TARGET),--target $(call q,$(TARGET)))

pin:
	@$(XENBOOT) pin $(if $(REV),$(call q,$(REV)))

# images/init for every kernel target: build/init/amd64/init, build/init/i386/init.
init:
	@$(MAKE) --no-print-directory -C images/init OUT=$(CURDIR)/build/init

check-log:
	@test -n $(call q,$(LOG)) || { echo "make check-log: LOG=path/console.log is required" >&2; exit 2; }
	@$(XENBOOT) check-log $(call q,$(LOG)) --spec $(call q,$(or $(SPEC),generic)) $(if $(OUT),--out $(call q,$(OUT))) $(if $(KERNEL),--kernel $(call q,$(KERNEL)))

# The whole suite, its 10 slowest tests last (where its minutes go), in
# TEST_WORKERS pytest-xdist processes (the tests of a module fixture on one,
# which sets it up once: conftest.py). Each worker's lab hosts run single-threaded
# TCG (conftest.py), so that two at once do not spin on each other's vCPUs;
# a worker takes a core and a lab host's 1 GiB. TEST_WORKERS=1: serially.
# Both lab flavours are built and their hosts' snapshots saved first: on a
# fresh machine a test would otherwise pay for them inside its own timings
# (a sharding test cut its rows by boot times measured while the other
# worker built the debug Xen).
TEST_WORKERS ?= 2
test: deps probe
	@for lab in debian debug; do $(XENBOOT) lab build --lab $$lab || exit 2; done
	@$(PYTHON) -m pytest pytest/tests -o junit_family=xunit1 --durations=10 \
		$(if $(filter-out 1,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup) $(PYTEST_ARGS)

# Every test that boots nothing (not marked lab or slow): the loop while
# editing, in FAST_WORKERS processes (more than the cores: they mostly wait
# on a pty or a child process); one test: PYTEST_ARGS='-k NAME' or
# `cd pytest && python3 -m pytest tests/test_spec.py::test_NAME`.
FAST_WORKERS ?= 4
test-fast: deps probe
	@$(PYTHON) -m pytest pytest/tests -m "not lab and not slow" -q -n $(FAST_WORKERS) --durations=10 $(PYTEST_ARGS)

bench: deps probe
	@$(XENBOOT) bench

# BOOTS probe boots (default 500), PARALLEL at once, on LAB's Xen: how often
# the lab itself fails (INFRA) and why.
soak: deps probe
	@$(XENBOOT) soak $(if $(BOOTS),--boots $(call q,$(BOOTS))) $(if $(LAB),--lab $(call q,$(LAB))) \
		$(if $(LAB_CPU),--lab-cpu $(call q,$(LAB_CPU))) \
		$(if $(PARALLEL),--parallel $(call q,$(PARALLEL))) $(if $(OUT),--out $(call q,$(OUT)))

nightly: deps probe
	@$(XENBOOT) nightly $(if $(MATRIX),--matrix $(call q,$(MATRIX))) $(if $(OUT),--out $(call q,$(OUT))) \
		$(if $(PARALLEL),--parallel $(call q,$(PARALLEL))) $(if $(filter xl,$(HOST)),--host xl) \
		$(if $(FREEBSD_SRC),--src $(call q,$(FREEBSD_SRC))) $(if $(OBJDIR),--objdir $(call q,$(OBJDIR))) \
		$(if $(SHARD),--shard $(call q,$(SHARD))) \
		$(if $(KERNELS),--kernels $(call q,$(KERNELS)) --spec $(call q,$(or $(SPEC),generic)) $(if $(GLOB),--glob $(call q,$(GLOB))) \
			$(if $(LAB),--lab $(call q,$(LAB))))

# One run folder (OUT) from the shards' run folders (SHARDS: folders or
# globs, default out/nightly/shard-*); a missing or failed shard shows as such.
SHARDS ?= out/nightly/shard-*
merge:
	@$(XENBOOT) report --merge $(foreach d,$(or $(wildcard $(SHARDS)),$(SHARDS)),$(call q,$(d))) \
		$(if $(OUT),--out $(call q,$(OUT)))

bisect: deps
	@test -n $(call q,$(GOOD)) && test -n $(call q,$(BAD)) && test -n $(call q,$(MILESTONE)) || \
		{ echo "make bisect: GOOD=<rev> BAD=<rev> MILESTONE=<name> are required" >&2; exit 2; }
	@$(XENBOOT) bisect --good $(call q,$(GOOD)) --bad $(call q,$(BAD)) --milestone $(call q,$(MILESTONE)) --host $(call q,$(HOST)) \
		$(if $(FREEBSD_SRC),--src $(call q,$(FREEBSD_SRC))) $(if $(SPEC),--spec $(call q,$(SPEC))) \
		$(if $(CMDLINE),--cmdline $(call q,$(CMDLINE))) $(if $(DISK),--disk $(call q,$(DISK))) $(if $(OUT),--out $(call q,$(OUT))) \
		$(MEMORY_ARG)
