//! Sequential posterior sampling of image sequences: frame after frame, a [`SequenceStrategy`]
//! decides where the frame's reverse trajectory starts, and any
//! [`PosteriorSampler`] runs it against that frame's measurement.
//!
//! - [`Independent`]: every frame from noise over the whole grid (the quality reference).
//! - [`SeqDiff`]: frame 0 cold; frame t+1 warm-starts from frame t's posterior sample noised to the
//!   level `warm_steps` before the end of the grid, x_{t+1,τ′} = α_{τ′} x_{t,0} + σ_{τ′} z
//!   (Stevens et al., SeqDiff, ICASSP 2025), so it runs only `warm_steps` steps.
//! - [`SeqDiffPlus`]: as SeqDiff, but warm-starts from a transition model's prediction of the frame
//!   from the last K posterior samples.
//! - [`Aid`]: every frame from noise with AID's autoregressive denoiser, conditioned on the
//!   posterior samples of the frames before it (Luo et al. 2024).
//! - [`ApsStart`] wraps any of them: a frame that would start from noise warm-starts instead from
//!   APS posterior draws of that frame (one network evaluation each, [`crate::aps`]).
//!
//! Options every strategy shares ([`SequenceOptions`]): several particles per frame (each particle
//! continues its own chain; the reconstruction is their mean, their spread an uncertainty map), a
//! periodic cold restart, and an **adaptive warm start** (our addition): when the warm image
//! disagrees with the new measurement, i.e. its relative data residual ρ = ‖A x − y‖/‖y‖ exceeds a
//! threshold ρ₀, the frame runs ⌈warm_steps·ρ/ρ₀⌉ steps (at most the whole grid) from the
//! correspondingly higher noise level, so sudden motion costs steps only where it happens.
//!
//! Randomness: particle p of frame t draws from `substream(seed, t·P + p)`, so a frame's result
//! depends only on the seed, its inputs and its history, never on timing.

pub mod aid;
pub mod aps_start;
pub mod independent;
pub mod seqdiff;
pub mod seqdiff_plus;

pub use aid::{generate as generate_aid, Aid, AidDenoiser};
pub use aps_start::ApsStart;
pub use independent::Independent;
pub use seqdiff::SeqDiff;
pub use seqdiff_plus::SeqDiffPlus;

use std::time::Instant;

use num_complex::Complex32;

use crate::bundle::Bundle;
use crate::data::Normalization;
use crate::diffusion::samplers::{Start, StepInfo};
use crate::diffusion::Denoiser;
use crate::error::{Error, Result};
use crate::image::ImageBatch;
use crate::physics::complex::image_to_complex;
use crate::physics::complex::norm;
use crate::posterior::{DataFidelity, Measurement, PosteriorProblem, PosteriorSampler};
use crate::reconstruction::{prior_image_shape, Prior};
use crate::rng::{substream, SeededRng};

/// Where each frame's reverse trajectory starts.
pub trait SequenceStrategy {
    /// Short name (`independent`, `seqdiff`, `seqdiff+`).
    fn name(&self) -> &'static str;

    /// The image frame `t` ≥ 1 warm-starts from (network space, `[P, c, h, w]`, one per particle),
    /// or `None` for a cold start. `history` holds the posterior samples of the frames before t,
    /// oldest first (at most [`HISTORY_FRAMES`] of them).
    fn warm_image(&mut self, t: usize, history: &[ImageBatch]) -> Result<Option<ImageBatch>>;

    /// The image (`[particles, c, h, w]`, network space) a frame warm-starts from when it would
    /// otherwise start from noise (frame 0, a cold restart, or `warm_image` said `None`), or
    /// `None` to start from noise. Only [`ApsStart`] gives one.
    fn fallback_start(&mut self, _t: usize, _particles: usize) -> Result<Option<ImageBatch>> {
        Ok(None)
    }

    /// How many past frames the strategy needs in `history`.
    fn history_frames(&self) -> usize {
        HISTORY_FRAMES
    }

    /// The noise predictor frame `t` is sampled with, or `None` for the prior's (every strategy
    /// but AID, whose denoiser is conditioned on the frames before t).
    fn frame_denoiser<'s>(
        &'s self,
        _t: usize,
        _history: &[ImageBatch],
    ) -> Result<Option<Box<dyn Denoiser + 's>>> {
        Ok(None)
    }
}

/// Past frames kept for the strategies (a transition model looks at the last few).
pub const HISTORY_FRAMES: usize = 8;

