//! Posterior samplers against exact Gaussian posteriors.
//!
//! Prior: the analytic Gaussian denoiser, x_net ~ N(μ, diag s²). Measurement: y = A(scale·x_net +
//! offset) + n, n ~ N(0, σ_y²) per real component. Two settings whose posterior is closed-form:
//!
//! - **MRI** (complex, [2, 8, 8]): a white prior (equal s everywhere, re and im independent) and
//!   A = M F with the unitary centred FFT and a column mask. F maps white circular noise to white
//!   circular noise, so the posterior is diagonal in k-space: a measured coefficient has precision
//!   1/s² + scale²/σ_y² and mean (k_μ/s² + scale·ỹ/σ_y²)/precision with ỹ = y − A(offset·𝟙); an
//!   unmeasured one keeps the prior. The image-space mean is Fᴴ of that, and every pixel's
//!   per-component variance is the k-space average of the variances.
//! - **Inpainting** (real, [1, 6, 6]): A = diag(mask) with a per-pixel prior s_p; the posterior is per
//!   pixel, the same formula with k replaced by the pixel.
//!
//! Samplers are approximations (their x̂₀ refinements use the Gaussian data term with the Tweedie
//! estimate, not the exact p(x₀ | x_t, y)), so the tests bound (a) the statistical error of a sample
//! mean, computed from the samples' own spread, plus (b) a systematic allowance justified below from
//! measured numbers.

use std::sync::Arc;

use num_complex::Complex32;

use cinediff::data::Normalization;
use cinediff::diffusion::samplers::{Ddim, Start, StepInfo};
use cinediff::diffusion::{GaussianDenoiser, NoiseSchedule, TimestepSpacing};
use cinediff::physics::{
    CartesianMri, CenteredFft, DynamicMri, LineMask, LinearOperator, Mask, PixelMask,
};
use cinediff::posterior::{
    posterior_statistics, BaseStep, DdimDc, Dds, DiffPir, Dps, Measurement, PosteriorProblem,
    PosteriorSampler, Renoise,
};
use cinediff::rng::{seeded, standard_normal};
use cinediff::{Error, ImageBatch};

const H: usize = 8;
const W: usize = 8;
/// Prior standard deviation (network space), the same for every pixel and component.
const S: f32 = 0.5;
/// Measurement noise per real component (user units).
const SIGMA_Y: f32 = 0.1;
const NORM: Normalization = Normalization {
    offset: 0.25,
    scale: 2.0,
};
const STEPS: usize = 50;

fn schedule() -> NoiseSchedule {
    NoiseSchedule::linear_default()
}

/// Prior mean in [−0.5, 0.5], a fixed scrambled pattern over both channels.
fn prior_mean(len: usize) -> Vec<f32> {
    (0..len)
        .map(|p| -0.5 + ((p * 37 + 11) % len) as f32 / (len - 1) as f32)
        .collect()
}

fn mri_prior() -> GaussianDenoiser {
    GaussianDenoiser::new(
        schedule(),
        [2, H, W],
        prior_mean(2 * H * W),
        vec![S; 2 * H * W],
    )
    .unwrap()
}

fn line_mri(columns: &[usize]) -> CartesianMri {
    let lines = (0..W).map(|c| columns.contains(&c)).collect();
    CartesianMri::new(LineMask::new(lines).unwrap().to_mask(H).unwrap()).unwrap()
}

/// A [c, h, w] network-space image as the complex user-space image the operator sees.
fn to_user(x: &[f32], channels: usize, norm: Normalization) -> Vec<Complex32> {
    let plane = x.len() / channels;
    (0..plane)
        .map(|i| {
            let re = norm.scale * x[i] + norm.offset;
            let im = if channels == 2 {
                norm.scale * x[plane + i] + norm.offset
            } else {
                0.0
            };
            Complex32::new(re, im)
        })
        .collect()
}

/// y = A(x_user) + σ_y n on the entries A can produce (n per real component).
fn simulate(
    op: &dyn LinearOperator,
    x_user: &[Complex32],
    measured: &[bool],
    seed: u64,
) -> Vec<Complex32> {
    let mut y = op.forward(x_user).unwrap();
    let n = standard_normal(&mut seeded(seed), 2 * y.len());
    for (i, (v, &m)) in y.iter_mut().zip(measured).enumerate() {
        if m {
            *v += Complex32::new(SIGMA_Y * n[2 * i], SIGMA_Y * n[2 * i + 1]);
        }
    }
    y
}

/// A draw from the prior (network space).
fn prior_draw(denoiser: &GaussianDenoiser, seed: u64) -> Vec<f32> {
    let z = standard_normal(&mut seeded(seed), denoiser.mean().len());
    denoiser
        .mean()
        .iter()
        .zip(denoiser.std())
        .zip(&z)
        .map(|((m, s), z)| m + s * z)
        .collect()
}

/// The MRI problem: operator, measurement, exact posterior mean (network space, channel layout)
/// and the exact per-component posterior variance of every pixel.
struct MriCase {
    measurement: Measurement,
    post_mean: Vec<f64>,
    post_var: f64,
}

