#!/usr/bin/env bash
# Temporal coherence of AID's generated sequences (issue 5): COUNT sequences of FRAMES frames from
# the AID model (DDIM, STEPS steps per frame, seed 0) against the training data's sequences and
# against "sequences" of independent samples of the per-frame prior (FRAMES draws in a row). For
# each: the mean |frame-to-frame difference| of the magnitudes and their autocorrelation over lags
# 1..8 (`cinediff info` prints both for any sequence file). RHO (default 0, AID's fresh noise per
# frame) is generate's --noise-correlation: the frames' starting noise shared with weight √RHO.
#
#   bash bench/aid_coherence.sh [AID_MODEL] [OUT_DIR]   # defaults: models/cine64-aid, bench_out/aid_coherence
#   COUNT=4 FRAMES=32 STEPS=25 PRIOR=models/cine64-small TRAIN=/path/cine64_train.npy bash bench/aid_coherence.sh
set -euo pipefail
cd "$(dirname "$0")/.."
AID=${1:-models/cine64-aid}
OUT=${2:-bench_out/aid_coherence}
PRIOR=${PRIOR:-models/cine64-small}
COUNT=${COUNT:-4}
FRAMES=${FRAMES:-32}
STEPS=${STEPS:-25}
RHO=${RHO:-0}
cargo build --release --quiet --bin cinediff
B=target/release/cinediff
mkdir -p "$OUT"
# The training data of the shipped models (seed 1), FRAMES frames per sequence.
TRAIN=${TRAIN:-$OUT/train.npy}
[ -f "$TRAIN" ] ||
  $B phantom --complex --frames "$FRAMES" --size 64 --count "$COUNT" --seed 1 --out "$TRAIN" 2>/dev/null
$B generate --model "$AID" --frames "$FRAMES" --count "$COUNT" --steps "$STEPS" --seed 0 \
  --noise-correlation "$RHO" --out "$OUT/aid.npy"
# Independent prior samples, FRAMES per "sequence" (the flat [COUNT·FRAMES, H, W] file re-labelled).
$B sample --model "$PRIOR" --count $((COUNT * FRAMES)) --sampler ddim --steps "$STEPS" --seed 0 \
  --out "$OUT/independent_flat.npy" 2>/dev/null
python3 - "$OUT" "$COUNT" "$FRAMES" <<'PY'
import sys, struct
out, count, frames = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
raw = open(f"{out}/independent_flat.npy", "rb").read()
hlen = struct.unpack("<H", raw[8:10])[0]
header = raw[10:10 + hlen].decode()
payload = raw[10 + hlen:]
new = header.replace(f"({count * frames}, ", f"({count}, {frames}, ")
pad = (64 - (10 + len(new) + 1) % 64) % 64
new = new.rstrip().rstrip("\n") + " " * pad + "\n"
open(f"{out}/independent.npy", "wb").write(raw[:8] + struct.pack("<H", len(new)) + new.encode() + payload)
PY
for f in "$TRAIN" "$OUT/aid.npy" "$OUT/independent.npy"; do
  echo "== $f"
  $B info "$f" | grep -E "shape|frames:"
done
