"""Calibration of an APS run's uncertainty: mean per-pixel std, RMS error of the posterior mean
(complex, user units) and Pearson r between |error| and std per pixel.

Reads RUN_DIR/recon.npy (complex64), RUN_DIR/std.npy (float32) and the truth (complex64) with
the standard library only (no numpy needed), and prints one line.

    python3 bench/aps_uncertainty_stats.py RUN_DIR TRUTH.npy
"""
import array
import ast
import math
import struct
import sys


def load(path, descr):
    """The values of a version-1 .npy file of dtype `descr`, flat, and its shape."""
    b = open(path, "rb").read()
    if b[:6] != b"\x93NUMPY" or b[6] != 1:
        sys.exit(f"{path}: not a version-1 .npy file")
    hl = struct.unpack("<H", b[8:10])[0]
    header = ast.literal_eval(b[10 : 10 + hl].decode())
    if header["descr"] != descr or header["fortran_order"]:
        sys.exit(f"{path}: expected C-order {descr}, got {header['descr']}")
    a = array.array("f")
    a.frombytes(b[10 + hl :])
    shape = tuple(header["shape"])
    while len(shape) > 1 and shape[0] == 1:  # a phantom file is [count = 1, frames, h, w]
        shape = shape[1:]
    return a, shape


d = sys.argv[1]
r, shape = load(f"{d}/recon.npy", "<c8")
s, std_shape = load(f"{d}/std.npy", "<f4")
t, truth_shape = load(sys.argv[2], "<c8")
if not shape == std_shape == truth_shape:
    sys.exit(f"shapes differ: recon {shape}, std {std_shape}, truth {truth_shape}")
n = len(s)
err = [math.hypot(r[2 * i] - t[2 * i], r[2 * i + 1] - t[2 * i + 1]) for i in range(n)]
mean_std, mean_err = sum(s) / n, sum(err) / n
rms = math.sqrt(sum(e * e for e in err) / n)
cov = sum((e - mean_err) * (v - mean_std) for e, v in zip(err, s)) / n
sd_err = math.sqrt(sum((e - mean_err) ** 2 for e in err) / n)
sd_std = math.sqrt(sum((v - mean_std) ** 2 for v in s) / n)
print(f"mean std {mean_std:.4f}  rms error {rms:.4f}  r(|err|, std) {cov / (sd_err * sd_std):.3f}")
