#!/usr/bin/env bash
# Does the series apply to a newer upstream QEMU? A reviewer applies it
# to master with `git am -3`; this does the same with the newest QEMU
# release whose source Debian's archive still serves (sid, forky,
# experimental, trixie-backports; the pool keeps only current versions).
#
# Imports that release into build/upstream/src as one commit, fetches
# build/src (the base and the series' commits, whose blobs `git am -3`
# needs for its three-way merge, as a reviewer who fetched the branch
# has them), then applies build/series/ patch by patch. A patch that
# conflicts is reported with its files, and the survey goes on with
# that commit cherry-picked with -X theirs, so that later patches are
# tried on top of something close to what a resolved port would hold.
# Nothing is built: a conflict-free result still needs `make` on top.
#
# usage: upstream-check.sh TOP          exit 1 if any patch conflicts
set -euo pipefail

top=$(realpath "$1")
src=$top/build/src
series=$top/build/series
work=$top/build/upstream
. "$top/base.conf"
. "$top/scripts/apt-source.sh"

die() { echo "upstream-check: error: $*" >&2; exit 2; }

[ -d "$src/.git" ] && [ -d "$series" ] || die "run 'make series' first"
uri=$(debian_uri | head -n 1)
[ -n "$uri" ] || die "no Debian entry in /etc/apt"

rm -rf "$work"
mkdir -p "$work"
apt_source_setup "$work/apt" "$uri" sid forky experimental trixie-backports ||
    die "apt-get update failed"

# The newest version whose orig tarball the pool still has
tarball=
while read -r version; do
    upstream=${version#*:}
    upstream=${upstream%-*}
    # Older than that is no newer upstream
    [ "qemu_$upstream.orig.tar.xz" = "$ORIG_TARBALL" ] && break
    if apt_source_fetch "$work/apt" "$DEB_SOURCE_PACKAGE=$version" \
                        "qemu_$upstream.orig.tar.xz" "$work/orig.tar.xz"; then
        tarball=$work/orig.tar.xz
        break
    fi
    echo "upstream-check: $version is listed but not in the pool; trying older"
done < <(apt_source_versions "$work/apt" "$DEB_SOURCE_PACKAGE")
[ -n "$tarball" ] || die "no newer QEMU source than $QEMU_VERSION reachable"
release=${upstream%+ds}
echo "upstream-check: QEMU $release (Debian $version)"

apt_source_git_tree "$tarball" "$work/src" upstream-check \
    "QEMU $release ($DEB_SOURCE_PACKAGE $version)"
cd "$work/src"
git fetch -q "$src" refs/tags/base:refs/tags/base HEAD:refs/heads/series

mapfile -t commits < <(git rev-list --reverse base..series)
mapfile -t patches < <(ls "$series"/0*.patch | grep -v /0000-cover-letter)
[ ${#commits[@]} = ${#patches[@]} ] ||
    die "build/series does not match build/src; run 'make series'"

conflicts=0
for i in "${!patches[@]}"; do
    name=$(basename "${patches[$i]}")
    if git am -3 -q "${patches[$i]}" > "$work/am.log" 2>&1; then
        echo "  applied   $name"
        continue
    fi
    conflicts=$((conflicts + 1))
    files=$(git diff --name-only --diff-filter=U | tr '\n' ' ')
    echo "  CONFLICT  $name: ${files:-$(tail -n 3 "$work/am.log" | head -n 1)}"
    git am --abort
    git cherry-pick --allow-empty -X theirs "${commits[$i]}" > /dev/null 2>&1 || {
        git add -A && git -c core.editor=true cherry-pick --continue > /dev/null
    }
done
echo "upstream-check: QEMU $release: $((${#patches[@]} - conflicts)) of" \
     "${#patches[@]} patches apply with git am -3, $conflicts conflict"
[ $conflicts = 0 ]
