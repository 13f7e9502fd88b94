//! `cinediff train-aps`: distil a diffusion prior into an APS conditional flow for one operator
//! family (amortised posterior sampling: one network evaluation per posterior sample).

use std::path::{Path, PathBuf};

use anyhow::Context;
use cinediff::aps::{
    mean_net_config, ApsModelConfig, MeasurementFamily, PriorBound, PriorGradient,
    SamplingSymmetries, APS_KIND,
};
use cinediff::io::model_dir::{self, write_json};
use cinediff::nn::device::default_device;
use cinediff::nn::flow::{ConditionalFlow, FlowConfig};
use cinediff::nn::unet_denoiser::DiffusionModelConfig;
use cinediff::nn::UNetDenoiser;
use cinediff::train::aps::ApsTrainer;
use cinediff::train::{Flips, StepReport, TrainConfig};
use clap::Args;
use serde::Serialize;

use crate::simulate::{MaskArg, OperatorArg};
use crate::train::{
    check_run_options, read_training_set, resumed_train_config, run_training_loop, RunControl,
    TrainingRun,
};

/// Options of `cinediff train-aps`.
#[derive(Args)]
#[command(after_help = "Example:\n  \
cinediff phantom --complex --count 64 --frames 16 --seed 1 --out imgs.npy\n  \
cinediff train-aps --prior models/cine64-small --data imgs.npy --operator mri --accel 4 --out models/my_aps/\n  \
cinediff reconstruct --bundle b/ --method aps --model models/my_aps/ --samples 64 --out r/\n\n\
No paired data: every step measures training images afresh with the operator family (its own\n\
mask and noise draw per image), samples x = G(z; Aᴴy, mask) and lowers the amortised KL\n\
E[-log|det dG/dz| + ||y - Ax||²/σ² + L_prior(x)], L_prior the prior's likelihood-weighted\n\
score-matching bound (its gradient by score distillation unless --prior-gradient bound).\n\
Data: .npy images [N, H, W] or sequences [N, T, H, W] (frames are used as images) in the\n\
prior's units. The loss logged is that KL estimate per image value (up to a\n\
constant). Writes OUT/config.json, OUT/model.safetensors (EMA flow), OUT/train_log.csv,\n\
OUT/train_config.json and OUT/checkpoint/ (resume with --resume).")]
pub struct TrainApsArgs {
    /// The diffusion prior to distil (a model directory).
    #[arg(long, default_value = "models/cine64-small")]
    prior: PathBuf,
    /// Training images (.npy, [N, H, W] or [N, T, H, W]).
    #[arg(long)]
    data: PathBuf,
    /// Output model directory.
    #[arg(long)]
    out: PathBuf,
    /// Forward model of the operator family.
    #[arg(long, value_enum, default_value_t = OperatorArg::Mri, help_heading = "Operator family")]
    operator: OperatorArg,
    /// Sampling pattern (a fresh draw per training image).
    #[arg(long, value_enum, default_value_t = MaskArg::Random, help_heading = "Operator family")]
    mask: MaskArg,
    /// Acceleration R.
    #[arg(long, default_value_t = 4.0, help_heading = "Operator family")]
    accel: f64,
    /// Fully sampled MRI centre lines [default: round(0.08·W)].
    #[arg(long, help_heading = "Operator family")]
    acs: Option<usize>,
    /// MRI receive coils (synthetic maps).
    #[arg(long, default_value_t = 1, help_heading = "Operator family")]
    coils: usize,
    /// Measurement noise σ (E|n|² = σ²), > 0.
    #[arg(long, default_value_t = 0.01, help_heading = "Operator family")]
    noise: f64,
    /// Super-resolution factor (superres).
    #[arg(long, default_value_t = 2, help_heading = "Operator family")]
    scale: usize,
    /// Blur σ in pixels (blur).
    #[arg(long, default_value_t = 1.5, help_heading = "Operator family")]
    blur_sigma: f64,
    /// Squeeze levels of the flow.
    #[arg(long, default_value_t = 2, help_heading = "Flow")]
    levels: usize,
    /// Actnorm + 1×1 convolution + coupling steps per level.
    #[arg(long, default_value_t = 4, help_heading = "Flow")]
    steps_per_level: usize,
    /// Width of the coupling networks.
    #[arg(long, default_value_t = 64, help_heading = "Flow")]
    hidden: usize,
    /// Conditioning features per level.
    #[arg(long, default_value_t = 16, help_heading = "Flow")]
    cond_features: usize,
    /// Initial posterior standard deviation around Aᴴy (network units).
    #[arg(long, default_value_t = 0.1, help_heading = "Flow")]
    initial_std: f32,
    /// Base width of the U-Net that predicts the posterior mean from the whole of Aᴴy and the
    /// pattern (a multiple of 4; 0: none, only local corrections — not enough to undo MRI
    /// aliasing, which moves content across the image).
    #[arg(long, default_value_t = 16, help_heading = "Flow")]
    mean_net_width: usize,
    /// Base width of a second mean stage, a U-Net that reads the first stage's estimate and the
    /// pattern and corrects it (0: none). With --init-from it is added to a flow that lacks it,
    /// zero-initialised, so training starts from exactly the given model's draws: more capacity
    /// for the amortised mapping without starting over.
    #[arg(long, default_value_t = 0, help_heading = "Flow")]
    refine_net_width: usize,
    /// Train only the refine stage (needs one: --refine-net-width, or a model that has it): the
    /// rest of the flow is frozen, so the new stage can take a larger --lr than the trained
    /// stage would bear, and a step skips the first stage's backward pass. --resume keeps the
    /// run's setting.
    #[arg(long, help_heading = "Flow")]
    train_refine_only: bool,
    /// Prior bound: smallest diffusion timestep drawn (0: the whole bound). Timesteps are drawn
    /// with probability ∝ 1/σ_t and weighted back (importance sampling).
    #[arg(long, default_value_t = 0, help_heading = "Prior term")]
    min_timestep: usize,
    /// Prior term: draw diffusion timesteps below this one [default: T/10 with the distilled
    /// gradient (larger t only stand for a smoothed, broader prior), T with the bound's].
    #[arg(long, help_heading = "Prior term")]
    max_timestep: Option<usize>,
    /// Prior bound: (t, ε) draws per step.
    #[arg(long, default_value_t = 1, help_heading = "Prior term")]
    prior_draws: usize,
    /// Gradient of the prior term: `distilled` drops the denoiser's Jacobian,
    /// (ε̂ − ε)/(α_t σ_t) (score distillation: one forward pass per draw, low variance); `bound`
    /// differentiates the bound through the denoiser (exact, a backward pass more, much noisier).
    #[arg(long, value_enum, default_value_t = PriorGradientArg::Distilled, help_heading = "Prior term")]
    prior_gradient: PriorGradientArg,
    /// Draw the flow's latents in pairs (z, −z) per measurement: the data term's noise cancels
    /// in what a pair shares, so the prior's pull on the posterior mean is not drowned (half the
    /// batch's measurements are distinct; --batch-size must be even). `false` to turn off.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, help_heading = "Prior term")]
    antithetic_latents: bool,
    /// Start from the weights of an APS model (its flow architecture, operator family and prior
    /// term are kept; the options above are ignored, but for --refine-net-width and
    /// --train-refine-only) with a fresh optimizer and learning-rate schedule: continues a model
    /// whose checkpoint is gone, or fine-tunes a shipped one.
    #[arg(long, value_name = "APS_MODEL_DIR")]
    init_from: Option<PathBuf>,
    /// Optimizer steps in all.
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    /// Images per step.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// EMA decay of the sampling weights.
    #[arg(long, default_value_t = 0.99)]
    ema_decay: f64,
    /// Clip on the global gradient norm (the prior term's gradients are large and rare at low
    /// noise levels; too tight a clip lets the entropy term win).
    #[arg(long, default_value_t = 10.0)]
    grad_clip: f32,
    /// Random flips of the training images: none, horizontal or both. With flips, the model
    /// records that sampling may draw over mirrored measurements (`reconstruct --mirrored-draws`).
    #[arg(long, default_value = "horizontal")]
    flips: Flips,
    /// Record that sampling should draw over N global phases of the measurement (for complex
    /// data whose global phase is arbitrary, as MRI's receiver phase is: 8 is a good choice;
    /// `reconstruct --phase-rotations` overrides it) [default: 1, or --init-from's].
    #[arg(long)]
    sampling_phase_rotations: Option<usize>,
    /// Seed of every random draw in training.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write a checkpoint every N steps (and always at the end).
    #[arg(long, default_value_t = 100)]
    checkpoint_every: usize,
    #[command(flatten)]
    run: RunControl,
}

