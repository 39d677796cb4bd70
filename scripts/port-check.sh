#!/usr/bin/env bash
# Check the port of the series to a newer upstream QEMU (port/VERSION/):
# fetch that release's orig tarball through apt (pinned by sha256 in
# port/VERSION/base.conf), apply the port's patches with `git am` in
# build/port/src, build it in build/port/build with the fork's configure
# flags, and run scripts/check.sh's firmware, qos and unit suites on it.
#
# The port is what a reviewer applies to master: the series of patches/
# rebased on the newer release, conflicts resolved by hand (see
# port/VERSION/README.md). It is kept by hand too: after the series
# changes, the port is brought up to date the same way.
#
# usage: port-check.sh TOP VERSION
set -euo pipefail

top=$(realpath "$1")
version=$2
port=$top/port/$version
work=$top/build/port
. "$port/base.conf"
. "$top/scripts/apt-source.sh"

die() { echo "port-check: error: $*" >&2; exit 2; }
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

[ -f "$port/series" ] || die "no port/$version/series"

# 10.1 and later build their device trees: the +ds tarball has no .dtb
if ! command -v dtc > /dev/null; then
    echo "port-check: installing device-tree-compiler"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -q -y install \
        --no-install-recommends device-tree-compiler > /dev/null ||
        die "apt-get install device-tree-compiler failed"
fi

cache_dir=${QEMU_FORK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qemu-fork}
tarball=$cache_dir/$ORIG_TARBALL
mkdir -p "$cache_dir"
if [ "$(sha256sum "$tarball" 2> /dev/null | cut -d' ' -f1)" != "$ORIG_SHA256" ]; then
    uri=$(debian_uri | head -n 1)
    [ -n "$uri" ] || die "no Debian entry in /etc/apt"
    apt=$(mktemp -d)
    trap 'rm -rf "$apt"' EXIT
    # shellcheck disable=SC2086 # the suites are words
    apt_source_setup "$apt" "$uri" $DEB_SOURCE_SUITES ||
        die "apt-get update failed"
    apt_source_fetch "$apt" "$DEB_SOURCE_PACKAGE=$DEB_SOURCE_VERSION" \
                     "$ORIG_TARBALL" "$tarball.tmp" ||
        die "cannot fetch $DEB_SOURCE_PACKAGE $DEB_SOURCE_VERSION (Debian's pool keeps only current versions)"
    [ "$(sha256sum "$tarball.tmp" | cut -d' ' -f1)" = "$ORIG_SHA256" ] ||
        die "$ORIG_TARBALL has the wrong sha256"
    mv "$tarball.tmp" "$tarball"
fi

rm -rf "$work/src"
apt_source_git_tree "$tarball" "$work/src" port-check \
    "QEMU $QEMU_VERSION ($DEB_SOURCE_PACKAGE $DEB_SOURCE_VERSION)"
cd "$work/src"
# What port/VERSION/README.md exports the port from: upstream-VERSION..master
git tag "upstream-$QEMU_VERSION"
n=0
while read -r patch; do
    git am -q "$port/$patch" ||
        die "$patch does not apply to QEMU $QEMU_VERSION"
    n=$((n + 1))
done < "$port/series"
echo "port-check: $n patches applied to QEMU $QEMU_VERSION"

if [ ! -f "$work/build/config.status" ]; then
    "$top/scripts/qemu-configure.sh" "$work/src" "$work/build"
fi
ninja -C "$work/build" qemu-system-x86_64 qemu-img \
    storage-daemon/qemu-storage-daemon tests/qtest/qos-test \
    tests/unit/test-block-backend tests/unit/test-aio tests/unit/test-coroutine \
    tests/unit/test-bdrv-drain tests/unit/test-block-iothread \
    tests/unit/test-throttle tests/unit/test-aio-multithread \
    tests/unit/test-blockjob tests/unit/test-blk-aio
"$top/scripts/check.sh" "$top" port
