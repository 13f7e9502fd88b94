//! DiffPIR (Zhu et al., CVPRW 2023): a proximal data step on the Tweedie estimate, then a partial
//! re-noise. With σ̄_t = √(1 − ᾱ_t)/√ᾱ_t and ρ_t = λ σ_n²/σ̄_t²:
//!
//! 1. x₀^{(t)} = (x_t − σ_t ε̂)/α_t (Tweedie);
//! 2. x̂₀ = argmin_x ‖y − A(x_user)‖² + ρ_t ‖x − x₀^{(t)}‖², i.e. CG on
//!    (scale²·AᴴA + ρ_t I) x = scale·Aᴴỹ + ρ_t x₀^{(t)}, started at x₀^{(t)};
//! 3. ε̂ = (x_t − √ᾱ_t x̂₀)/√(1 − ᾱ_t);
//! 4. x_{t−1} = √ᾱ_{t−1} x̂₀ + √(1 − ᾱ_{t−1})(√(1 − ζ) ε̂ + √ζ z) ([`renoise_step`]; x̂₀ at the last step).
//!
//! Units: σ_n is the measurement noise standard deviation in the units of y (the data term is in
//! measurement units), while the proximal term is in network space, where σ̄_t lives. Dividing the
//! objective by σ_n² shows the balance: ‖y − A x‖²/σ_n² + λ‖x − x₀^{(t)}‖²/σ̄_t².

use crate::diffusion::denoiser::Denoiser;
use crate::diffusion::samplers::{predict, Prediction, Start, StepContext, StepInfo};
use crate::error::{Error, Result};
use crate::image::ImageBatch;
use crate::posterior::cg::CgOptions;
use crate::posterior::{
    check_non_negative, frame_values_mut, rederive_eps, renoise_step, run_posterior, DataFidelity,
    PosteriorProblem, PosteriorRule, PosteriorSampler,
};
use crate::rng::SeededRng;

/// DiffPIR with regularisation weight λ, re-noise fraction ζ and measurement noise σ_n (units of y).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DiffPir {
    /// λ > 0 (deepinv: 7; "optimal between 3 and 25"; the exact Gaussian posterior favours ≈ 1).
    pub lambda: f32,
    /// ζ ∈ [0, 1], fraction of fresh noise in the re-noise (deepinv: 0.1; 1 = AID-style fresh noise).
    pub zeta: f32,
    /// σ_n ≥ 0, the noise standard deviation of y (0: hard data consistency where A is injective).
    pub sigma_n: f32,
    /// CG iterations per reverse step for the proximal problem, ≥ 1.
    pub cg_iterations: usize,
    /// CG stops early once ‖residual‖ ≤ tolerance·‖right-hand side‖.
    pub tolerance: f64,
}

impl Default for DiffPir {
    /// deepinv's λ = 7, ζ = 0.1, σ_n = 0.05; 20 CG iterations to a relative residual of 1e-6.
    fn default() -> Self {
        Self {
            lambda: 7.0,
            zeta: 0.1,
            sigma_n: 0.05,
            cg_iterations: 20,
            tolerance: 1e-6,
        }
    }
}

impl DiffPir {
    /// DiffPIR with λ, ζ and σ_n and the default CG settings.
    pub fn new(lambda: f32, zeta: f32, sigma_n: f32) -> Result<Self> {
        let s = Self {
            lambda,
            zeta,
            sigma_n,
            ..Self::default()
        };
        s.validate()?;
        Ok(s)
    }

    /// Fails unless λ > 0, ζ ∈ [0, 1], σ_n ≥ 0 (all finite), at least one CG iteration, tolerance ≥ 0.
    pub fn validate(&self) -> Result<()> {
        if !(self.lambda.is_finite() && self.lambda > 0.0) {
            return Err(Error::invalid(
                "DiffPIR λ",
                "a finite value > 0",
                self.lambda,
            ));
        }
        if !(0.0..=1.0).contains(&self.zeta) {
            return Err(Error::invalid("DiffPIR ζ", "a number in [0, 1]", self.zeta));
        }
        check_non_negative("DiffPIR σ_n", self.sigma_n)?;
        if self.cg_iterations == 0 {
            return Err(Error::invalid("DiffPIR CG iterations", "at least 1", 0));
        }
        self.cg_options().validate()
    }

    /// ρ_t = λ σ_n² / σ̄_t² = λ σ_n² ᾱ_t / (1 − ᾱ_t).
    pub fn rho(&self, alpha_bar: f64) -> f64 {
        let sn = self.sigma_n as f64;
        self.lambda as f64 * sn * sn * alpha_bar / (1.0 - alpha_bar)
    }

    fn cg_options(&self) -> CgOptions {
        CgOptions {
            max_iterations: self.cg_iterations,
            tolerance: self.tolerance,
        }
    }
}

struct DiffPirRule {
    config: DiffPir,
}

impl PosteriorRule for DiffPirRule {
    fn predict(
        &mut self,
        denoiser: &dyn Denoiser,
        x_t: &ImageBatch,
        ctx: &StepContext,
        data: &[DataFidelity<'_>],
    ) -> Result<Prediction> {
        let Prediction { mut x0, .. } = predict(denoiser, x_t, ctx)?;
        let rho = self.config.rho(ctx.alpha_bar_cur);
        let options = self.config.cg_options();
        for (k, d) in data.iter().enumerate() {
            let xk = frame_values_mut(&mut x0, k);
            let (refined, _) = d.solve(xk, rho, Some(xk), &options)?;
            xk.copy_from_slice(&refined);
        }
        x0.ensure_finite("DiffPIR x̂₀")?;
        let eps = rederive_eps(x_t, &x0, ctx)?;
        Ok(Prediction { eps, x0 })
    }

    fn update(
        &mut self,
        _frame: usize,
        _x_t: &ImageBatch,
        pred: &Prediction,
        ctx: &StepContext,
        rng: &mut SeededRng,
    ) -> Result<ImageBatch> {
        renoise_step(pred, ctx, self.config.zeta, rng)
    }
}

impl PosteriorSampler for DiffPir {
    fn name(&self) -> &'static str {
        "diffpir"
    }

    fn sample_frames(
        &self,
        problem: &PosteriorProblem<'_>,
        start: Start,
        rngs: &mut [SeededRng],
        observer: &mut dyn FnMut(StepInfo),
    ) -> Result<ImageBatch> {
        self.validate()?;
        let mut rule = DiffPirRule { config: *self };
        run_posterior(&mut rule, problem, start, rngs, observer)
    }
}