/// Settings shared by every strategy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SequenceOptions {
    /// Reverse steps of a warm-started frame (the last `warm_steps` of the grid), ≥ 1.
    pub warm_steps: usize,
    /// Posterior samples per frame, each continuing its own chain, ≥ 1.
    pub particles: usize,
    /// Start cold every this many frames (frames 0, N, 2N, …); `None` only frame 0.
    pub cold_every: Option<usize>,
    /// ρ₀ of the adaptive warm start; `None` keeps `warm_steps` whatever the residual.
    pub adaptive_threshold: Option<f64>,
    /// The training timestep τ′ a warm frame starts at, its `warm_steps` steps spread evenly from
    /// τ′ to 0 (our addition: the start level and the step count chosen apart); `None` takes the
    /// last `warm_steps` points of the cold grid, as SeqDiff does.
    pub warm_level: Option<usize>,
}

impl Default for SequenceOptions {
    /// 8 warm steps, 1 particle, no restarts, no adaptation.
    fn default() -> Self {
        Self {
            warm_steps: 8,
            particles: 1,
            cold_every: None,
            adaptive_threshold: None,
            warm_level: None,
        }
    }
}

impl SequenceOptions {
    /// Fails for zero steps, particles or restart period, or a non-positive threshold.
    pub fn validate(&self) -> Result<()> {
        for (what, v) in [
            ("warm-start steps", self.warm_steps),
            ("particles", self.particles),
        ] {
            if v == 0 {
                return Err(Error::invalid(what, "at least 1", 0));
            }
        }
        if self.cold_every == Some(0) {
            return Err(Error::invalid("cold restart period", "at least 1 frame", 0));
        }
        if let Some(r) = self.adaptive_threshold {
            if !(r.is_finite() && r > 0.0) {
                return Err(Error::invalid(
                    "adaptive warm-start threshold",
                    "a finite value > 0",
                    r,
                ));
            }
        }
        Ok(())
    }
}

/// What happened in one frame.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameReport {
    /// Frame index.
    pub frame: usize,
    /// Reverse steps run.
    pub steps: usize,
    /// Network evaluations: steps × particles × [`PosteriorSampler::evaluations_per_step`].
    pub nfe: usize,
    /// Wall time of the frame.
    pub seconds: f64,
    /// True when the frame started from noise.
    pub cold: bool,
    /// ρ of the warm image (mean over particles), for warm-started frames.
    pub warm_residual: Option<f64>,
    /// ‖A x̂ − y‖/‖y‖ of the reconstruction (the particle mean).
    pub residual: f64,
}

/// A reconstructed sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceResult {
    /// The particle mean of every frame, `[T, H, W]`, in the bundle's units.
    pub mean: Vec<Complex32>,
    /// The per-pixel spread of the particles (√(Σ|x_p − x̄|²/(P − 1))) for P ≥ 2.
    pub std: Option<Vec<f32>>,
    /// One report per frame.
    pub frames: Vec<FrameReport>,
}

