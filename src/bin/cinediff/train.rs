//! `cinediff train`: fit a U-Net prior to images in a .npy file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use cinediff::data::dataset::{magnitudes, training_images, TrainingImages};
use cinediff::data::Normalization;
use cinediff::diffusion::schedule::ScheduleKind;
use cinediff::image::ImageBatch;
use cinediff::io::model_dir::{self, write_json};
use cinediff::io::npy::{read_npy, NpyArray};
use cinediff::nn::device::default_device;
use cinediff::nn::unet_denoiser::DiffusionModelConfig;
use cinediff::train::{Flips, Preset, StepReport, Trainer};
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
    #[arg(long)]
    preset: Option<Preset>,
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
    #[arg(long, value_enum)]
    schedule: Option<ScheduleArg>,
    /// Seed of every random draw in training [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Write a checkpoint every N steps (and always at the end).
    #[arg(long, default_value_t = 200)]
    checkpoint_every: usize,
    #[command(flatten)]
    run: RunControl,
    /// Start from the weights of a trained model directory (fine-tuning): its architecture,
    /// schedule and intensity normalisation are kept; optimiser, EMA and step count start afresh.
    #[arg(long, value_name = "MODEL_DIR", conflicts_with_all = ["resume", "unet", "schedule"])]
    init_from: Option<PathBuf>,
}

#[derive(Serialize)]
struct Resolved<'a> {
    command: &'static str,
    version: &'static str,
    data: &'a std::path::Path,
    data_shape: &'a [usize],
    data_dtype: &'static str,
    preset: Option<Preset>,
    init_from: Option<&'a std::path::Path>,
    model: &'a DiffusionModelConfig,
    train: &'a cinediff::train::TrainConfig,
    parameters: usize,
}

/// The training data every training command reads: the `.npy` array (for its shape and dtype in
/// the resolved config) and its images (`what`: "images" or "sequences", for the error message).
pub(crate) fn read_training_set(
    path: &Path,
    what: &str,
) -> anyhow::Result<(NpyArray, TrainingImages)> {
    let array = read_npy(path)?;
    let Some((real, complex)) = array.float_views() else {
        anyhow::bail!(
            "{}: training {what} must be float32 or complex64, got uint8",
            path.display()
        );
    };
    let set = training_images(array.shape(), real, complex)
        .with_context(|| format!("{}", path.display()))?;
    Ok((array, set))
}

/// How every training command continues or replaces a run in OUT.
#[derive(clap::Args, Clone, Copy, Debug)]
pub(crate) struct RunControl {
    /// Continue from OUT/checkpoint (only --steps and --restart-lr may change).
    #[arg(long)]
    pub resume: bool,
    /// With --resume: restart the cosine decay at this learning rate at the resumed step (a warm
    /// restart) instead of continuing from the rate reached; for a run that ended on its floor
    /// while still improving.
    #[arg(long, value_name = "LR")]
    pub restart_lr: Option<f64>,
    /// Replace a model already in OUT (otherwise refused).
    #[arg(long)]
    pub force: bool,
}

/// The checks every training command makes on its run options before any work: a positive
/// --checkpoint-every, not both --resume and --force, an existing model in `out` only replaced with
/// --force, a checkpoint to resume from with --resume, and --restart-lr only with --resume.
pub(crate) fn check_run_options(
    out: &Path,
    checkpoint_every: usize,
    run: &RunControl,
) -> anyhow::Result<()> {
    let RunControl {
        resume,
        force,
        restart_lr,
    } = *run;
    if checkpoint_every == 0 {
        anyhow::bail!("invalid --checkpoint-every: expected > 0, got 0");
    }
    if restart_lr.is_some() && !resume {
        anyhow::bail!(
            "--restart-lr restarts a resumed run's learning-rate decay: it needs --resume"
        );
    }
    if resume && force {
        anyhow::bail!("--resume and --force contradict each other: choose one");
    }
    if out.join(model_dir::CONFIG_FILE).exists() && !resume && !force {
        anyhow::bail!(
            "{} already holds a model; pass --resume to continue it or --force to replace it",
            out.display()
        );
    }
    if resume && !model_dir::has_checkpoint(out) {
        anyhow::bail!("--resume: {} has no checkpoint/state.json", out.display());
    }
    Ok(())
}

