#!/usr/bin/env bash
# Export the work committed in build/src back into this repository:
#   - the files the fork adds under hw/ block/ util/ include/ tests/ (new
#     since `base`) are copied to the same paths here;
#   - every commit after `base` becomes patches/NNNN-*.patch, without the
#     fork's own files, and patches/series lists each patch followed by
#     the own files its commit adds.
# An own file is stored once, in its final form, and lands with the commit
# that adds it; changes a later commit makes to it are folded in there.
# `--zero-commit --no-signature -N` keep a re-export of unchanged commits
# byte-identical.
#
# usage: export.sh TOP
set -euo pipefail

top=$1
src=$top/build/src
. "$top/scripts/lib.sh"

die() { echo "export: error: $*" >&2; exit 1; }
blob() { git rev-parse -q --verify "$1" 2>/dev/null || true; }

cd "$src"
[ -z "$(git status --porcelain --untracked-files=no)" ] ||
    die "build/src has uncommitted changes: commit them first"

mapfile -t own < <(git diff --name-only --diff-filter=A base HEAD -- "${OWN_DIRS[@]}")

# Has build/src ever held blob $1 as file $2 (an earlier export, say)?
known_blob() {
    git log --all --reflog --no-abbrev --format= --raw -- "$2" |
        awk '{ print $4 }' | grep -qx "$1"
}

# Copy the own files out, but never over an edit made in this repository
# since the last assembly (the file then holds what build/src never had).
for f in "${own[@]}"; do
    in_src=$(blob "HEAD:$f")
    assembled=$(blob "assembled:$f")
    here=
    [ -f "$top/$f" ] && here=$(git hash-object "$top/$f")
    [ "$here" = "$in_src" ] && continue
    if [ -n "$here" ] && [ "$here" != "$assembled" ] &&
       ! known_blob "$here" "$f"; then
        [ "$in_src" = "$assembled" ] && continue
        die "$f was changed both here and in build/src"
    fi
    mkdir -p "$top/$(dirname "$f")"
    cp -p "$f" "$top/$f"
done
# Files deleted in build/src go; files new here since the assembly stay.
own_files "$top" | while read -r f; do
    if [ -z "$(blob "HEAD:$f")" ] && [ -n "$(blob "assembled:$f")" ]; then
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
n=0
for c in $(git rev-list --reverse base..HEAD); do
    n=$((n + 1))
    name=$(printf '%04d-%s.patch' $n "$(git log -1 --format=%f "$c" | cut -c1-52)")
    fp=(git format-patch -1 --zero-commit --no-signature -N --stdout "$c")
    "${fp[@]}" -- . "${exclude[@]}" > "$tmp/$name"
    if [ ! -s "$tmp/$name" ]; then
        # only own files: keep the message, the files come from the series
        "${fp[@]}" | sed '/^---$/,$d' > "$tmp/$name"
    fi
    adds=$(git diff --name-only --diff-filter=A "$c^" "$c" |
           grep -xF -f <(printf '%s\n' "${own[@]}") | tr '\n' ' ' || true)
    echo "$name${adds:+ ${adds% }}" >> "$tmp/series"
done

rm -f "$top"/patches/*.patch
cp "$tmp"/*.patch "$top/patches/" 2>/dev/null || true
mv "$tmp/series" "$top/patches/series"

# build/src now holds nothing that is not exported.
git rev-parse HEAD > .git/fork-assembled
echo "export: ${#own[@]} own files, $n patches"
