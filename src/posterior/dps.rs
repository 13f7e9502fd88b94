//! DPS (Chung et al., ICLR 2023): an unconditional step followed by a likelihood-gradient step,
//!
//! x_{t−1} = U(x_t, x̂₀, ε̂) − ζ ∇_{x_t} ‖y − A(x̂₀(x_t))‖,
//!
//! with the official code's non-squared norm, taken per frame so that ζ does not depend on the batch
//! size. With g = ∇_{x̂₀}‖r‖ = scale·Aᴴr/‖r‖ ([`DataFidelity::norm_gradient`]) and x̂₀ = (x_t − σ ε̂)/α,
//! the chain rule through the network gives ∇_{x_t} = (g − σ·vjp(g))/α, vjp(g) = gᵀ∂ε̂/∂x_t
//! ([`Denoiser::predict_noise_vjp`]). The gradient is applied at every step, the last one included
//! (the official code and zea do the same). The DPS code clips x̂₀ to the data range; wrap the
//! denoiser in [`ClippedDenoiser`](crate::diffusion::ClippedDenoiser) for that (its VJP is exact).
//!
//! Cost: the trait's VJP needs v up front and v depends on x̂₀, so each step evaluates ε̂ once and
//! then the VJP (a forward and a backward pass).

use crate::diffusion::denoiser::Denoiser;
use crate::diffusion::samplers::{
    predict, Ddpm, Prediction, Start, StepContext, StepInfo, StepRule,
};
use crate::error::{Error, Result};
use crate::image::ImageBatch;
use crate::posterior::{
    check_non_negative, frame, run_posterior, BaseStep, DataFidelity, PosteriorProblem,
    PosteriorRule, PosteriorSampler,
};
use crate::rng::SeededRng;

/// DPS with step size ζ on the non-squared residual norm (measurement units) and an unconditional base step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dps {
    /// ζ ≥ 0 (0 is the unconditional sampler). The DPS configs use 0.3–1.0 for 1000 DDPM steps on [−1, 1] images.
    pub zeta: f32,
    /// The unconditional update (DDPM in the DPS paper).
    pub base: BaseStep,
}

impl Default for Dps {
    /// ζ = 1 with DDPM (posterior variance), the DPS paper's sampler.
    fn default() -> Self {
        Self {
            zeta: 1.0,
            base: BaseStep::Ddpm(Ddpm::default()),
        }
    }
}

impl Dps {
    /// Fails unless ζ is finite and ≥ 0 and the base step is valid.
    pub fn validate(&self) -> Result<()> {
        check_non_negative("DPS step size ζ", self.zeta)?;
        self.base.validate()
    }
}

/// The step rule of one DPS trajectory; holds ∇_{x_t} of the current step between predict and update.
struct DpsRule {
    config: Dps,
    /// Per-frame ∇_{x_t}‖y − A x̂₀(x_t)‖ of the current step.
    guidance: Option<ImageBatch>,
}

impl PosteriorRule for DpsRule {
    fn predict(
        &mut self,
        denoiser: &dyn Denoiser,
        x_t: &ImageBatch,
        ctx: &StepContext,
        data: &[DataFidelity<'_>],
    ) -> Result<Prediction> {
        let pred = predict(denoiser, x_t, ctx)?;
        if self.config.zeta == 0.0 {
            // Unconditional: skip the VJP, whose result would be multiplied by 0.
            self.guidance = Some(ImageBatch::zeros(x_t.shape())?);
            return Ok(pred);
        }
        // g_k = ∇_{x̂₀}‖r_k‖ for each frame, stacked so the VJP runs once for the batch.
        let mut g = ImageBatch::zeros(x_t.shape())?;
        let len = x_t.image_len();
        for (k, d) in data.iter().enumerate() {
            let (gk, _) = d.norm_gradient(pred.x0.image(k))?;
            g.data_mut()[k * len..(k + 1) * len].copy_from_slice(&gk);
        }
        let (_, vjp) = denoiser.predict_noise_vjp(x_t, ctx.t_cur, &g)?;
        x_t.ensure_same_shape("denoiser VJP", &vjp)?;
        vjp.ensure_finite(&format!("denoiser VJP at timestep {}", ctx.t_cur))?;
        let (a, s) = (ctx.alpha_cur(), ctx.sigma_cur());
        // ∇_{x_t} = (g − σ vjp(g))/α.
        let grad = ImageBatch::lincomb((1.0 / a) as f32, &g, (-s / a) as f32, &vjp)?;
        self.guidance = Some(grad);
        Ok(pred)
    }

    fn update(
        &mut self,
        k: usize,
        x_t: &ImageBatch,
        pred: &Prediction,
        ctx: &StepContext,
        rng: &mut SeededRng,
    ) -> Result<ImageBatch> {
        let guidance = self.guidance.as_ref().ok_or_else(|| {
            Error::invalid("DPS step order", "predict before update", "update first")
        })?;
        let mut x = self.config.base.update(x_t, pred, ctx, rng)?;
        x.axpby(1.0, -self.config.zeta, &frame(guidance, k)?)?;
        Ok(x)
    }
}

impl PosteriorSampler for Dps {
    fn name(&self) -> &'static str {
        "dps"
    }

    /// ε̂, then the VJP through the network.
    fn evaluations_per_step(&self) -> usize {
        2
    }

    fn sample_frames(
        &self,
        problem: &PosteriorProblem<'_>,
        start: Start,
        rngs: &mut [SeededRng],
        observer: &mut dyn FnMut(StepInfo),
    ) -> Result<ImageBatch> {
        self.validate()?;
        let mut rule = DpsRule {
            config: *self,
            guidance: None,
        };
        run_posterior(&mut rule, problem, start, rngs, observer)
    }
}
