//! SeqDiff+'s transition model: a small video vision transformer (ViViT, Arnab et al. 2021, the
//! factorised-encoder variant) that predicts frame t+1 from the last K frames.
//!
//! Tubelet embedding (K frames × `patch_size`² pixels per token, temporal extent 1), learned space
//! and time position embeddings, `depth` blocks of factorised attention — spatial attention among
//! the tokens of each frame, then temporal attention along the K frames at each patch position,
//! then an MLP (pre-LayerNorm, residual) — and a linear head on the last frame's tokens that
//! predicts the change to the last frame: x̃_{t+1} = x_t + head(z_t). The head starts at zero, so an
//! untrained model predicts "no motion", which is exactly SeqDiff.
//!
//! Optionally (`linear_skip` = s > 0, our addition) a learned linear spatio-temporal filter of the
//! K frames is added, x̃_{t+1} = x_t + head(z_t) + Σ_k w_k ⊛ x_{t−K+1+k} with s×s kernels, also
//! starting at zero. Fed posterior samples, the best forecast removes their reconstruction error
//! as well as following the motion, and a local linear filter does the first part at pixel
//! resolution, which the transformer's 8×8 tokens learn slowly (issue 4: on SeqDiff's
//! reconstructions at 2 warm steps, a least-squares linear filter of the 8 frames with 7×7
//! kernels forecast with 0.854× the error of persistence, the ViViT trained on clean frames with
//! 0.936×).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

use crate::data::Normalization;
use crate::error::{Error, Result};
use crate::image::ImageBatch;
use crate::nn::unet_denoiser::tensor_to_vec;

/// Most tokens one attention may span (its matrix is this squared).
const MAX_TOKENS: usize = 4096;
/// Most context frames.
pub const MAX_CONTEXT_FRAMES: usize = 16;
/// Largest side of the linear skip filter's kernels.
const MAX_SKIP_KERNEL: usize = 15;

/// Architecture of the transition model; saved as JSON beside the weights.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionConfig {
    /// 1 (real) or 2 (complex as real, imaginary); set from the data.
    pub in_channels: usize,
    /// Frame height in pixels; set from the data.
    pub height: usize,
    /// Frame width in pixels; set from the data.
    pub width: usize,
    /// K, the past frames the model looks at.
    pub context_frames: usize,
    /// Side of a tubelet's spatial patch (divides height and width).
    pub patch_size: usize,
    /// Token width.
    pub dim: usize,
    /// Factorised attention blocks.
    pub depth: usize,
    /// Attention heads (divide `dim`).
    pub heads: usize,
    /// MLP hidden width = `mlp_ratio · dim`.
    pub mlp_ratio: usize,
    /// Side s of the linear skip filter's kernels (odd; 0: no skip). Absent in models saved
    /// before it existed, which have none.
    #[serde(default)]
    pub linear_skip: usize,
}

impl Default for TransitionConfig {
    /// 8×8 tubelets, width 128, 4 blocks of 4 heads, K = 4 (about 0.8 M parameters).
    fn default() -> Self {
        Self {
            in_channels: 1,
            height: 64,
            width: 64,
            context_frames: 4,
            patch_size: 8,
            dim: 128,
            depth: 4,
            heads: 4,
            mlp_ratio: 4,
            linear_skip: 0,
        }
    }
}

impl TransitionConfig {
    /// Tokens per frame, (h/p)·(w/p).
    pub fn tokens_per_frame(&self) -> usize {
        (self.height / self.patch_size.max(1)) * (self.width / self.patch_size.max(1))
    }

