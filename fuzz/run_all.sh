#!/usr/bin/env bash
# Builds the fuzz targets once, then runs each for SECONDS (default 600), one after the other, at
# the lowest CPU priority, on the seeded corpora (fuzz/seed_corpora.sh). The built binaries run
# directly, so edits made meanwhile do not trigger rebuilds mid-run. Logs: fuzz/logs/<target>.log
# (libFuzzer's totals at the end: stat::number_of_executed_units, ...), fuzz/logs/summary.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
mkdir -p fuzz/logs fuzz/artifacts
[ "${SKIP_BUILD:-0}" = 1 ] || nice -n 19 cargo +nightly fuzz build || exit 1
bin=fuzz/target/x86_64-unknown-linux-gnu/release
for target in npy cfl nifti png measurement_toml; do
  mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
  echo "$(date -u +%H:%M:%S) $target: start, ${seconds}s" >>fuzz/logs/summary.txt
  nice -n 19 "$bin/$target" -artifact_prefix="fuzz/artifacts/$target/" -max_total_time="$seconds" \
    -rss_limit_mb=2048 -print_final_stats=1 "fuzz/corpus/$target" >"fuzz/logs/$target.log" 2>&1
  status=$?
  echo "$(date -u +%H:%M:%S) $target: exit $status, $(grep -E '^stat::number_of_executed_units' "fuzz/logs/$target.log")" >>fuzz/logs/summary.txt
done