fn mri_case(columns: &[usize], seed: u64) -> MriCase {
    let denoiser = mri_prior();
    let op = line_mri(columns);
    let measured: Vec<bool> = op.mask().data().to_vec();
    let x_true = prior_draw(&denoiser, seed);
    let y = simulate(&op, &to_user(&x_true, 2, NORM), &measured, seed + 1000);

    // Exact posterior in k-space (f64 arithmetic on f32 transforms).
    let fft = CenteredFft::new([H, W]).unwrap();
    let mu = to_user(
        denoiser.mean(),
        2,
        Normalization {
            offset: 0.0,
            scale: 1.0,
        },
    );
    let k_mu = fft.forward(&mu).unwrap();
    let a_offset = op
        .forward(&vec![Complex32::new(NORM.offset, NORM.offset); H * W])
        .unwrap();
    let (s2, sy2, a) = (
        (S * S) as f64,
        (SIGMA_Y * SIGMA_Y) as f64,
        NORM.scale as f64,
    );
    let prec = 1.0 / s2 + a * a / sy2;
    let k_post: Vec<Complex32> = (0..H * W)
        .map(|j| {
            if measured[j] {
                let yt = y[j] - a_offset[j];
                let re = (k_mu[j].re as f64 / s2 + a * yt.re as f64 / sy2) / prec;
                let im = (k_mu[j].im as f64 / s2 + a * yt.im as f64 / sy2) / prec;
                Complex32::new(re as f32, im as f32)
            } else {
                k_mu[j]
            }
        })
        .collect();
    let post = fft.adjoint(&k_post).unwrap();
    let post_mean = post
        .iter()
        .map(|v| v.re as f64)
        .chain(post.iter().map(|v| v.im as f64))
        .collect();
    let n_meas = measured.iter().filter(|&&m| m).count() as f64;
    let post_var = (n_meas / prec + (H * W) as f64 * s2 - n_meas * s2) / (H * W) as f64;
    let measurement = Measurement::new(Arc::new(op), y, NORM).unwrap();
    // Populate the cached ‖A‖ once, so clones for every frame share it.
    measurement.operator_norm().unwrap();
    MriCase {
        measurement,
        post_mean,
        post_var,
    }
}

const COLUMNS: [usize; 3] = [1, 4, 6];

fn run(
    sampler: &dyn PosteriorSampler,
    denoiser: &GaussianDenoiser,
    measurements: &[Measurement],
    timesteps: &[usize],
    start: Start,
    seed: u64,
) -> ImageBatch {
    let schedule = schedule();
    let problem = PosteriorProblem {
        denoiser,
        schedule: &schedule,
        timesteps,
        measurements,
    };
    let out = sampler
        .sample(&problem, start, &mut seeded(seed), &mut |_| {})
        .unwrap();
    assert!(out.data().iter().all(|v| v.is_finite()));
    out
}

fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Error of a sample mean against a reference: ‖x̄ − ref‖, the reference's distance from the prior
/// mean, and the statistical scale √(Σ_p var_p / N) that ‖x̄ − ref‖ has for an unbiased sampler.
#[derive(Clone, Copy, Debug)]
struct MeanError {
    err: f64,
    d0: f64,
    stat: f64,
}

/// What one sampler does on the MRI case with N frames.
#[derive(Debug)]
struct MriRun {
    /// Image space, all values.
    image: MeanError,
    /// Measured k-space coefficients (re and im), where prior and posterior differ.
    measured: MeanError,
    /// Unmeasured k-space coefficients (posterior = prior there; `d0` is 0).
    unmeasured: MeanError,
    /// Sample variance / exact posterior variance, averaged over measured components.
    measured_var_ratio: f64,
}

/// Splits complex k-space values of one frame into measured / unmeasured real components.
fn split_k(k: &[Complex32], measured: &[bool]) -> (Vec<f64>, Vec<f64>) {
    let (mut a, mut b) = (vec![], vec![]);
    for (v, &m) in k.iter().zip(measured) {
        let dst = if m { &mut a } else { &mut b };
        dst.push(v.re as f64);
        dst.push(v.im as f64);
    }
    (a, b)
}

/// Mean error over frames given per-frame vectors, a reference and the prior mean.
fn mean_error(frames: &[Vec<f64>], reference: &[f64], prior: &[f64]) -> MeanError {
    let n = frames.len() as f64;
    let mut mean = vec![0.0; reference.len()];
    for f in frames {
        mean.iter_mut().zip(f).for_each(|(m, v)| *m += v / n);
    }
    let total_var: f64 = frames
        .iter()
        .map(|f| {
            f.iter()
                .zip(&mean)
                .map(|(v, m)| (v - m).powi(2))
                .sum::<f64>()
        })
        .sum::<f64>()
        / (n - 1.0);
    MeanError {
        err: dist(&mean, reference),
        d0: dist(prior, reference),
        stat: (total_var / n).sqrt(),
    }
}

fn frame_values(x: &ImageBatch) -> Vec<Vec<f64>> {
    (0..x.batch_size())
        .map(|i| x.image(i).iter().map(|&v| v as f64).collect())
        .collect()
}

fn complex_frame(v: &[f64]) -> Vec<Complex32> {
    let plane = v.len() / 2;
    (0..plane)
        .map(|i| Complex32::new(v[i] as f32, v[plane + i] as f32))
        .collect()
}

