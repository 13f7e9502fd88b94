//! AID's autoregressive denoiser (Luo, Huang & Uecker 2024): the per-frame U-Net plus a
//! temporal–spatial conditioning (TSC) branch, so ε_θ(x_n, t | x_{<n}).
//!
//! The branch encodes the conditioning frames with a stem like the U-Net's, then at every encoder
//! level runs a DiT-style block *along time at each spatial position* — LayerNorm without affine,
//! multi-head attention with a causal mask (position n sees frames ≤ n), MLP, both modulated by
//! adaLN-Zero from the diffusion time embedding — followed by a residual block (down-sampling
//! from the second level on) to the U-Net level's channels and resolution. A connector per level
//! injects the feature into the U-Net's first block of that level: (g, β, γ) = Conv1×1(SiLU(f))
//! and h ← h + g ⊙ MLP(GN(h)(1 + γ) + β). The connectors' and the adaLN projections start at zero,
//! so an untrained branch leaves the per-frame prior exactly as it is (two-stage training starts
//! from a trained prior and trains only the branch).
//!
//! Teacher forcing: targets `[B, L, C, H, W]` (frames 1..=L, noisy) with conditioning frames
//! `[B, L, C, H, W]` (frames 0..L−1, clean); target n is paired with conditioning position n, which
//! by causality has seen frames ≤ n only. Generation asks for the last position of a window.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::{gelu, silu, softmax};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::diffusion::TimestepEmphasis;
use crate::error::{Error, Result};
use crate::nn::unet::{ResBlock, UNet, UNetConfig};

/// Longest conditioning window.
pub const MAX_WINDOW: usize = 32;

/// `kind` of an AID model directory's config.json.
pub const AID_KIND: &str = "aid";

/// An AID model directory's `config.json`: the network, the diffusion it was trained with, and
/// how (two-stage: the per-frame prior frozen, only the branch trained).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AidModelConfig {
    /// Always [`AID_KIND`].
    pub kind: String,
    /// The branch around the per-frame U-Net (`network.unet` is the U-Net's architecture).
    pub network: AidConfig,
    /// Noise schedule, T and normalisation (the per-frame prior's, or fitted to the data).
    pub diffusion: crate::nn::unet_denoiser::DiffusionModelConfig,
    /// Two-stage training: the U-Net came from a trained prior and stays frozen.
    pub frozen_prior: bool,
    /// The prior the U-Net came from (a path, for the model card), if any.
    pub prior: Option<String>,
    /// Training only: each window's conditioning frames get N(0, s²) noise, s ~ U(0, this) (network
    /// units), so the model learns not to copy its history blindly (at sampling time the history
    /// is earlier reconstructions, not clean frames). 0 is the paper's clean teacher forcing.
    #[serde(default)]
    pub conditioning_noise: f32,
    /// Training only: which diffusion times the ε-loss draws (uniform is the paper's; a truncated
    /// v-weighting makes the branch learn to use its history at high noise, where generation
    /// decides a frame's layout).
    #[serde(default)]
    pub timestep_emphasis: TimestepEmphasis,
}

impl AidModelConfig {
    /// Checks every part (and that the network's U-Net is the diffusion config's).
    pub fn validate(&self) -> Result<()> {
        if self.kind != AID_KIND {
            return Err(Error::invalid(
                "model kind",
                format!("\"{AID_KIND}\""),
                format!("\"{}\"", self.kind),
            ));
        }
        self.network.validate()?;
        self.diffusion.validate()?;
        if !(0.0..=1.0).contains(&self.conditioning_noise) {
            return Err(Error::invalid(
                "aid conditioning_noise",
                "0 ≤ s ≤ 1",
                self.conditioning_noise,
            ));
        }
        self.timestep_emphasis.validate()?;
        if self.network.unet != self.diffusion.unet {
            return Err(Error::invalid(
                "aid network.unet",
                "the same architecture as diffusion.unet",
                "a different one",
            ));
        }
        Ok(())
    }
}

/// Architecture of the AID network; saved as JSON beside the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AidConfig {
    /// The per-frame U-Net (the prior's architecture).
    pub unet: UNetConfig,
    /// L: conditioning frames per window (training windows hold L + 1 frames).
    pub window: usize,
    /// Heads of the temporal attention (divide every level's channel count).
    pub heads: usize,
    /// MLP width of the DiT blocks = `mlp_ratio` · channels.
    pub mlp_ratio: usize,
}

