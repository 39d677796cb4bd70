#!/usr/bin/env bash
# Run the test suites on one build (fork, stock or asan) and count the
# results.
#
#   firmware  the x86 firmware is where the built binary looks for it
#   qos       every virtio-blk qos test of qos-test (upstream's and ours),
#             one process per test path
#   unit      the block-layer unit tests, per test case
#   iotests   qemu-iotests -g quick for raw and qcow2, per test
#             (iotests-qcow2-auto, -g auto, only when asked: make check-full)
#   guest     a Linux guest boots and fio writes and verifies its disk
#             (scripts/guest), so that `make run` and the benchmark work
#   migration (stock only, which has both builds) a VM holding requests
#             migrates stock -> fork and fork -> stock
#
# For stock, qos-test is the fork's binary (so that it holds the fork's own
# tests too) driving stock's qemu-system-x86_64. Tests listed in
# known-failures.txt fail on stock for reasons of this environment; they
# are reported as skipped, not run. Prints one line per suite and the five
# slowest tests, and ends with "N passed, N failed, N skipped"; exits
# non-zero on any failure. build/check-WHICH/summary.log has every test's
# result, with the reason of each skip; the other logs there are each
# test's (or each suite's) output.
#
# asan is the fork built with --enable-asan --enable-ubsan in build/asan
# (its own qos-test included). Any AddressSanitizer, LeakSanitizer or
# UBSan report in a test's log (the qemu child's stderr goes there too)
# fails that test. By default it runs firmware, qos and unit. Not
# iotests: QEMU's meson disables them when sanitizers are on (./check
# compares output with references, and a report would be only a diff);
# they run on the fork in `make check`. Not guest: a TCG boot under the
# sanitizers takes many minutes, for the request path that qos already
# drives request by request.
#
# port is the series ported to a newer upstream release (make check-port,
# scripts/port-check.sh), built in build/port/build with its own qos-test;
# by default firmware, qos and unit.
#
# usage: check.sh TOP fork|stock|asan|port [SUITE...]
set -uo pipefail

top=$1
which=$2
shift 2
suites=("$@")

