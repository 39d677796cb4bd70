#!/usr/bin/env bash
# Assemble the fork's source tree as a git repository in build/src:
#
#   base        the pristine orig tarball, tagged `base`
#   fork-files  the fork's own files (hw/, block/, util/, include/, tests/
#               of this repository), tagged `fork-files`
#   patches     patches/series applied in order, one commit each
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

die() { echo "assemble: error: $*" >&2; exit 1; }

# Fixed identities and dates keep the hashes of base and fork-files stable.
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

# Our own files, as they are in this repository's work tree.
(cd "$top" && find hw block util include tests -type f 2>/dev/null | LC_ALL=C sort) |
while read -r f; do
    blob=$(git hash-object -w --path="$f" "$top/$f")
    mode=100644
    [ -x "$top/$f" ] && mode=100755
    git update-index --add --cacheinfo "$mode,$blob,$f"
done
head=$(GIT_AUTHOR_NAME=$FORK_AUTHOR_NAME GIT_AUTHOR_EMAIL=$FORK_AUTHOR_EMAIL \
       git commit-tree "$(git write-tree)" -p base -F - <<MSG
fork: add the fork's own files

The files the fork adds to QEMU. They live at their QEMU paths in the
fork's repository and come first, so that every later patch, including
the ones that wire them into the build, builds on its own.

Signed-off-by: $FORK_AUTHOR_NAME <$FORK_AUTHOR_EMAIL>
MSG
)
git tag -f fork-files "$head" >/dev/null

# The series, applied like `git am`, with the patch's author and date.
while read -r name; do
    case "$name" in ''|'#'*) continue ;; esac
    patch=$top/patches/$name
    [ -f "$patch" ] || die "patches/series names $name, which does not exist"
    git mailinfo "$msgdir/msg" "$msgdir/diff" < "$patch" > "$msgdir/info"
    git apply --cached "$msgdir/diff" || die "patches/$name does not apply"
    field() { sed -n "s/^$1: //p" "$msgdir/info"; }
    head=$(GIT_AUTHOR_NAME=$(field Author) GIT_AUTHOR_EMAIL=$(field Email) \
           GIT_AUTHOR_DATE=$(field Date) GIT_COMMITTER_DATE=$(field Date) \
           git commit-tree "$(git write-tree)" -p "$head" \
               -F <(field Subject; echo; cat "$msgdir/msg"))
done < "$top/patches/series"

unset GIT_INDEX_FILE
git reset -q --hard "$head"
echo "$head" > "$stamp"
echo "assemble: build/src at $(git log -1 --format='%h %s')"