/// `--prior-gradient`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum PriorGradientArg {
    Bound,
    Distilled,
}

impl From<PriorGradientArg> for PriorGradient {
    fn from(a: PriorGradientArg) -> Self {
        match a {
            PriorGradientArg::Bound => PriorGradient::Bound,
            PriorGradientArg::Distilled => PriorGradient::Distilled,
        }
    }
}

#[derive(Serialize)]
struct Resolved<'a> {
    command: &'static str,
    version: &'static str,
    data: &'a Path,
    data_shape: &'a [usize],
    /// The APS model this run started from (`--init-from`).
    #[serde(skip_serializing_if = "Option::is_none")]
    init_from: Option<&'a Path>,
    model: &'a ApsModelConfig,
    train: &'a TrainConfig,
    parameters: usize,
}

struct ApsRun<'a> {
    trainer: ApsTrainer,
    images: cinediff::ImageBatch,
    prior: UNetDenoiser,
    out: &'a Path,
    config: &'a ApsModelConfig,
}

impl TrainingRun for ApsRun<'_> {
    fn step(&mut self) -> cinediff::Result<StepReport> {
        self.trainer.train_step(&self.images, &self.prior)
    }
    fn done(&self) -> usize {
        self.trainer.step_count()
    }
    fn total(&self) -> usize {
        self.trainer.config().steps
    }
    fn checkpoint(&self) -> cinediff::Result<()> {
        model_dir::save_aps_checkpoint(self.out, self.config, &self.trainer)
    }
}

