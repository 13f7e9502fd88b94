//! DPM-Solver++(2M) (Lu et al. 2022), multistep, data-prediction form, as diffusers'
//! `DPMSolverMultistepScheduler` with `algorithm_type="dpmsolver++"`, `solver_order=2`,
//! `solver_type="midpoint"`, `final_sigmas_type="zero"`.
//!
//! With λ = log(α/σ), h = λ_next − λ_cur and D_i = x̂₀ at the current step:
//! - 1st order: x_next = (σ_next/σ_cur) x − α_next (e^{−h} − 1) D_i;
//! - 2M: the same update with D = (1 + 1/(2r)) D_i − 1/(2r) D_{i−1}, r = h_prev/h, where h_prev is
//!   the λ-increment of the previous step.
//!
//! Order choices (documented behaviour):
//! - The first step of a trajectory (cold or warm) is 1st order: there is no history.
//! - The last step goes to clean data (σ = 0, λ = +∞). There 1st order gives exactly
//!   x_next = D_i = x̂₀ (σ_next = 0, e^{−h} = 0, α_next = 1), and the 2M correction would be
//!   infinite (1/(2r) = h/(2 h_prev) → ∞), so the last step is always 1st order and returns x̂₀;
//!   λ is never evaluated at σ = 0. This is what diffusers does for `final_sigmas_type="zero"`.
//! - `lower_order_final` (diffusers' option of the same name, default true): when the full grid has
//!   fewer than 15 steps, the second-to-last step is also 1st order (diffusers' `lower_order_second`);
//!   this stabilises few-step sampling. The count is that of the whole grid, also for warm starts.

use crate::diffusion::denoiser::Denoiser;
use crate::diffusion::samplers::{
    run_reverse, Prediction, Sampler, Start, StepContext, StepInfo, StepRule,
};
use crate::diffusion::schedule::{half_log_snr, NoiseSchedule};
use crate::error::Result;
use crate::image::ImageBatch;
use crate::rng::SeededRng;

/// Grids shorter than this use 1st order for the second-to-last step when `lower_order_final` is on.
pub const LOWER_ORDER_FINAL_MAX_STEPS: usize = 15;

/// DPM-Solver++(2M) sampler (deterministic: it draws no noise after the start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DpmSolverPlusPlus {
    /// Use 1st order for the second-to-last step on grids with fewer than 15 steps.
    pub lower_order_final: bool,
}

impl Default for DpmSolverPlusPlus {
    fn default() -> Self {
        Self {
            lower_order_final: true,
        }
    }
}

impl DpmSolverPlusPlus {
    /// A fresh update rule (empty multistep history) for one trajectory.
    pub fn rule(&self) -> DpmSolverPlusPlusRule {
        DpmSolverPlusPlusRule {
            config: *self,
            history: None,
        }
    }
}

/// The stateful update rule of one DPM-Solver++(2M) trajectory: it remembers the previous step's
/// data prediction and λ-increment.
#[derive(Clone, Debug)]
pub struct DpmSolverPlusPlusRule {
    config: DpmSolverPlusPlus,
    /// (D_{i−1}, h_{i−1}).
    history: Option<(ImageBatch, f64)>,
}

impl StepRule for DpmSolverPlusPlusRule {
    fn update(
        &mut self,
        x_t: &ImageBatch,
        pred: &Prediction,
        ctx: &StepContext,
        _rng: &mut SeededRng,
    ) -> Result<ImageBatch> {
        if ctx.is_final() {
            self.history = None;
            return Ok(pred.x0.clone());
        }
        let h = half_log_snr(ctx.alpha_bar_next) - half_log_snr(ctx.alpha_bar_cur);
        let lower_order_here = self.config.lower_order_final
            && ctx.grid_len < LOWER_ORDER_FINAL_MAX_STEPS
            && ctx.grid_index + 2 == ctx.grid_len;
        // 1/(2r) = h/(2 h_prev); falls back to 1st order if the history is unusable.
        let second_order = match &self.history {
            Some((d_prev, h_prev)) if !lower_order_here && *h_prev > 0.0 => {
                let c = h / (2.0 * h_prev);
                c.is_finite().then_some((d_prev, c))
            }
            _ => None,
        };
        let d = match second_order {
            Some((d_prev, c)) => {
                ImageBatch::lincomb((1.0 + c) as f32, &pred.x0, -c as f32, d_prev)?
            }
            None => pred.x0.clone(),
        };
        // x_next = (σ_next/σ_cur) x − α_next (e^{−h} − 1) D, with −(e^{−h} − 1) = −expm1(−h).
        let c_x = ctx.sigma_next() / ctx.sigma_cur();
        let c_d = -ctx.alpha_next() * (-h).exp_m1();
        let x_next = ImageBatch::lincomb(c_x as f32, x_t, c_d as f32, &d)?;
        self.history = Some((pred.x0.clone(), h));
        Ok(x_next)
    }
}

impl Sampler for DpmSolverPlusPlus {
    fn name(&self) -> &'static str {
        "dpm-solver++"
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
        let mut rule = self.rule();
        run_reverse(
            &mut rule, denoiser, schedule, timesteps, start, rng, observer,
        )
    }
}
