"""Writes measurement bundles with numpy alone, following README.md "Measurement bundles", for
tests/bundle.rs. Run from the repository root:

    python3 tests/golden/numpy_bundle.py

Outputs (committed, small):
  tests/data/numpy_mri_bundle/      2-coil complex MRI, [T=2, 32, 32], random lines with 8 ACS, R = 4/3 (well posed for CG-SENSE)
  tests/data/numpy_mri_zero_filled.npy   numpy's adjoint  sum_c conj(S_c) F^-1(y_c)  of that bundle
  tests/data/numpy_us_bundle/       real-valued ultrasound scan-line bundle, [T=3, 24, 16]
"""
import os
import numpy as np

rng = np.random.default_rng(20261122)
root = os.path.join("tests", "data")


def fft(x):
    # Centred orthonormal FFT over the last two axes (README: numpy's fftshift(fft2(ifftshift(x)))).
    ax = (-2, -1)
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=ax), norm="ortho"), axes=ax)


def ifft(k):
    ax = (-2, -1)
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=ax), norm="ortho"), axes=ax)


# --- MRI: a disc and a rectangle with a smooth phase, moving one pixel per frame.
T, H, W, C = 2, 32, 32, 2
yy, xx = np.mgrid[0:H, 0:W]
truth = np.zeros((T, H, W), np.complex64)
for t in range(T):
    img = ((yy - 16) ** 2 + (xx - 14 - t) ** 2 < 64).astype(float) * 0.8
    img[6:12, 8:24] = 0.5
    phase = np.exp(1j * 0.3 * (xx - W / 2) / W)
    truth[t] = (img * phase).astype(np.complex64)
# Two coil maps with Gaussian profiles, normalised so sum_c |S_c|^2 = 1 everywhere.
maps = np.stack([np.exp(-((xx - 8) ** 2 + (yy - 16) ** 2) / 400.0),
                 np.exp(-((xx - 24) ** 2 + (yy - 16) ** 2) / 400.0) * np.exp(0.5j)]).astype(np.complex128)
maps /= np.sqrt((np.abs(maps) ** 2).sum(0, keepdims=True))
maps = maps.astype(np.complex64)
mask = np.zeros((T, W), np.uint8)
for t in range(T):
    mask[t, W // 2 - 4: W // 2 + 4] = 1  # 8 ACS lines around index W/2
    outer = [j for j in range(W) if mask[t, j] == 0]
    mask[t, rng.choice(outer, size=16, replace=False)] = 1  # 24 of 32 lines: R = 4/3
sigma = 0.001
noise = sigma / np.sqrt(2) * (rng.standard_normal((T, C, H, W)) + 1j * rng.standard_normal((T, C, H, W)))
y = fft(maps[None] * truth[:, None]) + noise
y = (y * mask[:, None, None, :]).astype(np.complex64)
out = os.path.join(root, "numpy_mri_bundle")
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "measurement.toml"), "w") as f:
    f.write('operator = "mri"\nshape = [2, 32, 32]\ncomplex = true\nnoise_sigma = 0.001\ncoils = 2\n')
np.save(os.path.join(out, "y.npy"), y)
np.save(os.path.join(out, "mask.npy"), mask)
np.save(os.path.join(out, "csm.npy"), maps)
np.save(os.path.join(out, "truth.npy"), truth)
zero_filled = (np.conj(maps)[None] * ifft(y * mask[:, None, None, :])).sum(1).astype(np.complex64)
np.save(os.path.join(root, "numpy_mri_zero_filled.npy"), zero_filled)

# --- Ultrasound: real [T, depth, lines] in [-1, 1]; every other scan line per frame, alternating.
T, D, L = 3, 24, 16
truth = np.clip(np.sin(xx[:D, :L] / 3.0)[None] * np.cos(yy[:D, :L] / 5.0)[None]
                + 0.1 * np.arange(T)[:, None, None], -1, 1).astype(np.float32)
mask = np.zeros((T, L), np.uint8)
for t in range(T):
    mask[t, t % 2::2] = 1
y = (truth * mask[:, None, :]).astype(np.float32)
out = os.path.join(root, "numpy_us_bundle")
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "measurement.toml"), "w") as f:
    # noise_sigma and the rest are left to their defaults on purpose.
    f.write('operator = "us-lines"\nshape = [3, 24, 16]\ncomplex = false\n')
np.save(os.path.join(out, "y.npy"), y)
np.save(os.path.join(out, "mask.npy"), mask)
np.save(os.path.join(out, "truth.npy"), truth)
print("wrote", root)
