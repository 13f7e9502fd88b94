//! Posterior samplers for y = A(x) + n with a diffusion prior: DPS, DDIM + data consistency (AID's
//! Algorithm 1), DDS and DiffPIR (one file each), the shared CG solver ([`cg`]), the data model
//! ([`measurement`]) and posterior mean / standard-deviation maps ([`uncertainty`]).
//!
//! Design. Every sampler is a [`PosteriorRule`] driven by [`run_posterior`], the posterior twin of
//! [`run_reverse`](crate::diffusion::samplers::run_reverse): `predict` evaluates the denoiser once
//! for the whole batch (ε̂, Tweedie x̂₀, and for DPS the VJP) and makes x̂₀ data-consistent frame by
//! frame; `update` then moves one frame to the next level with an unconditional rule
//! ([`Ddim`]/[`Ddpm`] through [`StepRule::update`], or [`renoise_step`]). The one difference from
//! `run_reverse` is randomness: each frame draws its start and its step noise from its own stream,
//! so frame k's result does not depend on which other frames share the batch (it is bit-identical
//! alone or batched whenever the denoiser treats batch entries independently, as the Gaussian oracle
//! does; a network backend may differ at rounding level across batch sizes). Every data term — norms,
//! gradients, CG — is per frame for the same reason.

pub mod cg;
pub mod ddim_dc;
pub mod dds;
pub mod diffpir;
pub mod dps;
pub mod measurement;
pub mod uncertainty;

pub use cg::{conjugate_gradient, CgOptions, CgReport};
pub use ddim_dc::DdimDc;
pub use dds::Dds;
pub use diffpir::DiffPir;
pub use dps::Dps;
pub use measurement::{DataFidelity, Measurement};
pub use uncertainty::{posterior_statistics, PosteriorStats, RunningMoments};

use rand::Rng;

use crate::diffusion::denoiser::Denoiser;
use crate::diffusion::samplers::{
    add_noise, prepare_start, Ddim, Ddpm, Prediction, Start, StepContext, StepInfo, StepRule,
};
use crate::diffusion::schedule::NoiseSchedule;
use crate::error::{Error, Result};
use crate::image::ImageBatch;
use crate::rng::{substream, SeededRng};

/// What a posterior sampler conditions on: the prior, its timestep grid and one measurement per frame.
#[derive(Clone, Copy)]
pub struct PosteriorProblem<'a> {
    /// The prior's noise predictor (network space).
    pub denoiser: &'a dyn Denoiser,
    /// The schedule the denoiser was trained with.
    pub schedule: &'a NoiseSchedule,
    /// Descending timestep grid (indices into `schedule`).
    pub timesteps: &'a [usize],
    /// Frame k of the batch is conditioned on `measurements[k]`.
    pub measurements: &'a [Measurement],
}

/// A posterior sampler: draws x₀ ~ p(x₀ | y_k) for every frame k of a batch.
pub trait PosteriorSampler {
    /// Short name (`dps`, `ddim-dc`, `dds`, `diffpir`).
    fn name(&self) -> &'static str;

    /// Network evaluations per reverse step and image (a vector–Jacobian product counts as one).
    fn evaluations_per_step(&self) -> usize {
        1
    }

    /// Runs the trajectory from `start` with frame k drawing only from `rngs[k]`; returns x₀ (network space).
    fn sample_frames(
        &self,
        problem: &PosteriorProblem<'_>,
        start: Start,
        rngs: &mut [SeededRng],
        observer: &mut dyn FnMut(StepInfo),
    ) -> Result<ImageBatch>;

    /// As [`sample_frames`](Self::sample_frames) with frame k on stream k of a seed drawn from `rng`,
    /// so frame k's noise is the same whatever the batch size.
    fn sample(
        &self,
        problem: &PosteriorProblem<'_>,
        start: Start,
        rng: &mut SeededRng,
        observer: &mut dyn FnMut(StepInfo),
    ) -> Result<ImageBatch> {
        let mut rngs = frame_rngs(rng, problem.measurements.len());
        self.sample_frames(problem, start, &mut rngs, observer)
    }
}

/// Stream k of one seed drawn from `rng`, for k = 0..frames: `substream(seed, k)`.
pub fn frame_rngs(rng: &mut SeededRng, frames: usize) -> Vec<SeededRng> {
    let seed: u64 = rng.random();
    (0..frames as u64).map(|k| substream(seed, k)).collect()
}

