//! `cinediff reconstruct`: reconstruct a measurement bundle with a classic baseline or a diffusion
//! posterior sampler; write the image, the resolved configuration and (with a truth) the metrics.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use cinediff::aps::{ApsEstimate, SamplingSymmetries};
use cinediff::baselines::ZeroFilled;
use cinediff::bundle::Bundle;
use cinediff::diffusion::{ClippedDenoiser, Denoiser};
use cinediff::io::bundle::read_bundle;
use cinediff::io::gif::{write_cine as write_cine_gif, Panel};
use cinediff::io::model_dir::{load_aid, load_aps, load_denoiser, load_transition, write_json};
use cinediff::io::{npy, png};
use cinediff::method_settings::{
    build_classic, build_sampler, ClassicKind, ClassicSettings, Resolved as MethodResolved,
    SamplerKind, SamplerSettings, SettingValue,
};
use cinediff::metrics::{magnitude, sequence_metrics, sequence_metrics_complex, SequenceMetrics};
use cinediff::nn::device::default_device;
use cinediff::nn::UNetDenoiser;
use cinediff::reconstruction::{
    intensity_factor, posterior_estimate, reconstruct_classic, stretched, IntensityMatch,
    PosteriorEstimate, Prior,
};
use cinediff::sequence::{
    run_sequence, Aid, ApsStart, FrameReport, Independent, SeqDiff, SeqDiffPlus, SequenceOptions,
    SequenceStrategy,
};
use clap::{Args, ValueEnum};
use num_complex::Complex32;
use serde::Serialize;

use crate::progress::Progress;
use crate::sample::SpacingArg;

/// Reconstruction method.
#[derive(Clone, Copy, Debug, PartialEq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MethodArg {
    /// Aᴴy: the adjoint (coil-combined inverse FFT of the zero-filled k-space for MRI).
    ZeroFilled,
    /// Least squares by conjugate gradients (CG-SENSE for multi-coil MRI).
    Cg,
    /// Total-variation compressed sensing (PDHG); --lambda-t adds temporal TV over the sequence.
    Tv,
    /// Orthogonal-wavelet ℓ1 compressed sensing (Daubechies-4, FISTA).
    Wavelet,
    /// Ultrasound scan lines (us-lines bundles): each row linear between the acquired lines.
    Interp,
    /// Diffusion posterior sampling (Chung et al. 2023), gradient through the network.
    Dps,
    /// DDIM with data consistency: K gradient steps on x̂₀ per step (AID's Algorithm 1).
    DdimDc,
    /// Decomposed diffusion sampling: a few CG steps on x̂₀ per step, no back-propagation.
    Dds,
    /// DiffPIR: proximal data step on x̂₀, then partial re-noise.
    Diffpir,
    /// Sequence, every frame from noise with --sampler (the reference for seqdiff).
    Independent,
    /// SeqDiff: frame t+1 warm-starts from frame t's sample and runs only --warm-start steps.
    Seqdiff,
    /// SeqDiff+: as seqdiff, warm-starting from a transition model's prediction (--transition).
    #[value(name = "seqdiff+")]
    SeqdiffPlus,
    /// AID: every frame with the autoregressive prior (--model an AID model from train-aid),
    /// conditioned on the reconstructions of the frames before it; --sampler ddim-dc is AID's
    /// Algorithm 1.
    Aid,
    /// APS: a trained conditional flow (--model an APS model from train-aps) draws --samples
    /// posterior samples per frame, one network evaluation each.
    Aps,
}

impl MethodArg {
    fn is_diffusion(self) -> bool {
        !matches!(
            self,
            MethodArg::ZeroFilled
                | MethodArg::Cg
                | MethodArg::Tv
                | MethodArg::Wavelet
                | MethodArg::Interp
        )
    }

    fn is_sequence(self) -> bool {
        matches!(
            self,
            MethodArg::Independent | MethodArg::Seqdiff | MethodArg::SeqdiffPlus | MethodArg::Aid
        )
    }
}

/// The posterior sampler of a sequence strategy.
#[derive(Clone, Copy, Debug, PartialEq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SamplerArg {
    /// Diffusion posterior sampling (gradient through the network).
    Dps,
    /// DDIM + data consistency (AID's Algorithm 1).
    DdimDc,
    /// Decomposed diffusion sampling (CG on x̂₀).
    Dds,
    /// DiffPIR (proximal step, partial re-noise).
    Diffpir,
}

impl From<SamplerArg> for SamplerKind {
    fn from(a: SamplerArg) -> Self {
        match a {
            SamplerArg::Dps => SamplerKind::Dps,
            SamplerArg::DdimDc => SamplerKind::DdimDc,
            SamplerArg::Dds => SamplerKind::Dds,
            SamplerArg::Diffpir => SamplerKind::DiffPir,
        }
    }
}

