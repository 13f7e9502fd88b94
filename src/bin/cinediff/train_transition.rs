//! `cinediff train-transition`: fit SeqDiff+'s transition model (a small ViViT) to sequences.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cinediff::data::dataset::{magnitudes, TrainingImages};
use cinediff::data::Normalization;
use cinediff::io::model_dir::{self, write_json};
use cinediff::nn::device::default_device;
use cinediff::nn::transition::{
    TransitionConfig, TransitionModelConfig, WindowSampling, TRANSITION_KIND,
};
use cinediff::train::transition::{Sequences, TransitionTrainer};
use cinediff::train::{Flips, StepReport, TrainConfig};
use clap::Args;
use serde::Serialize;

use crate::train::{
    check_run_options, read_training_set, resumed_train_config, run_training_loop, RunControl,
    TrainingRun,
};

/// Options of `cinediff train-transition`.
#[derive(Args)]
#[command(after_help = "Example:\n  \
cinediff phantom --complex --count 128 --frames 16 --seed 1 --out seqs.npy\n  \
cinediff train-transition --data seqs.npy --out models/my_transition/\n  \
cinediff reconstruct --bundle b/ --method seqdiff+ --transition models/my_transition/ --model models/my_prior/ --out r/\n\n\
Data: .npy float32 or complex64 [N, T, H, W] (N sequences of T ≥ K + 1 frames; square frames whose\n\
side the patch size divides). Train it on the same data (same units) as the prior it will serve.\n\
The model predicts frame t+1 from frames t−K+1..t as a change to frame t, trained with MSE on\n\
windows drawn with random stride 1..=--max-stride, time reversal, flips and input noise.\n\
With --inputs (posterior samples of the same sequences, frame for frame) it learns to predict the\n\
true next frame from what SeqDiff+ feeds it.\n\
Writes OUT/config.json, OUT/model.safetensors (EMA weights), OUT/train_log.csv,\n\
OUT/train_config.json and OUT/checkpoint/ (resume with --resume).")]
pub struct TrainTransitionArgs {
    /// Training sequences (.npy, [N, T, H, W]).
    #[arg(long)]
    data: PathBuf,
    /// What the model is fed in place of --data's frames, paired frame for frame (.npy, the same
    /// shape and kind): e.g. `reconstruct --method seqdiff` outputs of --data's sequences, so the
    /// model learns to predict the true next frame from posterior samples, as SeqDiff+ feeds it
    /// [default: --data itself]. --input-noise and time reversal still apply to the pairs (pass
    /// --input-noise 0 --no-time-reversal to train on the samples exactly as they are).
    #[arg(long)]
    inputs: Option<PathBuf>,
    /// Output model directory.
    #[arg(long)]
    out: PathBuf,
    /// Start from a trained transition model (its network and normalisation; --context-frames,
    /// --patch-size, --dim, --depth and --heads are then its own) with a fresh optimizer and
    /// schedule: e.g. to fine-tune a model trained on clean frames on --inputs.
    #[arg(long)]
    init_from: Option<PathBuf>,
    /// K, past frames the model sees.
    #[arg(long, default_value_t = 4)]
    context_frames: usize,
    /// Side of a tubelet's spatial patch in pixels.
    #[arg(long, default_value_t = 8)]
    patch_size: usize,
    /// Token width.
    #[arg(long, default_value_t = 128)]
    dim: usize,
    /// Factorised (space, then time) attention blocks.
    #[arg(long, default_value_t = 4)]
    depth: usize,
    /// Attention heads.
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// Add a learned linear filter of the K frames with S×S kernels to the prediction (odd S;
    /// 0: none). It starts at zero and removes the inputs' reconstruction noise at pixel
    /// resolution, which the 8×8 tokens learn slowly: worth it with --inputs. With --init-from
    /// it adds the filter to a model that has none.
    #[arg(long, default_value_t = 0, value_name = "S")]
    linear_skip: usize,
    /// Largest frame stride of a training window (motion up to this many times the data's).
    #[arg(long, default_value_t = 3)]
    max_stride: usize,
    /// Do not reverse windows in time.
    #[arg(long)]
    no_time_reversal: bool,
    /// Largest noise (network units, std) added to the input frames.
    #[arg(long, default_value_t = 0.05)]
    input_noise: f32,
    /// Optimizer steps in all.
    #[arg(long, default_value_t = 3000)]
    steps: usize,
    /// Windows per step.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 3e-4)]
    lr: f64,
    /// EMA decay of the prediction weights.
    #[arg(long, default_value_t = 0.995)]
    ema_decay: f64,
    /// Random flips: none, horizontal (default: left-right, safe for MRI and for ultrasound scan
    /// lines) or both (also up-down: fine for MRI, wrong for ultrasound, where up-down mirrors
    /// depth and no probe does).
    #[arg(long, default_value = "horizontal")]
    flips: Flips,
    /// Seed of every random draw in training.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write a checkpoint every N steps (and always at the end).
    #[arg(long, default_value_t = 200)]
    checkpoint_every: usize,
    #[command(flatten)]
    run: RunControl,
}

