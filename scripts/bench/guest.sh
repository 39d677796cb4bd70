#!/usr/bin/env bash
# Guest benchmark of one QEMU binary: boots the test guest (scripts/guest)
# once with a virtio-blk-pci disk on an iothread and runs five fio jobs in
# sequence, ~5 s each: randread-qd1, randread-qd32, randread-qd128 (4K
# random reads), seqwrite-qd32 (4K sequential writes, which the device can
# merge) and seqread64k-qd16. Prints "accel tcg|kvm" and one line per
# metric, "<job> <metric> <value> <unit>": fio's IOPS, bandwidth and
# latency, and over exactly each job's window the iothread's and the main
# thread's CPU time per request and the merges per request (blockstats).
#
#   BACKEND  null (null-co, size=1G, read-zeroes=off) or shm (a 1 GiB raw
#            file in /dev/shm, aio=io_uring, cache=none where /dev/shm
#            allows O_DIRECT, else cache=writeback, which it says)
#   POLL     default, or 0 for iothread poll-max-ns=0
#
# GUEST_RUNTIME sets the seconds per job (default 5).
#
# usage: guest.sh QEMU_BINARY BACKEND [POLL]
set -euo pipefail

die() { echo "guest.sh: error: $*" >&2; exit 2; }

[ $# = 2 ] || [ $# = 3 ] || die "usage: guest.sh QEMU_BINARY BACKEND [POLL]"
qemu=$1 backend=$2 poll=${3:-default}
top=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$qemu" ] || die "'$qemu' is not an executable"

case $backend in
null) disk=(--null 1G) ;;
shm)
    shm=$(mktemp /dev/shm/guest-bench.XXXXXX.img)
    trap 'rm -f "$shm"' EXIT
    # Allocated, so that reads touch real pages.
    fallocate -l 1G "$shm"
    disk=(--disk "$shm" --format raw)
    ;;
*) die "BACKEND must be null or shm, not '$backend'" ;;
esac
case $poll in
default) poll_opt=() ;;
0) poll_opt=(--poll-max-ns 0) ;;
*) die "POLL must be default or 0, not '$poll'" ;;
esac

"$top/scripts/guest/build-guest.sh" "$top" >&2
"$top/scripts/guest/boot.py" --qemu "$qemu" --guest "$top/build/guest" \
    --log "$top/build/guest/bench.log" "${disk[@]}" "${poll_opt[@]}" \
    --runtime "${GUEST_RUNTIME:-5}" \
    --job randread-qd1 --job randread-qd32 --job randread-qd128 \
    --job seqwrite-qd32 --job seqread64k-qd16
