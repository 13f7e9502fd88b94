//! Criterion benchmarks of the classic baselines on one 64×64 4-coil SENSE problem: 4× random
//! phase-encode lines with 8 ACS lines, the procedural cine phantom's first frame (complex), noise
//! σ = 0.01 per k-space component.
//!
//! Benchmarks (group `sense64`), each one full `Reconstructor::reconstruct` call with the stopping
//! tolerance at 0 so the iteration count is fixed (the ‖A‖ power iteration of TV and wavelets is
//! included, as it is in every call):
//!
//! - `cg_30`: CG-SENSE, 30 iterations;
//! - `tv_300`: total variation (PDHG), 300 iterations, default λ;
//! - `wavelet_200`: db4 ℓ1 (FISTA), 3 levels, 200 iterations, default λ.
//!
//! ```text
//! cargo bench --bench baselines                  # everything (about half a minute)
//! cargo bench --bench baselines -- sense64/tv    # one benchmark
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use num_complex::Complex32;

use cinediff::baselines::{LeastSquares, Reconstructor, TotalVariation, WaveletL1};
use cinediff::data::phantom::{cine_phantom, PhantomConfig};
use cinediff::physics::{line_mask, CoilMaps, LinePattern, LinearOperator, SenseMri};
use cinediff::rng::{seeded, standard_normal};

const SIZE: usize = 64;
const COILS: usize = 4;
const ACCELERATION: f64 = 4.0;
const ACS: usize = 8;
const NOISE: f32 = 0.01;

/// The benchmarked problem: operator and measurement.
fn problem() -> (SenseMri, Vec<Complex32>) {
    let maps = Arc::new(CoilMaps::synthetic(COILS, [SIZE, SIZE]).expect("coil maps"));
    let lines =
        line_mask(SIZE, ACCELERATION, ACS, LinePattern::Random, &mut seeded(1)).expect("line mask");
    let op = SenseMri::new(maps, lines.to_mask(SIZE).expect("mask")).expect("SENSE operator");
    let config = PhantomConfig {
        size: SIZE,
        frames: 1,
        complex: true,
        ..PhantomConfig::default()
    };
    let x = cine_phantom(&config, &mut seeded(2)).expect("phantom").data;
    let clean = op.forward(&x).expect("forward");
    let noise = standard_normal(&mut seeded(3), 2 * clean.len());
    let y = clean
        .iter()
        .zip(noise.chunks_exact(2))
        .map(|(v, n)| v + NOISE * Complex32::new(n[0], n[1]))
        .collect();
    (op, y)
}

fn benches(c: &mut Criterion) {
    let (op, y) = problem();
    let methods: [(&str, Box<dyn Reconstructor>); 3] = [
        (
            "cg_30",
            Box::new(LeastSquares {
                iterations: 30,
                tolerance: 0.0,
                ..LeastSquares::default()
            }),
        ),
        (
            "tv_300",
            Box::new(TotalVariation {
                iterations: 300,
                tolerance: 0.0,
                ..TotalVariation::default()
            }),
        ),
        (
            "wavelet_200",
            Box::new(WaveletL1 {
                iterations: 200,
                tolerance: 0.0,
                ..WaveletL1::default()
            }),
        ),
    ];
    let mut group = c.benchmark_group("sense64");
    // Calls take milliseconds to a fraction of a second: few flat samples keep the run short.
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (id, method) in &methods {
        group.bench_function(*id, |b| {
            b.iter(|| {
                method
                    .reconstruct(&op, black_box(&y), false)
                    .expect("reconstruct")
            });
        });
    }
    group.finish();
}

criterion_group!(baselines, benches);
criterion_main!(baselines);
