//! The one training loop for ε-prediction diffusion models: AdamW, warm-up then cosine learning
//! rate, gradient-norm clipping, an EMA of the weights, random flips, MSE on ε.
//!
//! Each step draws all its randomness from `substream(seed, step)`, so a resumed run continues
//! exactly where the interrupted one would have gone.

pub mod aid;
pub mod aps;
pub mod preset;
pub mod transition;

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use crate::diffusion::schedule::NoiseSchedule;
use crate::error::{Error, Result};
use crate::image::ImageBatch;
use crate::nn::unet::UNet;
use crate::nn::unet_denoiser::DiffusionModelConfig;
use crate::nn::unet_denoiser::{tensor_from_slice, tensor_to_vec};
use crate::rng::{fill_standard_normal, substream};

pub use preset::Preset;

/// Which random flips augment the training images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Flips {
    /// No augmentation.
    None,
    /// Left–right mirror with probability ½.
    #[default]
    Horizontal,
    /// Independent left–right and up–down mirrors.
    Both,
}

impl std::str::FromStr for Flips {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Flips::None),
            "horizontal" => Ok(Flips::Horizontal),
            "both" => Ok(Flips::Both),
            other => Err(Error::invalid("flips", "none, horizontal or both", other)),
        }
    }
}

/// Optimisation settings (saved next to the model as part of the resolved config).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Optimizer steps in all.
    pub steps: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Linear warm-up length in steps.
    pub warmup_steps: usize,
    /// The cosine decay ends at `learning_rate · min_lr_ratio`.
    pub min_lr_ratio: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f32,
    /// Clip on the global gradient norm (all parameters together).
    pub grad_clip_norm: f32,
    /// EMA decay of the weights used for sampling.
    pub ema_decay: f64,
    /// Augmentation.
    pub flips: Flips,
    /// Seed of every random draw in training.
    pub seed: u64,
    /// One entry per time a resumed run changed its horizon (oldest first): the decay restarts
    /// there from the rate reached, so extending a run never raises its learning rate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lr_restarts: Vec<LrRestart>,
}

/// Where an extended run's cosine decay restarts: at `step`, from `learning_rate`, down to the
/// floor at the next horizon.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrRestart {
    /// The step the extension began at.
    pub step: usize,
    /// The rate the decay restarts from: the one the schedule had reached there, or a warm
    /// restart's chosen rate.
    pub learning_rate: f64,
    /// The run's `steps` before the extension (where the decay before `step` was heading).
    pub previous_steps: usize,
}

