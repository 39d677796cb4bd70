# The fork of QEMU 10.0.13 with its own virtio-blk request path.
# `make` builds the fork, `make check` tests it; see README.md.

TOP := $(CURDIR)
B := $(TOP)/build
SHELL := /bin/bash

# The rule for config.mk below would otherwise be the default goal.
.DEFAULT_GOAL := all

# Written by ./configure (which `make` runs when it is missing). Goals that
# only remove or copy files must not configure (and install packages), so
# config.mk and its rule exist only when another goal is asked for: make
# remakes an included file it has a rule for, even with -include.
NOCONFIG_GOALS := clean distclean export
ifneq ($(filter-out $(NOCONFIG_GOALS),$(or $(MAKECMDGOALS),$(.DEFAULT_GOAL))),)
include $(B)/config.mk
$(B)/config.mk: configure base.conf
	./configure
endif

OWN_FILES := $(shell find hw block util include tests -type f 2>/dev/null)
PATCHES := $(addprefix patches/,$(shell awk '!/^#/ { print $$1 }' patches/series))

UNIT_TESTS := test-block-backend test-aio test-coroutine test-bdrv-drain \
	test-block-iothread test-throttle test-aio-multithread test-blockjob
# Stock is tested with the fork's qos-test, which holds the fork's qtests.
STOCK_TARGETS := qemu-system-x86_64 qemu-img qemu-io qemu-nbd \
	storage-daemon/qemu-storage-daemon $(addprefix tests/unit/,$(UNIT_TESTS))
FORK_TARGETS := $(STOCK_TARGETS) tests/qtest/qos-test tests/qtest/virtio-blk-bench \
	tests/unit/test-blk-aio
NINJA := ninja $(if $(JOBS),-j$(JOBS))

# Meson compiles through ccache when it is installed. Paths relative to the
# checkout let a fresh clone elsewhere hit the cache of an earlier one.
export CCACHE_BASEDIR := $(TOP)
export CCACHE_NOHASHDIR := 1

.PHONY: all fork stock assemble check check-stock series check-series \
	export reset-src clean distclean run bench fuzz asan check-asan \
	check-upstream check-port check-full

all: fork

# --- the assembled trees --------------------------------------------------

$(B)/.src-assembled: $(BASE_TARBALL) base.conf patches/series \
		$(PATCHES) $(OWN_FILES) scripts/assemble.sh
	scripts/assemble.sh $(TOP) $(BASE_TARBALL)
	@touch $@

assemble: $(B)/.src-assembled

# Stock: the pristine base plus only the `fork:` build glue (no fork code),
# built in build/stock/build. The source is at the same distance from the
# build directory as the fork's (../src), so ccache serves both.
$(B)/stock/src/.stamp: $(BASE_TARBALL) patches/series $(PATCHES) scripts/stock-tree.sh
	scripts/stock-tree.sh $(TOP) $(BASE_TARBALL) $(B)/stock/src
	@touch $@

# --- building -------------------------------------------------------------

# scripts/qemu-configure.sh holds the flags, the same for fork and stock.
$(B)/fork/config.status: scripts/qemu-configure.sh | $(B)/.src-assembled
	scripts/qemu-configure.sh $(B)/src $(B)/fork

$(B)/stock/build/config.status: scripts/qemu-configure.sh | $(B)/stock/src/.stamp
	scripts/qemu-configure.sh $(B)/stock/src $(B)/stock/build

fork: $(B)/.src-assembled $(B)/fork/config.status
	$(NINJA) -C $(B)/fork $(FORK_TARGETS)

stock: $(B)/stock/src/.stamp $(B)/stock/build/config.status
	$(NINJA) -C $(B)/stock/build $(STOCK_TARGETS)

# --- testing --------------------------------------------------------------

check: fork
	scripts/check.sh $(TOP) fork

# The same suites on stock, for the rule "the fork passes what stock passes".
check-stock: fork stock
	scripts/check.sh $(TOP) stock

# qemu-iotests -g auto for qcow2 on stock and fork (`make check` keeps to
# -g quick); fails on a test that passes on stock only.
check-full: fork stock
	scripts/check-full.sh $(TOP)

# The fork with AddressSanitizer and UBSan; any sanitizer report fails a
# test. Frame pointers keep the reports' stacks whole.
ASAN_TARGETS := $(STOCK_TARGETS) tests/qtest/qos-test tests/unit/test-blk-aio

$(B)/asan/config.status: scripts/qemu-configure.sh | $(B)/.src-assembled
	scripts/qemu-configure.sh $(B)/src $(B)/asan --enable-asan --enable-ubsan \
		--extra-cflags=-fno-omit-frame-pointer

asan: $(B)/.src-assembled $(B)/asan/config.status
	$(NINJA) -C $(B)/asan $(ASAN_TARGETS)

check-asan: asan
	scripts/check.sh $(TOP) asan

# --- running and measuring ------------------------------------------------

# Boot a Linux guest on the fork and run fio on a virtio-blk disk with an
# iothread. DISK=path uses that raw/qcow2 image (read-only unless WRITE=1).
run: fork
	DISK="$(DISK)" WRITE="$(WRITE)" scripts/guest/run.sh $(TOP)

# Stock against fork, interleaved; writes docs/benchmarks.md and .png.
# QUICK=1 for a smoke run, AA=1 to measure stock against stock (noise).
bench: fork stock
	QUICK="$(QUICK)" AA="$(AA)" scripts/bench/run.sh $(TOP)

# Fuzz virtio-blk with QEMU's libFuzzer targets (clang, ASan, UBSan) on
# stock and on the fork, SECONDS per target and build; BUILDS= and
# TARGETS= pick a subset. SECONDS goes as an argument: bash keeps its own
# SECONDS variable in the environment.
SECONDS ?= 60
fuzz: assemble $(B)/stock/src/.stamp
	scripts/fuzz.sh $(TOP) $(SECONDS)

# --- the patch series -------------------------------------------------------

# Upstream-style series with a cover letter in build/series/.
series: assemble
	scripts/series.sh $(TOP) export

# Apply build/series/ to a pristine tree with git am; build after each patch
# (the targets every patch has; a patch's own new targets come with it).
check-series: series
	NINJA_TARGETS="$(STOCK_TARGETS) tests/qtest/qos-test" \
		scripts/series.sh $(TOP) check

# Apply build/series/ with `git am -3` to the newest upstream QEMU whose
# source Debian still serves; lists the patches that conflict.
check-upstream: series
	scripts/upstream-check.sh $(TOP)

# The port of the series to the newer upstream in port/ (what a reviewer
# applies to master): apply it to that release, build, run qos and unit.
PORT_VERSION := 10.2.2
check-port:
	scripts/port-check.sh $(TOP) $(PORT_VERSION)

# Copy the work committed in build/src back into this repository.
export:
	@test -d $(B)/src/.git || { echo "export: no build/src to export from (run make)" >&2; exit 1; }
	scripts/export.sh $(TOP)

# Drop unexported work in build/src and assemble it again from this repo.
reset-src:
	git -C $(B)/src rev-parse HEAD > /dev/null
	git -C $(B)/src reset -q --hard "$$(cat $(B)/src/.git/fork-assembled)"
	$(MAKE) assemble

clean:
	rm -rf $(B)/fork $(B)/stock $(B)/asan $(B)/series $(B)/check-series

distclean:
	rm -rf $(B)
