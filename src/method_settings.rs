//! Reconstruction methods built from plain settings: the one place where a classic method or a
//! posterior sampler and its knobs become a [`Reconstructor`] or a [`PosteriorSampler`], together
//! with the resolved settings to record. `cinediff reconstruct` and the evaluation matrix
//! ([`crate::eval`]) both build their methods here.

use crate::baselines::{
    LeastSquares, LineInterpolation, Reconstructor, TotalVariation, WaveletL1, ZeroFilled,
};
use crate::diffusion::samplers::{Ddpm, DdpmVariance};
use crate::error::Result;
use crate::posterior::{BaseStep, DdimDc, Dds, DiffPir, Dps, PosteriorSampler, Renoise};

/// One resolved setting, as recorded in `config.toml` or an evaluation cell.
#[derive(Clone, Debug, PartialEq)]
pub enum SettingValue {
    /// An integer (iterations, steps).
    Int(i64),
    /// A real number (weights, step sizes).
    Float(f64),
    /// A name or description.
    Text(String),
    /// A flag.
    Bool(bool),
}

impl std::fmt::Display for SettingValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingValue::Int(v) => write!(f, "{v}"),
            SettingValue::Float(v) => write!(f, "{v}"),
            SettingValue::Text(v) => write!(f, "{v}"),
            SettingValue::Bool(v) => write!(f, "{v}"),
        }
    }
}

/// Resolved settings in insertion order.
pub type Resolved = Vec<(&'static str, SettingValue)>;

/// The classic (non-learned) reconstructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassicKind {
    /// Aᴴy.
    ZeroFilled,
    /// Least squares by CG (CG-SENSE).
    Cg,
    /// Total variation (PDHG); with a temporal weight, jointly over the sequence.
    Tv,
    /// Wavelet ℓ1 (FISTA).
    Wavelet,
    /// Linear interpolation between scan lines (column masks only).
    Interp,
}

/// Knobs of the classic methods; `None` takes the method's default.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ClassicSettings {
    /// Regularisation weight relative to max|Aᴴy| (tv, wavelet).
    pub lambda: Option<f64>,
    /// Temporal TV weight relative to max|Aᴴy| (tv; > 0 solves the sequence jointly).
    pub lambda_t: f64,
    /// Solver iterations (cg, tv, wavelet).
    pub iterations: Option<usize>,
}

/// A classic method ready to run.
pub struct BuiltClassic {
    /// The reconstruction.
    pub method: Box<dyn Reconstructor>,
    /// True when the whole `[T, H, W]` sequence is one problem (temporal TV over ≥ 2 frames).
    pub joint: bool,
    /// The resolved settings.
    pub resolved: Resolved,
}

/// Builds `kind` with `settings` for a sequence of `frames` frames.
pub fn build_classic(
    kind: ClassicKind,
    settings: &ClassicSettings,
    frames: usize,
) -> Result<BuiltClassic> {
    let mut resolved: Resolved = Vec::new();
    let method: Box<dyn Reconstructor> = match kind {
        ClassicKind::ZeroFilled => Box::new(ZeroFilled),
        ClassicKind::Cg => {
            let d = LeastSquares::default();
            let m = LeastSquares {
                iterations: settings.iterations.unwrap_or(d.iterations),
                ..d
            };
            m.validate()?;
            resolved.push(("iterations", SettingValue::Int(m.iterations as i64)));
            resolved.push(("tolerance", SettingValue::Float(m.tolerance)));
            Box::new(m)
        }
        ClassicKind::Tv => {
            let d = TotalVariation::default();
            let m = TotalVariation {
                lambda: settings.lambda.unwrap_or(d.lambda),
                lambda_temporal: settings.lambda_t,
                iterations: settings.iterations.unwrap_or(d.iterations),
                ..d
            };
            m.validate()?;
            resolved.push(("lambda", SettingValue::Float(m.lambda)));
            resolved.push(("lambda_t", SettingValue::Float(m.lambda_temporal)));
            resolved.push(("iterations", SettingValue::Int(m.iterations as i64)));
            resolved.push(("tolerance", SettingValue::Float(m.tolerance)));
            Box::new(m)
        }
        ClassicKind::Wavelet => {
            let d = WaveletL1::default();
            let m = WaveletL1 {
                lambda: settings.lambda.unwrap_or(d.lambda),
                iterations: settings.iterations.unwrap_or(d.iterations),
                ..d
            };
            resolved.push(("lambda", SettingValue::Float(m.lambda)));
            resolved.push(("wavelet", SettingValue::Text(format!("{:?}", m.wavelet))));
            resolved.push(("levels", SettingValue::Int(m.levels as i64)));
            resolved.push(("iterations", SettingValue::Int(m.iterations as i64)));
            resolved.push(("tolerance", SettingValue::Float(m.tolerance)));
            Box::new(m)
        }
        ClassicKind::Interp => Box::new(LineInterpolation),
    };
    let joint = kind == ClassicKind::Tv && settings.lambda_t > 0.0 && frames > 1;
    resolved.push(("joint_over_frames", SettingValue::Bool(joint)));
    Ok(BuiltClassic {
        method,
        joint,
        resolved,
    })
}

