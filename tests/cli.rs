//! End-to-end tests of the `cinediff` binary: the exact command forms other tools call, byte-level
//! reproducibility per seed, the sidecar files, and one-line `error:` messages for bad input.
//!
//! Run with `cargo test --release --test cli`. Every test works in its own directory under the
//! system temp dir, removed when the test ends (also on failure).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use cinediff::io::npy::{read_npy, NpyArray};

#[macro_use]
mod common;

use common::*;

/// Asserts `path` holds an array of `shape`, complex or not, every value finite.
fn assert_npy(path: &Path, shape: &[usize], complex: bool) {
    let array = read_npy(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert_eq!(array.shape(), shape, "{}", path.display());
    assert_eq!(
        array.is_complex(),
        complex,
        "{}: dtype {}",
        path.display(),
        array.dtype()
    );
    let finite = match &array {
        NpyArray::Real { data, .. } => data.iter().all(|v| v.is_finite()),
        NpyArray::Complex { data, .. } => data.iter().all(|v| v.re.is_finite() && v.im.is_finite()),
        NpyArray::U8 { .. } => true,
    };
    assert!(finite, "{}: non-finite values", path.display());
}

fn assert_sidecars(npy: &Path, seed: u64) {
    let stem = npy.file_stem().unwrap().to_string_lossy().into_owned();
    let png = npy.with_file_name(format!("{stem}.png"));
    let config = npy.with_file_name(format!("{stem}.config.json"));
    assert!(
        bytes(&png).starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        png.display()
    );
    assert_eq!(
        json(&config)["seed"].as_u64(),
        Some(seed),
        "{}",
        config.display()
    );
}

/// Data rows (lines after the header) of a model dir's train_log.csv.
fn log_rows(model: &Path) -> usize {
    let text = String::from_utf8(bytes(&model.join("train_log.csv"))).unwrap();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    assert_eq!(lines.next(), Some("step,loss,learning_rate,elapsed_s"));
    lines.count()
}

/// A small real phantom: 2 sequences × 4 frames of 32×32 (8 training images).
fn small_phantom(dir: &TempDir, name: &str, seed: u64) -> PathBuf {
    let out = dir.join(name);
    let seed = seed.to_string();
    ok(args![
        "phantom", "--frames", "4", "--size", "32", "--count", "2", "--seed", seed, "--out", out
    ]);
    out
}

/// Trains the tiny preset on `data` into `out` (extra flags appended).
fn train_tiny(data: &Path, out: &Path, steps: usize, seed: u64, extra: &[&str]) -> Output {
    let (steps, seed) = (steps.to_string(), seed.to_string());
    let mut a: Vec<&OsStr> = args![
        "train",
        "--data",
        data,
        "--preset",
        "tiny",
        "--steps",
        steps,
        "--batch-size",
        "4",
        "--seed",
        seed,
        "--out",
        out
    ]
    .to_vec();
    a.extend(extra.iter().map(OsStr::new));
    ok(&a)
}

/// The exact command forms of the contract, end to end on 64×64 data, with reproducibility checks.
#[test]
fn contract_forms_end_to_end() {
    let dir = TempDir::new("contract");
    let p = dir.join("p.npy");
    let pc = dir.join("pc.npy");
    let m = dir.join("m");
    let s = dir.join("s.npy");

    ok(args![
        "phantom", "--frames", "16", "--size", "64", "--count", "4", "--seed", "1", "--out", p
    ]);
    assert_npy(&p, &[4, 16, 64, 64], false);
    assert_sidecars(&p, 1);
    assert_eq!(json(&dir.join("p.config.json"))["dtype"], "float32");

    ok(args![
        "phantom",
        "--frames",
        "16",
        "--size",
        "64",
        "--count",
        "4",
        "--seed",
        "1",
        "--complex",
        "--out",
        pc
    ]);
    assert_npy(&pc, &[4, 16, 64, 64], true);
    assert_sidecars(&pc, 1);
    assert_eq!(json(&dir.join("pc.config.json"))["dtype"], "complex64");

    // Same seed: byte-identical; other seed: different bytes (real and complex).
    for (first, complex) in [(&p, false), (&pc, true)] {
        let again = dir.join("again.npy");
        let other = dir.join("other.npy");
        for (seed, out) in [("1", &again), ("2", &other)] {
            let mut a: Vec<&OsStr> =
                args!["phantom", "--frames", "16", "--size", "64", "--count", "4"].to_vec();
            if complex {
                a.push(OsStr::new("--complex"));
            }
            a.extend(args!["--seed", seed, "--out", out]);
            ok(&a);
        }
        assert_eq!(
            bytes(first),
            bytes(&again),
            "phantom (complex {complex}): same seed, different bytes"
        );
        assert_ne!(
            bytes(first),
            bytes(&other),
            "phantom (complex {complex}): different seeds, same bytes"
        );
    }

    // Train the contract form on the complex data: a 2-channel model.
    ok(args![
        "train",
        "--data",
        pc,
        "--preset",
        "tiny",
        "--steps",
        "30",
        "--out",
        format!("{}/", m.display())
    ]);
    assert!(m.join("config.json").is_file() && m.join("model.safetensors").is_file());
    assert_eq!(log_rows(&m), 30);

    ok(args![
        "sample",
        "--model",
        format!("{}/", m.display()),
        "--count",
        "2",
        "--sampler",
        "ddim",
        "--steps",
        "10",
        "--seed",
        "0",
        "--out",
        s
    ]);
    assert_npy(&s, &[2, 64, 64], true);
    assert_sidecars(&s, 0);
    assert_eq!(json(&dir.join("s.config.json"))["dtype"], "complex64");

    let s_again = dir.join("s_again.npy");
    let s_other = dir.join("s_other.npy");
    ok(args![
        "sample",
        "--model",
        m,
        "--count",
        "2",
        "--sampler",
        "ddim",
        "--steps",
        "10",
        "--seed",
        "0",
        "--out",
        s_again
    ]);
    ok(args![
        "sample",
        "--model",
        m,
        "--count",
        "2",
        "--sampler",
        "ddim",
        "--steps",
        "10",
        "--seed",
        "1",
        "--out",
        s_other
    ]);
    assert_eq!(
        bytes(&s),
        bytes(&s_again),
        "sample: same seed, different bytes"
    );
    assert_ne!(
        bytes(&s),
        bytes(&s_other),
        "sample: different seeds, same bytes"
    );
}

/// Two trainings with the same seed give byte-identical weights; another seed differs. A real
/// (1-channel) model samples float32.
#[test]
fn train_is_reproducible_and_real_model_samples_float32() {
    let dir = TempDir::new("train-seed");
    let data = small_phantom(&dir, "d.npy", 3);
    let (a, b, c) = (dir.join("a"), dir.join("b"), dir.join("c"));
    train_tiny(&data, &a, 8, 0, &[]);
    train_tiny(&data, &b, 8, 0, &[]);
    train_tiny(&data, &c, 8, 1, &[]);
    for file in ["config.json", "model.safetensors"] {
        assert_eq!(
            bytes(&a.join(file)),
            bytes(&b.join(file)),
            "train: same seed, different {file}"
        );
    }
    assert_ne!(
        bytes(&a.join("model.safetensors")),
        bytes(&c.join("model.safetensors")),
        "train: different seeds, same weights"
    );

    let s = dir.join("s.npy");
    ok(args![
        "sample",
        "--model",
        a,
        "--count",
        "2",
        "--sampler",
        "ddim",
        "--steps",
        "10",
        "--seed",
        "5",
        "--out",
        s
    ]);
    assert_npy(&s, &[2, 32, 32], false);
    assert_sidecars(&s, 5);
    assert_eq!(json(&dir.join("s.config.json"))["dtype"], "float32");
}

/// An existing model is refused without --resume/--force; --resume continues the run (log rows and
/// step count add up); --force replaces it.
#[test]
fn train_existing_dir_resume_and_force() {
    let dir = TempDir::new("train-resume");
    let data = small_phantom(&dir, "d.npy", 4);
    let m = dir.join("m");
    train_tiny(&data, &m, 10, 0, &[]);
    assert_eq!(log_rows(&m), 10);
    let before = bytes(&m.join("model.safetensors"));

    fails(
        args!["train", "--data", data, "--preset", "tiny", "--steps", "10", "--out", m],
        &["already holds a model", "--resume", "--force"],
    );
    assert_eq!(
        bytes(&m.join("model.safetensors")),
        before,
        "refused run touched the model"
    );
    assert_eq!(log_rows(&m), 10, "refused run touched the log");

    // Settings fixed at the start cannot be changed on resume; --steps may extend the run.
    fails(
        args!["train", "--data", data, "--preset", "tiny", "--steps", "20", "--resume", "--out", m],
        &["--preset", "cannot be changed on --resume"],
    );
    ok(args![
        "train", "--data", data, "--steps", "20", "--resume", "--out", m
    ]);
    assert_eq!(log_rows(&m), 20, "resumed 10 → 20 steps");
    let resolved = json(&m.join("train_config.json"));
    assert_eq!(
        resolved["train"]["batch_size"].as_u64(),
        Some(4),
        "resume kept the saved batch size"
    );
    assert_eq!(
        json(&m.join("checkpoint/state.json"))["step"].as_u64(),
        Some(20)
    );
    let steps: Vec<usize> = String::from_utf8(bytes(&m.join("train_log.csv")))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(steps, (1..=20).collect::<Vec<_>>(), "log steps");

    // A warm restart: the decay restarts at the given rate at the resumed step.
    fails(
        args![
            "train",
            "--data",
            data,
            "--steps",
            "25",
            "--restart-lr",
            "5e-4",
            "--out",
            m
        ],
        &["--resume"],
    );
    ok(args![
        "train",
        "--data",
        data,
        "--steps",
        "25",
        "--resume",
        "--restart-lr",
        "5e-4",
        "--out",
        m
    ]);
    let restarts = json(&m.join("train_config.json"))["train"]["lr_restarts"].clone();
    // The 10 → 20 extension recorded the first restart; the warm restart is the last.
    let last = restarts
        .as_array()
        .and_then(|r| r.last())
        .expect("lr_restarts recorded");
    assert_eq!(last["step"].as_u64(), Some(20));
    assert_eq!(last["learning_rate"].as_f64(), Some(5e-4));
    let log = String::from_utf8(bytes(&m.join("train_log.csv"))).unwrap();
    let row21: Vec<&str> = log.lines().nth(21).unwrap().split(',').collect();
    assert_eq!(row21[0], "21");
    assert!(
        (row21[2].parse::<f64>().unwrap() - 5e-4).abs() < 1e-9,
        "first rate after the restart: {}",
        row21[2]
    );

    train_tiny(&data, &m, 3, 0, &["--force"]);
    assert_eq!(log_rows(&m), 3, "--force starts a new log");
    assert_eq!(
        json(&m.join("checkpoint/state.json"))["step"].as_u64(),
        Some(3)
    );
}

/// Bad training data: each rejected before any model directory is created.
#[test]
fn train_rejects_bad_data() {
    let dir = TempDir::new("bad-data");
    let out = dir.join("m");
    let shape = [2, 32, 32];
    let zeros = vec![0.0f32; 2 * 32 * 32];

    let write = |name: &str, content: Vec<u8>| {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    };
    let int32 = write(
        "int32.npy",
        npy_bytes("<i4", &shape, &vec![0u8; 4 * 2 * 32 * 32]),
    );
    let rank2 = write(
        "rank2.npy",
        npy_bytes("<f4", &[32, 32], &f32_payload(&zeros[..32 * 32])),
    );
    let mut with_nan = zeros.clone();
    with_nan[1234] = f32::NAN;
    let nan = write("nan.npy", npy_bytes("<f4", &shape, &f32_payload(&with_nan)));
    let mut complex = f32_payload(&vec![0.5f32; 2 * 2 * 32 * 32]);
    complex[12..16].copy_from_slice(&f32::INFINITY.to_le_bytes());
    let complex_inf = write("complex_inf.npy", npy_bytes("<c8", &shape, &complex));
    let good = npy_bytes("<f4", &shape, &f32_payload(&zeros));
    let truncated = write("truncated.npy", good[..good.len() - 100].to_vec());
    let truncated_header = write("truncated_header.npy", good[..40].to_vec());
    let missing = dir.join("missing.npy");

    // The files are what they claim: the reader sees the NaN, the rank and the complex value.
    assert!(read_npy(&rank2).is_ok() && read_npy(&nan).is_ok() && read_npy(&complex_inf).is_ok());

    let cases: [(&Path, &[&str]); 7] = [
        (&missing, &["missing.npy"]),
        (&int32, &["int32.npy", "dtype", "<i4"]),
        (&rank2, &["rank2.npy", "rank"]),
        (&nan, &["nan.npy", "non-finite"]),
        (&complex_inf, &["complex_inf.npy", "non-finite"]),
        (&truncated, &["truncated.npy", "size"]),
        (&truncated_header, &["truncated_header.npy", "truncated"]),
    ];
    for (data, needles) in cases {
        fails(
            args!["train", "--data", data, "--preset", "tiny", "--steps", "5", "--out", out],
            needles,
        );
        assert!(
            !out.exists(),
            "{}: a model dir was created for bad data",
            data.display()
        );
    }
}

#[test]
fn zero_steps_rejected() {
    let dir = TempDir::new("zero-steps");
    let data = small_phantom(&dir, "d.npy", 0);
    let out = dir.join("m");
    fails(
        args!["train", "--data", data, "--preset", "tiny", "--steps", "0", "--out", out],
        &["steps"],
    );
    assert!(!out.exists(), "a model dir was created for --steps 0");
    // Checked before the model is read, so any directory will do.
    let s = dir.join("s.npy");
    fails(
        args!["sample", "--model", dir.0, "--steps", "0", "--out", s],
        &["steps"],
    );
    assert!(!s.exists());
}

#[test]
fn sample_rejects_bad_model_dirs() {
    let dir = TempDir::new("bad-model");
    let s = dir.join("s.npy");
    let missing = dir.join("no_such_model");
    fails(
        args!["sample", "--model", missing, "--count", "2", "--steps", "10", "--out", s],
        &["no_such_model"],
    );
    let garbage = dir.join("garbage_model");
    std::fs::create_dir(&garbage).unwrap();
    std::fs::write(garbage.join("config.json"), "this is { not json").unwrap();
    std::fs::write(garbage.join("model.safetensors"), "nor are these weights").unwrap();
    fails(
        args!["sample", "--model", garbage, "--count", "2", "--steps", "10", "--out", s],
        &["garbage_model", "config.json", "json"],
    );
    assert!(!s.exists(), "output written despite the error");
}

#[test]
fn phantom_rejects_bad_arguments() {
    let dir = TempDir::new("bad-phantom");
    let p = dir.join("p.npy");
    fails(
        args!["phantom", "--size", "16", "--out", p],
        &["size", "16"],
    );
    fails(
        args!["phantom", "--count", "0", "--out", p],
        &["count", "0"],
    );
    fails(
        args!["phantom", "--out", dir.join("no_dir/p.npy")],
        &["no_dir"],
    );
    assert!(!p.exists(), "output written despite the error");
}