/// A fresh run's optimisation settings from the command line.
fn aps_train_config(args: &TrainApsArgs) -> TrainConfig {
    TrainConfig {
        steps: args.steps,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        warmup_steps: (args.steps / 20).min(100),
        min_lr_ratio: 0.1,
        weight_decay: 0.0,
        grad_clip_norm: args.grad_clip,
        ema_decay: args.ema_decay,
        flips: args.flips,
        seed: args.seed,
        lr_restarts: Vec::new(),
    }
}

/// A new run's trainer (not a resumed one): the command line's optimisation settings, on `flow`
/// (`--init-from`'s) or on fresh weights drawn after seeding; `--force` clears `--out` first.
fn start_trainer(
    args: &TrainApsArgs,
    config: &ApsModelConfig,
    flow: Option<ConditionalFlow>,
    prior_config: &DiffusionModelConfig,
    device: &burn::tensor::Device,
) -> anyhow::Result<ApsTrainer> {
    let train = aps_train_config(args);
    train.validate()?;
    device.seed(train.seed);
    let flow = match flow {
        Some(flow) => flow,
        None => config.flow.init(device)?,
    };
    let trainer = ApsTrainer::new(train, config, prior_config.noise_schedule()?, flow, device)?;
    if args.run.force {
        model_dir::clear_model_dir(&args.out)?;
    }
    Ok(trainer)
}

