//! SeqDiff+'s transition model: an untrained model predicts "no motion", training learns motion a
//! persistence forecast cannot, checkpoints resume bit-identically, and bad input is refused.
//! Run with `cargo test --release --test transition`.

#[macro_use]
mod common;

use cinediff::data::Normalization;
use cinediff::image::ImageBatch;
use cinediff::io::model_dir::{
    load_transition, resume_transition_trainer, save_transition_checkpoint,
};
use cinediff::nn::device::default_device;
use cinediff::nn::transition::{
    ForecastErrors, TransitionConfig, TransitionModelConfig, TransitionPredictor, WindowSampling,
    TRANSITION_KIND,
};
use cinediff::rng::{seeded, SeededRng};
use cinediff::train::transition::{Sequences, TransitionTrainer};
use cinediff::train::{Flips, TrainConfig};
use common::TempDir;
use rand::Rng;

const SIDE: usize = 16;
const FRAMES: usize = 12;

fn model_config(k: usize) -> TransitionModelConfig {
    TransitionModelConfig {
        kind: TRANSITION_KIND.into(),
        network: TransitionConfig {
            in_channels: 1,
            height: SIDE,
            width: SIDE,
            context_frames: k,
            patch_size: 4,
            dim: 32,
            depth: 2,
            heads: 2,
            mlp_ratio: 2,
            linear_skip: 0,
        },
        normalization: Normalization {
            offset: 0.0,
            scale: 1.0,
        },
        windows: WindowSampling {
            max_stride: 1,
            time_reversal: true,
            input_noise: 0.0,
        },
    }
}

fn train_config(steps: usize) -> TrainConfig {
    TrainConfig {
        steps,
        batch_size: 16,
        learning_rate: 2e-3,
        warmup_steps: 20,
        min_lr_ratio: 0.1,
        weight_decay: 0.0,
        grad_clip_norm: 1.0,
        ema_decay: 0.99,
        flips: Flips::Both,
        seed: 3,
        lr_restarts: Vec::new(),
    }
}

/// `count` sequences of a Gaussian blob (σ = 2 px) moving at a constant velocity of up to 1 px per
/// frame in a random direction, `[count·FRAMES, 1, SIDE, SIDE]`.
fn moving_blobs(count: usize, rng: &mut SeededRng) -> ImageBatch {
    let mut data = Vec::with_capacity(count * FRAMES * SIDE * SIDE);
    for _ in 0..count {
        let (x0, y0) = (
            rng.random_range(5.0..11.0f32),
            rng.random_range(5.0..11.0f32),
        );
        let angle = rng.random_range(0.0..std::f32::consts::TAU);
        let speed = rng.random_range(0.5..1.0f32);
        let (vx, vy) = (speed * angle.cos() * 0.5, speed * angle.sin() * 0.5);
        for t in 0..FRAMES {
            let (cx, cy) = (x0 + vx * t as f32, y0 + vy * t as f32);
            for i in 0..SIDE {
                for j in 0..SIDE {
                    let r2 = (j as f32 - cx).powi(2) + (i as f32 - cy).powi(2);
                    data.push((-r2 / 8.0).exp());
                }
            }
        }
    }
    ImageBatch::new([count * FRAMES, 1, SIDE, SIDE], data).unwrap()
}

/// Mean squared error of predicting frame t+1 from frames t−K+1..=t over all windows, by the
/// model and by persistence (x̃_{t+1} = x_t).
fn forecast_errors(predictor: &TransitionPredictor, images: &ImageBatch) -> (f64, f64) {
    let mut errors = ForecastErrors::default();
    for s in 0..images.batch_size() / FRAMES {
        let frames: Vec<ImageBatch> = (0..FRAMES)
            .map(|f| {
                ImageBatch::new([1, 1, SIDE, SIDE], images.image(s * FRAMES + f).to_vec()).unwrap()
            })
            .collect();
        errors.add(predictor.forecast_errors(&frames).unwrap());
    }
    let n = errors.values as f64;
    (errors.model / n, errors.persistence / n)
}

/// The first `n` frames of the first sequence of `images`, one batch each.
fn first_frames(images: &ImageBatch, n: usize) -> Vec<ImageBatch> {
    (0..n)
        .map(|f| ImageBatch::new([1, 1, SIDE, SIDE], images.image(f).to_vec()).unwrap())
        .collect()
}

/// max |a − b| over the values of a prediction and a frame.
fn max_difference(predicted: &ImageBatch, frame: &[f32]) -> f32 {
    predicted
        .data()
        .iter()
        .zip(frame)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max)
}