/// Options of `cinediff reconstruct`.
#[derive(Args)]
#[command(after_help = "Examples:\n  \
cinediff reconstruct --bundle b/ --method tv --lambda 0.01 --out r_tv/\n  \
cinediff reconstruct --bundle b/ --method ddim-dc --model models/cine64-small --steps 50 --seed 0 --out r/\n  \
cinediff reconstruct --bundle b/ --method seqdiff --sampler ddim-dc --steps 200 --warm-start 8 --model models/cine64-small --out r/\n  \
cinediff reconstruct --bundle b/ --method aps --model models/cine64-aps-mri4x --samples 64 --out r/\n\n\
Writes r/recon.npy (the truth's shape and dtype, else [T, H, W]; complex64 for complex bundles),\n\
r/recon.png (magnitudes; signed values for real images), r/config.toml (every resolved setting, the seed and the timing) and,\n\
with --samples N >= 2, r/std.npy and r/std.png (per-pixel posterior standard deviation), and,\n\
when the bundle holds truth.npy, r/metrics.json (PSNR/SSIM with data range max(truth frame), NRMSE,\n\
NMSE, on magnitudes for complex images, per frame and mean). Sequence methods (independent,\n\
seqdiff) also write frames.csv (per frame: steps, NFEs, seconds, residuals, PSNR/SSIM),\n\
summary.json and cine.gif (truth, zero-filled, reconstruction, 4x error, side by side). aps also\n\
writes samples.npy (up to 4 posterior draws, [k, T, H, W]). The same seed gives byte-identical recon.npy.")]
pub struct ReconstructArgs {
    /// Measurement bundle directory (see README "Measurement bundles").
    #[arg(long)]
    bundle: PathBuf,
    /// Reconstruction method.
    #[arg(long, value_enum)]
    method: MethodArg,
    /// Prior model directory (diffusion methods), or the APS model (--method aps).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Reverse diffusion steps (diffusion methods; for sequences, the grid of a cold frame).
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// Posterior sampler of independent / seqdiff.
    #[arg(long, value_enum, default_value_t = SamplerArg::DdimDc, help_heading = "Sequences")]
    sampler: SamplerArg,
    /// seqdiff: reverse steps of every frame after the first (the last N steps of the grid).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 8,
        help_heading = "Sequences"
    )]
    warm_start: usize,
    /// independent / seqdiff: posterior samples per frame, each continuing its own chain.
    #[arg(long, default_value_t = 1, help_heading = "Sequences")]
    particles: usize,
    /// seqdiff: start from noise again every N frames.
    #[arg(long, value_name = "N", help_heading = "Sequences")]
    cold_every: Option<usize>,
    /// seqdiff: when the warm image's relative data residual ρ = ‖A x − y‖/‖y‖ exceeds this ρ₀,
    /// run ⌈N·ρ/ρ₀⌉ steps instead of N (sudden motion costs steps only where it happens).
    #[arg(long, value_name = "RHO0", help_heading = "Sequences")]
    adaptive_threshold: Option<f64>,
    /// seqdiff / seqdiff+: start warm frames at training timestep T′ (0..999) and spread their
    /// --warm-start steps evenly down to 0, instead of running the last N steps of the cold grid.
    #[arg(long, value_name = "T'", help_heading = "Sequences")]
    warm_start_level: Option<usize>,
    /// independent / seqdiff / seqdiff+ / aid: an APS model (from `cinediff train-aps`) for the
    /// bundle's operator; every frame that would start from noise (frame 0, cold restarts, all
    /// frames of independent) starts instead from APS draws of that frame (one per particle),
    /// noised to the warm-start level and refined by --warm-start steps.
    #[arg(long, value_name = "DIR", help_heading = "Sequences")]
    aps_start: Option<PathBuf>,
    /// seqdiff+: transition model directory (from `cinediff train-transition`).
    #[arg(long, value_name = "DIR", help_heading = "Sequences")]
    transition: Option<PathBuf>,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Replace a reconstruction already in --out.
    #[arg(long)]
    force: bool,

    /// Regularisation weight, relative to max|Aᴴy| (tv: default 0.01, wavelet: 0.005).
    #[arg(long, help_heading = "Classic methods")]
    lambda: Option<f64>,
    /// Temporal TV weight relative to max|Aᴴy| (tv; > 0 solves the whole sequence jointly).
    #[arg(long, default_value_t = 0.0, help_heading = "Classic methods")]
    lambda_t: f64,
    /// Solver iterations (cg: 30, tv: 1000, wavelet: 200).
    #[arg(long, help_heading = "Classic methods")]
    iterations: Option<usize>,

    /// DPS step size ζ on ∇‖y − A x̂₀‖ (measurement units).
    #[arg(long, default_value_t = 1.0, help_heading = "Diffusion methods")]
    zeta: f32,
    /// ddim-dc: gradient steps K on ½‖A x̂₀ − y‖² per reverse step.
    #[arg(long, default_value_t = 4, help_heading = "Diffusion methods")]
    dc_steps: usize,
    /// ddim-dc: gradient step size in units of 1/‖A‖² (1 = AID).
    #[arg(long, default_value_t = 1.0, help_heading = "Diffusion methods")]
    dc_step_size: f32,
    /// dds: CG iterations per reverse step; diffpir: CG iterations of the proximal step.
    #[arg(long, help_heading = "Diffusion methods")]
    cg_iterations: Option<usize>,
    /// DDIM stochasticity η (dds; ddim-dc: DDIM re-noise instead of AID's fresh noise).
    #[arg(long, help_heading = "Diffusion methods")]
    eta: Option<f32>,
    /// diffpir: regularisation weight λ.
    #[arg(long, default_value_t = 7.0, help_heading = "Diffusion methods")]
    diffpir_lambda: f32,
    /// diffpir: fraction ζ of fresh noise in the re-noise.
    #[arg(long, default_value_t = 0.1, help_heading = "Diffusion methods")]
    diffpir_zeta: f32,
    /// diffpir: measurement noise σ_n [default: the bundle's noise_sigma].
    #[arg(long, help_heading = "Diffusion methods")]
    sigma_n: Option<f32>,
    /// How the reverse steps are spread over the training levels.
    #[arg(long, value_enum, default_value_t = SpacingArg::Linspace, help_heading = "Diffusion methods")]
    spacing: SpacingArg,
    /// Clip x̂₀ to [−LIMIT, LIMIT] in network units (the training data span [−1, 1]).
    #[arg(
        long,
        value_name = "LIMIT",
        default_value_t = 1.0,
        help_heading = "Diffusion methods"
    )]
    clip_x0: f32,
    /// Do not clip x̂₀.
    #[arg(long, help_heading = "Diffusion methods")]
    no_clip: bool,
    /// Intensity matching: `model` (data in the prior's training units), `auto` (match the 99.9th
    /// percentile of a least-squares image to the prior's), or a factor c (x_user = c·x_model).
    #[arg(long, default_value = "auto", value_parser = parse_intensity, help_heading = "Diffusion methods")]
    intensity: IntensityMatch,
    /// Posterior samples per frame: recon.npy is their mean (the MMSE estimate) and, for 2 or more,
    /// std.npy the per-pixel standard deviation (an uncertainty map). Costs N× the time.
    #[arg(long, default_value_t = 1, help_heading = "Diffusion methods")]
    samples: usize,
    /// Frames per network call (memory vs speed; results do not depend on it).
    #[arg(long, default_value_t = 8, help_heading = "Diffusion methods")]
    batch: usize,
    /// APS: draw every second sample from the left–right mirrored measurement and mirror it
    /// back, which averages out part of the flow's amortisation error with the same number of
    /// draws (the conditioning network runs once per symmetry; sound for models trained with
    /// horizontal flips) [default: the model's sampling_symmetries, true when it was trained
    /// with flips].
    #[arg(long, action = clap::ArgAction::Set, help_heading = "Diffusion methods")]
    mirrored_draws: Option<bool>,
    /// APS: draw over N global phases 2πk/N of the measurement (complex models whose data have
    /// an arbitrary global phase, as MRI does), each draw rotated back; with mirrored draws, over
    /// both [default: the model's sampling_symmetries].
    #[arg(long, help_heading = "Diffusion methods")]
    phase_rotations: Option<usize>,
    /// APS: also draw from the complex-conjugated measurement and conjugate back (complex models
    /// of data whose phase is as likely negated) [default: the model's sampling_symmetries].
    #[arg(long, action = clap::ArgAction::Set, help_heading = "Diffusion methods")]
    conjugate_draws: Option<bool>,
    /// APS: also draw from the measurement of the image shifted circularly by DY,DX pixels
    /// (repeat for several, e.g. `--draw-shift 1,2 --draw-shift=-2,1`; `none` for no shifts):
    /// the flow is shift-equivariant only by multiples of 2^levels, so its errors differ and
    /// average out [default: the model's sampling_symmetries].
    #[arg(
        long,
        value_name = "DY,DX",
        allow_hyphen_values = true,
        help_heading = "Diffusion methods"
    )]
    draw_shift: Vec<String>,
}

