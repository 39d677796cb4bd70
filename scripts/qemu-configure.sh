#!/usr/bin/env bash
# Configure a QEMU source tree in a build directory, with the flags that
# the fork and stock share (the build directory is made anew).
#
# Firmware comes from Debian's seabios, ipxe-qemu and qemu-system-data
# packages. A binary run from its build directory looks for it relocated
# under qemu-bundle/, so links there point at the packages' directories.
# The compilers go through ccache, which meson does not add by itself to
# the compilers that QEMU's configure names. -Werror is explicit: QEMU's
# configure turns it on for git trees in a meson native file, which wins
# over a command-line --disable-werror as soon as meson regenerates; any
# other choice would differ between stock and fork and flip on the first
# meson.build change, recompiling everything.
#
# Flags after BUILDDIR are added to configure's (e.g. --enable-asan for
# build/asan); fork and stock pass none.
#
# usage: qemu-configure.sh SRC BUILDDIR [CONFIGURE_FLAG...]
set -euo pipefail
src=$1
build=$2
shift 2

firmware_dirs=(/usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu)
flags=(
    --cc="ccache cc" --cxx="ccache c++"
    --python=/usr/bin/python3 --target-list=x86_64-softmmu
    --disable-docs --disable-download --disable-install-blobs
    --enable-linux-aio --enable-linux-io-uring --enable-slirp
    --enable-werror
    --firmwarepath="$(IFS=:; echo "${firmware_dirs[*]}")"
    "$@"
)

rm -rf "$build"
mkdir -p "$build"
cd "$build"
for d in "${firmware_dirs[@]}"; do
    mkdir -p "qemu-bundle$(dirname "$d")"
    ln -sfn "$d" "qemu-bundle$d"
done
if ! "$src/configure" "${flags[@]}" > configure.log 2>&1; then
    tail -n 30 configure.log
    rm -f config.status
    echo "qemu-configure: error: configure failed in $build" >&2
    exit 1
fi
