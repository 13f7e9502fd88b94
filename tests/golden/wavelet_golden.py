"""Golden values for `cinediff::baselines::wavelet`, computed with PyWavelets.

Run (prints the Rust constants pasted into tests/baselines.rs):

    python3 -m venv /tmp/pywt-venv && /tmp/pywt-venv/bin/pip install PyWavelets numpy
    /tmp/pywt-venv/bin/python tests/golden/wavelet_golden.py

Generated with PyWavelets 1.8.0 and numpy 2.4.6.

What is compared:
  * the decomposition low-pass filters `pywt.Wavelet(name).dec_lo` (hard-coded in
    src/baselines/wavelet.rs; the high-pass filters follow from the quadrature-mirror relation
    dec_hi[j] = (-1)^(j+1) dec_lo[L-1-j], which the script asserts for PyWavelets' own dec_hi);
  * one level of `pywt.dwt2(x, name, mode='periodization')` for haar and db4, laid out as one
    8 x 12 array [[cA, cV], [cH, cD]] (PyWavelets' `coeffs_to_array` layout: cH = 'da', detail
    along axis 0; cV = 'ad', detail along axis 1), which is the layout cinediff uses;
  * two levels of `pywt.wavedec2(x, 'db2', mode='periodization', level=2)` through
    `pywt.coeffs_to_array` (same layout, recursively in the top-left block).

The test image is a closed formula evaluated in float64 with `math.sin`/`math.cos` and rounded to
float32 (what cinediff stores), then widened back to float64 for PyWavelets, so tests/baselines.rs
can rebuild it bit for bit.
"""

import math

import numpy as np
import pywt

H, W = 8, 12


def image():
    """x[i, j] = sin(0.9 i + 0.4 j) + 0.5 cos(0.3 i j) + 0.1 j, float64 -> float32 -> float64."""
    x = np.array(
        [
            [math.sin(0.9 * i + 0.4 * j) + 0.5 * math.cos(0.3 * i * j) + 0.1 * j for j in range(W)]
            for i in range(H)
        ],
        dtype=np.float64,
    )
    return x.astype(np.float32).astype(np.float64)


def rust_array(name, values):
    flat = ", ".join(f"{v:.9e}" for v in np.asarray(values).ravel())
    return f"const {name}: [f64; {np.asarray(values).size}] = [{flat}];"


def main():
    x = image()
    for name in ["haar", "db2", "db4"]:
        w = pywt.Wavelet(name)
        lo = np.array(w.dec_lo)
        hi = np.array(w.dec_hi)
        n = len(lo)
        qmf = np.array([(-1) ** (j + 1) * lo[n - 1 - j] for j in range(n)])
        assert np.array_equal(hi, qmf), name
        print(f"// {name} dec_lo = {list(map(repr, w.dec_lo))}")
    for name in ["haar", "db4"]:
        coeffs = list(pywt.dwt2(x, name, mode="periodization"))
        arr, _ = pywt.coeffs_to_array(coeffs)
        assert arr.shape == (H, W)
        print(rust_array(f"{name.upper()}_LEVEL1", arr))
    coeffs = pywt.wavedec2(x, "db2", mode="periodization", level=2)
    arr, _ = pywt.coeffs_to_array(coeffs)
    assert arr.shape == (H, W)
    print(rust_array("DB2_LEVEL2", arr))


if __name__ == "__main__":
    main()