fn parse_intensity(text: &str) -> Result<IntensityMatch, String> {
    match text {
        "model" => Ok(IntensityMatch::Model),
        "auto" => Ok(IntensityMatch::Auto),
        other => other
            .parse::<f64>()
            .ok()
            .filter(|c| c.is_finite() && *c > 0.0)
            .map(IntensityMatch::Factor)
            .ok_or_else(|| format!("expected model, auto or a number > 0, got '{other}'")),
    }
}

/// Every file `reconstruct` writes into `--out`.
const OUTPUT_FILES: [&str; 10] = [
    "cine.gif",
    "samples.npy",
    "frames.csv",
    "summary.json",
    "recon.npy",
    "recon.png",
    "std.npy",
    "std.png",
    "config.toml",
    "metrics.json",
];

/// The resolved settings written to `config.toml`.
#[derive(Serialize)]
struct Resolved {
    command: &'static str,
    version: &'static str,
    bundle: String,
    method: MethodArg,
    seed: u64,
    frames: usize,
    seconds: f64,
    seconds_per_frame: f64,
    /// Settings of the chosen method only.
    settings: toml::Table,
}

pub fn run(args: ReconstructArgs) -> anyhow::Result<()> {
    let recon_path = args.out.join("recon.npy");
    if recon_path.exists() && !args.force {
        anyhow::bail!(
            "{} already exists; choose another --out or pass --force to replace it",
            recon_path.display()
        );
    }
    if args.method.is_diffusion() && args.model.is_none() {
        anyhow::bail!(
            "--method {} needs --model <prior directory> (e.g. models/cine64-small)",
            method_name(args.method)
        );
    }
    if args.batch == 0 {
        anyhow::bail!("invalid --batch: expected at least 1, got 0");
    }
    if args.samples == 0 {
        anyhow::bail!("invalid --samples: expected at least 1, got 0");
    }
    if args.aps_start.is_some() && !args.method.is_sequence() {
        anyhow::bail!(
            "--aps-start applies to the sequence methods (independent, seqdiff, seqdiff+, aid), not --method {}",
            method_name(args.method)
        );
    }
    if args.method.is_sequence() && args.samples != 1 {
        anyhow::bail!(
            "--samples applies to frame-independent methods; --method {} takes --particles",
            method_name(args.method)
        );
    }
    let bundle = read_bundle(&args.bundle)?;
    let spec = bundle.spec().clone();
    let frames = spec.frames();
    let mut settings = toml::Table::new();
    let start = Instant::now();
    let mut reports = None;
    let mut draws: Option<Vec<Vec<Complex32>>> = None;
    let (recon, std) = if args.method == MethodArg::Aps {
        let estimate = run_aps(&args, &bundle, &mut settings)?;
        draws = Some(estimate.draws);
        (estimate.mean, estimate.std)
    } else if args.method.is_diffusion() {
        let (estimate, frames) = run_diffusion(&args, &bundle, &mut settings)?;
        reports = frames;
        (estimate.mean, estimate.std)
    } else {
        (run_classic(&args, &bundle, &mut settings)?, None)
    };
    let seconds = start.elapsed().as_secs_f64();

    // Only with --force (checked above) and once the new result exists: outputs of an earlier
    // run that this one may not rewrite (std maps, metrics) would otherwise look like its own.
    for name in OUTPUT_FILES {
        let path = args.out.join(name);
        if path.is_file() {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let shape = bundle
        .truth()
        .map(|t| t.shape.clone())
        .unwrap_or_else(|| spec.shape.to_vec());
    if let Some(draws) = &draws {
        let mut draws_shape = vec![draws.len()];
        draws_shape.extend(spec.shape);
        let values: Vec<Complex32> = draws.concat();
        let path = args.out.join("samples.npy");
        if spec.complex {
            npy::write_npy_c64(&path, &draws_shape, &values)?;
        } else {
            let re: Vec<f32> = values.iter().map(|v| v.re).collect();
            npy::write_npy_f32(&path, &draws_shape, &re)?;
        }
    }
    if spec.complex {
        npy::write_npy_c64(&recon_path, &shape, &recon)?;
    } else {
        let re: Vec<f32> = recon.iter().map(|v| v.re).collect();
        npy::write_npy_f32(&recon_path, &shape, &re)?;
    }
    // Complex images are shown as magnitudes, real ones signed (log-compressed echo is in [−1, 1]).
    let shown = if spec.complex {
        magnitude(&recon)
    } else {
        recon.iter().map(|v| v.re).collect()
    };
    write_png(&args.out.join("recon.png"), &shown, spec.shape)?;
    let std_path = args.out.join("std.npy");
    if let Some(std) = &std {
        npy::write_npy_f32(&std_path, &shape, std)?;
        write_png(&args.out.join("std.png"), std, spec.shape)?;
    }
    let resolved = Resolved {
        command: "reconstruct",
        version: env!("CARGO_PKG_VERSION"),
        bundle: args.bundle.display().to_string(),
        method: args.method,
        seed: args.seed,
        frames,
        seconds,
        seconds_per_frame: seconds / frames as f64,
        settings,
    };
    let config_path = args.out.join("config.toml");
    let text = toml::to_string(&resolved).context("serialising config.toml")?;
    std::fs::write(&config_path, text)
        .with_context(|| format!("writing {}", config_path.display()))?;

    let mut per_frame_metrics = None;
    let mut summary = format!(
        "wrote {} ({} on {frames} frame(s), {seconds:.1} s",
        recon_path.display(),
        method_name(args.method)
    );
    if let Some(truth) = bundle.truth() {
        let metrics = if spec.complex {
            sequence_metrics_complex(&truth.values, &recon, spec.shape)?
        } else {
            let (t, r): (Vec<f32>, Vec<f32>) = truth
                .values
                .iter()
                .zip(&recon)
                .map(|(a, b)| (a.re, b.re))
                .unzip();
            sequence_metrics(&t, &r, spec.shape)?
        };
        write_json(
            &args.out.join("metrics.json"),
            &serde_json::json!({
                "convention": if spec.complex {
                    "magnitudes |x|; PSNR and SSIM (7x7 uniform, K1 0.01, K2 0.03) with data range max(truth frame); NRMSE ||x^-x||/||x||, NMSE its square; per frame, then the mean"
                } else {
                    "real values; PSNR and SSIM (7x7 uniform, K1 0.01, K2 0.03) with data range max(truth frame); NRMSE ||x^-x||/||x||, NMSE its square; per frame, then the mean"
                },
                "method": method_name(args.method),
                "seconds_per_frame": seconds / frames as f64,
                "mean": metrics.mean,
                "frames": metrics.frames,
            }),
        )?;
        summary.push_str(&format!(
            "; PSNR {:.2} dB, SSIM {:.4}",
            metrics.mean.psnr, metrics.mean.ssim
        ));
        per_frame_metrics = Some(metrics);
    }
    if let Some(reports) = &reports {
        write_frame_reports(&args.out, reports, per_frame_metrics.as_ref(), seconds)?;
        write_cine(&args.out.join("cine.gif"), &bundle, &recon)?;
    }
    eprintln!("{summary})");
    Ok(())
}

fn method_name(m: MethodArg) -> String {
    m.to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

fn run_classic(
    args: &ReconstructArgs,
    bundle: &Bundle,
    settings: &mut toml::Table,
) -> anyhow::Result<Vec<Complex32>> {
    let kind = match args.method {
        MethodArg::ZeroFilled => ClassicKind::ZeroFilled,
        MethodArg::Cg => ClassicKind::Cg,
        MethodArg::Tv => ClassicKind::Tv,
        MethodArg::Wavelet => ClassicKind::Wavelet,
        MethodArg::Interp => ClassicKind::Interp,
        _ => unreachable!("diffusion methods are handled by run_diffusion"),
    };
    let classic = ClassicSettings {
        lambda: args.lambda,
        lambda_t: args.lambda_t,
        iterations: args.iterations,
    };
    let built = build_classic(kind, &classic, bundle.spec().frames())?;
    insert_resolved(settings, built.resolved);
    Ok(reconstruct_classic(
        bundle,
        built.method.as_ref(),
        built.joint,
    )?)
}

/// Copies resolved method settings into `config.toml`'s table.
fn insert_resolved(settings: &mut toml::Table, resolved: MethodResolved) {
    for (key, value) in resolved {
        let value = match value {
            SettingValue::Int(v) => toml::Value::from(v),
            SettingValue::Float(v) => toml::Value::from(v),
            SettingValue::Text(v) => toml::Value::from(v),
            SettingValue::Bool(v) => toml::Value::from(v),
        };
        settings.insert(key.into(), value);
    }
}

/// `--draw-shift` values: `DY,DX` each, or `none` (no shifts, clearing the model's default).
fn parse_draw_shifts(values: &[String]) -> anyhow::Result<Vec<[i32; 2]>> {
    let mut shifts = Vec::new();
    if values.len() > 1 && values.iter().any(|v| v == "none") {
        anyhow::bail!("--draw-shift none clears the shifts: give it alone");
    }
    for text in values {
        if text == "none" {
            continue;
        }
        let parsed: Vec<i32> = text
            .split(',')
            .map(|p| p.trim().parse::<i32>())
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        match parsed.as_slice() {
            &[dy, dx] => shifts.push([dy, dx]),
            _ => anyhow::bail!("--draw-shift {text}: expected DY,DX (two integers) or none"),
        }
    }
    Ok(shifts)
}

/// Draws of every frame from an APS model (`--model`), their mean and spread.
fn run_aps(
    args: &ReconstructArgs,
    bundle: &Bundle,
    settings: &mut toml::Table,
) -> anyhow::Result<ApsEstimate> {
    let dir = args.model.as_deref().unwrap_or(Path::new(""));
    let device = default_device();
    let sampler = load_aps(dir, &device)
        .with_context(|| format!("loading the APS model {}", dir.display()))?;
    let defaults = &sampler.config().sampling_symmetries;
    let symmetries = SamplingSymmetries {
        mirror: args.mirrored_draws.unwrap_or(defaults.mirror),
        phase_rotations: args.phase_rotations.unwrap_or(defaults.phase_rotations),
        conjugate: args.conjugate_draws.unwrap_or(defaults.conjugate),
        shifts: if args.draw_shift.is_empty() {
            defaults.shifts.clone()
        } else {
            parse_draw_shifts(&args.draw_shift)?
        },
    };
    let orbit = symmetries
        .orbit()
        .context("--phase-rotations / --draw-shift")?;
    let sampler = sampler
        .with_symmetries(orbit)
        .context("--phase-rotations / --conjugate-draws")?;
    let family = &sampler.config().family;
    settings.insert("model".into(), dir.display().to_string().into());
    settings.insert("samples".into(), (args.samples as i64).into());
    settings.insert("mirrored_draws".into(), symmetries.mirror.into());
    settings.insert(
        "phase_rotations".into(),
        (symmetries.phase_rotations as i64).into(),
    );
    settings.insert("conjugate_draws".into(), symmetries.conjugate.into());
    let shifts: Vec<toml::Value> = symmetries
        .shifts
        .iter()
        .map(|&[dy, dx]| toml::Value::Array(vec![(dy as i64).into(), (dx as i64).into()]))
        .collect();
    settings.insert("draw_shifts".into(), toml::Value::Array(shifts));
    settings.insert(
        "trained_for".into(),
        format!(
            "{} {} {}x, noise σ {}",
            family.operator.name(),
            family.mask.name(),
            family.acceleration,
            family.noise_sigma
        )
        .into(),
    );
    let model_norm = sampler.config().normalization;
    let factor = intensity_factor(bundle, model_norm, args.intensity)?;
    settings.insert("intensity_factor".into(), factor.into());
    let normalization = stretched(model_norm, factor)?;
    let frames = bundle.spec().frames();
    let mut progress = Progress::new("aps", frames as u64);
    let estimate = sampler.estimate(
        bundle,
        normalization,
        args.samples,
        4,
        args.seed,
        &mut |done, _| progress.update(done as u64, ""),
    )?;
    progress.finish();
    let per_sample =
        estimate.seconds_per_frame.iter().sum::<f64>() / (frames * args.samples) as f64;
    settings.insert("seconds_per_sample".into(), per_sample.into());
    Ok(estimate)
}

fn run_diffusion(
    args: &ReconstructArgs,
    bundle: &Bundle,
    settings: &mut toml::Table,
) -> anyhow::Result<(PosteriorEstimate, Option<Vec<FrameReport>>)> {
    let model_dir = args.model.as_deref().unwrap_or(Path::new(""));
    if args.steps == 0 {
        anyhow::bail!("invalid --steps: expected at least 1, got 0");
    }
    let device = default_device();
    // AID's model directory holds the whole network; its U-Net is the per-frame prior.
    let (denoiser, mut aid_net) = if args.method == MethodArg::Aid {
        let (aid_config, net) = load_aid(model_dir, &device)
            .with_context(|| format!("loading the AID model {}", model_dir.display()))?;
        let unet = UNetDenoiser::new(aid_config.diffusion.clone(), net.unet().clone(), &device)?;
        (unet, Some(net))
    } else {
        (load_denoiser(model_dir, &device)?, None)
    };
    let config = denoiser.config().clone();
    let schedule = config.noise_schedule()?;
    let timesteps = schedule.timesteps(args.steps, args.spacing.into())?;
    let clip_x0 = (!args.no_clip).then_some(args.clip_x0);
    let clipped = clip_x0
        .map(|limit| ClippedDenoiser::new(&denoiser, &schedule, limit))
        .transpose()?;
    let prior: &dyn Denoiser = match &clipped {
        Some(c) => c,
        None => &denoiser,
    };
    let kind = match args.method {
        MethodArg::Dps => SamplerArg::Dps,
        MethodArg::DdimDc => SamplerArg::DdimDc,
        MethodArg::Dds => SamplerArg::Dds,
        MethodArg::Diffpir => SamplerArg::Diffpir,
        _ => args.sampler,
    };
    let kind = SamplerKind::from(kind);
    let knobs = SamplerSettings {
        zeta: args.zeta,
        dc_steps: args.dc_steps,
        dc_step_size: args.dc_step_size,
        cg_iterations: args.cg_iterations,
        eta: args.eta,
        diffpir_lambda: args.diffpir_lambda,
        diffpir_zeta: args.diffpir_zeta,
        sigma_n: args.sigma_n,
    };
    let built = build_sampler(kind, &knobs, bundle.spec().noise_sigma)?;
    insert_resolved(settings, built.resolved);
    let sampler = built.sampler;
    if args.method.is_sequence() {
        settings.insert("sampler".into(), sampler.name().into());
    }
    let factor = intensity_factor(bundle, config.normalization, args.intensity)?;
    let normalization = stretched(config.normalization, factor)?;
    settings.insert("model".into(), model_dir.display().to_string().into());
    settings.insert("steps".into(), (args.steps as i64).into());
    settings.insert(
        "spacing".into(),
        args.spacing
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
            .into(),
    );
    settings.insert(
        "timesteps".into(),
        toml::Value::Array(timesteps.iter().map(|&t| (t as i64).into()).collect()),
    );
    settings.insert(
        "clip_x0".into(),
        clip_x0.map_or(toml::Value::from("off"), |c| (c as f64).into()),
    );
    settings.insert(
        "intensity".into(),
        match args.intensity {
            IntensityMatch::Model => "model".to_string(),
            IntensityMatch::Auto => "auto".to_string(),
            IntensityMatch::Factor(c) => c.to_string(),
        }
        .into(),
    );
    settings.insert("intensity_factor".into(), factor.into());
    settings.insert(
        "normalization_scale".into(),
        (normalization.scale as f64).into(),
    );
    settings.insert(
        "normalization_offset".into(),
        (normalization.offset as f64).into(),
    );
    settings.insert("batch".into(), (args.batch as i64).into());
    settings.insert("samples".into(), (args.samples as i64).into());

    let frames = bundle.spec().frames();
    let p = Prior {
        denoiser: prior,
        schedule: &schedule,
        timesteps: &timesteps,
    };
    if args.method.is_sequence() {
        let options = SequenceOptions {
            warm_steps: args.warm_start,
            particles: args.particles,
            cold_every: args.cold_every,
            adaptive_threshold: args.adaptive_threshold,
            warm_level: args.warm_start_level,
        };
        options.validate()?;
        settings.insert("warm_start".into(), (options.warm_steps as i64).into());
        settings.insert("particles".into(), (options.particles as i64).into());
        if let Some(n) = options.cold_every {
            settings.insert("cold_every".into(), (n as i64).into());
        }
        if let Some(r) = options.adaptive_threshold {
            settings.insert("adaptive_threshold".into(), r.into());
        }
        if let Some(level) = options.warm_level {
            settings.insert("warm_start_level".into(), (level as i64).into());
        }
        let aps_start = match &args.aps_start {
            Some(dir) => {
                settings.insert("aps_start".into(), dir.display().to_string().into());
                let aps = load_aps(dir, &device)
                    .with_context(|| format!("loading the APS model {}", dir.display()))?;
                Some((dir, aps))
            }
            None => None,
        };
        let predictor = match (&args.transition, args.method) {
            (Some(dir), MethodArg::SeqdiffPlus) => {
                settings.insert("transition".into(), dir.display().to_string().into());
                Some(load_transition(dir, &device)?)
            }
            (None, MethodArg::SeqdiffPlus) => {
                anyhow::bail!("--method seqdiff+ needs --transition DIR (a model from `cinediff train-transition`)")
            }
            (Some(_), _) => anyhow::bail!("--transition is only used by --method seqdiff+"),
            (None, _) => None,
        };
        let mut strategy: Box<dyn SequenceStrategy + '_> = match (args.method, &predictor) {
            (MethodArg::Seqdiff, _) => Box::new(SeqDiff),
            (MethodArg::Aid, _) => Box::new(Aid::new(
                aid_net
                    .take()
                    .ok_or_else(|| anyhow::anyhow!("AID network not loaded"))?,
                clip_x0.map(|limit| (schedule.clone(), limit)),
                &device,
            )?),
            (MethodArg::SeqdiffPlus, Some(predictor)) => Box::new(SeqDiffPlus::new(
                predictor,
                config.normalization,
                prior.image_shape().map_or(0, |s| s[0]),
            )?),
            _ => Box::new(Independent),
        };
        if let Some((dir, aps)) = &aps_start {
            strategy = Box::new(
                ApsStart::new(strategy, aps, bundle, normalization, args.seed)
                    .with_context(|| format!("--aps-start {}", dir.display()))?,
            );
        }
        let mut progress = Progress::new(&method_name(args.method), frames as u64);
        let started = Instant::now();
        let result = run_sequence(
            bundle,
            sampler.as_ref(),
            p,
            normalization,
            strategy.as_mut(),
            &options,
            args.seed,
            &mut |frame, info| {
                if info.done == info.total {
                    let fps = (frame + 1) as f64 / started.elapsed().as_secs_f64();
                    progress.update((frame + 1) as u64, &format!("{fps:.2} frames/s"));
                }
            },
        )?;
        progress.finish();
        let estimate = PosteriorEstimate {
            mean: result.mean,
            std: result.std,
            samples: args.particles,
        };
        return Ok((estimate, Some(result.frames)));
    }
    let batch = args.batch;
    let per_sample = frames.div_ceil(batch) as u64 * timesteps.len() as u64;
    let mut progress = Progress::new(&method_name(args.method), per_sample * args.samples as u64);
    let steps = timesteps.len() as u64;
    let estimate = posterior_estimate(
        bundle,
        sampler.as_ref(),
        p,
        normalization,
        batch,
        args.samples,
        args.seed,
        &mut |sample, frames_done, info| {
            let chunk = (frames_done / batch) as u64;
            progress.update(
                sample as u64 * per_sample + chunk * steps + info.done as u64,
                &format!("sample {} frames {frames_done}..", sample + 1),
            )
        },
    )?;
    progress.finish();
    Ok((estimate, None))
}

/// `frames.csv` (per frame: steps, NFEs, seconds, residuals, PSNR/SSIM with a truth) and
/// `summary.json` (totals, means, frames per second) of a sequence reconstruction.
fn write_frame_reports(
    out: &Path,
    reports: &[FrameReport],
    metrics: Option<&SequenceMetrics>,
    seconds: f64,
) -> anyhow::Result<()> {
    let mut csv = String::from("frame,cold,steps,nfe,seconds,warm_residual,residual,psnr,ssim\n");
    for r in reports {
        let m = metrics.and_then(|m| m.frames.get(r.frame));
        csv.push_str(&format!(
            "{},{},{},{},{:.4},{},{:.6},{},{}\n",
            r.frame,
            r.cold,
            r.steps,
            r.nfe,
            r.seconds,
            r.warm_residual.map_or(String::new(), |v| format!("{v:.6}")),
            r.residual,
            m.map_or(String::new(), |m| format!("{:.4}", m.psnr)),
            m.map_or(String::new(), |m| format!("{:.6}", m.ssim)),
        ));
    }
    let path = out.join("frames.csv");
    std::fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))?;
    let frames = reports.len();
    let total_steps: usize = reports.iter().map(|r| r.steps).sum();
    let total_nfe: usize = reports.iter().map(|r| r.nfe).sum();
    let after_first: Vec<&FrameReport> = reports.iter().skip(1).collect();
    let mean_steps_after_first = if after_first.is_empty() {
        0.0
    } else {
        after_first.iter().map(|r| r.steps as f64).sum::<f64>() / after_first.len() as f64
    };
    write_json(
        &out.join("summary.json"),
        &serde_json::json!({
            "frames": frames,
            "seconds": seconds,
            "frames_per_second": frames as f64 / seconds,
            "total_steps": total_steps,
            "total_nfe": total_nfe,
            "steps_first_frame": reports.first().map(|r| r.steps),
            "mean_steps_after_first_frame": mean_steps_after_first,
            "cold_frames": reports.iter().filter(|r| r.cold).count(),
            "mean_psnr": metrics.map(|m| m.mean.psnr),
            "mean_ssim": metrics.map(|m| m.mean.ssim),
            "mean_psnr_after_first_frame": metrics.and_then(|m| {
                (m.frames.len() > 1).then(|| {
                    m.frames[1..].iter().map(|f| f.psnr).sum::<f64>() / (m.frames.len() - 1) as f64
                })
            }),
        }),
    )?;
    Ok(())
}