    /// Checks that the configuration describes a buildable network.
    pub fn validate(&self) -> Result<()> {
        if !(1..=2).contains(&self.in_channels) {
            return Err(Error::invalid(
                "transition in_channels",
                "1 or 2",
                self.in_channels,
            ));
        }
        if !(1..=MAX_CONTEXT_FRAMES).contains(&self.context_frames) {
            return Err(Error::invalid(
                "transition context_frames",
                format!("1..={MAX_CONTEXT_FRAMES}"),
                self.context_frames,
            ));
        }
        let p = self.patch_size;
        if p == 0
            || p > 64
            || self.height == 0
            || self.width == 0
            || self.height > 1024
            || self.width > 1024
            || !self.height.is_multiple_of(p)
            || !self.width.is_multiple_of(p)
        {
            return Err(Error::invalid(
                "transition patch_size / frame size",
                "a patch of 1..=64 pixels dividing a frame of at most 1024×1024",
                format!("patch {p} on {}×{}", self.height, self.width),
            ));
        }
        if self.tokens_per_frame() > MAX_TOKENS {
            return Err(Error::invalid(
                "transition tokens per frame",
                format!("at most {MAX_TOKENS} (use a larger patch_size)"),
                self.tokens_per_frame(),
            ));
        }
        if self.dim == 0
            || self.dim > 2048
            || self.heads == 0
            || !self.dim.is_multiple_of(self.heads)
        {
            return Err(Error::invalid(
                "transition dim / heads",
                "dim in 1..=2048 divisible by heads ≥ 1",
                format!("dim {} with {} heads", self.dim, self.heads),
            ));
        }
        if !(1..=32).contains(&self.depth) {
            return Err(Error::invalid("transition depth", "1..=32", self.depth));
        }
        if !(1..=8).contains(&self.mlp_ratio) {
            return Err(Error::invalid(
                "transition mlp_ratio",
                "1..=8",
                self.mlp_ratio,
            ));
        }
        if self.linear_skip > MAX_SKIP_KERNEL
            || (self.linear_skip > 0 && self.linear_skip.is_multiple_of(2))
        {
            return Err(Error::invalid(
                "transition linear_skip",
                format!("0 (none) or an odd kernel side up to {MAX_SKIP_KERNEL}"),
                self.linear_skip,
            ));
        }
        Ok(())
    }

    /// The linear skip filter (zero weights, so it starts by adding nothing), or `None` for
    /// `linear_skip` = 0.
    fn skip_filter(&self, device: &Device) -> Option<Conv2d> {
        let s = self.linear_skip;
        let pad = s / 2;
        (s > 0).then(|| {
            Conv2dConfig::new(
                [self.context_frames * self.in_channels, self.in_channels],
                [s, s],
            )
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .with_bias(false)
            .with_initializer(Initializer::Zeros)
            .init(device)
        })
    }

    /// Builds the network with fresh weights on `device` (the head at zero).
    pub fn init(&self, device: &Device) -> Result<TransitionNet> {
        self.validate()?;
        let patch_len = self.in_channels * self.patch_size * self.patch_size;
        let d = self.dim;
        let pos = |n: usize| {
            Param::from_tensor(Tensor::random(
                [n, d],
                Distribution::Normal(0.0, 0.02),
                device,
            ))
        };
        let blocks = (0..self.depth)
            .map(|_| FactorisedBlock::new(d, self.heads, self.mlp_ratio, device))
            .collect();
        Ok(TransitionNet {
            embed: LinearConfig::new(patch_len, d).init(device),
            pos_space: pos(self.tokens_per_frame()),
            pos_time: pos(self.context_frames),
            blocks,
            norm_out: LayerNormConfig::new(d).init(device),
            head: LinearConfig::new(d, patch_len)
                .with_initializer(Initializer::Zeros)
                .init(device),
            skip: self.skip_filter(device),
            patch_size: self.patch_size,
        })
    }
}

/// Multi-head self-attention over the middle axis of `[batch, tokens, dim]`.
#[derive(Module, Debug)]
pub struct SelfAttention {
    qkv: Linear,
    proj: Linear,
    heads: usize,
}

impl SelfAttention {
    fn new(dim: usize, heads: usize, device: &Device) -> Self {
        Self {
            qkv: LinearConfig::new(dim, 3 * dim).init(device),
            proj: LinearConfig::new(dim, dim).init(device),
            heads,
        }
    }