impl AidConfig {
    /// Checks that the configuration describes a buildable network.
    pub fn validate(&self) -> Result<()> {
        self.unet.validate()?;
        if self.window == 0 || self.window > MAX_WINDOW {
            return Err(Error::invalid(
                "aid window",
                format!("1..={MAX_WINDOW}"),
                self.window,
            ));
        }
        if self.mlp_ratio == 0 || self.mlp_ratio > 8 {
            return Err(Error::invalid("aid mlp_ratio", "1..=8", self.mlp_ratio));
        }
        for ch in self.branch_input_channels() {
            if self.heads == 0 || !ch.is_multiple_of(self.heads) {
                return Err(Error::invalid(
                    "aid heads",
                    format!(
                        "a divisor of every branch level's channels {:?}",
                        self.branch_input_channels()
                    ),
                    self.heads,
                ));
            }
        }
        Ok(())
    }

    /// Channels the DiT block of each level attends over (the previous level's output).
    fn branch_input_channels(&self) -> Vec<usize> {
        let u = &self.unet;
        (0..u.channel_mults.len())
            .map(|l| {
                if l == 0 {
                    u.base_channels
                } else {
                    u.base_channels * u.channel_mults[l - 1]
                }
            })
            .collect()
    }

    /// Builds the network with a fresh U-Net.
    pub fn init(&self, device: &Device) -> Result<AidNet> {
        let unet = self.unet.init(device)?;
        self.init_with(unet, device)
    }

