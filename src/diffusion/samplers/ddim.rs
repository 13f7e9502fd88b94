//! DDIM (Song et al. 2021) with stochasticity η ∈ [0, 1]:
//!
//! x_next = √ᾱ_next x̂₀ + √(1 − ᾱ_next − s²) ε̂ + s z,
//! s = η √((1 − ᾱ_next)/(1 − ᾱ_cur)) √(1 − ᾱ_cur/ᾱ_next).
//!
//! η = 0 is the deterministic DDIM (Euler on the probability-flow ODE in (x/α, σ/α)); η = 1 has the
//! DDPM posterior variance. The last step (ᾱ_next = 1) returns x̂₀.

use crate::diffusion::denoiser::Denoiser;
use crate::diffusion::samplers::{
    add_noise, run_reverse, Prediction, Sampler, Start, StepContext, StepInfo, StepRule,
};
use crate::diffusion::schedule::NoiseSchedule;
use crate::error::{Error, Result};
use crate::image::ImageBatch;
use crate::rng::SeededRng;

/// DDIM sampler; `eta` must be in [0, 1] (checked by [`Ddim::new`] and by every `sample` call).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Ddim {
    /// Stochasticity η ∈ [0, 1]: 0 deterministic, 1 DDPM-like.
    pub eta: f32,
}

impl Ddim {
    /// A DDIM sampler with stochasticity `eta`; fails unless 0 ≤ η ≤ 1.
    pub fn new(eta: f32) -> Result<Self> {
        let s = Self { eta };
        s.validate()?;
        Ok(s)
    }

    /// Fails unless 0 ≤ η ≤ 1.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.eta) {
            return Err(Error::invalid("DDIM eta", "a number in [0, 1]", self.eta));
        }
        Ok(())
    }

    /// `(coefficient of x̂₀, coefficient of ε̂, noise scale s)` of the step `ctx`.
    pub fn coefficients(&self, ctx: &StepContext) -> (f64, f64, f64) {
        let (ab_cur, ab_next) = (ctx.alpha_bar_cur, ctx.alpha_bar_next);
        let eta = self.eta as f64;
        let s = eta
            * ((1.0 - ab_next) / (1.0 - ab_cur)).sqrt()
            * (1.0 - ab_cur / ab_next).max(0.0).sqrt();
        let c_eps = (1.0 - ab_next - s * s).max(0.0).sqrt();
        (ab_next.sqrt(), c_eps, s)
    }
}

impl StepRule for Ddim {
    fn update(
        &mut self,
        _x_t: &ImageBatch,
        pred: &Prediction,
        ctx: &StepContext,
        rng: &mut SeededRng,
    ) -> Result<ImageBatch> {
        if ctx.is_final() {
            return Ok(pred.x0.clone());
        }
        let (c_x0, c_eps, s) = self.coefficients(ctx);
        let mut x = ImageBatch::lincomb(c_x0 as f32, &pred.x0, c_eps as f32, &pred.eps)?;
        add_noise(&mut x, s, rng);
        Ok(x)
    }
}

impl Sampler for Ddim {
    fn name(&self) -> &'static str {
        "ddim"
    }

    fn sample(
        &self,
        denoiser: &dyn Denoiser,
        schedule: &NoiseSchedule,
        timesteps: &[usize],
        start: Start,
        rng: &mut SeededRng,
        observer: &mut dyn FnMut(StepInfo),
    ) -> Result<ImageBatch> {
        self.validate()?;
        let mut rule = *self;
        run_reverse(
            &mut rule, denoiser, schedule, timesteps, start, rng, observer,
        )
    }
}