/// The posterior samplers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplerKind {
    /// Diffusion posterior sampling (gradient through the network, DDPM steps).
    Dps,
    /// DDIM + data consistency (AID's Algorithm 1).
    DdimDc,
    /// Decomposed diffusion sampling (CG on x̂₀).
    Dds,
    /// DiffPIR (proximal step, partial re-noise).
    DiffPir,
}

impl SamplerKind {
    /// The name on the command line (`dps`, `ddim-dc`, `dds`, `diffpir`).
    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Dps => "dps",
            SamplerKind::DdimDc => "ddim-dc",
            SamplerKind::Dds => "dds",
            SamplerKind::DiffPir => "diffpir",
        }
    }
}

/// Knobs of the posterior samplers (each uses its own); the defaults are `cinediff reconstruct`'s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplerSettings {
    /// DPS step size ζ.
    pub zeta: f32,
    /// ddim-dc: gradient steps K per reverse step.
    pub dc_steps: usize,
    /// ddim-dc: gradient step size in units of 1/‖A‖².
    pub dc_step_size: f32,
    /// dds: CG iterations per step; diffpir: CG iterations of the proximal step (`None`: default).
    pub cg_iterations: Option<usize>,
    /// DDIM η (dds; ddim-dc: DDIM re-noise instead of fresh noise).
    pub eta: Option<f32>,
    /// diffpir: λ.
    pub diffpir_lambda: f32,
    /// diffpir: ζ.
    pub diffpir_zeta: f32,
    /// diffpir: σ_n (`None`: the measurement's noise σ).
    pub sigma_n: Option<f32>,
}

impl Default for SamplerSettings {
    fn default() -> Self {
        Self {
            zeta: 1.0,
            dc_steps: 4,
            dc_step_size: 1.0,
            cg_iterations: None,
            eta: None,
            diffpir_lambda: 7.0,
            diffpir_zeta: 0.1,
            sigma_n: None,
        }
    }
}

/// A posterior sampler ready to run.
pub struct BuiltSampler {
    /// The sampler.
    pub sampler: Box<dyn PosteriorSampler>,
    /// The resolved settings.
    pub resolved: Resolved,
}

/// Builds `kind` with `settings`; `noise_sigma` is the measurement's σ (DiffPIR's default σ_n).
pub fn build_sampler(
    kind: SamplerKind,
    settings: &SamplerSettings,
    noise_sigma: f64,
) -> Result<BuiltSampler> {
    let mut resolved: Resolved = Vec::new();
    let sampler: Box<dyn PosteriorSampler> = match kind {
        SamplerKind::Dps => {
            let m = Dps {
                zeta: settings.zeta,
                base: BaseStep::Ddpm(Ddpm {
                    variance: DdpmVariance::Posterior,
                }),
            };
            m.validate()?;
            resolved.push(("zeta", SettingValue::Float(m.zeta as f64)));
            resolved.push(("base_step", SettingValue::Text("ddpm".into())));
            Box::new(m)
        }
        SamplerKind::DdimDc => {
            let m = DdimDc {
                steps_k: settings.dc_steps,
                step_size: settings.dc_step_size,
                renoise: match settings.eta {
                    Some(eta) => Renoise::Ddim { eta },
                    None => Renoise::Fresh,
                },
            };
            m.validate()?;
            resolved.push(("dc_steps", SettingValue::Int(m.steps_k as i64)));
            resolved.push(("dc_step_size", SettingValue::Float(m.step_size as f64)));
            resolved.push((
                "renoise",
                SettingValue::Text(match m.renoise {
                    Renoise::Fresh => "fresh".to_string(),
                    Renoise::Ddim { eta } => format!("ddim eta={eta}"),
                }),
            ));
            Box::new(m)
        }
        SamplerKind::Dds => {
            let d = Dds::default();
            let m = Dds {
                cg_iterations: settings.cg_iterations.unwrap_or(d.cg_iterations),
                eta: settings.eta.unwrap_or(d.eta),
                ..d
            };
            m.validate()?;
            resolved.push(("cg_iterations", SettingValue::Int(m.cg_iterations as i64)));
            resolved.push(("eta", SettingValue::Float(m.eta as f64)));
            resolved.push(("tolerance", SettingValue::Float(m.tolerance)));
            Box::new(m)
        }
        SamplerKind::DiffPir => {
            let d = DiffPir::default();
            let m = DiffPir {
                lambda: settings.diffpir_lambda,
                zeta: settings.diffpir_zeta,
                sigma_n: settings.sigma_n.unwrap_or(noise_sigma as f32),
                cg_iterations: settings.cg_iterations.unwrap_or(d.cg_iterations),
                ..d
            };
            m.validate()?;
            resolved.push(("diffpir_lambda", SettingValue::Float(m.lambda as f64)));
            resolved.push(("diffpir_zeta", SettingValue::Float(m.zeta as f64)));
            resolved.push(("sigma_n", SettingValue::Float(m.sigma_n as f64)));
            resolved.push(("cg_iterations", SettingValue::Int(m.cg_iterations as i64)));
            Box::new(m)
        }
    };
    Ok(BuiltSampler { sampler, resolved })
}
