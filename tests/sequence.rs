//! Sequence strategies with the Gaussian oracle prior: SeqDiff's warm start, cold restarts, the
//! adaptive warm start, particles, and reproducibility. Run with `cargo test --release --test sequence`.

use cinediff::bundle::{simulate, Bundle, MaskPattern, OperatorKind, SimulationSettings, Truth};
use cinediff::data::Normalization;
use cinediff::diffusion::schedule::{NoiseSchedule, ScheduleKind, TimestepSpacing};
use cinediff::diffusion::GaussianDenoiser;
use cinediff::posterior::DdimDc;
use cinediff::reconstruction::Prior;
use cinediff::sequence::{run_sequence, Independent, SeqDiff, SequenceOptions, SequenceResult};
use num_complex::Complex32;

const N: usize = 16;
const NORM: Normalization = Normalization {
    offset: 0.0,
    scale: 1.0,
};

/// A slowly moving disc, `[frames, 16, 16]`; from frame `jump` on, the disc sits elsewhere.
fn sequence(frames: usize, jump: Option<usize>) -> Truth {
    let values = (0..frames * N * N)
        .map(|k| {
            let (t, i, j) = (k / (N * N), (k / N) % N, k % N);
            let cx = if jump.is_some_and(|f| t >= f) {
                3.0
            } else {
                8.0 + 0.2 * t as f32
            };
            let r2 = (i as f32 - 8.0).powi(2) + (j as f32 - cx).powi(2);
            Complex32::new(if r2 < 12.0 { 0.8 } else { 0.1 }, 0.0)
        })
        .collect();
    Truth {
        shape: vec![frames, N, N],
        values,
    }
}

fn bundle(truth: Truth) -> Bundle {
    let settings = SimulationSettings {
        operator: OperatorKind::Mri,
        mask: MaskPattern::Random,
        acceleration: 2.0,
        acs: 4,
        coils: 1,
        noise_sigma: 0.01,
        static_mask: false,
        scale: 2,
        blur_sigma: 1.5,
    };
    simulate(truth, true, &settings, 0).unwrap()
}

struct Oracle {
    schedule: NoiseSchedule,
    prior: GaussianDenoiser,
    steps: Vec<usize>,
}

fn oracle(steps: usize) -> Oracle {
    let schedule = NoiseSchedule::new(ScheduleKind::LINEAR, 1000).unwrap();
    let prior = GaussianDenoiser::new(
        schedule.clone(),
        [2, N, N],
        vec![0.2; 2 * N * N],
        vec![0.4; 2 * N * N],
    )
    .unwrap();
    let steps = schedule
        .timesteps(steps, TimestepSpacing::Linspace)
        .unwrap();
    Oracle {
        schedule,
        prior,
        steps,
    }
}

fn run(
    o: &Oracle,
    b: &Bundle,
    seqdiff: bool,
    options: SequenceOptions,
    seed: u64,
) -> SequenceResult {
    let p = Prior {
        denoiser: &o.prior,
        schedule: &o.schedule,
        timesteps: &o.steps,
    };
    let sampler = DdimDc::default();
    if seqdiff {
        run_sequence(
            b,
            &sampler,
            p,
            NORM,
            &mut SeqDiff,
            &options,
            seed,
            &mut |_, _| {},
        )
        .unwrap()
    } else {
        run_sequence(
            b,
            &sampler,
            p,
            NORM,
            &mut Independent,
            &options,
            seed,
            &mut |_, _| {},
        )
        .unwrap()
    }
}

/// Mean over frames 1.. of the relative error against the truth.
fn error_after_first(b: &Bundle, x: &[Complex32]) -> f64 {
    let truth = &b.truth().unwrap().values;
    let frames = truth.len() / (N * N);
    (1..frames)
        .map(|t| {
            let r = t * N * N..(t + 1) * N * N;
            let num: f64 = x[r.clone()]
                .iter()
                .zip(&truth[r.clone()])
                .map(|(a, b)| (a - b).norm_sqr() as f64)
                .sum();
            let den: f64 = truth[r].iter().map(|b| b.norm_sqr() as f64).sum();
            (num / den).sqrt()
        })
        .sum::<f64>()
        / (frames - 1) as f64
}

#[test]
fn seqdiff_runs_few_steps_at_comparable_error() {
    let o = oracle(40);
    let b = bundle(sequence(6, None));
    let options = SequenceOptions {
        warm_steps: 4,
        ..SequenceOptions::default()
    };
    let ind = run(&o, &b, false, options, 1);
    let seq = run(&o, &b, true, options, 1);
    let steps: Vec<usize> = seq.frames.iter().map(|r| r.steps).collect();
    assert_eq!(steps, vec![40, 4, 4, 4, 4, 4]);
    assert!(ind.frames.iter().all(|r| r.steps == 40 && r.cold));
    assert!(seq.frames[1..]
        .iter()
        .all(|r| !r.cold && r.warm_residual.is_some()));
    // With a Gaussian prior the posterior of a slowly moving image is recovered as well from the
    // warm start (10× fewer steps) as from noise: within 10 % relative error of independent.
    let (e_ind, e_seq) = (
        error_after_first(&b, &ind.mean),
        error_after_first(&b, &seq.mean),
    );
    eprintln!("relative error after frame 0: independent {e_ind:.4}, seqdiff {e_seq:.4}");
    assert!(
        e_seq < 1.1 * e_ind,
        "seqdiff {e_seq} vs independent {e_ind}"
    );
    // Same seed, same bytes; another seed differs.
    assert_eq!(seq.mean, run(&o, &b, true, options, 1).mean);
    assert_ne!(seq.mean, run(&o, &b, true, options, 2).mean);
}

