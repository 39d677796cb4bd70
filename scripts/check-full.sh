#!/usr/bin/env bash
# The long check, not part of `make check`: qemu-iotests -g auto for
# qcow2 (the group upstream's `make check-block` runs) on stock and on
# the fork, then the rule the fork must keep: no test that passes on
# stock fails on the fork. Each build's results stay in
# build/check-full/{stock,fork}.log (check.sh's summary lines).
#
# usage: check-full.sh TOP            exit 1 on a fork-only failure
set -uo pipefail

top=$(realpath "$1")
out=$top/build/check-full
suite=iotests-qcow2-auto
mkdir -p "$out"

for which in stock fork; do
    echo "check-full: $suite on $which"
    "$top/scripts/check.sh" "$top" "$which" "$suite" | tail -n 7
    cp "$top/build/check-$which/summary.log" "$out/$which.log"
done

# Summary lines: "RESULT SUITE TEST  # detail"
result_of() {   # result_of LOG: "TEST RESULT" per line
    awk '{ print $3, $1 }' "$1" | sort
}
new_failures=$(join <(result_of "$out/stock.log") <(result_of "$out/fork.log") |
               awk '$2 == "pass" && $3 == "fail" { print $1 }')
read -r pass fail skip < <(awk '{ n[$1]++ }
    END { print n["pass"] + 0, n["fail"] + 0, n["skip"] + 0 }' "$out/fork.log")
echo "check-full: stock $(awk '$1 == "fail"' "$out/stock.log" | wc -l) failed;" \
     "fork-only failures: ${new_failures:-none}" | tr '\n' ' '
echo
echo "$pass passed, $fail failed, $skip skipped"
[ -z "$new_failures" ]
