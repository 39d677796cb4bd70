#!/usr/bin/env bash
# Fuzz virtio-blk with QEMU's own libFuzzer targets, on stock and on the
# fork, for the same time each, so that both meet the same kind of hostile
# input and any crash can be told apart as upstream's or the fork's.
#
# Builds qemu-fuzz-x86_64 with clang-16, ASan and UBSan (as
# docs/devel/testing/fuzzing.rst recommends) in build/fuzz/{stock,fork},
# then runs each target for SECONDS, one process at a time, niced. Each
# build and target keeps its corpus in build/fuzz/corpus/BUILD/TARGET, so
# a later run goes on from there, and its crashes (crash-, leak-,
# timeout-, oom- files) in build/fuzz/crashes/BUILD/TARGET. libFuzzer
# stops at a crash; the run then starts again until SECONDS are spent.
# Every run appends a line to build/fuzz/results.tsv; the script ends
# with the totals per build and target of all runs so far, as markdown.
#
# Both trees compile with their source bind-mounted at build/fuzz/src in
# a private mount namespace: the compile commands are then the same for
# both, so ccache serves one tree's unchanged files from the other's.
#
# usage: fuzz.sh TOP [SECONDS]      (SECONDS per target and build; 60)
# env:   BUILDS="stock fork"  TARGETS="virtio-blk-flags-fuzz ..."  JOBS=N
set -euo pipefail

top=$(realpath "$1")
secs=${2:-60}
read -ra builds <<< "${BUILDS:-stock fork}"
read -ra targets <<< "${TARGETS:-virtio-blk-fuzz virtio-blk-flags-fuzz generic-fuzz-virtio-blk}"
fuzz=$top/build/fuzz
llvm=/usr/lib/llvm-16
firmware_dirs=(/usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu)
export CCACHE_BASEDIR=$top CCACHE_NOHASHDIR=1

[[ $secs =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: bad SECONDS '$secs'" >&2; exit 2; }

if [ ! -x $llvm/bin/llvm-symbolizer ] || ! command -v ccache > /dev/null ||
   [ ! -e $llvm/lib/clang/16/lib/linux/libclang_rt.fuzzer-x86_64.a ]; then
    apt-get update -qq
    apt-get install -qq -y --no-install-recommends clang-16 llvm-16 \
        libclang-rt-16-dev ccache
fi

src_of() {
    case $1 in
    stock) echo "$top/build/stock/src" ;;
    fork) echo "$top/build/src" ;;
    *) echo "fuzz: unknown build '$1'" >&2; exit 2 ;;
    esac
}

# What was fuzzed (recorded when the binary is built): the fork's commit,
# or stock's version and the commit of this repository whose glue it has.
source_id() {
    if [ "$1" = fork ]; then
        git -C "$(src_of fork)" describe --always --dirty
    else
        echo "$(cat "$(src_of stock)/VERSION")+$(git -C "$top" describe --always --dirty)"
    fi
}

# in_src SRC CMD...: run CMD with SRC mounted at $fuzz/src.
in_src() {
    # shellcheck disable=SC2016 # expanded by sh -c
    unshare --mount --propagation private sh -c \
        'mount --bind "$0" "$1" && shift && exec "$@"' "$1" "$fuzz/src" "${@:2}"
}

build() {
    local src dir flags start=$EPOCHSECONDS
    src=$(src_of "$1")
    dir=$fuzz/$1
    [ -f "$src/configure" ] ||
        { echo "fuzz: no tree in $src (run make, or make stock)" >&2; exit 1; }
    # -Werror as in qemu-configure.sh (so that it cannot flip on a meson
    # regeneration), made harmless by -Wno-error: a new compiler's warning
    # must not stop the fuzzers.
    flags=(--cc="ccache clang-16" --cxx="ccache clang++-16"
           --python=/usr/bin/python3 --target-list=x86_64-softmmu
           --enable-fuzzing --enable-asan --enable-ubsan
           --enable-werror --extra-cflags=-Wno-error --extra-cxxflags=-Wno-error
           --disable-docs --disable-download --disable-install-blobs
           --firmwarepath="$(IFS=:; echo "${firmware_dirs[*]}")")
    mkdir -p "$fuzz/src"
    if [ "$(cat "$dir/fuzz-flags" 2>/dev/null)" != "${flags[*]}" ]; then
        rm -rf "$dir"
        mkdir -p "$dir"
        for d in "${firmware_dirs[@]}"; do
            mkdir -p "$dir/qemu-bundle$(dirname "$d")"
            ln -sfn "$d" "$dir/qemu-bundle$d"
        done
        if ! (cd "$dir" && in_src "$src" ../src/configure "${flags[@]}") \
                > "$dir/configure.log" 2>&1; then
            tail -n 30 "$dir/configure.log"
            echo "fuzz: configure failed in $dir" >&2
            exit 1
        fi
        echo "${flags[*]}" > "$dir/fuzz-flags"
    fi
    echo "fuzz: building $1 in ${dir#"$top"/}"
    in_src "$src" nice -n 10 ninja -C "$dir" ${JOBS:+-j"$JOBS"} qemu-fuzz-x86_64 \
        > "$dir/ninja.log" 2>&1 || { tail -n 30 "$dir/ninja.log"; exit 1; }
    source_id "$1" > "$dir/source-id"
    echo "fuzz: built $1 in $((EPOCHSECONDS - start)) s"
}

