"""Writes the small fastMRI-like and ISMRMRD-like HDF5 files of tests/hdf5.rs (tests/data/hdf5/)
with h5py, and the values cinediff's import must give, computed here with numpy.

    pip install h5py numpy && python3 tests/golden/hdf5_golden.py

Conventions (README, "Measurement bundles"): k-space [T, C, H, W], centred orthonormal FFT
(numpy: fftshift(fft2(ifftshift(x), norm="ortho"))), rows H = readout, columns W = phase encodes.
"""

import os

import h5py
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "hdf5")
rng = np.random.default_rng(20261122)


def fft2c(x):
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def crop_readout(k, n):
    """ifft along the readout (axis -2), keep rows H/2 - n/2 .. + n, fft back (centred, ortho)."""
    h = k.shape[-2]
    img = np.fft.fftshift(np.fft.ifft(np.fft.ifftshift(k, axes=-2), axis=-2, norm="ortho"), axes=-2)
    first = h // 2 - n // 2
    img = img[..., first:first + n, :]
    return np.fft.fftshift(np.fft.fft(np.fft.ifftshift(img, axes=-2), axis=-2, norm="ortho"), axes=-2)


def phantom(h, w, shift=0.0):
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = h / 2 + shift, w / 2
    disc = (((yy - cy) / (0.35 * h)) ** 2 + ((xx - cx) / (0.35 * w)) ** 2) <= 1.0
    return disc * (1.0 + 0.3 * np.cos(yy / 3.0)) + 0.05


def coil_images(img, coils):
    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for c in range(coils):
        angle = 2 * np.pi * c / coils
        sens = np.exp(-(((yy - h / 2 - 0.4 * h * np.cos(angle)) / h) ** 2
                        + ((xx - w / 2 - 0.4 * w * np.sin(angle)) / w) ** 2)) * np.exp(1j * angle)
        out.append(img * sens)
    return np.stack(out)


def save(name, array):
    np.save(os.path.join(OUT, name), array)


def fastmri_files():
    # Multi-coil: 3 slices x 2 coils x 16 readout x 8 phase encodes, a bool mask dataset [8].
    s, c, h, w = 3, 2, 16, 8
    k = np.stack([fft2c(coil_images(phantom(h, w, shift=i), c)) for i in range(s)]).astype(np.complex64)
    mask = np.zeros(w, dtype=bool)
    mask[[0, 2, 3, 4, 5, 7]] = True
    with h5py.File(os.path.join(OUT, "fastmri_multicoil.h5"), "w") as f:
        f.create_dataset("kspace", data=k)  # fully sampled; the mask undersamples retrospectively
        f.create_dataset("mask", data=mask)
        f.create_dataset("reconstruction_rss", data=np.zeros((s, 8, 8), np.float32))
        f.create_dataset("ismrmrd_header", data="<ismrmrdHeader/>")
        f.attrs["acquisition"] = "CORPD_FBK"
        f.attrs["max"] = float(np.abs(k).max())
        f.attrs["norm"] = float(np.linalg.norm(k))
    y = k * mask[None, None, None, :]
    save("fastmri_multicoil_y.npy", y.astype(np.complex64))
    save("fastmri_multicoil_mask.npy", np.repeat(mask[None].astype(np.uint8), s, axis=0))
    save("fastmri_multicoil_slice1_crop8_y.npy", crop_readout(y[1:2], 8).astype(np.complex64))

    # Single-coil: 2 slices x 12 x 8, unsampled columns stored as zeros, no mask dataset.
    s, h, w = 2, 12, 8
    k = np.stack([fft2c(phantom(h, w, shift=i)) for i in range(s)]).astype(np.complex64)
    sampled = np.zeros(w, dtype=bool)
    sampled[[1, 3, 4, 5, 6]] = True
    k = k * sampled[None, None, :]
    with h5py.File(os.path.join(OUT, "fastmri_singlecoil.h5"), "w") as f:
        f.create_dataset("kspace", data=k)
        f.attrs["acquisition"] = "CORPDFS_FBK"
    save("fastmri_singlecoil_y.npy", k[:, None].astype(np.complex64))
    save("fastmri_singlecoil_mask.npy", np.repeat(sampled[None].astype(np.uint8), s, axis=0))


