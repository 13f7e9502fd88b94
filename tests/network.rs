//! U-Net denoiser, checkpoints and training on real (tiny) networks. Run in release:
//! `cargo test --release --test network`.

use std::path::PathBuf;

use cinediff::data::phantom::{cine_phantom, PhantomConfig};
use cinediff::data::Normalization;
use cinediff::diffusion::schedule::ScheduleKind;
use cinediff::diffusion::Denoiser;
use cinediff::io::model_dir;
use cinediff::nn::device::default_device;
use cinediff::nn::unet_denoiser::DiffusionModelConfig;
use cinediff::nn::UNetDenoiser;
use cinediff::rng::{seeded, standard_normal, substream};
use cinediff::train::{Preset, Trainer};
use cinediff::ImageBatch;

fn tiny_config(channels: usize, size: usize) -> DiffusionModelConfig {
    DiffusionModelConfig {
        unet: Preset::Tiny.unet(channels, size),
        schedule: ScheduleKind::LINEAR,
        num_train_timesteps: 1000,
        normalization: Normalization {
            offset: 0.0,
            scale: 1.0,
        },
    }
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cinediff-network-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// Phantom frames at 32×32 as real 1-channel training images in [−1, 1].
fn phantom_images(count: usize) -> ImageBatch {
    let config = PhantomConfig {
        size: 32,
        frames: 8,
        ..PhantomConfig::default()
    };
    let mut data = Vec::new();
    for i in 0..count {
        let seq = cine_phantom(&config, &mut substream(7, i as u64)).unwrap();
        data.extend(seq.data.iter().map(|c| 2.0 * c.re - 1.0));
    }
    ImageBatch::new([count * 8, 1, 32, 32], data).unwrap()
}

#[test]
fn vjp_matches_central_finite_differences() {
    let device = default_device();
    let config = tiny_config(2, 32);
    let net = config.unet.init(&device).unwrap();
    let den = UNetDenoiser::new(config, net, &device).unwrap();
    let mut rng = seeded(3);
    let shape = [2, 2, 32, 32];
    let n = 2 * 2 * 32 * 32;
    let x = ImageBatch::new(shape, standard_normal(&mut rng, n)).unwrap();
    let v = ImageBatch::new(shape, standard_normal(&mut rng, n)).unwrap();
    let t = 400;
    let (eps, vjp) = den.predict_noise_vjp(&x, t, &v).unwrap();
    // The ε̂ returned with the VJP is the plain forward pass.
    let plain = den.predict_noise(&x, t).unwrap();
    let max_diff = eps
        .data()
        .iter()
        .zip(plain.data())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(
        max_diff < 1e-5,
        "ε̂ from the VJP path differs from the forward pass by {max_diff}"
    );
    // ⟨vjp, d⟩ = d/dh ⟨v, ε(x + h d)⟩ at h = 0, checked by central differences along 3 random d.
    for k in 0..3 {
        let d = standard_normal(&mut seeded(100 + k), n);
        let h = 1e-2f32;
        let shifted = |sign: f32| {
            let data: Vec<f32> = x
                .data()
                .iter()
                .zip(&d)
                .map(|(a, b)| a + sign * h * b)
                .collect();
            den.predict_noise(&ImageBatch::new(shape, data).unwrap(), t)
                .unwrap()
        };
        let fd = (dot(v.data(), shifted(1.0).data()) - dot(v.data(), shifted(-1.0).data()))
            / (2.0 * h as f64);
        let analytic = dot(vjp.data(), &d);
        let rel = (fd - analytic).abs() / analytic.abs().max(1e-3);
        assert!(
            rel < 2e-2,
            "direction {k}: finite difference {fd} vs VJP {analytic} (relative error {rel})"
        );
    }
}

#[test]
fn checkpoint_round_trip_is_bitwise() {
    let device = default_device();
    let config = tiny_config(1, 32);
    let net = config.unet.init(&device).unwrap();
    let dir = scratch_dir("roundtrip");
    let first = dir.join("a.safetensors");
    model_dir::save_weights(&net, &first).unwrap();
    let loaded = model_dir::load_weights(&config, &first, &device).unwrap();
    let second = dir.join("b.safetensors");
    model_dir::save_weights(&loaded, &second).unwrap();
    assert!(
        std::fs::read(&first).unwrap() == std::fs::read(&second).unwrap(),
        "re-saved weights differ: {} vs {}",
        first.display(),
        second.display()
    );

    let x = ImageBatch::new([1, 1, 32, 32], standard_normal(&mut seeded(5), 1024)).unwrap();
    let a = UNetDenoiser::new(config.clone(), net, &device)
        .unwrap()
        .predict_noise(&x, 10)
        .unwrap();
    let b = UNetDenoiser::new(config.clone(), loaded, &device)
        .unwrap()
        .predict_noise(&x, 10)
        .unwrap();
    assert!(
        a.data()
            .iter()
            .zip(b.data())
            .all(|(p, q)| p.to_bits() == q.to_bits()),
        "outputs differ after reload"
    );

    // Loading into a different architecture is an error, not a silent partial load.
    let other = DiffusionModelConfig {
        unet: Preset::Tiny.unet(2, 32),
        ..config
    };
    assert!(model_dir::load_weights(&other, &first, &device).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tiny_training_reduces_loss_threefold_and_resumes_exactly() {
    let device = default_device();
    let config = tiny_config(1, 32);
    let images = phantom_images(4);
    let mut train = Preset::Tiny.train_config();
    train.steps = 80;
    train.batch_size = 8;
    let mut trainer = Trainer::new(
        train.clone(),
        &config,
        config.unet.init(&device).unwrap(),
        &device,
    )
    .unwrap();
    let mut losses = Vec::new();
    while !trainer.finished() {
        losses.push(trainer.train_step(&images).unwrap().loss as f64);
    }
    let first: f64 = losses[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = losses[losses.len() - 10..].iter().sum::<f64>() / 10.0;
    assert!(
        first / last >= 3.0,
        "loss fell only {first:.3} → {last:.3} ({:.2}×)",
        first / last
    );

    // A run interrupted after 5 steps and resumed from its checkpoint ends bit-identical to an
    // uninterrupted 10-step run (every step draws from substream(seed, step)), dropout included.
    train.steps = 10;
    let mut config = config;
    config.unet.dropout = 0.1;
    let dir = scratch_dir("resume");
    let fresh = || {
        Trainer::new(
            train.clone(),
            &config,
            config.unet.init(&device).unwrap(),
            &device,
        )
        .unwrap()
    };
    let straight = fresh();
    let start = straight.model().clone();
    let mut straight = Trainer::new(train.clone(), &config, start.clone(), &device).unwrap();
    while !straight.finished() {
        straight.train_step(&images).unwrap();
    }
    let mut interrupted = Trainer::new(train.clone(), &config, start, &device).unwrap();
    for _ in 0..5 {
        interrupted.train_step(&images).unwrap();
    }
    model_dir::save_checkpoint(&dir, &config, &interrupted).unwrap();
    let mut resumed = model_dir::resume_trainer(&dir, &config, fresh(), &device).unwrap();
    assert_eq!(resumed.step_count(), 5);
    while !resumed.finished() {
        resumed.train_step(&images).unwrap();
    }
    let (a, b) = (
        dir.join("straight.safetensors"),
        dir.join("resumed.safetensors"),
    );
    model_dir::save_weights(straight.ema(), &a).unwrap();
    model_dir::save_weights(resumed.ema(), &b).unwrap();
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "resumed run diverged"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
