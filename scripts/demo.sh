#!/usr/bin/env bash
# The main job of README.md: `cinediff demo` simulates an 8x undersampled multi-coil cine-MRI
# acquisition of the built-in phantom (32 frames, 64x64) and reconstructs it with SeqDiff using the
# shipped diffusion prior, and with TV and zero-filling for reference. Needs only a Rust toolchain
# (cargo). Outputs go to demo-output/; the summary table is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust with rustup (https://rustup.rs), then re-run" >&2
  exit 1
fi
cargo build --release --bin cinediff
target/release/cinediff demo --out demo-output
