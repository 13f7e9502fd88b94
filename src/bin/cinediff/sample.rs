//! `cinediff sample`: unconditional samples from a trained prior.

use std::path::PathBuf;
use std::time::Instant;

use cinediff::data::dataset::{magnitudes, to_complex};
use cinediff::diffusion::samplers::{Ddim, Ddpm, DdpmVariance, DpmSolverPlusPlus, Sampler, Start};
use cinediff::diffusion::schedule::TimestepSpacing;
use cinediff::diffusion::{ClippedDenoiser, Denoiser};
use cinediff::io::model_dir::{load_denoiser, write_json};
use cinediff::io::{npy, png};
use cinediff::nn::device::default_device;
use cinediff::rng::seeded;
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::progress::Progress;

/// Which reverse-diffusion solver draws the samples.
#[derive(Clone, Copy, Debug, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SamplerArg {
    /// Ancestral DDPM (stochastic; needs many steps, e.g. 250–1000).
    Ddpm,
    /// DDIM (deterministic at --eta 0; good from about 50 steps).
    Ddim,
    /// DPM-Solver++ 2M (deterministic; good from about 20 steps).
    #[value(name = "dpm-solver++", alias = "dpmpp")]
    DpmSolverPp,
}

/// How the reverse steps are spread over the training levels.
#[derive(Clone, Copy, Debug, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpacingArg {
    /// Evenly in t from T−1 to 0 (diffusers' linspace).
    Linspace,
    /// t = k·(T/n) (DDIM paper; never reaches T−1).
    Leading,
    /// Evenly in t, starting at T−1 (diffusers' trailing).
    Trailing,
    /// Evenly in log-SNR λ (best for dpm-solver++).
    LogSnr,
}

impl From<SpacingArg> for TimestepSpacing {
    fn from(a: SpacingArg) -> Self {
        match a {
            SpacingArg::Linspace => TimestepSpacing::Linspace,
            SpacingArg::Leading => TimestepSpacing::Leading,
            SpacingArg::Trailing => TimestepSpacing::Trailing,
            SpacingArg::LogSnr => TimestepSpacing::LogSnr,
        }
    }
}

/// Options of `cinediff sample`.
#[derive(Args)]
#[command(
    after_help = "Example:\n  cinediff sample --model models/cine64 --count 8 --sampler ddim --steps 50 --seed 0 --out s.npy\n\n\
Writes s.npy (float32 [count, H, W], or complex64 for 2-channel models), s.png (a grid of\n\
magnitudes for complex samples, of signed values for real ones) and s.config.json (resolved\n\
settings and seed). The same seed gives byte-identical output."
)]
pub struct SampleArgs {
    /// Model directory (config.json + model.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// Number of samples.
    #[arg(long, default_value_t = 4)]
    count: usize,
    /// Solver.
    #[arg(long, value_enum, default_value_t = SamplerArg::Ddim)]
    sampler: SamplerArg,
    /// Reverse steps (1 to the number of training levels).
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// DDIM stochasticity η in [0, 1] (0: deterministic, 1: DDPM-like).
    #[arg(long, default_value_t = 0.0)]
    eta: f32,
    /// How the steps are spread over the training levels [default: log-snr for dpm-solver++,
    /// linspace otherwise].
    #[arg(long, value_enum)]
    spacing: Option<SpacingArg>,
    /// Clip the denoised estimate x̂₀ to [−LIMIT, LIMIT] in the model's normalised units (training
    /// data span [−1, 1] there) and re-derive ε̂ from it, as diffusers' `clip_sample` (on by default
    /// there too): at high noise x̂₀ = (x_t − σε̂)/α amplifies small errors of ε̂ up to 150×.
    #[arg(long, value_name = "LIMIT", default_value_t = 1.0)]
    clip_x0: f32,
    /// Do not clip x̂₀.
    #[arg(long)]
    no_clip: bool,
    /// Seed of the initial noise and every stochastic step.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output .npy path.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Serialize)]
struct Resolved<'a> {
    command: &'static str,
    version: &'static str,
    model: &'a std::path::Path,
    count: usize,
    sampler: SamplerArg,
    steps: usize,
    eta: f32,
    clip_x0: Option<f32>,
    spacing: SpacingArg,
    timesteps: &'a [usize],
    seed: u64,
    shape: Vec<usize>,
    dtype: &'static str,
    seconds: f64,
}

