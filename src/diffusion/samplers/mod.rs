//! Unconditional samplers. Each is one file implementing [`Sampler`]; every sampler accepts a
//! cold start (pure noise at the first timestep) or a warm start (an image noised to a later step).

use crate::diffusion::denoiser::Denoiser;
use crate::diffusion::schedule::NoiseSchedule;
use crate::error::Result;
use crate::image::ImageBatch;
use crate::rng::SeededRng;

/// Where a reverse trajectory begins.
#[derive(Clone, Debug)]
pub enum Start {
    /// x_T ~ N(0, I) of this `[n, c, h, w]` shape, at the first timestep of the grid.
    Cold { shape: [usize; 4] },
    /// x_T given by the caller (e.g. noise correlated across the frames of a sequence), at the
    /// first timestep of the grid: a cold start whose noise was drawn elsewhere.
    Noise { x: ImageBatch },
    /// Begin at grid index `start_index` (0 = the first, noisiest step) from `image`, noised to that
    /// step's level with fresh noise: x = α_k·image + σ_k·z. Only the remaining steps run (SeqDiff).
    Warm {
        image: ImageBatch,
        start_index: usize,
    },
}

/// Progress of a trajectory, passed to the observer after each step.
#[derive(Clone, Copy, Debug)]
pub struct StepInfo {
    /// Steps done so far in this trajectory.
    pub done: usize,
    /// Steps this trajectory runs in all.
    pub total: usize,
    /// The timestep just left.
    pub timestep: usize,
}

/// An unconditional reverse-diffusion sampler.
pub trait Sampler {
    /// Short name used on the command line (`ddpm`, `ddim`, `dpm-solver++`).
    fn name(&self) -> &'static str;

    /// Runs the reverse trajectory over `timesteps` (descending indices into `schedule`), ending at
    /// clean data, and returns x₀. `observer` is called after every step.
    fn sample(
        &self,
        denoiser: &dyn Denoiser,
        schedule: &NoiseSchedule,
        timesteps: &[usize],
        start: Start,
        rng: &mut SeededRng,
        observer: &mut dyn FnMut(StepInfo),
    ) -> Result<ImageBatch>;
}

pub mod ddim;
pub mod ddpm;
pub mod dpm_solver;

pub use ddim::Ddim;
pub use ddpm::{Ddpm, DdpmVariance};
pub use dpm_solver::{DpmSolverPlusPlus, DpmSolverPlusPlusRule};

use crate::diffusion::denoiser::check_input_shape;
use crate::error::Error;

// ---------------------------------------------------------------------------------------------
// Shared machinery. A sampler is a [`StepRule`] (x_t and the prediction at x_t → x_next) driven by
// [`run_reverse`], which validates the inputs, prepares the start, and for each grid step calls
// the rule's `predict` (ε̂ and Tweedie x̂₀ by default) and then its `update`. Posterior samplers can
// override `predict` (e.g. to replace x̂₀ by a data-consistent estimate, or to also compute a
// likelihood gradient through `predict_noise_vjp`) and wrap an unconditional rule's `update`.
// ---------------------------------------------------------------------------------------------

/// Where one reverse step sits on the grid: from `t_cur` to `t_next` (`None` = clean data, ᾱ = 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepContext {
    /// The timestep being left.
    pub t_cur: usize,
    /// The timestep reached, or `None` for clean data after the last grid point.
    pub t_next: Option<usize>,
    /// ᾱ at `t_cur`.
    pub alpha_bar_cur: f64,
    /// ᾱ at `t_next` (1 for clean data).
    pub alpha_bar_next: f64,
    /// Index of `t_cur` in the full timestep grid (a warm start begins at its `start_index`).
    pub grid_index: usize,
    /// Length of the full timestep grid.
    pub grid_len: usize,
}