fn mri_run(sampler: &dyn PosteriorSampler, frames: usize, seed: u64) -> MriRun {
    let case = mri_case(&COLUMNS, 3);
    let denoiser = mri_prior();
    let ts = schedule()
        .timesteps(STEPS, TimestepSpacing::Linspace)
        .unwrap();
    let ms = vec![case.measurement.clone(); frames];
    let x = run(
        sampler,
        &denoiser,
        &ms,
        &ts,
        Start::Cold {
            shape: [frames, 2, H, W],
        },
        seed,
    );
    let prior: Vec<f64> = denoiser.mean().iter().map(|&v| v as f64).collect();
    let values = frame_values(&x);
    let image = mean_error(&values, &case.post_mean, &prior);

    let fft = CenteredFft::new([H, W]).unwrap();
    let measured_mask = line_mri(&COLUMNS).mask().data().to_vec();
    let k = |v: &[f64]| split_k(&fft.forward(&complex_frame(v)).unwrap(), &measured_mask);
    let (post_m, post_u) = k(&case.post_mean);
    let (prior_m, prior_u) = k(&prior);
    let (frames_m, frames_u): (Vec<_>, Vec<_>) = values.iter().map(|v| k(v)).unzip();
    let measured = mean_error(&frames_m, &post_m, &prior_m);
    let unmeasured = mean_error(&frames_u, &post_u, &prior_u);
    let (s2, sy2, a) = (
        (S * S) as f64,
        (SIGMA_Y * SIGMA_Y) as f64,
        NORM.scale as f64,
    );
    let exact_var = 1.0 / (1.0 / s2 + a * a / sy2);
    let measured_var_ratio =
        measured.stat.powi(2) * frames as f64 / (post_m.len() as f64 * exact_var);
    let out = MriRun {
        image,
        measured,
        unmeasured,
        measured_var_ratio,
    };
    eprintln!(
        "{} (N = {frames}): image err/d0 = {:.4} (stat {:.4}); measured k: err {:.5}, d0 {:.4}, err/d0 {:.5}, stat/d0 {:.5}; \
         unmeasured k: err {:.4}, stat {:.4}; measured var ratio {:.3}; exact pixel var {:.5}",
        sampler.name(),
        out.image.err / out.image.d0,
        out.image.stat / out.image.d0,
        out.measured.err,
        out.measured.d0,
        out.measured.err / out.measured.d0,
        out.measured.stat / out.measured.d0,
        out.unmeasured.err,
        out.unmeasured.stat,
        out.measured_var_ratio,
        case.post_var,
    );
    out
}

/// DiffPIR's settings for [`DiffPirChain::moments`].
struct DiffPirChain {
    scale: f64,
    lambda: f64,
    zeta: f64,
    sigma_n: f64,
}

impl DiffPirChain {
    /// Exact (mean, variance) of DiffPIR's output for one measured (or, with `data = None`,
    /// unmeasured) component whose prior is N(m, s²), computed independently of the library in f64.
    ///
    /// Every step is affine: x̂₀ = p x + q (Tweedie, p = α s²/v, q = m σ²/v, v = α²s² + σ²); the
    /// proximal step per component is k̂ = (scale·ỹ + ρ x̂₀)/(scale² + ρ) (A is the identity on a
    /// measured component, ỹ = y − A(offset)); ε̂ = (x − α k̂)/σ;
    /// x_next = √ᾱ_next k̂ + √(1 − ᾱ_next)(√(1 − ζ) ε̂ + √ζ z). Cold start: x ~ N(0, 1).
    fn moments(&self, m: f64, s: f64, data: Option<f64>, ts: &[usize]) -> (f64, f64) {
        let sch = schedule();
        let (mut mean, mut var) = (0.0, 1.0);
        for (i, &t) in ts.iter().enumerate() {
            let ab = sch.alpha_bar(t);
            let ab_n = ts.get(i + 1).map_or(1.0, |&t| sch.alpha_bar(t));
            let (al, sg) = (ab.sqrt(), (1.0 - ab).sqrt());
            let v = al * al * s * s + sg * sg;
            let (p, q) = (al * s * s / v, m * sg * sg / v);
            let (pp, qq) = match data {
                Some(yt) => {
                    let rho = self.lambda * self.sigma_n.powi(2) * ab / (1.0 - ab);
                    let d = self.scale * self.scale + rho;
                    (rho * p / d, (self.scale * yt + rho * q) / d)
                }
                None => (p, q),
            };
            if i + 1 == ts.len() {
                return (pp * mean + qq, pp * pp * var);
            }
            let ce = (1.0 - ab_n).sqrt() * (1.0 - self.zeta).sqrt();
            let a = ab_n.sqrt() * pp + ce * (1.0 - al * pp) / sg;
            let b = ab_n.sqrt() * qq - ce * al * qq / sg;
            mean = a * mean + b;
            var = a * a * var + (1.0 - ab_n) * self.zeta;
        }
        unreachable!("the grid is non-empty")
    }
}

