#!/usr/bin/env bash
# Assemble the fork's source tree as a git repository in build/src:
#
#   base        the pristine orig tarball, tagged `base`
#   patches     patches/series applied in order, one commit each; a line
#               of the series also names the fork's own files (hw/, block/,
#               util/, include/, tests/ of this repository) that its commit
#               adds, so that a new file and its wiring land together
#
# The new history is built with a private index, without a checkout, and
# the work tree is then moved to it with `git reset --hard`, which rewrites
# only the files whose content changed: an incremental build after editing
# one file recompiles only what depends on that file.
#
# usage: assemble.sh TOP TARBALL
set -euo pipefail

top=$1
tarball=$2
src=$top/build/src
stamp=.git/fork-assembled       # commit the last assembly produced

. "$top/base.conf"
. "$top/scripts/lib.sh"

die() { echo "assemble: error: $*" >&2; exit 1; }

# A fixed identity and date keep the hash of base stable.
export GIT_AUTHOR_NAME="QEMU fork assembly" GIT_AUTHOR_EMAIL="fork@localhost"
export GIT_COMMITTER_NAME="QEMU fork assembly" GIT_COMMITTER_EMAIL="fork@localhost"
export GIT_AUTHOR_DATE="2000-01-01T00:00:00Z" GIT_COMMITTER_DATE="2000-01-01T00:00:00Z"

if [ ! -d "$src/.git" ]; then
    echo "assemble: unpacking $ORIG_TARBALL"
    rm -rf "$src.tmp"
    mkdir -p "$src.tmp"
    tar -xf "$tarball" -C "$src.tmp" --strip-components=1
    (
        cd "$src.tmp"
        git init -q -b master
        git config core.autocrlf false
        git config gc.auto 0
        git add -A -f .
        git commit -q --no-verify -m "QEMU $QEMU_VERSION ($ORIG_TARBALL)"
        git tag base
        git rev-parse HEAD > "$stamp"
    )
    mv "$src.tmp" "$src"
fi

cd "$src"

# Refuse to drop work done in build/src that was not exported.
if [ -n "$(git status --porcelain --untracked-files=no)" ] ||
   [ "$(git rev-parse HEAD)" != "$(cat "$stamp")" ]; then
    die "build/src has changes that are not exported: run 'make export' (or 'make reset-src' to drop them)"
fi

index=$(mktemp)
msgdir=$(mktemp -d)
trap 'rm -rf "$index" "$msgdir"' EXIT
export GIT_INDEX_FILE=$index
git read-tree base
head=$(git rev-parse base)

# Every own file must belong to a patch, or it would silently not build.
listed=$(series_own_files "$top/patches/series")
own_files "$top" | while read -r f; do
    grep -qxF "$f" <<< "$listed" ||
        die "$f is not listed in patches/series (add it after the patch that wires it in)"
done

# Each line of patches/series: a patch, applied like `git am` with its
# author and date, plus the fork's own files that the commit adds, taken
# from this repository's work tree.
while read -r name files; do
    case "$name" in ''|'#'*) continue ;; esac
    patch=$top/patches/$name
    [ -f "$patch" ] || die "patches/series names $name, which does not exist"
    git mailinfo "$msgdir/msg" "$msgdir/diff" < "$patch" > "$msgdir/info"
    if [ -s "$msgdir/diff" ]; then
        git apply --cached "$msgdir/diff" || die "patches/$name does not apply"
    fi
    for f in $files; do
        [ -f "$top/$f" ] || die "patches/series: $f (for $name) does not exist"
        blob=$(git hash-object -w --path="$f" "$top/$f")
        mode=100644
        [ -x "$top/$f" ] && mode=100755
        git update-index --add --cacheinfo "$mode,$blob,$f"
    done
    field() { sed -n "s/^$1: //p" "$msgdir/info"; }
    head=$(GIT_AUTHOR_NAME=$(field Author) GIT_AUTHOR_EMAIL=$(field Email) \
           GIT_AUTHOR_DATE=$(field Date) GIT_COMMITTER_DATE=$(field Date) \
           git commit-tree "$(git write-tree)" -p "$head" \
               -F <(field Subject; echo; cat "$msgdir/msg"))
done < "$top/patches/series"

unset GIT_INDEX_FILE
git reset -q --hard "$head"
git tag -f assembled "$head" >/dev/null
echo "$head" > "$stamp"
echo "assemble: build/src at $(git log -1 --format='%h %s')"