/// The optimisation settings a --resume continues with: the saved ones, extended to `steps` if
/// given (the learning-rate decay restarting from the rate reached, never jumping back up).
pub(crate) fn resumed_train_config(
    out: &Path,
    steps: Option<usize>,
    restart_lr: Option<f64>,
) -> anyhow::Result<cinediff::train::TrainConfig> {
    let state = model_dir::read_train_state(out)?;
    let train =
        state
            .train
            .extended_from(steps.unwrap_or(state.train.steps), state.step, restart_lr);
    train.validate()?;
    Ok(train)
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    check_run_options(&args.out, args.checkpoint_every, &args.run)?;
    let (array, set) = read_training_set(&args.data, "images")?;
    let [n, channels, size, _] = set.images.shape();

    let preset = args.preset.unwrap_or(Preset::Small);
    let train_config = if args.run.resume {
        // A resumed run continues with the settings it was started with; only --steps may extend it.
        let fixed = [
            ("--preset", args.preset.is_some()),
            ("--batch-size", args.batch_size.is_some()),
            ("--lr", args.lr.is_some()),
            ("--ema-decay", args.ema_decay.is_some()),
            ("--flips", args.flips.is_some()),
            ("--seed", args.seed.is_some()),
            ("--schedule", args.schedule.is_some()),
            ("--unet", args.unet.is_some()),
        ];
        if let Some((flag, _)) = fixed.iter().find(|(_, given)| *given) {
            anyhow::bail!(
                "{flag} cannot be changed on --resume: the run continues with the settings saved in {}",
                args.out.join("checkpoint/state.json").display()
            );
        }
        resumed_train_config(&args.out, args.steps, args.run.restart_lr)?
    } else {
        let mut c = preset.train_config();
        if let Some(v) = args.batch_size {
            c.batch_size = v;
        }
        if let Some(v) = args.lr {
            c.learning_rate = v;
        }
        if let Some(v) = args.ema_decay {
            c.ema_decay = v;
        }
        if let Some(v) = args.flips {
            c.flips = v;
        }
        c.seed = args.seed.unwrap_or(0);
        if let Some(v) = args.steps {
            c.steps = v;
        }
        c.validate()?;
        c
    };

    let device = default_device();
    // Weight initialisation draws from the backend's RNG: seed it so the same --seed gives the same model.
    device.seed(train_config.seed);
    let (model_config, trainer) = if args.run.resume {
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
        let fresh = Trainer::new(train_config, &config, config.unet.init(&device)?, &device)?;
        let trainer = model_dir::resume_trainer(&args.out, &config, fresh, &device)?;
        (config, trainer)
    } else if let Some(init) = &args.init_from {
        let config = model_dir::read_model_config(init)?;
        if config.unet.in_channels != channels || config.unet.image_size != size {
            anyhow::bail!(
                "--init-from: the model in {} expects {} channel(s) of {}×{}, the data has {channels} of {size}×{size}",
                init.display(),
                config.unet.in_channels,
                config.unet.image_size,
                config.unet.image_size
            );
        }
        let net = model_dir::load_weights(&config, &init.join(model_dir::WEIGHTS_FILE), &device)?;
        let trainer = Trainer::new(train_config.clone(), &config, net, &device)?;
        if args.run.force {
            model_dir::clear_model_dir(&args.out)?;
        }
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
            None => preset.unet(channels, size),
        };
        // Fitted on signed values for real data (magnitudes would hide negative values).
        let fit_values = if set.complex {
            magnitudes(&set.images)
        } else {
            set.images.data().to_vec()
        };
        let config = DiffusionModelConfig {
            unet,
            schedule: match args.schedule.unwrap_or(ScheduleArg::Linear) {
                ScheduleArg::Linear => ScheduleKind::LINEAR,
                ScheduleArg::Cosine => ScheduleKind::COSINE,
            },
            num_train_timesteps: 1000,
            normalization: Normalization::fit(&fit_values, set.complex)?,
        };
        config.validate()?;
        let net = config.unet.init(&device)?;
        let trainer = Trainer::new(train_config.clone(), &config, net, &device)?;
        if args.run.force {
            model_dir::clear_model_dir(&args.out)?;
        }
        (config, trainer)
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;

    let mut images = set.images;
    model_config.normalization.normalize(images.data_mut());
    images
        .ensure_finite("normalised training data")
        .with_context(|| {
            format!(
                "{}: intensities too large for the model's normalisation",
                args.data.display()
            )
        })?;
    let parameters = burn::module::Module::num_params(trainer.model());
    write_json(
        &args.out.join("train_config.json"),
        &Resolved {
            command: "train",
            version: env!("CARGO_PKG_VERSION"),
            data: &args.data,
            data_shape: array.shape(),
            data_dtype: array.dtype(),
            preset: (!args.run.resume).then_some(preset),
            init_from: args.init_from.as_deref(),
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

    let mut run = DiffusionRun {
        trainer,
        images,
        out: &args.out,
        config: &model_config,
    };
    run_training_loop(&mut run, &args.out, args.run.resume, args.checkpoint_every)?;
    Ok(())
}

/// A training run the shared loop can drive: one step at a time, checkpointed now and then.
pub(crate) trait TrainingRun {
    /// One optimizer step.
    fn step(&mut self) -> cinediff::Result<StepReport>;
    /// Steps done.
    fn done(&self) -> usize;
    /// Steps in all.
    fn total(&self) -> usize;
    /// Writes the model and the resumable checkpoint.
    fn checkpoint(&self) -> cinediff::Result<()>;
}

struct DiffusionRun<'a> {
    trainer: Trainer,
    images: ImageBatch,
    out: &'a Path,
    config: &'a DiffusionModelConfig,
}

impl TrainingRun for DiffusionRun<'_> {
    fn step(&mut self) -> cinediff::Result<StepReport> {
        self.trainer.train_step(&self.images)
    }
    fn done(&self) -> usize {
        self.trainer.step_count()
    }
    fn total(&self) -> usize {
        self.trainer.config().steps
    }
    fn checkpoint(&self) -> cinediff::Result<()> {
        model_dir::save_checkpoint(self.out, self.config, &self.trainer)
    }
}

