//! DDPM ancestral sampling (Ho et al. 2020) on a respaced grid.
//!
//! From t_cur to t_next with ᾱ_cur, ᾱ_next (ᾱ_next = 1 after the last grid point) the effective
//! β' = 1 − ᾱ_cur/ᾱ_next defines the Gaussian posterior q(x_next | x_t, x₀) with x₀ replaced by x̂₀:
//!
//! μ = (√ᾱ_next β' / (1 − ᾱ_cur)) x̂₀ + (√(1 − β') (1 − ᾱ_next) / (1 − ᾱ_cur)) x_t,
//! x_next = μ + √v z,  v = β̃ = β' (1 − ᾱ_next)/(1 − ᾱ_cur) ([`DdpmVariance::Posterior`]) or β'
//! ([`DdpmVariance::Beta`]). The last step (to clean data) returns μ = x̂₀ without noise.

use crate::diffusion::denoiser::Denoiser;
use crate::diffusion::samplers::{
    add_noise, run_reverse, Prediction, Sampler, Start, StepContext, StepInfo, StepRule,
};
use crate::diffusion::schedule::NoiseSchedule;
use crate::error::Result;
use crate::image::ImageBatch;
use crate::rng::SeededRng;

/// The variance of DDPM's reverse step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DdpmVariance {
    /// β̃ = β'(1 − ᾱ_next)/(1 − ᾱ_cur), the posterior variance (exact for a point-mass x₀).
    #[default]
    Posterior,
    /// β' = 1 − ᾱ_cur/ᾱ_next (exact for x₀ ~ N(0, I)).
    Beta,
}

/// DDPM ancestral sampler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ddpm {
    /// Which reverse-step variance to use.
    pub variance: DdpmVariance,
}

impl Ddpm {
    /// `(coefficient of x̂₀, coefficient of x_t, noise variance)` of the step `ctx`.
    pub fn coefficients(&self, ctx: &StepContext) -> (f64, f64, f64) {
        let (ab_cur, ab_next) = (ctx.alpha_bar_cur, ctx.alpha_bar_next);
        let beta = 1.0 - ab_cur / ab_next;
        let c_x0 = ab_next.sqrt() * beta / (1.0 - ab_cur);
        let c_xt = (1.0 - beta).sqrt() * (1.0 - ab_next) / (1.0 - ab_cur);
        let var = if ctx.is_final() {
            0.0
        } else {
            match self.variance {
                DdpmVariance::Posterior => beta * (1.0 - ab_next) / (1.0 - ab_cur),
                DdpmVariance::Beta => beta,
            }
        };
        (c_x0, c_xt, var.max(0.0))
    }
}

impl StepRule for Ddpm {
    fn update(
        &mut self,
        x_t: &ImageBatch,
        pred: &Prediction,
        ctx: &StepContext,
        rng: &mut SeededRng,
    ) -> Result<ImageBatch> {
        if ctx.is_final() {
            return Ok(pred.x0.clone());
        }
        let (c_x0, c_xt, var) = self.coefficients(ctx);
        let mut x = ImageBatch::lincomb(c_x0 as f32, &pred.x0, c_xt as f32, x_t)?;
        add_noise(&mut x, var.sqrt(), rng);
        Ok(x)
    }
}

impl Sampler for Ddpm {
    fn name(&self) -> &'static str {
        "ddpm"
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
        let mut rule = *self;
        run_reverse(
            &mut rule, denoiser, schedule, timesteps, start, rng, observer,
        )
    }
}
