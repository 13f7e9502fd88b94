#!/usr/bin/env bash
# Issue 6's speed bar (one APS draw >= 1000x cheaper than one DPS 1000 sample), both timed in this
# one session on the same frame and machine, one after the other, nothing else running: one
# unseen complex 64x64 frame (seed SEED, default 2066, frame 0), 4x random-line single-coil MRI
# (noise 0.01), APS with the shipped model's recorded symmetries (64 draws in one call, seconds per
# draw as `reconstruct` reports it), DPS 1000 DDPM steps (one draw).
#
#   bash bench/aps_speed.sh [OUT_DIR]     # default bench_out/aps_speed
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench_out/aps_speed}
SEED=${SEED:-2066}
cargo build --release --quiet --bin cinediff
B=target/release/cinediff
mkdir -p "$OUT"
$B phantom --complex --frames 1 --size 64 --count 1 --seed "$SEED" --out "$OUT/truth.npy" 2>/dev/null
$B simulate --truth "$OUT/truth.npy" --operator mri --accel 4 --coils 1 --noise 0.01 --seed 0 \
  --out "$OUT/mri4x" --force 2>/dev/null
$B reconstruct --bundle "$OUT/mri4x" --method aps --model models/cine64-aps-mri4x --samples 64 \
  --seed 0 --out "$OUT/aps" --force 2>/dev/null
$B reconstruct --bundle "$OUT/mri4x" --method dps --model models/cine64-small --steps 1000 \
  --seed 0 --out "$OUT/dps" --force 2>/dev/null
python3 - "$OUT" <<'PY'
import sys, tomllib
d = sys.argv[1]
aps = tomllib.load(open(f"{d}/aps/config.toml", "rb"))["settings"]["seconds_per_sample"]
c = tomllib.load(open(f"{d}/dps/config.toml", "rb"))
dps = c["settings"]["seconds_per_frame"] if "seconds_per_frame" in c.get("settings", {}) else c["seconds_per_frame"]
print(f"APS {aps:.4f} s per draw, DPS 1000 {dps:.1f} s per sample: {dps / aps:.0f}x")
PY
