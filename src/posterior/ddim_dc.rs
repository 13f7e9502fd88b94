//! DDIM + data consistency, AID's "Algorithm 1" (Luo et al., NeurIPS 2024; the `ddim_diffusion` /
//! `cond_func` code): the Tweedie x̂₀ is refined by K gradient steps on f(x) = ½‖A(x_user) − y‖²,
//!
//! x̂₀ ← x̂₀ − (step_size / L)·∇f(x̂₀),  L = ‖scale·A‖² (the Lipschitz constant of ∇f),
//!
//! then re-noised to the next level. AID writes the step as η·[Aᴴ A x̂₀ − Aᴴ y] with η = 1 and an
//! operator of norm 1 (orthonormal FFT, Σ|S_c|² = 1), i.e. `step_size` = 1 here; measuring the step
//! relative to 1/L keeps that meaning for any operator norm and normalisation scale. For a masked
//! unitary operator one step of size 1 is the exact projection onto A x = y (noise-free data
//! consistency); sizes in (0, 2) converge for any operator. AID re-noises with fresh noise
//! ([`Renoise::Fresh`]); [`Renoise::Ddim`] takes a DDIM step with ε̂ re-derived from the refined x̂₀,
//! so that x_t = α x̂₀ + σ ε̂ still holds and K = 0 with η = 0 is exactly unconditional DDIM.

use crate::diffusion::denoiser::Denoiser;
use crate::diffusion::samplers::{predict, Prediction, Start, StepContext, StepInfo};
use crate::error::{Error, Result};
use crate::image::ImageBatch;
use crate::posterior::{
    frame_values_mut, rederive_eps, run_posterior, DataFidelity, PosteriorProblem, PosteriorRule,
    PosteriorSampler, Renoise,
};
use crate::rng::SeededRng;

/// AID's DDIM + data consistency: K gradient steps of size `step_size`/L on x̂₀ per reverse step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DdimDc {
    /// K, gradient steps per reverse step (AID: 4).
    pub steps_k: usize,
    /// Step size in units of 1/L, L = ‖scale·A‖²; in (0, 2) for a descent step (AID: 1).
    pub step_size: f32,
    /// How the refined x̂₀ goes to the next level (AID: fresh noise).
    pub renoise: Renoise,
}

impl Default for DdimDc {
    /// AID's defaults: K = 4, step 1 (in units of 1/L), fresh re-noise.
    fn default() -> Self {
        Self {
            steps_k: 4,
            step_size: 1.0,
            renoise: Renoise::Fresh,
        }
    }
}

impl DdimDc {
    /// Fails unless 0 < step_size < 2 (gradient descent on an L-smooth quadratic) and the re-noise is valid.
    pub fn validate(&self) -> Result<()> {
        if !(self.step_size > 0.0 && self.step_size < 2.0) {
            return Err(Error::invalid(
                "DDIM+DC step size (units of 1/‖A‖²)",
                "a number in (0, 2)",
                self.step_size,
            ));
        }
        self.renoise.validate()
    }
}

struct DdimDcRule {
    config: DdimDc,
}

impl PosteriorRule for DdimDcRule {
    fn predict(
        &mut self,
        denoiser: &dyn Denoiser,
        x_t: &ImageBatch,
        ctx: &StepContext,
        data: &[DataFidelity<'_>],
    ) -> Result<Prediction> {
        let Prediction { mut x0, .. } = predict(denoiser, x_t, ctx)?;
        for (k, d) in data.iter().enumerate().filter(|_| self.config.steps_k > 0) {
            let lipschitz = d.lipschitz()?;
            if lipschitz == 0.0 {
                // A = 0: nothing is measured and the gradient vanishes.
                continue;
            }
            let step = (self.config.step_size as f64 / lipschitz) as f32;
            let xk = frame_values_mut(&mut x0, k);
            for _ in 0..self.config.steps_k {
                let g = d.gradient(xk)?;
                xk.iter_mut().zip(&g).for_each(|(x, g)| *x -= step * g);
            }
        }
        x0.ensure_finite("data-consistent x̂₀")?;
        let eps = rederive_eps(x_t, &x0, ctx)?;
        Ok(Prediction { eps, x0 })
    }

    fn update(
        &mut self,
        _frame: usize,
        x_t: &ImageBatch,
        pred: &Prediction,
        ctx: &StepContext,
        rng: &mut SeededRng,
    ) -> Result<ImageBatch> {
        self.config.renoise.step(x_t, pred, ctx, rng)
    }
}

impl PosteriorSampler for DdimDc {
    fn name(&self) -> &'static str {
        "ddim-dc"
    }

    fn sample_frames(
        &self,
        problem: &PosteriorProblem<'_>,
        start: Start,
        rngs: &mut [SeededRng],
        observer: &mut dyn FnMut(StepInfo),
    ) -> Result<ImageBatch> {
        self.validate()?;
        let mut rule = DdimDcRule { config: *self };
        run_posterior(&mut rule, problem, start, rngs, observer)
    }
}
