//! `cinediff train-aid`: train AID's autoregressive denoiser (per-frame U-Net + causal temporal
//! conditioning branch) on sequences by teacher forcing.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cinediff::diffusion::TimestepEmphasis;
use cinediff::io::model_dir::{self, write_json};
use cinediff::nn::aid::{AidConfig, AidModelConfig, AID_KIND};
use cinediff::nn::device::default_device;
use cinediff::train::aid::AidTrainer;
use cinediff::train::transition::Sequences;
use cinediff::train::{Flips, StepReport, TrainConfig};
use clap::Args;
use serde::Serialize;

use crate::train::{
    check_run_options, read_training_set, resumed_train_config, run_training_loop, RunControl,
    TrainingRun,
};

/// Options of `cinediff train-aid`.
#[derive(Args)]
#[command(after_help = "Example:\n  \
cinediff phantom --complex --count 128 --frames 16 --seed 1 --out seqs.npy\n  \
cinediff train-aid --data seqs.npy --prior models/cine64-small --window 8 --out models/my_aid/\n  \
cinediff reconstruct --bundle b/ --method aid --model models/my_aid/ --out r/\n\n\
Data: .npy float32 or complex64 sequences [N, T, H, W] with T ≥ window + 1, in the prior's units.\n\
The U-Net is the per-frame prior's architecture, schedule and normalisation. By default its\n\
trained weights are loaded and frozen (two-stage training: only the temporal branch and the\n\
connectors learn, and an untrained branch is exactly the prior); --unfreeze-prior trains\n\
everything from the prior, --from-scratch from fresh weights. Each step draws windows of\n\
window + 1 frames (random start, time reversal, flips), conditions on frames 0..L-1 and denoises\n\
frames 1..L in parallel at one diffusion time per window. Writes OUT/config.json,\n\
OUT/model.safetensors (EMA weights), OUT/train_log.csv, OUT/train_config.json and\n\
OUT/checkpoint/ (resume with --resume).")]
pub struct TrainAidArgs {
    /// Training sequences (.npy, [N, T, H, W]).
    #[arg(long)]
    data: PathBuf,
    /// Output model directory.
    #[arg(long)]
    out: PathBuf,
    /// The per-frame prior (architecture, schedule, normalisation and, unless --from-scratch,
    /// weights).
    #[arg(long, default_value = "models/cine64-small")]
    prior: PathBuf,
    /// Train the U-Net too (one-stage from the prior's weights).
    #[arg(long)]
    unfreeze_prior: bool,
    /// Fresh U-Net weights (one-stage training of everything).
    #[arg(long, conflicts_with = "unfreeze_prior")]
    from_scratch: bool,
    /// Start from the weights of an AID model (its architecture, prior and settings are kept;
    /// with --unfreeze-prior this is a further stage that trains everything from a two-stage run).
    #[arg(long, value_name = "AID_MODEL_DIR", conflicts_with_all = ["resume", "from_scratch"])]
    init_from: Option<PathBuf>,
    /// Noise on the conditioning frames in training: N(0, u²), u ~ U(0, S) per window (network
    /// units; 0 = clean teacher forcing, the paper's). Makes the model robust to reconstructed
    /// (imperfect) history.
    #[arg(long, value_name = "S", default_value_t = 0.0)]
    conditioning_noise: f32,
    /// Draw diffusion times with probability ∝ min(1/ᾱ_t, CAP) instead of uniformly, so the
    /// ε-loss weighs like a v-loss truncated at CAP and the branch learns to use its history at
    /// high noise (0 = uniform, the paper's). 20 puts ~80 % of the draws above t = 500.
    #[arg(long, value_name = "CAP", default_value_t = 0.0)]
    v_weight_cap: f32,
    /// L, conditioning frames per window.
    #[arg(long, default_value_t = 8)]
    window: usize,
    /// Heads of the temporal attention.
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// Optimizer steps in all.
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    /// Windows per step.
    #[arg(long, default_value_t = 2)]
    batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 2e-4)]
    lr: f64,
    /// EMA decay of the sampling weights.
    #[arg(long, default_value_t = 0.995)]
    ema_decay: f64,
    /// Random flips of a window: none, horizontal or both.
    #[arg(long, default_value = "horizontal")]
    flips: Flips,
    /// Seed of every random draw in training.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write a checkpoint every N steps (and always at the end).
    #[arg(long, default_value_t = 100)]
    checkpoint_every: usize,
    #[command(flatten)]
    run: RunControl,
}

#[derive(Serialize)]
struct Resolved<'a> {
    command: &'static str,
    version: &'static str,
    data: &'a Path,
    data_shape: &'a [usize],
    model: &'a AidModelConfig,
    train: &'a TrainConfig,
    parameters: usize,
}

struct AidRun<'a> {
    trainer: AidTrainer,
    sequences: Sequences,
    out: &'a Path,
    config: &'a AidModelConfig,
}

impl TrainingRun for AidRun<'_> {
    fn step(&mut self) -> cinediff::Result<StepReport> {
        self.trainer.train_step(&self.sequences)
    }
    fn done(&self) -> usize {
        self.trainer.step_count()
    }
    fn total(&self) -> usize {
        self.trainer.config().steps
    }
    fn checkpoint(&self) -> cinediff::Result<()> {
        model_dir::save_aid_checkpoint(self.out, self.config, &self.trainer)
    }
}