/// A resumed run continues the model in --out as it was configured: options that would change
/// it are refused rather than silently ignored.
fn check_resume_keeps_the_model(
    args: &TrainApsArgs,
    config: &ApsModelConfig,
) -> anyhow::Result<()> {
    let stored = config.sampling_symmetries.phase_rotations;
    if let Some(n) = args.sampling_phase_rotations.filter(|&n| n != stored) {
        anyhow::bail!(
            "--sampling-phase-rotations {n}: the run in {} records {stored}, and --resume keeps it; \
             give the finished model another with `reconstruct --phase-rotations`",
            args.out.display()
        );
    }
    let stored = config
        .flow
        .refine_net
        .as_ref()
        .map_or(0, |u| u.base_channels);
    if args.refine_net_width > 0 && args.refine_net_width != stored {
        anyhow::bail!(
            "--refine-net-width {}: the run in {} has {}, and --resume keeps its architecture; \
             add a stage to a finished model with --init-from",
            args.refine_net_width,
            args.out.display(),
            if stored == 0 {
                "none".to_string()
            } else {
                format!("width {stored}")
            }
        );
    }
    if args.train_refine_only && !config.train_refine_only {
        anyhow::bail!(
            "--train-refine-only: the run in {} trains the whole flow, and --resume keeps that; \
             start a refine-only run from its finished model with --init-from",
            args.out.display()
        );
    }
    Ok(())
}

/// Fails unless the APS model in `dir` (given by `option`) takes the data's `channels` × `size`².
fn check_flow_fits_data(
    option: &str,
    dir: &Path,
    config: &ApsModelConfig,
    channels: usize,
    size: usize,
) -> anyhow::Result<()> {
    if [config.flow.in_channels, config.flow.image_size] != [channels, size] {
        anyhow::bail!(
            "{option}: the model in {} expects {} channel(s) of {}×{}, the data has {channels} of {size}×{size}",
            dir.display(),
            config.flow.in_channels,
            config.flow.image_size,
            config.flow.image_size
        );
    }
    Ok(())
}

