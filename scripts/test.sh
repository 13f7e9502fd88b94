#!/usr/bin/env bash
# The test command of README.md (also what CI runs). Needs only a Rust toolchain (cargo); numerical
# tests run in --release because debug builds of the network code are very slow.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust with rustup (https://rustup.rs), then re-run" >&2
  exit 1
fi
# bart (the reference MRI toolbox) for the comparisons in tests/interop.rs: installed when missing
# and this is root with apt-get; otherwise those tests say they are skipped and pass.
if ! command -v bart >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y bart >/dev/null 2>&1 ||
      { apt-get update >/dev/null 2>&1 && apt-get install -y bart >/dev/null 2>&1; } ||
      echo "could not install bart with apt-get: the BART comparison tests will be skipped" >&2
  else
    echo "bart not found (installing it needs root and apt-get): the BART comparison tests will be skipped" >&2
  fi
fi
# chromium for the browser test of the eval report (tests/eval.rs): installed the same way, or
# that test says it is skipped and passes.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y chromium >/dev/null 2>&1 ||
      { apt-get update >/dev/null 2>&1 && apt-get install -y chromium >/dev/null 2>&1; } ||
      echo "could not install chromium with apt-get: the report browser test will be skipped" >&2
  else
    echo "chromium not found (installing it needs root and apt-get): the report browser test will be skipped" >&2
  fi
fi
# Benchmarks once each in test mode (they must keep working), then every test.
cargo test --release --benches 2>&1
cargo test --release --lib --bins --tests --no-fail-fast 2>&1
# The examples are measurement tools BENCHMARKS.md cites: keep them compiling.
cargo build --release --examples 2>&1
