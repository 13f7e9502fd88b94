//! The ε-prediction U-Net (Ho et al. 2020 layout): sinusoidal time embedding + MLP, residual blocks
//! (GroupNorm, SiLU, conv 3×3, time embedding added), self-attention at chosen resolutions,
//! strided-conv downsampling, nearest + conv upsampling, and skip connections between the paths.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    Dropout, DropoutConfig, GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest image side a network may be built for (memory grows with its square).
pub const MAX_IMAGE_SIZE: usize = 512;
/// Most positions one self-attention layer may attend over (its matrix is this squared).
pub const MAX_ATTENTION_TOKENS: usize = 64 * 64;

/// Architecture of the U-Net; saved as JSON beside the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UNetConfig {
    /// 1 (magnitude) or 2 (complex as real, imaginary); `cinediff train` sets it from the data.
    #[serde(default)]
    pub in_channels: usize,
    /// Square image side the network is built for (must be divisible by 2^(levels−1));
    /// `cinediff train` sets it from the data.
    #[serde(default)]
    pub image_size: usize,
    /// Channels at the first level; level i has `base_channels · channel_mults[i]`.
    pub base_channels: usize,
    /// Channel multiplier per resolution level.
    pub channel_mults: Vec<usize>,
    /// Residual blocks per level on the way down (one more on the way up).
    pub blocks_per_level: usize,
    /// Resolutions (image side in pixels) at which self-attention follows each residual block.
    pub attention_resolutions: Vec<usize>,
    /// Dropout probability inside residual blocks (training only).
    pub dropout: f64,
    /// GroupNorm groups (must divide every level's channel count).
    pub groups: usize,
}

