//! Training of AID's autoregressive denoiser ([`crate::nn::aid`]) by teacher forcing: a window of
//! L + 1 consecutive frames (random start, random time reversal, flips shared by the window);
//! frames 0..L−1 condition, frames 1..=L are noised at one diffusion time per window (independent
//! noise per frame) and denoised in parallel; loss MSE on ε, t drawn as the config's
//! [`crate::diffusion::TimestepEmphasis`] says (uniform by default); with `conditioning_noise` s the
//! conditioning frames get N(0, u²) noise, u ~ U(0, s) per window. With `frozen_prior` (two-stage
//! training) the U-Net keeps the trained per-frame prior's weights and only the branch and the
//! connectors learn. The optimisation machinery is the diffusion trainer's.

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, RngCore};

use crate::diffusion::schedule::NoiseSchedule;
use crate::diffusion::TimestepDistribution;
use crate::error::{Error, Result};
use crate::nn::aid::{AidModelConfig, AidNet};
use crate::rng::{fill_standard_normal, substream};
use crate::train::transition::Sequences;
use crate::train::{
    build_optimizer, optimization_step, push_flipped, Flips, StepReport, TrainConfig,
};

/// AID's training state: network, EMA copy, optimizer, step counter.
pub struct AidTrainer {
    config: TrainConfig,
    model_config: AidModelConfig,
    schedule: NoiseSchedule,
    timesteps: TimestepDistribution,
    model: AidNet,
    ema: AidNet,
    optimizer: ModuleOptimizer,
    step: usize,
    device: Device,
}

impl AidTrainer {
    /// Starts training `net` (its U-Net frozen when the config says two-stage).
    pub fn new(
        config: TrainConfig,
        model_config: &AidModelConfig,
        net: AidNet,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        model_config.validate()?;
        let schedule = model_config.diffusion.noise_schedule()?;
        let timesteps =
            TimestepDistribution::for_emphasis(&schedule, model_config.timestep_emphasis)?;
        let mut trainer = Self {
            timesteps,
            optimizer: build_optimizer(&config),
            config,
            model_config: model_config.clone(),
            schedule,
            ema: net.valid().to_device(device),
            model: net,
            step: 0,
            device: device.clone(),
        };
        trainer.model = trainer.prepare(trainer.model.clone());
        Ok(trainer)
    }

    /// The network on the autodiff device, its U-Net frozen for two-stage training.
    fn prepare(&self, net: AidNet) -> AidNet {
        let net = net
            .valid()
            .to_device(&self.device.clone().autodiff())
            .train();
        if self.model_config.frozen_prior {
            net.freeze_prior()
        } else {
            net
        }
    }

    /// Continues from saved weights, EMA weights, optimizer state and step count.
    pub fn resume(
        mut self,
        model: AidNet,
        ema: AidNet,
        optimizer: ModuleOptimizer,
        step: usize,
    ) -> Self {
        self.model = self.prepare(model);
        self.ema = ema.valid().to_device(&self.device);
        self.optimizer = optimizer;
        self.step = step;
        self
    }

    /// Steps done so far.
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// The optimisation settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The raw network.
    pub fn model(&self) -> &AidNet {
        &self.model
    }

    /// The EMA network, used for sampling.
    pub fn ema(&self) -> &AidNet {
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

    /// One optimizer step on a batch of windows of `data` (normalised).
    pub fn train_step(&mut self, data: &Sequences) -> Result<StepReport> {
        let l = self.model_config.network.window;
        let unet = &self.model_config.network.unet;
        let [c, h, w] = [unet.in_channels, unet.image_size, unet.image_size];
        if data.frame_shape() != [c, h, w] {
            return Err(Error::Shape {
                what: "AID training frames [c, h, w]".into(),
                expected: vec![c, h, w],
                got: data.frame_shape().to_vec(),
            });
        }
        if data.frames() < l + 1 {
            return Err(Error::invalid(
                "training sequence length",
                format!("at least L + 1 = {} frames", l + 1),
                data.frames(),
            ));
        }
        let mut rng = substream(self.config.seed, self.step as u64);
        self.device.seed(rng.next_u64());
        let b = self.config.batch_size;
        let len = c * h * w;
        let mut frames = Vec::with_capacity(b * (l + 1) * len);
        for _ in 0..b {
            let s = rng.random_range(0..data.count());
            let first = rng.random_range(0..=data.frames() - (l + 1));
            let reverse = rng.random_bool(0.5);
            let flip_x = matches!(self.config.flips, Flips::Horizontal | Flips::Both)
                && rng.random_bool(0.5);
            let flip_y = self.config.flips == Flips::Both && rng.random_bool(0.5);
            for j in 0..=l {
                let t = if reverse { first + l - j } else { first + j };
                push_flipped(&mut frames, data.frame(s, t), [c, h, w], flip_x, flip_y);
            }
        }
        let timesteps: Vec<usize> = (0..b).map(|_| self.timesteps.draw(&mut rng).0).collect();
        let mut noise = vec![0.0f32; b * l * len];
        fill_standard_normal(&mut rng, &mut noise);
        let (mut cond, mut noisy) = (
            Vec::with_capacity(b * l * len),
            Vec::with_capacity(b * l * len),
        );
        for (k, &t) in timesteps.iter().enumerate() {
            let window = &frames[k * (l + 1) * len..(k + 1) * (l + 1) * len];
            cond.extend_from_slice(&window[..l * len]);
            let start = noisy.len();
            noisy.extend_from_slice(&window[len..]);
            self.schedule.noise_to(
                t,
                &mut noisy[start..],
                &noise[k * l * len..(k + 1) * l * len],
            );
        }
        if self.model_config.conditioning_noise > 0.0 {
            let mut extra = vec![0.0f32; b * l * len];
            fill_standard_normal(&mut rng, &mut extra);
            for (window, window_extra) in cond
                .chunks_exact_mut(l * len)
                .zip(extra.chunks_exact(l * len))
            {
                let s = self.model_config.conditioning_noise * rng.random::<f32>();
                for (v, n) in window.iter_mut().zip(window_extra) {
                    *v += s * n;
                }
            }
        }
        let ad = self.device.clone().autodiff();
        let shape = [b, l, c, h, w];
        let x: Tensor<5> = Tensor::from_data(TensorData::new(noisy, shape), &ad);
        let cond: Tensor<5> = Tensor::from_data(TensorData::new(cond, shape), &ad);
        let target: Tensor<5> = Tensor::from_data(TensorData::new(noise, shape), &ad);
        let loss = (self.model.forward(x, cond, &timesteps) - target)
            .powi_scalar(2)
            .mean();
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

crate::train::impl_checkpointed!(AidTrainer, AidNet);
