"""NIfTI-1 files written by nibabel (an independent implementation of the format) and the values
nibabel reads from them, for tests/interop.rs.

    python3 -m venv /tmp/v && /tmp/v/bin/pip install nibabel numpy
    /tmp/v/bin/python tests/golden/nifti_golden.py tests/data/nifti
    /tmp/v/bin/python tests/golden/nifti_golden.py --check DIR   # nibabel reads cinediff's .nii files

Each case writes <name>.nii and <name>.npy: nibabel's scaled values (get_fdata, float64, stored as
float32 or complex64) laid out as cinediff reads them: voxel (i, j, k, t) -> x[t, k, i, j].
"""
import struct
import sys
from pathlib import Path

import nibabel as nib
import numpy as np


def to_cinediff(a):
    """nibabel's (i, j[, k[, t]]) array in cinediff's axis order (see src/io/nifti.rs)."""
    if a.ndim == 2:
        return a
    if a.ndim == 3:
        return np.transpose(a, (2, 0, 1))  # [Z, H, W]
    if a.shape[2] == 1:
        return np.transpose(a[:, :, 0, :], (2, 0, 1))  # [T, H, W]
    return np.transpose(a, (3, 2, 0, 1))  # [T, Z, H, W]


def write(out, name, data, dtype, slope=None, inter=None, big_endian=False):
    header = nib.Nifti1Header(endianness=">" if big_endian else "<")
    header.set_data_dtype(dtype)
    img = nib.Nifti1Image(data, np.eye(4), header)
    path = out / f"{name}.nii"
    nib.save(img, path)
    if slope is not None:
        # nibabel picks its own scaling when saving; patch scl_slope/scl_inter into the header so
        # the stored integers are `data` and nibabel applies this scaling on reading.
        # Offsets 112 and 116 of nifti1.h; nibabel then reads the scaling back (printed below).
        raw = bytearray(path.read_bytes())
        raw[112:120] = struct.pack((">" if big_endian else "<") + "ff", slope, inter)
        path.write_bytes(bytes(raw))
    back = nib.load(path)
    if np.iscomplexobj(data):
        values = np.asarray(back.dataobj).astype(np.complex64)
    else:
        values = back.get_fdata(dtype=np.float64).astype(np.float32)
    np.save(out / f"{name}.npy", np.ascontiguousarray(to_cinediff(values)))
    print(name, back.header.get_data_dtype(), back.shape, back.header.endianness, (back.dataobj.slope, back.dataobj.inter))


def main():
    if sys.argv[1] == "--check":
        for path in sorted(Path(sys.argv[2]).glob("*.nii")):
            img = nib.load(path)
            data = np.asarray(img.dataobj)
            expected = np.load(path.with_suffix(".npy"))
            got = np.ascontiguousarray(to_cinediff(data))
            ok = got.dtype == expected.dtype and got.tobytes() == expected.tobytes()
            print(path.name, img.header.get_data_dtype(), img.shape, "bitwise equal" if ok else "DIFFERENT")
        return
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    i, j, k = np.meshgrid(np.arange(5), np.arange(4), np.arange(3), indexing="ij")
    vol = (100 * i + 10 * j + k).astype(np.float64)  # voxel (i, j, k) = 100i + 10j + k
    # Scaled integers, little and big endian (nibabel picks slope/inter; set explicitly here).
    write(out, "int16_le_scaled", (vol - 200).astype(np.int16), np.int16, slope=0.5, inter=-3.0)
    write(out, "int16_be_scaled", (vol - 200).astype(np.int16), np.int16, slope=2.0, inter=1.0, big_endian=True)
    write(out, "uint8_2d", (vol[:, :, 0] % 256).astype(np.uint8), np.uint8)
    write(out, "int32_be", (vol * 1000 - 123456).astype(np.int32), np.int32, big_endian=True)
    write(out, "float64_le", vol / 7.0, np.float64)
    # 4-D with one slice: a 2D+t series [T, H, W]; and a float32 volume with several slices and frames.
    series = np.stack([vol[:, :, 0] + 1000 * t for t in range(3)], axis=-1)[:, :, None, :]
    write(out, "float32_be_series", series.astype(np.float32), np.float32, big_endian=True)
    vt = np.stack([vol + 1000 * t for t in range(2)], axis=-1)
    write(out, "float32_4d", (vt / 3).astype(np.float32), np.float32)
    c = (vol + 1j * (vol[::-1] - 50)).astype(np.complex64)
    write(out, "complex64_le", c, np.complex64)


if __name__ == "__main__":
    main()
