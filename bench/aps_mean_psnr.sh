#!/usr/bin/env bash
# PSNR of an APS model's posterior mean (64 draws, the model's sampling symmetries) on unseen
# 4-frame phantom cines under 4x random-line single-coil MRI: the measurements of
# bench/aps_vs_dps.sh (same truth and simulate commands, so figures compare with its tables).
# For choosing between checkpoints on a decision set and reporting on a test set.
#
#   bash bench/aps_mean_psnr.sh MODEL_DIR OUT_DIR [SEEDS...]   # default seeds 2050..2059
#   APS_ARGS="--conjugate-draws true" NAME=conj bash bench/aps_mean_psnr.sh ...   # other sampling
#                                      # settings, reported as NAME (default: the model dir's name)
# Bundles are cached under OUT_DIR/bundles; prints seed,psnr lines and their mean.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=$1
OUT=$2
shift 2
SEEDS=${*:-$(seq 2050 2059)}
cargo build --release --quiet --bin cinediff
B=target/release/cinediff
mkdir -p "$OUT/bundles"
name=${NAME:-$(basename "$MODEL")}
echo "seed,psnr" > "$OUT/$name.csv"
for seed in $SEEDS; do
  d=$OUT/bundles/$seed
  mkdir -p "$d"
  [ -f "$d/truth.npy" ] ||
    $B phantom --complex --frames 4 --size 64 --count 1 --seed "$seed" --out "$d/truth.npy" 2>/dev/null
  [ -d "$d/mri4x" ] ||
    $B simulate --truth "$d/truth.npy" --operator mri --accel 4 --coils 1 --noise 0.01 --seed 0 \
      --out "$d/mri4x" 2>/dev/null
  $B reconstruct --bundle "$d/mri4x" --method aps --model "$MODEL" --samples 64 --seed 0 ${APS_ARGS:-} \
    --out "$OUT/runs/$name/$seed" --force 2>/dev/null >/dev/null
  python3 -c "import json,sys; print(f\"$seed,{json.load(open(sys.argv[1]))['mean']['psnr']:.3f}\")" \
    "$OUT/runs/$name/$seed/metrics.json" >> "$OUT/$name.csv"
done
python3 - "$OUT/$name.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print(" ".join(f"{r['seed']}:{float(r['psnr']):.2f}" for r in rows))
print(f"mean {statistics.mean(float(r['psnr']) for r in rows):.3f} dB over {len(rows)} cines")
PY
