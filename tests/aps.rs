//! APS on a problem with a closed-form posterior: a Gaussian prior N(0, 1) per pixel (the exact
//! ε-predictor `GaussianDenoiser` as the "diffusion prior"), inpainting of half the pixels with
//! noise σ = 0.5. The posterior is Gaussian per pixel: measured pixels N(0.8·y, 0.2)
//! (s²/(s² + σ²) = 0.8, s²σ²/(s² + σ²) = 0.2), missing pixels N(0, 1). A small conditional flow
//! trained by `train::aps` (no paired data: the KL objective with the likelihood-weighted
//! score-matching bound) must reproduce these moments; the prior term is only an estimate of
//! −log p (exact in the continuous-time limit for a Gaussian), hence the stated tolerances.
//!
//! The command line: `train-aps` trains, resumes bit-identically and refuses bad input;
//! `reconstruct --method aps` writes the mean, spread and draws.
//!
//! Run with `cargo test --release --test aps`.

#[macro_use]
mod common;

use common::*;

use cinediff::aps::{
    ApsModelConfig, ApsSampler, MeasurementFamily, PriorBound, PriorGradient, ProblemSymmetry,
    SamplingSymmetries, APS_KIND,
};
use cinediff::bundle::{simulate, MaskPattern, OperatorKind, Truth};
use cinediff::data::Normalization;
use cinediff::diffusion::schedule::NoiseSchedule;
use cinediff::diffusion::{Denoiser, GaussianDenoiser};
use cinediff::image::ImageBatch;
use cinediff::nn::device::default_device;
use cinediff::nn::flow::FlowConfig;
use cinediff::rng::{fill_standard_normal, substream};
use cinediff::train::aps::ApsTrainer;
use cinediff::train::{Flips, TrainConfig};
use num_complex::Complex32;

const SIZE: usize = 4;
const NOISE: f64 = 0.5;

fn model_config(gradient: PriorGradient) -> ApsModelConfig {
    ApsModelConfig {
        kind: APS_KIND.into(),
        flow: FlowConfig {
            in_channels: 1,
            image_size: SIZE,
            cond_channels: 2,
            levels: 1,
            steps_per_level: 2,
            hidden: 16,
            cond_features: 8,
            initial_log_std: (0.5f32).ln(),
            kspace_scale: false,
            mean_net: None,
            mean_unmeasured_only: false,
            refine_net: None,
        },
        normalization: Normalization {
            offset: 0.0,
            scale: 1.0,
        },
        family: MeasurementFamily {
            operator: OperatorKind::Inpaint,
            mask: MaskPattern::Random,
            acceleration: 2.0,
            acs: 0,
            coils: 1,
            noise_sigma: NOISE,
            scale: 2,
            blur_sigma: 1.0,
        },
        prior_bound: PriorBound {
            min_timestep: 0,
            max_timestep: None,
            draws: 8,
            gradient,
        },
        prior: "Gaussian N(0, 1) oracle".into(),
        antithetic_latents: false,
        train_refine_only: false,
        sampling_symmetries: Default::default(),
    }
}

/// The bound's own gradient (through the denoiser).
#[test]
fn aps_matches_the_closed_form_gaussian_posterior() {
    closed_form_check(PriorGradient::Bound);
}

/// The score-distillation gradient: (ε̂ − ε)/(α_t σ_t) has mean exactly x for this prior at every
/// t, so the same posterior must come out.
#[test]
fn aps_with_distilled_prior_gradient_matches_the_closed_form_posterior() {
    closed_form_check(PriorGradient::Distilled);
}

/// The flow's initial weights come from the backend's generator, which every test of this binary
/// shares: the closed-form checks hold it while they seed it and train, so a test running in
/// parallel cannot change their draws.
static BACKEND_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn closed_form_check(gradient: PriorGradient) {
    let _rng = BACKEND_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = default_device();
    device.seed(11);
    let schedule = NoiseSchedule::linear_default();
    let plane = SIZE * SIZE;
    let prior = GaussianDenoiser::new(
        schedule.clone(),
        [1, SIZE, SIZE],
        vec![0.0; plane],
        vec![1.0; plane],
    )
    .unwrap();
    let mut rng = substream(7, 0);
    let mut images = vec![0.0f32; 512 * plane];
    fill_standard_normal(&mut rng, &mut images);
    let data = ImageBatch::new([512, 1, SIZE, SIZE], images).unwrap();

    let config = model_config(gradient);
    let train = TrainConfig {
        min_lr_ratio: 0.05,
        ..train_config(1500, 64, 3e-3, 40, 0.99, 3)
    };
    let flow = config.flow.init(&device).unwrap();
    let mut trainer = ApsTrainer::new(train, &config, schedule, flow, &device).unwrap();
    let mut first = None;
    while !trainer.finished() {
        let r = trainer.train_step(&data, &prior).unwrap();
        first.get_or_insert(r.loss);
    }
    let last = trainer.last_terms();
    eprintln!(
        "KL estimate per value: first {first:?}, last {:.4} ({last:?})",
        last.total()
    );

    // A fresh measurement of a fresh draw from the prior.
    let mut truth = vec![0.0f32; plane];
    fill_standard_normal(&mut substream(8, 0), &mut truth);
    let truth: Vec<Complex32> = truth.iter().map(|&v| Complex32::new(v, 0.0)).collect();
    let bundle = simulate(
        Truth {
            shape: vec![SIZE, SIZE],
            values: truth,
        },
        false,
        &config.family.simulation(),
        99,
    )
    .unwrap();
    let config_norm = config.normalization;
    let sampler = ApsSampler::new(config, trainer.ema().clone(), &device).unwrap();
    check_moments(&sampler, &bundle, config_norm, "plain draws");
    // The problem is mirror-symmetric (i.i.d. prior, the mirror of a random pixel mask is one),
    // so the mixture of the flow and its mirror image has the same moments.
    let mirrored = sampler
        .with_symmetries(
            SamplingSymmetries {
                mirror: true,
                ..Default::default()
            }
            .orbit()
            .unwrap(),
        )
        .unwrap();
    check_moments(&mirrored, &bundle, config_norm, "mirrored draws");
}

