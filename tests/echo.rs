//! The ultrasound phantom from the command line: `cinediff phantom --kind echo` writes float32
//! `[count, frames, depth, lines]` in [−1, 1] with its PNGs and config, reproducibly per seed, and
//! refuses options of the other phantom.
//!
//! Run with `cargo test --release --test echo`.

use cinediff::io::npy::{read_npy, write_npy_f32, NpyArray};

#[macro_use]
mod common;

use common::*;

#[test]
fn echo_phantom_cli_writes_beam_frames_pngs_and_config() {
    let dir = TempDir::new("echo-phantom");
    let e = dir.join("e.npy");
    ok(args![
        "phantom",
        "--kind",
        "echo",
        "--frames",
        "6",
        "--size",
        "48",
        "--lines",
        "40",
        "--count",
        "2",
        "--seed",
        "3",
        "--frame-stride",
        "3",
        "--out",
        e
    ]);
    let array = read_npy(&e).unwrap();
    assert_eq!(array.shape(), &[2, 6, 48, 40]);
    let NpyArray::Real { data, .. } = &array else {
        panic!("expected float32, got {}", array.dtype());
    };
    assert!(data.iter().all(|v| (-1.0..=1.0).contains(v)));
    // Each sequence's first frame peaks at 0 dB = 1.
    for s in 0..2 {
        let first = &data[s * 6 * 48 * 40..(s * 6 + 1) * 48 * 40];
        assert_eq!(first.iter().copied().fold(f32::MIN, f32::max), 1.0);
    }
    for png in ["e.png", "e.sector.png"] {
        assert!(
            bytes(&dir.join(png)).starts_with(b"\x89PNG\r\n\x1a\n"),
            "{png}"
        );
    }
    let config = json(&dir.join("e.config.json"));
    assert_eq!(config["seed"].as_u64(), Some(3));
    assert_eq!(config["kind"], "echo");
    assert_eq!(config["echo"]["frame_stride"].as_u64(), Some(3));
    assert_eq!(config["echo"]["lines"].as_u64(), Some(40));
    assert_eq!(config["echo"]["dynamic_range_db"].as_f64(), Some(60.0));

    // Same seed: same bytes; another seed: different bytes.
    let again = dir.join("again.npy");
    let other = dir.join("other.npy");
    for (seed, out) in [("3", &again), ("4", &other)] {
        ok(args![
            "phantom",
            "--kind",
            "echo",
            "--frames",
            "6",
            "--size",
            "48",
            "--lines",
            "40",
            "--count",
            "2",
            "--seed",
            seed,
            "--frame-stride",
            "3",
            "--out",
            out
        ]);
    }
    assert_eq!(bytes(&e), bytes(&again));
    assert_ne!(bytes(&e), bytes(&other));
}

#[test]
fn echo_phantom_cli_rejects_bad_arguments() {
    let dir = TempDir::new("echo-bad");
    let e = dir.join("e.npy");
    fails(
        args!["phantom", "--kind", "echo", "--size", "8", "--out", e],
        &["depth", "8"],
    );
    fails(
        args!["phantom", "--kind", "echo", "--lines", "1000", "--out", e],
        &["lines", "1000"],
    );
    fails(
        args![
            "phantom",
            "--kind",
            "echo",
            "--dynamic-range",
            "0",
            "--out",
            e
        ],
        &["dynamic_range", "0"],
    );
    fails(
        args![
            "phantom",
            "--kind",
            "echo",
            "--frame-stride",
            "0",
            "--out",
            e
        ],
        &["frame_stride", "0"],
    );
    fails(
        args!["phantom", "--kind", "echo", "--complex", "--out", e],
        &["--complex", "mri"],
    );
    fails(
        args!["phantom", "--lines", "32", "--out", e],
        &["--lines", "echo"],
    );
    assert!(!e.exists(), "output written despite the error");
}

