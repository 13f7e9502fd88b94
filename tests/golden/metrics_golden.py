"""Golden values for `cinediff::metrics`, computed with scikit-image.

Run (prints the Rust table pasted into tests/metrics.rs):

    /work/torchenv/bin/python tests/golden/metrics_golden.py

Needs numpy and scikit-image (`/work/torchenv/bin/pip install scikit-image`).

The test images are built from closed formulas (no random numbers) so that tests/metrics.rs can
rebuild them bit for bit: every pixel is evaluated in float64 with `math.sin`/`math.cos` (the
platform libm, the same one Rust's `f64::sin`/`f64::cos` call) and then rounded to float32, which
is what cinediff stores. The float32 images are widened to float64 before they are handed to
scikit-image, so the reference numbers are float64 computations on exactly the float32 inputs
(scikit-image would otherwise compute in float32).

Conventions (the ones cinediff documents):
  PSNR  = skimage.metrics.peak_signal_noise_ratio(ref, x, data_range=ref.max())
  SSIM  = skimage.metrics.structural_similarity(ref, x, win_size=7, data_range=ref.max(),
          gaussian_weights=False)  # uniform 7x7 window, K1=0.01, K2=0.03,
          # use_sample_covariance=True, mean over the region cropped by (7-1)//2 = 3 pixels
  NRMSE = skimage.metrics.normalized_root_mse(ref, x)  # 'euclidean': ||x - ref|| / ||ref||
  NMSE  = ||x - ref||^2 / ||ref||^2  (fastMRI's nmse; scikit-image has no NMSE)
Complex images are compared through their magnitudes |z| (computed in float64 from the float32
real and imaginary parts).
"""

import math

import numpy as np
import skimage
from skimage.metrics import (
    normalized_root_mse,
    peak_signal_noise_ratio,
    structural_similarity,
)


def grid(h, w, f):
    """float64 evaluation of f(i, j) on an h x w grid, rounded to float32."""
    return np.array([[f(i, j) for j in range(w)] for i in range(h)], dtype=np.float64).astype(
        np.float32
    )


# The formulas below are repeated verbatim in tests/metrics.rs; change both or neither.


def smooth(i, j):
    return 0.5 + 0.3 * math.sin(0.4 * i + 0.1) * math.cos(0.3 * j - 0.2) + 0.1 * i / 16.0


def noise(i, j):
    return 0.05 * math.sin(1.7 * i * i + 2.3 * j + 0.37 * i * j)


def smooth_noisy(i, j):
    return smooth(i, j) + noise(i, j)


def signed(i, j):
    # Takes negative values: the data range is max(ref), not max(ref) - min(ref).
    return 0.2 + 0.6 * math.sin(0.25 * i - 0.5) * math.sin(0.35 * j + 0.3)


def signed_estimate(i, j):
    # A contrast/brightness change plus 'noise': exercises the luminance and contrast terms.
    return 0.9 * signed(i, j) + 0.02 + 0.5 * noise(j, i)


def tiny(i, j):
    return 1.0 + 0.5 * math.cos(0.9 * i + 0.6 * j)


def tiny_estimate(i, j):
    return tiny(i, j) + noise(i, j)


def low_contrast(i, j):
    # Faint texture (std ~0.01) under a single bright corner pixel that sets the data range to 1:
    # C2 = (0.03 R)^2 dominates the local variances, so the sample-covariance factor 49/48 moves the
    # SSIM by ~7e-4 relative (population covariance would fail the 1e-4 tolerance).
    if i == 0 and j == 0:
        return 1.0
    return 0.3 + 0.02 * math.sin(0.7 * i + 0.2) * math.cos(0.5 * j)


def low_contrast_estimate(i, j):
    return low_contrast(i, j) + 0.01 * math.sin(1.9 * i * j + 0.3 * i + 1.1 * j)


def frame(t, i, j):
    return 1.0 + 0.4 * math.sin(0.3 * i + 0.5 * t) * math.cos(0.25 * j - 0.2 * t)


def frame_estimate(t, i, j):
    return frame(t, i, j) + (0.02 + 0.03 * t) * math.sin(1.3 * i * j + 0.7 * t + 0.9 * i)


def complex_re(i, j):
    mag = 1.0 + 0.5 * math.cos(0.3 * i) * math.sin(0.2 * j + 0.4)
    return mag * math.cos(0.15 * i + 0.1 * j)


def complex_im(i, j):
    mag = 1.0 + 0.5 * math.cos(0.3 * i) * math.sin(0.2 * j + 0.4)
    return mag * math.sin(0.15 * i + 0.1 * j)


def complex_est_re(i, j):
    return complex_re(i, j) + 0.08 * math.sin(2.1 * i + 1.1 * j * j)


def complex_est_im(i, j):
    return complex_im(i, j) + 0.08 * math.cos(0.9 * i * j + 1.9 * j)


def metrics(ref32, est32):
    ref = ref32.astype(np.float64)
    est = est32.astype(np.float64)
    data_range = ref.max()
    psnr = peak_signal_noise_ratio(ref, est, data_range=data_range)
    ssim = structural_similarity(
        ref, est, win_size=7, data_range=data_range, gaussian_weights=False
    )
    nrmse = normalized_root_mse(ref, est)
    nmse = np.sum((est - ref) ** 2) / np.sum(ref**2)
    return [float(psnr), float(ssim), float(nrmse), float(nmse)]


def row(name, values):
    print(f'    ("{name}", [{", ".join(repr(v) for v in values)}]),')


def main():
    print(f"// numpy {np.__version__}, scikit-image {skimage.__version__}")
    print("// (case, [psnr, ssim, nrmse, nmse])")
    row("smooth_16x16", metrics(grid(16, 16, smooth), grid(16, 16, smooth_noisy)))
    row("signed_23x19", metrics(grid(23, 19, signed), grid(23, 19, signed_estimate)))
    row(
        "low_contrast_16x16",
        metrics(grid(16, 16, low_contrast), grid(16, 16, low_contrast_estimate)),
    )
    row("tiny_7x7", metrics(grid(7, 7, tiny), grid(7, 7, tiny_estimate)))

    def magnitude(fre, fim, h, w):
        re = grid(h, w, fre).astype(np.float64)
        im = grid(h, w, fim).astype(np.float64)
        return np.abs(re + 1j * im)

    ref = magnitude(complex_re, complex_im, 12, 17)
    est = magnitude(complex_est_re, complex_est_im, 12, 17)
    # Already float64 magnitudes; metrics() keeps them float64 (no float32 rounding of |z|).
    row("complex_12x17", metrics(ref, est))

    frames = []
    for t in range(3):
        ref = grid(10, 12, lambda i, j: frame(t, i, j))
        est = grid(10, 12, lambda i, j: frame_estimate(t, i, j))
        values = metrics(ref, est)
        frames.append(values)
        row(f"sequence_frame_{t}_10x12", values)
    row("sequence_mean", [float(np.mean([f[k] for f in frames])) for k in range(4)])


if __name__ == "__main__":
    main()