impl TrainConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            return Err(Error::invalid("steps", "> 0", self.steps));
        }
        if self.batch_size == 0 || self.batch_size > 4096 {
            return Err(Error::invalid("batch size", "1..=4096", self.batch_size));
        }
        let check_rate = |what: &str, lr: f64| {
            if lr.is_finite() && lr > 0.0 && lr < 1.0 {
                Ok(())
            } else {
                Err(Error::invalid(what, "0 < lr < 1", lr))
            }
        };
        check_rate("learning rate", self.learning_rate)?;
        if !(0.0..=1.0).contains(&self.min_lr_ratio) {
            return Err(Error::invalid("min_lr_ratio", "0..=1", self.min_lr_ratio));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return Err(Error::invalid("ema decay", "0 ≤ d < 1", self.ema_decay));
        }
        if !(self.grad_clip_norm.is_finite() && self.grad_clip_norm > 0.0) {
            return Err(Error::invalid("grad clip norm", "> 0", self.grad_clip_norm));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::invalid("weight decay", "≥ 0", self.weight_decay));
        }
        for r in &self.lr_restarts {
            check_rate("restart learning rate", r.learning_rate)?;
            if r.step >= self.steps {
                return Err(Error::invalid(
                    "steps after a learning-rate restart",
                    format!("> {} (the step it restarts at)", r.step),
                    self.steps,
                ));
            }
        }
        Ok(())
    }

    /// This run resumed at `at_step` and continued to `steps` in all: the same settings, the
    /// cosine decay (once past warm-up) restarting from the rate reached at `at_step`, so that
    /// extending a run does not raise its learning rate.
    pub fn extended(&self, steps: usize, at_step: usize) -> Self {
        self.extended_from(steps, at_step, None)
    }

    /// [`Self::extended`], with `warm_restart` (if given) as the rate the decay restarts from at
    /// `at_step` instead of the rate reached there (SGDR-style warm restart, Loshchilov & Hutter
    /// 2017): a run that ended on its floor while still improving continues at a useful rate.
    pub fn extended_from(&self, steps: usize, at_step: usize, warm_restart: Option<f64>) -> Self {
        let mut out = self.clone();
        let restart_rate = warm_restart.or_else(|| {
            (steps != self.steps && at_step >= self.warmup_steps)
                .then(|| self.learning_rate_at(at_step))
        });
        if let Some(learning_rate) = restart_rate {
            out.lr_restarts.push(LrRestart {
                step: at_step,
                learning_rate,
                previous_steps: self.steps,
            });
        }
        out.steps = steps;
        out
    }

    /// Learning rate at `step` (0-based): linear warm-up to the peak, then cosine decay to
    /// `peak · min_lr_ratio` at `steps` (after an [`LrRestart`], from its rate at its step; the
    /// steps before it keep the schedule they ran with).
    pub fn learning_rate_at(&self, step: usize) -> f64 {
        let peak = self.learning_rate;
        let floor = peak * self.min_lr_ratio;
        // The horizon of the segment `step` lies in: the next restart's previous one, or `steps`.
        let segment = self.lr_restarts.iter().rposition(|r| step >= r.step);
        let next = segment.map_or(0, |i| i + 1);
        let horizon = self
            .lr_restarts
            .get(next)
            .map_or(self.steps, |r| r.previous_steps);
        if let Some(r) = segment.map(|i| self.lr_restarts[i]) {
            let span = horizon.saturating_sub(r.step).max(1) as f64;
            let progress = ((step - r.step) as f64 / span).min(1.0);
            let top = r.learning_rate.max(floor);
            return floor + (top - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        }
        if step < self.warmup_steps {
            return peak * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = (horizon.saturating_sub(self.warmup_steps)).max(1) as f64;
        let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
        floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

/// AdamW with the run's weight decay, fresh state. (Clipping is done on the global gradient norm
/// by the trainer; burn's built-in clipping works per tensor.)
pub fn build_optimizer(config: &TrainConfig) -> ModuleOptimizer {
    AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .init()
}

/// What one optimizer step reports.
#[derive(Clone, Copy, Debug)]
pub struct StepReport {
    /// 1-based count of steps done.
    pub step: usize,
    /// MSE on ε of this batch.
    pub loss: f32,
    /// Learning rate used.
    pub learning_rate: f64,
}

/// The training state: network, EMA copy, optimizer, step counter.
pub struct Trainer {
    config: TrainConfig,
    schedule: NoiseSchedule,
    model: UNet,
    ema: UNet,
    optimizer: ModuleOptimizer,
    step: usize,
    device: Device,
    image_shape: [usize; 3],
}

impl Trainer {
    /// Starts training `model` (moved to the autodiff version of `device`).
    pub fn new(
        config: TrainConfig,
        model_config: &DiffusionModelConfig,
        model: UNet,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        model_config.validate()?;
        let schedule = model_config.noise_schedule()?;
        let u = &model_config.unet;
        let image_shape = [u.in_channels, u.image_size, u.image_size];
        let train_device = device.clone().autodiff();
        // Through `valid()` so a model that is already on an autodiff device becomes fresh leaves.
        let model = model.valid().to_device(&train_device).train();
        let ema = model.valid().to_device(device);
        let optimizer = build_optimizer(&config);
        Ok(Self {
            config,
            schedule,
            model,
            ema,
            optimizer,
            step: 0,
            device: device.clone(),
            image_shape,
        })
    }

    /// Continues from saved weights, EMA weights, optimizer state and step count.
    pub fn resume(
        mut self,
        model: UNet,
        ema: UNet,
        optimizer: ModuleOptimizer,
        step: usize,
    ) -> Self {
        self.model = model
            .valid()
            .to_device(&self.device.clone().autodiff())
            .train();
        self.ema = ema.valid().to_device(&self.device);
        self.optimizer = optimizer;
        self.step = step;
        self
    }

    /// Steps done so far.
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The raw (non-averaged) network.
    pub fn model(&self) -> &UNet {
        &self.model
    }

    /// The EMA network, used for sampling.
    pub fn ema(&self) -> &UNet {
        &self.ema
    }

    /// The optimizer (for checkpoints).
    pub fn optimizer(&self) -> &ModuleOptimizer {
        &self.optimizer
    }

    /// True once every configured step has run.
    pub fn finished(&self) -> bool {
        self.step >= self.config.steps
    }

    /// One optimizer step on a random batch of `data` (already normalised, `[n, c, h, w]`).
    pub fn train_step(&mut self, data: &ImageBatch) -> Result<StepReport> {
        let mut rng = substream(self.config.seed, self.step as u64);
        let [n, c, h, w] = data.shape();
        if [c, h, w] != self.image_shape {
            return Err(Error::Shape {
                what: "training images [c, h, w]".into(),
                expected: self.image_shape.to_vec(),
                got: vec![c, h, w],
            });
        }
        // Dropout masks come from the backend's generator: reseed it from this step's stream so
        // they too are a function of (seed, step) and a resumed run repeats them.
        self.device.seed(rng.next_u64());
        let b = self.config.batch_size;
        let len = data.image_len();
        let t_total = self.schedule.num_train_timesteps();
        let mut clean = Vec::with_capacity(b * len);
        for _ in 0..b {
            let i = rng.random_range(0..n);
            let flip_x = matches!(self.config.flips, Flips::Horizontal | Flips::Both)
                && rng.random_bool(0.5);
            let flip_y = self.config.flips == Flips::Both && rng.random_bool(0.5);
            push_flipped(&mut clean, data.image(i), [c, h, w], flip_x, flip_y);
        }
        let timesteps: Vec<usize> = (0..b).map(|_| rng.random_range(0..t_total)).collect();
        let mut noise = vec![0.0f32; b * len];
        fill_standard_normal(&mut rng, &mut noise);
        let mut noisy = clean;
        for (k, &t) in timesteps.iter().enumerate() {
            let range = k * len..(k + 1) * len;
            self.schedule
                .noise_to(t, &mut noisy[range.clone()], &noise[range]);
        }
        let ad = self.device.clone().autodiff();
        let x = tensor_from_slice(&noisy, [b, c, h, w], &ad);
        let target = tensor_from_slice(&noise, [b, c, h, w], &ad);
        let pred = self.model.forward(x, &timesteps);
        let loss = (pred - target).powi_scalar(2).mean();
        let report = optimization_step(
            &mut self.model,
            &mut self.ema,
            &mut self.optimizer,
            &self.config,
            self.step,
            loss,
        )?;
        self.step = report.step;
        Ok(report)
    }
}

/// What a checkpoint takes from a trainer (every trainer implements it).
pub trait Checkpointed {
    /// The trained network type.
    type Net: Module;
    /// (raw, EMA) networks.
    fn networks(&self) -> (&Self::Net, &Self::Net);
    /// The optimizer and its state.
    fn optimizer_state(&self) -> &ModuleOptimizer;
    /// Steps done.
    fn steps_done(&self) -> usize;
    /// The optimisation settings.
    fn train_config(&self) -> &TrainConfig;
}

/// [`Checkpointed`] for a trainer type with `model()`, `ema()`, `optimizer()`, `step_count()` and
/// `config()` accessors.
macro_rules! impl_checkpointed {
    ($trainer:ty, $net:ty) => {
        impl $crate::train::Checkpointed for $trainer {
            type Net = $net;
            fn networks(&self) -> (&$net, &$net) {
                (self.model(), self.ema())
            }
            fn optimizer_state(&self) -> &burn::optim::ModuleOptimizer {
                self.optimizer()
            }
            fn steps_done(&self) -> usize {
                self.step_count()
            }
            fn train_config(&self) -> &$crate::train::TrainConfig {
                self.config()
            }
        }
    };
}
pub(crate) use impl_checkpointed;

impl_checkpointed!(Trainer, UNet);

/// Appends `img` (`[c, h, w]`, row-major) to `out`, mirrored left–right (`flip_x`) and/or
/// up–down (`flip_y`): the augmentation of every trainer.
pub(crate) fn push_flipped(
    out: &mut Vec<f32>,
    img: &[f32],
    [c, h, w]: [usize; 3],
    flip_x: bool,
    flip_y: bool,
) {
    for ch in 0..c {
        for y in 0..h {
            let sy = if flip_y { h - 1 - y } else { y };
            let row = &img[(ch * h + sy) * w..(ch * h + sy + 1) * w];
            if flip_x {
                out.extend(row.iter().rev());
            } else {
                out.extend_from_slice(row);
            }
        }
    }
}

/// One optimizer step on the scalar `loss` of `model` after `step` steps: a non-finite loss is
/// refused, then backward, global-norm clipping, AdamW at the scheduled learning rate and the EMA
/// update. The trainers of every model share it.
pub(crate) fn optimization_step<M: Module>(
    model: &mut M,
    ema: &mut M,
    optimizer: &mut ModuleOptimizer,
    config: &TrainConfig,
    step: usize,
    loss: Tensor<1>,
) -> Result<StepReport> {
    let loss_value = tensor_to_vec(loss.clone().inner())?[0];
    if !loss_value.is_finite() {
        return Err(Error::Model(format!(
            "training loss became {loss_value} at step {}; lower the learning rate",
            step + 1
        )));
    }
    let mut grads = GradientsParams::from_grads(loss.backward(), model);
    clip_global_norm(model, &mut grads, config.grad_clip_norm, step)?;
    let learning_rate = config.learning_rate_at(step);
    *model = optimizer.step(learning_rate, model.clone(), grads);
    *ema = ema_update(ema.clone(), model, config.ema_decay, step)?;
    Ok(StepReport {
        step: step + 1,
        loss: loss_value,
        learning_rate,
    })
}

/// Scales all gradients by min(1, c/‖g‖) with ‖g‖ the norm over every parameter of `model`
/// together; fails on a non-finite norm so bad weights never reach the model or a checkpoint.
pub(crate) fn clip_global_norm<M: Module>(
    model: &M,
    grads: &mut GradientsParams,
    clip: f32,
    step: usize,
) -> Result<()> {
    let mut norm = GradNormSquared { grads, sum: 0.0 };
    model.visit(&mut norm);
    let total = norm.sum.sqrt();
    if !total.is_finite() {
        return Err(Error::Model(format!(
            "gradient norm became {total} at step {}; lower the learning rate",
            step + 1
        )));
    }
    let clip = clip as f64;
    if total > clip {
        model.visit(&mut GradScale {
            grads,
            factor: clip / (total + 1e-6),
        });
    }
    Ok(())
}

/// EMA ← d·EMA + (1 − d)·θ after `step` optimizer steps, with the usual warm-up
/// d = min(decay, (1 + k)/(10 + k)) so early weights are not dominated by the random initialisation.
pub(crate) fn ema_update<M: Module>(ema: M, model: &M, decay: f64, step: usize) -> Result<M> {
    let k = step as f64;
    let decay = decay.min((1.0 + k) / (10.0 + k));
    let mut collector = ParamCollector::default();
    model.visit(&mut collector);
    let mut blend = EmaBlend {
        source: collector.params,
        decay,
    };
    let ema = ema.map(&mut blend);
    if !blend.source.is_empty() {
        return Err(Error::Model(format!(
            "EMA update: {} parameters of the network have no EMA counterpart",
            blend.source.len()
        )));
    }
    Ok(ema)
}

/// Σ‖g‖² over every parameter's gradient.
struct GradNormSquared<'a> {
    grads: &'a GradientsParams,
    sum: f64,
}

impl ModuleVisitor for GradNormSquared<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            // A failed read counts as non-finite, which the caller reports.
            self.sum += tensor_to_vec(g.powi_scalar(2).sum()).map_or(f64::NAN, |v| v[0] as f64);
        }
    }
}

