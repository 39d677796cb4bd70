#!/usr/bin/env bash
# Build the test guest from Debian packages: build/guest/vmlinuz (bookworm's
# 6.1 cloud kernel) and build/guest/initramfs.img (busybox-static, the
# kernel's virtio modules, the host's fio with its libraries, and an /init
# that runs the fio jobs the host passes in fw_cfg).
#
# The kernel and busybox .debs are fetched with `apt-get download` into
# build/guest/debs and unpacked, never installed. Nothing is rebuilt when
# this script, the package versions and fio are unchanged.
#
# usage: build-guest.sh TOP
set -euo pipefail

die() { echo "build-guest: error: $*" >&2; exit 1; }

[ $# = 1 ] || die "usage: build-guest.sh TOP"
[ -d "$1/scripts/guest" ] || die "'$1' is not the top of the repository"
top=$(cd "$1" && pwd)
out=$top/build/guest
debs=$out/debs
# The guest's modules: the block device, its PCI transport, and fw_cfg in
# sysfs (the job file comes that way).
modules=(virtio_pci virtio_blk qemu_fw_cfg)

[ -x /usr/bin/fio ] || die "/usr/bin/fio is missing (run ./configure)"

candidate() {   # the version apt would install of package $1
    local v
    v=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }')
    case $v in
    ''|'(none)') die "apt has no candidate for $1 (run apt-get update)" ;;
    esac
    echo "$v"
}

# The metapackage points at the versioned kernel package of the day.
kernel_pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
             awk '/Depends: linux-image-6\.1\..*-cloud-amd64$/ { print $2; exit }')
[ -n "$kernel_pkg" ] ||
    die "apt knows no 6.1 linux-image-cloud-amd64 (bookworm); run apt-get update"
kernel_ver=$(candidate "$kernel_pkg")
busybox_ver=$(candidate busybox-static)
fio_ver=$(dpkg-query -W -f='${Version}' fio)

stamp=$out/.inputs
inputs="$(sha256sum "$0" | cut -d' ' -f1) $kernel_pkg=$kernel_ver busybox-static=$busybox_ver fio=$fio_ver"
if [ -f "$out/vmlinuz" ] && [ -f "$out/initramfs.img" ] &&
   [ "$(cat "$stamp" 2>/dev/null)" = "$inputs" ]; then
    echo "build-guest: up to date ($kernel_pkg $kernel_ver)"
    exit 0
fi

# Fetch a package's .deb once; print its path. apt writes ':' as %3a.
fetch() {   # fetch PACKAGE VERSION
    local deb=$debs/${1}_${2/:/%3a}_amd64.deb
    if [ ! -f "$deb" ]; then
        (cd "$debs" && apt-get -q -o APT::Sandbox::User=root download "$1=$2" >/dev/null) ||
            die "apt-get download $1=$2 failed"
    fi
    [ -f "$deb" ] || die "apt-get download $1=$2 did not write $deb"
    echo "$deb"
}

mkdir -p "$debs"
kernel_deb=$(fetch "$kernel_pkg" "$kernel_ver")
busybox_deb=$(fetch busybox-static "$busybox_ver")

work=$(mktemp -d "$out/work.XXXXXX")
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$kernel_deb" "$work/kernel"
dpkg-deb -x "$busybox_deb" "$work/busybox"
busybox=$work/busybox/bin/busybox
kver=${kernel_pkg#linux-image-}
kmods=$work/kernel/lib/modules/$kver
[ -f "$work/kernel/boot/vmlinuz-$kver" ] || die "$kernel_pkg holds no boot/vmlinuz-$kver"

root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp}
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"

# fio and the libraries it loads, at the paths the dynamic loader uses.
cp /usr/bin/fio "$root/usr/bin/fio"
for lib in $(ldd /usr/bin/fio | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done

# The package ships no modules.dep (depmod runs at install): busybox's
# depmod makes one. Modules it lists as built in need nothing.
"$busybox" depmod -b "$work/kernel" "$kver"
: > "$root/etc/modules"
for m in "${modules[@]}"; do
    line=$(grep -E "/$m\.ko:" "$kmods/modules.dep") || {
        grep -q "/$m\.ko$" "$kmods/modules.builtin" ||
            die "$kver has no module $m"
        continue
    }
    # modules.dep lists a module's dependencies deepest last: load reversed.
    for ko in $(echo "${line#*:}" | tr ' ' '\n' | tac) "${line%%:*}"; do
        grep -qxF "$ko" "$root/etc/modules" && continue
        mkdir -p "$root/lib/modules/$(dirname "$ko")"
        cp "$kmods/$ko" "$root/lib/modules/$ko"
        echo "$ko" >> "$root/etc/modules"
    done
done

# /init: the job file comes in fw_cfg (opt/guest/jobs); each of its
# sections runs on its own between markers, and the host acknowledges
# each marker with a line on the console, so that it can sample its
# counters exactly at the job's start and end. The end marker carries
# fio's exit status and the interrupts the disk's request queues raised
# during the job (its MSI-X vectors, virtioN-req.M, in /proc/interrupts).
cat > "$root/init" <<'EOF'
#!/bin/sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /etc/modules); do insmod "/lib/modules/$m" || echo "@@guest insmod $m failed"; done
# From here on only the markers and results go to the console (the host's
# acknowledgements are not echoed).
dmesg -n 1
stty -echo
jobs=/sys/firmware/qemu_fw_cfg/by_name/opt/guest/jobs/raw
echo "@@guest boot $(uname -r), /dev/vda: $(cat /sys/block/vda/size) sectors"
irqs() {
    awk '/virtio[0-9]+-req/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i }
         END { print n + 0 }' /proc/interrupts
}
for job in $(sed -n 's/^\[\(.*\)\]$/\1/p' "$jobs" | grep -vx global); do
    echo "@@guest begin $job"
    read -r ack
    before=$(irqs)
    fio --eta=never --section="$job" --output-format=json --output="/tmp/$job.json" "$jobs"
    rc=$?
    echo "@@guest end $job $rc $(($(irqs) - before))"
    read -r ack
    echo "@@guest json $job"
    cat "/tmp/$job.json"
    echo "@@guest json-end"
done
echo "@@guest done"
poweroff -f
EOF
chmod +x "$root/init"

# Uncompressed: under TCG the guest boots ~1.5 s sooner than with gzip -1.
(cd "$root" && find . | "$busybox" cpio -o -H newc) > "$work/initramfs.img"
mv "$work/initramfs.img" "$out/initramfs.img"
cp "$work/kernel/boot/vmlinuz-$kver" "$out/vmlinuz"
echo "$inputs" > "$stamp"
echo "build-guest: built vmlinuz ($kernel_pkg $kernel_ver) and initramfs.img" \
     "($(( $(stat -c %s "$out/initramfs.img") >> 20 )) MiB)"
