#!/bin/sh
# Fuzzes the SafeTensors module's readers with libFuzzer and AddressSanitizer:
#   Tests/Fuzz/run.sh [seconds per target]   (default 60)
# Each target starts from a small valid input. Prints the inputs run and the peak memory per
# target; a crash, leak or out-of-bounds access prints the fuzzer's report and makes the
# script exit with status 1.
set -eu
seconds="${1:-60}"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name SafeTensorsFuzz \
  "$here/SafeTensorsFuzzer.swift" "$here"/../../Sources/SafeTensors/*.swift -o "$work/fuzz" 2>/dev/null
mkdir -p "$work/safetensors" "$work/json"
# Seeds: a one-tensor file and a config-like JSON text.
printf '\x40\x00\x00\x00\x00\x00\x00\x00{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}        \x00\x00\x80\x3f' > "$work/safetensors/seed"
printf '{"a": [1, -2.5e3, true, null, "\\u00e9"], "b": {"c": 7}}' > "$work/json/seed"
status=0
for target in safetensors json; do
  echo "== $target, $seconds s"
  if ! FUZZ_TARGET=$target "$work/fuzz" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -print_final_stats=1 "$work/$target" > "$work/$target.log" 2>&1; then
    echo "FAILED: the fuzzer's report follows"
    tail -40 "$work/$target.log"
    status=1
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$work/$target.log" || true
done
rm -rf "$work"
exit $status