/// Most samples in one call (a cap before allocating).
const MAX_COUNT: usize = 4096;

pub fn run(args: SampleArgs) -> anyhow::Result<()> {
    if args.count == 0 || args.count > MAX_COUNT {
        anyhow::bail!(
            "invalid --count: expected 1..={MAX_COUNT}, got {}",
            args.count
        );
    }
    if args.steps == 0 {
        anyhow::bail!("invalid --steps: expected at least 1, got 0");
    }
    crate::check_output_path(&args.out)?;
    let sampler: Box<dyn Sampler> = match args.sampler {
        SamplerArg::Ddpm => Box::new(Ddpm {
            variance: DdpmVariance::Posterior,
        }),
        SamplerArg::Ddim => Box::new(Ddim::new(args.eta)?),
        SamplerArg::DpmSolverPp => Box::new(DpmSolverPlusPlus::default()),
    };
    let device = default_device();
    let denoiser = load_denoiser(&args.model, &device)?;
    let config = denoiser.config().clone();
    let schedule = config.noise_schedule()?;
    let spacing_arg = args.spacing.unwrap_or(match args.sampler {
        SamplerArg::DpmSolverPp => SpacingArg::LogSnr,
        _ => SpacingArg::Linspace,
    });
    let timesteps = schedule.timesteps(args.steps, spacing_arg.into())?;
    let (c, s) = (config.unet.in_channels, config.unet.image_size);
    let mut rng = seeded(args.seed);
    let mut progress = Progress::new("sample", timesteps.len() as u64);
    let start = Instant::now();
    let clip_x0 = (!args.no_clip).then_some(args.clip_x0);
    let clipped = clip_x0
        .map(|limit| ClippedDenoiser::new(&denoiser, &schedule, limit))
        .transpose()?;
    let prior: &dyn Denoiser = match &clipped {
        Some(c) => c,
        None => &denoiser,
    };
    let mut samples = sampler.sample(
        prior,
        &schedule,
        &timesteps,
        Start::Cold {
            shape: [args.count, c, s, s],
        },
        &mut rng,
        &mut |info| progress.update(info.done as u64, ""),
    )?;
    progress.finish();
    let seconds = start.elapsed().as_secs_f64();
    config.normalization.denormalize(samples.data_mut());
    samples.ensure_finite("samples")?;
    let shape = vec![args.count, s, s];
    if config.is_complex() {
        npy::write_npy_c64(&args.out, &shape, &to_complex(&samples))?;
    } else {
        npy::write_npy_f32(&args.out, &shape, samples.data())?;
    }
    // Complex samples are shown as magnitudes; real ones signed (an echo prior's blood is −1), over
    // the data range the normalisation maps to [−1, 1].
    let norm = config.normalization;
    let (shown, window) = if config.is_complex() {
        (
            magnitudes(&samples),
            png::Window::up_to(norm.offset + norm.scale),
        )
    } else {
        let signed = png::Window::new(norm.offset - norm.scale, norm.offset + norm.scale)
            .unwrap_or_else(|_| png::Window::of(samples.data()));
        (samples.data().to_vec(), signed)
    };
    let tiles: Vec<Vec<f32>> = shown.chunks_exact(s * s).map(|t| t.to_vec()).collect();
    png::write_grid(
        &crate::sidecar_path(&args.out, "png"),
        &tiles,
        s,
        s,
        8,
        window,
    )?;
    write_json(
        &crate::sidecar_path(&args.out, "config.json"),
        &Resolved {
            command: "sample",
            version: env!("CARGO_PKG_VERSION"),
            model: &args.model,
            count: args.count,
            sampler: args.sampler,
            steps: args.steps,
            eta: args.eta,
            clip_x0,
            spacing: spacing_arg,
            timesteps: &timesteps,
            seed: args.seed,
            shape,
            dtype: if config.is_complex() {
                "complex64"
            } else {
                "float32"
            },
            seconds,
        },
    )?;
    eprintln!(
        "wrote {} ({} samples, {} steps of {}, {seconds:.1} s)",
        args.out.display(),
        args.count,
        timesteps.len(),
        sampler.name()
    );
    Ok(())
}
