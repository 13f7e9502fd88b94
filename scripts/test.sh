#!/usr/bin/env bash
# The test command of README.md (also what CI runs). Needs only a Rust toolchain (cargo); numerical
# tests run in --release because debug builds of the network code are very slow.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust with rustup (https://rustup.rs), then re-run" >&2
  exit 1
fi
# Benchmarks once each in test mode (they must keep working), then every test.
cargo test --release --benches 2>&1
cargo test --release --lib --bins --tests --no-fail-fast 2>&1
