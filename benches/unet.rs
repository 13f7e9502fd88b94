//! Criterion benchmarks of the U-Net hot paths on the default (flex CPU) device.
//!
//! Two network configurations, one benchmark group each:
//!
//! - `base`: the reference network of framework.md and `bench/torch_unet.py` (2 channels, 64×64,
//!   base 32, multipliers 1-2-2, 2 blocks per level, attention at 16×16, dropout 0, 8 groups), so the
//!   numbers compare directly with the PyTorch script's output;
//! - `small`: the shipped `small` preset for 2-channel 64×64 images.
//!
//! Benchmarks in each group (same names as the PyTorch script's keys):
//!
//! - `forward_b1`, `forward_b8`: one `Denoiser::predict_noise` call at batch 1 and 8;
//! - `vjp_b1`: one `Denoiser::predict_noise_vjp` call at batch 1;
//! - `train_step_b16`: one `Trainer::train_step` with batch 16 drawn from 32 random images.
//!
//! Weights are randomly initialised; the arithmetic does not depend on their values.
//!
//! ```text
//! cargo bench --bench unet                       # everything (a few minutes on 2 quiet cores)
//! cargo bench --bench unet -- small/             # one group
//! cargo bench --bench unet -- base/forward_b1    # one benchmark
//! ```
//!
//! Models and data are built lazily inside each benchmark, so a filter skips their setup too.

use std::cell::OnceCell;
use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode};

use cinediff::data::Normalization;
use cinediff::diffusion::denoiser::Denoiser;
use cinediff::diffusion::schedule::ScheduleKind;
use cinediff::image::ImageBatch;
use cinediff::nn::device::default_device;
use cinediff::nn::unet::UNetConfig;
use cinediff::nn::unet_denoiser::{DiffusionModelConfig, UNetDenoiser};
use cinediff::rng::{seeded, standard_normal};
use cinediff::train::{Preset, TrainConfig, Trainer};

const CHANNELS: usize = 2;
const SIZE: usize = 64;
const NUM_TRAIN_TIMESTEPS: usize = 1000;
/// Mid-schedule level for the denoiser calls (the cost does not depend on it).
const TIMESTEP: usize = 500;
const TRAIN_BATCH: usize = 16;
const DATASET_IMAGES: usize = 32;

/// One benchmarked network: its group name, architecture, and the preset its optimiser settings come from.
struct BenchConfig {
    name: &'static str,
    unet: UNetConfig,
    preset: Preset,
}

/// framework.md's reference U-Net (= `Preset::Base.unet(2, 64)` with dropout 0), spelled out so
/// that later changes to the preset do not silently change what is compared with PyTorch.
fn base_config() -> BenchConfig {
    BenchConfig {
        name: "base",
        unet: UNetConfig {
            in_channels: CHANNELS,
            image_size: SIZE,
            base_channels: 32,
            channel_mults: vec![1, 2, 2],
            blocks_per_level: 2,
            attention_resolutions: vec![16],
            dropout: 0.0,
            groups: 8,
        },
        preset: Preset::Base,
    }
}

/// The shipped `small` preset.
fn small_config() -> BenchConfig {
    BenchConfig {
        name: "small",
        unet: Preset::Small.unet(CHANNELS, SIZE),
        preset: Preset::Small,
    }
}

fn model_config(unet: &UNetConfig) -> DiffusionModelConfig {
    DiffusionModelConfig {
        unet: unet.clone(),
        schedule: ScheduleKind::LINEAR,
        num_train_timesteps: NUM_TRAIN_TIMESTEPS,
        normalization: Normalization {
            offset: 0.0,
            scale: 1.0,
        },
    }
}

fn build_denoiser(unet: &UNetConfig) -> UNetDenoiser {
    let device = default_device();
    let model = unet.init(&device).expect("valid U-Net config");
    UNetDenoiser::new(model_config(unet), model, &device).expect("denoiser")
}

/// `n` standard-normal images of the benchmarked shape.
fn random_batch(n: usize, seed: u64) -> ImageBatch {
    let shape = [n, CHANNELS, SIZE, SIZE];
    let data = standard_normal(&mut seeded(seed), n * CHANNELS * SIZE * SIZE);
    ImageBatch::new(shape, data).expect("batch shape")
}

fn build_trainer(config: &BenchConfig) -> (Trainer, ImageBatch) {
    let device = default_device();
    let train = TrainConfig {
        batch_size: TRAIN_BATCH,
        // Far beyond what the benchmark runs, so every step is a regular (warm-up phase) step.
        steps: 1_000_000,
        ..config.preset.train_config()
    };
    let model_config = model_config(&config.unet);
    let model = config.unet.init(&device).expect("valid U-Net config");
    let trainer = Trainer::new(train, &model_config, model, &device).expect("trainer");
    (trainer, random_batch(DATASET_IMAGES, 3))
}

/// Few flat samples: every call here takes 0.05–10 s, so criterion's defaults would take hours.
fn configure(group: &mut BenchmarkGroup<'_, WallTime>, measurement_secs: u64) {
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(measurement_secs));
}

fn bench_config(c: &mut Criterion, config: BenchConfig) {
    let mut group = c.benchmark_group(config.name);
    // Shared by the forward and VJP benchmarks; built on first use.
    let denoiser: OnceCell<UNetDenoiser> = OnceCell::new();

    configure(&mut group, 4);
    for (id, n) in [("forward_b1", 1), ("forward_b8", 8)] {
        let x: OnceCell<ImageBatch> = OnceCell::new();
        group.bench_function(id, |b| {
            let d = denoiser.get_or_init(|| build_denoiser(&config.unet));
            let x = x.get_or_init(|| random_batch(n, 1));
            b.iter(|| {
                d.predict_noise(black_box(x), TIMESTEP)
                    .expect("predict_noise")
            });
        });
    }

    let inputs: OnceCell<(ImageBatch, ImageBatch)> = OnceCell::new();
    group.bench_function("vjp_b1", |b| {
        let d = denoiser.get_or_init(|| build_denoiser(&config.unet));
        let (x, v) = inputs.get_or_init(|| (random_batch(1, 1), random_batch(1, 2)));
        b.iter(|| {
            d.predict_noise_vjp(black_box(x), TIMESTEP, black_box(v))
                .expect("predict_noise_vjp")
        });
    });

    // A training step takes seconds: 10 samples of one step each, whatever the measurement time.
    configure(&mut group, 10);
    let mut state: Option<(Trainer, ImageBatch)> = None;
    group.bench_function("train_step_b16", |b| {
        let (trainer, data) = state.get_or_insert_with(|| build_trainer(&config));
        b.iter(|| trainer.train_step(black_box(data)).expect("train_step"));
    });

    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_config(c, base_config());
    bench_config(c, small_config());
}

criterion_group!(unet, benches);
criterion_main!(unet);