# ISMRMRD AcquisitionHeader (ismrmrd.h, 340 bytes) and the acquisition record of MRD HDF5 files.
ENCODING_COUNTERS = np.dtype([
    ("kspace_encode_step_1", "<u2"), ("kspace_encode_step_2", "<u2"), ("average", "<u2"),
    ("slice", "<u2"), ("contrast", "<u2"), ("phase", "<u2"), ("repetition", "<u2"), ("set", "<u2"),
    ("segment", "<u2"), ("user", "<u2", (8,)),
])
ACQ_HEADER = np.dtype([
    ("version", "<u2"), ("flags", "<u8"), ("measurement_uid", "<u4"), ("scan_counter", "<u4"),
    ("acquisition_time_stamp", "<u4"), ("physiology_time_stamp", "<u4", (3,)),
    ("number_of_samples", "<u2"), ("available_channels", "<u2"), ("active_channels", "<u2"),
    ("channel_mask", "<u8", (16,)), ("discard_pre", "<u2"), ("discard_post", "<u2"),
    ("center_sample", "<u2"), ("encoding_space_ref", "<u2"), ("trajectory_dimensions", "<u2"),
    ("sample_time_us", "<f4"), ("position", "<f4", (3,)), ("read_dir", "<f4", (3,)),
    ("phase_dir", "<f4", (3,)), ("slice_dir", "<f4", (3,)), ("patient_table_position", "<f4", (3,)),
    ("idx", ENCODING_COUNTERS), ("user_int", "<i4", (8,)), ("user_float", "<f4", (8,)),
])
assert ACQ_HEADER.itemsize == 340, ACQ_HEADER.itemsize
ACQUISITION = np.dtype([
    ("head", ACQ_HEADER), ("traj", h5py.vlen_dtype(np.float32)), ("data", h5py.vlen_dtype(np.float32)),
])
NOISE, CALIBRATION, REVERSE = 19, 20, 22

XML = """<?xml version="1.0"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD">
  <encoding>
    <encodedSpace><matrixSize><x>{ex}</x><y>{ey}</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>600</x><y>300</y><z>8</z></fieldOfView_mm></encodedSpace>
    <reconSpace><matrixSize><x>{rx}</x><y>{ey}</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>300</x><y>300</y><z>8</z></fieldOfView_mm></reconSpace>
    <encodingLimits>
      <kspace_encoding_step_1><minimum>0</minimum><maximum>{emax}</maximum><center>{ec}</center></kspace_encoding_step_1>
      <phase><minimum>0</minimum><maximum>{pmax}</maximum><center>0</center></phase>
    </encodingLimits>
    <trajectory>cartesian</trajectory>
  </encoding>
</ismrmrdHeader>
"""


def acquisition(samples, coils, flags=0, e1=0, phase=0, average=0, slice_=0, center=None, data=None):
    rec = np.zeros((), ACQUISITION)
    head = rec["head"]
    head["version"] = 1
    head["flags"] = flags
    head["number_of_samples"] = samples
    head["available_channels"] = coils
    head["active_channels"] = coils
    head["center_sample"] = samples // 2 if center is None else center
    head["idx"]["kspace_encode_step_1"] = e1
    head["idx"]["phase"] = phase
    head["idx"]["average"] = average
    head["idx"]["slice"] = slice_
    if data is None:
        data = np.zeros((coils, samples), np.complex64)
    interleaved = np.stack([data.real, data.imag], axis=-1).astype(np.float32).ravel()
    return head.copy(), np.zeros(0, np.float32), interleaved


def flag(bit):
    return 1 << (bit - 1)


def write_mrd(name, records, xml):
    with h5py.File(os.path.join(OUT, name), "w") as f:
        g = f.create_group("dataset")
        d = g.create_dataset("data", shape=(len(records),), dtype=ACQUISITION)
        for i, (head, traj, data) in enumerate(records):
            d[i] = (head, traj, data)
        g.create_dataset("xml", shape=(1,), dtype=h5py.string_dtype(), data=[xml])


