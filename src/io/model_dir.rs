//! A model directory: `config.json` (architecture, schedule, normalisation) + `model.safetensors`
//! (the EMA weights used for sampling), plus a `checkpoint/` with what `--resume` needs.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use burn_store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};

use crate::aps::{ApsModelConfig, ApsSampler};
use crate::error::{Error, Result};
use crate::nn::aid::{AidModelConfig, AidNet, AID_KIND};
use crate::nn::flow::ConditionalFlow;
use crate::nn::transition::{TransitionModelConfig, TransitionNet, TransitionPredictor};
use crate::nn::unet::UNet;
use crate::nn::unet_denoiser::{DiffusionModelConfig, UNetDenoiser};
use crate::train::aid::AidTrainer;
use crate::train::aps::ApsTrainer;
use crate::train::transition::TransitionTrainer;
use crate::train::{build_optimizer, Checkpointed, TrainConfig, Trainer};

/// File names inside a model directory.
pub const CONFIG_FILE: &str = "config.json";
/// Weights used for sampling (the EMA).
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Sub-directory with the resumable training state.
pub const CHECKPOINT_DIR: &str = "checkpoint";

/// Training state beside the checkpoint weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps completed.
    pub step: usize,
    /// The optimisation settings of the run.
    pub train: TrainConfig,
}

/// A JSON file parsed as `T` (errors name the file).
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Format {
        path: path.to_path_buf(),
        reason: format!("invalid JSON: {e}"),
    })
}

/// `dir/config.json` parsed as `C` and checked by `validate` (a failure names the file).
fn read_config<C: for<'de> Deserialize<'de>>(
    dir: &Path,
    validate: impl Fn(&C) -> Result<()>,
) -> Result<C> {
    let path = dir.join(CONFIG_FILE);
    let config: C = read_json(&path)?;
    validate(&config).map_err(|e| Error::Format {
        path,
        reason: e.to_string(),
    })?;
    Ok(config)
}

/// Writes pretty JSON atomically (temp file + rename), so a crash never leaves half a file.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Model(format!("serialising JSON: {e}")))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text + "\n").map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Saves a network's weights as safetensors (via a temp file, then rename).
pub fn save_weights<M: Module>(net: &M, path: &Path) -> Result<()> {
    let tmp = path.with_extension("safetensors.tmp");
    let _ = std::fs::remove_file(&tmp);
    // burn's default metadata is a HashMap whose order varies per process; a single fixed entry
    // keeps the file byte-identical for identical weights.
    let mut store = SafetensorsStore::from_file(&tmp)
        .clear_metadata()
        .metadata("producer", "cinediff");
    net.save_into(&mut store)
        .map_err(|e| Error::Model(format!("{}: saving weights: {e}", path.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Loads weights into a freshly built network of `config`; every tensor must be present.
pub fn load_weights(config: &DiffusionModelConfig, path: &Path, device: &Device) -> Result<UNet> {
    load_weights_into(config.unet.init(device)?, path)
}

/// Loads safetensors weights into `net`, which must have exactly the file's tensors.
fn load_weights_into<M: Module>(net: M, path: &Path) -> Result<M> {
    load_weights_except(net, path, None)
}

/// As [`load_weights_into`], but `net`'s tensors under `new_stage` (a top-level field) may be
/// absent from the file and then keep their initialisation.
fn load_weights_except<M: Module>(mut net: M, path: &Path, new_stage: Option<&str>) -> Result<M> {
    if !path.is_file() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "weights file not found"),
        ));
    }
    let mut store = SafetensorsStore::from_file(path).allow_partial(new_stage.is_some());
    let result = net.load_from(&mut store).map_err(|e| Error::Format {
        path: path.to_path_buf(),
        reason: format!("cannot load weights: {e}"),
    })?;
    let in_new_stage = |tensor: &str| {
        new_stage.is_some_and(|stage| {
            tensor
                .strip_prefix(stage)
                .is_some_and(|rest| rest.starts_with('.'))
        })
    };
    let missing: Vec<&String> = result
        .missing
        .iter()
        .map(|(tensor, _)| tensor)
        .filter(|tensor| !in_new_stage(tensor))
        .collect();
    if let Some(stage) = new_stage {
        if result.applied.iter().any(|tensor| in_new_stage(tensor)) {
            return Err(Error::Format {
                path: path.to_path_buf(),
                reason: format!("the weights already hold a `{stage}` stage"),
            });
        }
    }
    if !result.errors.is_empty() || !missing.is_empty() || !result.unused.is_empty() {
        return Err(Error::Format {
            path: path.to_path_buf(),
            reason: format!(
                "weights do not match config.json: {} missing (e.g. {:?}), {} unexpected (e.g. {:?}), errors: {:?}",
                missing.len(),
                missing.iter().take(2).collect::<Vec<_>>(),
                result.unused.len(),
                result.unused.iter().take(2).collect::<Vec<_>>(),
                result.errors.iter().take(3).collect::<Vec<_>>()
            ),
        });
    }
    Ok(net)
}