#[test]
fn untrained_model_predicts_the_last_frame() {
    let device = default_device();
    let mut config = model_config(3);
    config.normalization = Normalization {
        offset: 0.5,
        scale: 0.5,
    };
    let net = config.network.init(&device).unwrap();
    let predictor = TransitionPredictor::new(config, net, &device).unwrap();
    let images = moving_blobs(1, &mut seeded(1));
    let past = first_frames(&images, 3);
    let predicted = predictor.predict(&past).unwrap();
    let max_diff = max_difference(&predicted, images.image(2));
    // The head starts at zero, so only normalise/denormalise rounding remains.
    assert!(max_diff < 1e-6, "max |x̃ − x_t| = {max_diff}");
    // Fewer frames than K are padded with the oldest: one frame in gives that frame back.
    let one = predictor.predict(&past[2..]).unwrap();
    assert!(max_difference(&one, images.image(2)) < 1e-6);
}

/// A linear skip filter starts at zero: a fresh model with one predicts the last frame, and
/// adding one to a model (`with_linear_skip`) leaves its predictions unchanged; a second is
/// refused, and so is an even kernel.
#[test]
fn a_linear_skip_starts_at_zero() {
    let device = default_device();
    let mut config = model_config(3);
    config.network.linear_skip = 5;
    let images = moving_blobs(1, &mut seeded(1));
    let past = first_frames(&images, 3);
    let fresh = config.network.init(&device).unwrap();
    let predictor = TransitionPredictor::new(config.clone(), fresh.clone(), &device).unwrap();
    let predicted = predictor.predict(&past).unwrap();
    assert!(max_difference(&predicted, images.image(2)) < 1e-6);
    assert!(fresh.with_linear_skip(&config.network, &device).is_err());

    // A model with a non-zero head (a short training run), before and after gaining a skip.
    let plain = model_config(3);
    device.seed(5);
    let net = plain.network.init(&device).unwrap();
    let mut trainer = TransitionTrainer::new(train_config(20), &plain, net, &device).unwrap();
    let sequences = Sequences::new(moving_blobs(8, &mut seeded(2)), FRAMES).unwrap();
    while !trainer.finished() {
        trainer.train_step(&sequences).unwrap();
    }
    let trained = trainer.ema().clone();
    let before = TransitionPredictor::new(plain.clone(), trained.clone(), &device)
        .unwrap()
        .predict(&past)
        .unwrap();
    assert!(
        max_difference(&before, images.image(2)) > 1e-4,
        "20 steps should have moved the head off zero"
    );
    let with_skip = trained.with_linear_skip(&config.network, &device).unwrap();
    let after = TransitionPredictor::new(config.clone(), with_skip, &device)
        .unwrap()
        .predict(&past)
        .unwrap();
    assert_eq!(before.data(), after.data());
    config.network.linear_skip = 4;
    assert!(config.network.init(&device).is_err());
}

#[test]
fn training_learns_motion_that_persistence_misses() {
    let device = default_device();
    let k = 3;
    let config = model_config(k);
    let mut rng = seeded(7);
    let train = moving_blobs(48, &mut rng);
    let held_out = moving_blobs(8, &mut rng);
    device.seed(5);
    let net = config.network.init(&device).unwrap();
    let mut trainer = TransitionTrainer::new(train_config(400), &config, net, &device).unwrap();
    let sequences = Sequences::new(train, FRAMES).unwrap();
    let first = trainer.train_step(&sequences).unwrap().loss;
    let mut last = first;
    while !trainer.finished() {
        last = trainer.train_step(&sequences).unwrap().loss;
    }
    let predictor = TransitionPredictor::new(config, trainer.ema().clone(), &device).unwrap();
    let (model, persistence) = forecast_errors(&predictor, &held_out);
    eprintln!(
        "training loss {first:.5} → {last:.5}; held-out MSE: model {model:.6}, persistence {persistence:.6}"
    );
    // Constant-velocity motion is predictable from 3 frames; persistence is off by a whole step.
    assert!(
        model < 0.5 * persistence,
        "model MSE {model} not below half of persistence {persistence}"
    );
}