    /// Builds the network around an existing (e.g. trained) U-Net of this configuration.
    pub fn init_with(&self, unet: UNet, device: &Device) -> Result<AidNet> {
        self.validate()?;
        let u = &self.unet;
        let base = u.base_channels;
        let temb = 4 * base;
        let inputs = self.branch_input_channels();
        let mut branch = Vec::with_capacity(u.channel_mults.len());
        let mut connectors = Vec::with_capacity(u.channel_mults.len());
        for (l, &m) in u.channel_mults.iter().enumerate() {
            let cin = inputs[l];
            let cout = base * m;
            branch.push(BranchLevel {
                down: (l > 0).then(|| {
                    Conv2dConfig::new([cin, cin], [3, 3])
                        .with_stride([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(device)
                }),
                dit: TemporalBlock::new(cin, self.heads, self.mlp_ratio, temb, device),
                res: ResBlock::new(cin, cout, temb, u.groups, 0.0, device),
            });
            connectors.push(Connector::new(cout, u.groups, device));
        }
        Ok(AidNet {
            unet,
            stem: Conv2dConfig::new([u.in_channels, base], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            branch,
            connectors,
            window: self.window,
            in_channels: u.in_channels,
            image_size: u.image_size,
        })
    }
}

/// LayerNorm over the last axis without affine parameters (eps 1e-6).
fn layer_norm(x: Tensor<3>) -> Tensor<3> {
    let mean = x.clone().mean_dim(2);
    let centred = x - mean;
    let var = centred.clone().powi_scalar(2).mean_dim(2);
    centred / (var + 1e-6).sqrt()
}

/// Additive causal mask `[len, len]`: 0 where key ≤ query, −1e9 above the diagonal.
fn causal_mask(len: usize, device: &Device) -> Tensor<2> {
    let data: Vec<f32> = (0..len * len)
        .map(|k| if k % len > k / len { -1e9 } else { 0.0 })
        .collect();
    Tensor::from_data(TensorData::new(data, [len, len]), device)
}

/// DiT block over tokens `[N, L, C]` (N sequences of L time steps), adaLN-Zero modulated.
#[derive(Module, Debug)]
struct TemporalBlock {
    modulation: Linear,
    qkv: Linear,
    proj: Linear,
    mlp1: Linear,
    mlp2: Linear,
    heads: usize,
}

impl TemporalBlock {
    fn new(channels: usize, heads: usize, ratio: usize, temb: usize, device: &Device) -> Self {
        Self {
            modulation: LinearConfig::new(temb, 6 * channels)
                .with_initializer(Initializer::Zeros)
                .init(device),
            qkv: LinearConfig::new(channels, 3 * channels).init(device),
            proj: LinearConfig::new(channels, channels).init(device),
            mlp1: LinearConfig::new(channels, ratio * channels).init(device),
            mlp2: LinearConfig::new(ratio * channels, channels).init(device),
            heads,
        }
    }

    /// `x` `[N, L, C]`, `temb` `[N, T]` (the diffusion time embedding of each sequence).
    fn forward(&self, x: Tensor<3>, temb: Tensor<2>) -> Tensor<3> {
        let [n, len, c] = x.dims();
        let m = self.modulation.forward(silu(temb)).reshape([n, 1, 6 * c]);
        let part = |k: usize| m.clone().narrow(2, k * c, c).expand([n, len, c]);
        let (shift1, scale1, gate1) = (part(0), part(1), part(2));
        let (shift2, scale2, gate2) = (part(3), part(4), part(5));
        let h = layer_norm(x.clone()) * (scale1 + 1.0) + shift1;
        let x = x + gate1 * self.attention(h);
        let h = layer_norm(x.clone()) * (scale2 + 1.0) + shift2;
        let h = self.mlp2.forward(gelu(self.mlp1.forward(h)));
        x + gate2 * h
    }

    /// Causal multi-head self-attention along the L axis.
    fn attention(&self, x: Tensor<3>) -> Tensor<3> {
        let [n, len, c] = x.dims();
        let (heads, dh) = (self.heads, c / self.heads);
        let qkv = self
            .qkv
            .forward(x)
            .reshape([n, len, 3, heads, dh])
            .permute([2, 0, 3, 1, 4]);
        let q = qkv.clone().narrow(0, 0, 1).reshape([n, heads, len, dh]);
        let k = qkv.clone().narrow(0, 1, 1).reshape([n, heads, len, dh]);
        let v = qkv.narrow(0, 2, 1).reshape([n, heads, len, dh]);
        let mask = causal_mask(len, &q.device())
            .reshape([1, 1, len, len])
            .expand([n, heads, len, len]);
        let scores = q
            .matmul(k.swap_dims(2, 3))
            .mul_scalar(1.0 / (dh as f64).sqrt())
            + mask;
        let out = softmax(scores, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([n, len, c]);
        self.proj.forward(out)
    }
}

/// One level of the conditioning branch.
#[derive(Module, Debug)]
struct BranchLevel {
    down: Option<Conv2d>,
    dit: TemporalBlock,
    res: ResBlock,
}

/// Injects a branch feature into the U-Net: h + g ⊙ MLP(GN(h)(1 + γ) + β), (g, β, γ) from the
/// feature by a zero-initialised 1×1 convolution.
#[derive(Module, Debug)]
struct Connector {
    modulation: Conv2d,
    norm: GroupNorm,
    mlp1: Conv2d,
    mlp2: Conv2d,
}

impl Connector {
    fn new(channels: usize, groups: usize, device: &Device) -> Self {
        let conv1 = |cin: usize, cout: usize| Conv2dConfig::new([cin, cout], [1, 1]).init(device);
        Self {
            modulation: Conv2dConfig::new([channels, 3 * channels], [1, 1])
                .with_initializer(Initializer::Zeros)
                .init(device),
            norm: GroupNormConfig::new(groups, channels).init(device),
            mlp1: conv1(channels, channels),
            mlp2: conv1(channels, channels),
        }
    }

    fn forward(&self, h: Tensor<4>, feature: Tensor<4>) -> Tensor<4> {
        let [_, c, _, _] = h.dims();
        let m = self.modulation.forward(silu(feature));
        let gate = m.clone().narrow(1, 0, c);
        let shift = m.clone().narrow(1, c, c);
        let scale = m.narrow(1, 2 * c, c);
        let x = self.norm.forward(h.clone()) * (scale + 1.0) + shift;
        let x = self.mlp2.forward(silu(self.mlp1.forward(x)));
        h + gate * x
    }
}

/// The AID network.
#[derive(Module, Debug)]
pub struct AidNet {
    unet: UNet,
    stem: Conv2d,
    branch: Vec<BranchLevel>,
    connectors: Vec<Connector>,
    window: usize,
    in_channels: usize,
    image_size: usize,
}

/// `[B, L, …]` → `[B·L, …]` for 5-D frame stacks.
fn merge_frames(x: Tensor<5>) -> Tensor<4> {
    let [b, l, c, h, w] = x.dims();
    x.reshape([b * l, c, h, w])
}

impl AidNet {
    /// The per-frame U-Net.
    pub fn unet(&self) -> &UNet {
        &self.unet
    }

    /// `[c, h, w]` of a frame.
    pub fn frame_shape(&self) -> [usize; 3] {
        [self.in_channels, self.image_size, self.image_size]
    }

    /// L, the longest conditioning window.
    pub fn window(&self) -> usize {
        self.window
    }

    /// The same network with the U-Net frozen (no gradients, for two-stage training).
    pub fn freeze_prior(self) -> Self {
        Self {
            unet: self.unet.freeze(),
            ..self
        }
    }

    /// The branch's feature of every level for conditioning frames `cond` `[B, K, C, H, W]`
    /// (K ≤ L) at per-window timesteps: `[B·K, C_l, H_l, W_l]` per level, position-major within a
    /// window, each position having seen the frames up to itself only.
    pub fn condition(&self, cond: Tensor<5>, timesteps: &[usize]) -> Vec<Tensor<4>> {
        let [b, k, _, _, _] = cond.dims();
        let device = cond.device();
        let temb = self.unet.time_embedding(timesteps, &device); // [B, T]
        let [_, tdim] = temb.dims();
        let temb_frames = temb
            .clone()
            .reshape([b, 1, tdim])
            .expand([b, k, tdim])
            .reshape([b * k, tdim]);
        let mut f = self.stem.forward(merge_frames(cond));
        let mut out = Vec::with_capacity(self.branch.len());
        for level in &self.branch {
            if let Some(down) = &level.down {
                f = down.forward(f);
            }
            let [_, c, h, w] = f.dims();
            // (b k) c h w → (b h w) k c: attention along time at every position.
            let tokens =
                f.reshape([b, k, c, h * w])
                    .permute([0, 3, 1, 2])
                    .reshape([b * h * w, k, c]);
            let temb_tokens = temb
                .clone()
                .reshape([b, 1, tdim])
                .expand([b, h * w, tdim])
                .reshape([b * h * w, tdim]);
            let tokens = level.dit.forward(tokens, temb_tokens);
            f = tokens
                .reshape([b, h * w, k, c])
                .permute([0, 2, 3, 1])
                .reshape([b * k, c, h, w]);
            f = level.res.forward(f, &temb_frames);
            out.push(f.clone());
        }
        out
    }

    /// ε̂ for `targets` `[B, K, C, H, W]` (noisy frames 1..=K of each window) given `cond`
    /// `[B, K, C, H, W]` (clean frames 0..K−1), one timestep per window (teacher forcing).
    pub fn forward(&self, targets: Tensor<5>, cond: Tensor<5>, timesteps: &[usize]) -> Tensor<5> {
        let [b, k, c, h, w] = targets.dims();
        let features = self.condition(cond, timesteps);
        let per_frame: Vec<usize> = timesteps
            .iter()
            .flat_map(|&t| std::iter::repeat_n(t, k))
            .collect();
        let eps = self
            .unet
            .forward_with_hook(merge_frames(targets), &per_frame, &mut |l, hl| {
                self.connectors[l].forward(hl, features[l].clone())
            });
        eps.reshape([b, k, c, h, w])
    }

    /// ε̂ of the frame after `cond` `[B, K, C, H, W]` (its last position's features): `target`
    /// `[B, C, H, W]` noisy, one timestep per window. K = 0 gives the plain per-frame prior.
    pub fn forward_next(
        &self,
        target: Tensor<4>,
        cond: Option<Tensor<5>>,
        timesteps: &[usize],
    ) -> Tensor<4> {
        let Some(cond) = cond else {
            return self.unet.forward(target, timesteps);
        };
        let [b, k, _, _, _] = cond.dims();
        let features: Vec<Tensor<4>> = self
            .condition(cond, timesteps)
            .into_iter()
            .map(|f| {
                let [_, c, h, w] = f.dims();
                f.reshape([b, k, c, h, w])
                    .narrow(1, k - 1, 1)
                    .reshape([b, c, h, w])
            })
            .collect();
        self.unet
            .forward_with_hook(target, timesteps, &mut |l, hl| {
                self.connectors[l].forward(hl, features[l].clone())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::device::default_device;
    use crate::nn::unet_denoiser::tensor_to_vec;
    use burn::module::{ModuleMapper, Param};
    use burn::tensor::Distribution;

    /// Adds N(0, s²) to every weight, so the zero-initialised gates are open.
    struct Perturb(f64);

    impl ModuleMapper for Perturb {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let s = self.0;
            param.map(|t| {
                let noise = Tensor::random(t.shape(), Distribution::Normal(0.0, s), &t.device());
                t + noise
            })
        }
    }

    fn tiny() -> AidConfig {
        AidConfig {
            unet: UNetConfig {
                in_channels: 2,
                image_size: 8,
                base_channels: 8,
                channel_mults: vec![1, 2],
                blocks_per_level: 1,
                attention_resolutions: vec![4],
                dropout: 0.0,
                groups: 4,
            },
            window: 4,
            heads: 2,
            mlp_ratio: 2,
        }
    }

    fn random5(shape: [usize; 5], seed: u64, device: &Device) -> Vec<f32> {
        let mut v = vec![0.0f32; shape.iter().product()];
        crate::rng::fill_standard_normal(&mut crate::rng::substream(seed, 0), &mut v);
        let _ = device;
        v
    }

    fn t5(v: &[f32], shape: [usize; 5], device: &Device) -> Tensor<5> {
        Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
    }

    #[test]
    fn untrained_branch_leaves_the_prior_unchanged() {
        let device = default_device();
        let net = tiny().init(&device).unwrap();
        let shape = [2, 3, 2, 8, 8];
        let x = random5(shape, 1, &device);
        let c = random5(shape, 2, &device);
        let eps =
            tensor_to_vec(net.forward(t5(&x, shape, &device), t5(&c, shape, &device), &[10, 500]))
                .unwrap();
        let plain = tensor_to_vec(net.unet().forward(
            t5(&x, shape, &device).reshape([6, 2, 8, 8]),
            &[10, 10, 10, 500, 500, 500],
        ))
        .unwrap();
        assert_eq!(eps, plain);
    }

    #[test]
    fn later_frames_do_not_change_earlier_predictions() {
        let device = default_device();
        let net = tiny().init(&device).unwrap().map(&mut Perturb(0.05));
        let shape = [1, 4, 2, 8, 8];
        let x = random5(shape, 3, &device);
        let c = random5(shape, 4, &device);
        let eps =
            tensor_to_vec(net.forward(t5(&x, shape, &device), t5(&c, shape, &device), &[300]))
                .unwrap();
        // Change conditioning frames 2 and 3 (and target 3): positions 0 and 1 must be bitwise equal.
        let mut c2 = c.clone();
        let mut x2 = x.clone();
        let frame = 2 * 8 * 8;
        for v in &mut c2[2 * frame..] {
            *v += 1.0;
        }
        for v in &mut x2[3 * frame..] {
            *v -= 1.0;
        }
        let eps2 =
            tensor_to_vec(net.forward(t5(&x2, shape, &device), t5(&c2, shape, &device), &[300]))
                .unwrap();
        assert_eq!(
            &eps[..2 * frame],
            &eps2[..2 * frame],
            "positions 0, 1 changed"
        );
        assert_ne!(
            &eps[2 * frame..3 * frame],
            &eps2[2 * frame..3 * frame],
            "position 2 should see frame 2"
        );
    }

    #[test]
    fn parallel_forward_equals_frame_by_frame() {
        let device = default_device();
        let net = tiny().init(&device).unwrap().map(&mut Perturb(0.05));
        let shape = [1, 4, 2, 8, 8];
        let x = random5(shape, 5, &device);
        let c = random5(shape, 6, &device);
        let all =
            tensor_to_vec(net.forward(t5(&x, shape, &device), t5(&c, shape, &device), &[700]))
                .unwrap();
        let frame = 2 * 8 * 8;
        let mut worst = 0.0f32;
        for n in 0..4 {
            let cond = t5(&c[..(n + 1) * frame], [1, n + 1, 2, 8, 8], &device);
            let target = Tensor::<4>::from_data(
                TensorData::new(x[n * frame..(n + 1) * frame].to_vec(), [1, 2, 8, 8]),
                &device,
            );
            let one = tensor_to_vec(net.forward_next(target, Some(cond), &[700])).unwrap();
            for (a, b) in one.iter().zip(&all[n * frame..(n + 1) * frame]) {
                worst = worst.max((a - b).abs());
            }
        }
        assert!(worst < 1e-5, "max |parallel − sequential| = {worst}");
    }

    #[test]
    fn config_validation() {
        assert!(tiny().validate().is_ok());
        assert!(AidConfig {
            window: 0,
            ..tiny()
        }
        .validate()
        .is_err());
        assert!(AidConfig { heads: 3, ..tiny() }.validate().is_err());
    }
}