/// Reads and validates `dir/config.json`.
pub fn read_model_config(dir: &Path) -> Result<DiffusionModelConfig> {
    read_config(dir, DiffusionModelConfig::validate)
}

/// Loads a model directory as a ready-to-use denoiser on `device`. An AID model directory gives
/// its per-frame U-Net: the prior without the conditioning branch, so every per-frame method can
/// run on exactly the network AID builds on.
pub fn load_denoiser(dir: &Path, device: &Device) -> Result<UNetDenoiser> {
    if is_aid_model(dir) {
        let (config, net) = load_aid(dir, device)?;
        return UNetDenoiser::new(config.diffusion, net.unet().clone(), device);
    }
    let config = read_model_config(dir)?;
    let net = load_weights(&config, &dir.join(WEIGHTS_FILE), device)?;
    UNetDenoiser::new(config, net, device)
}

/// Saves weights in burn's own format, which also records parameter ids: the optimizer state
/// and the EMA pairing are keyed by them, so a resumed run needs the original ids back.
fn save_with_ids<M: Module>(net: &M, path: &Path) -> Result<()> {
    let tmp = path.with_extension("bpk.tmp");
    net.clone().save_file(&tmp).map_err(|e| {
        Error::Model(format!(
            "{}: saving checkpoint weights: {e:?}",
            path.display()
        ))
    })?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Loads weights saved by [`save_with_ids`] into `net`, restoring their parameter ids.
fn load_with_ids<M: Module>(net: M, path: &Path) -> Result<M> {
    net.try_load_file(path).map_err(|e| Error::Format {
        path: path.to_path_buf(),
        reason: format!("cannot load checkpoint weights: {e:?}"),
    })
}

/// Writes `config.json` and the EMA weights as `model.safetensors`.
pub fn save_model(dir: &Path, config: &DiffusionModelConfig, trainer: &Trainer) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    write_json(&dir.join(CONFIG_FILE), config)?;
    save_weights(trainer.ema(), &dir.join(WEIGHTS_FILE))
}

fn checkpoint_paths(dir: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    checkpoint_paths_in(&dir.join(CHECKPOINT_DIR))
}

/// Files of a checkpoint directory `c`.
fn checkpoint_paths_in(c: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    (
        c.join("raw.bpk"),
        c.join("ema.bpk"),
        c.join("optimizer.bin"),
        c.join("state.json"),
    )
}

/// Writes the model (as [`save_model`]) and the resumable training state. The state is written
/// into a fresh directory that then replaces `checkpoint/`, so a crash leaves either the old or the
/// new checkpoint whole, never a mix.
pub fn save_checkpoint(dir: &Path, config: &DiffusionModelConfig, trainer: &Trainer) -> Result<()> {
    save_trainer_checkpoint(dir, config, trainer)
}

/// Replaces `dir/checkpoint/` with the raw and EMA weights (with parameter ids), the optimizer
/// state and `state`, staged in a fresh directory first.
fn write_checkpoint<M: Module>(
    dir: &Path,
    raw_net: &M,
    ema_net: &M,
    optimizer: &ModuleOptimizer,
    train_state: &TrainState,
) -> Result<()> {
    let ckpt = dir.join(CHECKPOINT_DIR);
    let staging = dir.join(format!("{CHECKPOINT_DIR}.tmp"));
    let retired = dir.join(format!("{CHECKPOINT_DIR}.old"));
    for stale in [&staging, &retired] {
        if stale.exists() {
            std::fs::remove_dir_all(stale).map_err(|e| Error::io(stale, e))?;
        }
    }
    std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    let (raw, ema, optim, state) = checkpoint_paths_in(&staging);
    save_with_ids(raw_net, &raw)?;
    save_with_ids(ema_net, &ema)?;
    optimizer.save(&optim).map_err(|e| {
        Error::Model(format!(
            "{}: saving optimizer state: {e:?}",
            optim.display()
        ))
    })?;
    write_json(&state, train_state)?;
    if ckpt.exists() {
        std::fs::rename(&ckpt, &retired).map_err(|e| Error::io(&ckpt, e))?;
    }
    std::fs::rename(&staging, &ckpt).map_err(|e| Error::io(&ckpt, e))?;
    if retired.exists() {
        std::fs::remove_dir_all(&retired).map_err(|e| Error::io(&retired, e))?;
    }
    Ok(())
}

