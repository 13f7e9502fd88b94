//! `cinediff train`: fit a U-Net prior to images in a .npy file.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use cinediff::data::dataset::{magnitudes, training_images};
use cinediff::data::Normalization;
use cinediff::diffusion::schedule::ScheduleKind;
use cinediff::io::model_dir::{self, write_json};
use cinediff::io::npy::{read_npy, NpyArray};
use cinediff::nn::device::default_device;
use cinediff::nn::unet_denoiser::DiffusionModelConfig;
use cinediff::train::{Flips, Preset, Trainer};
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::progress::Progress;

/// The β schedule to train with.
#[derive(Clone, Copy, Debug, ValueEnum, Serialize)]
pub enum ScheduleArg {
    /// Linear β from 1e-4 to 0.02 (DDPM).
    Linear,
    /// Cosine ᾱ with s = 0.008 (Nichol & Dhariwal).
    Cosine,
}

/// Options of `cinediff train`.
#[derive(Args)]
#[command(
    after_help = "Example:\n  cinediff phantom --complex --count 64 --frames 16 --out data.npy\n  \
cinediff train --data data.npy --preset small --out models/my_prior/\n\n\
Data: .npy float32 [N, H, W] or [N, T, H, W] (every frame is one sample), or complex64 (trained as\n\
2 channels, real and imaginary). Images must be square and their side divisible by 2^(levels-1).\n\
Writes OUT/config.json, OUT/model.safetensors (EMA weights), OUT/train_log.csv, OUT/train_config.json\n\
and OUT/checkpoint/ (resume with --resume)."
)]
pub struct TrainArgs {
    /// Training images (.npy).
    #[arg(long)]
    data: PathBuf,
    /// Network and optimiser preset: tiny (tests), small (64×64 default), base (larger).
    #[arg(long, default_value = "small")]
    preset: Preset,
    /// JSON file with a U-Net architecture (UNetConfig fields) replacing the preset's network;
    /// in_channels and image_size are always taken from the data.
    #[arg(long)]
    unet: Option<PathBuf>,
    /// Output model directory.
    #[arg(long)]
    out: PathBuf,
    /// Optimizer steps in all (default: the preset's).
    #[arg(long)]
    steps: Option<usize>,
    /// Images per step (default: the preset's).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate (default: the preset's).
    #[arg(long)]
    lr: Option<f64>,
    /// EMA decay of the sampling weights.
    #[arg(long)]
    ema_decay: Option<f64>,
    /// Random flips for augmentation: none, horizontal (default) or both.
    #[arg(long)]
    flips: Option<Flips>,
    /// Noise schedule.
    #[arg(long, value_enum, default_value_t = ScheduleArg::Linear)]
    schedule: ScheduleArg,
    /// Seed of every random draw in training.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write a checkpoint every N steps (and always at the end).
    #[arg(long, default_value_t = 200)]
    checkpoint_every: usize,
    /// Continue from OUT/checkpoint.
    #[arg(long)]
    resume: bool,
    /// Replace a model already in OUT (otherwise refused).
    #[arg(long)]
    force: bool,
}

