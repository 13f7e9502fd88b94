#!/usr/bin/env bash
# PSNR against steps per frame for the independent and SeqDiff strategies (issue 4, must-show 1 and
# 4): a 32-frame complex phantom cine from a seed the shipped prior was not trained on (training
# used seed 1), 8x ky-t random lines with 4 calibration lines, 4 coils, noise 0.01 (the demo's
# acquisition); DDIM + DC (K = 10, step 1.5/L) for every strategy, 200-step grid for cold frames.
# Mean PSNR/SSIM over frames 2..T (frame 1 is cold for every strategy), frames per second over the
# whole sequence. Writes OUT/sweep.csv and OUT/psnr_vs_steps.svg and prints a Markdown table.
#
#   bash bench/seqdiff_sweep.sh [SEED] [OUT_DIR] [MODEL]    # defaults: 2026, bench_out/seqdiff_sweep, models/cine64-small
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${1:-2026}
OUT=${2:-bench_out/seqdiff_sweep}
MODEL=${3:-models/cine64-small}
cargo build --release --quiet --bin cinediff
B=target/release/cinediff
mkdir -p "$OUT"
$B phantom --complex --frames 32 --size 64 --count 1 --seed "$SEED" --out "$OUT/truth.npy" 2>/dev/null
$B simulate --truth "$OUT/truth.npy" --operator mri --mask random --accel 8 --acs 4 --coils 4 \
  --noise 0.01 --seed 0 --out "$OUT/bundle" --force 2>/dev/null

echo "strategy,steps_per_frame,psnr,ssim,frames_per_second" > "$OUT/sweep.csv"
run() { # strategy label, steps per frame, cinediff reconstruct args...
  local label="$1" steps="$2"; shift 2
  local dir="$OUT/${label// /_}_$steps"
  $B reconstruct --bundle "$OUT/bundle" --sampler ddim-dc --dc-steps 10 --dc-step-size 1.5 \
    --model "$MODEL" --seed 0 --out "$dir" --force "$@" 2>/dev/null
  echo "$label,$steps,$(python3 bench/frames_mean.py "$dir")" >> "$OUT/sweep.csv"
  tail -1 "$OUT/sweep.csv"
}
for s in 10 25 50 100 200; do
  run independent "$s" --method independent --steps "$s"
done
for w in 4 6 10 16 32; do
  run seqdiff "$w" --method seqdiff --steps 200 --warm-start "$w"
done
# The start level chosen apart from the step count (--warm-start-level, our addition).
for w in 6 10; do
  run "seqdiff T'=70" "$w" --method seqdiff --steps 200 --warm-start "$w" --warm-start-level 70
done
$B plot --csv "$OUT/sweep.csv" --x steps_per_frame --y psnr --group strategy --log-x --force \
  --title "8x ky-t cine MRI, 32 frames: mean PSNR of frames 2-32" \
  --x-label "network steps per frame (after frame 1)" --y-label "PSNR (dB)" --out "$OUT/psnr_vs_steps.svg"
echo
echo "| strategy | steps per frame | PSNR (dB) | SSIM | frames/s |"
echo "|---|---|---|---|---|"
tail -n +2 "$OUT/sweep.csv" | awk -F, '{printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5}'
