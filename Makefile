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
OUT      ?=
MEMORY   ?= 128
DISK     ?=
PYTEST_ARGS ?=

BOOT_ARGS = --host $(HOST) --memory $(MEMORY) \
	$(if $(OUT),--out "$(OUT)") $(if $(DISK),--disk "$(DISK)") $(if $(INTERACTIVE),--interactive)

.PHONY: help deps lab lab-clean shell console probe init boot kernel image pin test bench check-log nightly bisect

help:
	@echo "make boot [KERNEL=PATH|probe] [SPEC=NAME|PATH] [CMDLINE=...] [OUT=DIR] [HOST=lab|xl]"
	@echo "make test | make bench | make probe | make lab | make shell | make check-log LOG=... SPEC=..."
	@echo "make nightly [MATRIX=...] [OUT=DIR] [PARALLEL=4] [HOST=xl] | make bisect GOOD=rev BAD=rev MILESTONE=name"

deps:
	@ci/deps install

lab: deps
	@$(XENBOOT) lab build
	@$(XENBOOT) lab prune

lab-clean:
	@$(XENBOOT) lab clean

# Another terminal on a running boot's guest console (OUT=its run folder,
# default the newest); Ctrl-] leaves, the boot goes on.
console:
	@$(XENBOOT) console $(OUT)

# A shell in the embedded host's dom0, which lives as long as the shell.
shell: deps
	@$(XENBOOT) lab shell

probe:
	@$(MAKE) --no-print-directory -C images/probe O=$(CURDIR)/build/probe

# Without KERNEL: the FreeBSD XEN kernel from freebsd-src, its root image,
# and the freebsd-xen-pv spec. KERNEL=probe builds the probe kernel first.
boot: deps $(if $(filter probe,$(KERNEL)),probe)
ifeq ($(KERNEL),)
	@$(XENBOOT) freebsd --spec "$(or $(SPEC),freebsd-xen-pv)" --cmdline "$(CMDLINE)" --host $(HOST) \
		$(if $(OUT),--out "$(OUT)") $(if $(FREEBSD_SRC),--src "$(FREEBSD_SRC)") \
		$(if $(KERNCONF),--kernconf "$(KERNCONF)") $(if $(WORLD),--world "$(WORLD)")
else
	@$(XENBOOT) boot --kernel "$(KERNEL)" --spec "$(or $(SPEC),generic)" \
		--cmdline "$(CMDLINE)" $(BOOT_ARGS)
endif

# FreeBSD: the pinned amd64_xen_pv source (freebsd-src), its XEN kernel and
# a UFS root image. Without the source, `kernel` says how to fetch it (exit 2).
kernel: deps
	@$(XENBOOT) kernel --kernconf "$(or $(KERNCONF),XEN)" $(if $(FREEBSD_SRC),--src "$(FREEBSD_SRC)") \
		$(if $(OBJDIR),--objdir "$(OBJDIR)") $(if $(OUT),--out "$(OUT)")

image: deps
	@$(XENBOOT) image $(if $(MANIFEST),--manifest "$(MANIFEST)") $(if $(WORLD),--world "$(WORLD)") \
		$(if $(FORMAT),--format $(FORMAT)) $(if $(SIZE),--size $(SIZE)) $(if $(OUT),--out "$(OUT)")

pin:
	@$(XENBOOT) pin $(REV)

init:
	@$(MAKE) --no-print-directory -C images/init OUT=$(CURDIR)/build/init

check-log:
	@test -n "$(LOG)" || { echo "make check-log: LOG=path/console.log is required" >&2; exit 2; }
	@$(XENBOOT) check-log "$(LOG)" --spec "$(or $(SPEC),generic)" $(if $(OUT),--out "$(OUT)")

test: deps probe
	@$(PYTHON) -m pytest pytest/tests -o junit_family=xunit1 $(PYTEST_ARGS)

bench: deps probe
	@$(XENBOOT) bench

nightly: deps probe
	@$(XENBOOT) nightly $(if $(MATRIX),--matrix "$(MATRIX)") $(if $(OUT),--out "$(OUT)") \
		$(if $(PARALLEL),--parallel $(PARALLEL)) $(if $(filter xl,$(HOST)),--host xl)

bisect: deps
	@test -n "$(GOOD)" && test -n "$(BAD)" && test -n "$(MILESTONE)" || \
		{ echo "make bisect: GOOD=<rev> BAD=<rev> MILESTONE=<name> are required" >&2; exit 2; }
	@$(XENBOOT) bisect --good "$(GOOD)" --bad "$(BAD)" --milestone "$(MILESTONE)" --host $(HOST) \
		$(if $(FREEBSD_SRC),--src "$(FREEBSD_SRC)") $(if $(SPEC),--spec "$(SPEC)") \
		$(if $(CMDLINE),--cmdline "$(CMDLINE)") $(if $(DISK),--disk "$(DISK)") $(if $(OUT),--out "$(OUT)")
