#!/usr/bin/env bash
# P1: the block-backend path alone, `qemu-img bench` on null-co (no data
# touched), 4 KiB requests, queue depth 64, cache=none.
#
#   p1.sh BUILD_DIR read|write            requests/s of one timed run
#   p1.sh BUILD_DIR read|write --callgrind instructions per request
#   p1.sh BUILD_DIR read|write --allocs    heap allocations per request
#
# Instructions come from callgrind, which is exact and repeatable, heap
# allocations from memcheck's count of malloc-family calls: the run with
# 2N requests minus the run with N, divided by N, so start-up cost
# cancels. Prints `p1-<dir> <metric> <value> <unit>` lines.
set -euo pipefail

build=$1
dir=$2
mode=${3:-}
img=$build/qemu-img
n_timed=${P1_REQUESTS:-2000000}
n_instr=${P1_CALLGRIND_REQUESTS:-100000}

die() { echo "p1: error: $*" >&2; exit 1; }
[ -x "$img" ] || die "$img not found"
case $dir in
read) wflag=() ;;
write) wflag=(-w) ;;
*) die "direction must be read or write" ;;
esac

bench() {   # bench N [prefix...]
    local n=$1
    shift
    "$@" "$img" bench -t none -s 4096 -d 64 -c "$n" "${wflag[@]}" \
        --image-opts driver=null-co,size=1G,read-zeroes=off
}

# Total instructions of one callgrind run.
instructions() {
    local out
    out=$(mktemp)
    bench "$1" valgrind --tool=callgrind --callgrind-out-file="$out" \
        >/dev/null 2>&1 || { rm -f "$out"; die "callgrind run failed"; }
    sed -n 's/^totals: *//p' "$out"
    rm -f "$out"
}

# Heap allocations of one memcheck run ("total heap usage: N allocs").
allocations() {
    local out
    out=$(bench "$1" valgrind --tool=memcheck 2>&1 >/dev/null) ||
        die "memcheck run failed"
    sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' <<<"$out" |
        tr -d ,
}

if [ "$mode" = --callgrind ]; then
    i1=$(instructions "$n_instr")
    i2=$(instructions $((2 * n_instr)))
    echo "p1-$dir instr_per_req $(( (i2 - i1) / n_instr )) instr"
elif [ "$mode" = --allocs ]; then
    a1=$(allocations "$n_instr")
    a2=$(allocations $((2 * n_instr)))
    [ -n "$a1" ] && [ -n "$a2" ] || die "memcheck printed no heap usage"
    awk -v a1="$a1" -v a2="$a2" -v n="$n_instr" -v d="$dir" \
        'BEGIN { printf "p1-%s allocs_per_req %.3f allocs\n", d, (a2 - a1) / n }'
else
    secs=$(bench "$n_timed" | sed -n 's/^Run completed in \([0-9.]*\) seconds\./\1/p')
    [ -n "$secs" ] || die "qemu-img bench printed no time"
    awk -v n="$n_timed" -v s="$secs" -v d="$dir" \
        'BEGIN { printf "p1-%s req_per_s %.0f req/s\n", d, n / s }'
fi