/// The moments of 4000 draws of `sampler` on the inpainting `bundle` against the closed form.
fn check_moments(
    sampler: &ApsSampler,
    bundle: &cinediff::bundle::Bundle,
    norm: Normalization,
    what: &str,
) {
    let plane = SIZE * SIZE;
    let mask = bundle.mask().unwrap().frame_pixels(0, SIZE).unwrap();
    let y = bundle.frame_y(0);
    let est = sampler
        .estimate(bundle, norm, 4000, 0, 5, &mut |_, _| {})
        .unwrap();
    let std = est.std.unwrap();
    let (mut worst_mean, mut worst_std) = (0.0f64, 0.0f64);
    for p in 0..plane {
        let (m_true, s_true) = if mask.data()[p] {
            (0.8 * y[p].re as f64, 0.2f64.sqrt())
        } else {
            (0.0, 1.0)
        };
        let (m, s) = (est.mean[p].re as f64, std[p] as f64);
        eprintln!(
            "{what}: pixel {p:2} measured {}: mean {m:+.3} (exact {m_true:+.3}), std {s:.3} (exact {s_true:.3})",
            mask.data()[p]
        );
        worst_mean = worst_mean.max((m - m_true).abs());
        worst_std = worst_std.max((s / s_true - 1.0).abs());
    }
    eprintln!("{what}: worst mean error {worst_mean:.4}, worst relative std error {worst_std:.4}");
    // Tolerances: 0.1 absolute on the mean (a tenth of the prior's std), 15 % on the std.
    assert!(
        worst_mean < 0.1,
        "{what}: largest mean error {worst_mean:.3}"
    );
    assert!(
        worst_std < 0.15,
        "{what}: largest relative std error {worst_std:.3}"
    );
}

/// The U-Net's one-pass noise-matching gradient equals the trait's two-call default (ε̂, then the
/// VJP with ε̂ − ε), on the shipped prior.
#[test]
fn unet_noise_matching_gradient_matches_the_default() {
    let device = default_device();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/models/cine64-small");
    let net = cinediff::io::model_dir::load_denoiser(std::path::Path::new(dir), &device).unwrap();
    let shape = net.image_shape().unwrap();
    let len: usize = shape.iter().product();
    let mut x = vec![0.0f32; 2 * len];
    let mut eps = vec![0.0f32; 2 * len];
    let mut rng = substream(4, 0);
    fill_standard_normal(&mut rng, &mut x);
    fill_standard_normal(&mut rng, &mut eps);
    let x = ImageBatch::new([2, shape[0], shape[1], shape[2]], x).unwrap();
    let eps = ImageBatch::new([2, shape[0], shape[1], shape[2]], eps).unwrap();
    let t = 300;
    let (loss, grad) = net.noise_matching_grad(&x, t, &eps).unwrap();
    let eps_hat = net.predict_noise(&x, t).unwrap();
    let diff = ImageBatch::lincomb(1.0, &eps_hat, -1.0, &eps).unwrap();
    let (_, vjp) = net.predict_noise_vjp(&x, t, &diff).unwrap();
    assert_eq!(loss.len(), 2);
    for (i, &got) in loss.iter().enumerate() {
        let want: f64 = diff.image(i).iter().map(|&d| (d as f64).powi(2)).sum();
        assert!((got - want).abs() < 1e-3 * want, "{got} vs {want}");
    }
    let scale = vjp.data().iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let err = grad
        .data()
        .iter()
        .zip(vjp.data())
        .fold(0.0f32, |m, (g, v)| m.max((g - 2.0 * v).abs()));
    assert!(err < 1e-3 * scale, "max error {err} vs scale {scale}");
}