qos=$top/build/fork/tests/qtest/qos-test
# A qos test takes seconds; one that hangs (stock has such a bug) is cut
# off after this. The sanitizers make the model test 10 times slower.
qos_timeout=120
# qos tests and qemu-iotests run this many at a time (meson runs
# upstream's check-block one test per CPU too).
jobs=$(nproc)
case $which in
fork) build=$top/build/fork ;;
stock) build=$top/build/stock/build ;;
port)
    # The port to a newer upstream (scripts/port-check.sh), with its own
    # qos-test: the fork's tests as the port carries them
    build=$top/build/port/build
    qos=$build/tests/qtest/qos-test
    [ ${#suites[@]} -gt 0 ] || suites=(firmware qos unit)
    ;;
asan)
    build=$top/build/asan
    qos=$build/tests/qtest/qos-test
    qos_timeout=600
    [ ${#suites[@]} -gt 0 ] || suites=(firmware qos unit)
    # Every finding is fatal and leaves a stack in the log. Leaks are
    # checked, in QEMU (qtest ends it with SIGTERM, a clean shutdown, so
    # LeakSanitizer runs at its exit) and in the test programs; upstream
    # leaks outside the fork are suppressed in scripts/asan/lsan.supp, each
    # with its reason. Allocation stacks are unwound the slow way (~15%
    # slower): GLib has no frame pointers, and the fast unwinder drops the
    # frames above g_malloc that say who leaked and that suppressions match.
    export ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:exitcode=66:detect_leaks=1:fast_unwind_on_malloc=0:print_summary=1
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=67
    export LSAN_OPTIONS=exitcode=68:suppressions=$top/scripts/asan/lsan.supp:print_suppressions=0
    ;;
*) echo "check: unknown build $which" >&2; exit 2 ;;
esac
if [ ${#suites[@]} -eq 0 ]; then
    suites=(firmware qos unit iotests-raw iotests-qcow2 guest)
    [ "$which" != stock ] || suites+=(migration)
fi
logs=$top/build/check-$which
unit_tests=(test-block-backend test-aio test-coroutine test-bdrv-drain
            test-block-iothread test-throttle test-aio-multithread
            test-blockjob)
# The fork's own: stock has no code for them to test.
[ "$which" = stock ] || unit_tests+=(test-blk-aio)

rm -rf "$logs"
mkdir -p "$logs"
# Everything the tests leave in TMPDIR (qtest.* images, sockets) goes.
TMPDIR=$(mktemp -d /tmp/fork-check.XXXXXX)
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT

summary=$logs/summary.log
times=$logs/times.tsv
passed=0 failed=0 skipped=0
failures=()

# known-failures.txt: "SUITE TEST  # reason"
skip_reason() {
    awk -v suite="$1" -v test="$2" '
        $1 == suite && $2 == test { sub(/^[^#]*#[ \t]*/, ""); print; exit }
    ' "$top/known-failures.txt"
}

# The TEST field of every known-failures.txt line for SUITE.
known_failures() {   # known_failures SUITE
    awk -v suite="$1" '$1 == suite { print $2 }' "$top/known-failures.txt"
}

# A sanitizer report anywhere in a log (the first one found, or nothing).
sanitizer_report() {   # sanitizer_report LOG
    grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$1"
}

# One test's result; DETAIL (why it was skipped, how it failed) goes to
# the summary.
count() {   # count SUITE TEST RESULT [DETAIL]
    local result=$3
    case $result in
    pass) passed=$((passed + 1)) ;;
    skip) skipped=$((skipped + 1)) ;;
    *) result=fail; failed=$((failed + 1)); failures+=("$1 $2") ;;
    esac
    printf '%-4s %s %s%s\n' "$result" "$1" "$2" "${4:+  # $4}" >> "$summary"
}

# How long one test (or one unit test binary) took, for the slowest five.
took() {   # took SUITE TEST SECONDS
    printf '%s\t%s %s\n' "$3" "$1" "$2" >> "$times"
}

# Seconds since START (an $EPOCHREALTIME), to a tenth.
since() {   # since START
    awk -v s="$1" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.1f", e - s }'
}

# Count the TAP lines of one glib test binary; a crash counts as a failure.
# A test skipped because known-failures.txt lists it (run with -s) is
# reported with the reason given there.
count_tap() {   # count_tap SUITE LOG EXIT
    local line result test reason name
    while read -r line; do
        result=pass
        [[ $line = "not ok "* ]] && result=fail
        line=${line#not }
        line=${line#ok }
        line=${line#* }     # the test number
        test=${line%% # *}
        reason=
        if [[ $line = *" # SKIP"* ]]; then
            result=skip
            reason=$(skip_reason "$1" "$test")
            [ -n "$reason" ] || reason=${line#* # SKIP}
            reason=${reason# }
        fi
        count "$1" "$test" "$result" "$reason"
    done < <(grep -E '^(not )?ok ' "$2")
    name=$(basename "$2" .log)
    if [ "$3" != 0 ] && ! grep -q '^not ok ' "$2"; then
        count "$1" "$name (exit $3)" fail
    elif [ "$which" = asan ] && sanitizer_report "$2" > /dev/null; then
        count "$1" "$name (sanitizer report)" fail
    fi
}

# Every firmware file an x86 machine or a test loads, found in one of the
# directories the binary searches; then a pc machine with NICs that load
# iPXE option ROMs must start.
run_firmware() {
    local qemu=$build/qemu-system-x86_64 f d found
    local files=(bios-256k.bin vgabios-stdvga.bin vgabios-virtio.bin
                 vgabios-cirrus.bin efi-virtio.rom efi-e1000.rom
                 efi-e1000e.rom efi-rtl8139.rom kvmvapic.bin
                 linuxboot_dma.bin multiboot_dma.bin)
    for f in "${files[@]}"; do
        found=
        for d in $("$qemu" -L help 2>> "$logs/firmware-L.log"); do
            [ -r "$d/$f" ] && found=1
        done
        count firmware "$f" "${found:+pass}"
    done
    if [ "$which" = asan ] && sanitizer_report "$logs/firmware-L.log" > /dev/null; then
        count firmware "-L help (sanitizer report)" fail
    fi
    if echo '{"execute":"qmp_capabilities"}{"execute":"quit"}' |
       timeout 60 "$qemu" -M pc -display none -S -qmp stdio -vga std \
           -device virtio-net-pci -device e1000 -device rtl8139 \
           > "$logs/firmware.log" 2>&1 &&
       ! { [ "$which" = asan ] &&
           sanitizer_report "$logs/firmware.log" > /dev/null; }; then
        count firmware "pc machine start" pass
    else
        count firmware "pc machine start" fail
    fi
}

# One qos test path, in the background: its exit status and time go to
# LOG.rc, to be counted in order once all have run.
qos_one() {   # qos_one PATH LOG
    local start=$EPOCHREALTIME rc
    QTEST_QEMU_BINARY=$build/qemu-system-x86_64 QTEST_QEMU_IMG=$build/qemu-img \
        timeout "$qos_timeout" "$qos" --tap -p "$1" > "$2" 2>&1
    rc=$?
    echo "$rc $(since "$start")" > "$2.rc"
}

# A qos test is a qos-test process and a QEMU taking turns on one socket,
# so about one CPU: as many run at a time as there are CPUs.
run_qos() {
    local qemu=$build/qemu-system-x86_64 paths path reason log rc secs i
    mapfile -t paths < <(QTEST_QEMU_BINARY=$qemu "$qos" -l 2> "$logs/qos-list.log" |
        grep -E '^/x86_64/.*/virtio-blk(-pci)?/' | grep -v vhost-user)
    for i in "${!paths[@]}"; do
        [ -z "$(skip_reason qos "${paths[i]}")" ] || continue
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
            wait -n
        done
        qos_one "${paths[i]}" "$logs/qos-$((i + 1)).log" &
    done
    wait
    for i in "${!paths[@]}"; do
        path=${paths[i]}
        reason=$(skip_reason qos "$path")
        if [ -n "$reason" ]; then
            count qos "$path" skip "$reason"
            continue
        fi
        log=$logs/qos-$((i + 1)).log
        read -r rc secs < "$log.rc"
        rm "$log.rc"
        took qos "$path" "$secs"
        if [ "$which" = asan ] && sanitizer_report "$log" > /dev/null; then
            count qos "$path (sanitizer report in ${log##*/})" fail
        elif [ "$rc" = 0 ] && grep -q '^ok .* # SKIP' "$log"; then
            # g_test_skip(): the test found it cannot run here.
            reason=$(sed -n 's/^ok .* # SKIP *//p' "$log" | head -n 1)
            count qos "$path" skip "${reason:-skipped by the test (${log##*/})}"
        elif [ "$rc" = 0 ] && grep -q '^ok ' "$log"; then
            count qos "$path" pass
        else
            count qos "$path" fail
        fi
    done
    # qos-test -l failing (e.g. its graph walk aborting) must not pass as
    # an empty suite.
    [ ${#paths[@]} -gt 0 ] || count qos "(no tests found, see qos-list.log)" fail
    if [ "$which" = asan ] && sanitizer_report "$logs/qos-list.log" > /dev/null; then
        count qos "qos-test -l (sanitizer report)" fail
    fi
}

# known-failures.txt lists a whole binary as "unit/<binary> *", one of its
# test cases as "unit/<binary> /test/path"; glib's -s skips a case.
run_unit() {
    local t log rc reason start case skips
    for t in "${unit_tests[@]}"; do
        reason=$(skip_reason "unit/$t" '*')
        if [ -n "$reason" ]; then
            count "unit/$t" '*' skip "$reason"
            continue
        fi
        skips=()
        while read -r case; do
            skips+=(-s "$case")
        done < <(known_failures "unit/$t")
        log=$logs/$t.log
        start=$EPOCHREALTIME
        (cd "$build" && timeout 900 "tests/unit/$t" --tap "${skips[@]}" > "$log" 2>&1)
        rc=$?
        took unit "$t" "$(since "$start")"
        count_tap "unit/$t" "$log" "$rc"
    done
}

# qemu-iotests of one group (quick unless given) for one format; the
# suite is iotests-FORMAT, or iotests-FORMAT-GROUP for another group.
# ./check's TAP output drops why a
# test did not run and how long it took, so its plain output is read:
# "TEST STATUS [start] [end] TIME (last: TIME) DESCRIPTION", STATUS pass,
# fail or "not run". Tests run in parallel, as upstream's check-block runs
# them (each has its own scratch and socket directory); ./check then
# sometimes writes a result without its newline, so that the next one
# follows on the same line: such a line is split first.
run_iotests() {
    local fmt=$1 group=${2:-quick} suite=iotests-$1${2:+-$2}
    local tests=() t status secs detail rc n=0
    local log=$logs/$suite.log dir=$build/tests/qemu-iotests
    for t in $(cd "$dir" && ./check "-$fmt" -g "$group" -n 2>/dev/null); do
        detail=$(skip_reason "$suite" "$t")
        if [ -n "$detail" ]; then
            count "$suite" "$t" skip "$detail"
        else
            tests+=("$t")
        fi
    done
    [ ${#tests[@]} -gt 0 ] || { count "$suite" "(no tests found)" fail; return; }
    # -g auto is the larger group (make check-full): more time
    (cd "$dir" && timeout $([ "$group" = quick ] && echo 1800 || echo 3600) \
         ./check -j "$jobs" "-$fmt" "${tests[@]}" \
        > "$log" 2>&1)
    rc=$?
    while IFS=$'\t' read -r t status secs detail; do
        n=$((n + 1))
        case $status in
        pass) count "$suite" "$t" pass ;;
        "not run") count "$suite" "$t" skip "$detail" ;;
        *) count "$suite" "$t" fail "$detail" ;;
        esac
        [ "$secs" = ... ] || took "$suite" "$t" "${secs%s}"
    done < <(sed -E 's/.*\r//' "$log" |
             sed -E 's/ +([^ ]+ +(pass|fail|not run) +\[[0-9:]{8}\] +\[)/\n\1/g' |
             sed -nE \
        's/^([^ ]+) +(pass|fail|not run) +\[[0-9:]{8}\] +\[[0-9:]{8}\] +([0-9.]+s|\.\.\.) *(\(last: [0-9.]+s\))? *(.*)$/\1\t\2\t\3\t\5/p')
    # A runner that died or timed out leaves tests without a result.
    if [ $n != ${#tests[@]} ]; then
        count "$suite" "(./check exit $rc: $n results for ${#tests[@]} tests)" fail
    fi
}

# A stopped VM holding requests migrates between stock and the fork, both
# ways, and completes them: the migration stream must not change. The
# fault tests that migrate take the target's binary from
# QTEST_QEMU_BINARY_DST. Stock to fork only with the plain layout: stock
# itself loses the edges of a held request's buffers (the bug patch 0011
# fixes), and migrates them lost. Needs both builds (`make check-stock`).
run_migration() {
    local fork_qemu=$top/build/fork/qemu-system-x86_64
    local stock_qemu=$top/build/stock/build/qemu-system-x86_64
    local runs=("stock fork fault/write-eio-stop-merged-migrate-plain"
                "fork stock fault/write-eio-stop-merged-migrate-plain"
                "fork stock fault/write-eio-stop-merged-migrate")
    local run src dst name path bin dst_bin log rc start

    for run in "${runs[@]}"; do
        read -r src dst name <<< "$run"
        bin=$fork_qemu dst_bin=$stock_qemu
        [ "$src" = fork ] || { bin=$stock_qemu dst_bin=$fork_qemu; }
        path=$(QTEST_QEMU_BINARY=$fork_qemu "$qos" -l 2>/dev/null |
               grep -E "/virtio-blk-pci-tests/$name\$" | head -n 1)
        if [ -z "$path" ] || [ ! -x "$bin" ] || [ ! -x "$dst_bin" ]; then
            count migration "$src->$dst $name" fail "test or binary missing"
            continue
        fi
        log=$logs/migration-$src-$dst-${name##*/}.log
        start=$EPOCHREALTIME
        QTEST_QEMU_BINARY=$bin QTEST_QEMU_BINARY_DST=$dst_bin \
            QTEST_QEMU_IMG=$build/qemu-img \
            timeout "$qos_timeout" "$qos" --tap -p "$path" > "$log" 2>&1
        rc=$?
        took migration "$src->$dst $name" "$(since "$start")"
        if [ "$rc" = 0 ] && grep -q '^ok ' "$log"; then
            count migration "$src->$dst $name" pass
        else
            count migration "$src->$dst $name" fail
        fi
    done
}

# The guest of `make run` on a small disk: it boots, and fio's write+verify
# pass covers the whole disk without an error.
run_guest() {
    local results=$logs/guest.results disk=$TMPDIR/guest.img rc start
    if ! "$top/scripts/guest/build-guest.sh" "$top" > "$logs/guest-build.log" 2>&1; then
        count guest "guest build" fail
        return
    fi
    count guest "guest build" pass
    truncate -s 64M "$disk"
    start=$EPOCHREALTIME
    timeout 300 "$top/scripts/guest/boot.py" --qemu "$build/qemu-system-x86_64" \
        --guest "$top/build/guest" --log "$logs/guest.log" --disk "$disk" \
        --job verify > "$results" 2>&1
    rc=$?
    took guest "boot and fio verify" "$(since "$start")"
    if grep -q '^boot time ' "$results"; then
        count guest boot pass
    else
        count guest boot fail
    fi
    if [ $rc = 0 ] && grep -q '^verify errors 0 ' "$results" &&
       grep -q "^verify read_bytes $((64 << 20)) " "$results"; then
        count guest "fio verify" pass
    else
        count guest "fio verify" fail
    fi
}

for suite in "${suites[@]}"; do
    before=("$passed" "$failed" "$skipped")
    start=$SECONDS
    case $suite in
    firmware) run_firmware ;;
    qos) run_qos ;;
    unit) run_unit ;;
    iotests-raw) run_iotests raw ;;
    iotests-qcow2) run_iotests qcow2 ;;
    iotests-qcow2-auto) run_iotests qcow2 auto ;;
    guest) run_guest ;;
    migration) run_migration ;;
    *) echo "check: unknown suite $suite" >&2; exit 2 ;;
    esac
    printf '%-14s %s: %d passed, %d failed, %d skipped (%ds)\n' "$suite" \
        "$which" $((passed - before[0])) $((failed - before[1])) \
        $((skipped - before[2])) $((SECONDS - start))
done

for f in "${failures[@]}"; do
    echo "FAILED: $f (logs in ${logs#"$top"/})"
done
if [ -s "$times" ]; then
    echo "slowest tests:"
    sort -t $'\t' -k1,1 -rn "$times" | head -n 5 |
        while IFS=$'\t' read -r secs name; do
            printf '  %6.1fs  %s\n' "$secs" "$name"
        done
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
