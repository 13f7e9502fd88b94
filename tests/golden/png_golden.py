"""PNG and APNG files written from the PNG 1.2 / APNG specifications with only Python's zlib (an
encoder independent of the `png` crate), and their pixel levels, for tests/interop.rs.

    python3 tests/golden/png_golden.py tests/data/png

Each <name>.png has <name>.npy: the decoded levels as float32, [H, W] (or [T, H, W] for the animation).
"""
import struct
import sys
import zlib
from pathlib import Path

import numpy as np


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def scanlines(levels, depth):
    """Filter type 0 rows, samples packed big-endian (bit depths < 8 packed MSB first)."""
    out = b""
    for row in levels:
        if depth == 16:
            out += b"\0" + b"".join(struct.pack(">H", int(v)) for v in row)
        elif depth == 8:
            out += b"\0" + bytes(int(v) for v in row)
        else:  # 4-bit: two samples a byte, a trailing odd sample padded with 0
            vals = [int(v) for v in row] + [0] * (len(row) % 2)
            out += b"\0" + bytes((vals[k] << 4) | vals[k + 1] for k in range(0, len(vals), 2))
    return out


def ihdr(h, w, depth, colour=0):
    return chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0))


def still(path, levels, depth):
    h, w = levels.shape
    data = b"\x89PNG\r\n\x1a\n" + ihdr(h, w, depth)
    data += chunk(b"IDAT", zlib.compress(scanlines(levels, depth)))
    path.write_bytes(data + chunk(b"IEND", b""))


def animated(path, frames, depth):
    t, h, w = frames.shape
    data = b"\x89PNG\r\n\x1a\n" + ihdr(h, w, depth)
    data += chunk(b"acTL", struct.pack(">II", t, 0))
    seq = 0
    for k in range(t):
        # fcTL: sequence, width, height, x, y, delay 1/10 s, dispose none, blend source
        data += chunk(b"fcTL", struct.pack(">IIIIIHHBB", seq, w, h, 0, 0, 1, 10, 0, 0))
        seq += 1
        z = zlib.compress(scanlines(frames[k], depth))
        if k == 0:
            data += chunk(b"IDAT", z)
        else:
            data += chunk(b"fdAT", struct.pack(">I", seq) + z)
            seq += 1
    path.write_bytes(data + chunk(b"IEND", b""))


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    i, j = np.meshgrid(np.arange(5), np.arange(7), indexing="ij")  # H = 5 rows, W = 7 columns
    cases = {
        "grey16": ((i * 13107 + j * 9361) % 65536, 16),  # spans 0..65535, row-dependent
        "grey8": ((i * 50 + j * 3) % 256, 8),
        "grey4": ((i * 3 + j) % 16, 4),
    }
    for name, (levels, depth) in cases.items():
        still(out / f"{name}.png", levels, depth)
        # Decoders scale 1/2/4-bit samples to 8 bits by v * 255 / (2^depth - 1) (the PNG spec's
        # sample depth rescaling; exact, 17 for 4-bit); 8 and 16 bits are as stored.
        scale = 255 // (2**depth - 1) if depth < 8 else 1
        np.save(out / f"{name}.npy", (levels * scale).astype(np.float32))
    frames = np.stack([(i * 40 + j * 5 + 17 * t) % 256 for t in range(3)])
    animated(out / "apng8.png", frames, 8)
    np.save(out / "apng8.npy", frames.astype(np.float32))


if __name__ == "__main__":
    main()