impl StepContext {
    /// The step leaving `timesteps[grid_index]`. Fails if `grid_index` is out of range or a timestep
    /// involved is not `< T`; the whole grid is checked by [`validate_timesteps`].
    pub fn new(schedule: &NoiseSchedule, timesteps: &[usize], grid_index: usize) -> Result<Self> {
        let t_total = schedule.num_train_timesteps();
        let t_cur = *timesteps.get(grid_index).ok_or_else(|| {
            Error::invalid("grid index", format!("< {}", timesteps.len()), grid_index)
        })?;
        let t_next = timesteps.get(grid_index + 1).copied();
        if let Some(bad) = [Some(t_cur), t_next]
            .into_iter()
            .flatten()
            .find(|&t| t >= t_total)
        {
            return Err(Error::invalid("timestep", format!("< {t_total}"), bad));
        }
        Ok(Self {
            t_cur,
            t_next,
            alpha_bar_cur: schedule.alpha_bar(t_cur),
            alpha_bar_next: schedule.alpha_bar_or_clean(t_next),
            grid_index,
            grid_len: timesteps.len(),
        })
    }

    /// True for the last step, the one that ends at clean data.
    pub fn is_final(&self) -> bool {
        self.t_next.is_none()
    }

    /// α at `t_cur` (signal scale).
    pub fn alpha_cur(&self) -> f64 {
        self.alpha_bar_cur.sqrt()
    }

    /// σ at `t_cur` (noise scale).
    pub fn sigma_cur(&self) -> f64 {
        (1.0 - self.alpha_bar_cur).sqrt()
    }

    /// α at `t_next` (1 for clean data).
    pub fn alpha_next(&self) -> f64 {
        self.alpha_bar_next.sqrt()
    }

    /// σ at `t_next` (0 for clean data).
    pub fn sigma_next(&self) -> f64 {
        (1.0 - self.alpha_bar_next).sqrt()
    }
}

/// The denoiser's prediction at x_t: ε̂ and the Tweedie estimate x̂₀ = (x_t − σ ε̂)/α.
#[derive(Clone, Debug)]
pub struct Prediction {
    /// ε̂ = ε_θ(x_t, t).
    pub eps: ImageBatch,
    /// x̂₀ (a posterior sampler may replace it by a data-consistent estimate before the update).
    pub x0: ImageBatch,
}

/// One sampler's update rule, separated from the evaluation of the denoiser.
pub trait StepRule {
    /// ε̂ and x̂₀ at `x_t`; by default the denoiser's prediction with Tweedie's formula ([`predict`]).
    fn predict(
        &mut self,
        denoiser: &dyn Denoiser,
        x_t: &ImageBatch,
        ctx: &StepContext,
    ) -> Result<Prediction> {
        predict(denoiser, x_t, ctx)
    }

    /// x at `ctx.t_next` from `x_t` and its prediction. Randomness only from `rng`.
    fn update(
        &mut self,
        x_t: &ImageBatch,
        pred: &Prediction,
        ctx: &StepContext,
        rng: &mut SeededRng,
    ) -> Result<ImageBatch>;
}

/// Fails unless `timesteps` is non-empty, strictly descending and every entry is `< T`.
pub fn validate_timesteps(schedule: &NoiseSchedule, timesteps: &[usize]) -> Result<()> {
    let t_total = schedule.num_train_timesteps();
    if timesteps.is_empty() {
        return Err(Error::invalid(
            "timesteps",
            "at least one timestep",
            "an empty list",
        ));
    }
    if let Some(&bad) = timesteps.iter().find(|&&t| t >= t_total) {
        return Err(Error::invalid("timestep", format!("< {t_total}"), bad));
    }
    if let Some(w) = timesteps.windows(2).find(|w| w[0] <= w[1]) {
        return Err(Error::invalid(
            "timesteps",
            "strictly descending indices",
            format!("{} followed by {}", w[0], w[1]),
        ));
    }
    Ok(())
}

