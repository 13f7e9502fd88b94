//! Training of SeqDiff+'s transition model: windows of K + 1 consecutive frames drawn from training
//! sequences, MSE between the prediction from the first K and the last. The optimisation machinery
//! (AdamW, warm-up + cosine learning rate, global-norm clipping, EMA, per-step RNG streams) is the
//! diffusion trainer's.
//!
//! Augmentation, all drawn from the step's stream: flips (the same for every frame of a window),
//! time reversal, a random frame stride in 1..=`max_stride` (so the model sees motion faster than
//! the training data's, as in a sequence acquired at a lower frame rate or a faster heart), and
//! Gaussian noise of a random level up to `input_noise` on the K input frames (the model is fed
//! posterior samples, not clean frames, at reconstruction time). Closer to what the model is fed:
//! paired inputs ([`Sequences::with_inputs`]), real posterior samples of the training sequences
//! (the input noise is still added to them; set it to 0 to train on them as they are).

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, RngCore};

use crate::error::{Error, Result};
use crate::image::ImageBatch;
use crate::nn::transition::{TransitionModelConfig, TransitionNet};
use crate::rng::{fill_standard_normal, substream, SeededRng};
use crate::train::{
    build_optimizer, optimization_step, push_flipped, Flips, StepReport, TrainConfig,
};

/// Training sequences in network space: `count` sequences of `frames` images `[c, h, w]`, and
/// optionally the model's inputs paired with them frame for frame (posterior samples of the same
/// sequences, say), so that it learns to predict the true next frame from what it is fed at
/// reconstruction time.
pub struct Sequences {
    images: ImageBatch,
    inputs: Option<ImageBatch>,
    frames: usize,
}

impl Sequences {
    /// Groups `images` (`[count·frames, c, h, w]`, sequence-major) into sequences of `frames`.
    pub fn new(images: ImageBatch, frames: usize) -> Result<Self> {
        let n = images.batch_size();
        if frames == 0 || !n.is_multiple_of(frames) {
            return Err(Error::invalid(
                "training sequences",
                format!("a whole number of sequences of {frames} frames"),
                format!("{n} frames"),
            ));
        }
        Ok(Self {
            images,
            inputs: None,
            frames,
        })
    }

    /// The context frames are drawn from `inputs` (the same shape as the sequences, frame for
    /// frame), the targets from the sequences.
    pub fn with_inputs(mut self, inputs: ImageBatch) -> Result<Self> {
        if inputs.shape() != self.images.shape() {
            return Err(Error::Shape {
                what: "transition training inputs (paired with the sequences)".into(),
                expected: self.images.shape().to_vec(),
                got: inputs.shape().to_vec(),
            });
        }
        self.inputs = Some(inputs);
        Ok(self)
    }

    /// Number of sequences.
    pub fn count(&self) -> usize {
        self.images.batch_size() / self.frames
    }

    /// Frames per sequence.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// `[c, h, w]` of a frame.
    pub fn frame_shape(&self) -> [usize; 3] {
        let [_, c, h, w] = self.images.shape();
        [c, h, w]
    }

    /// Frame `t` of sequence `s`.
    pub(crate) fn frame(&self, s: usize, t: usize) -> &[f32] {
        self.images.image(s * self.frames + t)
    }

    /// What the model is fed as frame `t` of sequence `s`: the paired input if there is one.
    fn input_frame(&self, s: usize, t: usize) -> &[f32] {
        match &self.inputs {
            Some(inputs) => inputs.image(s * self.frames + t),
            None => self.frame(s, t),
        }
    }
}

/// The transition model's training state: network, EMA copy, optimizer, step counter.
pub struct TransitionTrainer {
    config: TrainConfig,
    model_config: TransitionModelConfig,
    model: TransitionNet,
    ema: TransitionNet,
    optimizer: ModuleOptimizer,
    step: usize,
    device: Device,
}