/// Multiplies every parameter's gradient by `factor`.
struct GradScale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for GradScale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// Collects every float parameter of a module, flattened and detached, by id.
#[derive(Default)]
struct ParamCollector {
    params: HashMap<ParamId, Tensor<1>>,
}

impl ModuleVisitor for ParamCollector {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        // Frozen parameters keep the EMA's own value: d·v + (1 − d)·v is not v in f32.
        if !param.is_require_grad() {
            return;
        }
        let v = param.val().inner();
        let n = v.shape().num_elements();
        self.params.insert(param.id, v.reshape([n]));
    }
}

/// Blends each parameter toward the collected source values.
struct EmaBlend {
    source: HashMap<ParamId, Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for EmaBlend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(src) = self.source.remove(&param.id) else {
            return param;
        };
        let decay = self.decay;
        param.map(|t| {
            let shape = t.shape();
            t.mul_scalar(decay) + src.reshape(shape).mul_scalar(1.0 - decay)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(steps: usize) -> TrainConfig {
        TrainConfig {
            steps,
            batch_size: 1,
            learning_rate: 1e-3,
            warmup_steps: 10,
            min_lr_ratio: 0.1,
            weight_decay: 0.0,
            grad_clip_norm: 1.0,
            ema_decay: 0.99,
            flips: Flips::None,
            seed: 0,
            lr_restarts: Vec::new(),
        }
    }

    #[test]
    fn extending_a_run_never_raises_its_learning_rate() {
        let old = config(100);
        let new = old.extended(400, 80);
        // Before the extension point the schedule is the old one, bit for bit.
        for step in 0..80 {
            assert_eq!(new.learning_rate_at(step), old.learning_rate_at(step));
        }
        // Continuous at the restart, non-increasing after it, at the floor at the new end.
        let at = old.learning_rate_at(80);
        assert!((new.learning_rate_at(80) - at).abs() < 1e-15);
        for step in 80..400 {
            assert!(new.learning_rate_at(step + 1) <= new.learning_rate_at(step));
        }
        assert!((new.learning_rate_at(400) - 1e-4).abs() < 1e-12);
        // The plain recomputation this replaces jumps back up (cosine at 60/390 of the way).
        let mut naive = old.clone();
        naive.steps = 400;
        assert!(naive.learning_rate_at(80) > 2.0 * at);
        // Same horizon, or still in warm-up: nothing to restart.
        assert_eq!(old.extended(100, 80), old);
        assert!(old.extended(400, 5).lr_restarts.is_empty());
        // A second extension restarts from where the first had got to and keeps all history.
        let again = new.extended(800, 300);
        for step in 0..300 {
            assert_eq!(again.learning_rate_at(step), new.learning_rate_at(step));
        }
        assert!((again.learning_rate_at(300) - new.learning_rate_at(300)).abs() < 1e-15);
        assert!((again.learning_rate_at(800) - 1e-4).abs() < 1e-12);
    }

    #[test]
    fn a_warm_restart_starts_its_decay_at_the_chosen_rate() {
        let old = config(100);
        let new = old.extended_from(300, 100, Some(5e-4));
        new.validate().unwrap();
        for step in 0..100 {
            assert_eq!(new.learning_rate_at(step), old.learning_rate_at(step));
        }
        assert!((old.learning_rate_at(99) - 1e-4).abs() < 1e-6);
        assert!((new.learning_rate_at(100) - 5e-4).abs() < 1e-15);
        // Half way, the cosine is at the mid-point between the restart rate and the floor.
        assert!((new.learning_rate_at(200) - 3e-4).abs() < 1e-12);
        assert!((new.learning_rate_at(300) - 1e-4).abs() < 1e-12);
        // A restart needs steps after it and a usable rate.
        assert!(old.extended_from(100, 100, Some(5e-4)).validate().is_err());
        assert!(old.extended_from(300, 100, Some(0.0)).validate().is_err());
        assert!(old
            .extended_from(300, 100, Some(f64::NAN))
            .validate()
            .is_err());
    }
}
