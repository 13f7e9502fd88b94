#!/usr/bin/env bash
# AID against the same per-frame prior without the conditioning branch (issue 5): an unseen
# complex phantom cine (seed 2029; models trained on seed 1), FRAMES frames 64x64, ky-t random
# lines at 8x and 12x, single-coil and 4-coil, noise 0.01. Both run DDIM + data consistency
# (AID's Algorithm 1, K = 10, step 1.5/L) with STEPS steps per frame and one particle; AID
# conditions every frame on its previous reconstructions, `independent` samples every frame with
# the per-frame prior PRIOR (default models/cine64-small, the prior the AID model starts from: for
# a two-stage model exactly its U-Net; PRIOR=<the AID dir> runs the AID's own U-Net without the
# branch, which after an --unfreeze-prior stage has co-adapted and is a weaker prior alone).
#
#   bash bench/aid_vs_prior.sh [AID_MODEL] [OUT_DIR]   # defaults: models/cine64-aid, bench_out/aid_vs_prior
#   FRAMES=16 STEPS=50 PRIOR=models/cine64-small METHODS="independent aid" bash bench/aid_vs_prior.sh
set -euo pipefail
cd "$(dirname "$0")/.."
AID=${1:-models/cine64-aid}
OUT=${2:-bench_out/aid_vs_prior}
PRIOR=${PRIOR:-models/cine64-small}
FRAMES=${FRAMES:-16}
# seqdiff (the per-frame prior, each frame warm-started from the previous one's sample with its
# default tail of the step grid) places AID against SeqDiff on the same measurements.
METHODS=${METHODS:-independent aid seqdiff}
STEPS=${STEPS:-50}
cargo build --release --quiet --bin cinediff
B=target/release/cinediff
mkdir -p "$OUT"
TRUTH="$OUT/truth_f$FRAMES.npy"
[ -f "$TRUTH" ] ||
  $B phantom --complex --frames "$FRAMES" --size 64 --count 1 --seed 2029 --out "$TRUTH" 2>/dev/null
echo "accel,coils,method,psnr,ssim,nrmse,seconds_per_frame" > "$OUT/results.csv"
for accel in 8 12; do
  for coils in 1 4; do
    b="$OUT/b${accel}x_c${coils}"
    $B simulate --truth "$TRUTH" --operator mri --accel "$accel" --coils "$coils" \
      --noise 0.01 --seed 0 --out "$b" --force 2>/dev/null
    for method in $METHODS; do
      model=$PRIOR
      [ "$method" = aid ] && model=$AID
      r="$OUT/r${accel}x_c${coils}_$method"
      $B reconstruct --bundle "$b" --method "$method" --sampler ddim-dc --model "$model" \
        --steps "$STEPS" --dc-steps 10 --dc-step-size 1.5 --seed 0 --out "$r" --force 2>/dev/null
      python3 - "$accel" "$coils" "$method" "$r" >> "$OUT/results.csv" <<'PY'
import json, sys
accel, coils, method, d = sys.argv[1:5]
m = json.load(open(f"{d}/metrics.json"))
mean = m["mean"]
print(f"{accel},{coils},{method},{mean['psnr']:.3f},{mean['ssim']:.4f},{mean['nrmse']:.4f},{m['seconds_per_frame']:.2f}")
PY
    done
  done
done
column -s, -t "$OUT/results.csv"
