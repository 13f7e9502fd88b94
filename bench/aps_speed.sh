#!/usr/bin/env bash
# Issue 6's speed bar (one APS draw >= 1000x cheaper than one DPS 1000 sample), both timed in this
# one session on the same frame and machine, one after the other, nothing else running: one
# unseen complex 64x64 frame (seed SEED, default 2066, frame 0), TASK mri4x (default: 4x
# random-line single-coil MRI, noise 0.01) or denoise (sigma 0.1), APS with the task's shipped
# model and its recorded symmetries (64 draws in one call, seconds per draw as `reconstruct`
# reports it), DPS 1000 DDPM steps (one draw).
#
#   bash bench/aps_speed.sh [OUT_DIR]                       # default bench_out/aps_speed
#   TASK=denoise bash bench/aps_speed.sh bench_out/aps_speed_denoise
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench_out/aps_speed}
SEED=${SEED:-2066}
cargo build --release --quiet --bin cinediff
B=target/release/cinediff
mkdir -p "$OUT"
$B phantom --complex --frames 1 --size 64 --count 1 --seed "$SEED" --out "$OUT/truth.npy" 2>/dev/null
case "${TASK:=mri4x}" in
  mri4x) op=(--operator mri --accel 4 --coils 1 --noise 0.01); aps=models/cine64-aps-mri4x ;;
  denoise) op=(--operator denoise --noise 0.1); aps=models/cine64-aps-denoise ;;
  *) echo "TASK must be mri4x or denoise, got $TASK" >&2; exit 2 ;;
esac
$B simulate --truth "$OUT/truth.npy" "${op[@]}" --seed 0 --out "$OUT/$TASK" --force 2>/dev/null
$B reconstruct --bundle "$OUT/$TASK" --method aps --model "$aps" --samples 64 \
  --seed 0 --out "$OUT/aps" --force 2>/dev/null
$B reconstruct --bundle "$OUT/$TASK" --method dps --model models/cine64-small --steps 1000 \
  --seed 0 --out "$OUT/dps" --force 2>/dev/null
python3 - "$OUT" <<'PY'
import sys, tomllib
d = sys.argv[1]
aps = tomllib.load(open(f"{d}/aps/config.toml", "rb"))["settings"]["seconds_per_sample"]
c = tomllib.load(open(f"{d}/dps/config.toml", "rb"))
dps = c["settings"]["seconds_per_frame"] if "seconds_per_frame" in c.get("settings", {}) else c["seconds_per_frame"]
print(f"APS {aps:.4f} s per draw, DPS 1000 {dps:.1f} s per sample: {dps / aps:.0f}x")
PY