/// `cine.gif`: truth (if any), zero-filled, reconstruction and 4× amplified |error| side by side,
/// images windowed to the maximum of the truth (else of the reconstruction), at 10 frames/s.
fn write_cine(path: &Path, bundle: &Bundle, recon: &[Complex32]) -> anyhow::Result<()> {
    if bundle.spec().operator == cinediff::bundle::OperatorKind::UsLines {
        return write_sector_cine(path, bundle, recon);
    }
    let shape = bundle.spec().shape;
    let zero_filled = magnitude(&reconstruct_classic(bundle, &ZeroFilled, false)?);
    let recon_mag = magnitude(recon);
    let truth = bundle.truth().map(|t| magnitude(&t.values));
    let peak = |v: &[f32]| v.iter().copied().fold(0.0f32, f32::max);
    let white = truth.as_deref().map_or_else(|| peak(&recon_mag), peak);
    let mut panels = Vec::with_capacity(4);
    if let Some(t) = &truth {
        panels.push(Panel {
            values: t.clone(),
            white,
        });
    }
    panels.push(Panel {
        values: zero_filled,
        white,
    });
    if let Some(t) = &truth {
        let error = recon_mag
            .iter()
            .zip(t)
            .map(|(a, b)| (a - b).abs())
            .collect();
        panels.push(Panel {
            values: recon_mag,
            white,
        });
        panels.push(Panel {
            values: error,
            white: white / 4.0,
        });
    } else {
        panels.push(Panel {
            values: recon_mag,
            white,
        });
    }
    write_cine_gif(path, &panels, shape, 10.0)?;
    Ok(())
}

