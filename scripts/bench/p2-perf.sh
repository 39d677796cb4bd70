#!/usr/bin/env bash
# Where the iothread's CPU time goes: kernel or QEMU. Runs a P2 cell
# (p2.sh) and samples the iothread with `perf record -e cpu-clock` in the
# middle of its timed phase. callgrind counts only the instructions QEMU
# executes; this shows the rest of iothread_cpu_per_req (system calls,
# sleeping and waking in ppoll()), which instruction counts cannot.
#
# usage: p2-perf.sh QEMU_BINARY WORKLOAD BACKEND [--poll0]
#
# Prints p2.sh's requests_per_s and iothread_cpu_per_req for the run
# (a sampled run: compare builds under the same sampling), the
# samples' split between the kernel and user space (QEMU, the C library,
# the vDSO), that CPU time per request split the same way, and the
# hottest symbols. Environment: P2_N (default 1,500,000; the timed phase
# must outlast PERF_DELAY + PERF_SECONDS), PERF_DELAY (seconds from the
# iothread's start, default 4), PERF_SECONDS (default 6), PERF_FREQ
# (samples/s, default 4999), PERF_TOP (symbols listed, default 12).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
die() { echo "p2-perf: error: $*" >&2; exit 1; }

[ $# -ge 3 ] || die "usage: p2-perf.sh QEMU_BINARY WORKLOAD BACKEND [--poll0]"
qemu=$(readlink -f "$1")
command -v perf > /dev/null || die "perf not found (apt-get install linux-perf)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

P2_N=${P2_N:-1500000} "$here/p2.sh" "$@" > "$tmp/p2.out" 2>&1 &
p2=$!

# QEMU's iothread is the thread named after the generator's iothread
pid= tid=
for _ in $(seq 300); do
    pid=$(pgrep -n -f "^$qemu .*-object iothread,id=iot0" || true)
    if [ -n "$pid" ]; then
        tid=$(grep -lx "IO iot0" /proc/"$pid"/task/*/comm 2>/dev/null |
              head -1 | cut -d/ -f5)
        [ -n "$tid" ] && break
    fi
    sleep 0.1
done
[ -n "$tid" ] || { wait $p2 || true; cat "$tmp/p2.out" >&2; die "no iothread"; }

sleep "${PERF_DELAY:-4}"
perf record -q -e cpu-clock -F "${PERF_FREQ:-4999}" -t "$tid" \
    -o "$tmp/perf.data" -- sleep "${PERF_SECONDS:-6}" 2> /dev/null
kill -0 "$pid" 2> /dev/null ||
    die "QEMU ended before the samples did: raise P2_N"
wait $p2 || { cat "$tmp/p2.out" >&2; die "p2.sh failed"; }

grep -E ' (requests_per_s|iothread_cpu_per_req) ' "$tmp/p2.out"
cpu=$(awk '$2 == "iothread_cpu_per_req" { print $3 }' "$tmp/p2.out")
perf report -i "$tmp/perf.data" --stdio --sort dso 2> /dev/null |
    awk -v cpu="$cpu" '
        /^ *[0-9.]+%/ {
            share = $1; sub("%", "", share)
            if ($2 == "[kernel.kallsyms]") k += share; else u += share
        }
        END {
            printf "iothread_kernel_share %.1f %%\n", k
            printf "iothread_user_share %.1f %%\n", u
            printf "iothread_kernel_cpu_per_req %.3f us\n", cpu * k / 100
            printf "iothread_user_cpu_per_req %.3f us\n", cpu * u / 100
        }'
echo "hottest symbols ([k] kernel, [.] user):"
perf report -i "$tmp/perf.data" --stdio --sort sym 2> /dev/null |
    grep -E '^ *[0-9.]+%' | head -n "${PERF_TOP:-12}"
