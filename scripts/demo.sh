#!/usr/bin/env bash
# The main job of README.md: reconstruct an undersampled multi-coil cine-MRI acquisition of the
# built-in phantom with the shipped diffusion prior and with the classic baselines, and draw
# unconditional samples from the prior. Needs only a Rust toolchain (cargo). Outputs go to demo_out/.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust with rustup (https://rustup.rs), then re-run" >&2
  exit 1
fi
cargo build --release --bin cinediff
bin=target/release/cinediff
out=demo_out
mkdir -p "$out"
"$bin" phantom --complex --frames 16 --size 64 --count 1 --seed 2026 --out "$out/phantom.npy"
# 8 frames measured with 4x ky-t random lines (8 calibration lines), 4 coils, noise 0.01.
"$bin" phantom --complex --frames 8 --size 64 --count 1 --seed 2027 --out "$out/truth.npy"
"$bin" simulate --truth "$out/truth.npy" --operator mri --mask random --accel 4 --acs 8 --coils 4 \
  --noise 0.01 --seed 0 --out "$out/bundle" --force
"$bin" reconstruct --bundle "$out/bundle" --method zero-filled --out "$out/recon_zero_filled" --force
"$bin" reconstruct --bundle "$out/bundle" --method tv --lambda 0.001 --iterations 5000 --out "$out/recon_tv" --force
"$bin" reconstruct --bundle "$out/bundle" --method ddim-dc --model models/cine64-small --steps 100 \
  --dc-steps 10 --dc-step-size 1.5 --samples 2 --seed 0 --out "$out/recon_ddim_dc" --force
"$bin" sample --model models/cine64-small --count 16 --sampler ddim --steps 50 --seed 0 --out "$out/samples_ddim50.npy"
"$bin" sample --model models/cine64-small --count 16 --sampler dpm-solver++ --steps 20 --seed 0 --out "$out/samples_dpmpp20.npy"
echo "demo done:"
echo "  reconstructions: $out/recon_{zero_filled,tv,ddim_dc}/recon.png, metrics.json (truth: $out/truth.png)"
echo "  posterior std map: $out/recon_ddim_dc/std.npy; prior samples: $out/samples_ddim50.png, $out/samples_dpmpp20.png"
