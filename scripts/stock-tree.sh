#!/usr/bin/env bash
# Unpack stock QEMU into DIR: the pristine base plus the `fork:` patches of
# patches/series that are pure build glue (they only make the base build
# on Debian 12) and the `tests/qtest/fuzz:` patches (the fuzz harness, so
# that `make fuzz` drives both builds alike), so that stock and fork
# differ by the fork's code alone.
#
# usage: stock-tree.sh TOP TARBALL DIR
set -euo pipefail
top=$1 tarball=$2 dir=$3

rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
tar -xf "$tarball" -C "$dir.tmp" --strip-components=1
grep -v '^#' "$top/patches/series" | while read -r name files; do
    [ -n "$name" ] || continue
    if grep -Eq '^Subject: \[PATCH\] (fork|tests/qtest/fuzz): ' \
            "$top/patches/$name"; then
        if grep -q '^diff --git' "$top/patches/$name"; then
            patch -s -d "$dir.tmp" -p1 < "$top/patches/$name"
        fi
        for f in $files; do
            mkdir -p "$dir.tmp/$(dirname "$f")"
            cp -p "$top/$f" "$dir.tmp/$f"
        done
        echo "stock: applied $name"
    fi
done
rm -rf "$dir"
mv "$dir.tmp" "$dir"
