#!/bin/sh
# Profile OUR daemon under the benchmark load (nothing here touches the
# original). Writes into ${PROFILE_DIR:-target/profile}:
#   perf.data + perf-report.txt   (perf record -e cpu-clock, call graphs)
#   callgrind.out + callgrind.txt (valgrind callgrind, short run; slow)
# Usage: bench/profile.sh [perf|callgrind|both]   (default: perf)
set -eu
mode=${1:-perf}
T=${CARGO_TARGET_DIR:-target}
out=${PROFILE_DIR:-$T/profile}
mkdir -p "$out"
cargo build --release -p spread-daemon -p spread-bench
bench="$T/release/spread-bench"
daemon="$T/release/spread"

if [ "$mode" = perf ] || [ "$mode" = both ]; then
    command -v perf >/dev/null || { echo "perf not installed" >&2; exit 1; }
    # cpu-clock is a software event: works where hardware counters are not exposed.
    "$bench" --ours "$daemon" --ref-prefix "" --runs 1 --quick --ours-port 25040 \
        --ours-wrapper "perf record -q -e cpu-clock -F 2000 -g -o $out/perf.data --" >"$out/bench-perf.txt" 2>&1 || true
    perf report -i "$out/perf.data" --stdio --no-children --percent-limit 1 \
        --sort symbol >"$out/perf-report.txt" 2>/dev/null || true
    perf report -i "$out/perf.data" --stdio --no-children -g none --percent-limit 0.5 \
        --sort dso,symbol >"$out/perf-flat.txt" 2>/dev/null || true
    echo "perf: $out/perf-flat.txt, $out/perf-report.txt"
fi
if [ "$mode" = callgrind ] || [ "$mode" = both ]; then
    command -v valgrind >/dev/null || { echo "valgrind not installed" >&2; exit 1; }
    # valgrind slows the daemon ~50x: one short flood and a few round trips.
    "$bench" --ours "$daemon" --ref-prefix "" --runs 1 --quick --divide 20 --ours-port 25042 \
        --ours-wrapper "valgrind --tool=callgrind --callgrind-out-file=$out/callgrind.out" >"$out/bench-callgrind.txt" 2>&1 || true
    callgrind_annotate "$out/callgrind.out" 2>/dev/null | head -80 >"$out/callgrind.txt" || true
    echo "callgrind: $out/callgrind.txt"
fi