impl UNetConfig {
    /// Checks that the configuration describes a buildable network.
    pub fn validate(&self) -> Result<()> {
        if !(1..=2).contains(&self.in_channels) {
            return Err(Error::invalid(
                "unet in_channels",
                "1 or 2",
                self.in_channels,
            ));
        }
        if self.channel_mults.is_empty() || self.channel_mults.len() > 6 {
            return Err(Error::invalid(
                "unet channel_mults",
                "1 to 6 levels",
                format!("{:?}", self.channel_mults),
            ));
        }
        if self.base_channels == 0
            || !self.base_channels.is_multiple_of(2)
            || self.base_channels > 1024
        {
            return Err(Error::invalid(
                "unet base_channels",
                "an even number in 2..=1024",
                self.base_channels,
            ));
        }
        let down = 1usize << (self.channel_mults.len() - 1);
        if self.image_size < 4
            || self.image_size > MAX_IMAGE_SIZE
            || !self.image_size.is_multiple_of(down)
        {
            return Err(Error::invalid(
                "unet image_size",
                format!("4..={MAX_IMAGE_SIZE} and divisible by {down}"),
                self.image_size,
            ));
        }
        if self.groups == 0 || !self.base_channels.is_multiple_of(self.groups) {
            return Err(Error::invalid(
                "unet groups",
                format!("> 0 and dividing base_channels = {}", self.base_channels),
                self.groups,
            ));
        }
        let resolutions: Vec<usize> = (0..self.channel_mults.len())
            .map(|l| self.image_size >> l)
            .collect();
        for &r in &self.attention_resolutions {
            if !resolutions.contains(&r) || r * r > MAX_ATTENTION_TOKENS {
                return Err(Error::invalid(
                    "unet attention_resolutions",
                    format!("resolutions of the network {resolutions:?} with at most {MAX_ATTENTION_TOKENS} positions"),
                    format!("{:?}", self.attention_resolutions),
                ));
            }
        }
        for &m in &self.channel_mults {
            let c = self.base_channels * m;
            if m == 0 || m > 16 || !c.is_multiple_of(self.groups) {
                return Err(Error::invalid(
                    "unet channel_mults",
                    format!(
                        "multipliers in 1..=16 whose channel counts are divisible by groups = {}",
                        self.groups
                    ),
                    format!("{:?}", self.channel_mults),
                ));
            }
        }
        if self.blocks_per_level == 0 || self.blocks_per_level > 8 {
            return Err(Error::invalid(
                "unet blocks_per_level",
                "1..=8",
                self.blocks_per_level,
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::invalid("unet dropout", "0 ≤ p < 1", self.dropout));
        }
        Ok(())
    }

    /// Builds the network with fresh weights on `device`.
    pub fn init(&self, device: &Device) -> Result<UNet> {
        self.init_conditional(0, device)
    }

    /// [`Self::init`] for a network that also reads `extra_inputs` channels concatenated after the
    /// image (a conditioning image); it still outputs `in_channels`. APS's mean network uses it.
    pub fn init_conditional(&self, extra_inputs: usize, device: &Device) -> Result<UNet> {
        self.validate()?;
        if extra_inputs > 8 {
            return Err(Error::invalid("unet extra inputs", "0..=8", extra_inputs));
        }
        let base = self.base_channels;
        let temb = 4 * base;
        let conv3 = |cin: usize, cout: usize| {
            Conv2dConfig::new([cin, cout], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        let mut down = Vec::new();
        let mut skip_channels = vec![base];
        let mut ch = base;
        let mut res = self.image_size;
        let levels = self.channel_mults.len();
        for (i, &m) in self.channel_mults.iter().enumerate() {
            let cout = base * m;
            for _ in 0..self.blocks_per_level {
                let attn = self
                    .attention_resolutions
                    .contains(&res)
                    .then(|| AttentionBlock::new(cout, self.groups, device));
                down.push(DownStage::Block(LevelBlock {
                    res: ResBlock::new(ch, cout, temb, self.groups, self.dropout, device),
                    attn,
                }));
                ch = cout;
                skip_channels.push(ch);
            }
            if i + 1 < levels {
                down.push(DownStage::Downsample(
                    Conv2dConfig::new([ch, ch], [3, 3])
                        .with_stride([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(device),
                ));
                res /= 2;
                skip_channels.push(ch);
            }
        }
        let mid = (
            ResBlock::new(ch, ch, temb, self.groups, self.dropout, device),
            AttentionBlock::new(ch, self.groups, device),
            ResBlock::new(ch, ch, temb, self.groups, self.dropout, device),
        );
        let mut up = Vec::new();
        for (i, &m) in self.channel_mults.iter().enumerate().rev() {
            let cout = base * m;
            for _ in 0..=self.blocks_per_level {
                let skip = skip_channels
                    .pop()
                    .ok_or_else(|| Error::Model("unet skip bookkeeping".into()))?;
                let attn = self
                    .attention_resolutions
                    .contains(&res)
                    .then(|| AttentionBlock::new(cout, self.groups, device));
                up.push(UpStage::Block(LevelBlock {
                    res: ResBlock::new(ch + skip, cout, temb, self.groups, self.dropout, device),
                    attn,
                }));
                ch = cout;
            }
            if i > 0 {
                up.push(UpStage::Upsample(conv3(ch, ch)));
                res *= 2;
            }
        }
        Ok(UNet {
            time_mlp1: LinearConfig::new(base, temb).init(device),
            time_mlp2: LinearConfig::new(temb, temb).init(device),
            conv_in: conv3(self.in_channels + extra_inputs, base),
            down,
            mid_block1: mid.0,
            mid_attn: mid.1,
            mid_block2: mid.2,
            up,
            norm_out: GroupNormConfig::new(self.groups, ch).init(device),
            conv_out: conv3(ch, self.in_channels),
            time_dim: base,
        })
    }
}

/// Residual block: x + conv(SiLU(GN(conv(SiLU(GN(x))) + W·SiLU(temb)))), with a 1×1 skip when channels change.
#[derive(Module, Debug)]
pub struct ResBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    time_proj: Linear,
    norm2: GroupNorm,
    dropout: Dropout,
    conv2: Conv2d,
    skip: Option<Conv2d>,
}

impl ResBlock {
    pub(crate) fn new(
        cin: usize,
        cout: usize,
        temb: usize,
        groups: usize,
        dropout: f64,
        device: &Device,
    ) -> Self {
        let conv3 = |cin: usize, cout: usize| {
            Conv2dConfig::new([cin, cout], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        Self {
            norm1: GroupNormConfig::new(groups, cin).init(device),
            conv1: conv3(cin, cout),
            time_proj: LinearConfig::new(temb, cout).init(device),
            norm2: GroupNormConfig::new(groups, cout).init(device),
            dropout: DropoutConfig::new(dropout).init(),
            conv2: conv3(cout, cout),
            skip: (cin != cout).then(|| Conv2dConfig::new([cin, cout], [1, 1]).init(device)),
        }
    }

    pub(crate) fn forward(&self, x: Tensor<4>, temb: &Tensor<2>) -> Tensor<4> {
        let h = self.conv1.forward(silu(self.norm1.forward(x.clone())));
        let [n, c, _, _] = h.dims();
        let t = self
            .time_proj
            .forward(silu(temb.clone()))
            .reshape([n, c, 1, 1]);
        let h = h + t;
        let h = self
            .conv2
            .forward(self.dropout.forward(silu(self.norm2.forward(h))));
        let skip = match &self.skip {
            Some(conv) => conv.forward(x),
            None => x,
        };
        skip + h
    }
}

/// Single-head self-attention over all positions: x + W_o · softmax(QᵀK/√C) V.
#[derive(Module, Debug)]
pub struct AttentionBlock {
    norm: GroupNorm,
    qkv: Conv2d,
    proj: Conv2d,
}

impl AttentionBlock {
    fn new(channels: usize, groups: usize, device: &Device) -> Self {
        Self {
            norm: GroupNormConfig::new(groups, channels).init(device),
            qkv: Conv2dConfig::new([channels, 3 * channels], [1, 1]).init(device),
            proj: Conv2dConfig::new([channels, channels], [1, 1]).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [n, c, h, w] = x.dims();
        let qkv = self
            .qkv
            .forward(self.norm.forward(x.clone()))
            .reshape([n, 3 * c, h * w]);
        let q = qkv.clone().narrow(1, 0, c).swap_dims(1, 2); // [n, hw, c]
        let k = qkv.clone().narrow(1, c, c); // [n, c, hw]
        let v = qkv.narrow(1, 2 * c, c).swap_dims(1, 2); // [n, hw, c]
        let weights = softmax(q.matmul(k).mul_scalar(1.0 / (c as f64).sqrt()), 2);
        let out = weights.matmul(v).swap_dims(1, 2).reshape([n, c, h, w]);
        x + self.proj.forward(out)
    }
}

/// A residual block, optionally followed by self-attention.
#[derive(Module, Debug)]
pub struct LevelBlock {
    res: ResBlock,
    attn: Option<AttentionBlock>,
}

impl LevelBlock {
    fn forward(&self, x: Tensor<4>, temb: &Tensor<2>) -> Tensor<4> {
        let h = self.res.forward(x, temb);
        match &self.attn {
            Some(a) => a.forward(h),
            None => h,
        }
    }
}

/// One stage of the contracting path.
#[allow(clippy::large_enum_variant)] // a handful per network, built once
#[derive(Module, Debug)]
pub enum DownStage {
    /// A residual block (+ attention).
    Block(LevelBlock),
    /// Stride-2 3×3 convolution.
    Downsample(Conv2d),
}

/// One stage of the expanding path.
#[allow(clippy::large_enum_variant)] // a handful per network, built once
#[derive(Module, Debug)]
pub enum UpStage {
    /// A residual block (+ attention) on [x, skip] concatenated.
    Block(LevelBlock),
    /// Nearest-neighbour ×2 then a 3×3 convolution.
    Upsample(Conv2d),
}

/// The ε-prediction U-Net.
#[derive(Module, Debug)]
pub struct UNet {
    time_mlp1: Linear,
    time_mlp2: Linear,
    conv_in: Conv2d,
    down: Vec<DownStage>,
    mid_block1: ResBlock,
    mid_attn: AttentionBlock,
    mid_block2: ResBlock,
    up: Vec<UpStage>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
    time_dim: usize,
}

impl UNet {
    /// The same network with its last convolution zeroed, so it outputs 0 until trained (a
    /// residual correction that starts as "no change").
    pub fn with_zero_output(mut self) -> Self {
        self.conv_out.weight = self.conv_out.weight.map(|w| w.zeros_like());
        self.conv_out.bias = self.conv_out.bias.map(|b| b.map(|b| b.zeros_like()));
        self
    }

    /// ε̂ = ε_θ(x_t, t) for images `x` `[n, c, h, w]` and one timestep per image.
    pub fn forward(&self, x: Tensor<4>, timesteps: &[usize]) -> Tensor<4> {
        self.forward_with_hook(x, timesteps, &mut |_, h| h)
    }

    /// The time embedding MLP(sinusoid(t)) `[n, 4·base]` the residual blocks receive.
    pub fn time_embedding(&self, timesteps: &[usize], device: &Device) -> Tensor<2> {
        let temb = sinusoidal_embedding(timesteps, self.time_dim, device);
        self.time_mlp2.forward(silu(self.time_mlp1.forward(temb)))
    }

    /// [`Self::forward`] with `hook(level, h)` applied to the output of the first block of every
    /// encoder level (AID injects its conditioning features there).
    pub fn forward_with_hook(
        &self,
        x: Tensor<4>,
        timesteps: &[usize],
        hook: &mut dyn FnMut(usize, Tensor<4>) -> Tensor<4>,
    ) -> Tensor<4> {
        let device = x.device();
        let temb = self.time_embedding(timesteps, &device);
        let mut h = self.conv_in.forward(x);
        let mut skips = vec![h.clone()];
        let (mut level, mut first_of_level) = (0usize, true);
        for stage in &self.down {
            h = match stage {
                DownStage::Block(block) => {
                    let out = block.forward(h, &temb);
                    if first_of_level {
                        first_of_level = false;
                        hook(level, out)
                    } else {
                        out
                    }
                }
                DownStage::Downsample(conv) => {
                    level += 1;
                    first_of_level = true;
                    conv.forward(h)
                }
            };
            skips.push(h.clone());
        }
        h = self.mid_block1.forward(h, &temb);
        h = self.mid_attn.forward(h);
        h = self.mid_block2.forward(h, &temb);
        for stage in &self.up {
            h = match stage {
                UpStage::Block(block) => {
                    // Construction pairs every up block with one skip, so the stack never runs dry.
                    let skip = skips.pop().expect("one skip per up block");
                    block.forward(Tensor::cat(vec![h, skip], 1), &temb)
                }
                UpStage::Upsample(conv) => conv.forward(upsample_nearest2(h)),
            };
        }
        self.conv_out.forward(silu(self.norm_out.forward(h)))
    }
}

/// Nearest-neighbour ×2 upsampling by broadcasting (no interpolation kernel needed).
fn upsample_nearest2(x: Tensor<4>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h, 1, w, 1])
        .expand([n, c, h, 2, w, 2])
        .reshape([n, c, 2 * h, 2 * w])
}

/// Sinusoidal embedding [sin(t·f_i), cos(t·f_i)], f_i = exp(−ln(10⁴)·i/(d/2)), i < d/2.
pub fn sinusoidal_embedding(timesteps: &[usize], dim: usize, device: &Device) -> Tensor<2> {
    let half = dim / 2;
    let mut data = Vec::with_capacity(timesteps.len() * dim);
    for &t in timesteps {
        let freqs = (0..half).map(|i| (-(10000f64.ln()) * i as f64 / half as f64).exp());
        let angles: Vec<f64> = freqs.map(|f| t as f64 * f).collect();
        data.extend(angles.iter().map(|a| a.sin() as f32));
        data.extend(angles.iter().map(|a| a.cos() as f32));
    }
    Tensor::from_data(TensorData::new(data, [timesteps.len(), dim]), device)
}