def ismrmrd_files():
    # A 2-coil cine: 3 cardiac phases, readout 16 samples (2x oversampled), 8 phase encodes
    # (centre line 4). Frame t acquires a few lines; line 4 of phase 1 twice (averages 0 and 1);
    # a noise scan, a calibration-only line and one reversed readout are mixed in.
    t, c, h, w = 3, 2, 16, 8
    full = np.stack([fft2c(coil_images(phantom(h, w, shift=2 * i), c)) for i in range(t)]).astype(np.complex64)
    lines = {0: [0, 3, 4, 5], 1: [1, 3, 4, 5, 6], 2: [2, 3, 4, 5, 7]}
    records = [acquisition(32, c, flags=flag(NOISE),
                           data=rng.standard_normal((c, 32)).astype(np.complex64))]
    y = np.zeros((t, c, h, w), np.complex64)
    mask = np.zeros((t, w), np.uint8)
    for phase in range(t):
        for e1 in lines[phase]:
            readout = full[phase, :, :, e1]  # [coils, samples]
            if phase == 2 and e1 == 5:
                records.append(acquisition(h, c, flags=flag(REVERSE), e1=e1, phase=phase,
                                           data=readout[:, ::-1]))
            else:
                records.append(acquisition(h, c, e1=e1, phase=phase, data=readout))
            y[phase, :, :, e1] = readout
            mask[phase, e1] = 1
        if phase == 1:
            other = (readout * 0 + full[1, :, :, 4] * 1.5).astype(np.complex64)
            records.append(acquisition(h, c, e1=4, phase=1, average=1, data=other))
            y[1, :, :, 4] = (full[1, :, :, 4] + other) / 2
    records.append(acquisition(h, c, flags=flag(CALIBRATION), e1=0, phase=1,
                               data=np.full((c, h), 100, np.complex64)))
    xml = XML.format(ex=h, ey=w, rx=h // 2, emax=w - 1, ec=w // 2, pmax=t - 1)
    write_mrd("ismrmrd_cine.h5", records, xml)
    save("ismrmrd_cine_y.npy", y)
    save("ismrmrd_cine_mask.npy", mask)
    save("ismrmrd_cine_crop8_y.npy", crop_readout(y, 8).astype(np.complex64))

    # Malformed: a readout whose data length disagrees with its samples x channels.
    records = [acquisition(h, c, e1=4), acquisition(h, c, e1=5)]
    head, traj, data = records[1]
    records[1] = (head, traj, data[:-2])
    write_mrd("ismrmrd_bad_length.h5", records, xml)
    # Malformed: a phase-encode step beyond the encoded matrix.
    write_mrd("ismrmrd_bad_step.h5", [acquisition(h, c, e1=4), acquisition(h, c, e1=40)], xml)
    # Only a noise scan.
    write_mrd("ismrmrd_noise_only.h5", [acquisition(32, c, flags=flag(NOISE))], xml)


def malformed_fastmri():
    with h5py.File(os.path.join(OUT, "fastmri_bad_rank.h5"), "w") as f:
        f.create_dataset("kspace", data=np.ones((4, 4), np.complex64))
    with h5py.File(os.path.join(OUT, "fastmri_real.h5"), "w") as f:
        f.create_dataset("kspace", data=np.ones((1, 4, 4), np.float32))
    with h5py.File(os.path.join(OUT, "fastmri_bad_mask.h5"), "w") as f:
        f.create_dataset("kspace", data=np.ones((1, 4, 4), np.complex64))
        f.create_dataset("mask", data=np.ones(5, np.float32))
    with h5py.File(os.path.join(OUT, "neither.h5"), "w") as f:
        f.create_dataset("image", data=np.ones((2, 2), np.float32))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    fastmri_files()
    ismrmrd_files()
    malformed_fastmri()
    print("wrote", sorted(os.listdir(OUT)))
