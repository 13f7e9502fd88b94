#!/usr/bin/env bash
# APS as SeqDiff's initialiser (issue 6's `aps` initialiser, `reconstruct --aps-start`): a 16-frame
# complex phantom cine the prior and APS model were not trained on (seed 2028), measured as the
# APS model's family (4x random lines, 5 calibration lines, 1 coil, noise 0.01). DDIM + DC
# (K = 10, step 1.5/L) for every run; cold frames run a 200-step grid, warm frames 10 steps from
# T' = 70. Rows: SeqDiff with a cold first frame, SeqDiff whose first frame starts from APS draws,
# independent frames (all cold), independent frames each started from APS draws; and APS alone
# (mean of 64 draws). Prints PSNR of frame 1, mean PSNR of all frames, network evaluations of the
# diffusion prior (NFE) and wall time; writes OUT/results.csv.
#
#   bash bench/aps_seqdiff_start.sh [OUT_DIR] [APS_MODEL]   # defaults: bench_out/aps_seqdiff_start, models/cine64-aps-mri4x
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench_out/aps_seqdiff_start}
APS=${2:-models/cine64-aps-mri4x}
MODEL=${MODEL:-models/cine64-small}
cargo build --release --quiet --bin cinediff
B=target/release/cinediff
mkdir -p "$OUT"
$B phantom --complex --frames 16 --size 64 --count 1 --seed 2028 --out "$OUT/truth.npy" 2>/dev/null
$B simulate --truth "$OUT/truth.npy" --operator mri --mask random --accel 4 --acs 5 --coils 1 \
  --noise 0.01 --seed 0 --out "$OUT/bundle" --force 2>/dev/null
echo "run,psnr_frame1,psnr_mean,ssim_mean,prior_nfe,seconds" > "$OUT/results.csv"
row() { # label dir
  python3 - "$1" "$2" <<'PY' >> "$OUT/results.csv"
import csv, json, os, sys
label, d = sys.argv[1:3]
m = json.load(open(f"{d}/metrics.json"))
frames = m["frames"]
nfe, secs = 0, None
if os.path.exists(f"{d}/summary.json"):
    s = json.load(open(f"{d}/summary.json"))
    nfe, secs = s["total_nfe"], s["seconds"]
else:
    import tomllib
    c = tomllib.load(open(f"{d}/config.toml", "rb"))
    secs = c.get("seconds", 0.0)
print(f"{label},{frames[0]['psnr']:.3f},{m['mean']['psnr']:.3f},{m['mean']['ssim']:.4f},{nfe},{secs:.1f}")
PY
  tail -1 "$OUT/results.csv"
}
common=(--bundle "$OUT/bundle" --sampler ddim-dc --dc-steps 10 --dc-step-size 1.5 --model "$MODEL"
  --steps 200 --warm-start 10 --warm-start-level 70 --seed 0 --force)
$B reconstruct "${common[@]}" --method seqdiff --out "$OUT/seqdiff" 2>/dev/null
row "seqdiff (frame 1 cold)" "$OUT/seqdiff"
$B reconstruct "${common[@]}" --method seqdiff --aps-start "$APS" --out "$OUT/seqdiff_aps" 2>/dev/null
row "seqdiff + APS start (frame 1)" "$OUT/seqdiff_aps"
$B reconstruct "${common[@]}" --method independent --out "$OUT/independent" 2>/dev/null
row "independent (all cold)" "$OUT/independent"
$B reconstruct "${common[@]}" --method independent --aps-start "$APS" --out "$OUT/independent_aps" 2>/dev/null
row "independent + APS start (every frame)" "$OUT/independent_aps"
$B reconstruct --bundle "$OUT/bundle" --method aps --model "$APS" --samples 64 --seed 0 \
  --out "$OUT/aps" --force 2>/dev/null
row "APS alone (mean of 64)" "$OUT/aps"
echo
echo "| run | PSNR frame 1 (dB) | mean PSNR (dB) | mean SSIM | prior NFE | seconds |"
echo "|---|---|---|---|---|---|"
tail -n +2 "$OUT/results.csv" | awk -F, '{printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6}'