/// `--v-weight-cap`: 0 is the uniform draw.
fn timestep_emphasis(cap: f32) -> TimestepEmphasis {
    if cap == 0.0 {
        TimestepEmphasis::Uniform
    } else {
        TimestepEmphasis::TruncatedV { cap }
    }
}

/// The optimisation settings of a new run.
fn aid_train_config(args: &TrainAidArgs) -> TrainConfig {
    TrainConfig {
        steps: args.steps,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        warmup_steps: (args.steps / 20).min(100),
        min_lr_ratio: 0.1,
        weight_decay: 0.0,
        grad_clip_norm: 1.0,
        ema_decay: args.ema_decay,
        flips: args.flips,
        seed: args.seed,
        lr_restarts: Vec::new(),
    }
}

pub fn run(args: TrainAidArgs) -> anyhow::Result<()> {
    check_run_options(&args.out, args.checkpoint_every, &args.run)?;
    let (array, set) = read_training_set(&args.data, "sequences")?;
    let &[_, frames, _, _] = array.shape() else {
        anyhow::bail!(
            "{}: expected sequences [N, T, H, W], got shape {:?}",
            args.data.display(),
            array.shape()
        );
    };
    let [_, channels, size, _] = set.images.shape();
    let device = default_device();
    let (model_config, trainer) = if args.run.resume {
        let config = model_dir::read_aid_config(&args.out)?;
        let train = resumed_train_config(&args.out, Some(args.steps), args.run.restart_lr)?;
        device.seed(train.seed);
        let fresh = AidTrainer::new(train, &config, config.network.init(&device)?, &device)?;
        let trainer = model_dir::resume_aid_trainer(&args.out, &config, fresh, &device)?;
        (config, trainer)
    } else if let Some(init) = &args.init_from {
        let (mut config, net) = model_dir::load_aid(init, &device)
            .with_context(|| format!("loading the AID model {}", init.display()))?;
        config.frozen_prior = !args.unfreeze_prior;
        config.conditioning_noise = args.conditioning_noise;
        config.timestep_emphasis = timestep_emphasis(args.v_weight_cap);
        config.validate()?;
        let train = aid_train_config(&args);
        train.validate()?;
        device.seed(train.seed);
        let trainer = AidTrainer::new(train, &config, net, &device)?;
        if args.run.force {
            model_dir::clear_model_dir(&args.out)?;
        }
        (config, trainer)
    } else {
        let diffusion = model_dir::read_model_config(&args.prior)
            .with_context(|| format!("reading the prior {}", args.prior.display()))?;
        let network = AidConfig {
            unet: diffusion.unet.clone(),
            window: args.window,
            heads: args.heads,
            mlp_ratio: 4,
        };
        let config = AidModelConfig {
            kind: AID_KIND.into(),
            network,
            diffusion,
            frozen_prior: !(args.unfreeze_prior || args.from_scratch),
            prior: (!args.from_scratch).then(|| args.prior.display().to_string()),
            conditioning_noise: args.conditioning_noise,
            timestep_emphasis: timestep_emphasis(args.v_weight_cap),
        };
        config.validate()?;
        let train = aid_train_config(&args);
        train.validate()?;
        device.seed(train.seed);
        let net = if args.from_scratch {
            config.network.init(&device)?
        } else {
            let unet = model_dir::load_denoiser(&args.prior, &device)?.into_unet();
            config.network.init_with(unet, &device)?
        };
        let trainer = AidTrainer::new(train, &config, net, &device)?;
        if args.run.force {
            model_dir::clear_model_dir(&args.out)?;
        }
        (config, trainer)
    };
    let unet = &model_config.network.unet;
    if [unet.in_channels, unet.image_size] != [channels, size] {
        anyhow::bail!(
            "{}: {channels} channel(s) of {size}×{size}, but the model takes {} channel(s) of {}×{}",
            args.data.display(),
            unet.in_channels,
            unet.image_size,
            unet.image_size
        );
    }
    if frames <= model_config.network.window {
        anyhow::bail!(
            "{}: sequences of {frames} frames are too short for windows of L + 1 = {} frames",
            args.data.display(),
            model_config.network.window + 1
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut images = set.images;
    model_config
        .diffusion
        .normalization
        .normalize(images.data_mut());
    images.ensure_finite("normalised training data")?;
    let sequences = Sequences::new(images, frames)?;
    let parameters = burn::module::Module::num_params(trainer.model());
    write_json(
        &args.out.join("train_config.json"),
        &Resolved {
            command: "train-aid",
            version: env!("CARGO_PKG_VERSION"),
            data: &args.data,
            data_shape: array.shape(),
            model: &model_config,
            train: trainer.config(),
            parameters,
        },
    )?;
    eprintln!(
        "training AID ({parameters} parameters, window {}, U-Net {}) on {} sequences of {frames} frames of {channels}×{size}×{size}, steps {}..{}",
        model_config.network.window,
        if model_config.frozen_prior { "frozen" } else { "trained" },
        sequences.count(),
        trainer.step_count(),
        trainer.config().steps
    );
    let mut run = AidRun {
        trainer,
        sequences,
        out: &args.out,
        config: &model_config,
    };
    run_training_loop(&mut run, &args.out, args.run.resume, args.checkpoint_every)
}