/// `cine.gif` for ultrasound scan-line bundles: the beam-domain frames scan-converted to the
/// default 75° sector — truth (if any), the acquired lines (missing lines black), reconstruction
/// and 4× amplified |error| — windowed to the range of the truth (else of the reconstruction).
fn write_sector_cine(path: &Path, bundle: &Bundle, recon: &[Complex32]) -> anyhow::Result<()> {
    use cinediff::data::echo::{sector_frames, SectorGeometry};
    let shape @ [_, d, l] = bundle.spec().shape;
    let geometry = SectorGeometry::default();
    let real = |v: &[Complex32]| -> Vec<f32> { v.iter().map(|c| c.re).collect() };
    let recon = real(recon);
    let truth = bundle.truth().map(|t| real(&t.values));
    let reference = truth.as_deref().unwrap_or(&recon);
    let lo = reference.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = reference.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let span = (hi - lo).max(f32::MIN_POSITIVE);
    let mut measured = Vec::with_capacity(recon.len());
    for (t, op) in bundle.frame_operators()?.iter().enumerate() {
        let kept = op.forward(&vec![Complex32::new(1.0, 0.0); d * l])?;
        let y = bundle.frame_y(t);
        measured.extend(
            kept.iter()
                .zip(y)
                .map(|(m, v)| if m.re > 0.5 { v.re } else { lo }),
        );
    }
    let mut frames = vec![&measured, &recon];
    frames.splice(0..0, truth.as_ref());
    let mut panels = Vec::with_capacity(4);
    let mut sector_shape = shape;
    for values in frames {
        let shifted: Vec<f32> = values.iter().map(|v| v - lo).collect();
        let (values, s) = sector_frames(&shifted, shape, &geometry, 0.0)?;
        sector_shape = s;
        panels.push(Panel {
            values,
            white: span,
        });
    }
    if let Some(t) = &truth {
        let error: Vec<f32> = recon.iter().zip(t).map(|(a, b)| (a - b).abs()).collect();
        let (values, _) = sector_frames(&error, shape, &geometry, 0.0)?;
        panels.push(Panel {
            values,
            white: span / 4.0,
        });
    }
    write_cine_gif(path, &panels, sector_shape, 10.0)?;
    Ok(())
}

/// A grid of the frames of `[t, h, w]` values, black..white = [min(0, smallest), largest].
fn write_png(path: &Path, values: &[f32], [t, h, w]: [usize; 3]) -> anyhow::Result<()> {
    let tiles: Vec<Vec<f32>> = values.chunks_exact(h * w).map(|c| c.to_vec()).collect();
    png::write_grid(path, &tiles, h, w, t.min(8), png::Window::of(values))?;
    Ok(())
}