/// Mean squared z-score of sample means against reference (mean, var) with `n` samples each.
fn q_means(sample_means: &[f64], reference: &[(f64, f64)], n: usize) -> f64 {
    sample_means
        .iter()
        .zip(reference)
        .map(|(x, (m, v))| (x - m).powi(2) / (v / n as f64))
        .sum::<f64>()
        / sample_means.len() as f64
}

/// 5 standard deviations of the mean of P squared standard normals above its mean 1.
fn q_bound(p: usize) -> f64 {
    1.0 + 5.0 * (2.0 / p as f64).sqrt()
}

/// Measured numbers (N = 1024 frames, 50 linspace steps, σ_y/scale = 0.05, s = 0.5; seed 11):
///
/// | sampler | measured-k ‖x̄ − μ_post‖/d0 | statistical scale/d0 | sample var / exact var |
/// |---|---|---|---|
/// | DDIM+DC (AID: K = 4, step 1, fresh) | 0.01000 | 0 | 0 |
/// | DDIM+DC (K = 2, step 0.5, DDIM η = 0.5) | 0.0019 | 0.0007 | 0.04 |
/// | DiffPIR λ = 1, ζ = 1 | 0.0014 | 0.0016 | 0.22 |
/// | DiffPIR λ = 1, ζ = 0.1 | 0.0025 | 0.0021 | 0.39 |
///
/// Derivation of the allowances. AID's step (size 1/L on a masked unitary operator) is the exact
/// projection, so every measured coefficient of x̂₀ — and of the output — is ỹ/scale: the mean is
/// biased by exactly σ'²/(s² + σ'²) = 0.0099 of (ỹ/scale − k_μ) (σ' = σ_y/scale), as measured, and the
/// variance is 0. Allowance 0.015·d0 (that bias with 50 % margin). DiffPIR with λ = 1 weights the
/// Tweedie estimate by σ_n²/σ̄_t², close to the exact p(x₀ | x_t) weight at low noise; its output is
/// affine-Gaussian, so the exact bias is computed by [`DiffPirChain::moments`] (≈ 0.0004–0.001 of d0) and
/// the test adds only the statistical term. The statistical term 1.5·stat bounds ‖x̄ − E x̄‖ for
/// P = 48 components with > 6 standard deviations of margin (‖·‖²/stat² ~ χ²_P/P, sd √(2/P) = 0.2).
/// Unmeasured coefficients keep the prior mean for all of them (E x̂₀ = k_μ there).
#[test]
fn ddim_dc_and_diffpir_means_match_the_exact_posterior() {
    let frames = 1024;
    let dc: Vec<Box<dyn PosteriorSampler>> = vec![
        Box::new(DdimDc::default()),
        Box::new(DdimDc {
            steps_k: 2,
            step_size: 0.5,
            renoise: Renoise::Ddim { eta: 0.5 },
        }),
    ];
    for s in &dc {
        let r = mri_run(s.as_ref(), frames, 11);
        assert!(
            r.measured.err <= 1.5 * r.measured.stat + 0.015 * r.measured.d0,
            "{}: {r:?}",
            s.name()
        );
        assert!(
            r.unmeasured.err <= 1.5 * r.unmeasured.stat,
            "{}: {r:?}",
            s.name()
        );
    }

    // DiffPIR: against the exact posterior with the exact chain bias, and coefficient by
    // coefficient against the chain's own mean and variance.
    let case = mri_case(&COLUMNS, 3);
    let fft = CenteredFft::new([H, W]).unwrap();
    let op = line_mri(&COLUMNS);
    let measured = op.mask().data().to_vec();
    let a_offset = op
        .forward(&vec![Complex32::new(NORM.offset, NORM.offset); H * W])
        .unwrap();
    let y_eff: Vec<Complex32> = case
        .measurement
        .y()
        .iter()
        .zip(&a_offset)
        .map(|(y, a)| y - a)
        .collect();
    let (yt_m, _) = split_k(&y_eff, &measured);
    let mu = complex_frame(
        &mri_prior()
            .mean()
            .iter()
            .map(|&v| v as f64)
            .collect::<Vec<_>>(),
    );
    let (km_m, _) = split_k(&fft.forward(&mu).unwrap(), &measured);
    let post_m = split_k(
        &fft.forward(&complex_frame(&case.post_mean)).unwrap(),
        &measured,
    )
    .0;
    let ts = schedule()
        .timesteps(STEPS, TimestepSpacing::Linspace)
        .unwrap();
    for zeta in [1.0, 0.1] {
        let sampler = DiffPir::new(1.0, zeta, SIGMA_Y).unwrap();
        let model = DiffPirChain {
            scale: NORM.scale as f64,
            lambda: 1.0,
            zeta: zeta as f64,
            sigma_n: SIGMA_Y as f64,
        };
        let chain: Vec<(f64, f64)> = km_m
            .iter()
            .zip(&yt_m)
            .map(|(&m, &yt)| model.moments(m, S as f64, Some(yt), &ts))
            .collect();
        let chain_means: Vec<f64> = chain.iter().map(|c| c.0).collect();
        let chain_bias = dist(&chain_means, &post_m);
        let r = mri_run(&sampler, frames, 11);
        eprintln!(
            "diffpir ζ = {zeta}: exact chain bias / d0 = {:.5}",
            chain_bias / r.measured.d0
        );
        assert!(
            r.measured.err <= chain_bias + 1.5 * r.measured.stat,
            "ζ = {zeta}: {r:?}"
        );
        assert!(
            chain_bias < 0.005 * r.measured.d0,
            "ζ = {zeta}: chain bias {chain_bias}"
        );
        assert!(
            r.unmeasured.err <= 1.5 * r.unmeasured.stat,
            "ζ = {zeta}: {r:?}"
        );
        // The sample variance of the measured coefficients matches the chain's (0.22 / 0.39 of the
        // exact posterior variance: DiffPIR under-disperses here); the average of 48 ratios of
        // 1024-sample variances has a standard deviation ≈ √(2/1023/48) = 0.6 %.
        let chain_var_ratio = chain.iter().map(|c| c.1).sum::<f64>()
            / chain.len() as f64
            / (1.0 / (1.0 / (S * S) as f64 + (NORM.scale / SIGMA_Y).powi(2) as f64));
        eprintln!("diffpir ζ = {zeta}: chain var / exact var = {chain_var_ratio:.4}");
        assert!(
            (r.measured_var_ratio / chain_var_ratio - 1.0).abs() < 0.05,
            "ζ = {zeta}: sample {} vs chain {chain_var_ratio}",
            r.measured_var_ratio
        );
    }
}