#[test]
fn mri_phantom_frame_stride_keeps_every_third_frame() {
    let dir = TempDir::new("mri-stride");
    let (slow, fast) = (dir.join("slow.npy"), dir.join("fast.npy"));
    ok(args![
        "phantom", "--frames", "7", "--size", "32", "--count", "1", "--seed", "9", "--out", slow
    ]);
    ok(args![
        "phantom",
        "--frames",
        "3",
        "--size",
        "32",
        "--count",
        "1",
        "--seed",
        "9",
        "--frame-stride",
        "3",
        "--out",
        fast
    ]);
    let (NpyArray::Real { data: a, .. }, NpyArray::Real { data: b, .. }) =
        (read_npy(&slow).unwrap(), read_npy(&fast).unwrap())
    else {
        panic!("expected float32 phantoms");
    };
    let n = 32 * 32;
    for t in 0..3 {
        assert_eq!(
            &a[3 * t * n..(3 * t + 1) * n],
            &b[t * n..(t + 1) * n],
            "frame {t}"
        );
    }
}

#[test]
fn ultrasound_bundle_interp_baseline_and_sector_cine() {
    let dir = TempDir::new("echo-recon");
    let p = dir.join("p.npy");
    ok(args![
        "phantom", "--kind", "echo", "--frames", "4", "--size", "32", "--count", "2", "--seed",
        "5", "--out", p
    ]);
    let NpyArray::Real { data, .. } = read_npy(&p).unwrap() else {
        panic!("expected float32");
    };
    // The second sequence as the truth [T, depth, lines].
    let n = 4 * 32 * 32;
    let truth = dir.join("truth.npy");
    write_npy_f32(&truth, &[4, 32, 32], &data[n..2 * n]).unwrap();
    let b = dir.join("b");
    ok(args![
        "simulate",
        "--truth",
        truth,
        "--operator",
        "us-lines",
        "--accel",
        "4",
        "--seed",
        "0",
        "--out",
        b
    ]);
    let psnr = |method: &str| {
        let r = dir.join(method);
        ok(args![
            "reconstruct",
            "--bundle",
            b,
            "--method",
            method,
            "--out",
            r
        ]);
        json(&r.join("metrics.json"))["mean"]["psnr"]
            .as_f64()
            .unwrap()
    };
    let (interp, zero_filled) = (psnr("interp"), psnr("zero-filled"));
    assert!(
        interp > zero_filled + 2.0,
        "interp {interp:.2} dB vs zero-filled {zero_filled:.2} dB"
    );
    // Interpolation across scan lines needs a scan-line bundle.
    let mri = dir.join("mri");
    ok(args![
        "simulate",
        "--truth",
        truth,
        "--operator",
        "mri",
        "--accel",
        "4",
        "--acs",
        "4",
        "--seed",
        "0",
        "--out",
        mri
    ]);
    fails(
        args![
            "reconstruct",
            "--bundle",
            mri,
            "--method",
            "interp",
            "--out",
            dir.join("x")
        ],
        &["scan-line subsampling"],
    );

    // A sequence reconstruction's cine.gif shows sector images: four panels (truth, acquired
    // lines, reconstruction, error) of 32 rows × round(32·2·sin 37.5°) = 39 columns, 2-pixel gaps.
    let m = dir.join("m");
    ok(args![
        "train", "--data", p, "--preset", "tiny", "--steps", "2", "--out", m
    ]);
    let r = dir.join("seq");
    ok(args![
        "reconstruct",
        "--bundle",
        b,
        "--method",
        "seqdiff",
        "--model",
        m,
        "--steps",
        "3",
        "--warm-start",
        "1",
        "--out",
        r
    ]);
    let gif = bytes(&r.join("cine.gif"));
    assert!(gif.starts_with(b"GIF89a"));
    let size = (
        u16::from_le_bytes([gif[6], gif[7]]),
        u16::from_le_bytes([gif[8], gif[9]]),
    );
    assert_eq!(size, (4 * 39 + 5 * 2, 32 + 2 * 2));
}
