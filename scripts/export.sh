#!/usr/bin/env bash
# Export the work committed in build/src back into this repository:
#   - files the fork adds under hw/ block/ util/ include/ tests/ (new
#     since `base`) are copied to the same paths here;
#   - every commit after `fork-files` becomes patches/NNNN-*.patch, with
#     the fork's own files left out, and patches/series lists them.
# `git format-patch --zero-commit --no-signature -N` keeps a re-export of
# unchanged commits byte-identical.
#
# usage: export.sh TOP
set -euo pipefail

top=$1
src=$top/build/src
own_dirs=(hw block util include tests)

die() { echo "export: error: $*" >&2; exit 1; }

cd "$src"
[ -z "$(git status --porcelain --untracked-files=no)" ] ||
    die "build/src has uncommitted changes: commit them first"

# The fork's own files: added since base, inside the own directories.
mapfile -t own < <(git diff --name-only --diff-filter=A base HEAD -- "${own_dirs[@]}")

# Copy them out, but never over an edit made in this repository since
# the last assembly (the file then differs from its `fork-files` version).
blob() { git rev-parse -q --verify "$1" 2>/dev/null || true; }
for f in "${own[@]}"; do
    in_src=$(blob "HEAD:$f")
    assembled=$(blob "fork-files:$f")
    here=
    [ -f "$top/$f" ] && here=$(git hash-object "$top/$f")
    [ "$here" = "$in_src" ] && continue
    if [ -n "$here" ] && [ "$here" != "$assembled" ]; then
        [ "$in_src" = "$assembled" ] && continue
        die "$f was changed both here and in build/src"
    fi
    mkdir -p "$top/$(dirname "$f")"
    cp -p "$f" "$top/$f"
done
# Files deleted in build/src go; files new here since the assembly stay.
(cd "$top" && find "${own_dirs[@]}" -type f 2>/dev/null) | while read -r f; do
    if [ -z "$(blob "HEAD:$f")" ] && [ -n "$(blob "fork-files:$f")" ]; then
        rm -f "$top/$f"
        echo "export: removed $f"
    fi
done

exclude=()
for f in "${own[@]}"; do
    exclude+=(":(exclude)$f")
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git format-patch -q --zero-commit --no-signature -N -o "$tmp" \
    fork-files..HEAD -- . "${exclude[@]}"
rm -f "$top"/patches/*.patch
(cd "$tmp" && ls) > "$top/patches/series.tmp"
cp "$tmp"/*.patch "$top/patches/" 2>/dev/null || true
mv "$top/patches/series.tmp" "$top/patches/series"

# build/src now holds nothing that is not exported.
git rev-parse HEAD > .git/fork-assembled
echo "export: ${#own[@]} own files, $(wc -l < "$top/patches/series") patches"
