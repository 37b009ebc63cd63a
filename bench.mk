# `make bench` (the top-level Makefile runs `$(MAKE) -f bench.mk bench`).
#
# A benchmark, not a test: spflooder-style floods and spping-style round trips
# against our `spread` daemon, and, when SPREAD_REF_PREFIX names an installed
# original Spread 5.0.1 (with sbin/spread), against that daemon too, with the
# same load client, printed side by side; then a ring of three daemons; then
# the client library (LIBRARY: the C load client build/bin/splibbench on our
# libspread and, with SPREAD_REF_PREFIX, on the original's <prefix>/lib); then
# FAILOVER: a ring of three under docs/fast-failover.conf, the last daemon
# SIGKILLed 50 times (detection p50/p99), then a 10-minute flood counting false
# suspicions (ports 25050-25069 ours, 25150-25169 original).
# Loopback only; the first free port pair in 25010-25019 (ours) and
# 25110-25119 (original), rings above them, the library section in
# 25040-25049. Nothing here fetches or builds the original. Results:
# docs/bench.md explains method and caveats.
#
#   make bench
#   make bench SPREAD_REF_PREFIX=/opt/spread-5.0.1
#   make bench BENCH_ARGS=--quick          (short runs)
#   make bench BENCH_ARGS=--unix           (clients on /tmp/<port> instead of TCP)
#   make bench BENCH_ARGS=--lib-only       (only the LIBRARY section)
#   make bench BENCH_ARGS="--failover-only --failover-soak 60"   (only FAILOVER, a 1-minute flood)

CARGO             ?= cargo
CARGO_TARGET_DIR  ?= target
SPREAD_REF_PREFIX ?=
BENCH_ARGS        ?=
BENCH_OUT         ?= $(CARGO_TARGET_DIR)/bench.md

.PHONY: bench bench-quick

bench:
	$(MAKE) --no-print-directory build
	$(CARGO) build --release -p spread-daemon -p spread-bench
	$(CARGO_TARGET_DIR)/release/spread-bench --ours $(CARGO_TARGET_DIR)/release/spread \
	    $(if $(SPREAD_REF_PREFIX),--ref-prefix $(SPREAD_REF_PREFIX)) \
	    --markdown $(BENCH_OUT) $(BENCH_ARGS)

bench-quick:
	$(MAKE) -f bench.mk bench BENCH_ARGS="--quick --runs 3 $(BENCH_ARGS)"
