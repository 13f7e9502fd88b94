//! One cell of the matrix: a registry method on one measurement, timed, scored per frame.

use std::time::Instant;

use num_complex::Complex32;

use crate::aps::ApsSampler;
use crate::bundle::Bundle;
use crate::data::Normalization;
use crate::diffusion::schedule::NoiseSchedule;
use crate::diffusion::{ClippedDenoiser, Denoiser};
use crate::error::{Error, Result};
use crate::eval::external::{best_of_sweep, ExternalMethod};
use crate::eval::methods::{Family, MethodEntry, StrategyKind};
use crate::eval::table::FrameRow;
use crate::eval::{acceleration_label, Condition, EvalSettings};
use crate::method_settings::{
    build_classic, build_sampler, ClassicKind, ClassicSettings, Resolved, SettingValue,
};
use crate::metrics::{sequence_metrics, sequence_metrics_complex, SequenceMetrics};
use crate::nn::transition::TransitionPredictor;
use crate::reconstruction::{
    intensity_factor, posterior_estimate, reconstruct_classic, stretched, Prior,
};
use crate::sequence::{
    run_sequence, Aid, Independent, SeqDiff, SeqDiffPlus, SequenceOptions, SequenceStrategy,
};

/// A diffusion prior: the noise predictor, its training schedule and normalisation.
pub struct PriorModel<'a> {
    /// ε-predictor (network space).
    pub denoiser: &'a dyn Denoiser,
    /// Its training schedule.
    pub schedule: NoiseSchedule,
    /// Its training normalisation (user units ↔ network space).
    pub normalization: Normalization,
}

/// The models the diffusion methods use (absent ones make those methods fail with a clear error).
#[derive(Default)]
pub struct Models<'a> {
    /// The image prior.
    pub prior: Option<PriorModel<'a>>,
    /// SeqDiff+'s transition model.
    pub transition: Option<&'a TransitionPredictor>,
    /// The program behind [`Family::External`] methods (BART's `pics`).
    pub external: Option<&'a dyn ExternalMethod>,
    /// AID's network (method `aid`).
    pub aid: Option<&'a Aid>,
    /// An APS model (method `aps`).
    pub aps: Option<&'a ApsSampler>,
}

/// What a cell produced.
#[derive(Clone, Debug)]
pub struct CellOutput {
    /// One row per frame.
    pub rows: Vec<FrameRow>,
    /// The reconstruction `[T, H, W]` in the bundle's units (real part only for real bundles).
    pub recon: Vec<Complex32>,
    /// Per-pixel spread of the draws / particles (`[T, H, W]`) when there were several.
    pub std: Option<Vec<f32>>,
    /// Wall time of the whole cell.
    pub seconds: f64,
    /// The method's resolved settings.
    pub settings: Resolved,
}

