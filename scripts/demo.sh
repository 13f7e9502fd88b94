#!/usr/bin/env bash
# The main job of README.md: draw samples from the shipped cine-MRI prior and write them next to
# phantom frames for comparison. Needs only a Rust toolchain (cargo). Outputs go to demo_out/.
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
"$bin" sample --model models/cine64-small --count 16 --sampler ddim --steps 50 --seed 0 --out "$out/samples_ddim50.npy"
"$bin" sample --model models/cine64-small --count 16 --sampler dpm-solver++ --steps 20 --seed 0 --out "$out/samples_dpmpp20.npy"
echo "demo done: see $out/phantom.png (data), $out/samples_ddim50.png and $out/samples_dpmpp20.png (prior samples)"
