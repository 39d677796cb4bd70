#!/usr/bin/env bash
# The fork as an upstream-style patch series.
#
#   series.sh TOP export   write build/series/: `git format-patch` of
#                          base..HEAD of build/src with a cover letter
#                          (patches/cover-letter: subject, then blurb),
#                          and check every patch with the base's
#                          scripts/checkpatch.pl (0 errors, 0 warnings)
#   series.sh TOP check    apply build/series/ with `git am` to a pristine
#                          tree and build after each patch (bisectable)
set -euo pipefail

top=$1
mode=$2
src=$top/build/src
out=$top/build/series

die() { echo "series: error: $*" >&2; exit 1; }

export_series() {
    local p log bad=0
    rm -rf "$out"
    git -C "$src" format-patch -q --zero-commit --no-signature \
        --cover-letter -o "$out" base..HEAD
    subject=$(head -n 1 "$top/patches/cover-letter")
    python3 - "$out"/0000-cover-letter.patch "$subject" \
        "$top/patches/cover-letter" <<'PY'
import sys
path, subject, blurb_file = sys.argv[1:]
blurb = open(blurb_file).read().split('\n', 1)[1].strip()
text = open(path).read()
text = text.replace('*** SUBJECT HERE ***', subject)
text = text.replace('*** BLURB HERE ***', blurb)
open(path, 'w').write(text)
PY
    for p in "$out"/0*.patch; do
        case $p in */0000-cover-letter.patch) continue ;; esac
        log=$(cd "$src" && scripts/checkpatch.pl --no-color "$p" 2>&1) || true
        if ! grep -q '^total: 0 errors, 0 warnings' <<< "$log"; then
            echo "$log"
            bad=$((bad + 1))
        fi
        echo "series: $(basename "$p"): $(grep '^total:' <<< "$log")"
    done
    [ $bad = 0 ] || die "$bad patches are not checkpatch-clean"
    echo "series: $(ls "$out" | wc -l) files in ${out#"$top"/}"
}

check_series() {
    local dir=$top/build/check-series p n=0
    [ -d "$out" ] || die "no build/series: run 'make series' first"
    rm -rf "$dir"
    mkdir -p "$dir"
    git clone -q --shared --no-checkout "$src" "$dir/src"
    git -C "$dir/src" checkout -q -b check base
    for p in "$out"/0*.patch; do
        case $p in */0000-cover-letter.patch) continue ;; esac
        n=$((n + 1))
        git -C "$dir/src" am -q "$p" || die "$(basename "$p") does not apply"
        if [ ! -f "$dir/build/build.ninja" ]; then
            "$top/scripts/qemu-configure.sh" "$dir/src" "$dir/build" ||
                die "configure fails after $(basename "$p")"
        fi
        ninja -C "$dir/build" $NINJA_TARGETS > "$dir/build-$n.log" 2>&1 ||
            die "the build fails after $(basename "$p") (build/check-series/build-$n.log)"
        echo "series: builds after $(basename "$p")"
    done
    echo "series: all $n patches apply and build in turn"
}

case $mode in
export) export_series ;;
check) check_series ;;
*) die "unknown mode $mode" ;;
esac