# Findings are fatal: libFuzzer then keeps the input that caused them.
export ASAN_OPTIONS=detect_leaks=1:print_summary=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_SYMBOLIZER_PATH=$llvm/bin/llvm-symbolizer

artifacts() {
    find "$1" -maxdepth 1 -type f \
        \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) |
        wc -l
}

# fuzz_one BUILD TARGET: run TARGET for $secs and append to results.tsv.
fuzz_one() {
    local corpus=$fuzz/corpus/$1/$2 crashes=$fuzz/crashes/$1/$2
    local log=$fuzz/logs/$1/$2.log tmp=$fuzz/tmp/$1-$2
    local start=$EPOCHSECONDS spent=0 execs=0 n before out
    mkdir -p "$corpus" "$crashes" "${log%/*}"
    before=$(artifacts "$crashes")
    echo "=== $(date -Is) $1 $(source_id "$1") $2 ${secs}s" >> "$log"
    while [ "$spent" -lt "$secs" ]; do
        rm -rf "$tmp"
        mkdir -p "$tmp"
        # QEMU's own messages (stdout) are dropped; its stderr, where
        # assertions and the sanitizers report, goes to the log.
        out=$(cd "$tmp" && TMPDIR=$tmp nice -n 10 "$fuzz/$1/qemu-fuzz-x86_64" \
                  --fuzz-target="$2" -max_total_time=$((secs - spent)) \
                  -timeout=60 -rss_limit_mb=4096 -close_fd_mask=1 \
                  -print_final_stats=1 -artifact_prefix="$crashes/" \
                  "$corpus" 2>&1 | tee -a "$log" | grep '^stat::') || true
        n=$(sed -n 's/^stat::number_of_executed_units: *//p' <<< "$out")
        if [ -z "$n" ]; then
            echo "fuzz: $1 $2: no stats from libFuzzer; see ${log#"$top"/}" >&2
            break
        fi
        execs=$((execs + n))
        spent=$((EPOCHSECONDS - start))
    done
    rm -rf "$tmp"
    n=$(($(artifacts "$crashes") - before))
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -Is)" "$1" "$(cat "$fuzz/$1/source-id")" \
        "$2" "$spent" "$execs" "$n" "$(find "$corpus" -type f | wc -l)" \
        >> "$fuzz/results.tsv"
    echo "fuzz: $1 $2: ${spent}s, $execs execs, $n crashes"
}

for b in "${builds[@]}"; do
    build "$b"
done
[ -s "$fuzz/results.tsv" ] ||
    printf 'date\tbuild\tsource\ttarget\tseconds\texecs\tcrashes\tcorpus\n' > "$fuzz/results.tsv"
for t in "${targets[@]}"; do
    for b in "${builds[@]}"; do
        fuzz_one "$b" "$t"
    done
done
rm -rf "$fuzz/tmp"

echo
echo "| build | target | runs | CPU s | execs | execs/s | crashes |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
awk -F'\t' 'NR > 1 { k = $2 " | " $4; r[k]++; s[k] += $5; e[k] += $6; c[k] += $7 }
    END { for (k in r) printf "| %s | %d | %d | %d | %.0f | %d |\n",
                              k, r[k], s[k], e[k], e[k] / (s[k] ? s[k] : 1), c[k] }' \
    "$fuzz/results.tsv" | sort