/// Runs `entry` on `bundle` (the measurement of `condition` of item `item`), reporting progress as
/// `observer(done, total)` work units. Scores every frame against the bundle's truth.
pub fn run_cell(
    item: &str,
    condition: &Condition,
    bundle: &Bundle,
    entry: &MethodEntry,
    settings: &EvalSettings,
    models: &Models<'_>,
    observer: &mut dyn FnMut(u64, u64),
) -> Result<CellOutput> {
    settings.validate()?;
    let spec = bundle.spec();
    let frames = spec.frames();
    if !entry.applies_to(spec.operator, frames) {
        return Err(Error::invalid(
            format!("method {}", entry.name),
            "an operator and frame count it applies to",
            format!("{} with {frames} frame(s)", spec.operator.name()),
        ));
    }
    let truth = bundle.truth().ok_or_else(|| {
        Error::invalid(
            format!("measurement of {item}"),
            "a truth (metrics need it)",
            "none",
        )
    })?;
    let started = Instant::now();
    let mut resolved: Resolved = Vec::new();
    // Per frame: NFEs and, when the method times frames itself, seconds.
    let (recon, std, nfe, frame_seconds): (_, _, Vec<u64>, Option<Vec<f64>>) = match entry.family {
        Family::Classic { kind, temporal } => {
            let classic = ClassicSettings {
                lambda: match kind {
                    ClassicKind::Tv => Some(settings.tv_lambda),
                    ClassicKind::Wavelet => Some(settings.wavelet_lambda),
                    _ => None,
                },
                lambda_t: if temporal { settings.tv_lambda_t } else { 0.0 },
                iterations: match kind {
                    ClassicKind::Cg => Some(settings.cg_iterations),
                    ClassicKind::Tv => Some(settings.tv_iterations),
                    ClassicKind::Wavelet => Some(settings.wavelet_iterations),
                    _ => None,
                },
            };
            let built = build_classic(kind, &classic, frames)?;
            resolved.extend(built.resolved);
            let x = reconstruct_classic(bundle, built.method.as_ref(), built.joint)?;
            (x, None, vec![0; frames], None)
        }
        Family::External => {
            let program = models.external.ok_or_else(|| {
                Error::invalid(
                    format!("method {}", entry.name),
                    "an external program (cinediff eval --baseline bart)",
                    "none given",
                )
            })?;
            let shape = spec.shape;
            let mean_psnr = |x: &[Complex32]| -> Result<f64> {
                let m = score(&truth.values, x, shape, spec.complex)?;
                Ok(m.frames.iter().map(|f| f.psnr).sum::<f64>() / m.frames.len().max(1) as f64)
            };
            let sweep = best_of_sweep(program, bundle, &mean_psnr, observer)?;
            resolved.extend(sweep.settings.iter().cloned());
            resolved.push(("program", SettingValue::Text(program.identity())));
            resolved.push((
                "sweep_mean_psnr",
                SettingValue::Text(
                    sweep
                        .scores
                        .iter()
                        .map(|(s, p)| format!("[{s}]: {p:.2}"))
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            ));
            (sweep.recon, None, vec![0; frames], None)
        }
        Family::Aps => {
            let aps = models.aps.ok_or_else(|| {
                Error::invalid(
                    format!("method {}", entry.name),
                    "an APS model",
                    "none given",
                )
            })?;
            let n = settings.aps_samples;
            resolved.push(("samples", SettingValue::Int(n as i64)));
            let symmetries = &aps.config().sampling_symmetries;
            resolved.push(("mirrored_draws", SettingValue::Bool(symmetries.mirror)));
            resolved.push(("conjugate_draws", SettingValue::Bool(symmetries.conjugate)));
            resolved.push((
                "draw_shifts",
                SettingValue::Text(format!("{:?}", symmetries.shifts)),
            ));
            resolved.push((
                "phase_rotations",
                SettingValue::Int(symmetries.phase_rotations as i64),
            ));
            resolved.push((
                "trained_for",
                SettingValue::Text(format!(
                    "{} {} {}x σ {}",
                    aps.config().family.operator.name(),
                    aps.config().family.mask.name(),
                    aps.config().family.acceleration,
                    aps.config().family.noise_sigma
                )),
            ));
            let total = frames as u64;
            let factor = intensity_factor(bundle, aps.config().normalization, settings.intensity)?;
            resolved.push(("intensity_factor", SettingValue::Float(factor)));
            let normalization = stretched(aps.config().normalization, factor)?;
            let estimate = aps.estimate(
                bundle,
                normalization,
                n,
                0,
                condition.seed,
                &mut |done, _| observer(done as u64, total),
            )?;
            (
                estimate.mean,
                estimate.std,
                vec![n as u64; frames],
                Some(estimate.seconds_per_frame),
            )
        }
        Family::Posterior(kind) => {
            let prior = need_prior(models, entry)?;
            let built = build_sampler(kind, &settings.sampler, spec.noise_sigma)?;
            resolved.extend(built.resolved);
            let (normalization, timesteps) =
                prepare_prior(prior, bundle, settings, settings.steps, &mut resolved)?;
            let clip = clipper(prior, settings)?;
            let denoiser: &dyn Denoiser = match &clip {
                Some(c) => c,
                None => prior.denoiser,
            };
            let p = Prior {
                denoiser,
                schedule: &prior.schedule,
                timesteps: &timesteps,
            };
            resolved.push(("samples", SettingValue::Int(settings.samples as i64)));
            let batch = settings.batch;
            let chunks = frames.div_ceil(batch) as u64;
            let steps = timesteps.len() as u64;
            let total = settings.samples as u64 * chunks * steps;
            let estimate = posterior_estimate(
                bundle,
                built.sampler.as_ref(),
                p,
                normalization,
                batch,
                settings.samples,
                condition.seed,
                &mut |sample, done, info| {
                    let chunk = (done / batch) as u64;
                    observer(
                        (sample as u64 * chunks + chunk) * steps + info.done as u64,
                        total,
                    )
                },
            )?;
            let per_frame =
                (timesteps.len() * built.sampler.evaluations_per_step() * settings.samples) as u64;
            (estimate.mean, estimate.std, vec![per_frame; frames], None)
        }
        Family::Sequence(strategy_kind) => {
            let prior = need_prior(models, entry)?;
            let built = build_sampler(
                settings.sequence_sampler,
                &settings.sampler,
                spec.noise_sigma,
            )?;
            resolved.push(("sampler", SettingValue::Text(built.sampler.name().into())));
            resolved.extend(built.resolved);
            let grid = match strategy_kind {
                StrategyKind::Independent | StrategyKind::Aid => settings.steps,
                StrategyKind::SeqDiff | StrategyKind::SeqDiffPlus => settings.sequence_steps,
            };
            let (normalization, timesteps) =
                prepare_prior(prior, bundle, settings, grid, &mut resolved)?;
            let clip = clipper(prior, settings)?;
            let denoiser: &dyn Denoiser = match &clip {
                Some(c) => c,
                None => prior.denoiser,
            };
            let p = Prior {
                denoiser,
                schedule: &prior.schedule,
                timesteps: &timesteps,
            };
            let options = SequenceOptions {
                warm_steps: settings.warm_start.min(timesteps.len()),
                particles: settings.particles,
                ..SequenceOptions::default()
            };
            if !matches!(strategy_kind, StrategyKind::Independent | StrategyKind::Aid) {
                resolved.push(("warm_start", SettingValue::Int(options.warm_steps as i64)));
            }
            resolved.push(("particles", SettingValue::Int(options.particles as i64)));
            let mut strategy: Box<dyn SequenceStrategy + '_> = match strategy_kind {
                StrategyKind::Independent => Box::new(Independent),
                StrategyKind::SeqDiff => Box::new(SeqDiff),
                StrategyKind::Aid => Box::new(models.aid.ok_or_else(|| {
                    Error::invalid(
                        format!("method {}", entry.name),
                        "an AID model",
                        "none given",
                    )
                })?),
                StrategyKind::SeqDiffPlus => {
                    let predictor = models.transition.ok_or_else(|| {
                        Error::invalid(
                            format!("method {}", entry.name),
                            "a transition model",
                            "none given",
                        )
                    })?;
                    let channels = denoiser.image_shape().map_or(0, |s| s[0]);
                    Box::new(SeqDiffPlus::new(predictor, prior.normalization, channels)?)
                }
            };
            let total = frames as u64;
            let result = run_sequence(
                bundle,
                built.sampler.as_ref(),
                p,
                normalization,
                strategy.as_mut(),
                &options,
                condition.seed,
                &mut |frame, info| {
                    if info.done == info.total {
                        observer(frame as u64 + 1, total)
                    }
                },
            )?;
            let nfe = result.frames.iter().map(|r| r.nfe as u64).collect();
            let secs: Vec<f64> = result.frames.iter().map(|r| r.seconds).collect();
            (result.mean, result.std, nfe, Some(secs))
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let shape = spec.shape;
    let metrics = score(&truth.values, &recon, shape, spec.complex)?;
    // Frames the method timed keep their time plus an equal share of the cell's overhead
    // (intensity matching); otherwise the cell's time is split evenly.
    let per_frame_seconds: Vec<f64> = match frame_seconds {
        Some(s) => {
            let overhead = (seconds - s.iter().sum::<f64>()).max(0.0) / frames as f64;
            s.iter().map(|v| v + overhead).collect()
        }
        None => vec![seconds / frames as f64; frames],
    };
    let rows = metrics
        .frames
        .iter()
        .enumerate()
        .map(|(t, m)| FrameRow {
            item: item.to_string(),
            operator: spec.operator.name().to_string(),
            acceleration: acceleration_label(condition.acceleration),
            seed: condition.seed,
            method: entry.name.to_string(),
            frame: t,
            psnr: m.psnr,
            ssim: m.ssim,
            nrmse: m.nrmse,
            nfe: nfe[t],
            seconds: per_frame_seconds[t],
        })
        .collect();
    Ok(CellOutput {
        rows,
        recon,
        std,
        seconds,
        settings: resolved,
    })
}

/// Per-frame metrics on magnitudes (complex) or real values.
fn score(
    truth: &[Complex32],
    recon: &[Complex32],
    shape: [usize; 3],
    complex: bool,
) -> Result<SequenceMetrics> {
    if complex {
        sequence_metrics_complex(truth, recon, shape)
    } else {
        let t: Vec<f32> = truth.iter().map(|v| v.re).collect();
        let r: Vec<f32> = recon.iter().map(|v| v.re).collect();
        sequence_metrics(&t, &r, shape)
    }
}

fn need_prior<'m, 'a>(models: &'m Models<'a>, entry: &MethodEntry) -> Result<&'m PriorModel<'a>> {
    models.prior.as_ref().ok_or_else(|| {
        Error::invalid(
            format!("method {}", entry.name),
            "a diffusion prior",
            "none given",
        )
    })
}

/// The prior's grid of `steps` steps and the normalisation stretched to the bundle's intensity.
fn prepare_prior(
    prior: &PriorModel<'_>,
    bundle: &Bundle,
    settings: &EvalSettings,
    steps: usize,
    resolved: &mut Resolved,
) -> Result<(Normalization, Vec<usize>)> {
    let timesteps = prior.schedule.timesteps(steps, settings.spacing)?;
    let factor = intensity_factor(bundle, prior.normalization, settings.intensity)?;
    let normalization = stretched(prior.normalization, factor)?;
    resolved.push(("steps", SettingValue::Int(steps as i64)));
    resolved.push((
        "spacing",
        SettingValue::Text(format!("{:?}", settings.spacing)),
    ));
    resolved.push((
        "clip_x0",
        settings
            .clip_x0
            .map_or(SettingValue::Text("off".into()), |c| {
                SettingValue::Float(c as f64)
            }),
    ));
    resolved.push(("intensity_factor", SettingValue::Float(factor)));
    Ok((normalization, timesteps))
}

/// The prior's x̂₀ clipping, when the settings ask for it.
fn clipper<'m>(
    prior: &'m PriorModel<'_>,
    settings: &EvalSettings,
) -> Result<Option<ClippedDenoiser<'m>>> {
    settings
        .clip_x0
        .map(|limit| ClippedDenoiser::new(prior.denoiser, &prior.schedule, limit))
        .transpose()
}
