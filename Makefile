# rspread: build, install, test, run, bench.
#
#   make build                 cargo build (release), then the three C libraries in build/lib,
#                              then the C examples (build/bin) when c-examples/Makefile exists
#   make install PREFIX=/opt   sbin/spread, bin/ (spmonitor, the example programs), lib/ (libraries,
#                              pkgconfig/, systemd/system/spread.service, debug/ with the split debug info),
#                              include/, etc/spread.conf (a sample, never overwriting one),
#                              share/man/ under PREFIX; binaries and libraries stripped; DESTDIR
#                              honoured (and never recorded in a RUNPATH); the daemon's built-in
#                              configuration path is ETCDIR (default PREFIX/etc)
#   make test                  build, cargo fmt --check, clippy -D warnings, every test (--no-fail-fast)
#   make run                   the daemon on its embedded default configuration
#   make bench                 the benchmark (bench.mk)
#   make sim [SEEDS=N] [DAEMONS=K]  the ring simulator's randomised scenarios over N seeds (default
#                              2000), chaos with K daemons (1-32; default sizes 1-9 in turn)
#   make headers               regenerate include/*.h (cbindgen + xtask/templates)
#   make fuzz [FUZZ_SECONDS=N]  the libFuzzer targets of fuzz/ (stable toolchain), N seconds each
#                              (default 60), seeded from ../shared/ref; fails on any finding
#   make clean
#
# The libraries are linked from the Rust static library of libspread-ffi. Each exports exactly the
# symbols listed in libspread-ffi/exports/ (see the README there); everything else, Rust's runtime
# included, is local. NEEDED: libc.so.6 and ld-linux-x86-64.so.2 (for __tls_get_addr); libgcc's
# unwinder is linked in statically.

PREFIX     ?= /usr/local
DESTDIR    ?=
ETCDIR     ?= $(PREFIX)/etc
STRIP      ?= strip
CARGO      ?= cargo
CC         ?= cc
LD         ?= ld
AR         ?= ar
OBJCOPY    ?= objcopy
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
PROFILE    := release

BUILD      := build
LIBOUT     := $(BUILD)/lib
OBJDIR     := $(BUILD)/obj
BINOUT     := $(BUILD)/bin
EXPORTS    := libspread-ffi/exports
RUSTLIB    := $(TARGET_DIR)/$(PROFILE)/libspread_ffi.a
DAEMON     := $(TARGET_DIR)/$(PROFILE)/spread
MONITOR    := $(TARGET_DIR)/$(PROFILE)/spmonitor

SOVERSION  := 3
LIBVERSION := 3.0.0
LIBS       := libspread libspread-core libtspread-core
HEADERS    := include/sp.h include/sp_func.h include/sp_events.h include/fl.h
# What the Rust static library needs from the system (cargo's native-static-libs, less libgcc_s).
NATIVE     := -lpthread -ldl -lm -lrt -lutil

# Export lists per library: the SP_/E_ API everywhere, FL_ only in libspread.
EXPORTS_libspread        := $(EXPORTS)/core.syms $(EXPORTS)/fl.syms
EXPORTS_libspread-core   := $(EXPORTS)/core.syms
EXPORTS_libtspread-core  := $(EXPORTS)/core.syms

LIB_FILES := $(foreach l,$(LIBS),$(LIBOUT)/$(l).so.$(LIBVERSION) $(LIBOUT)/$(l).so.$(SOVERSION) \
                                 $(LIBOUT)/$(l).so $(LIBOUT)/$(l).a)

.SECONDARY:
.DELETE_ON_ERROR:
.PHONY: all build cargo libs examples install install-files test run bench sim headers clean \
        fuzz fuzz-build fuzz-seeds

all: build

build: cargo
	$(MAKE) --no-print-directory libs examples

# The daemon looks for ETCDIR/spread.conf (spread-daemon/src/cli.rs); the default build (ETCDIR
# /usr/local/etc) passes nothing, so `make test` and `cargo test` share one build.
cargo:
	$(if $(filter-out /usr/local/etc,$(ETCDIR)),SPREAD_ETCDIR=$(ETCDIR)) $(CARGO) build --$(PROFILE) --workspace

libs: $(LIB_FILES)

# One symbol per line, comments and blank lines removed.
$(OBJDIR)/%.list: $(EXPORTS)/core.syms $(EXPORTS)/fl.syms
	@mkdir -p $(@D)
	cat $(EXPORTS_$*) | sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$$/d' > $@