/// Reads the training state saved with the checkpoint in `dir`.
pub fn read_train_state(dir: &Path) -> Result<TrainState> {
    read_json(&checkpoint_paths(dir).3)
}

/// Removes what a training run writes into `dir` (model, checkpoint, logs), for `--force`.
pub fn clear_model_dir(dir: &Path) -> Result<()> {
    for name in [
        CONFIG_FILE,
        WEIGHTS_FILE,
        "train_log.csv",
        "train_config.json",
    ] {
        let p = dir.join(name);
        if p.exists() {
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
    }
    for name in [
        CHECKPOINT_DIR.to_string(),
        format!("{CHECKPOINT_DIR}.tmp"),
        format!("{CHECKPOINT_DIR}.old"),
    ] {
        let p = dir.join(name);
        if p.exists() {
            std::fs::remove_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        }
    }
    Ok(())
}

/// True when `dir` holds a resumable checkpoint.
pub fn has_checkpoint(dir: &Path) -> bool {
    checkpoint_paths(dir).3.is_file()
}

/// Restores a trainer from `dir`'s checkpoint; `fresh` supplies the schedule and optimizer settings.
pub fn resume_trainer(
    dir: &Path,
    config: &DiffusionModelConfig,
    fresh: Trainer,
    device: &Device,
) -> Result<Trainer> {
    let (model, ema, optimizer, step) =
        read_checkpoint(dir, || config.unet.init(device), fresh.config())?;
    Ok(fresh.resume(model, ema, optimizer, step))
}

/// The raw and EMA networks (built by `build`, then loaded), optimizer and step of `dir`'s checkpoint.
fn read_checkpoint<M: Module>(
    dir: &Path,
    build: impl Fn() -> Result<M>,
    train: &TrainConfig,
) -> Result<(M, M, ModuleOptimizer, usize)> {
    let (raw, ema, optim, state) = checkpoint_paths(dir);
    let state: TrainState = read_json(&state)?;
    let model = load_with_ids(build()?, &raw)?;
    let ema = load_with_ids(build()?, &ema)?;
    let optimizer = build_optimizer(train)
        .load(&optim)
        .map_err(|e| Error::Format {
            path: optim.clone(),
            reason: format!("cannot load optimizer state: {e:?}"),
        })?;
    Ok((model, ema, optimizer, state.step))
}

/// Reads and validates a transition model's `dir/config.json`.
pub fn read_transition_config(dir: &Path) -> Result<TransitionModelConfig> {
    read_config(dir, TransitionModelConfig::validate)
}

/// Loads a transition model directory as a ready-to-use predictor on `device`.
pub fn load_transition(dir: &Path, device: &Device) -> Result<TransitionPredictor> {
    let (config, net) = load_transition_net(dir, device)?;
    TransitionPredictor::new(config, net, device)
}

/// A transition model directory's config and network (its EMA weights), e.g. to train further.
pub fn load_transition_net(
    dir: &Path,
    device: &Device,
) -> Result<(TransitionModelConfig, TransitionNet)> {
    let config = read_transition_config(dir)?;
    let net = load_weights_into(config.network.init(device)?, &dir.join(WEIGHTS_FILE))?;
    Ok((config, net))
}

/// [`save_network_checkpoint`] of any trainer: its raw and EMA networks, optimizer and state.
pub fn save_trainer_checkpoint<T: Checkpointed, C: Serialize>(
    dir: &Path,
    config: &C,
    trainer: &T,
) -> Result<()> {
    let (raw, ema) = trainer.networks();
    save_network_checkpoint(
        dir,
        config,
        raw,
        ema,
        trainer.optimizer_state(),
        &TrainState {
            step: trainer.steps_done(),
            train: trainer.train_config().clone(),
        },
    )
}

/// Writes any trained network's `config.json`, its EMA weights (`model.safetensors`) and the
/// resumable checkpoint (raw and EMA weights, optimizer, `state`).
pub fn save_network_checkpoint<M: Module, C: Serialize>(
    dir: &Path,
    config: &C,
    raw: &M,
    ema: &M,
    optimizer: &ModuleOptimizer,
    state: &TrainState,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    write_json(&dir.join(CONFIG_FILE), config)?;
    save_weights(ema, &dir.join(WEIGHTS_FILE))?;
    write_checkpoint(dir, raw, ema, optimizer, state)
}

/// Writes a transition model's `config.json`, EMA weights and resumable checkpoint.
pub fn save_transition_checkpoint(
    dir: &Path,
    config: &TransitionModelConfig,
    trainer: &TransitionTrainer,
) -> Result<()> {
    save_trainer_checkpoint(dir, config, trainer)
}

/// Writes an APS model's `config.json`, EMA flow weights and resumable checkpoint.
pub fn save_aps_checkpoint(
    dir: &Path,
    config: &ApsModelConfig,
    trainer: &ApsTrainer,
) -> Result<()> {
    save_trainer_checkpoint(dir, config, trainer)
}

/// Writes an AID model's `config.json`, EMA weights and resumable checkpoint.
pub fn save_aid_checkpoint(
    dir: &Path,
    config: &AidModelConfig,
    trainer: &AidTrainer,
) -> Result<()> {
    save_trainer_checkpoint(dir, config, trainer)
}

/// Whether `dir`'s config names an AID model (`"kind": "aid"`); unreadable configs are left to
/// the loaders' errors.
fn is_aid_model(dir: &Path) -> bool {
    read_json::<serde_json::Value>(&dir.join(CONFIG_FILE))
        .ok()
        .and_then(|v| v.get("kind")?.as_str().map(|k| k == AID_KIND))
        .unwrap_or(false)
}

/// Reads and validates an AID model's `dir/config.json`.
pub fn read_aid_config(dir: &Path) -> Result<AidModelConfig> {
    read_config(dir, AidModelConfig::validate)
}

/// Loads an AID model directory: its config and network (EMA weights) on `device`.
pub fn load_aid(dir: &Path, device: &Device) -> Result<(AidModelConfig, AidNet)> {
    let config = read_aid_config(dir)?;
    let net = load_weights_into(config.network.init(device)?, &dir.join(WEIGHTS_FILE))?;
    Ok((config, net))
}

/// Restores an AID trainer from `dir`'s checkpoint.
pub fn resume_aid_trainer(
    dir: &Path,
    config: &AidModelConfig,
    fresh: AidTrainer,
    device: &Device,
) -> Result<AidTrainer> {
    let (model, ema, optimizer, step) =
        read_checkpoint(dir, || config.network.init(device), fresh.config())?;
    Ok(fresh.resume(model, ema, optimizer, step))
}

/// Reads and validates an APS model's `dir/config.json`.
pub fn read_aps_config(dir: &Path) -> Result<ApsModelConfig> {
    read_config(dir, ApsModelConfig::validate)
}

/// Loads an APS model directory's config and flow (EMA weights) on `device`.
pub fn load_aps_flow(dir: &Path, device: &Device) -> Result<(ApsModelConfig, ConditionalFlow)> {
    let config = read_aps_config(dir)?;
    let flow = load_weights_into(config.flow.init(device)?, &dir.join(WEIGHTS_FILE))?;
    Ok((config, flow))
}

/// Loads an APS model directory's flow weights into a flow of `config` with a second mean stage
/// (`refine_net`) the saved flow lacks: the new stage keeps its initialisation, whose last layer
/// is zero, so the flow draws exactly what the saved one draws; every other tensor must be in
/// the file.
pub fn load_aps_flow_adding_refine_stage(
    dir: &Path,
    config: &ApsModelConfig,
    device: &Device,
) -> Result<ConditionalFlow> {
    load_weights_except(
        config.flow.init(device)?,
        &dir.join(WEIGHTS_FILE),
        Some("refine"),
    )
}

/// Loads an APS model directory as a ready-to-use sampler on `device`.
pub fn load_aps(dir: &Path, device: &Device) -> Result<ApsSampler> {
    let (config, flow) = load_aps_flow(dir, device)?;
    ApsSampler::new(config, flow, device)
}

/// Restores an APS trainer from `dir`'s checkpoint.
pub fn resume_aps_trainer(
    dir: &Path,
    config: &ApsModelConfig,
    fresh: ApsTrainer,
    device: &Device,
) -> Result<ApsTrainer> {
    let (model, ema, optimizer, step) =
        read_checkpoint(dir, || config.flow.init(device), fresh.config())?;
    Ok(fresh.resume(model, ema, optimizer, step))
}

/// Restores a transition trainer from `dir`'s checkpoint.
pub fn resume_transition_trainer(
    dir: &Path,
    config: &TransitionModelConfig,
    fresh: TransitionTrainer,
    device: &Device,
) -> Result<TransitionTrainer> {
    let (model, ema, optimizer, step) =
        read_checkpoint(dir, || config.network.init(device), fresh.config())?;
    Ok(fresh.resume(model, ema, optimizer, step))
}