/// Measured (N = 256, seed 12): image-space ‖x̄ − μ_post‖/‖μ_prior − μ_post‖ = 0.117 (DPS ζ = 0.5,
/// DDIM η = 0), 0.079 (DPS default: ζ = 1, DDPM), 0.063 (DDIM+DC), 0.096 (DDS), 0.078 (DiffPIR
/// defaults λ = 7, ζ = 0.1, σ_n = 0.05), of which ≈ 0.06–0.08 is the statistical error of 256
/// samples in the unmeasured (prior-variance) part. The bound 0.25 asks for a factor 4 reduction.
#[test]
fn every_sampler_moves_the_estimate_to_the_posterior() {
    let samplers: Vec<Box<dyn PosteriorSampler>> = vec![
        Box::new(Dps {
            zeta: 0.5,
            base: BaseStep::Ddim(Ddim::new(0.0).unwrap()),
        }),
        Box::new(Dps::default()),
        Box::new(DdimDc::default()),
        Box::new(Dds::default()),
        Box::new(DiffPir::default()),
    ];
    for s in &samplers {
        let r = mri_run(s.as_ref(), 256, 12);
        assert!(r.image.err < 0.25 * r.image.d0, "{}: {r:?}", s.name());
    }
}

fn all_samplers() -> Vec<Box<dyn PosteriorSampler>> {
    vec![
        Box::new(Dps {
            zeta: 0.5,
            base: BaseStep::Ddim(Ddim::new(0.3).unwrap()),
        }),
        Box::new(Dps::default()),
        Box::new(DdimDc::default()),
        Box::new(Dds {
            eta: 0.5,
            ..Dds::default()
        }),
        Box::new(DiffPir::default()),
    ]
}

/// Three frames with their own masks and data, built from a dynamic (k–t) operator.
fn sequence_measurements() -> Vec<Measurement> {
    let denoiser = mri_prior();
    let columns = [[1usize, 4, 6], [0, 3, 4], [2, 4, 7]];
    let masks: Vec<Mask> = columns.iter().map(|c| line_mri(c).mask().clone()).collect();
    let seq = DynamicMri::from_masks(masks.clone()).unwrap();
    let mut y = vec![];
    for (k, mask) in masks.iter().enumerate() {
        let x = prior_draw(&denoiser, 50 + k as u64);
        let op = line_mri(&columns[k]);
        y.extend(simulate(
            &op,
            &to_user(&x, 2, NORM),
            mask.data(),
            60 + k as u64,
        ));
    }
    Measurement::per_frame(&seq, &y, NORM).unwrap()
}

#[test]
fn frames_are_independent_of_the_batch() {
    let denoiser = mri_prior();
    let ts = schedule().timesteps(20, TimestepSpacing::Linspace).unwrap();
    let ms = sequence_measurements();
    let warm_image = |n: usize| {
        let one: Vec<f32> = denoiser.mean().to_vec();
        ImageBatch::new([n, 2, H, W], one.repeat(n)).unwrap()
    };
    for s in all_samplers() {
        for warm in [false, true] {
            let start = |n: usize| {
                if warm {
                    Start::Warm {
                        image: warm_image(n),
                        start_index: 8,
                    }
                } else {
                    Start::Cold {
                        shape: [n, 2, H, W],
                    }
                }
            };
            let alone = run(s.as_ref(), &denoiser, &ms[..1], &ts, start(1), 5);
            let batch = run(s.as_ref(), &denoiser, &ms, &ts, start(3), 5);
            assert_eq!(alone.image(0), batch.image(0), "{} (warm {warm})", s.name());
            assert_ne!(batch.image(0), batch.image(1), "{} (warm {warm})", s.name());
        }
    }
}