# An anonymous version script: the listed symbols global and unversioned, all else local.
$(OBJDIR)/%.map: $(OBJDIR)/%.list
	{ echo '{'; echo '  global:'; sed 's/.*/    &;/' $<; echo '  local: *;'; echo '};'; } > $@

# Shared library: -u pulls each exported symbol out of the archive, --gc-sections drops the rest.
$(LIBOUT)/%.so.$(LIBVERSION): $(RUSTLIB) $(OBJDIR)/%.map $(OBJDIR)/%.list
	@mkdir -p $(@D)
	$(CC) -shared -o $@ -Wl,-soname,$*.so.$(SOVERSION) -Wl,--version-script=$(OBJDIR)/$*.map \
	    -Wl,--gc-sections -Wl,--as-needed -Wl,-z,noexecstack -static-libgcc \
	    $$(sed 's/^/-Wl,-u,/' $(OBJDIR)/$*.list) $(RUSTLIB) $(NATIVE)

$(LIBOUT)/%.so.$(SOVERSION): $(LIBOUT)/%.so.$(LIBVERSION)
	ln -sf $(<F) $@

$(LIBOUT)/%.so: $(LIBOUT)/%.so.$(SOVERSION)
	ln -sf $(<F) $@

# Static library: one relocatable object with only the exported symbols left global.
$(LIBOUT)/%.a: $(RUSTLIB) $(OBJDIR)/%.list
	@mkdir -p $(@D)
	$(LD) -r --gc-sections $$(sed 's/^/-u /' $(OBJDIR)/$*.list) -o $(OBJDIR)/$*.o $(RUSTLIB)
	$(OBJCOPY) --keep-global-symbols=$(OBJDIR)/$*.list --remove-section=.llvmbc --remove-section=.llvmcmd \
	    $(OBJDIR)/$*.o
	rm -f $@ && $(AR) rcs $@ $(OBJDIR)/$*.o

# The C examples, built against include/ and build/lib (c-examples/Makefile, when present).
examples: libs
	@if [ -f c-examples/Makefile ]; then \
	    $(MAKE) --no-print-directory -C c-examples INCDIR=$(CURDIR)/include \
	        LIBDIR=$(CURDIR)/$(LIBOUT) BINDIR=$(CURDIR)/$(BINOUT) all bench-tools; \
	else echo "c-examples/Makefile not present; no C examples built"; fi

install: build
	$(MAKE) --no-print-directory install-files

# Copies what `build` made (does not run cargo), then builds the C examples into bin/ against the
# installed headers and libraries (RUNPATH PREFIX/lib, without DESTDIR). Every ELF file is stripped;
# its debug info goes to lib/debug/<path>.debug, linked with a .gnu_debuglink.
D := $(DESTDIR)$(PREFIX)
SPLIT_DEBUG = f=$(D)/$(1); dbg=$(D)/lib/debug/$(1).debug; mkdir -p $$(dirname $$dbg) && \
	objcopy --only-keep-debug $$f $$dbg && $(STRIP) --strip-unneeded $$f && \
	objcopy --add-gnu-debuglink=$$dbg $$f
MAN_PAGES := man/spread.1 man/spread.conf.5 man/spuser.1 man/spflooder.1 man/spmonitor.1 man/libspread.3

