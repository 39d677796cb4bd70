#!/usr/bin/env bash
# `make bench`: stock against fork, measured side by side in one run.
#
# Every cell (one workload on one binary) runs REPS times, interleaved in
# ABBA order: the runs of a repetition go stock, fork, fork, stock,
# stock, fork, ... and each cell's order flips from one repetition to the
# next, so that neither build always runs first and a drift of the
# machine hits both alike. Each measuring script prints
# `<cell> <metric> <value> <unit>` lines; they are collected in a TSV and
# turned into docs/benchmarks.md and docs/benchmarks.png by report.py
# (median, min, max, fork/stock).
#
#   QUICK=1   a smoke run: one repetition of a few cells (of ONLY's cells
#             if ONLY is set); results go to build/bench/ only, docs/ is
#             left alone
#   AA=1      stock against stock, to measure the noise of each row
#   ONLY=RE   only the cells whose name matches the regular expression
#             (results go to build/bench/ only)
#   REPS=N    repetitions per cell (default 5)
#
# usage: run.sh TOP
set -euo pipefail

top=$1
here=$top/scripts/bench
stock=$top/build/stock/build
fork=$top/build/fork
out=$top/build/bench
mkdir -p "$out"

if [ -n "${AA:-}" ]; then
    kind=aa labels=(stock-a stock-b) builds=("$stock" "$stock")
else
    kind=stock-fork labels=(stock fork) builds=("$stock" "$fork")
fi
if [ -n "${QUICK:-}" ]; then
    reps=1 docs=$out
else
    reps=${REPS:-5} docs=$top/docs
fi

# name|command; {build} is the build directory, {qemu} its system emulator.
# A name ending in "=" marks an exact measurement (callgrind on a run with
# no timing in it), which runs in the first repetition only.
cells=(
    "p1-read|$here/p1.sh {build} read"
    "p1-write|$here/p1.sh {build} write"
    "p1-read-instr=|$here/p1.sh {build} read --callgrind"
    "p1-write-instr=|$here/p1.sh {build} write --callgrind"
    "p1-read-allocs=|$here/p1.sh {build} read --allocs"
    "p1-write-allocs=|$here/p1.sh {build} write --allocs"
)
# P2: each workload on both backends, the iothread polling (QEMU's
# default) and not (poll-max-ns=0, "-poll0"); instructions on null-co.
p2="$here/p2.sh {qemu}"
for w in randread-qd1 randread-qd32 seqwrite-qd32 randrw-qd32 \
         randread64k-qd16 seqwrite-flush32-qd32 randrw-discard-qd32; do
    for backend in null shm; do
        for poll in "" -poll0; do
            cells+=("p2-$w-$backend$poll|$p2 $w $backend${poll:+ --poll0}")
        done
    done
done
for w in randread-qd1 randread-qd32 seqwrite-qd32; do
    for poll in "" -poll0; do
        opts="${poll:+--poll0 }--callgrind"
        cells+=("p2-callgrind-$w-null$poll|$p2 $w null $opts")
    done
done
# P3: the guest on null-co, P4: on a raw file in /dev/shm, P5: both with
# iothread poll-max-ns=0 (no busy polling).
guest_cells=("p3-guest-null|null default" "p4-guest-shm|shm default"
             "p5-guest-null-poll0|null 0" "p5-guest-shm-poll0|shm 0")
for g in "${guest_cells[@]}"; do
    cells+=("${g%%|*}|env GUEST_RUNTIME=3 $here/guest.sh {qemu} ${g#*|}")
done
# P6: the guest on null-co with the fork's notification coalescing (stock
# runs without: the row reads stock off against fork on; P3 has fork off).
# The threshold sits between what QD1 and QD32 reach under TCG here.
cells+=("p6-guest-null-coalesce|env GUEST_RUNTIME=3"\
" GUEST_JOBS=randread-qd1,randread-qd32 $here/guest.sh {qemu} null default"\
" coalesce-delay-us=100,coalesce-iops-threshold=10000")