/// Trained on paired inputs (here the sequences plus frozen noise, standing in for posterior
/// samples' errors), the model predicts the clean next frame from corrupted frames: it averages
/// the noise out over its K frames, where a model trained on clean frames carries the last
/// frame's noise forward; a linear skip filter (`linear_skip`) learns that averaging faster.
/// Inputs of another shape are refused.
#[test]
fn paired_inputs_teach_the_clean_next_frame() {
    let device = default_device();
    let k = 3;
    let config = model_config(k);
    let mut skip_config = config.clone();
    skip_config.network.linear_skip = 3;
    let corrupt = |images: &ImageBatch, seed: u64| {
        let mut rng = seeded(seed);
        let noisy: Vec<f32> = images
            .data()
            .iter()
            .map(|v| v + 0.2 * (rng.random::<f32>() - 0.5) * 12f32.sqrt())
            .collect();
        ImageBatch::new(images.shape(), noisy).unwrap()
    };
    let train = moving_blobs(48, &mut seeded(8));
    let held_out = moving_blobs(8, &mut seeded(9));
    let held_noisy = corrupt(&held_out, 10);
    let trained = |config: &TransitionModelConfig, paired: bool| {
        device.seed(5);
        let net = config.network.init(&device).unwrap();
        let mut trainer = TransitionTrainer::new(train_config(300), config, net, &device).unwrap();
        let mut sequences = Sequences::new(train.clone(), FRAMES).unwrap();
        if paired {
            sequences = sequences.with_inputs(corrupt(&train, 11)).unwrap();
        }
        while !trainer.finished() {
            trainer.train_step(&sequences).unwrap();
        }
        TransitionPredictor::new(config.clone(), trainer.ema().clone(), &device).unwrap()
    };
    // MSE against the clean frame t+1 of predictions from corrupted frames t−K+1..=t.
    let frames = |images: &ImageBatch, s: usize| -> Vec<ImageBatch> {
        (0..FRAMES)
            .map(|f| {
                ImageBatch::new([1, 1, SIDE, SIDE], images.image(s * FRAMES + f).to_vec()).unwrap()
            })
            .collect()
    };
    let error = |predictor: &TransitionPredictor| {
        let mut errors = ForecastErrors::default();
        for s in 0..held_out.batch_size() / FRAMES {
            errors.add(
                predictor
                    .paired_forecast_errors(&frames(&held_noisy, s), &frames(&held_out, s))
                    .unwrap(),
            );
        }
        errors.model / errors.values as f64
    };
    let clean_trained = trained(&config, false);
    let clean = error(&clean_trained);
    let paired = error(&trained(&config, true));
    let skip = error(&trained(&skip_config, true));
    eprintln!("MSE to the clean next frame from noisy inputs: clean-trained {clean:.5}, paired {paired:.5}, paired with a 3×3 linear skip {skip:.5}");
    // The noise alone costs 0.04 per pixel to a model that keeps the last frame's.
    assert!(clean > 0.03, "clean-trained MSE {clean}");
    assert!(
        paired < 0.6 * clean,
        "paired {paired} not below 0.6 × clean-trained {clean}"
    );
    assert!(
        skip < 0.9 * paired,
        "with the linear skip {skip}, not below 0.9 × without {paired}"
    );
    assert!(clean_trained
        .paired_forecast_errors(&frames(&held_noisy, 0)[1..], &frames(&held_out, 0))
        .is_err());
    let short = ImageBatch::new([FRAMES, 1, SIDE, SIDE], vec![0.0; FRAMES * SIDE * SIDE]).unwrap();
    assert!(Sequences::new(train.clone(), FRAMES)
        .unwrap()
        .with_inputs(short)
        .is_err());
}

#[test]
fn resumed_training_is_bit_identical() {
    let device = default_device();
    let config = model_config(2);
    let sequences = || Sequences::new(moving_blobs(8, &mut seeded(2)), FRAMES).unwrap();
    // One initialisation cloned for every trainer: the backend's RNG is shared with the tests
    // running in parallel threads, so seeding it here would not make two inits equal.
    let init = config.network.init(&device).unwrap();
    let fresh = |steps| {
        TransitionTrainer::new(train_config(steps), &config, init.clone(), &device).unwrap()
    };
    let data = sequences();
    let mut straight = fresh(6);
    while !straight.finished() {
        straight.train_step(&data).unwrap();
    }
    let dir = TempDir::new("transition-resume");
    let mut first = fresh(6);
    for _ in 0..3 {
        first.train_step(&data).unwrap();
    }
    save_transition_checkpoint(&dir.0, &config, &first).unwrap();
    let mut resumed = resume_transition_trainer(&dir.0, &config, fresh(6), &device).unwrap();
    assert_eq!(resumed.step_count(), 3);
    while !resumed.finished() {
        resumed.train_step(&data).unwrap();
    }
    save_transition_checkpoint(&dir.0, &config, &resumed).unwrap();
    let a = load_transition(&dir.0, &device).unwrap();
    let b = TransitionPredictor::new(config.clone(), straight.ema().clone(), &device).unwrap();
    let images = moving_blobs(1, &mut seeded(4));
    let past = first_frames(&images, 2);
    assert_eq!(
        a.predict(&past).unwrap().data(),
        b.predict(&past).unwrap().data()
    );
}