/// An interrupted run resumed from its checkpoint ends bit-identical to an uninterrupted one.
#[test]
fn aps_trainer_resumes_bit_identically() {
    let _rng = BACKEND_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = default_device();
    let schedule = NoiseSchedule::linear_default();
    let plane = SIZE * SIZE;
    let prior = GaussianDenoiser::new(
        schedule.clone(),
        [1, SIZE, SIZE],
        vec![0.0; plane],
        vec![1.0; plane],
    )
    .unwrap();
    let mut images = vec![0.0f32; 64 * plane];
    fill_standard_normal(&mut substream(1, 0), &mut images);
    let data = ImageBatch::new([64, 1, SIZE, SIZE], images).unwrap();
    let config = model_config(PriorGradient::Distilled);
    let train = TrainConfig {
        grad_clip_norm: 1.0,
        flips: Flips::Both,
        ..train_config(4, 8, 1e-3, 1, 0.9, 2)
    };
    // One initialisation for both runs (the backend RNG is shared with parallel tests).
    let flow = config.flow.init(&device).unwrap();
    let new = || {
        ApsTrainer::new(
            train.clone(),
            &config,
            schedule.clone(),
            flow.clone(),
            &device,
        )
        .unwrap()
    };
    let dir = TempDir::new("aps-resume");
    let mut straight = new();
    while !straight.finished() {
        straight.train_step(&data, &prior).unwrap();
    }
    let mut first = new();
    for _ in 0..2 {
        first.train_step(&data, &prior).unwrap();
    }
    let half = dir.join("half");
    cinediff::io::model_dir::save_aps_checkpoint(&half, &config, &first).unwrap();
    let mut resumed =
        cinediff::io::model_dir::resume_aps_trainer(&half, &config, new(), &device).unwrap();
    assert_eq!(resumed.step_count(), 2);
    while !resumed.finished() {
        resumed.train_step(&data, &prior).unwrap();
    }
    let (a, b) = (dir.join("a"), dir.join("b"));
    cinediff::io::model_dir::save_aps_checkpoint(&a, &config, &straight).unwrap();
    cinediff::io::model_dir::save_aps_checkpoint(&b, &config, &resumed).unwrap();
    let same = bytes(&a.join("model.safetensors")) == bytes(&b.join("model.safetensors"));
    assert!(same, "2 + 2 resumed steps differ from 4 straight steps");
}

/// Training settings for these tests: no weight decay, clip 10, no flips, cosine to a tenth.
fn train_config(
    steps: usize,
    batch_size: usize,
    learning_rate: f64,
    warmup_steps: usize,
    ema_decay: f64,
    seed: u64,
) -> TrainConfig {
    TrainConfig {
        steps,
        batch_size,
        learning_rate,
        warmup_steps,
        min_lr_ratio: 0.1,
        weight_decay: 0.0,
        grad_clip_norm: 10.0,
        ema_decay,
        flips: Flips::None,
        seed,
        lr_restarts: Vec::new(),
    }
}

