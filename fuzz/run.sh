#!/usr/bin/env bash
# Runs each fuzz target for a while and says what it found (called by `make fuzz`).
#
#   fuzz/run.sh SECONDS TARGET...
#
# Environment: FUZZ_BIN (the built targets, default fuzz/target/<host>/release), FUZZ_MAX_LEN
# (largest input, default 16384), FUZZ_TIMEOUT (seconds one input may take before it counts as a
# hang, default 10), FUZZ_ARGS (more libFuzzer options). Corpus fuzz/corpus/<target>/ (grows),
# artifacts fuzz/artifacts/<target>/, libFuzzer's output fuzz/logs/<target>.log. Exits 1 if any
# target crashed, hung or ran out of memory.
set -u
here=$(cd "$(dirname "$0")" && pwd)
secs=${1:?usage: run.sh SECONDS TARGET...}
shift
host=$(rustc -vV | sed -n 's/^host: //p')
bin=${FUZZ_BIN:-$here/target/$host/release}
max_len=${FUZZ_MAX_LEN:-16384}
timeout=${FUZZ_TIMEOUT:-10}
failed=()
summary=()
for t in "$@"; do
    exe=$bin/$t
    if [ ! -x "$exe" ]; then
        echo "fuzz: $exe is missing (make fuzz-build)" >&2
        failed+=("$t")
        summary+=("$(printf '%-24s not built' "$t")")
        continue
    fi
    corpus=$here/corpus/$t
    art=$here/artifacts/$t
    log=$here/logs/$t.log
    mkdir -p "$corpus" "$art" "$here/logs"
    before=$(find "$corpus" -type f | wc -l)
    stamp=$(mktemp)
    echo "fuzz: $t for ${secs}s (corpus $before inputs)"
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$exe" -max_total_time="$secs" -timeout="$timeout" -max_len="$max_len" -print_final_stats=1 \
        -artifact_prefix="$art/" ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1
    rc=$?
    ran=$(( $(date +%s) - start ))
    after=$(find "$corpus" -type f | wc -l)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
    found=$(find "$art" -type f -newer "$stamp" \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | sort)
    rm -f "$stamp"
    if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
        failed+=("$t")
        verdict="FOUND (exit $rc): ${found:-see $log}"
        echo "fuzz: $t: libFuzzer exited $rc; the end of $log:" >&2
        grep -E -A3 "panicked at|ERROR: libFuzzer|SUMMARY|Test unit written" "$log" | tail -20 >&2
    else
        verdict="nothing found"
    fi
    summary+=("$(printf '%-24s %4ss  %10s execs  corpus %5s -> %-5s  %-22s %s' \
        "$t" "$ran" "${execs:-?}" "$before" "$after" "${cov:-}" "$verdict")")
done
echo
echo "fuzz summary (${secs}s per target; libFuzzer output in fuzz/logs/):"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: findings or failures in: ${failed[*]} (reproduce: $bin/<target> <artifact>)" >&2
    exit 1
fi
