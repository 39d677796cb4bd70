#!/usr/bin/env bash
# Boot a Linux guest on the fork and exercise a virtio-blk disk served by
# an iothread with fio: a write+verify pass over the whole disk (crc32c)
# and a short 4K random read. Prints the results in a few lines and exits
# 0 only if the verify passed.
#
# Without DISK, the disk is a fresh 1 GiB raw image in build/guest. DISK=path
# uses that raw or qcow2 image instead, opened read-only for a random read
# and a read pass, unless WRITE=1 (which overwrites all of it).
#
# usage: [DISK=image [WRITE=1]] run.sh TOP
set -euo pipefail

die() { echo "run: error: $*" >&2; exit 2; }

[ $# = 1 ] || die "usage: [DISK=image [WRITE=1]] run.sh TOP"
[ -x "$1/build/fork/qemu-system-x86_64" ] || die "no fork binary in '$1/build/fork' (run make)"
top=$(cd "$1" && pwd)
out=$top/build/guest
disk=${DISK:-}
write=${WRITE:-}
min_mib=64   # room for the random reads to spread and the read pass to mean something

case $write in
''|0) write= ;;
1) ;;
*) die "WRITE must be 1 or 0, not '$write'" ;;
esac

if [ -z "$disk" ]; then
    mkdir -p "$out"
    disk=$out/disk.img
    format=raw write=1
    rm -f "$disk"
    truncate -s 1G "$disk"
    # The image is scratch: 1 GiB is not worth keeping.
    trap 'rm -f "$disk"' EXIT
else
    [ -e "$disk" ] || die "DISK '$disk': no such file"
    info=$("$top/build/fork/qemu-img" info -U "$disk" 2>&1) ||
        die "DISK '$disk' is not a disk image: ${info##*: }"
    format=$(awk -F': ' '/^file format:/ { print $2; exit }' <<< "$info")
    size=$(sed -n 's/^virtual size: .*(\([0-9]*\) bytes)$/\1/p' <<< "$info" | head -n 1)
    case $format in
    raw|qcow2) ;;
    *) die "DISK '$disk' is a $format image, not raw or qcow2" ;;
    esac
    [ "$size" -ge $((min_mib << 20)) ] ||
        die "DISK '$disk' is $size bytes; the minimum is $min_mib MiB"
fi

"$top/scripts/guest/build-guest.sh" "$top"

if [ -n "$write" ]; then
    jobs=(--job verify --job randread-qd1)
    echo "run: writing and verifying all of $disk ($format)"
else
    jobs=(--job randread-qd1 --job read-pass --read-only)
    echo "run: reading $disk ($format, read-only; WRITE=1 to write and verify it)"
fi

results=$out/run.results
status=0
"$top/scripts/guest/boot.py" --qemu "$top/build/fork/qemu-system-x86_64" \
    --guest "$out" --log "$out/run.log" --disk "$disk" --format "$format" \
    --runtime 3 "${jobs[@]}" > "$results" || status=$?

value() {   # value JOB METRIC: what the guest reported for it
    awk -v job="$1" -v m="$2" '$1 == job && $2 == m { print $3 }' "$results"
}

accel=$(awk '$1 == "accel" { print $2 }' "$results")
if [ -z "$accel" ]; then
    echo "run: the guest did not run (log: ${out#"$top"/}/run.log)" >&2
    exit "$status"
fi
echo "run: accel $accel, boot $(value boot time) s"
if [ -n "$write" ]; then
    echo "run: verify: $(value verify read_bytes) bytes written and verified" \
         "($(value verify bandwidth) MB/s), $(value verify errors) verify errors"
else
    echo "run: read pass: $(value read-pass read_bytes) bytes read" \
         "($(value read-pass bandwidth) MB/s), $(value read-pass errors) errors"
fi
echo "run: 4K random read QD1: $(value randread-qd1 iops) IOPS," \
     "latency p50 $(value randread-qd1 lat_p50) us, p99 $(value randread-qd1 lat_p99) us"
if [ "$status" = 0 ]; then
    echo "run: PASSED"
else
    echo "run: FAILED (log: ${out#"$top"/}/run.log)"
fi
exit "$status"