/// `train-aps --init-from M --refine-net-width W` adds a second mean stage to a trained flow; it
/// starts at zero, so the loaded flow must draw exactly what the saved one draws.
#[test]
fn a_refine_stage_added_to_a_trained_flow_leaves_its_draws_unchanged() {
    let _rng = BACKEND_RNG.lock().unwrap_or_else(|e| e.into_inner());
    use burn::module::Module;
    use burn::tensor::{Tensor, TensorData};
    use cinediff::aps::mean_net_config;
    use cinediff::io::model_dir;
    use cinediff::nn::unet_denoiser::tensor_to_vec;
    let device = default_device();
    let schedule = NoiseSchedule::linear_default();
    let (size, plane) = (8, 64);
    let prior = GaussianDenoiser::new(
        schedule.clone(),
        [2, size, size],
        vec![0.0; 2 * plane],
        vec![1.0; 2 * plane],
    )
    .unwrap();
    let mut images = vec![0.0f32; 16 * 2 * plane];
    fill_standard_normal(&mut substream(3, 0), &mut images);
    let data = ImageBatch::new([16, 2, size, size], images).unwrap();
    let mut config = model_config(PriorGradient::Distilled);
    config.flow = FlowConfig {
        in_channels: 2,
        image_size: size,
        cond_channels: 3,
        mean_net: mean_net_config(2, size, 8),
        mean_unmeasured_only: true,
        ..config.flow
    };
    let train = train_config(3, 4, 1e-2, 1, 0.0, 4);
    let flow = config.flow.init(&device).unwrap();
    let mut trainer = ApsTrainer::new(train, &config, schedule, flow, &device).unwrap();
    while !trainer.finished() {
        trainer.train_step(&data, &prior).unwrap();
    }
    let dir = TempDir::new("aps-refine");
    let saved = dir.join("saved");
    model_dir::save_aps_checkpoint(&saved, &config, &trainer).unwrap();

    let (_, original) = model_dir::load_aps_flow(&saved, &device).unwrap();
    let mut refined_config = config.clone();
    refined_config.flow.refine_net = mean_net_config(2, size, 8);
    let refined =
        model_dir::load_aps_flow_adding_refine_stage(&saved, &refined_config, &device).unwrap();
    let tensor = |seed: u64, shape: [usize; 4]| {
        let mut v = vec![0.0f32; shape.iter().product()];
        fill_standard_normal(&mut substream(seed, 0), &mut v);
        Tensor::<4>::from_data(TensorData::new(v, shape), &device)
    };
    let (z, cond) = (tensor(5, [3, 2, size, size]), tensor(6, [3, 3, size, size]));
    let (xa, la) = original.forward(z.clone(), cond.clone());
    let (xb, lb) = refined.forward(z.clone(), cond.clone());
    let (xa, xb) = (tensor_to_vec(xa).unwrap(), tensor_to_vec(xb).unwrap());
    assert!(
        xa.iter()
            .zip(&tensor_to_vec(z.clone()).unwrap())
            .any(|(x, z)| (x - z).abs() > 1e-3),
        "the trained flow should not be the identity"
    );
    assert_eq!(xa, xb, "the added stage changed the draws");
    let (la, lb) = (tensor_to_vec(la).unwrap(), tensor_to_vec(lb).unwrap());
    assert_eq!(la, lb);

    // Training the stage alone moves the draws' mean and leaves the rest of the flow, which the
    // log-determinant reads (couplings, actnorms, output scale), bitwise as it was.
    let mut refine_only = refined_config.clone();
    refine_only.train_refine_only = true;
    let stage_new = || {
        ApsTrainer::new(
            train_config(3, 4, 1e-2, 1, 0.0, 7),
            &refine_only,
            NoiseSchedule::linear_default(),
            refined.clone(),
            &device,
        )
        .unwrap()
    };
    let mut stage_trainer = stage_new();
    while !stage_trainer.finished() {
        stage_trainer.train_step(&data, &prior).unwrap();
    }
    // Interrupted after one step and resumed, it ends bit-identical: the freeze survives resume.
    let mut first = stage_new();
    first.train_step(&data, &prior).unwrap();
    let half = dir.join("stage-half");
    model_dir::save_aps_checkpoint(&half, &refine_only, &first).unwrap();
    let mut resumed =
        model_dir::resume_aps_trainer(&half, &refine_only, stage_new(), &device).unwrap();
    while !resumed.finished() {
        resumed.train_step(&data, &prior).unwrap();
    }
    let (a, b) = (dir.join("stage-straight"), dir.join("stage-resumed"));
    model_dir::save_aps_checkpoint(&a, &refine_only, &stage_trainer).unwrap();
    model_dir::save_aps_checkpoint(&b, &refine_only, &resumed).unwrap();
    let same = bytes(&a.join("model.safetensors")) == bytes(&b.join("model.safetensors"));
    assert!(
        same,
        "1 + 2 resumed refine-only steps differ from 3 straight steps"
    );
    let (xc, lc) = stage_trainer.model().valid().forward(z, cond);
    let moved = tensor_to_vec(xc)
        .unwrap()
        .iter()
        .zip(&xb)
        .map(|(c, b)| (c - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        moved > 1e-4,
        "the refine stage did not train (moved {moved})"
    );
    assert_eq!(
        tensor_to_vec(lc).unwrap(),
        lb,
        "the frozen part of the flow changed"
    );
    let mut no_stage = config.clone();
    no_stage.train_refine_only = true;
    let err = ApsTrainer::new(
        train_config(1, 4, 1e-2, 1, 0.0, 7),
        &no_stage,
        NoiseSchedule::linear_default(),
        original,
        &device,
    )
    .err()
    .expect("refine-only training of a flow without a refine stage")
    .to_string();
    assert!(err.contains("refine_net"), "{err}");

    // A flow that already has the stage cannot have it added again.
    let twice = dir.join("twice");
    let refined_trainer = ApsTrainer::new(
        TrainConfig {
            steps: 1,
            ..trainer.config().clone()
        },
        &refined_config,
        NoiseSchedule::linear_default(),
        refined,
        &device,
    )
    .unwrap();
    model_dir::save_aps_checkpoint(&twice, &refined_config, &refined_trainer).unwrap();
    let err = model_dir::load_aps_flow_adding_refine_stage(&twice, &refined_config, &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("already hold"), "{err}");
}

/// A tiny complex prior on 32×32 phantom frames and its data (trained for 2 steps: the APS
/// machinery, not image quality, is under test here).
fn tiny_prior(dir: &TempDir) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = dir.join("frames.npy");
    ok(args![
        "phantom",
        "--complex",
        "--frames",
        "4",
        "--size",
        "32",
        "--count",
        "2",
        "--seed",
        "3",
        "--out",
        data
    ]);
    let prior = dir.join("prior");
    ok(args![
        "train",
        "--data",
        data,
        "--preset",
        "tiny",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--out",
        prior
    ]);
    (data, prior)
}

/// `train-aps --prior P --data D --out O`, the part every train-aps command line here shares.
fn train_aps_command<'a>(
    data: &'a std::path::Path,
    prior: &'a std::path::Path,
    out: &'a std::path::Path,
) -> Vec<&'a std::ffi::OsStr> {
    use std::ffi::OsStr;
    vec![
        OsStr::new("train-aps"),
        OsStr::new("--prior"),
        prior.as_os_str(),
        OsStr::new("--data"),
        data.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
    ]
}