/// Runs `run` to its last step with progress, `OUT/train_log.csv` (step, loss, learning rate,
/// seconds; on resume, rows after the checkpoint are dropped first so none repeats) and a
/// checkpoint every `checkpoint_every` steps and at the end.
pub(crate) fn run_training_loop(
    run: &mut dyn TrainingRun,
    out: &Path,
    resume: bool,
    checkpoint_every: usize,
) -> anyhow::Result<()> {
    let log_path = out.join("train_log.csv");
    let append = resume && log_path.exists();
    if append {
        // Rows logged after the checkpoint was written would be repeated by the resumed run.
        let text = std::fs::read_to_string(&log_path)
            .with_context(|| format!("reading {}", log_path.display()))?;
        let done = run.done();
        let kept: Vec<&str> = text
            .lines()
            .filter(|line| {
                line.split(',')
                    .next()
                    .and_then(|s| s.parse::<usize>().ok())
                    .is_none_or(|step| step <= done)
            })
            .collect();
        std::fs::write(&log_path, kept.join("\n") + "\n")
            .with_context(|| format!("writing {}", log_path.display()))?;
    }
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
    let total = run.total();
    let mut progress = Progress::resumed("train", run.done() as u64, total as u64);
    let start = Instant::now();
    let mut smoothed: Option<f32> = None;
    while run.done() < run.total() {
        let report = run.step()?;
        let elapsed = start.elapsed().as_secs_f64();
        writeln!(
            log,
            "{},{:.6},{:.3e},{elapsed:.2}",
            report.step, report.loss, report.learning_rate
        )?;
        let s = smoothed.map_or(report.loss, |s| 0.95 * s + 0.05 * report.loss);
        smoothed = Some(s);
        progress.update(report.step as u64, &format!("loss {s:.4}"));
        if report.step % checkpoint_every == 0 || run.done() >= run.total() {
            log.flush()?;
            run.checkpoint()?;
        }
    }
    progress.finish();
    eprintln!(
        "done: {} steps, smoothed loss {:.4}; model in {}",
        run.done(),
        smoothed.unwrap_or(f32::NAN),
        out.display()
    );
    Ok(())
}
