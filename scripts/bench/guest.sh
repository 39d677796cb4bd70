#!/usr/bin/env bash
# Guest benchmark of one QEMU binary: boots the test guest (scripts/guest)
# once with a virtio-blk-pci disk on an iothread and runs five fio jobs in
# sequence, ~5 s each: randread-qd1, randread-qd32, randread-qd128 (4K
# random reads), seqwrite-qd32 (4K sequential writes, which the device can
# merge) and seqread64k-qd16. Prints "accel tcg|kvm" and one line per
# metric, "<job> <metric> <value> <unit>": fio's IOPS, bandwidth and
# latency, and over exactly each job's window the iothread's and the main
# thread's CPU time per request, the vCPU threads' together, the disk's
# interrupts per request (counted in the guest) and the merges per request
# (blockstats).
#
#   BACKEND  null (null-co, size=1G, read-zeroes=off) or shm (a 1 GiB raw
#            file in /dev/shm, aio=io_uring, cache=none where /dev/shm
#            allows O_DIRECT, else cache=writeback, which it says)
#   POLL     default, or 0 for iothread poll-max-ns=0
#   DEVICE_OPTS  more properties for virtio-blk-pci, given only to a binary
#            that knows the first one (stock has no coalesce-delay-us: it
#            runs without, and says so on stderr)
#
# GUEST_RUNTIME sets the seconds per job (default 5), GUEST_JOBS the jobs
# (comma-separated, default all five).
#
# usage: guest.sh QEMU_BINARY BACKEND [POLL [DEVICE_OPTS]]
set -euo pipefail

die() { echo "guest.sh: error: $*" >&2; exit 2; }

[ $# -ge 2 ] && [ $# -le 4 ] ||
    die "usage: guest.sh QEMU_BINARY BACKEND [POLL [DEVICE_OPTS]]"
qemu=$1 backend=$2 poll=${3:-default} device_opts=${4:-}
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

dev_opt=()
if [ -n "$device_opts" ]; then
    prop=${device_opts%%=*}
    if "$qemu" -device virtio-blk-pci,help 2>/dev/null | grep -qw -- "$prop"; then
        dev_opt=(--device-opts "$device_opts")
    else
        echo "guest.sh: $qemu has no $prop: running without $device_opts" >&2
    fi
fi
jobs=()
IFS=, read -ra names <<< "${GUEST_JOBS:-randread-qd1,randread-qd32,randread-qd128,seqwrite-qd32,seqread64k-qd16}"
for j in "${names[@]}"; do
    jobs+=(--job "$j")
done

"$top/scripts/guest/build-guest.sh" "$top" >&2
"$top/scripts/guest/boot.py" --qemu "$qemu" --guest "$top/build/guest" \
    --log "$top/build/guest/bench.log" "${disk[@]}" "${poll_opt[@]}" \
    "${dev_opt[@]}" --runtime "${GUEST_RUNTIME:-5}" "${jobs[@]}"
