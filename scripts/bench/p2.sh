#!/usr/bin/env bash
# P2: the device path without a guest. Runs the fork's virtio-blk load
# generator (tests/qtest/virtio-blk-bench.c, built in build/fork) against
# one QEMU binary: virtio-blk-pci with an iothread on a pc machine, driven
# through qtest, and prints "<workload> <metric> <value> <unit>" lines.
#
# usage: p2.sh QEMU_BINARY WORKLOAD BACKEND [--poll0] [--callgrind]
#
#   WORKLOAD   4 KiB, one data segment: randread-qd1, randread-qd32,
#              seqwrite-qd32 (sequential, so the device can merge),
#              randrw-qd32 (70% reads);
#              randread64k-qd16: 64 KiB random reads in 16 segments of
#              4 KiB, like a Linux guest's scattered pages;
#              seqwrite-flush32-qd32: seqwrite-qd32 with a FLUSH after
#              every 32 writes;
#              randrw-discard-qd32: randrw-qd32 in which 20% of the
#              requests DISCARD 4 KiB (the drive has discard=unmap)
#   BACKEND    null (null-co, read-zeroes=off: no data touched) or shm (a
#              raw file in /dev/shm, aio=io_uring, cache=none)
#   --poll0    the iothread with poll-max-ns=0: no busy polling, so its
#              CPU time and instructions are work, not waiting
#
# Without --callgrind, over the timed phase: requests/s, CPU time per
# request of the iothread, of the main loop (which, with no irqfd under
# qtest, injects the interrupts) and of all QEMU's threads, from
# /proc/PID/task/TID/schedstat; requests per notification (kick); then,
# after the timed phase, system calls per request of the same three,
# counted with strace over P2_SYSCALL_N requests (tracing is slow). For
# shm, the cache mode: "cache writeback" if /dev/shm refused O_DIRECT.
# Every completion is checked OK.
#
# --callgrind instead counts instructions and heap allocations per
# request: QEMU runs under callgrind (--separate-threads=yes) once with N
# and once with 2N measured requests (same warm-up); per request is
# (count(2N) - count(N)) / N, so start-up and warm-up cancel.
#   {iothread,main,all}_instr_per_req
#                               the instructions executed by the
#                               iothread, the main loop's thread, all
#                               threads
#   ..._no_zero_fill            the same without the zero-filling of
#                               virtqueue_pop's stack arrays, which
#                               -ftrivial-auto-var-init=zero adds and which
#                               callgrind counts per rep-stos iteration
#                               (found with objdump; see p2-callgrind.py)
#   zero_fill_instr_per_req     that zero-filling, all threads
#   iothread_block_instr_per_req
#                               the iothread's instructions in the block
#                               layer, blk_aio_* and below, by source file
#                               (see p2-callgrind.py)
#   iothread_device_instr_per_req[_no_zero_fill]
#                               the rest, the device's share: the device
#                               model, virtio, memory, and the event loop
#   iothread_loop_instr_per_req of that, the event loop's part
#   main_notify_instr_per_req   the main loop's instructions in virtio's
#                               guest-notifier handler, where it injects
#                               the device's interrupts (no irqfd under
#                               qtest): the device's work that moved to
#                               the main loop, without the qtest protocol
#                               that is most of main_instr_per_req
#   main_notifies_per_req       how often that handler ran per request
#   {iothread,all}_heap_allocs_per_req
#                               malloc + calloc + realloc calls (the main
#                               loop's are mostly the qtest protocol's)
#   {iothread,all}_frees_per_req
#                               free calls
#   aligned_allocs_per_req      posix_memalign, memalign, aligned_alloc,
#                               all threads
#
# Environment: P2_N (measured requests, default per workload),
# P2_WARMUP (default 2000), P2_SYSCALL_N (default 2000, 500 at QD1), P2_CG_N
# (callgrind N, default 2000), P2_CG_WARMUP (default 200), P2_ARGS (more
# options for the generator).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
bench=$top/build/fork/tests/qtest/virtio-blk-bench
here=$(dirname "$0")

die() { echo "p2: error: $*" >&2; exit 1; }

[ $# -ge 3 ] ||
    die "usage: p2.sh QEMU_BINARY WORKLOAD BACKEND [--poll0] [--callgrind]"
qemu=$(realpath "$1")
workload=$2
backend=$3
shift 3
args=()
callgrind=
for opt; do
    case $opt in
    --poll0) args+=(--poll-max-ns 0) ;;
    --callgrind) callgrind=1 ;;
    *) die "unknown option $opt" ;;
    esac
done
[ -x "$qemu" ] || die "$1 is not an executable"
case $qemu in
*-system-x86_64) ;;
*) die "$1: libqtest needs a binary named *-system-x86_64" ;;
esac

# Under strace a request at QD1 takes milliseconds.
sys_n=2000
case $workload in
randread-qd1)  args+=(-w randread -q 1);  n=20000 sys_n=500 ;;
randread-qd32) args+=(-w randread -q 32); n=200000 ;;
seqwrite-qd32) args+=(-w seqwrite -q 32); n=200000 ;;
randrw-qd32)   args+=(-w randrw -q 32 --read-pct 70); n=200000 ;;
randread64k-qd16)
    args+=(-w randread -q 16 --block-size 65536 --segments 16); n=100000 ;;
seqwrite-flush32-qd32)
    args+=(-w seqwrite -q 32 --flush-every 32); n=200000 ;;
