# The fork of QEMU 10.0.13 with its own virtio-blk request path.
# `make` builds the fork, `make check` tests it; see README.md.

TOP := $(CURDIR)
B := $(TOP)/build
SHELL := /bin/bash

# Written by ./configure (which `make` runs when it is missing).
include $(B)/config.mk
$(B)/config.mk: configure base.conf
	./configure

OWN_FILES := $(shell find hw block util include tests -type f 2>/dev/null)
PATCHES := $(addprefix patches/,$(shell awk '!/^#/ { print $$1 }' patches/series))

# Same flags for the fork and for stock; firmware comes from Debian's
# seabios, ipxe-qemu and qemu-system-data packages.
QEMU_CONFIGURE_FLAGS := \
	--python=/usr/bin/python3 --target-list=x86_64-softmmu \
	--disable-docs --disable-download --disable-install-blobs \
	--enable-linux-aio --enable-linux-io-uring --enable-slirp \
	--disable-werror \
	--firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu

UNIT_TESTS := test-block-backend test-aio test-coroutine test-bdrv-drain \
	test-block-iothread test-throttle
NINJA_TARGETS := qemu-system-x86_64 qemu-img qemu-io qemu-nbd \
	storage-daemon/qemu-storage-daemon tests/qtest/qos-test \
	$(addprefix tests/unit/,$(UNIT_TESTS))
NINJA := ninja $(if $(JOBS),-j$(JOBS))

.PHONY: all fork stock assemble check check-stock series check-series \
	export reset-src clean distclean

all: fork

# --- the assembled trees --------------------------------------------------

$(B)/.src-assembled: $(BASE_TARBALL) base.conf patches/series \
		$(PATCHES) $(OWN_FILES) scripts/assemble.sh
	scripts/assemble.sh $(TOP) $(BASE_TARBALL)
	@touch $@

assemble: $(B)/.src-assembled

# Stock: the pristine base plus only the `fork:` build glue (no fork code).
$(B)/stock-src/.stamp: $(BASE_TARBALL) patches/series $(PATCHES) scripts/stock-tree.sh
	scripts/stock-tree.sh $(TOP) $(BASE_TARBALL) $(B)/stock-src
	@touch $@

# --- building -------------------------------------------------------------

# $(call qemu-configure,SRC,BUILDDIR)
define qemu-configure
	rm -rf $(2) && mkdir -p $(2)
	cd $(2) && $(1)/configure $(QEMU_CONFIGURE_FLAGS) > configure.log 2>&1 || \
		{ tail -30 configure.log; rm -f config.status; exit 1; }
endef

$(B)/fork/config.status: | $(B)/.src-assembled
	$(call qemu-configure,$(B)/src,$(B)/fork)

$(B)/stock/config.status: | $(B)/stock-src/.stamp
	$(call qemu-configure,$(B)/stock-src,$(B)/stock)

# Binaries run from a build directory look for firmware under its
# qemu-bundle/, relocated from --firmwarepath: point that at the packages.
FIRMWARE_DIRS := /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu
define link-firmware
	for d in $(FIRMWARE_DIRS); do \
		mkdir -p $(1)/qemu-bundle$$(dirname $$d) && \
		ln -sfn $$d $(1)/qemu-bundle$$d; \
	done
endef

fork: $(B)/.src-assembled $(B)/fork/config.status
	$(NINJA) -C $(B)/fork $(NINJA_TARGETS)
	$(call link-firmware,$(B)/fork)

stock: $(B)/stock-src/.stamp $(B)/stock/config.status
	$(NINJA) -C $(B)/stock $(NINJA_TARGETS)
	$(call link-firmware,$(B)/stock)

# --- testing --------------------------------------------------------------

check: fork
	scripts/check.sh $(TOP) fork

# The same suites on stock, for the rule "the fork passes what stock passes".
check-stock: fork stock
	scripts/check.sh $(TOP) stock

# --- the patch series -------------------------------------------------------

# Upstream-style series with a cover letter in build/series/.
series: assemble
	scripts/series.sh $(TOP) export

# Apply build/series/ to a pristine tree with git am; build after each patch.
check-series: series
	QEMU_CONFIGURE_FLAGS="$(QEMU_CONFIGURE_FLAGS)" \
		NINJA_TARGETS="$(NINJA_TARGETS)" scripts/series.sh $(TOP) check

# Copy the work committed in build/src back into this repository.
export:
	scripts/export.sh $(TOP)

# Drop unexported work in build/src and assemble it again from this repo.
reset-src:
	git -C $(B)/src rev-parse HEAD > /dev/null
	git -C $(B)/src reset -q --hard "$$(cat $(B)/src/.git/fork-assembled)"
	$(MAKE) assemble

clean:
	rm -rf $(B)/fork $(B)/stock $(B)/series $(B)/check-series

distclean:
	rm -rf $(B)
