#!/usr/bin/env bash
# Training pairs for `train-transition --inputs` (issue 4): complex 32-frame phantom cines
# rendered at frame strides 1, 2 and 3 (seeds 3000 + 100·stride + k, k < COUNT), each simulated
# as the severe-motion bench measures (8x ky-t random lines, 4 calibration lines, 4 coils, noise
# 0.01, mask seed = cine seed) and reconstructed by SeqDiff (DDIM + DC, 200-step grid, WARM warm
# steps from level LEVEL; WARM is a list taken in turn, cine k using entry k mod its length;
# default "4 10" from level 70). Writes OUT/truth.npy and OUT/recon.npy, [N, 32, 64, 64] complex64
# each in the order of the seeds (needs numpy), for
#   cinediff train-transition --data OUT/truth.npy --inputs OUT/recon.npy ...
# Runs add to OUT (finished cines are kept), so strides with different counts are two runs.
#
#   bash bench/transition_pairs.sh [OUT_DIR] [MODEL]   # defaults: bench_out/transition_pairs, models/cine64-small
#   STRIDES="3 2" COUNT=12 bash bench/transition_pairs.sh   # (about 25 s per cine on 2 cores)
#   # the shipped cine64-transition's pairs (its MODEL_CARD.md):
#   STRIDES=3 COUNT=48 WARM=2 LEVEL=30 bash bench/transition_pairs.sh bench_out/pairs_w2_l30
#   STRIDES=2 COUNT=24 WARM=2 LEVEL=30 bash bench/transition_pairs.sh bench_out/pairs_w2_l30
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench_out/transition_pairs}
MODEL=${2:-models/cine64-small}
COUNT=${COUNT:-12}
read -r -a WARMS <<< "${WARM:-4 10}"
LEVEL=${LEVEL:-70}
[ "${#WARMS[@]}" -gt 0 ] || { echo "WARM: give at least one number of warm steps" >&2; exit 2; }
# seed = 3000 + 100·stride + k: more than 100 cines per stride would reuse another stride's seeds.
[ "$COUNT" -ge 1 ] && [ "$COUNT" -le 100 ] || { echo "COUNT: 1..100, got $COUNT" >&2; exit 2; }
cargo build --release --quiet --bin cinediff
B=target/release/cinediff
mkdir -p "$OUT"
for stride in ${STRIDES:-1 2 3}; do
  for k in $(seq 0 $((COUNT - 1))); do
    seed=$((3000 + 100 * stride + k))
    warm=${WARMS[k % ${#WARMS[@]}]}
    c=$OUT/c_$seed
    settings="stride $stride warm $warm level $LEVEL model $MODEL"
    if [ -f "$c/recon/recon.npy" ]; then
      # A finished cine is kept only if it was made with these settings.
      made_with=$(cat "$c/settings" 2>/dev/null || echo unknown)
      [ "$made_with" = "$settings" ] && continue
      echo "$c was made with other settings ($made_with): use another OUT_DIR" >&2
      exit 2
    fi
    mkdir -p "$c"
    $B phantom --complex --frames 32 --size 64 --count 1 --seed $seed --frame-stride $stride \
      --out "$c/truth.npy" 2>/dev/null
    $B simulate --truth "$c/truth.npy" --operator mri --mask random --accel 8 --acs 4 --coils 4 \
      --noise 0.01 --seed $seed --out "$c/bundle" --force 2>/dev/null
    $B reconstruct --bundle "$c/bundle" --method seqdiff --steps 200 --warm-start $warm \
      --warm-start-level "$LEVEL" --sampler ddim-dc --dc-steps 10 --dc-step-size 1.5 --model "$MODEL" \
      --seed $seed --out "$c/recon" --force >/dev/null 2>&1
    echo "$settings" > "$c/settings"
    echo "stride $stride cine $k done"
  done
done
python3 - "$OUT" <<'PY'
import glob, os, sys
import numpy as np
out = sys.argv[1]
dirs = sorted(d for d in glob.glob(f"{out}/c_[0-9][0-9][0-9][0-9]") if os.path.exists(f"{d}/recon/recon.npy"))
truth = np.stack([np.load(f"{d}/truth.npy")[0] for d in dirs]).astype(np.complex64)
recon = np.stack([np.load(f"{d}/recon/recon.npy") for d in dirs]).astype(np.complex64)
np.save(f"{out}/truth.npy", truth)
np.save(f"{out}/recon.npy", recon)
print(f"{len(dirs)} cines: {out}/truth.npy, {out}/recon.npy {truth.shape}")
PY