    /// softmax(q kᵀ/√d_head) v per head, then the output projection.
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, n, d] = x.dims();
        let h = self.heads;
        let dh = d / h;
        // [b, n, 3, h, dh] → [3, b, h, n, dh]
        let qkv = self
            .qkv
            .forward(x)
            .reshape([b, n, 3, h, dh])
            .permute([2, 0, 3, 1, 4]);
        let q = qkv.clone().narrow(0, 0, 1).reshape([b, h, n, dh]);
        let k = qkv.clone().narrow(0, 1, 1).reshape([b, h, n, dh]);
        let v = qkv.narrow(0, 2, 1).reshape([b, h, n, dh]);
        let weights = softmax(
            q.matmul(k.swap_dims(2, 3))
                .mul_scalar(1.0 / (dh as f64).sqrt()),
            3,
        );
        let out = weights.matmul(v).swap_dims(1, 2).reshape([b, n, d]);
        self.proj.forward(out)
    }
}

/// Spatial attention, temporal attention, MLP; each pre-normed and residual.
#[derive(Module, Debug)]
pub struct FactorisedBlock {
    norm_space: LayerNorm,
    attn_space: SelfAttention,
    norm_time: LayerNorm,
    attn_time: SelfAttention,
    norm_mlp: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl FactorisedBlock {
    fn new(dim: usize, heads: usize, mlp_ratio: usize, device: &Device) -> Self {
        Self {
            norm_space: LayerNormConfig::new(dim).init(device),
            attn_space: SelfAttention::new(dim, heads, device),
            norm_time: LayerNormConfig::new(dim).init(device),
            attn_time: SelfAttention::new(dim, heads, device),
            norm_mlp: LayerNormConfig::new(dim).init(device),
            fc1: LinearConfig::new(dim, mlp_ratio * dim).init(device),
            fc2: LinearConfig::new(mlp_ratio * dim, dim).init(device),
        }
    }

    /// Tokens `[b, k, n, d]` (k frames of n patches) → same shape.
    fn forward(&self, z: Tensor<4>) -> Tensor<4> {
        let [b, k, n, d] = z.dims();
        let s = z.reshape([b * k, n, d]);
        let s = s.clone() + self.attn_space.forward(self.norm_space.forward(s));
        let t = s
            .reshape([b, k, n, d])
            .swap_dims(1, 2)
            .reshape([b * n, k, d]);
        let t = t.clone() + self.attn_time.forward(self.norm_time.forward(t));
        let m = t.clone()
            + self
                .fc2
                .forward(gelu(self.fc1.forward(self.norm_mlp.forward(t))));
        m.reshape([b, n, k, d]).swap_dims(1, 2)
    }
}

/// The transition network; see the module documentation.
#[derive(Module, Debug)]
pub struct TransitionNet {
    embed: Linear,
    pos_space: Param<Tensor<2>>,
    pos_time: Param<Tensor<2>>,
    blocks: Vec<FactorisedBlock>,
    norm_out: LayerNorm,
    head: Linear,
    skip: Option<Conv2d>,
    patch_size: usize,
}

impl TransitionNet {
    /// x̃_{t+1} for clips `[b, K, c, h, w]` (oldest frame first) → `[b, c, h, w]`.
    pub fn forward(&self, clips: Tensor<5>) -> Tensor<4> {
        let [b, k, c, h, w] = clips.dims();
        let p = self.patch_size;
        let (hp, wp) = (h / p, w / p);
        let n = hp * wp;
        let last = clips.clone().narrow(1, k - 1, 1).reshape([b, c, h, w]);
        // [b, k, c, hp, p, wp, p] → [b, k, hp, wp, c, p, p] → [b, k, n, c·p²]
        let patches = clips
            .clone()
            .reshape([b * k, c, hp, p, wp, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([b, k, n, c * p * p]);
        let d = self.pos_space.dims()[1];
        let pos = self.pos_space.val().reshape([1, 1, n, d])
            + self.pos_time.val().narrow(0, 0, k).reshape([1, k, 1, d]);
        let mut z = self.embed.forward(patches) + pos;
        for block in &self.blocks {
            z = block.forward(z);
        }
        let latest = z.narrow(1, k - 1, 1).reshape([b, n, d]);
        let delta = self
            .head
            .forward(self.norm_out.forward(latest))
            .reshape([b, hp, wp, c, p, p])
            .permute([0, 3, 1, 4, 2, 5])
            .reshape([b, c, h, w]);
        match &self.skip {
            Some(filter) => last + delta + filter.forward(clips.reshape([b, k * c, h, w])),
            None => last + delta,
        }
    }

    /// The same network with a zero linear skip filter of side `config.linear_skip` added (a
    /// trained model gains one and at first predicts exactly as before); fails if it already
    /// has one.
    pub fn with_linear_skip(mut self, config: &TransitionConfig, device: &Device) -> Result<Self> {
        config.validate()?;
        if self.skip.is_some() {
            return Err(Error::invalid(
                "transition linear skip",
                "a model without one",
                "a model that already has one",
            ));
        }
        self.skip = config.skip_filter(device);
        Ok(self)
    }
}

/// How training windows are drawn from the sequences.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSampling {
    /// Largest frame stride (≥ 1); each window uses a stride uniform in 1..=max_stride.
    pub max_stride: usize,
    /// Reverse the window's time direction with probability 1/2.
    pub time_reversal: bool,
    /// Largest standard deviation (network units) of the noise added to the input frames.
    pub input_noise: f32,
}

impl Default for WindowSampling {
    /// Strides 1–3, time reversal, input noise up to 0.05.
    fn default() -> Self {
        Self {
            max_stride: 3,
            time_reversal: true,
            input_noise: 0.05,
        }
    }
}

/// Everything needed to rebuild and use a transition model (`config.json` of its directory).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionModelConfig {
    /// Always `"transition"`, so a diffusion prior's directory is not mistaken for one.
    pub kind: String,
    /// The network.
    pub network: TransitionConfig,
    /// Map from user units to the network's space.
    pub normalization: Normalization,
    /// How its training windows were drawn.
    pub windows: WindowSampling,
}

/// The value of [`TransitionModelConfig::kind`].
pub const TRANSITION_KIND: &str = "transition";

impl TransitionModelConfig {
    /// Checks the network, normalisation and window settings.
    pub fn validate(&self) -> Result<()> {
        if self.kind != TRANSITION_KIND {
            return Err(Error::invalid(
                "model kind",
                TRANSITION_KIND,
                self.kind.clone(),
            ));
        }
        self.network.validate()?;
        self.normalization.validate()?;
        if !(1..=16).contains(&self.windows.max_stride) {
            return Err(Error::invalid(
                "max_stride",
                "1..=16",
                self.windows.max_stride,
            ));
        }
        if !(self.windows.input_noise.is_finite()
            && (0.0..=1.0).contains(&self.windows.input_noise))
        {
            return Err(Error::invalid(
                "input_noise",
                "0..=1",
                self.windows.input_noise,
            ));
        }
        Ok(())
    }
}

/// A trained transition model ready to predict: x̃_{t+1} = f(x_{t−K+1}, …, x_t) in user units.
pub struct TransitionPredictor {
    config: TransitionModelConfig,
    net: TransitionNet,
    device: Device,
}

impl TransitionPredictor {
    /// Wraps a network built for `config`.
    pub fn new(config: TransitionModelConfig, net: TransitionNet, device: &Device) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            net,
            device: device.clone(),
        })
    }

    /// The model's configuration.
    pub fn config(&self) -> &TransitionModelConfig {
        &self.config
    }

    /// Predicts the next frame of each of `b` clips. `past` holds the most recent frames, oldest
    /// first, each `[b, c, h, w]` in user units; fewer than K frames are padded by repeating the
    /// oldest (a still scene before the first), more than K use the last K.
    pub fn predict(&self, past: &[ImageBatch]) -> Result<ImageBatch> {
        let net = &self.config.network;
        let k = net.context_frames;
        let expected = [net.in_channels, net.height, net.width];
        let Some(first) = past.first() else {
            return Err(Error::invalid(
                "transition input",
                "at least 1 past frame",
                0,
            ));
        };
        let b = first.batch_size();
        for (i, frame) in past.iter().enumerate() {
            let [fb, c, h, w] = frame.shape();
            if fb != b || [c, h, w] != expected {
                return Err(Error::Shape {
                    what: format!("transition input frame {i} [b, c, h, w]"),
                    expected: vec![b, expected[0], expected[1], expected[2]],
                    got: frame.shape().to_vec(),
                });
            }
            frame.ensure_finite("transition input")?;
        }
        let recent = &past[past.len().saturating_sub(k)..];
        let pad = k - recent.len();
        let len = first.image_len();
        let norm = self.config.normalization;
        let mut clips = Vec::with_capacity(b * k * len);
        for i in 0..b {
            for j in 0..k {
                let frame = &recent[j.saturating_sub(pad)];
                let start = clips.len();
                clips.extend_from_slice(frame.image(i));
                norm.normalize(&mut clips[start..]);
            }
        }
        let [c, h, w] = expected;
        let x = Tensor::from_data(
            burn::tensor::TensorData::new(clips, [b, k, c, h, w]),
            &self.device,
        );
        let mut out = tensor_to_vec(self.net.forward(x))?;
        norm.denormalize(&mut out);
        let out = ImageBatch::new([b, c, h, w], out)?;
        out.ensure_finite("transition prediction")?;
        Ok(out)
    }

    /// Forecast error over one sequence (frames oldest first, each `[1, c, h, w]`): for every t
    /// with K frames up to it, Σ‖x̃_{t+1} − x_{t+1}‖² of the model and Σ‖x_t − x_{t+1}‖² of
    /// persistence, SeqDiff's "nothing moves". Their ratio says what the model knows of the motion.
    pub fn forecast_errors(&self, frames: &[ImageBatch]) -> Result<ForecastErrors> {
        self.paired_forecast_errors(frames, frames)
    }

    /// [`Self::forecast_errors`] with the model fed `inputs` (posterior samples of the sequence,
    /// say) and scored against `targets` (its true frames): x̃_{t+1} from inputs t−K+1..=t and
    /// persistence's input t, both against target t+1.
    pub fn paired_forecast_errors(
        &self,
        inputs: &[ImageBatch],
        targets: &[ImageBatch],
    ) -> Result<ForecastErrors> {
        if inputs.len() != targets.len() {
            return Err(Error::invalid(
                "forecast inputs",
                format!("{} frames, one per target", targets.len()),
                inputs.len(),
            ));
        }
        let k = self.config.network.context_frames;
        let mut errors = ForecastErrors::default();
        for t in k - 1..inputs.len().saturating_sub(1) {
            let predicted = self.predict(&inputs[t + 1 - k..=t])?;
            let next = &targets[t + 1];
            next.ensure_same_shape("forecast target", &predicted)?;
            for ((p, n), l) in predicted
                .data()
                .iter()
                .zip(next.data())
                .zip(inputs[t].data())
            {
                errors.model += f64::from(p - n).powi(2);
                errors.persistence += f64::from(l - n).powi(2);
            }
            errors.values += next.data().len();
        }
        Ok(errors)
    }
}

/// Summed squared forecast errors of a transition model and of persistence (x̃_{t+1} = x_t).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ForecastErrors {
    /// Σ‖x̃_{t+1} − x_{t+1}‖² of the model.
    pub model: f64,
    /// Σ‖x_t − x_{t+1}‖² of persistence.
    pub persistence: f64,
    /// Values summed over (windows × pixels × channels).
    pub values: usize,
}

impl ForecastErrors {
    /// Adds another sequence's errors.
    pub fn add(&mut self, other: ForecastErrors) {
        self.model += other.model;
        self.persistence += other.persistence;
        self.values += other.values;
    }

    /// MSE of the model over MSE of persistence (below 1: better than "nothing moves").
    pub fn ratio(&self) -> f64 {
        self.model / self.persistence
    }
}