/// A warm start from the prior mean at grid index 40 of 50 (t = 183, ᾱ = 0.70) runs the last 10
/// steps and still lands at the posterior. Measured image-space ‖x̄ − μ_post‖/‖μ_prior − μ_post‖
/// (N = 256, seed 21): DPS (ζ = 0.5, DDIM η = 0.3) 0.095, DPS default 0.084, DDIM+DC 0.058,
/// DDS (η = 0.5) 0.077, DiffPIR default 0.093 — mostly the statistical error of 256 samples; bound 0.25.
#[test]
fn warm_start_runs_the_remaining_steps_and_conditions_on_the_data() {
    let case = mri_case(&COLUMNS, 3);
    let denoiser = mri_prior();
    let schedule = schedule();
    let ts = schedule
        .timesteps(STEPS, TimestepSpacing::Linspace)
        .unwrap();
    let frames = 256;
    let ms = vec![case.measurement.clone(); frames];
    let problem = PosteriorProblem {
        denoiser: &denoiser,
        schedule: &schedule,
        timesteps: &ts,
        measurements: &ms,
    };
    let prior: Vec<f64> = denoiser.mean().iter().map(|&v| v as f64).collect();
    for s in all_samplers() {
        let image = ImageBatch::new([frames, 2, H, W], denoiser.mean().repeat(frames)).unwrap();
        let mut infos: Vec<StepInfo> = vec![];
        let x = s
            .sample(
                &problem,
                Start::Warm {
                    image,
                    start_index: 40,
                },
                &mut seeded(21),
                &mut |i| infos.push(i),
            )
            .unwrap();
        assert_eq!(infos.len(), 10, "{}", s.name());
        assert!(infos.iter().all(|i| i.total == 10));
        assert_eq!(infos[0].timestep, ts[40]);
        let e = mean_error(&frame_values(&x), &case.post_mean, &prior);
        eprintln!("{} warm: image err/d0 = {:.4}", s.name(), e.err / e.d0);
        assert!(e.err < 0.25 * e.d0, "{}: {e:?}", s.name());
    }
}