/// Reconstructs `bundle` frame by frame with `sampler`, starting each frame where `strategy` says.
/// `observer(frame, step)` reports progress.
#[allow(clippy::too_many_arguments)]
pub fn run_sequence(
    bundle: &Bundle,
    sampler: &dyn PosteriorSampler,
    prior: Prior<'_>,
    normalization: Normalization,
    strategy: &mut dyn SequenceStrategy,
    options: &SequenceOptions,
    seed: u64,
    observer: &mut dyn FnMut(usize, StepInfo),
) -> Result<SequenceResult> {
    options.validate()?;
    let spec = bundle.spec();
    let [frames, h, w] = spec.shape;
    let [c, _, _] = prior_image_shape(bundle, &prior)?;
    let grid = prior.timesteps.len();
    let warm_grid = match options.warm_level {
        Some(level) => warm_level_grid(
            level,
            options.warm_steps,
            prior.schedule.num_train_timesteps(),
        )?,
        None => prior.timesteps[grid - options.warm_steps.min(grid)..].to_vec(),
    };
    let p = options.particles;
    let operators = bundle.frame_operators()?;
    let mut history: Vec<ImageBatch> = Vec::new();
    let mut mean = Vec::with_capacity(frames * h * w);
    let mut spread = Vec::with_capacity(if p > 1 { frames * h * w } else { 0 });
    let mut reports = Vec::with_capacity(frames);
    for (t, op) in operators.into_iter().enumerate() {
        let started = Instant::now();
        let y = bundle.frame_y(t);
        let measurement = Measurement::new(op, y.to_vec(), normalization)?;
        let restart = t == 0 || options.cold_every.is_some_and(|n| t % n == 0);
        let warm = if restart {
            None
        } else {
            strategy.warm_image(t, &history)?
        };
        let warm = match warm {
            Some(image) => Some(image),
            None => strategy.fallback_start(t, p)?,
        };
        let (start, steps, warm_residual, timesteps) = match warm {
            None => (
                Start::Cold {
                    shape: [p, c, h, w],
                },
                grid,
                None,
                prior.timesteps,
            ),
            Some(image) => {
                if image.shape() != [p, c, h, w] {
                    return Err(Error::Shape {
                        what: format!("{} warm image of frame {t}", strategy.name()),
                        expected: vec![p, c, h, w],
                        got: image.shape().to_vec(),
                    });
                }
                let rho = relative_residual(&measurement, &image, [c, h, w])?;
                let mut grown = None;
                if let Some(threshold) = options.adaptive_threshold {
                    if rho > threshold {
                        let n = (options.warm_steps as f64 * rho / threshold).ceil() as usize;
                        grown = Some(n.clamp(options.warm_steps.min(grid), grid));
                    }
                }
                // A grown start runs the tail of the cold grid from a correspondingly higher level.
                let (timesteps, steps) = match grown {
                    Some(n) => (&prior.timesteps[grid - n..], n),
                    None => (warm_grid.as_slice(), warm_grid.len()),
                };
                let start = Start::Warm {
                    image,
                    start_index: 0,
                };
                (start, steps, Some(rho), timesteps)
            }
        };
        let measurements = vec![measurement.clone(); p];
        let mut rngs: Vec<SeededRng> = (0..p)
            .map(|k| substream(seed, (t * p + k) as u64))
            .collect();
        let conditioned = strategy.frame_denoiser(t, &history)?;
        let problem = PosteriorProblem {
            denoiser: conditioned.as_deref().unwrap_or(prior.denoiser),
            schedule: prior.schedule,
            timesteps,
            measurements: &measurements,
        };
        let x = sampler.sample_frames(&problem, start, &mut rngs, &mut |info| observer(t, info))?;

        // Particle mean and spread in user units.
        let mut user = x.clone();
        normalization.denormalize(user.data_mut());
        let particles: Vec<Vec<Complex32>> = (0..p)
            .map(|k| image_to_complex(&user, k))
            .collect::<Result<_>>()?;
        let frame_mean: Vec<Complex32> = (0..h * w)
            .map(|i| particles.iter().map(|q| q[i]).sum::<Complex32>() / p as f32)
            .collect();
        if p > 1 {
            spread.extend((0..h * w).map(|i| {
                let ss: f32 = particles
                    .iter()
                    .map(|q| (q[i] - frame_mean[i]).norm_sqr())
                    .sum();
                (ss / (p - 1) as f32).sqrt()
            }));
        }
        let ax = measurement.operator().forward(&frame_mean)?;
        let residual = relative_norm(&ax, y);
        mean.extend(frame_mean);
        history.push(x);
        if history.len() > strategy.history_frames().max(1) {
            history.remove(0);
        }
        reports.push(FrameReport {
            frame: t,
            steps,
            nfe: steps * p * sampler.evaluations_per_step(),
            seconds: started.elapsed().as_secs_f64(),
            cold: warm_residual.is_none(),
            warm_residual,
            residual,
        });
    }
    Ok(SequenceResult {
        mean,
        std: (p > 1).then_some(spread),
        frames: reports,
    })
}

/// `steps` timesteps spread evenly from `level` down to 0 (descending, distinct, rounded).
fn warm_level_grid(level: usize, steps: usize, t_total: usize) -> Result<Vec<usize>> {
    if level >= t_total || steps > level + 1 {
        return Err(Error::invalid(
            "warm-start level",
            format!(
                "a timestep below {t_total} with at least warm-start steps − 1 = {} below it",
                steps.saturating_sub(1)
            ),
            level,
        ));
    }
    if steps == 1 {
        return Ok(vec![level]);
    }
    Ok((0..steps)
        .map(|k| (level as f64 * (1.0 - k as f64 / (steps - 1) as f64)).round() as usize)
        .collect())
}

/// ‖a − y‖/‖y‖ (‖a − y‖ when y = 0).
fn relative_norm(a: &[Complex32], y: &[Complex32]) -> f64 {
    let diff: Vec<Complex32> = a.iter().zip(y).map(|(u, v)| u - v).collect();
    let ny = norm(y);
    if ny > 0.0 {
        norm(&diff) / ny
    } else {
        norm(&diff)
    }
}

/// ρ = ‖A x − y‖/‖y‖ of network-space images `x` (`[P, c, h, w]`), averaged over the particles.
fn relative_residual(measurement: &Measurement, x: &ImageBatch, shape: [usize; 3]) -> Result<f64> {
    let fidelity = DataFidelity::new(measurement, shape)?;
    let ny = norm(measurement.y());
    let n = x.batch_size();
    let mut total = 0.0;
    for k in 0..n {
        let r = fidelity.residual(x.image(k))?;
        total += if ny > 0.0 { norm(&r) / ny } else { norm(&r) };
    }
    Ok(total / n as f64)
}
