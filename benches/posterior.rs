//! Criterion benchmarks of one posterior-sampler step on a batch of 8 frames of 4-coil 4× MRI
//! (64×64 complex, the shipped `small` U-Net with random weights), with the network's own passes
//! in the same run as the yardstick:
//!
//! - `unet_forward_b8`: one ε̂ for the 8 frames;
//! - `unet_vjp_b8`: one vector–Jacobian product (forward and backward) for the 8 frames;
//! - `dps_step_b8`: one DPS step with x̂₀ clipping (what `reconstruct --method dps` runs): ε̂, the
//!   per-frame data gradient, the VJP through the clipped denoiser, the DDPM update; the clipped
//!   VJP reuses the step's forward pass, so the step should cost one forward plus one VJP;
//! - `ddim_dc_step_b8`: one DDIM + data-consistency step (K = 10 gradient steps of 1.5/L on x̂₀, the benches' setting).
//!
//! ```text
//! cargo bench --bench posterior
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use num_complex::Complex32;

use cinediff::data::Normalization;
use cinediff::diffusion::denoiser::Denoiser;
use cinediff::diffusion::samplers::Start;
use cinediff::diffusion::schedule::ScheduleKind;
use cinediff::diffusion::ClippedDenoiser;
use cinediff::image::ImageBatch;
use cinediff::nn::device::default_device;
use cinediff::nn::unet_denoiser::{DiffusionModelConfig, UNetDenoiser};
use cinediff::physics::{line_mask, CoilMaps, LinePattern, LinearOperator, SenseMri};
use cinediff::posterior::{DdimDc, Dps, Measurement, PosteriorProblem, PosteriorSampler};
use cinediff::rng::{seeded, standard_normal, substream};
use cinediff::train::Preset;

const FRAMES: usize = 8;
const SIZE: usize = 64;
const COILS: usize = 4;
const TIMESTEP: usize = 500;

fn random_batch(n: usize, seed: u64) -> ImageBatch {
    let data = standard_normal(&mut seeded(seed), n * 2 * SIZE * SIZE);
    ImageBatch::new([n, 2, SIZE, SIZE], data).expect("batch shape")
}

/// One 4× random-line SENSE measurement per frame (its own mask), of random complex images.
fn measurements(normalization: Normalization) -> Vec<Measurement> {
    let maps = Arc::new(CoilMaps::synthetic(COILS, [SIZE, SIZE]).expect("coil maps"));
    (0..FRAMES as u64)
        .map(|k| {
            let lines = line_mask(SIZE, 4.0, 8, LinePattern::Random, &mut seeded(10 + k))
                .expect("line mask");
            let op = SenseMri::new(maps.clone(), lines.to_mask(SIZE).expect("mask"))
                .expect("SENSE operator");
            let v = standard_normal(&mut seeded(20 + k), 2 * SIZE * SIZE);
            let x: Vec<Complex32> = v
                .chunks_exact(2)
                .map(|p| 0.3 * Complex32::new(p[0], p[1]))
                .collect();
            let y = op.forward(&x).expect("forward");
            Measurement::new(Arc::new(op), y, normalization).expect("measurement")
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let device = default_device();
    let unet = Preset::Small.unet(2, SIZE);
    let config = DiffusionModelConfig {
        unet: unet.clone(),
        schedule: ScheduleKind::LINEAR,
        num_train_timesteps: 1000,
        normalization: Normalization {
            offset: 0.0,
            scale: 1.0,
        },
    };
    let schedule = config.noise_schedule().expect("schedule");
    let denoiser = UNetDenoiser::new(config.clone(), unet.init(&device).expect("U-Net"), &device)
        .expect("denoiser");
    let clipped = ClippedDenoiser::new(&denoiser, &schedule, 1.0).expect("clip");
    let measurements = measurements(config.normalization);
    let x = random_batch(FRAMES, 1);
    let v = random_batch(FRAMES, 2);

    let mut group = c.benchmark_group("posterior");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    group.bench_function("unet_forward_b8", |b| {
        b.iter(|| black_box(denoiser.predict_noise(&x, TIMESTEP).expect("forward")))
    });
    group.bench_function("unet_vjp_b8", |b| {
        b.iter(|| black_box(denoiser.predict_noise_vjp(&x, TIMESTEP, &v).expect("VJP")))
    });
    // A one-entry grid: one step from t = 500 to x₀.
    let problem = PosteriorProblem {
        denoiser: &clipped,
        schedule: &schedule,
        timesteps: &[TIMESTEP],
        measurements: &measurements,
    };
    let samplers: [(&str, Box<dyn PosteriorSampler>); 2] = [
        ("dps_step_b8", Box::new(Dps::default())),
        (
            "ddim_dc_step_b8",
            Box::new(DdimDc {
                steps_k: 10,
                step_size: 1.5,
                ..DdimDc::default()
            }),
        ),
    ];
    for (id, sampler) in &samplers {
        group.bench_function(*id, |b| {
            b.iter(|| {
                let mut rngs: Vec<_> = (0..FRAMES as u64).map(|k| substream(3, k)).collect();
                black_box(
                    sampler
                        .sample_frames(
                            &problem,
                            Start::Noise { x: x.clone() },
                            &mut rngs,
                            &mut |_| {},
                        )
                        .expect("step"),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(posterior, benches);
criterion_main!(posterior);