install-files:
	install -d $(D)/lib/pkgconfig $(D)/include $(D)/sbin $(D)/bin $(DESTDIR)$(ETCDIR) \
	    $(D)/lib/systemd/system $(D)/share/man/man1 $(D)/share/man/man3 $(D)/share/man/man5
	for l in $(LIBS); do \
	    install -m 755 $(LIBOUT)/$$l.so.$(LIBVERSION) $(DESTDIR)$(PREFIX)/lib/ && \
	    { $(call SPLIT_DEBUG,lib/$$l.so.$(LIBVERSION)); } && \
	    ln -sf $$l.so.$(LIBVERSION) $(DESTDIR)$(PREFIX)/lib/$$l.so.$(SOVERSION) && \
	    ln -sf $$l.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/$$l.so && \
	    install -m 644 $(LIBOUT)/$$l.a $(DESTDIR)$(PREFIX)/lib/ && \
	    sed -e 's|@PREFIX@|$(PREFIX)|g' pkgconfig/$$l.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/$$l.pc \
	    || exit 1; \
	done
	install -m 644 $(HEADERS) $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(DAEMON) $(D)/sbin/spread
	$(call SPLIT_DEBUG,sbin/spread)
	install -m 755 $(MONITOR) $(D)/bin/spmonitor
	$(call SPLIT_DEBUG,bin/spmonitor)
	@if [ -f c-examples/Makefile ]; then \
	    $(MAKE) --no-print-directory -C c-examples INCDIR=$(D)/include \
	        LIBDIR=$(D)/lib RPATH=$(PREFIX)/lib BINDIR=$(D)/bin && \
	    for p in $$(cd $(D)/bin && ls); do \
	        [ -L $(D)/bin/$$p ] || [ $$p = spmonitor ] || { $(call SPLIT_DEBUG,bin/$$p); } || exit 1; \
	    done; \
	else echo "c-examples/Makefile not present; no C examples installed"; fi
	[ -e $(DESTDIR)$(ETCDIR)/spread.conf ] || install -m 644 dist/spread.conf.sample $(DESTDIR)$(ETCDIR)/spread.conf
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@ETCDIR@|$(ETCDIR)|g' dist/spread.service.in \
	    > $(D)/lib/systemd/system/spread.service
	for m in $(MAN_PAGES); do \
	    sed -e 's|@ETCDIR@|$(ETCDIR)|g' $$m > $(D)/share/man/man$${m##*.}/$$(basename $$m) || exit 1; \
	done

# Every check runs even when an earlier one failed (cargo test --no-fail-fast runs every test
# binary); the target fails at the end if any did, naming which.
test: build
	@failed=""; \
	$(CARGO) fmt --all -- --check || failed="$$failed fmt"; \
	$(CARGO) clippy --$(PROFILE) --workspace --all-targets -- -D warnings || failed="$$failed clippy"; \
	$(CARGO) test --$(PROFILE) --workspace --no-fail-fast || failed="$$failed test"; \
	if [ -n "$$failed" ]; then echo "make test: failed:$$failed" >&2; exit 1; fi

run:
	$(CARGO) run --$(PROFILE) -p spread-daemon --bin spread

# bench.mk builds what it needs (the daemon and spread-bench) itself.
bench:
	$(MAKE) -f bench.mk bench

# The seeded ring simulator (spread-daemon/tests/ring_sim.rs, ring_membership.rs, ring_engines.rs) over SEEDS seeds; a failure names
# its seed, and RSPREAD_SIM_SEED=<seed> replays it.
SEEDS ?= 2000
sim:
	RSPREAD_SIM_SEEDS=$(SEEDS) $(if $(DAEMONS),RSPREAD_SIM_DAEMONS=$(DAEMONS)) $(CARGO) test --$(PROFILE) -p spread-daemon --test ring_sim --test ring_membership --test ring_engines

headers:
	$(CARGO) run --$(PROFILE) -p xtask -- headers

# Fuzzing (fuzz/, its own workspace and target directory; docs/hardening.md "Fuzzing"). The
# targets are built by plain cargo on the stable toolchain with the sanitizer-coverage flags that
# cargo-fuzz passes for `--sanitizer none`; --target keeps them off build scripts. Seeds are
# extracted from the recordings into fuzz/corpus/<target>/ first; fuzz/run.sh runs each target for
# FUZZ_SECONDS and prints time, executions, corpus size and findings per target.
FUZZ_SECONDS    ?= 60
FUZZ_TARGETS    ?= client_frames session_after_handshake daemon_packets config client_receive
FUZZ_REF        ?= $(abspath $(CURDIR)/../shared/ref)
FUZZ_TRIPLE     ?= $(shell rustc -vV | sed -n 's/^host: //p')
FUZZ_TARGET_DIR := $(CURDIR)/fuzz/target
FUZZ_RUSTFLAGS  := -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
    -Cllvm-args=-simplifycfg-branch-fold-threshold=0 --cfg fuzzing -Cdebug-assertions -Coverflow-checks

fuzz: fuzz-build fuzz-seeds
	FUZZ_BIN=$(FUZZ_TARGET_DIR)/$(FUZZ_TRIPLE)/release bash fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-build:
	cd fuzz && env -u CARGO_ENCODED_RUSTFLAGS RUSTFLAGS="$(FUZZ_RUSTFLAGS)" \
	    $(CARGO) build --release --target $(FUZZ_TRIPLE) --target-dir $(FUZZ_TARGET_DIR) --bins

fuzz-seeds:
	cd fuzz && env -u CARGO_ENCODED_RUSTFLAGS -u RUSTFLAGS \
	    $(CARGO) run --quiet --example seeds --target-dir $(FUZZ_TARGET_DIR) -- \
	    $(FUZZ_REF) $(CURDIR) $(CURDIR)/fuzz/corpus

clean:
	$(CARGO) clean
	rm -rf $(BUILD)
