#!/usr/bin/env bash
# SeqDiff on ultrasound scan-line subsampling (issue 8): a 32-frame echo-phantom cine from a seed
# the shipped ultrasound prior was not trained on (training used seed 1), beam domain 64 depth
# samples x 64 scan lines, 1/4 and 1/8 of the lines per frame with a rolling equispaced pattern
# (shifted by one line per frame) and a random one, noise 0.01. Methods (METHODS, a list of):
#   interp              linear interpolation across missing lines
#   independent         DDIM + DC, STEPS steps per frame from noise
#   seqdiff             frame 1 cold, then STEPS/20 steps per frame (the last ones of the grid)
#   seqdiff70           the same STEPS/20 steps spread down from t = 70 (--warm-start-level 70)
#   seqdiff+, seqdiff+70   SeqDiff+: warm-starting from TRANSITION's prediction of the frame
#   any of them -<P>p   the mean of P particles, e.g. -4p (approaches the posterior mean; 4x the work)
# Metrics in the beam domain on the log-compressed [-1, 1] scale, mean over frames 2..T; PSNR with
# the data range max(truth frame) as everywhere in cinediff (zea's convention, range 2, reads
# 20·log10(2 / max) dB higher; differences between methods are the same). STRIDE = 3 takes every
# third frame of the phantom: a heart (and probe) three times as fast. MASKS (equispaced random)
# and ACCELS (4 8) narrow the grid.
#
#   bash bench/echo_seqdiff.sh [SEED] [OUT_DIR] [MODEL]   # defaults: 2026, bench_out/echo_seqdiff, models/echo64-small
#   STRIDE=3 TRANSITION=models/echo64-transition METHODS="interp seqdiff70-4p seqdiff+70-4p" \
#     bash bench/echo_seqdiff.sh 2026 bench_out/echo_seqdiff_3x
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${1:-2026}
OUT=${2:-bench_out/echo_seqdiff}
MODEL=${3:-models/echo64-small}
STRIDE=${STRIDE:-1}
STEPS=${STEPS:-100}
WARM=$((STEPS / 20))
METHODS=${METHODS:-interp independent independent-4p seqdiff seqdiff70 seqdiff70-4p}
TRANSITION=${TRANSITION:-}
case " $METHODS " in
  *" seqdiff+"*) [ -n "$TRANSITION" ] || { echo "seqdiff+ methods need TRANSITION=<model dir>" >&2; exit 2; } ;;
esac
cargo build --release --quiet --bin cinediff
B=target/release/cinediff
mkdir -p "$OUT"
rm -f "$OUT/truth.npy"
$B phantom --kind echo --frames 32 --size 64 --count 1 --seed "$SEED" --frame-stride "$STRIDE" \
  --out "$OUT/truth.npy" 2>/dev/null
echo "mask,accel,method,steps_per_frame,psnr,ssim,frames_per_second" > "$OUT/results.csv"
mean_row() { python3 bench/frames_mean.py "$1"; } # dir → psnr,ssim,fps (frames 2..T)
for mask in ${MASKS:-equispaced random}; do
  for accel in ${ACCELS:-4 8}; do
    b="$OUT/${mask}_${accel}"
    $B simulate --truth "$OUT/truth.npy" --operator us-lines --mask "$mask" --accel "$accel" \
      --noise 0.01 --seed 0 --out "$b/bundle" --force 2>/dev/null
    run() { # name, steps per frame, reconstruct args...
      local name="$1" steps="$2"; shift 2
      $B reconstruct --bundle "$b/bundle" --out "$b/$name" --force "$@" 2>/dev/null
      echo "$mask,$accel,$name,$steps,$(mean_row "$b/$name")" | tee -a "$OUT/results.csv"
    }
    diff=(--sampler ddim-dc --dc-steps 10 --dc-step-size 1.5 --model "$MODEL" --seed 0)
    seq=(--steps "$STEPS" --warm-start "$WARM" "${diff[@]}")
    for method in $METHODS; do
      # interp | independent[-<P>p] | seqdiff[+][<T'>][-<P>p]
      if [ "$method" = interp ]; then
        run interp 0 --method interp
      elif [[ "$method" =~ ^independent(-([0-9]+)p)?$ ]]; then
        run "$method" "$STEPS" --method independent --steps "$STEPS" \
          --particles "${BASH_REMATCH[2]:-1}" "${diff[@]}"
      elif [[ "$method" =~ ^seqdiff(\+?)([0-9]*)(-([0-9]+)p)?$ ]]; then
        args=(--method "seqdiff${BASH_REMATCH[1]}" --particles "${BASH_REMATCH[4]:-1}")
        [ -n "${BASH_REMATCH[1]}" ] && args+=(--transition "$TRANSITION")
        [ -n "${BASH_REMATCH[2]}" ] && args+=(--warm-start-level "${BASH_REMATCH[2]}")
        run "$method" "$WARM" "${args[@]}" "${seq[@]}"
      else
        echo "unknown method $method" >&2
        exit 2
      fi
    done
  done
done
echo
echo "| mask | R | method | steps/frame | PSNR (dB) | SSIM | frames/s |"
echo "|---|---|---|---|---|---|---|"
tail -n +2 "$OUT/results.csv" | awk -F, '{printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7}'
