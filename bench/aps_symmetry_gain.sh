#!/usr/bin/env bash
# The gain of drawing over the model's sampling symmetries (the mirror and 8 global phases, the
# shipped APS models' default) against plain draws, on unseen 4-frame phantom cines: the posterior
# mean of 64 draws, PSNR over the 4 frames, for 4x random-line single-coil MRI and denoising
# (sigma 0.1), the measurements of bench/aps_vs_dps.sh.
#
#   bash bench/aps_symmetry_gain.sh [OUT_DIR] [SEEDS...]   # default bench_out/aps_symmetry, 2050..2059
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench_out/aps_symmetry}
shift || true
SEEDS=${*:-$(seq 2050 2059)}
cargo build --release --quiet --bin cinediff
B=target/release/cinediff
mkdir -p "$OUT"
echo "seed,task,plain_psnr,symmetric_psnr,plain_s_per_draw,symmetric_s_per_draw" > "$OUT/results.csv"
for seed in $SEEDS; do
  d=$OUT/$seed
  mkdir -p "$d"
  [ -f "$d/truth.npy" ] ||
    $B phantom --complex --frames 4 --size 64 --count 1 --seed "$seed" --out "$d/truth.npy" 2>/dev/null
  [ -d "$d/mri4x" ] ||
    $B simulate --truth "$d/truth.npy" --operator mri --accel 4 --coils 1 --noise 0.01 --seed 0 --out "$d/mri4x" 2>/dev/null
  [ -d "$d/denoise" ] ||
    $B simulate --truth "$d/truth.npy" --operator denoise --noise 0.1 --seed 0 --out "$d/denoise" 2>/dev/null
  for task in mri4x denoise; do
    model=models/cine64-aps-mri4x
    [ "$task" = denoise ] && model=models/cine64-aps-denoise
    $B reconstruct --bundle "$d/$task" --method aps --model $model --samples 64 --seed 0 \
      --mirrored-draws false --phase-rotations 1 --out "$d/$task-plain" --force 2>/dev/null
    $B reconstruct --bundle "$d/$task" --method aps --model $model --samples 64 --seed 0 \
      --out "$d/$task-symmetric" --force 2>/dev/null
    python3 - "$seed" "$task" "$d/$task-plain" "$d/$task-symmetric" >> "$OUT/results.csv" <<'PY'
import json, sys, tomllib
seed, task, plain, sym = sys.argv[1:5]
psnr = lambda d: json.load(open(f"{d}/metrics.json"))["mean"]["psnr"]
secs = lambda d: tomllib.load(open(f"{d}/config.toml", "rb"))["settings"]["seconds_per_sample"]
print(f"{seed},{task},{psnr(plain):.3f},{psnr(sym):.3f},{secs(plain):.4f},{secs(sym):.4f}")
PY
  done
done
python3 - "$OUT/results.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for task in sorted({r["task"] for r in rows}):
    d = [float(r["symmetric_psnr"]) - float(r["plain_psnr"]) for r in rows if r["task"] == task]
    print(f"{task}: gain {statistics.mean(d):+.3f} dB mean, {min(d):+.3f} .. {max(d):+.3f}, "
          f"better on {sum(x > 0 for x in d)}/{len(d)}")
PY