#[test]
fn bad_input_is_refused() {
    let device = default_device();
    let config = model_config(2);
    let net = config.network.init(&device).unwrap();
    let predictor = TransitionPredictor::new(config.clone(), net, &device).unwrap();
    assert!(predictor.predict(&[]).is_err());
    let wrong = ImageBatch::new([1, 1, 8, 8], vec![0.0; 64]).unwrap();
    assert!(predictor.predict(&[wrong]).is_err());
    let nan = ImageBatch::new([1, 1, SIDE, SIDE], vec![f32::NAN; SIDE * SIDE]).unwrap();
    assert!(predictor.predict(&[nan]).is_err());
    for broken in [
        TransitionConfig {
            patch_size: 5,
            ..config.network.clone()
        },
        TransitionConfig {
            heads: 3,
            ..config.network.clone()
        },
        TransitionConfig {
            context_frames: 0,
            ..config.network.clone()
        },
    ] {
        assert!(broken.validate().is_err(), "{broken:?} accepted");
    }
    let mut wrong_kind = config;
    wrong_kind.kind = "diffusion".into();
    assert!(wrong_kind.validate().is_err());
    // Sequences shorter than a window are refused at the first step, not with a panic.
    let short = ImageBatch::new([4, 1, SIDE, SIDE], vec![0.0; 4 * SIDE * SIDE]).unwrap();
    let cfg = model_config(4);
    let net = cfg.network.init(&device).unwrap();
    let mut trainer = TransitionTrainer::new(train_config(2), &cfg, net, &device).unwrap();
    assert!(trainer
        .train_step(&Sequences::new(short, 4).unwrap())
        .is_err());
}

/// `train-transition` on the command line: a fresh run records no inputs; `--inputs` of another
/// shape is refused in one line; `--init-from` keeps the source's network and normalisation,
/// trains on paired inputs and records both; `--init-from` with `--resume` is refused.
#[test]
fn cli_trains_on_paired_inputs_and_from_a_trained_model() {
    use common::{fails, json, ok};
    use std::ffi::{OsStr, OsString};
    fn refs(a: &[OsString]) -> Vec<&OsStr> {
        a.iter().map(OsString::as_os_str).collect()
    }
    let dir = TempDir::new("train-transition");
    let phantom = |name: &str, seed: &str, frames: &str| {
        let path = dir.join(name);
        ok(args![
            "phantom",
            "--complex",
            "--frames",
            frames,
            "--size",
            "32",
            "--count",
            "2",
            "--seed",
            seed,
            "--out",
            path
        ]);
        path
    };
    let data = phantom("data.npy", "1", "6");
    let inputs = phantom("inputs.npy", "2", "6");
    let short = phantom("short.npy", "2", "5");
    let (first, second) = (dir.join("first"), dir.join("second"));
    // The command line for a tiny model trained 2 steps into `out`, then `extra`.
    let train = |out: &std::path::Path, extra: &[&OsStr]| -> Vec<OsString> {
        let base = args![
            "train-transition",
            "--data",
            data,
            "--out",
            out,
            "--context-frames",
            "2",
            "--patch-size",
            "8",
            "--dim",
            "16",
            "--depth",
            "1",
            "--heads",
            "2",
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--checkpoint-every",
            "2"
        ];
        base.iter().chain(extra).map(|a| a.to_os_string()).collect()
    };
    ok(&refs(&train(&first, &[])));
    let recorded = json(&first.join("train_config.json"));
    assert!(recorded["inputs"].is_null(), "{recorded}");
    fails(
        &refs(&train(&dir.join("bad"), args!["--inputs", short])),
        &["--inputs", "like --data"],
    );
    ok(&refs(&train(
        &second,
        args!["--init-from", first, "--inputs", inputs],
    )));
    let (a, b) = (
        json(&first.join("config.json")),
        json(&second.join("config.json")),
    );
    assert_eq!(
        a["network"], b["network"],
        "--init-from keeps the source's network"
    );
    assert_eq!(a["normalization"], b["normalization"]);
    let recorded = json(&second.join("train_config.json"));
    assert!(
        recorded["inputs"].as_str().unwrap().ends_with("inputs.npy"),
        "{recorded}"
    );
    assert!(
        recorded["init_from"].as_str().unwrap().ends_with("first"),
        "{recorded}"
    );
    assert_ne!(
        std::fs::read(first.join("model.safetensors")).unwrap(),
        std::fs::read(second.join("model.safetensors")).unwrap()
    );
    fails(
        &refs(&train(&second, args!["--init-from", first, "--resume"])),
        &["--init-from", "--resume"],
    );
    // A resumed run keeps its paired inputs.
    fails(
        &refs(&train(&second, args!["--resume"])),
        &["--resume", "--inputs", "give the same"],
    );
    ok(&refs(&train(
        &second,
        args!["--resume", "--inputs", inputs],
    )));
}