/// Real images ([1, 6, 6], per-pixel prior s_p), random-pixel inpainting, offset ≠ 0: the c = 1 path
/// (real adjoint), the offset handling and the mean / std helper.
///
/// Measured (seed 77, N = 512 helper samples): DiffPIR (λ = 1, ζ = 1) Q(means vs exact chain) = 0.70
/// (bound 2.18); mean std 0.018 on measured pixels vs 0.40 on unmeasured ones; measured-pixel
/// ‖x̄ − μ_post‖/d0 = 0.0006 (bound 0.05). With 128 frames, measured-pixel ratios: DPS (ζ = 1, DDIM
/// η = 0.3) 0.0065, DPS default 0.022, DDIM+DC 0.0029, DDS 0.0029, DiffPIR defaults 0.074 (its
/// default σ_n = 0.05 overstates the true σ_y = 0.02, so it trusts the prior more); bound 0.25.
#[test]
fn inpainting_real_images_with_offset_and_uncertainty_maps() {
    let (h, w) = (6, 6);
    let p = h * w;
    let norm = Normalization {
        offset: 0.5,
        scale: 0.5,
    };
    let sigma_y = 0.02f32;
    let mean = prior_mean(p);
    let std: Vec<f32> = (0..p)
        .map(|i| 0.3 + 0.7 * ((i * 23 + 5) % p) as f32 / (p - 1) as f32)
        .collect();
    let denoiser = GaussianDenoiser::new(schedule(), [1, h, w], mean.clone(), std.clone()).unwrap();
    let mask = Mask::random_pixels([h, w], 0.5, &mut seeded(4)).unwrap();
    let op = PixelMask::new(mask.clone());
    let x_true = prior_draw(&denoiser, 8);
    let y_clean = op.forward(&to_user(&x_true, 1, norm)).unwrap();
    let noise = standard_normal(&mut seeded(9), p);
    // Real data, real noise: y = M(scale·x + offset) + σ_y n.
    let y: Vec<Complex32> = y_clean
        .iter()
        .zip(&noise)
        .zip(mask.data())
        .map(|((v, n), &m)| {
            if m {
                v + Complex32::new(sigma_y * n, 0.0)
            } else {
                *v
            }
        })
        .collect();
    let measurement = Measurement::new(Arc::new(op), y.clone(), norm).unwrap();
    let schedule = schedule();
    let ts = schedule
        .timesteps(STEPS, TimestepSpacing::Linspace)
        .unwrap();
    let ms = vec![measurement];
    let problem = PosteriorProblem {
        denoiser: &denoiser,
        schedule: &schedule,
        timesteps: &ts,
        measurements: &ms,
    };
    let start = Start::Cold {
        shape: [1, 1, h, w],
    };

    // AID's DC step is the exact projection: measured pixels are (y − offset)/scale exactly.
    let x = DdimDc::default()
        .sample(&problem, start.clone(), &mut seeded(1), &mut |_| {})
        .unwrap();
    for (i, &m) in mask.data().iter().enumerate() {
        if m {
            let expected = (y[i].re - norm.offset) / norm.scale;
            assert!(
                (x.data()[i] - expected).abs() < 1e-5,
                "pixel {i}: {} vs {expected}",
                x.data()[i]
            );
        }
    }

    // DiffPIR (λ = 1, ζ = 1) through the mean / std helper against the exact chain moments.
    let n = 512;
    let stats = posterior_statistics(
        &DiffPir::new(1.0, 1.0, sigma_y).unwrap(),
        &problem,
        &start,
        n,
        77,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(stats.samples, n);
    let model = DiffPirChain {
        scale: norm.scale as f64,
        lambda: 1.0,
        zeta: 1.0,
        sigma_n: sigma_y as f64,
    };
    let chain: Vec<(f64, f64)> = (0..p)
        .map(|i| {
            let data = mask.data()[i].then(|| (y[i].re - norm.offset) as f64);
            model.moments(mean[i] as f64, std[i] as f64, data, &ts)
        })
        .collect();
    let sample_means: Vec<f64> = stats.mean.data().iter().map(|&v| v as f64).collect();
    let q = q_means(&sample_means, &chain, n);
    eprintln!(
        "inpainting DiffPIR: Q(means vs chain) = {q:.3} (bound {:.3})",
        q_bound(p)
    );
    assert!(q <= q_bound(p), "Q = {q}");
    // Standard deviations: each sample std has relative sd ≈ 1/√(2(N − 1)) = 3 %; ±20 % is > 6 sd.
    for (i, (&sd, c)) in stats.std.data().iter().zip(&chain).enumerate() {
        let ratio = sd as f64 / c.1.sqrt();
        assert!((0.8..1.25).contains(&ratio), "pixel {i}: std ratio {ratio}");
    }
    // The uncertainty map: measured pixels are pinned by the data, unmeasured ones are not.
    let avg = |want: bool| {
        let v: Vec<f32> = stats
            .std
            .data()
            .iter()
            .zip(mask.data())
            .filter(|(_, &m)| m == want)
            .map(|(s, _)| *s)
            .collect();
        v.iter().sum::<f32>() / v.len() as f32
    };
    eprintln!(
        "inpainting DiffPIR: mean std measured {:.4}, unmeasured {:.4}",
        avg(true),
        avg(false)
    );
    assert!(avg(false) > 3.0 * avg(true));
    // Exact posterior per pixel: measured pixels move to it (relative error small), in user units too.
    let user = stats.to_user_units(norm).unwrap();
    for i in 0..p {
        assert!(
            (user.mean.data()[i] - (norm.scale * stats.mean.data()[i] + norm.offset)).abs() < 1e-6
        );
        assert!((user.std.data()[i] - norm.scale * stats.std.data()[i]).abs() < 1e-6);
    }
    let (mut err, mut d0) = (0.0f64, 0.0f64);
    for i in (0..p).filter(|&i| mask.data()[i]) {
        let (s2, sy2, a) = (
            (std[i] * std[i]) as f64,
            (sigma_y * sigma_y) as f64,
            norm.scale as f64,
        );
        let yt = (y[i].re - norm.offset) as f64;
        let post = (mean[i] as f64 / s2 + a * yt / sy2) / (1.0 / s2 + a * a / sy2);
        err += (sample_means[i] - post).powi(2);
        d0 += (mean[i] as f64 - post).powi(2);
    }
    eprintln!(
        "inpainting DiffPIR: measured ‖x̄ − μ_post‖/d0 = {:.4}",
        (err / d0).sqrt()
    );
    assert!(err.sqrt() < 0.05 * d0.sqrt());

    // Every sampler conditions on the data on the real path too. DPS's step acts on the residual in
    // user units, which the small scale (0.5) shrinks, hence ζ = 1 here.
    let frames = 128;
    let ms_n = vec![ms[0].clone(); frames];
    let problem_n = PosteriorProblem {
        measurements: &ms_n,
        ..problem
    };
    let real_path: Vec<Box<dyn PosteriorSampler>> = vec![
        Box::new(Dps {
            zeta: 1.0,
            base: BaseStep::Ddim(Ddim::new(0.3).unwrap()),
        }),
        Box::new(Dps::default()),
        Box::new(DdimDc::default()),
        Box::new(Dds::default()),
        Box::new(DiffPir::default()),
    ];
    for s in &real_path {
        let x = s
            .sample(
                &problem_n,
                Start::Cold {
                    shape: [frames, 1, h, w],
                },
                &mut seeded(3),
                &mut |_| {},
            )
            .unwrap();
        let means = batch_mean_values(&x);
        let (mut err, mut d0) = (0.0f64, 0.0f64);
        for i in (0..p).filter(|&i| mask.data()[i]) {
            let (s2, sy2, a) = (
                (std[i] * std[i]) as f64,
                (sigma_y * sigma_y) as f64,
                norm.scale as f64,
            );
            let yt = (y[i].re - norm.offset) as f64;
            let post = (mean[i] as f64 / s2 + a * yt / sy2) / (1.0 / s2 + a * a / sy2);
            err += (means[i] - post).powi(2);
            d0 += (mean[i] as f64 - post).powi(2);
        }
        eprintln!(
            "inpainting {}: measured ‖x̄ − μ_post‖/d0 = {:.4}",
            s.name(),
            (err / d0).sqrt()
        );
        assert!(err.sqrt() < 0.25 * d0.sqrt(), "{}", s.name());
    }
}

fn batch_mean_values(x: &ImageBatch) -> Vec<f64> {
    let n = x.batch_size() as f64;
    let mut m = vec![0.0; x.image_len()];
    for i in 0..x.batch_size() {
        m.iter_mut()
            .zip(x.image(i))
            .for_each(|(a, &v)| *a += v as f64 / n);
    }
    m
}

#[test]
fn bad_inputs_are_errors() {
    let op: Arc<dyn LinearOperator> = Arc::new(line_mri(&COLUMNS));
    // y of the wrong length, NaN in y, invalid normalisation.
    assert!(matches!(
        Measurement::new(op.clone(), vec![Complex32::default(); H * W - 1], NORM),
        Err(Error::Shape { .. })
    ));
    let mut y = vec![Complex32::default(); H * W];
    y[5].im = f32::NAN;
    assert!(matches!(
        Measurement::new(op.clone(), y, NORM),
        Err(Error::NonFinite { index: 5, .. })
    ));
    let bad_norm = Normalization {
        offset: 0.0,
        scale: 0.0,
    };
    assert!(Measurement::new(op.clone(), vec![Complex32::default(); H * W], bad_norm).is_err());
    assert!(
        Measurement::new(op.clone(), vec![Complex32::default(); H * W], NORM)
            .unwrap()
            .with_operator_norm(f32::NAN)
            .is_err()
    );

    let good = Measurement::new(op, vec![Complex32::default(); H * W], NORM).unwrap();
    let denoiser = mri_prior();
    let schedule = schedule();
    let ts = schedule.timesteps(10, TimestepSpacing::Linspace).unwrap();
    let cold = |n| Start::Cold {
        shape: [n, 2, H, W],
    };
    let try_run = |s: &dyn PosteriorSampler, ms: &[Measurement], start: Start| {
        let problem = PosteriorProblem {
            denoiser: &denoiser,
            schedule: &schedule,
            timesteps: &ts,
            measurements: ms,
        };
        s.sample(&problem, start, &mut seeded(0), &mut |_| {})
    };
    for s in all_samplers() {
        // One measurement for two frames.
        assert!(matches!(
            try_run(s.as_ref(), std::slice::from_ref(&good), cold(2)),
            Err(Error::Shape { .. })
        ));
        // Operator on [8, 8] vs a [2, 6, 6] prior.
        let small =
            GaussianDenoiser::new(schedule.clone(), [2, 6, 6], vec![0.0; 72], vec![1.0; 72])
                .unwrap();
        let problem = PosteriorProblem {
            denoiser: &small,
            schedule: &schedule,
            timesteps: &ts,
            measurements: std::slice::from_ref(&good),
        };
        assert!(matches!(
            s.sample(
                &problem,
                Start::Cold {
                    shape: [1, 2, 6, 6]
                },
                &mut seeded(0),
                &mut |_| {}
            ),
            Err(Error::Shape { .. })
        ));
        // Three channels.
        assert!(try_run(
            s.as_ref(),
            std::slice::from_ref(&good),
            Start::Cold {
                shape: [1, 3, H, W]
            }
        )
        .is_err());
        // A NaN warm-start image and an out-of-range warm-start index.
        let mut img = ImageBatch::zeros([1, 2, H, W]).unwrap();
        img.data_mut()[3] = f32::NAN;
        assert!(matches!(
            try_run(
                s.as_ref(),
                std::slice::from_ref(&good),
                Start::Warm {
                    image: img,
                    start_index: 2
                }
            ),
            Err(Error::NonFinite { .. })
        ));
        let img = ImageBatch::zeros([1, 2, H, W]).unwrap();
        assert!(try_run(
            s.as_ref(),
            std::slice::from_ref(&good),
            Start::Warm {
                image: img,
                start_index: 10
            }
        )
        .is_err());
    }
    // Invalid parameters.
    let invalid: Vec<Box<dyn PosteriorSampler>> = vec![
        Box::new(Dps {
            zeta: f32::NAN,
            ..Dps::default()
        }),
        Box::new(Dps {
            zeta: 1.0,
            base: BaseStep::Ddim(Ddim { eta: 2.0 }),
        }),
        Box::new(DdimDc {
            step_size: 2.5,
            ..DdimDc::default()
        }),
        Box::new(DdimDc {
            renoise: Renoise::Ddim { eta: -0.1 },
            ..DdimDc::default()
        }),
        Box::new(Dds {
            cg_iterations: 0,
            ..Dds::default()
        }),
        Box::new(DiffPir {
            lambda: -1.0,
            ..DiffPir::default()
        }),
        Box::new(DiffPir {
            zeta: 1.5,
            ..DiffPir::default()
        }),
    ];
    for s in &invalid {
        assert!(
            matches!(
                try_run(s.as_ref(), std::slice::from_ref(&good), cold(1)),
                Err(Error::InvalidArgument { .. })
            ),
            "{}",
            s.name()
        );
    }
    assert!(DiffPir::new(1.0, 0.5, -0.1).is_err());
    // The helper needs two samples.
    let problem = PosteriorProblem {
        denoiser: &denoiser,
        schedule: &schedule,
        timesteps: &ts,
        measurements: &[good],
    };
    assert!(
        posterior_statistics(&Dds::default(), &problem, &cold(1), 1, 0, &mut |_, _| {}).is_err()
    );
}