/// `train-aps --prior P --data D --out O EXTRA…` must fail with every needle in its error.
fn train_aps_fails(
    data: &std::path::Path,
    prior: &std::path::Path,
    out: &std::path::Path,
    extra: &[&std::ffi::OsStr],
    needles: &[&str],
) {
    let mut a = train_aps_command(data, prior, out);
    a.extend_from_slice(extra);
    fails(&a, needles);
}

fn train_aps(
    data: &std::path::Path,
    prior: &std::path::Path,
    out: &std::path::Path,
    steps: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut a = train_aps_command(data, prior, out);
    a.extend_from_slice(args![
        "--accel",
        "4",
        "--levels",
        "1",
        "--steps-per-level",
        "1",
        "--hidden",
        "8",
        "--cond-features",
        "4",
        "--batch-size",
        "2",
        "--steps",
        steps,
        "--checkpoint-every",
        "2",
        "--seed",
        "5"
    ]);
    a.extend(extra.iter().map(std::ffi::OsStr::new));
    ok(&a)
}

#[test]
fn train_aps_resumes_and_reconstructs() {
    let dir = TempDir::new("aps-cli");
    let (data, prior) = tiny_prior(&dir);
    let (straight, resumed) = (dir.join("straight"), dir.join("resumed"));
    train_aps(&data, &prior, &straight, "4", &[]);
    // (Bit-identical resumption is checked on the library, where the run can be interrupted
    // mid-schedule; here --steps grows, which changes the learning-rate schedule.)
    train_aps(&data, &prior, &resumed, "2", &[]);
    train_aps(&data, &prior, &resumed, "4", &["--resume"]);
    let log = String::from_utf8(bytes(&resumed.join("train_log.csv"))).unwrap();
    assert_eq!(log.lines().count(), 1 + 4, "{log}");
    let config = json(&straight.join("config.json"));
    assert_eq!(config["kind"], "aps");
    assert_eq!(config["family"]["operator"], "mri");

    // --init-from continues a model without its checkpoint: the flow's architecture is the
    // source's (the --initial-std 0.5 given here is ignored), the
    // optimizer and schedule are fresh.
    let tuned = dir.join("tuned");
    let source = straight.to_str().unwrap();
    train_aps(
        &data,
        &prior,
        &tuned,
        "2",
        &["--init-from", source, "--initial-std", "0.5"],
    );
    assert_eq!(
        json(&tuned.join("config.json"))["flow"],
        json(&straight.join("config.json"))["flow"]
    );
    let resolved = json(&tuned.join("train_config.json"));
    assert_eq!(resolved["init_from"], straight.to_str().unwrap());
    assert_eq!(resolved["train"]["steps"], 2);
    let log = String::from_utf8(bytes(&tuned.join("train_log.csv"))).unwrap();
    assert_eq!(log.lines().count(), 1 + 2, "{log}");
    assert_ne!(
        bytes(&tuned.join("model.safetensors")),
        bytes(&straight.join("model.safetensors")),
        "two further steps left the flow unchanged"
    );
    // --refine-net-width adds a second mean stage to the source's flow.
    let refined = dir.join("refined");
    train_aps(
        &data,
        &prior,
        &refined,
        "2",
        &["--init-from", source, "--refine-net-width", "8"],
    );
    let flow = &json(&refined.join("config.json"))["flow"];
    assert_eq!(flow["refine_net"]["base_channels"], 8);
    assert_eq!(
        flow["mean_net"],
        json(&straight.join("config.json"))["flow"]["mean_net"]
    );
    // --train-refine-only trains that stage of a flow that has one, and only such a flow.
    let stage_only = dir.join("stage-only");
    train_aps(
        &data,
        &prior,
        &stage_only,
        "2",
        &[
            "--init-from",
            refined.to_str().unwrap(),
            "--train-refine-only",
        ],
    );
    assert_eq!(
        json(&stage_only.join("config.json"))["train_refine_only"],
        true
    );
    train_aps_fails(
        &data,
        &prior,
        &dir.join("no-stage"),
        args!["--init-from", straight, "--train-refine-only"],
        &["train_refine_only", "refine_net"],
    );
    // --resume keeps the run's model: options that would change it are refused, not ignored.
    for extra in [
        &["--refine-net-width", "4"][..],
        &["--sampling-phase-rotations", "4"],
        &["--train-refine-only"],
    ] {
        let mut cmd = args!["--steps", "4", "--resume"].to_vec();
        cmd.extend(extra.iter().map(std::ffi::OsStr::new));
        train_aps_fails(&data, &prior, &refined, &cmd, &[extra[0], "--resume keeps"]);
    }
    // It starts a run; continuing one is --resume's.
    train_aps_fails(
        &data,
        &prior,
        &tuned,
        args!["--init-from", straight, "--resume"],
        &["--init-from", "--resume"],
    );

    // An existing model is refused without --resume / --force.
    train_aps_fails(
        &data,
        &prior,
        &straight,
        args!["--steps", "2"],
        &["already holds a model"],
    );
    // Noise σ = 0 has no likelihood.
    train_aps_fails(
        &data,
        &prior,
        &dir.join("z"),
        args!["--noise", "0"],
        &["noise σ", "> 0"],
    );
    // Data of another size than the prior's.
    let big = dir.join("big.npy");
    ok(args![
        "phantom",
        "--complex",
        "--frames",
        "2",
        "--size",
        "64",
        "--count",
        "1",
        "--out",
        big
    ]);
    train_aps_fails(&big, &prior, &dir.join("b"), args![], &["32×32", "64×64"]);

    // Reconstruction: mean, std, 3 of the 6 draws kept... up to 4 of them, in the bundle's shape.
    let truth = dir.join("truth.npy");
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
        "--coils",
        "1",
        "--out",
        b
    ]);
    // 6 APS draws per frame of `bundle` into `out`, with `extra` options.
    fn aps_command<'a>(
        bundle: &'a std::path::Path,
        model: &'a std::path::Path,
        out: &'a std::path::Path,
        extra: &[&'a str],
    ) -> Vec<&'a std::ffi::OsStr> {
        let word = std::ffi::OsStr::new;
        let mut a = vec![
            word("reconstruct"),
            word("--bundle"),
            bundle.as_os_str(),
            word("--method"),
            word("aps"),
            word("--model"),
            model.as_os_str(),
            word("--samples"),
            word("6"),
            word("--out"),
            out.as_os_str(),
        ];
        a.extend(extra.iter().map(|e| word(e)));
        a
    }
    let aps_run = |out: &str, extra: &[&str]| {
        let out = dir.join(out);
        ok(&aps_command(&b, &straight, &out, extra));
        out
    };
    let r = aps_run("r", &[]);
    let samples = npy_shape(&r.join("samples.npy"));
    assert_eq!(samples, vec![4, 2, 32, 32]);
    assert_eq!(npy_shape(&r.join("std.npy")), vec![2, 32, 32]);
    let metrics = json(&r.join("metrics.json"));
    assert!(metrics["mean"]["psnr"].as_f64().unwrap() > 5.0, "{metrics}");
    // The same seed gives the same mean.
    let r2 = aps_run("r2", &[]);
    assert_eq!(bytes(&r.join("recon.npy")), bytes(&r2.join("recon.npy")));
    // Trained with flips (train-aps' default), the model records mirrored draws as its default;
    // the run resolves and records them, and plain draws give another mean.
    assert_eq!(config["sampling_symmetries"]["mirror"], true, "{config}");
    assert_eq!(
        config["sampling_symmetries"]["phase_rotations"], 1,
        "{config}"
    );
    let resolved = std::fs::read_to_string(r.join("config.toml")).unwrap();
    assert!(resolved.contains("mirrored_draws = true"), "{resolved}");
    assert!(resolved.contains("phase_rotations = 1"), "{resolved}");
    let plain = aps_run(
        "r-plain",
        &["--mirrored-draws", "false", "--phase-rotations", "4"],
    );
    assert_ne!(bytes(&r.join("recon.npy")), bytes(&plain.join("recon.npy")));
    let resolved = std::fs::read_to_string(plain.join("config.toml")).unwrap();
    assert!(resolved.contains("mirrored_draws = false"), "{resolved}");
    assert!(resolved.contains("phase_rotations = 4"), "{resolved}");
    assert!(resolved.contains("conjugate_draws = false"), "{resolved}");
    let shifted = aps_run(
        "r-shifted",
        &[
            "--conjugate-draws",
            "true",
            "--draw-shift",
            "1,2",
            "--draw-shift=-3,1",
        ],
    );
    assert_ne!(
        bytes(&r.join("recon.npy")),
        bytes(&shifted.join("recon.npy"))
    );
    let resolved = std::fs::read_to_string(shifted.join("config.toml")).unwrap();
    assert!(resolved.contains("conjugate_draws = true"), "{resolved}");
    assert!(
        resolved.contains("draw_shifts = [[1, 2], [-3, 1]]"),
        "{resolved}"
    );
    // Bad symmetry options: a one-line error naming the option.
    for (flag, value, needles) in [
        ("--draw-shift", "1", &["--draw-shift", "expected DY,DX"][..]),
        (
            "--draw-shift",
            "0,0",
            &["draw shift", "distinct non-zero"][..],
        ),
        (
            "--phase-rotations",
            "0",
            &["--phase-rotations", "1..=64", "got 0"][..],
        ),
    ] {
        fails(
            &aps_command(&b, &straight, &dir.join("r-bad"), &[flag, value]),
            needles,
        );
    }
    // A sequence run of 2 particles (10-step grid, 3 warm steps), optionally started from APS
    // draws; its summary.
    let sequence = |method: &str, out: &str, aps_start: bool| {
        let out = dir.join(out);
        let mut a: Vec<&std::ffi::OsStr> = args![
            "reconstruct",
            "--bundle",
            b,
            "--method",
            method,
            "--model",
            prior,
            "--steps",
            "10",
            "--warm-start",
            "3",
            "--particles",
            "2",
            "--out",
            out
        ]
        .to_vec();
        if aps_start {
            a.extend_from_slice(args!["--aps-start", straight]);
        }
        ok(&a);
        let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
        assert_eq!(config.contains("aps_start"), aps_start, "{config}");
        json(&out.join("summary.json"))
    };
    // APS as SeqDiff's initialiser: frame 0 starts from APS draws, so no frame is cold and every
    // frame runs only the warm-start steps; it is recorded in the config.
    for (method, out) in [("seqdiff", "r4"), ("independent", "r5")] {
        let summary = sequence(method, out, true);
        assert_eq!(summary["cold_frames"], 0, "{method}: {summary}");
        assert_eq!(summary["steps_first_frame"], 3, "{method}: {summary}");
        assert_eq!(summary["total_steps"], 6, "{method}: {summary}");
    }
    // Without it frame 0 starts from noise over the whole grid.
    let summary = sequence("seqdiff", "r6", false);
    assert_eq!(summary["cold_frames"], 1, "{summary}");
    assert_eq!(summary["steps_first_frame"], 10, "{summary}");
    // Only sequence methods take it.
    fails(
        args![
            "reconstruct",
            "--bundle",
            b,
            "--method",
            "dps",
            "--model",
            prior,
            "--aps-start",
            straight,
            "--out",
            dir.join("r7")
        ],
        &["--aps-start", "sequence methods"],
    );
    // eval runs aps only on its training family (MRI 4×), with its std map.
    let rep = dir.join("rep");
    let out = ok(args![
        "eval",
        "--data",
        truth,
        "--out",
        rep,
        "--methods",
        "zero-filled,aps",
        "--aps",
        straight,
        "--accels",
        "4,8",
        "--aps-samples",
        "4"
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ran 3 cell(s)"),
        "zero-filled ×2 + aps ×1: {stderr}"
    );
    assert!(rep.join("cells/item0_mri-4x_s0_aps/std.npy").is_file());
    assert!(!rep.join("cells/item0_mri-8x_s0_aps").exists());
    // A bundle of another operator is refused with the reason.
    let d = dir.join("denoise");
    ok(args![
        "simulate",
        "--truth",
        truth,
        "--operator",
        "denoise",
        "--out",
        d
    ]);
    fails(
        &aps_command(&d, &straight, &dir.join("r3"), &[]),
        &["APS measurement operator", "mri"],
    );
}