/// One posterior sampler's step, split into a batched data-aware prediction and a per-frame update.
pub trait PosteriorRule {
    /// ε̂ and x̂₀ at `x_t` for the whole batch; x̂₀ of frame k may be refined with `data[k]`.
    fn predict(
        &mut self,
        denoiser: &dyn Denoiser,
        x_t: &ImageBatch,
        ctx: &StepContext,
        data: &[DataFidelity<'_>],
    ) -> Result<Prediction>;

    /// Frame `frame`'s x at `ctx.t_next` from its `[1, c, h, w]` slices of x_t and of the
    /// prediction; randomness only from `rng`, that frame's stream.
    fn update(
        &mut self,
        frame: usize,
        x_t: &ImageBatch,
        pred: &Prediction,
        ctx: &StepContext,
        rng: &mut SeededRng,
    ) -> Result<ImageBatch>;
}

/// The posterior reverse loop: per-frame starts (frame k from `rngs[k]`), then for every remaining
/// grid step one batched `rule.predict` and a `rule.update` per frame. Returns x₀.
pub fn run_posterior(
    rule: &mut dyn PosteriorRule,
    problem: &PosteriorProblem<'_>,
    start: Start,
    rngs: &mut [SeededRng],
    observer: &mut dyn FnMut(StepInfo),
) -> Result<ImageBatch> {
    let PosteriorProblem {
        denoiser,
        schedule,
        timesteps,
        measurements,
    } = *problem;
    let shape = match &start {
        Start::Cold { shape } => *shape,
        Start::Noise { x } => x.shape(),
        Start::Warm { image, .. } => image.shape(),
    };
    let n = shape[0];
    for (what, got) in [
        ("measurements", measurements.len()),
        ("frame RNGs", rngs.len()),
    ] {
        if got != n {
            return Err(Error::Shape {
                what: format!("{what} vs frames in the batch"),
                expected: vec![n],
                got: vec![got],
            });
        }
    }
    let [_, c, h, w] = shape;
    let data = measurements
        .iter()
        .map(|m| DataFidelity::new(m, [c, h, w]))
        .collect::<Result<Vec<_>>>()?;

    // Each frame's start from its own stream, through the shared start logic (validation included).
    let mut x = ImageBatch::zeros(shape)?;
    let mut first = 0;
    let len = x.image_len();
    for (k, rng) in rngs.iter_mut().enumerate() {
        let frame_start = match &start {
            Start::Cold { .. } => Start::Cold {
                shape: [1, c, h, w],
            },
            Start::Noise { x } => Start::Noise { x: frame(x, k)? },
            Start::Warm { image, start_index } => Start::Warm {
                image: frame(image, k)?,
                start_index: *start_index,
            },
        };
        let (xk, index) = prepare_start(denoiser, schedule, timesteps, frame_start, rng)?;
        x.data_mut()[k * len..(k + 1) * len].copy_from_slice(xk.data());
        first = index;
    }

    let total = timesteps.len() - first;
    for (done, grid_index) in (first..timesteps.len()).enumerate() {
        let ctx = StepContext::new(schedule, timesteps, grid_index)?;
        let pred = rule.predict(denoiser, &x, &ctx, &data)?;
        x.ensure_same_shape("posterior prediction ε̂", &pred.eps)?;
        x.ensure_same_shape("posterior prediction x̂₀", &pred.x0)?;
        let mut next = ImageBatch::zeros(shape)?;
        for (k, rng) in rngs.iter_mut().enumerate() {
            let pred_k = Prediction {
                eps: frame(&pred.eps, k)?,
                x0: frame(&pred.x0, k)?,
            };
            let xk = rule.update(k, &frame(&x, k)?, &pred_k, &ctx, rng)?;
            if xk.shape() != [1, c, h, w] {
                return Err(Error::Shape {
                    what: "posterior step output".into(),
                    expected: vec![1, c, h, w],
                    got: xk.shape().to_vec(),
                });
            }
            next.data_mut()[k * len..(k + 1) * len].copy_from_slice(xk.data());
        }
        x = next;
        observer(StepInfo {
            done: done + 1,
            total,
            timestep: ctx.t_cur,
        });
    }
    x.ensure_finite("posterior sampler output")?;
    Ok(x)
}

/// Image `k` of `batch` as a `[1, c, h, w]` batch.
pub fn frame(batch: &ImageBatch, k: usize) -> Result<ImageBatch> {
    let [n, c, h, w] = batch.shape();
    if k >= n {
        return Err(Error::invalid("frame index", format!("< {n}"), k));
    }
    ImageBatch::new([1, c, h, w], batch.image(k).to_vec())
}

/// The unconditional update a posterior sampler builds on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BaseStep {
    /// DDIM with stochasticity η (x_next = √ᾱ_next x̂₀ + √(1 − ᾱ_next − s²) ε̂ + s z).
    Ddim(Ddim),
    /// DDPM ancestral step (the DPS paper's choice).
    Ddpm(Ddpm),
}

