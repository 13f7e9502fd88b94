//! Criterion benchmarks of the APS and AID hot paths on the default (flex CPU) device, with the
//! per-frame U-Net's forward pass in the same run as the yardstick:
//!
//! - `unet_forward_b1`: one ε̂ of the shipped `small` U-Net (2 × 64 × 64);
//! - `aps_draws_64`: 64 posterior draws of one frame from the APS flow of `cine64-aps-mri4x`'s
//!   architecture (its mean network evaluated once for the frame, the flow once for the 64
//!   draws; what `reconstruct --method aps --samples 64` costs per frame);
//! - `aps_draws_64_sym16`: the same 64 draws spread over 16 symmetries of the problem (mirror ×
//!   8 global phases, the shipped APS models' default): 16 conditioning images, 16 calls of 4
//!   draws;
//! - `aid_next_w8`: one ε̂ of AID's network for the frame after a window of 8 (the per-step cost of
//!   `reconstruct --method aid`).
//!
//! Weights are random (the arithmetic does not depend on them).
//!
//! ```text
//! cargo bench --bench amortized
//! ```

use std::hint::black_box;
use std::time::Duration;

use burn::tensor::{Tensor, TensorData};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};

use cinediff::aps::mean_net_config;
use cinediff::nn::aid::AidConfig;
use cinediff::nn::device::default_device;
use cinediff::nn::flow::FlowConfig;
use cinediff::rng::{seeded, standard_normal};
use cinediff::train::Preset;

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = seeded(seed);
    standard_normal(&mut rng, n)
}

fn benches(c: &mut Criterion) {
    let device = default_device();
    let mut group = c.benchmark_group("amortized");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    let unet = Preset::Small.unet(2, 64);
    let net = unet.init(&device).expect("U-Net");
    let x1 = random(2 * 64 * 64, 1);
    group.bench_function("unet_forward_b1", |b| {
        b.iter(|| {
            let x = Tensor::<4>::from_data(TensorData::new(x1.clone(), [1, 2, 64, 64]), &device);
            black_box(net.forward(x, &[500]).into_data())
        })
    });

    let flow_config = FlowConfig {
        levels: 3,
        mean_net: mean_net_config(2, 64, 16),
        mean_unmeasured_only: true,
        ..FlowConfig::default()
    };
    let flow = flow_config.init(&device).expect("flow");
    let z = random(64 * 2 * 64 * 64, 2);
    let cond = random(3 * 64 * 64, 3);
    group.bench_function("aps_draws_64", |b| {
        b.iter(|| {
            let z = Tensor::<4>::from_data(TensorData::new(z.clone(), [64, 2, 64, 64]), &device);
            let c = Tensor::<4>::from_data(TensorData::new(cond.clone(), [1, 3, 64, 64]), &device);
            black_box(
                flow.forward_conditioned(z, &flow.condition(c))
                    .0
                    .into_data(),
            )
        })
    });

    let conds: Vec<Vec<f32>> = (0..16).map(|g| random(3 * 64 * 64, 10 + g)).collect();
    group.bench_function("aps_draws_64_sym16", |b| {
        b.iter(|| {
            for (g, cond) in conds.iter().enumerate() {
                let zg = z[g * 4 * 2 * 64 * 64..(g + 1) * 4 * 2 * 64 * 64].to_vec();
                let zg = Tensor::<4>::from_data(TensorData::new(zg, [4, 2, 64, 64]), &device);
                let c =
                    Tensor::<4>::from_data(TensorData::new(cond.clone(), [1, 3, 64, 64]), &device);
                black_box(
                    flow.forward_conditioned(zg, &flow.condition(c))
                        .0
                        .into_data(),
                );
            }
        })
    });

    let aid = AidConfig {
        unet,
        window: 8,
        heads: 4,
        mlp_ratio: 4,
    }
    .init(&device)
    .expect("AID");
    let window = random(8 * 2 * 64 * 64, 4);
    group.bench_function("aid_next_w8", |b| {
        b.iter(|| {
            let x = Tensor::<4>::from_data(TensorData::new(x1.clone(), [1, 2, 64, 64]), &device);
            let w =
                Tensor::<5>::from_data(TensorData::new(window.clone(), [1, 8, 2, 64, 64]), &device);
            black_box(aid.forward_next(x, Some(w), &[500]).into_data())
        })
    });
    group.finish();
}

criterion_group!(amortized, benches);
criterion_main!(amortized);
