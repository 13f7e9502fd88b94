#!/usr/bin/env bash
# APS against DPS (issue 6) on unseen phantom frames (SEED, default 2028; the prior and the APS
# models were trained on seed 1): 4 complex 64x64 frames, (a) denoising with complex noise
# σ = 0.1 and (b) 4x random-line single-coil MRI (noise 0.01). DPS runs 1000 DDPM steps per frame (one draw,
# the frames batched); APS draws 64 samples per frame and reports their mean and per-pixel std.
# Per-sample times come from each run's config.toml (seconds_per_frame; APS: seconds_per_sample).
# The std maps (uncertainty) of the default seed are copied to docs/aps_uncertainty_<task>.png.
#
#   bash bench/aps_vs_dps.sh [OUT_DIR]     # default bench_out/aps_vs_dps
#   APS_DENOISE=models/... APS_MRI=models/... DPS_STEPS=1000 bash bench/aps_vs_dps.sh
#   ONLY=dps bash bench/aps_vs_dps.sh     # just the DPS runs (ONLY=aps: just APS); finished DPS
#                                         # runs (metrics.json present) are reused unless FORCE=1
#   SEED=2032 TASKS=mri4x bash bench/aps_vs_dps.sh bench_out/aps_vs_dps_2032   # other frames, one task
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench_out/aps_vs_dps}
PRIOR=${PRIOR:-models/cine64-small}
APS_DENOISE=${APS_DENOISE:-models/cine64-aps-denoise}
APS_MRI=${APS_MRI:-models/cine64-aps-mri4x}
DPS_STEPS=${DPS_STEPS:-1000}
SEED=${SEED:-2028}
cargo build --release --quiet --bin cinediff
B=target/release/cinediff
mkdir -p "$OUT"
[ -f "$OUT/truth.npy" ] ||
  $B phantom --complex --frames 4 --size 64 --count 1 --seed "$SEED" --out "$OUT/truth.npy" 2>/dev/null
[ -d "$OUT/denoise" ] ||
  $B simulate --truth "$OUT/truth.npy" --operator denoise --noise 0.1 --seed 0 --out "$OUT/denoise" 2>/dev/null
[ -d "$OUT/mri4x" ] ||
  $B simulate --truth "$OUT/truth.npy" --operator mri --accel 4 --coils 1 --noise 0.01 --seed 0 \
    --out "$OUT/mri4x" 2>/dev/null
echo "task,method,psnr,ssim,seconds_per_sample" > "$OUT/results.csv"
row() { # task method dir per-sample-key
  python3 - "$@" <<'PY' >> "$OUT/results.csv"
import json, sys, tomllib
task, method, d, key = sys.argv[1:5]
m = json.load(open(f"{d}/metrics.json"))["mean"]
c = tomllib.load(open(f"{d}/config.toml", "rb"))
secs = c["settings"][key] if key in c.get("settings", {}) else c[key]
print(f"{task},{method},{m['psnr']:.3f},{m['ssim']:.4f},{secs:.6f}")
PY
}
ONLY=${ONLY:-all}
for task in ${TASKS:-denoise mri4x}; do
  aps=$APS_MRI
  [ "$task" = denoise ] && aps=$APS_DENOISE
  $B reconstruct --bundle "$OUT/$task" --method zero-filled --out "$OUT/$task-zf" --force 2>/dev/null
  row "$task" zero-filled "$OUT/$task-zf" seconds_per_frame
  if [ "$ONLY" != dps ]; then
    $B reconstruct --bundle "$OUT/$task" --method aps --model "$aps" --samples 64 --seed 0 \
      --out "$OUT/$task-aps" --force
    row "$task" aps-mean64 "$OUT/$task-aps" seconds_per_sample
    [ "$SEED" = 2028 ] && cp "$OUT/$task-aps/std.png" "docs/aps_uncertainty_$task.png"
  fi
  if [ "$ONLY" != aps ] && { [ -n "${FORCE:-}" ] || [ ! -f "$OUT/$task-dps/metrics.json" ]; }; then
    $B reconstruct --bundle "$OUT/$task" --method dps --model "$PRIOR" --steps "$DPS_STEPS" \
      --seed 0 --out "$OUT/$task-dps" --force
  fi
  [ -f "$OUT/$task-dps/metrics.json" ] && row "$task" "dps-$DPS_STEPS" "$OUT/$task-dps" seconds_per_frame
done
column -s, -t "$OUT/results.csv"