pub fn run(args: TrainApsArgs) -> anyhow::Result<()> {
    check_run_options(&args.out, args.checkpoint_every, &args.run)?;
    if args.init_from.is_some() && args.run.resume {
        anyhow::bail!(
            "--init-from starts a new run from a trained flow; --resume continues the run in --out: give one of them"
        );
    }
    let device = default_device();
    let prior = model_dir::load_denoiser(&args.prior, &device)
        .with_context(|| format!("loading the prior {}", args.prior.display()))?;
    let prior_config = prior.config().clone();
    let (array, set) = read_training_set(&args.data, "images")?;
    let [_, channels, size, _] = set.images.shape();
    let unet = &prior_config.unet;
    if [unet.in_channels, unet.image_size] != [channels, size] {
        anyhow::bail!(
            "{}: {channels} channel(s) of {size}×{size}, but the prior {} takes {} channel(s) of {}×{}",
            args.data.display(),
            args.prior.display(),
            unet.in_channels,
            unet.image_size,
            unet.image_size
        );
    }
    let (model_config, trainer) = if args.run.resume {
        let config = model_dir::read_aps_config(&args.out)?;
        check_flow_fits_data("--resume", &args.out, &config, channels, size)?;
        check_resume_keeps_the_model(&args, &config)?;
        let train = resumed_train_config(&args.out, Some(args.steps), args.run.restart_lr)?;
        device.seed(train.seed);
        let fresh = ApsTrainer::new(
            train,
            &config,
            prior_config.noise_schedule()?,
            config.flow.init(&device)?,
            &device,
        )?;
        let trainer = model_dir::resume_aps_trainer(&args.out, &config, fresh, &device)?;
        (config, trainer)
    } else if let Some(init) = &args.init_from {
        let (mut config, mut flow) = model_dir::load_aps_flow(init, &device)
            .with_context(|| format!("loading the APS model {}", init.display()))?;
        let width = args.refine_net_width;
        match &config.flow.refine_net {
            None if width > 0 => {
                config.flow.refine_net = mean_net_config(channels, size, width);
                config.flow.validate()?;
                // The new stage's first layers are random: draw them from the run's seed.
                device.seed(args.seed);
                flow = model_dir::load_aps_flow_adding_refine_stage(init, &config, &device)
                    .with_context(|| format!("adding a refine stage to {}", init.display()))?;
            }
            Some(refine) if width > 0 && refine.base_channels != width => anyhow::bail!(
                "--refine-net-width {width}: the model in {} already has a refine stage of width {}",
                init.display(),
                refine.base_channels
            ),
            _ => {}
        }
        config.train_refine_only = args.train_refine_only;
        config.sampling_symmetries = SamplingSymmetries {
            mirror: args.flips != Flips::None,
            phase_rotations: args
                .sampling_phase_rotations
                .unwrap_or(config.sampling_symmetries.phase_rotations),
            ..config.sampling_symmetries.clone()
        };
        config.validate()?;
        check_flow_fits_data("--init-from", init, &config, channels, size)?;
        if config.normalization != prior_config.normalization {
            anyhow::bail!(
                "--init-from: the model in {} normalises by {:?}, the prior {} by {:?}",
                init.display(),
                config.normalization,
                args.prior.display(),
                prior_config.normalization
            );
        }
        let trainer = start_trainer(&args, &config, Some(flow), &prior_config, &device)?;
        (config, trainer)
    } else {
        let config = ApsModelConfig {
            kind: APS_KIND.into(),
            flow: FlowConfig {
                in_channels: channels,
                image_size: size,
                cond_channels: channels + 1,
                levels: args.levels,
                steps_per_level: args.steps_per_level,
                hidden: args.hidden,
                cond_features: args.cond_features,
                initial_log_std: args.initial_std.ln(),
                kspace_scale: channels == 2,
                mean_net: mean_net_config(channels, size, args.mean_net_width),
                // Single-coil Cartesian MRI: the pattern is exactly the measured frequencies.
                mean_unmeasured_only: args.mean_net_width > 0
                    && channels == 2
                    && args.coils == 1
                    && matches!(args.operator, OperatorArg::Mri),
                refine_net: mean_net_config(channels, size, args.refine_net_width),
            },
            normalization: prior_config.normalization,
            family: MeasurementFamily {
                operator: args.operator.into(),
                mask: args.mask.into(),
                acceleration: args.accel,
                acs: args
                    .acs
                    .unwrap_or(((0.08 * size as f64).round() as usize).max(1)),
                coils: args.coils,
                noise_sigma: args.noise,
                scale: args.scale,
                blur_sigma: args.blur_sigma,
            },
            prior_bound: PriorBound {
                min_timestep: args.min_timestep,
                max_timestep: match (args.max_timestep, args.prior_gradient) {
                    (Some(t), _) => Some(t),
                    (None, PriorGradientArg::Distilled) => {
                        Some((prior_config.num_train_timesteps / 10).max(args.min_timestep + 1))
                    }
                    (None, PriorGradientArg::Bound) => None,
                },
                draws: args.prior_draws,
                gradient: args.prior_gradient.into(),
            },
            prior: args.prior.display().to_string(),
            antithetic_latents: args.antithetic_latents,
            train_refine_only: args.train_refine_only,
            sampling_symmetries: SamplingSymmetries {
                mirror: args.flips != Flips::None,
                phase_rotations: args.sampling_phase_rotations.unwrap_or(1),
                ..SamplingSymmetries::default()
            },
        };
        config.validate()?;
        let trainer = start_trainer(&args, &config, None, &prior_config, &device)?;
        (config, trainer)
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut images = set.images;
    model_config.normalization.normalize(images.data_mut());
    images.ensure_finite("normalised training data")?;
    let parameters = burn::module::Module::num_params(trainer.model());
    write_json(
        &args.out.join("train_config.json"),
        &Resolved {
            command: "train-aps",
            version: env!("CARGO_PKG_VERSION"),
            data: &args.data,
            data_shape: array.shape(),
            init_from: args.init_from.as_deref(),
            model: &model_config,
            train: trainer.config(),
            parameters,
        },
    )?;
    let family = &model_config.family;
    eprintln!(
        "training an APS flow of {parameters} parameters for {}{} (noise σ {}) on {} images of {channels}×{size}×{size}, steps {}..{}",
        family.operator.name(),
        if family.operator.uses_mask() {
            format!(" at {}×", family.acceleration)
        } else {
            String::new()
        },
        family.noise_sigma,
        images.batch_size(),
        trainer.step_count(),
        trainer.config().steps
    );
    let mut run = ApsRun {
        trainer,
        images,
        prior,
        out: &args.out,
        config: &model_config,
    };
    run_training_loop(&mut run, &args.out, args.run.resume, args.checkpoint_every)
}
