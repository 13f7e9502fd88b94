#!/usr/bin/env bash
# Runs every fuzz target one after the other for SECONDS each (default 600), at the lowest CPU
# priority, with the seeded corpora (fuzz/seed_corpora.sh). Logs go to fuzz/logs/<target>.log;
# the last lines of each hold libFuzzer's totals (stat::number_of_executed_units, crashes).
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
mkdir -p fuzz/logs
for target in npy cfl nifti png measurement_toml; do
  echo "$(date -u +%H:%M:%S) $target: ${seconds}s" >>fuzz/logs/summary.txt
  nice -n 19 cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 \
    -print_final_stats=1 >"fuzz/logs/$target.log" 2>&1
  echo "$(date -u +%H:%M:%S) $target: exit $?, $(grep -E '^stat::number_of_executed_units' "fuzz/logs/$target.log")" >>fuzz/logs/summary.txt
done