#[derive(Serialize)]
struct Resolved<'a> {
    command: &'static str,
    version: &'static str,
    data: &'a std::path::Path,
    data_shape: &'a [usize],
    data_dtype: &'static str,
    preset: Preset,
    model: &'a DiffusionModelConfig,
    train: &'a cinediff::train::TrainConfig,
    parameters: usize,
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    if args.checkpoint_every == 0 {
        anyhow::bail!("invalid --checkpoint-every: expected > 0, got 0");
    }
    if args.resume && args.force {
        anyhow::bail!("--resume and --force contradict each other: choose one");
    }
    let array = read_npy(&args.data)?;
    let (real, complex) = match &array {
        NpyArray::Real { data, .. } => (Some(data.as_slice()), None),
        NpyArray::Complex { data, .. } => (None, Some(data.as_slice())),
    };
    let set = training_images(array.shape(), real, complex)
        .with_context(|| format!("{}", args.data.display()))?;
    let [n, channels, size, _] = set.images.shape();

    let existing = args.out.join(model_dir::CONFIG_FILE).exists();
    if existing && !args.resume && !args.force {
        anyhow::bail!(
            "{} already holds a model; pass --resume to continue it or --force to replace it",
            args.out.display()
        );
    }
    let mut train_config = args.preset.train_config();
    if let Some(v) = args.steps {
        train_config.steps = v;
    }
    if let Some(v) = args.batch_size {
        train_config.batch_size = v;
    }
    if let Some(v) = args.lr {
        train_config.learning_rate = v;
    }
    if let Some(v) = args.ema_decay {
        train_config.ema_decay = v;
    }
    if let Some(v) = args.flips {
        train_config.flips = v;
    }
    train_config.seed = args.seed;
    train_config.validate()?;

    let device = default_device();
    // Weight initialisation draws from the backend's RNG: seed it so the same --seed gives the same model.
    device.seed(args.seed);
    let (model_config, trainer) = if args.resume {
        if !model_dir::has_checkpoint(&args.out) {
            anyhow::bail!(
                "--resume: {} has no checkpoint/state.json",
                args.out.display()
            );
        }
        let config = model_dir::read_model_config(&args.out)?;
        if config.unet.in_channels != channels || config.unet.image_size != size {
            anyhow::bail!(
                "--resume: the model in {} expects {} channel(s) of {}×{}, the data has {channels} of {size}×{size}",
                args.out.display(),
                config.unet.in_channels,
                config.unet.image_size,
                config.unet.image_size
            );
        }
        let fresh = Trainer::new(
            train_config,
            config.noise_schedule()?,
            config.unet.init(&device)?,
            &device,
        )?;
        let trainer = model_dir::resume_trainer(&args.out, &config, fresh, &device)?;
        (config, trainer)
    } else {
        let unet = match &args.unet {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let mut u: cinediff::nn::UNetConfig = serde_json::from_str(&text)
                    .with_context(|| format!("{}: invalid U-Net config", path.display()))?;
                u.in_channels = channels;
                u.image_size = size;
                u
            }
            None => args.preset.unet(channels, size),
        };
        let config = DiffusionModelConfig {
            unet,
            schedule: match args.schedule {
                ScheduleArg::Linear => ScheduleKind::LINEAR,
                ScheduleArg::Cosine => ScheduleKind::COSINE,
            },
            num_train_timesteps: 1000,
            normalization: Normalization::fit(&magnitudes(&set.images), set.complex)?,
        };
        config.validate()?;
        let net = config.unet.init(&device)?;
        let trainer = Trainer::new(train_config.clone(), config.noise_schedule()?, net, &device)?;
        (config, trainer)
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;

    let mut images = set.images;
    model_config.normalization.normalize(images.data_mut());
    let parameters = burn::module::Module::num_params(trainer.model());
    write_json(
        &args.out.join("train_config.json"),
        &Resolved {
            command: "train",
            version: env!("CARGO_PKG_VERSION"),
            data: &args.data,
            data_shape: array.shape(),
            data_dtype: array.dtype(),
            preset: args.preset,
            model: &model_config,
            train: trainer.config(),
            parameters,
        },
    )?;
    eprintln!(
        "training {parameters} parameters on {n} images of {channels}×{size}×{size}, steps {}..{}",
        trainer.step_count(),
        trainer.config().steps
    );

    let log_path = args.out.join("train_log.csv");
    let append = args.resume && log_path.exists();
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    if !append {
        writeln!(log, "step,loss,learning_rate,elapsed_s")?;
    }
    let total = trainer.config().steps;
    let mut trainer = trainer;
    let mut progress = Progress::new("train", total as u64);
    let start = Instant::now();
    let mut smoothed: Option<f32> = None;
    while !trainer.finished() {
        let report = trainer.train_step(&images)?;
        let elapsed = start.elapsed().as_secs_f64();
        writeln!(
            log,
            "{},{:.6},{:.3e},{elapsed:.2}",
            report.step, report.loss, report.learning_rate
        )?;
        let s = smoothed.map_or(report.loss, |s| 0.95 * s + 0.05 * report.loss);
        smoothed = Some(s);
        progress.update(report.step as u64, &format!("loss {s:.4}"));
        if report.step % args.checkpoint_every == 0 || trainer.finished() {
            log.flush()?;
            model_dir::save_checkpoint(&args.out, &model_config, &trainer)?;
        }
    }
    progress.finish();
    eprintln!(
        "done: {} steps, smoothed loss {:.4}; model in {}",
        trainer.step_count(),
        smoothed.unwrap_or(f32::NAN),
        args.out.display()
    );
    Ok(())
}