#[derive(Serialize)]
struct Resolved<'a> {
    command: &'static str,
    version: &'static str,
    data: &'a Path,
    inputs: Option<&'a Path>,
    init_from: Option<&'a Path>,
    data_shape: &'a [usize],
    data_dtype: &'static str,
    model: &'a TransitionModelConfig,
    train: &'a TrainConfig,
    parameters: usize,
}

struct TransitionRun<'a> {
    trainer: TransitionTrainer,
    sequences: Sequences,
    out: &'a Path,
    config: &'a TransitionModelConfig,
}

impl TrainingRun for TransitionRun<'_> {
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
        model_dir::save_transition_checkpoint(self.out, self.config, &self.trainer)
    }
}

pub fn run(args: TrainTransitionArgs) -> anyhow::Result<()> {
    check_run_options(&args.out, args.checkpoint_every, &args.run)?;
    if args.init_from.is_some() && args.run.resume {
        anyhow::bail!(
            "--init-from starts a new run from a trained model; --resume continues the run in --out: give one of them"
        );
    }
    let (array, set) = read_training_set(&args.data, "sequences")?;
    let &[_, frames, _, _] = array.shape() else {
        anyhow::bail!(
            "{}: expected sequences [N, T, H, W], got shape {:?}",
            args.data.display(),
            array.shape()
        );
    };
    let [_, channels, size, _] = set.images.shape();
    // Checked before anything is written or cleared.
    let paired = match &args.inputs {
        Some(path) => {
            let (inputs_array, inputs_set) = read_training_set(path, "sequences")?;
            if inputs_array.shape() != array.shape() || inputs_set.complex != set.complex {
                anyhow::bail!(
                    "--inputs {}: expected {} sequences of shape {:?} like --data, got {} of shape {:?}",
                    path.display(),
                    if set.complex { "complex" } else { "real" },
                    array.shape(),
                    if inputs_set.complex { "complex" } else { "real" },
                    inputs_array.shape()
                );
            }
            Some((path, inputs_set.images))
        }
        None => None,
    };
    if args.run.resume {
        check_resume_keeps_inputs(&args)?;
    }

    let device = default_device();
    let fits_data = |option: &str, dir: &Path, net: &TransitionConfig| {
        if net.in_channels != channels || net.height != size || net.width != size {
            anyhow::bail!(
                "{option}: the model in {} expects {} channel(s) of {}×{}, the data has {channels} of {size}×{size}",
                dir.display(),
                net.in_channels,
                net.height,
                net.width
            );
        }
        Ok(())
    };
    let (model_config, trainer) = if args.run.resume {
        let config = model_dir::read_transition_config(&args.out)?;
        fits_data("--resume", &args.out, &config.network)?;
        let train = resumed_train_config(&args.out, Some(args.steps), args.run.restart_lr)?;
        device.seed(train.seed);
        let fresh = TransitionTrainer::new(train, &config, config.network.init(&device)?, &device)?;
        let trainer = model_dir::resume_transition_trainer(&args.out, &config, fresh, &device)?;
        (config, trainer)
    } else {
        let windows = WindowSampling {
            max_stride: args.max_stride,
            time_reversal: !args.no_time_reversal,
            input_noise: args.input_noise,
        };
        let (config, net) = match &args.init_from {
            Some(init) => {
                let (mut config, mut net) = model_dir::load_transition_net(init, &device)
                    .with_context(|| format!("loading the transition model {}", init.display()))?;
                fits_data("--init-from", init, &config.network)?;
                config.windows = windows;
                let own = config.network.linear_skip;
                if args.linear_skip > 0 && own == 0 {
                    config.network.linear_skip = args.linear_skip;
                    net = net.with_linear_skip(&config.network, &device)?;
                } else if args.linear_skip > 0 && args.linear_skip != own {
                    anyhow::bail!(
                        "--linear-skip {}: {} already has a linear skip of side {own}",
                        args.linear_skip,
                        init.display()
                    );
                }
                (config, Some(net))
            }
            None => (
                fresh_model_config(&args, &set, channels, size, windows)?,
                None,
            ),
        };
        config.validate()?;
        let train = TrainConfig {
            steps: args.steps,
            batch_size: args.batch_size,
            learning_rate: args.lr,
            warmup_steps: (args.steps / 20).min(200),
            min_lr_ratio: 0.1,
            weight_decay: 1e-4,
            grad_clip_norm: 1.0,
            ema_decay: args.ema_decay,
            flips: args.flips,
            seed: args.seed,
            lr_restarts: Vec::new(),
        };
        train.validate()?;
        device.seed(train.seed);
        let net = match net {
            Some(net) => net,
            None => config.network.init(&device)?,
        };
        let trainer = TransitionTrainer::new(train, &config, net, &device)?;
        if args.run.force {
            model_dir::clear_model_dir(&args.out)?;
        }
        (config, trainer)
    };
    if frames <= model_config.network.context_frames {
        anyhow::bail!(
            "{}: sequences of {frames} frames are too short for windows of K + 1 = {} frames",
            args.data.display(),
            model_config.network.context_frames + 1
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut images = set.images;
    model_config.normalization.normalize(images.data_mut());
    images.ensure_finite("normalised training data")?;
    let mut sequences = Sequences::new(images, frames)?;
    if let Some((path, mut inputs)) = paired {
        model_config.normalization.normalize(inputs.data_mut());
        inputs.ensure_finite(&format!("normalised --inputs {}", path.display()))?;
        sequences = sequences.with_inputs(inputs)?;
    }
    let parameters = burn::module::Module::num_params(trainer.model());
    write_json(
        &args.out.join("train_config.json"),
        &Resolved {
            command: "train-transition",
            version: env!("CARGO_PKG_VERSION"),
            data: &args.data,
            inputs: args.inputs.as_deref(),
            init_from: args.init_from.as_deref(),
            data_shape: array.shape(),
            data_dtype: array.dtype(),
            model: &model_config,
            train: trainer.config(),
            parameters,
        },
    )?;
    eprintln!(
        "training a transition model of {parameters} parameters on {} sequences of {frames} frames of {channels}×{size}×{size}, steps {}..{}",
        sequences.count(),
        trainer.step_count(),
        trainer.config().steps
    );
    let mut run = TransitionRun {
        trainer,
        sequences,
        out: &args.out,
        config: &model_config,
    };
    run_training_loop(&mut run, &args.out, args.run.resume, args.checkpoint_every)
}

/// The model of a fresh run: the network options, and a normalisation fitted on the data.
fn fresh_model_config(
    args: &TrainTransitionArgs,
    set: &TrainingImages,
    channels: usize,
    size: usize,
    windows: WindowSampling,
) -> anyhow::Result<TransitionModelConfig> {
    let fit_values = if set.complex {
        magnitudes(&set.images)
    } else {
        set.images.data().to_vec()
    };
    Ok(TransitionModelConfig {
        kind: TRANSITION_KIND.into(),
        network: TransitionConfig {
            in_channels: channels,
            height: size,
            width: size,
            context_frames: args.context_frames,
            patch_size: args.patch_size,
            dim: args.dim,
            depth: args.depth,
            heads: args.heads,
            mlp_ratio: 4,
            linear_skip: args.linear_skip,
        },
        normalization: Normalization::fit(&fit_values, set.complex)?,
        windows,
    })
}

/// A resumed run goes on with the paired inputs it started with (none, or the same file), as
/// its train_config.json records them.
fn check_resume_keeps_inputs(args: &TrainTransitionArgs) -> anyhow::Result<()> {
    #[derive(serde::Deserialize)]
    struct Recorded {
        inputs: Option<PathBuf>,
    }
    let recorded: Recorded = model_dir::read_json(&args.out.join("train_config.json"))
        .context("--resume: reading the run's record")?;
    if recorded.inputs.as_deref() != args.inputs.as_deref() {
        let show = |p: Option<&Path>| p.map_or("none".to_string(), |p| p.display().to_string());
        anyhow::bail!(
            "--resume: the run in {} was trained with --inputs {}, this one gives {}: give the same",
            args.out.display(),
            show(recorded.inputs.as_deref()),
            show(args.inputs.as_deref())
        );
    }
    Ok(())
}
