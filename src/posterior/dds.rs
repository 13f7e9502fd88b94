//! DDS, Decomposed Diffusion Sampling (Chung, Lee & Ye, ICLR 2024), as zea's `DDS` guidance: the
//! Tweedie x̂₀ is refined by a few conjugate-gradient iterations on the normal equations
//!
//! scale²·AᴴA x = scale·Aᴴ(y − A(offset)),  started at x̂₀ (no back-propagation through the network),
//!
//! then the DDIM step x_next = √ᾱ_next x̂₀' + √(1 − ᾱ_next − s²) ε̂ + s z uses the refined x̂₀' with the
//! network's ε̂ kept unchanged (zea passes the denoiser's `pred_noises` on; DDS's "decomposed" step).
//! Starting CG at x̂₀ keeps x̂₀'s component in the null space of A and few iterations act as the
//! regulariser (Krylov subspace around x̂₀). zea stops CG once the residual norm is below an absolute
//! 1e-5; here the tolerance is relative to ‖scale·Aᴴỹ‖, which does not depend on the data's units.

use crate::diffusion::denoiser::Denoiser;
use crate::diffusion::samplers::{
    predict, Ddim, Prediction, Start, StepContext, StepInfo, StepRule,
};
use crate::error::{Error, Result};
use crate::image::ImageBatch;
use crate::posterior::cg::CgOptions;
use crate::posterior::{
    frame_values_mut, run_posterior, DataFidelity, PosteriorProblem, PosteriorRule,
    PosteriorSampler,
};
use crate::rng::SeededRng;

/// DDS: `cg_iterations` CG steps on the normal equations from x̂₀, then DDIM(η) with the network's ε̂.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dds {
    /// CG iterations per reverse step, ≥ 1 (zea: 5).
    pub cg_iterations: usize,
    /// CG stops early once ‖residual‖ ≤ tolerance·‖scale·Aᴴỹ‖.
    pub tolerance: f64,
    /// The DDIM step's stochasticity η ∈ [0, 1] (zea's default: 0, deterministic).
    pub eta: f32,
}

impl Default for Dds {
    /// zea's defaults: 5 CG iterations, deterministic DDIM; tolerance 1e-5 (relative here).
    fn default() -> Self {
        Self {
            cg_iterations: 5,
            tolerance: 1e-5,
            eta: 0.0,
        }
    }
}

impl Dds {
    /// Fails unless there is at least one CG iteration, the tolerance is finite and ≥ 0, and η ∈ [0, 1].
    pub fn validate(&self) -> Result<()> {
        if self.cg_iterations == 0 {
            return Err(Error::invalid("DDS CG iterations", "at least 1", 0));
        }
        self.cg_options().validate()?;
        Ddim { eta: self.eta }.validate()
    }

    fn cg_options(&self) -> CgOptions {
        CgOptions {
            max_iterations: self.cg_iterations,
            tolerance: self.tolerance,
        }
    }
}

struct DdsRule {
    config: Dds,
}

impl PosteriorRule for DdsRule {
    fn predict(
        &mut self,
        denoiser: &dyn Denoiser,
        x_t: &ImageBatch,
        ctx: &StepContext,
        data: &[DataFidelity<'_>],
    ) -> Result<Prediction> {
        let Prediction { eps, mut x0 } = predict(denoiser, x_t, ctx)?;
        let options = self.config.cg_options();
        for (k, d) in data.iter().enumerate() {
            let xk = frame_values_mut(&mut x0, k);
            let (refined, _) = d.solve(xk, 0.0, None, &options)?;
            xk.copy_from_slice(&refined);
        }
        x0.ensure_finite("DDS x̂₀")?;
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
        Ddim {
            eta: self.config.eta,
        }
        .update(x_t, pred, ctx, rng)
    }
}

impl PosteriorSampler for Dds {
    fn name(&self) -> &'static str {
        "dds"
    }

    fn sample_frames(
        &self,
        problem: &PosteriorProblem<'_>,
        start: Start,
        rngs: &mut [SeededRng],
        observer: &mut dyn FnMut(StepInfo),
    ) -> Result<ImageBatch> {
        self.validate()?;
        let mut rule = DdsRule { config: *self };
        run_posterior(&mut rule, problem, start, rngs, observer)
    }
}