randrw-discard-qd32)
    args+=(-w randrw -q 32 --read-pct 70 --discard-pct 20); n=200000 ;;
*) die "unknown workload $workload" ;;
esac
case $backend in
null|shm) args+=(-b "$backend") ;;
*) die "unknown backend $backend" ;;
esac
n=${P2_N:-$n}
warmup=${P2_WARMUP:-2000}
syscall_n=${P2_SYSCALL_N:-$sys_n}
cg_n=${P2_CG_N:-2000}
cg_warmup=${P2_CG_WARMUP:-200}
# shellcheck disable=SC2206
extra=(${P2_ARGS:-})

# The generator is not among the targets `make` builds.
if [ ! -x "$bench" ] ||
   [ "$top/build/src/tests/qtest/virtio-blk-bench.c" -nt "$bench" ]; then
    ninja -C "$top/build/fork" tests/qtest/virtio-blk-bench > /dev/null ||
        die "cannot build $bench"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# libqtest puts its sockets in TMPDIR
export TMPDIR=$tmp

# run_bench LOG QEMU_COMMAND ARGS...: the generator's result lines
run_bench() {
    local log=$1 cmd=$2
    shift 2
    if ! QTEST_QEMU_BINARY=$cmd "$bench" "$@" > "$log.out" 2> "$log.err"; then
        cat "$log.err" >&2
        die "the load generator failed ($workload, $backend, $qemu)"
    fi
    cat "$log.out"
}

if [ -z "$callgrind" ]; then
    run_bench "$tmp/native" "$qemu" "${args[@]}" -n "$n" \
        --warmup "$warmup" --syscalls "$syscall_n" "${extra[@]}" |
        sed "s/^/$workload /"
    exit 0
fi

# count_run TAG N: run under callgrind; the threads' counts to $tmp/TAG
count_run() {
    local dir=$tmp/cg-$1
    mkdir -p "$dir"
    run_bench "$dir/bench" \
        "valgrind --tool=callgrind --separate-threads=yes --dump-instr=yes \
--compress-strings=no --compress-pos=no \
--callgrind-out-file=$dir/callgrind.out.%p $qemu" \
        "${args[@]}" -n "$2" --warmup "$cg_warmup" --timeout 600 \
        "${extra[@]}" > /dev/null
    python3 "$here/p2-callgrind.py" "$qemu" "$dir"/callgrind.out.*-* \
        > "$tmp/$1" || die "cannot read the callgrind output"
}

count_run n "$cg_n"
count_run 2n $((2 * cg_n))

python3 - "$tmp/n" "$tmp/2n" "$cg_n" "$workload" <<'EOF'
import sys


def counts(path):
    res = {}
    for line in open(path):
        *key, value = line.split()
        res[' '.join(key)] = int(value)
    return res


c1, c2 = counts(sys.argv[1]), counts(sys.argv[2])
n, workload = int(sys.argv[3]), sys.argv[4]
if c1['zero_fill_sites'] != c2['zero_fill_sites']:
    sys.exit('p2: error: the two runs disagree on the binary')
rows = []
for t in ('iothread', 'main', 'all'):
    rows += [
        (t + '_instr_per_req', lambda c, t=t: c[t + ' ir'], 'instr/req'),
        (t + '_instr_per_req_no_zero_fill',
         lambda c, t=t: c[t + ' ir'] - c[t + ' zero_fill_ir'], 'instr/req')]
rows.append(('zero_fill_instr_per_req', lambda c: c['all zero_fill_ir'],
             'instr/req'))
# The iothread's split: the block layer (blk_aio_* and below), and the
# rest, the device's share, of which the event loop's part
rows += [
    ('iothread_block_instr_per_req', lambda c: c['iothread block_ir'],
     'instr/req'),
    ('iothread_device_instr_per_req',
     lambda c: c['iothread ir'] - c['iothread block_ir'], 'instr/req'),
    ('iothread_device_instr_per_req_no_zero_fill',
     lambda c: c['iothread ir'] - c['iothread block_ir'] -
     c['iothread zero_fill_ir'], 'instr/req'),
    ('iothread_loop_instr_per_req', lambda c: c['iothread loop_ir'],
     'instr/req'),
    ('main_notify_instr_per_req', lambda c: c['main notify_ir'], 'instr/req'),
    ('main_notifies_per_req', lambda c: c['main notify_calls'], 'calls/req')]
rows += [(t + '_locked_instr_per_req', lambda c, t=t: c[t + ' locked'],
          'instr/req') for t in ('iothread', 'all')]
for t in ('iothread', 'all'):
    rows += [
        (t + '_heap_allocs_per_req',
         lambda c, t=t: c[t + ' malloc'] + c[t + ' calloc'] +
         c[t + ' realloc'], 'allocs/req'),
        (t + '_frees_per_req', lambda c, t=t: c[t + ' free'], 'frees/req')]
rows.append(('aligned_allocs_per_req', lambda c: c['all aligned_alloc'],
             'allocs/req'))
for metric, f, unit in rows:
    fmt = '%s %s %.3f %s' if unit == 'calls/req' else '%s %s %.1f %s'
    print(fmt % (workload, metric, (f(c2) - f(c1)) / n, unit))
print('%s callgrind_n %d req' % (workload, n))
print('%s zero_fill_sites %d instr' % (workload, c1['zero_fill_sites']))
EOF