impl BaseStep {
    /// Fails if the rule's parameters are out of range (DDIM η ∉ [0, 1]).
    pub fn validate(&self) -> Result<()> {
        match self {
            BaseStep::Ddim(d) => d.validate(),
            BaseStep::Ddpm(_) => Ok(()),
        }
    }
}

impl StepRule for BaseStep {
    fn update(
        &mut self,
        x_t: &ImageBatch,
        pred: &Prediction,
        ctx: &StepContext,
        rng: &mut SeededRng,
    ) -> Result<ImageBatch> {
        match self {
            BaseStep::Ddim(d) => d.update(x_t, pred, ctx, rng),
            BaseStep::Ddpm(d) => d.update(x_t, pred, ctx, rng),
        }
    }
}

/// How a data-consistent x̂₀ is taken to the next noise level.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Renoise {
    /// x_next = √ᾱ_next x̂₀ + √(1 − ᾱ_next) z with fresh z (AID, DDNM; DiffPIR with ζ = 1).
    Fresh,
    /// DDIM with stochasticity η, ε̂ re-derived from the refined x̂₀: ε̂ = (x_t − √ᾱ_t x̂₀)/√(1 − ᾱ_t).
    Ddim {
        /// η ∈ [0, 1].
        eta: f32,
    },
}

impl Renoise {
    /// Fails unless η ∈ [0, 1].
    pub fn validate(&self) -> Result<()> {
        match self {
            Renoise::Fresh => Ok(()),
            Renoise::Ddim { eta } => Ddim { eta: *eta }.validate(),
        }
    }

    /// Applies the re-noise to one frame's prediction.
    pub fn step(
        &self,
        x_t: &ImageBatch,
        pred: &Prediction,
        ctx: &StepContext,
        rng: &mut SeededRng,
    ) -> Result<ImageBatch> {
        match self {
            Renoise::Fresh => renoise_step(pred, ctx, 1.0, rng),
            Renoise::Ddim { eta } => Ddim { eta: *eta }.update(x_t, pred, ctx, rng),
        }
    }
}

/// DiffPIR's step: x_next = √ᾱ_next x̂₀ + √(1 − ᾱ_next)(√(1 − ζ) ε̂ + √ζ z); returns x̂₀ at the last step.
pub fn renoise_step(
    pred: &Prediction,
    ctx: &StepContext,
    zeta: f32,
    rng: &mut SeededRng,
) -> Result<ImageBatch> {
    if !(0.0..=1.0).contains(&zeta) {
        return Err(Error::invalid(
            "re-noise fraction ζ",
            "a number in [0, 1]",
            zeta,
        ));
    }
    if ctx.is_final() {
        return Ok(pred.x0.clone());
    }
    let sigma_next = ctx.sigma_next();
    let zeta = zeta as f64;
    let mut x = ImageBatch::lincomb(
        ctx.alpha_next() as f32,
        &pred.x0,
        (sigma_next * (1.0 - zeta).sqrt()) as f32,
        &pred.eps,
    )?;
    add_noise(&mut x, sigma_next * zeta.sqrt(), rng);
    Ok(x)
}

/// ε̂ = (x_t − α x̂₀)/σ: the noise consistent with x_t and a (refined) x̂₀.
pub fn rederive_eps(x_t: &ImageBatch, x0: &ImageBatch, ctx: &StepContext) -> Result<ImageBatch> {
    let (a, s) = (ctx.alpha_cur(), ctx.sigma_cur());
    if !(s.is_finite() && s > 0.0) {
        return Err(Error::invalid("σ_t for re-deriving ε̂", "> 0", s));
    }
    ImageBatch::lincomb((1.0 / s) as f32, x_t, (-a / s) as f32, x0)
}

/// Frame `k`'s values of a batch with `len` values per image, mutable.
pub(crate) fn frame_values_mut(batch: &mut ImageBatch, k: usize) -> &mut [f32] {
    let len = batch.image_len();
    &mut batch.data_mut()[k * len..(k + 1) * len]
}

/// Fails unless `value` is finite and ≥ 0.
pub(crate) fn check_non_negative(what: &str, value: f32) -> Result<()> {
    if !(value.is_finite() && value >= 0.0) {
        return Err(Error::invalid(what, "a finite value ≥ 0", value));
    }
    Ok(())
}