/// The shape in an .npy header.
fn npy_shape(path: &std::path::Path) -> Vec<usize> {
    let b = bytes(path);
    let header = String::from_utf8_lossy(&b[10..]);
    let start = header.find("'shape': (").unwrap() + 10;
    let end = start + header[start..].find(')').unwrap();
    header[start..end]
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect()
}

/// The transformed conditioning is the conditioning of the transformed problem, built
/// independently: the image g x = S_d e^{iφ} C(P x) (columns reversed, conjugated, rotated,
/// shifted circularly) measured through the k-space samples that g maps the original ones to —
/// P negates k_x, C negates k, a shift keeps them — for even and odd sizes and a 2-D k-space
/// mask; an image-domain pattern (inpainting) mirrors and shifts like the image; and g⁻¹ undoes g
/// on a draw.
#[test]
fn symmetry_conditioning_is_the_conditioning_of_the_transformed_measurement() {
    use cinediff::physics::masks::Mask;
    use cinediff::physics::mri::CartesianMri;
    use cinediff::physics::operator::LinearOperator;
    use rand::Rng;
    let max_diff = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max)
    };
    for [h, w] in [[6usize, 8usize], [5, 7]] {
        let mut rng = substream(31, w as u64);
        let x: Vec<Complex32> = (0..h * w)
            .map(|_| Complex32::new(rng.random::<f32>() - 0.5, rng.random::<f32>() - 0.5))
            .collect();
        let mask: Vec<bool> = (0..h * w).map(|_| rng.random_bool(0.5)).collect();
        let cond_of = |x: &[Complex32], mask: &[bool]| {
            let op = CartesianMri::new(Mask::new([h, w], mask.to_vec()).unwrap()).unwrap();
            let aty = op.adjoint(&op.forward(x).unwrap()).unwrap();
            let mut c: Vec<f32> = aty.iter().map(|v| v.re).collect();
            c.extend(aty.iter().map(|v| v.im));
            c.extend(mask.iter().map(|&m| if m { 1.0 } else { 0.0 }));
            c
        };
        let original = cond_of(&x, &mask);
        for (mirror, conjugate, phase, shift) in [
            (true, false, 0.7, [0, 0]),
            (false, true, 0.0, [0, 0]),
            (true, true, -1.1, [0, 0]),
            (false, false, 0.0, [2, -3]),
            (true, true, 2.0, [-1, 4]),
        ] {
            let g = ProblemSymmetry {
                mirror,
                conjugate,
                phase,
                shift,
            };
            let rotation = Complex32::from_polar(1.0, phase);
            let at = |r: i32, n: i32| {
                let (r, n) = (
                    r.rem_euclid(h as i32) as usize,
                    n.rem_euclid(w as i32) as usize,
                );
                let n = if mirror { w - 1 - n } else { n };
                let v = x[r * w + n];
                rotation * if conjugate { v.conj() } else { v }
            };
            let gx: Vec<Complex32> = (0..h as i32)
                .flat_map(|r| (0..w as i32).map(move |n| (r, n)))
                .map(|(r, n)| at(r - shift[0], n - shift[1]))
                .collect();
            // Row i / column j of the centred grid holds frequency i − ⌊H/2⌋ / j − ⌊W/2⌋.
            let negate = |i: usize, n: usize| (2 * (n / 2) + n - i) % n;
            let g_mask: Vec<bool> = (0..h * w)
                .map(|p| {
                    let (mut i, mut j) = (p / w, p % w);
                    if mirror != conjugate {
                        j = negate(j, w);
                    }
                    if conjugate {
                        i = negate(i, h);
                    }
                    mask[i * w + j]
                })
                .collect();
            let expected = cond_of(&gx, &g_mask);
            let got = g
                .conditioning(&original, 2, [h, w], OperatorKind::Mri)
                .unwrap();
            let what = format!("{h}×{w} {g:?}");
            assert!(
                max_diff(&expected, &got) < 1e-5,
                "{what}: {}",
                max_diff(&expected, &got)
            );
            let mut back = got[..2 * h * w].to_vec();
            g.invert_images(&mut back, 2, [h, w]).unwrap();
            assert!(max_diff(&back, &original[..2 * h * w]) < 1e-5, "{what}");
            // An image-domain pattern moves with the image.
            let inpaint = g
                .conditioning(&original, 2, [h, w], OperatorKind::Inpaint)
                .unwrap();
            let pattern = &original[2 * h * w..];
            let moved: Vec<f32> = (0..h as i32)
                .flat_map(|r| (0..w as i32).map(move |n| (r, n)))
                .map(|(r, n)| {
                    let r = (r - shift[0]).rem_euclid(h as i32) as usize;
                    let n = (n - shift[1]).rem_euclid(w as i32) as usize;
                    pattern[r * w + if mirror { w - 1 - n } else { n }]
                })
                .collect();
            assert_eq!(&inpaint[2 * h * w..], &moved[..], "{what}");
        }
    }
    let orbit = |mirror, phase_rotations, conjugate, shifts: Vec<[i32; 2]>| {
        SamplingSymmetries {
            mirror,
            phase_rotations,
            conjugate,
            shifts,
        }
        .orbit()
    };
    let g = orbit(true, 2, false, vec![]).unwrap();
    assert_eq!(g.len(), 4);
    assert_eq!(g[0], ProblemSymmetry::IDENTITY);
    assert!(g[1].mirror && g[1].phase == 0.0);
    let g = orbit(true, 2, true, vec![[1, 2]]).unwrap();
    assert_eq!(g.len(), 16);
    assert!(g[2].conjugate && !g[2].mirror && g[2].shift == [0, 0]);
    assert_eq!(g[8].shift, [1, 2]);
    assert!(g[0]
        .conditioning(&[0.0; 10], 2, [2, 2], OperatorKind::Mri)
        .is_err());
    assert!(orbit(false, 0, false, vec![]).is_err());
    assert!(orbit(false, 1, false, vec![[0, 0]]).is_err());
    assert!(orbit(false, 1, false, vec![[1, 1], [1, 1]]).is_err());
    assert!(orbit(false, 1, false, vec![[33, 0]]).is_err());
    for real in [
        ProblemSymmetry {
            phase: 1.0,
            ..ProblemSymmetry::IDENTITY
        },
        ProblemSymmetry {
            conjugate: true,
            ..ProblemSymmetry::IDENTITY
        },
    ] {
        assert!(real
            .conditioning(&[0.0; 8], 1, [2, 2], OperatorKind::Denoise)
            .is_err());
    }
    let shifted = ProblemSymmetry {
        shift: [0, 2],
        ..ProblemSymmetry::IDENTITY
    };
    assert!(shifted
        .conditioning(&[0.0; 32], 1, [4, 4], OperatorKind::Superres)
        .is_err());
}

