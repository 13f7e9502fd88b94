#!/usr/bin/env bash
# Error accumulation over a long cine (issue 4, must-show 3): 128 frames of the complex phantom
# from a seed the prior was not trained on, the demo's acquisition (8x ky-t random lines, 4
# calibration lines, 4 coils, noise 0.01), SeqDiff with DDIM + DC, one cold frame and then
# --warm-start 10 steps per frame with no restarts. Prints the mean PSNR of frames 2-33 and of the
# last 32 frames.
#
#   bash bench/seqdiff_drift.sh [SEED] [OUT_DIR] [MODEL]   # defaults: 2027, bench_out/seqdiff_drift, models/cine64-small
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${1:-2027}
OUT=${2:-bench_out/seqdiff_drift}
MODEL=${3:-models/cine64-small}
cargo build --release --quiet --bin cinediff
B=target/release/cinediff
mkdir -p "$OUT"
rm -f "$OUT/truth.npy"
$B phantom --complex --frames 128 --size 64 --count 1 --seed "$SEED" --out "$OUT/truth.npy" 2>/dev/null
$B simulate --truth "$OUT/truth.npy" --operator mri --mask random --accel 8 --acs 4 --coils 4 \
  --noise 0.01 --seed 0 --out "$OUT/bundle" --force 2>/dev/null
$B reconstruct --bundle "$OUT/bundle" --method seqdiff --sampler ddim-dc --dc-steps 10 --dc-step-size 1.5 \
  --steps 200 --warm-start 10 --model "$MODEL" --seed 0 --out "$OUT/seqdiff" --force 2>/dev/null
python3 - "$OUT/seqdiff/frames.csv" <<'PY'
import csv, sys
p = [float(r["psnr"]) for r in csv.DictReader(open(sys.argv[1]))]
first, last = p[1:33], p[-32:]
print(f"frames 2-33: {sum(first)/32:.2f} dB; frames {len(p)-31}-{len(p)}: {sum(last)/32:.2f} dB; "
      f"difference {sum(last)/32 - sum(first)/32:+.2f} dB")
PY