/// Validates `timesteps` and `start` and draws the initial x. Returns x and the grid index of its
/// timestep (0 for a cold start, `start_index` for a warm start); the trajectory then runs over
/// `timesteps[index..]`.
///
/// Cold: x ~ N(0, I) of the given shape. Warm: x = α_k·image + σ_k·z, z ~ N(0, I), k = timesteps[start_index].
pub fn prepare_start(
    denoiser: &dyn Denoiser,
    schedule: &NoiseSchedule,
    timesteps: &[usize],
    start: Start,
    rng: &mut SeededRng,
) -> Result<(ImageBatch, usize)> {
    validate_timesteps(schedule, timesteps)?;
    match start {
        Start::Cold { shape } => {
            if let Some([c, h, w]) = denoiser.image_shape() {
                if [shape[1], shape[2], shape[3]] != [c, h, w] {
                    return Err(Error::Shape {
                        what: "cold-start shape [c, h, w]".into(),
                        expected: vec![c, h, w],
                        got: shape[1..].to_vec(),
                    });
                }
            }
            let mut x = ImageBatch::zeros(shape)?;
            crate::rng::fill_standard_normal(rng, x.data_mut());
            Ok((x, 0))
        }
        Start::Noise { x } => {
            check_input_shape(denoiser, &x)?;
            x.ensure_finite("starting noise x_T")?;
            Ok((x, 0))
        }
        Start::Warm { image, start_index } => {
            if start_index >= timesteps.len() {
                return Err(Error::invalid(
                    "warm-start index",
                    format!("< {} (the number of timesteps)", timesteps.len()),
                    start_index,
                ));
            }
            check_input_shape(denoiser, &image)?;
            image.ensure_finite("warm-start image")?;
            let t = timesteps[start_index];
            let mut x = image;
            let z = crate::rng::standard_normal(rng, x.data().len());
            schedule.noise_to(t, x.data_mut(), &z);
            Ok((x, start_index))
        }
    }
}

/// Tweedie's estimate x̂₀ = (x_t − σ ε̂)/α.
pub fn tweedie_x0(
    x_t: &ImageBatch,
    eps: &ImageBatch,
    alpha: f64,
    sigma: f64,
) -> Result<ImageBatch> {
    if !(alpha > 0.0 && alpha.is_finite() && sigma.is_finite()) {
        return Err(Error::invalid(
            "Tweedie scales",
            "α > 0 and finite σ",
            format!("α = {alpha}, σ = {sigma}"),
        ));
    }
    ImageBatch::lincomb((1.0 / alpha) as f32, x_t, (-sigma / alpha) as f32, eps)
}

/// ε̂ from the denoiser at `ctx.t_cur` (checked for shape and finiteness) and x̂₀ by Tweedie.
pub fn predict(denoiser: &dyn Denoiser, x_t: &ImageBatch, ctx: &StepContext) -> Result<Prediction> {
    let eps = denoiser.predict_noise(x_t, ctx.t_cur)?;
    x_t.ensure_same_shape("denoiser output", &eps)?;
    eps.ensure_finite(&format!("denoiser output at timestep {}", ctx.t_cur))?;
    let x0 = tweedie_x0(x_t, &eps, ctx.alpha_cur(), ctx.sigma_cur())?;
    Ok(Prediction { eps, x0 })
}

/// `x ← x + scale·z` with fresh z ~ N(0, I) from `rng` (no draw when `scale` is 0).
pub fn add_noise(x: &mut ImageBatch, scale: f64, rng: &mut SeededRng) {
    if scale == 0.0 {
        return;
    }
    let z = crate::rng::standard_normal(rng, x.data().len());
    let scale = scale as f32;
    for (v, z) in x.data_mut().iter_mut().zip(z) {
        *v += scale * z;
    }
}

/// The generic reverse loop: prepares the start, then for every remaining grid step calls
/// `rule.predict` and `rule.update` and reports to `observer`. Returns x₀.
pub fn run_reverse(
    rule: &mut dyn StepRule,
    denoiser: &dyn Denoiser,
    schedule: &NoiseSchedule,
    timesteps: &[usize],
    start: Start,
    rng: &mut SeededRng,
    observer: &mut dyn FnMut(StepInfo),
) -> Result<ImageBatch> {
    let (mut x, first) = prepare_start(denoiser, schedule, timesteps, start, rng)?;
    let total = timesteps.len() - first;
    for (done, grid_index) in (first..timesteps.len()).enumerate() {
        let ctx = StepContext::new(schedule, timesteps, grid_index)?;
        let pred = rule.predict(denoiser, &x, &ctx)?;
        let next = rule.update(&x, &pred, &ctx, rng)?;
        x.ensure_same_shape("sampler step output", &next)?;
        x = next;
        observer(StepInfo {
            done: done + 1,
            total,
            timestep: ctx.t_cur,
        });
    }
    x.ensure_finite("sampler output")?;
    Ok(x)
}
