#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ with small valid inputs (the test data, plus files cinediff writes),
# so the fuzzers start from real formats. Needs python3 and a release build of cinediff.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/cinediff
[ -x "$bin" ] || cargo build --release
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p fuzz/corpus/{npy,cfl,nifti,png,measurement_toml}

cp tests/data/nifti/*.npy tests/data/png/*.npy fuzz/corpus/npy/
cp tests/data/numpy_mri_bundle/mask.npy fuzz/corpus/npy/mri_mask.npy
cp tests/data/nifti/*.nii fuzz/corpus/nifti/
cp tests/data/png/*.png fuzz/corpus/png/
for b in tests/data/numpy_*_bundle; do
  cp "$b/measurement.toml" "fuzz/corpus/measurement_toml/$(basename "$b").toml"
done
printf 'operator = "blur"\nshape = [1, 8, 8]\nblur_sigma = 0.5\n' >fuzz/corpus/measurement_toml/blur.toml
printf 'operator = "superres"\nshape = [2, 8, 8]\nscale = 4\ncomplex = false\n' >fuzz/corpus/measurement_toml/superres.toml

# Files written by cinediff: cfl, NIfTI (a series and a stack), 8/16-bit PNG, APNG.
"$bin" convert tests/data/nifti/complex64_le.npy "$tmp/c.cfl" 2>/dev/null
"$bin" convert tests/data/nifti/float32_4d.npy "$tmp/d.cfl" 2>/dev/null
"$bin" convert tests/data/nifti/complex64_le.npy "$tmp/series.nii" 2>/dev/null
"$bin" convert tests/data/nifti/float64_le.npy "$tmp/stack.nii" --axes z,h,w 2>/dev/null
"$bin" convert tests/data/png/grey16.npy "$tmp/g16.png" --bit-depth 16 2>/dev/null
"$bin" convert tests/data/nifti/complex64_le.npy "$tmp/cine.apng" 2>/dev/null
"$bin" convert tests/data/nifti/complex64_le.npy "$tmp/cine16.apng" --bit-depth 16 2>/dev/null
cp "$tmp"/*.nii fuzz/corpus/nifti/
cp "$tmp/g16.png" "$tmp/cine.apng" "$tmp/cine16.apng" fuzz/corpus/png/
# The cfl target's input: one byte = header length, the header, then the data.
python3 - "$tmp" fuzz/corpus/cfl <<'PY'
import sys
from pathlib import Path
src, out = Path(sys.argv[1]), Path(sys.argv[2])
for name in ["c", "d"]:
    hdr = (src / f"{name}.hdr").read_bytes()
    assert len(hdr) < 256
    (out / f"{name}.bin").write_bytes(bytes([len(hdr)]) + hdr + (src / f"{name}.cfl").read_bytes())
PY
echo "seeded: $(find fuzz/corpus -type f | wc -l) files under fuzz/corpus/"