# QUICK's cells: every P2 workload on null-co, polling and not, one shm
# cell, the instructions of one workload, the guest on null-co.
select=${ONLY:-}
[ -n "$select" ] && docs=$out
[ -n "${QUICK:-}" ] && [ -z "$select" ] &&
    select='^p1-|^p2-(rand|seq)[a-z0-9-]*-null(-poll0)?$|^p2-randread-qd1-shm$'\
'|^p2-callgrind-randread-qd32-null|^p3-guest-null$'
if [ -n "$select" ]; then
    for i in "${!cells[@]}"; do
        [[ ${cells[$i]%%|*} =~ $select ]] || unset "cells[$i]"
    done
    cells=("${cells[@]}")
fi
[ ${#cells[@]} -gt 0 ] || {
    echo "bench: no cell matches '$select'" >&2
    exit 1
}

tsv=$out/$kind.tsv.tmp
: > "$tsv"
nexact=$(printf '%s\n' "${cells[@]}" | grep -c '^[^|]*=|' || true)
ncells=$(( (${#cells[@]} * reps - nexact * (reps - 1)) * 2 ))
i=0
start=$SECONDS
for rep in $(seq 1 "$reps"); do
    for c in "${!cells[@]}"; do
        cell=${cells[$c]}
        name=${cell%%|*}
        if [ "${name%=}" != "$name" ]; then
            [ "$rep" = 1 ] || continue
            name=${name%=}
        fi
        order=(0 1)
        (( (c + rep) % 2 )) || order=(1 0)
        for b in "${order[@]}"; do
            i=$((i + 1))
            cmd=${cell#*|}
            cmd=${cmd//\{build\}/${builds[$b]}}
            cmd=${cmd//\{qemu\}/${builds[$b]}/qemu-system-x86_64}
            printf 'bench: [%d/%d] %s rep %d %s ... ' $i $ncells \
                "$name" "$rep" "${labels[$b]}"
            t0=$SECONDS
            if ! lines=$($cmd 2> "$out/last-error.log"); then
                echo "failed"
                cat "$out/last-error.log" >&2
                exit 1
            fi
            # A script that measures several jobs in one cell (the guest)
            # names the job first: it becomes part of the row's name.
            awk -v l="${labels[$b]}" -v r="$rep" -v c="$name" '
                $1 == "accel" { print l "\t" r "\t" c "\taccel\t" $2 "\t"; next }
                NF >= 3 {
                    row = index(c, $1) ? c : c ":" $1
                    print l "\t" r "\t" row "\t" $2 "\t" $3 "\t" $4
                }' <<< "$lines" >> "$tsv"
            echo "$(awk 'NF >= 3 && $2 != "accel" { printf "%s=%s ", $2, $3 }' <<< "$lines" |
                    cut -c1-80)($((SECONDS - t0))s)"
        done
    done
done
mv "$tsv" "$out/$kind.tsv"

# What the report states about the run.
{
    echo "date	$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpu	$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "nproc	$(nproc)"
    echo "kernel	$(uname -r)"
    echo "command	make bench${QUICK:+ QUICK=1}${AA:+ AA=1}${ONLY:+ ONLY=$ONLY}${REPS:+ REPS=$REPS}"
    echo "reps	$reps"
    echo "seconds	$((SECONDS - start))"
    for cell in "${cells[@]}"; do
        name=${cell%%|*}
        echo "cell	${name%=}	${cell#*|}" | sed "s|$top/||g"
    done
} > "$out/$kind.meta"

if [ "$docs" = "$top/docs" ]; then
    mkdir -p "$top/docs/bench-data"
    cp "$out/$kind.tsv" "$out/$kind.meta" "$top/docs/bench-data/"
    data=$top/docs/bench-data
else
    data=$out
fi
python3 "$here/report.py" "$data" "$docs"
echo "bench: $((SECONDS - start)) s; wrote ${docs#"$top"/}/benchmarks.md and benchmarks.png"