#[test]
fn cold_restarts_and_adaptive_warm_start() {
    let o = oracle(40);
    let b = bundle(sequence(6, Some(3)));
    let periodic = run(
        &o,
        &b,
        true,
        SequenceOptions {
            warm_steps: 4,
            cold_every: Some(2),
            ..SequenceOptions::default()
        },
        0,
    );
    let cold: Vec<bool> = periodic.frames.iter().map(|r| r.cold).collect();
    assert_eq!(cold, vec![true, false, true, false, true, false]);

    let plain = run(
        &o,
        &b,
        true,
        SequenceOptions {
            warm_steps: 4,
            ..SequenceOptions::default()
        },
        0,
    );
    let rho: Vec<f64> = plain.frames[1..]
        .iter()
        .map(|r| r.warm_residual.unwrap())
        .collect();
    eprintln!("warm residuals ρ of frames 1..5: {rho:?}");
    // The jump at frame 3 shows in ρ: far above the smooth frames'.
    let smooth = rho[0].max(rho[1]).max(rho[3]).max(rho[4]);
    assert!(rho[2] > 2.0 * smooth, "ρ {rho:?}");
    // A threshold between the two: only frame 3 grows its steps, to ⌈4·ρ/ρ₀⌉.
    let threshold = (rho[2] * smooth).sqrt();
    let adaptive = run(
        &o,
        &b,
        true,
        SequenceOptions {
            warm_steps: 4,
            adaptive_threshold: Some(threshold),
            ..SequenceOptions::default()
        },
        0,
    );
    let steps: Vec<usize> = adaptive.frames.iter().map(|r| r.steps).collect();
    let expected_jump = ((4.0 * rho[2] / threshold).ceil() as usize).min(40);
    assert_eq!(steps[..3], [40, 4, 4]);
    assert_eq!(steps[3], expected_jump);
    assert!(expected_jump > 4);
}

#[test]
fn particles_give_mean_and_spread() {
    let o = oracle(20);
    let b = bundle(sequence(3, None));
    let result = run(
        &o,
        &b,
        true,
        SequenceOptions {
            warm_steps: 4,
            particles: 3,
            ..SequenceOptions::default()
        },
        5,
    );
    let std = result.std.expect("spread for 3 particles");
    assert_eq!(std.len(), 3 * N * N);
    assert!(std.iter().all(|s| s.is_finite() && *s >= 0.0));
    assert!(
        std.iter().any(|&s| s > 1e-3),
        "particles should differ where k-space is missing"
    );
    assert_eq!(result.frames[0].nfe, 20 * 3);
    assert_eq!(result.frames[1].nfe, 4 * 3);
    let bad = SequenceOptions {
        particles: 0,
        ..SequenceOptions::default()
    };
    assert!(bad.validate().is_err());
}

#[test]
fn warm_start_level_sets_where_warm_frames_start() {
    let o = oracle(40);
    let b = bundle(sequence(4, None));
    let at = |level: Option<usize>| SequenceOptions {
        warm_steps: 4,
        warm_level: level,
        ..SequenceOptions::default()
    };
    let tail = run(&o, &b, true, at(None), 3);
    let high = run(&o, &b, true, at(Some(300)), 3);
    let steps: Vec<usize> = high.frames.iter().map(|r| r.steps).collect();
    assert_eq!(steps, vec![40, 4, 4, 4]);
    // Same frame 0 (cold, same stream); later frames start elsewhere and so differ.
    let n = N * N;
    assert_eq!(tail.mean[..n], high.mean[..n]);
    assert_ne!(tail.mean[n..], high.mean[n..]);
    // The last 4 points of the 40-step linspace grid end at 0 spaced by 999/39 ≈ 25.6, i.e. start
    // at 77: choosing that level by hand reproduces the default warm start bit for bit.
    let same = run(&o, &b, true, at(Some(o.steps[36])), 3);
    assert_eq!(o.steps[36..], [77, 51, 26, 0]);
    assert_eq!(same.mean, tail.mean);
    // A level with fewer timesteps below it than steps, or beyond the schedule, is refused.
    let p = Prior {
        denoiser: &o.prior,
        schedule: &o.schedule,
        timesteps: &o.steps,
    };
    for level in [2, 1000] {
        let result = run_sequence(
            &b,
            &DdimDc::default(),
            p,
            NORM,
            &mut SeqDiff,
            &at(Some(level)),
            0,
            &mut |_, _| {},
        );
        assert!(result.is_err(), "level {level} accepted");
    }
}
