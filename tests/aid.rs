//! AID through the command line on a tiny model: `train-aid` (two-stage: the prior's U-Net stays
//! bitwise frozen; a further `--init-from` stage with `--unfreeze-prior` trains it), `reconstruct --method aid` (frames.csv, summary.json, cine.gif like every
//! sequence method), `generate` (reproducible by seed, given first frames kept), bad input.
//! The network's causality and parallel = frame-by-frame equality are unit tests in
//! `src/nn/aid.rs`.
//!
//! Run with `cargo test --release --test aid`.

#[macro_use]
mod common;

use common::*;

use cinediff::io::model_dir::{load_aid, load_denoiser};
use cinediff::nn::device::default_device;

#[test]
fn train_aid_reconstruct_and_generate() {
    let dir = TempDir::new("aid-cli");
    let seqs = dir.join("seqs.npy");
    ok(args![
        "phantom",
        "--complex",
        "--frames",
        "6",
        "--size",
        "32",
        "--count",
        "2",
        "--seed",
        "3",
        "--out",
        seqs
    ]);
    let prior = dir.join("prior");
    ok(args![
        "train",
        "--data",
        seqs,
        "--preset",
        "tiny",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--out",
        prior
    ]);
    let model = dir.join("aid");
    let train = |steps: &str, extra: &[&str]| {
        let mut a: Vec<&std::ffi::OsStr> = args![
            "train-aid",
            "--data",
            seqs,
            "--prior",
            prior,
            "--out",
            model,
            "--window",
            "4",
            "--heads",
            "2",
            "--batch-size",
            "1",
            "--steps",
            steps,
            "--checkpoint-every",
            "2",
            "--lr",
            "1e-3"
        ]
        .to_vec();
        a.extend(extra.iter().map(std::ffi::OsStr::new));
        ok(&a)
    };
    // A truncated v-weighting of the diffusion times is a training setting that survives --resume.
    train("2", &["--v-weight-cap", "20"]);
    train("3", &["--resume"]);
    let log = String::from_utf8(bytes(&model.join("train_log.csv"))).unwrap();
    assert_eq!(log.lines().count(), 1 + 3, "{log}");
    let config = json(&model.join("config.json"));
    assert_eq!(config["kind"], "aid");
    assert_eq!(config["frozen_prior"], true);
    assert_eq!(config["timestep_emphasis"]["kind"], "truncated_v");
    assert_eq!(config["timestep_emphasis"]["cap"], 20.0);

    // Two-stage training leaves the U-Net exactly the prior.
    let device = default_device();
    let (_, net) = load_aid(&model, &device).unwrap();
    let prior_net = load_denoiser(&prior, &device).unwrap().into_unet();
    let x = burn::tensor::Tensor::<4>::ones([1, 2, 32, 32], &device);
    let a = net.unet().forward(x.clone(), &[100]).into_data();
    let b = prior_net.forward(x, &[100]).into_data();
    assert_eq!(a, b, "the frozen U-Net changed");
    // Per-frame commands take the AID directory as its prior without the branch: here, the prior.
    let (s_aid, s_prior) = (dir.join("s_aid.npy"), dir.join("s_prior.npy"));
    for (m, out) in [(&model, &s_aid), (&prior, &s_prior)] {
        ok(args![
            "sample", "--model", m, "--count", "1", "--steps", "3", "--seed", "2", "--out", out
        ]);
    }
    assert_eq!(bytes(&s_aid), bytes(&s_prior));

    // A further stage from the two-stage model with --unfreeze-prior trains the U-Net too.
    let stage = dir.join("aid-all");
    ok(args![
        "train-aid",
        "--data",
        seqs,
        "--init-from",
        model,
        "--unfreeze-prior",
        "--out",
        stage,
        "--batch-size",
        "1",
        "--steps",
        "1",
        "--lr",
        "1e-2",
        "--ema-decay",
        "0",
        "--conditioning-noise",
        "0.25"
    ]);
    let stage_config = json(&stage.join("config.json"));
    assert_eq!(stage_config["frozen_prior"], false);
    assert_eq!(stage_config["conditioning_noise"], 0.25);
    fails(
        args![
            "train-aid",
            "--data",
            seqs,
            "--init-from",
            model,
            "--out",
            dir.join("aid-bad"),
            "--conditioning-noise",
            "2"
        ],
        &["conditioning_noise"],
    );
    let (_, all) = load_aid(&stage, &device).unwrap();
    let x = burn::tensor::Tensor::<4>::ones([1, 2, 32, 32], &device);
    assert_ne!(
        all.unet().forward(x, &[100]).into_data(),
        a,
        "--unfreeze-prior left the U-Net unchanged"
    );

    // Reconstruction writes what every sequence method writes.
    let truth = dir.join("truth.npy");
    ok(args![
        "phantom",
        "--complex",
        "--frames",
        "3",
        "--size",
        "32",
        "--count",
        "1",
        "--seed",
        "9",
        "--out",
        truth
    ]);
    let b = dir.join("bundle");
    ok(args![
        "simulate",
        "--truth",
        truth,
        "--operator",
        "mri",
        "--accel",
        "4",
        "--out",
        b
    ]);
    let r = dir.join("r");
    ok(args![
        "reconstruct",
        "--bundle",
        b,
        "--method",
        "aid",
        "--model",
        model,
        "--steps",
        "4",
        "--out",
        r
    ]);
    for f in [
        "recon.npy",
        "frames.csv",
        "summary.json",
        "cine.gif",
        "metrics.json",
    ] {
        assert!(r.join(f).is_file(), "{f} missing");
    }
    // A prior directory is not an AID model.
    fails(
        args![
            "reconstruct",
            "--bundle",
            b,
            "--method",
            "aid",
            "--model",
            prior,
            "--out",
            dir.join("r2")
        ],
        &["AID model"],
    );

    // Generation: reproducible by seed; given first frames are kept.
    let (g1, g2) = (dir.join("g1.npy"), dir.join("g2.npy"));
    for g in [&g1, &g2] {
        ok(args![
            "generate", "--model", model, "--frames", "3", "--steps", "3", "--seed", "4", "--out",
            g
        ]);
    }
    assert_eq!(bytes(&g1), bytes(&g2));
    let g1_config = json(&sidecar(&g1));
    assert_eq!(
        g1_config["temporal"]["autocorrelation"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Shared starting noise (ρ = 1) with the deterministic DDIM: frames differ only through the
    // conditioning, which the briefly trained branch barely uses, so they are near-copies; fresh
    // noise (the default) draws different frames.
    let g_shared = dir.join("g_shared.npy");
    ok(args![
        "generate",
        "--model",
        model,
        "--frames",
        "3",
        "--steps",
        "3",
        "--seed",
        "4",
        "--noise-correlation",
        "1",
        "--out",
        g_shared
    ]);
    let diff = |path: &std::path::Path| {
        json(&sidecar(path))["temporal"]["mean_abs_difference"]
            .as_f64()
            .unwrap()
    };
    let (fresh, shared) = (diff(&g1), diff(&g_shared));
    assert!(shared < 0.1 * fresh, "shared {shared} vs fresh {fresh}");
    fails(
        args![
            "generate",
            "--model",
            model,
            "--frames",
            "3",
            "--noise-correlation",
            "1.5",
            "--out",
            dir.join("g5.npy")
        ],
        &["noise correlation"],
    );
    let first = dir.join("first.npy");
    ok(args![
        "phantom",
        "--complex",
        "--frames",
        "2",
        "--size",
        "32",
        "--count",
        "1",
        "--seed",
        "5",
        "--out",
        first
    ]);
    let g3 = dir.join("g3.npy");
    ok(args![
        "generate", "--model", model, "--frames", "3", "--steps", "3", "--first", first, "--out",
        g3
    ]);
    // The first two frames are the given ones (complex64 payload after the 128-byte header; the
    // normalisation round trip is exact to float rounding).
    let (given, made) = (bytes(&first), bytes(&g3));
    let values = |b: &[u8], n: usize| -> Vec<f32> {
        b[128..128 + 4 * n]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let n = 2 * 2 * 32 * 32;
    for (a, b) in values(&given, n).iter().zip(values(&made, n)) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    fails(
        args![
            "generate",
            "--model",
            model,
            "--frames",
            "1",
            "--out",
            dir.join("g4.npy")
        ],
        &["--frames"],
    );
}

/// `x.npy` → `x.config.json`.
fn sidecar(path: &std::path::Path) -> std::path::PathBuf {
    path.with_extension("config.json")
}