/// A super-resolution model refuses draw shifts when they are set, before any frame is drawn:
/// from its own config at load, and from `with_symmetries`; the same shifts fit an inpainting
/// model.
#[test]
fn aps_refuses_shifts_for_super_resolution_when_configured() {
    let device = default_device();
    let shifts = SamplingSymmetries {
        shifts: vec![[0, 2]],
        ..Default::default()
    };
    let mut config = model_config(PriorGradient::Bound);
    config.family.operator = OperatorKind::Superres;
    let flow = config.flow.init(&device).unwrap();
    let sampler = ApsSampler::new(config.clone(), flow.clone(), &device).unwrap();
    let err = sampler
        .with_symmetries(shifts.orbit().unwrap())
        .err()
        .expect("a shift under super-resolution must be refused")
        .to_string();
    assert!(
        err.contains("super-resolution") && err.contains("[0, 2]"),
        "{err}"
    );
    config.sampling_symmetries = shifts.clone();
    let err = ApsSampler::new(config.clone(), flow.clone(), &device)
        .err()
        .expect("a super-resolution config with shifts must be refused")
        .to_string();
    assert!(err.contains("super-resolution"), "{err}");
    config.family.operator = OperatorKind::Inpaint;
    ApsSampler::new(config, flow, &device).expect("inpainting commutes with shifts");
}