impl TransitionTrainer {
    /// Starts training `model` (moved to the autodiff version of `device`).
    pub fn new(
        config: TrainConfig,
        model_config: &TransitionModelConfig,
        model: TransitionNet,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        model_config.validate()?;
        let model = model.valid().to_device(&device.clone().autodiff()).train();
        let ema = model.valid().to_device(device);
        Ok(Self {
            optimizer: build_optimizer(&config),
            config,
            model_config: model_config.clone(),
            model,
            ema,
            step: 0,
            device: device.clone(),
        })
    }

    /// Continues from saved weights, EMA weights, optimizer state and step count.
    pub fn resume(
        mut self,
        model: TransitionNet,
        ema: TransitionNet,
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
    pub fn model(&self) -> &TransitionNet {
        &self.model
    }

    /// The EMA network, used for prediction.
    pub fn ema(&self) -> &TransitionNet {
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

    /// Draws one batch of windows: inputs `[b, K, c, h, w]` and targets `[b, c, h, w]`, flat.
    fn draw_windows(&self, data: &Sequences, rng: &mut SeededRng) -> Result<(Vec<f32>, Vec<f32>)> {
        let net = &self.model_config.network;
        let k = net.context_frames;
        let (c, h, w) = (net.in_channels, net.height, net.width);
        let [_, dc, dh, dw] = data.images.shape();
        if [dc, dh, dw] != [c, h, w] {
            return Err(Error::Shape {
                what: "transition training frames [c, h, w]".into(),
                expected: vec![c, h, w],
                got: vec![dc, dh, dw],
            });
        }
        let windows = &self.model_config.windows;
        // The largest stride whose window of K + 1 frames fits in a sequence.
        let fitting = (data.frames - 1) / k;
        if fitting == 0 {
            return Err(Error::invalid(
                "training sequence length",
                format!("at least K + 1 = {} frames", k + 1),
                data.frames,
            ));
        }
        let max_stride = windows.max_stride.min(fitting);
        let len = c * h * w;
        let b = self.config.batch_size;
        let mut inputs = Vec::with_capacity(b * k * len);
        let mut targets = Vec::with_capacity(b * len);
        for _ in 0..b {
            let s = rng.random_range(0..data.count());
            let stride = rng.random_range(1..=max_stride);
            let span = stride * k;
            let first = rng.random_range(0..data.frames - span);
            let reverse = windows.time_reversal && rng.random_bool(0.5);
            let flip_x = matches!(self.config.flips, Flips::Horizontal | Flips::Both)
                && rng.random_bool(0.5);
            let flip_y = self.config.flips == Flips::Both && rng.random_bool(0.5);
            let noise_level = windows.input_noise * rng.random::<f32>();
            for j in 0..=k {
                let t = if reverse {
                    first + span - j * stride
                } else {
                    first + j * stride
                };
                let (out, frame) = if j < k {
                    (&mut inputs, data.input_frame(s, t))
                } else {
                    (&mut targets, data.frame(s, t))
                };
                push_flipped(out, frame, [c, h, w], flip_x, flip_y);
            }
            let start = inputs.len() - k * len;
            let mut noise = vec![0.0f32; k * len];
            fill_standard_normal(rng, &mut noise);
            for (v, z) in inputs[start..].iter_mut().zip(&noise) {
                *v += noise_level * z;
            }
        }
        Ok((inputs, targets))
    }

    /// One optimizer step on a random batch of windows from `data` (normalised).
    pub fn train_step(&mut self, data: &Sequences) -> Result<StepReport> {
        let mut rng = substream(self.config.seed, self.step as u64);
        self.device.seed(rng.next_u64());
        let (inputs, targets) = self.draw_windows(data, &mut rng)?;
        let net = &self.model_config.network;
        let (b, k, c, h, w) = (
            self.config.batch_size,
            net.context_frames,
            net.in_channels,
            net.height,
            net.width,
        );
        let ad = self.device.clone().autodiff();
        let x: Tensor<5> = Tensor::from_data(TensorData::new(inputs, [b, k, c, h, w]), &ad);
        let target: Tensor<4> = Tensor::from_data(TensorData::new(targets, [b, c, h, w]), &ad);
        let loss = (self.model.forward(x) - target).powi_scalar(2).mean();
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

crate::train::impl_checkpointed!(TransitionTrainer, TransitionNet);
