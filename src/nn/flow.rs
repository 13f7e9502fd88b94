//! APS's amortised posterior: a conditional normalizing flow x = G_φ(z; c) with an exact
//! log-determinant, RealNVP/Glow style (Dinh et al. 2017, Kingma & Dhariwal 2018).
//!
//! z (the image's shape, N(0, I)) goes through `levels` squeezes (2×2 space-to-depth); at each
//! level `steps_per_level` steps of actnorm → invertible 1×1 convolution (LU-parametrised:
//! W = P·L·(U + diag(eˢ)), P the channel reversal) → affine coupling whose scale/shift network
//! sees the first half of the channels and conditioning features of that level. The levels are
//! undone by unsqueezes and a last conditional affine layer gives x = μ(c) + e^{ρ(c)} ⊙ h with
//! μ(c) = (Aᴴy part of c) + a learned correction. Every last layer of a learned network starts
//! at zero, so an untrained flow is x = Aᴴy + e^{ρ₀}·P(z): the zero-filled image plus noise.
//!
//! The conditioning image c `[B, cond_channels, H, W]` is the measurement seen in image space:
//! Aᴴy's channels (in network units) then the sampling pattern, so one network serves every
//! measurement of an operator family.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::nn::unet::{UNet, UNetConfig};
use crate::nn::unet_denoiser::tensor_to_vec;

/// Bound on |log-scale| of a coupling (soft, through tanh), for stable training.
const COUPLING_LOG_SCALE_LIMIT: f32 = 2.0;
/// Bound on the output layer's |ρ − ρ₀| (soft, through tanh).
const OUTPUT_LOG_SCALE_LIMIT: f32 = 4.0;

/// Architecture of the flow; saved as JSON beside the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowConfig {
    /// Image channels: 1 (real) or 2 (complex as re, im).
    pub in_channels: usize,
    /// Image height and width (divisible by 2^levels).
    pub image_size: usize,
    /// Channels of the conditioning image (Aᴴy's channels + 1 for the pattern).
    pub cond_channels: usize,
    /// Squeezes (scales).
    pub levels: usize,
    /// Actnorm + 1×1 convolution + coupling steps per level.
    pub steps_per_level: usize,
    /// Width of the coupling and conditioning networks.
    pub hidden: usize,
    /// Conditioning feature channels given to every coupling of a level.
    pub cond_features: usize,
    /// ρ₀: the output layer's initial log standard deviation (network units).
    pub initial_log_std: f32,
    /// A k-space scaling layer (complex images): h ↦ F⁻¹(e^{κ(pattern)} ⊙ F h), F the centred
    /// orthonormal 2-D DFT, κ from the sampling-pattern channel (zero at initialisation), so the
    /// spread of measured and unmeasured frequencies is learned separately.
    #[serde(default)]
    pub kspace_scale: bool,
    /// A U-Net that reads the whole conditioning image and adds a correction to the output's
    /// mean, μ(c) = Aᴴy + local(c) + U(c) (its last layer starts at zero). The coupling and
    /// output networks see only a few pixels around each position; undoing aliasing (MRI lines)
    /// moves content across the whole image, which needs this global view.
    #[serde(default)]
    pub mean_net: Option<UNetConfig>,
    /// Keep only the unmeasured frequencies of U(c): F⁻¹((1 − pattern) ⊙ F U(c)) (complex
    /// images with a k-space pattern, e.g. single-coil Cartesian MRI), so the correction cannot
    /// disturb what was measured and only the prior term shapes it.
    #[serde(default)]
    pub mean_unmeasured_only: bool,
    /// A second U-Net that reads the first estimate and the pattern and corrects it,
    /// μ = μ₁ + U₂(μ₁, pattern) with μ₁ = Aᴴy + local(c) + U(c) (an unrolled second stage; its
    /// last layer starts at zero, so adding it to a trained flow leaves the flow unchanged).
    /// Restricted to the unmeasured frequencies like U when `mean_unmeasured_only`.
    #[serde(default)]
    pub refine_net: Option<UNetConfig>,
}

impl Default for FlowConfig {
    /// Complex 64×64, 2 levels of 4 steps, width 64, 16 conditioning features, e^{ρ₀} = 0.1.
    fn default() -> Self {
        Self {
            in_channels: 2,
            image_size: 64,
            cond_channels: 3,
            levels: 2,
            steps_per_level: 4,
            hidden: 64,
            cond_features: 16,
            initial_log_std: (0.1f32).ln(),
            kspace_scale: true,
            mean_net: None,
            mean_unmeasured_only: false,
            refine_net: None,
        }
    }
}

impl FlowConfig {
    /// A mean stage's U-Net (`field`) must be valid and map the flow's images to themselves.
    fn check_stage_shape(&self, field: &str, unet: &UNetConfig) -> Result<()> {
        unet.validate()?;
        if [unet.in_channels, unet.image_size] != [self.in_channels, self.image_size] {
            return Err(Error::invalid(
                format!("flow {field} [in_channels, image_size]"),
                format!("the flow's [{}, {}]", self.in_channels, self.image_size),
                format!("[{}, {}]", unet.in_channels, unet.image_size),
            ));
        }
        Ok(())
    }

    /// Checks that the configuration describes a buildable flow.
    pub fn validate(&self) -> Result<()> {
        if !(1..=2).contains(&self.in_channels) {
            return Err(Error::invalid(
                "flow in_channels",
                "1 or 2",
                self.in_channels,
            ));
        }
        if !(1..=4).contains(&self.levels) {
            return Err(Error::invalid("flow levels", "1..=4", self.levels));
        }
        let unit = 1usize << self.levels;
        if self.image_size == 0 || !self.image_size.is_multiple_of(unit) || self.image_size > 1024 {
            return Err(Error::invalid(
                "flow image_size",
                format!("a multiple of 2^levels = {unit}, at most 1024"),
                self.image_size,
            ));
        }
        if self.cond_channels <= self.in_channels || self.cond_channels > 8 {
            return Err(Error::invalid(
                "flow cond_channels",
                format!(
                    "{}..=8 (Aᴴy's channels, then the pattern)",
                    self.in_channels + 1
                ),
                self.cond_channels,
            ));
        }
        for (what, v, max) in [
            ("flow steps_per_level", self.steps_per_level, 32),
            ("flow hidden", self.hidden, 1024),
            ("flow cond_features", self.cond_features, 256),
        ] {
            if v == 0 || v > max {
                return Err(Error::invalid(what, format!("1..={max}"), v));
            }
        }
        if self.kspace_scale && self.in_channels != 2 {
            return Err(Error::invalid(
                "flow kspace_scale",
                "complex images (in_channels 2)",
                format!("in_channels {}", self.in_channels),
            ));
        }
        if let Some(unet) = &self.mean_net {
            self.check_stage_shape("mean_net", unet)?;
        }
        if let Some(unet) = &self.refine_net {
            if self.mean_net.is_none() {
                return Err(Error::invalid(
                    "flow refine_net",
                    "a mean_net to refine",
                    "mean_net none",
                ));
            }
            self.check_stage_shape("refine_net", unet)?;
        }
        if self.mean_unmeasured_only && (self.mean_net.is_none() || self.in_channels != 2) {
            return Err(Error::invalid(
                "flow mean_unmeasured_only",
                "a mean_net on complex images (in_channels 2)",
                format!(
                    "mean_net {}, in_channels {}",
                    if self.mean_net.is_some() {
                        "set"
                    } else {
                        "none"
                    },
                    self.in_channels
                ),
            ));
        }
        if !(self.initial_log_std.is_finite() && self.initial_log_std.abs() <= 10.0) {
            return Err(Error::invalid(
                "flow initial_log_std",
                "a finite value in [−10, 10]",
                self.initial_log_std,
            ));
        }
        Ok(())
    }

    /// A mean stage of this flow from its U-Net (if any), last layer zero.
    fn mean_stage(&self, unet: Option<&UNetConfig>, device: &Device) -> Result<Option<MeanNet>> {
        unet.map(|unet| {
            Ok(MeanNet {
                unet: unet
                    .init_conditional(self.cond_channels - self.in_channels, device)?
                    .with_zero_output(),
                unmeasured_only: self.mean_unmeasured_only,
            })
        })
        .transpose()
    }

    /// Builds a fresh flow (every last layer zero, 1×1 convolutions the channel reversal).
    pub fn init(&self, device: &Device) -> Result<ConditionalFlow> {
        self.validate()?;
        let c = self.in_channels;
        let mut levels = Vec::with_capacity(self.levels);
        for l in 0..self.levels {
            let channels = c * 4usize.pow(l as u32 + 1);
            let cond_in = self.cond_channels * 4usize.pow(l as u32 + 1);
            let steps = (0..self.steps_per_level)
                .map(|_| FlowStep {
                    actnorm: ActNorm::new(channels, device),
                    mix: InvertibleConv1x1::new(channels, device),
                    coupling: AffineCoupling::new(
                        channels,
                        self.cond_features,
                        self.hidden,
                        device,
                    ),
                })
                .collect();
            levels.push(FlowLevel {
                cond_net: ConvNet::new(cond_in, self.hidden, self.cond_features, false, device),
                steps,
            });
        }
        Ok(ConditionalFlow {
            levels,
            output: ConvNet::new(self.cond_channels, self.hidden, 2 * c, true, device),
            kspace: self.kspace_scale.then(|| KSpaceScale {
                net: ConvNet::new(1, 16, 1, true, device),
            }),
            mean: self.mean_stage(self.mean_net.as_ref(), device)?,
            refine: self.mean_stage(self.refine_net.as_ref(), device)?,
            in_channels: c,
            initial_log_std: self.initial_log_std,
        })
    }
}

/// conv3×3 → ReLU → conv3×3 → ReLU → conv3×3 (the last zero-initialised when `zero_last`,
/// else followed by a ReLU).
#[derive(Module, Debug)]
struct ConvNet {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    zero_last: bool,
}

fn conv3(cin: usize, cout: usize, zero: bool, device: &Device) -> Conv2d {
    let mut config =
        Conv2dConfig::new([cin, cout], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1));
    if zero {
        config = config.with_initializer(Initializer::Zeros);
    }
    config.init(device)
}

impl ConvNet {
    fn new(cin: usize, hidden: usize, cout: usize, zero_last: bool, device: &Device) -> Self {
        Self {
            conv1: conv3(cin, hidden, false, device),
            conv2: conv3(hidden, hidden, false, device),
            conv3: conv3(hidden, cout, zero_last, device),
            zero_last,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = relu(self.conv1.forward(x));
        let h = relu(self.conv2.forward(h));
        let out = self.conv3.forward(h);
        if self.zero_last {
            out
        } else {
            relu(out)
        }
    }
}

/// Per-channel affine map y = x·eˢ + b (identity at initialisation); log-det H·W·Σ s.
#[derive(Module, Debug)]
struct ActNorm {
    log_scale: Param<Tensor<1>>,
    bias: Param<Tensor<1>>,
}

impl ActNorm {
    fn new(channels: usize, device: &Device) -> Self {
        Self {
            log_scale: Param::from_tensor(Tensor::zeros([channels], device)),
            bias: Param::from_tensor(Tensor::zeros([channels], device)),
        }
    }

    fn forward(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<1>) {
        let [_, c, h, w] = x.dims();
        let s = self.log_scale.val();
        let y = x * s.clone().exp().reshape([1, c, 1, 1]) + self.bias.val().reshape([1, c, 1, 1]);
        (y, s.sum() * (h * w) as f32)
    }

    fn inverse(&self, y: Tensor<4>) -> Tensor<4> {
        let [_, c, _, _] = y.dims();
        let s = self.log_scale.val();
        (y - self.bias.val().reshape([1, c, 1, 1])) * s.neg().exp().reshape([1, c, 1, 1])
    }
}

/// 1×1 convolution y = W x over channels with W = P·L·(U + diag(eˢ)): P the channel reversal,
/// L unit lower-triangular, U strictly upper-triangular. log|det W| = Σ s, so the log-det is
/// H·W·Σ s without a determinant; the inverse solves with W on the host.
#[derive(Module, Debug)]
struct InvertibleConv1x1 {
    lower: Param<Tensor<2>>,
    upper: Param<Tensor<2>>,
    log_diag: Param<Tensor<1>>,
}

impl InvertibleConv1x1 {
    fn new(channels: usize, device: &Device) -> Self {
        Self {
            lower: Param::from_tensor(Tensor::zeros([channels, channels], device)),
            upper: Param::from_tensor(Tensor::zeros([channels, channels], device)),
            log_diag: Param::from_tensor(Tensor::zeros([channels], device)),
        }
    }

    /// W as a tensor.
    fn weight(&self) -> Tensor<2> {
        let device = self.log_diag.val().device();
        let [n] = self.log_diag.val().dims();
        let strict_lower = triangle_mask(n, true, &device);
        let strict_upper = triangle_mask(n, false, &device);
        let eye = identity(n, &device);
        let l = self.lower.val() * strict_lower + eye.clone();
        let u = self.upper.val() * strict_upper + eye * self.log_diag.val().exp().reshape([1, n]);
        // P·M reverses M's rows.
        l.matmul(u).flip([0])
    }

    fn forward(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<1>) {
        let [b, c, h, w] = x.dims();
        let weight = self.weight().reshape([1, c, c]).expand([b, c, c]);
        let y = weight
            .matmul(x.reshape([b, c, h * w]))
            .reshape([b, c, h, w]);
        (y, self.log_diag.val().sum() * (h * w) as f32)
    }

    fn inverse(&self, y: Tensor<4>) -> Result<Tensor<4>> {
        let [b, c, h, w] = y.dims();
        let weight: Vec<f64> = tensor_to_vec(self.weight())?
            .into_iter()
            .map(f64::from)
            .collect();
        let inv = invert(&weight, c)?;
        let inv: Vec<f32> = inv.into_iter().map(|v| v as f32).collect();
        let inv = Tensor::<2>::from_data(TensorData::new(inv, [c, c]), &y.device());
        Ok(inv
            .reshape([1, c, c])
            .expand([b, c, c])
            .matmul(y.reshape([b, c, h * w]))
            .reshape([b, c, h, w]))
    }
}

/// Strictly lower (`lower`) or strictly upper triangular ones, `n × n`.
fn triangle_mask(n: usize, lower: bool, device: &Device) -> Tensor<2> {
    let data: Vec<f32> = (0..n * n)
        .map(|k| {
            let (i, j) = (k / n, k % n);
            if (lower && i > j) || (!lower && i < j) {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    Tensor::from_data(TensorData::new(data, [n, n]), device)
}

fn identity(n: usize, device: &Device) -> Tensor<2> {
    let data: Vec<f32> = (0..n * n)
        .map(|k| if k / n == k % n { 1.0 } else { 0.0 })
        .collect();
    Tensor::from_data(TensorData::new(data, [n, n]), device)
}

/// The inverse of the row-major `n × n` matrix `a` by Gauss–Jordan elimination with partial
/// pivoting; fails for a (numerically) singular matrix.
pub fn invert(a: &[f64], n: usize) -> Result<Vec<f64>> {
    let mut m = a.to_vec();
    let mut inv: Vec<f64> = (0..n * n)
        .map(|k| if k / n == k % n { 1.0 } else { 0.0 })
        .collect();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| m[i * n + col].abs().total_cmp(&m[j * n + col].abs()))
            .unwrap_or(col);
        let p = m[pivot * n + col];
        // NaN pivots fail too.
        if p.abs().partial_cmp(&1e-12) != Some(std::cmp::Ordering::Greater) {
            return Err(Error::Model(format!(
                "1×1 convolution is singular (pivot {p:e} in column {col})"
            )));
        }
        if pivot != col {
            for k in 0..n {
                m.swap(col * n + k, pivot * n + k);
                inv.swap(col * n + k, pivot * n + k);
            }
        }
        for k in 0..n {
            m[col * n + k] /= p;
            inv[col * n + k] /= p;
        }
        for r in 0..n {
            if r != col {
                let f = m[r * n + col];
                if f != 0.0 {
                    for k in 0..n {
                        m[r * n + k] -= f * m[col * n + k];
                        inv[r * n + k] -= f * inv[col * n + k];
                    }
                }
            }
        }
    }
    Ok(inv)
}

/// Affine coupling: x = [a, b] ↦ [a, b ⊙ e^{s(a, f)} + t(a, f)], with f the level's conditioning
/// features; s is soft-bounded by tanh. Log-det Σ s.
#[derive(Module, Debug)]
struct AffineCoupling {
    net: ConvNet,
    split: usize,
}

impl AffineCoupling {
    fn new(channels: usize, features: usize, hidden: usize, device: &Device) -> Self {
        let split = channels / 2;
        Self {
            net: ConvNet::new(
                split + features,
                hidden,
                2 * (channels - split),
                true,
                device,
            ),
            split,
        }
    }

    /// (s, t) for the passive half `a`.
    fn scale_shift(&self, a: Tensor<4>, features: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let out = self.net.forward(Tensor::cat(vec![a, features], 1));
        let [_, two_cb, _, _] = out.dims();
        let cb = two_cb / 2;
        let raw_s = out.clone().narrow(1, 0, cb);
        let t = out.narrow(1, cb, cb);
        let s = (raw_s / COUPLING_LOG_SCALE_LIMIT).tanh() * COUPLING_LOG_SCALE_LIMIT;
        (s, t)
    }

    fn forward(&self, x: Tensor<4>, features: Tensor<4>) -> (Tensor<4>, Tensor<1>) {
        let [b, c, _, _] = x.dims();
        let a = x.clone().narrow(1, 0, self.split);
        let xb = x.narrow(1, self.split, c - self.split);
        let (s, t) = self.scale_shift(a.clone(), features);
        let yb = xb * s.clone().exp() + t;
        let logdet = s.reshape([b as i32, -1]).sum_dim(1).reshape([b]);
        (Tensor::cat(vec![a, yb], 1), logdet)
    }

    fn inverse(&self, y: Tensor<4>, features: Tensor<4>) -> Tensor<4> {
        let [_, c, _, _] = y.dims();
        let a = y.clone().narrow(1, 0, self.split);
        let yb = y.narrow(1, self.split, c - self.split);
        let (s, t) = self.scale_shift(a.clone(), features);
        let xb = (yb - t) * s.neg().exp();
        Tensor::cat(vec![a, xb], 1)
    }
}

#[derive(Module, Debug)]
struct FlowStep {
    actnorm: ActNorm,
    mix: InvertibleConv1x1,
    coupling: AffineCoupling,
}

#[derive(Module, Debug)]
struct FlowLevel {
    cond_net: ConvNet,
    steps: Vec<FlowStep>,
}

/// Bound on |κ| of the k-space scaling (soft, through tanh).
const KSPACE_LOG_SCALE_LIMIT: f32 = 6.0;

/// h ↦ F⁻¹(e^κ ⊙ F h) on complex images `[B, 2, H, W]` (re, im), κ `[B, 1, H, W]` per frequency
/// from the sampling pattern; F is unitary, so the log-det is 2·Σκ (κ scales re and im).
#[derive(Module, Debug)]
struct KSpaceScale {
    net: ConvNet,
}

/// cos and −sin parts of the centred orthonormal DFT matrix of size n,
/// F[k, m] = e^{−2πi (k − n/2)(m − n/2)/n}/√n (= fftshift ∘ fft ∘ ifftshift, symmetric).
fn centred_dft(n: usize, device: &Device) -> (Tensor<2>, Tensor<2>) {
    let norm = (n as f64).sqrt();
    let half = (n / 2) as f64;
    let (mut c, mut s) = (Vec::with_capacity(n * n), Vec::with_capacity(n * n));
    for k in 0..n {
        for m in 0..n {
            let theta =
                2.0 * std::f64::consts::PI * (k as f64 - half) * (m as f64 - half) / n as f64;
            c.push((theta.cos() / norm) as f32);
            s.push((-theta.sin() / norm) as f32);
        }
    }
    (
        Tensor::from_data(TensorData::new(c, [n, n]), device),
        Tensor::from_data(TensorData::new(s, [n, n]), device),
    )
}

/// (re, im) @ (C + i·sign·S) along the last axis of `[B, 1, H, W]` tensors.
fn dft_last_axis(
    re: Tensor<4>,
    im: Tensor<4>,
    c: &Tensor<2>,
    s: &Tensor<2>,
    sign: f32,
) -> (Tensor<4>, Tensor<4>) {
    let [b, one, h, w] = re.dims();
    let a = re.reshape([b * one * h, w]);
    let bb = im.reshape([b * one * h, w]);
    let s = s.clone() * sign;
    let out_re = a.clone().matmul(c.clone()) - bb.clone().matmul(s.clone());
    let out_im = a.matmul(s) + bb.matmul(c.clone());
    (
        out_re.reshape([b, one, h, w]),
        out_im.reshape([b, one, h, w]),
    )
}

/// The centred orthonormal 2-D DFT of (re, im) (`inverse`: its conjugate transpose).
fn dft2(re: Tensor<4>, im: Tensor<4>, inverse: bool) -> (Tensor<4>, Tensor<4>) {
    let [_, _, h, w] = re.dims();
    let sign = if inverse { -1.0 } else { 1.0 };
    let device = re.device();
    let (cw, sw) = centred_dft(w, &device);
    let (re, im) = dft_last_axis(re, im, &cw, &sw, sign);
    let (ch, sh) = if h == w {
        (cw, sw)
    } else {
        centred_dft(h, &device)
    };
    let (re, im) = dft_last_axis(re.swap_dims(2, 3), im.swap_dims(2, 3), &ch, &sh, sign);
    (re.swap_dims(2, 3), im.swap_dims(2, 3))
}

impl KSpaceScale {
    /// κ from the pattern channel.
    fn log_scale(&self, pattern: Tensor<4>) -> Tensor<4> {
        (self.net.forward(pattern) / KSPACE_LOG_SCALE_LIMIT).tanh() * KSPACE_LOG_SCALE_LIMIT
    }

    fn apply(&self, h: Tensor<4>, pattern: Tensor<4>, inverse: bool) -> (Tensor<4>, Tensor<1>) {
        let [b, _, _, _] = h.dims();
        let kappa = self.log_scale(pattern);
        let (re, im) = (h.clone().narrow(1, 0, 1), h.narrow(1, 1, 1));
        let (kr, ki) = dft2(re, im, false);
        let factor = if inverse {
            kappa.clone().neg().exp()
        } else {
            kappa.clone().exp()
        };
        let (re, im) = dft2(kr * factor.clone(), ki * factor, true);
        let logdet = kappa.reshape([b as i32, -1]).sum_dim(1).reshape([b]) * 2.0;
        (Tensor::cat(vec![re, im], 1), logdet)
    }
}

/// U(c): a U-Net over the whole conditioning image (its time input fixed at 0) whose last layer
/// starts at zero, so an untrained flow is unchanged; optionally restricted to the unmeasured
/// frequencies of the pattern channel.
#[derive(Module, Debug)]
struct MeanNet {
    unet: UNet,
    unmeasured_only: bool,
}

impl MeanNet {
    fn forward(&self, cond: Tensor<4>, channels: usize) -> Tensor<4> {
        let [b, _, _, _] = cond.dims();
        let pattern = cond.clone().narrow(1, channels, 1);
        let u = self.unet.forward(cond, &vec![0; b]);
        if !self.unmeasured_only {
            return u;
        }
        let (kr, ki) = dft2(u.clone().narrow(1, 0, 1), u.narrow(1, 1, 1), false);
        let keep = pattern.neg() + 1.0;
        let (re, im) = dft2(kr * keep.clone(), ki * keep, true);
        Tensor::cat(vec![re, im], 1)
    }
}

/// The part of G_φ(z; c) that depends on c alone ([`ConditionalFlow::condition`]).
#[derive(Clone, Debug)]
pub struct FlowCondition {
    features: Vec<Tensor<4>>,
    mu: Tensor<4>,
    rho: Tensor<4>,
    pattern: Tensor<4>,
}

impl FlowCondition {
    /// Each condition repeated `k` times in a row (`[n, …]` → `[n·k, …]`, image i at rows
    /// i·k … i·k + k − 1): several latents per measurement without recomputing c's part.
    pub fn repeat_each(&self, k: usize) -> Self {
        let repeat = |t: &Tensor<4>| {
            let [n, c, h, w] = t.dims();
            t.clone()
                .unsqueeze_dim::<5>(1)
                .expand([n, k, c, h, w])
                .reshape([n * k, c, h, w])
        };
        FlowCondition {
            features: self.features.iter().map(repeat).collect(),
            mu: repeat(&self.mu),
            rho: repeat(&self.rho),
            pattern: repeat(&self.pattern),
        }
    }
}

/// The conditional flow G_φ(z; c).
#[derive(Module, Debug)]
pub struct ConditionalFlow {
    levels: Vec<FlowLevel>,
    output: ConvNet,
    kspace: Option<KSpaceScale>,
    mean: Option<MeanNet>,
    refine: Option<MeanNet>,
    in_channels: usize,
    initial_log_std: f32,
}

/// 2×2 space-to-depth: `[B, C, H, W]` → `[B, 4C, H/2, W/2]`.
pub fn squeeze(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h / 2, 2, w / 2, 2])
        .permute([0, 1, 3, 5, 2, 4])
        .reshape([b, c * 4, h / 2, w / 2])
}

/// The inverse of [`squeeze`].
pub fn unsqueeze(x: Tensor<4>) -> Tensor<4> {
    let [b, c4, h, w] = x.dims();
    let c = c4 / 4;
    x.reshape([b, c, 2, 2, h, w])
        .permute([0, 1, 4, 2, 5, 3])
        .reshape([b, c, h * 2, w * 2])
}

impl ConditionalFlow {
    /// Conditioning features of every level.
    fn features(&self, cond: Tensor<4>) -> Vec<Tensor<4>> {
        let mut c = cond;
        self.levels
            .iter()
            .map(|level| {
                c = squeeze(c.clone());
                level.cond_net.forward(c.clone())
            })
            .collect()
    }

    /// μ(c) and ρ(c) of the output layer.
    fn output_affine(&self, cond: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let ch = self.in_channels;
        let out = self.output.forward(cond.clone());
        let mut mu = cond.clone().narrow(1, 0, ch) + out.clone().narrow(1, 0, ch);
        if let Some(mean) = &self.mean {
            mu = mu + mean.forward(cond.clone(), ch);
        }
        if let Some(refine) = &self.refine {
            // The second stage sees the first estimate in place of Aᴴy, the rest of c as is.
            let total = cond.dims()[1];
            let rest = cond.narrow(1, ch, total - ch);
            mu = mu.clone() + refine.forward(Tensor::cat(vec![mu, rest], 1), ch);
        }
        let rho = (out.narrow(1, ch, ch) / OUTPUT_LOG_SCALE_LIMIT).tanh() * OUTPUT_LOG_SCALE_LIMIT
            + self.initial_log_std;
        (mu, rho)
    }

    /// Everything of G that depends on c alone (conditioning features, μ, ρ), computed once so
    /// many draws for one measurement share it ([`Self::forward_conditioned`]).
    pub fn condition(&self, cond: Tensor<4>) -> FlowCondition {
        let (mu, rho) = self.output_affine(cond.clone());
        FlowCondition {
            features: self.features(cond.clone()),
            mu,
            rho,
            pattern: cond.narrow(1, self.in_channels, 1),
        }
    }

    /// x = G(z; c) and log|det ∂G/∂z| per image (`[B]`); z and x are `[B, C, H, W]`, c
    /// `[B, cond_channels, H, W]`.
    pub fn forward(&self, z: Tensor<4>, cond: Tensor<4>) -> (Tensor<4>, Tensor<1>) {
        self.forward_conditioned(z, &self.condition(cond))
    }

    /// [`Self::forward`] with c's part precomputed; a condition of batch 1 serves every z.
    pub fn forward_conditioned(
        &self,
        z: Tensor<4>,
        condition: &FlowCondition,
    ) -> (Tensor<4>, Tensor<1>) {
        let [b, _, _, _] = z.dims();
        let fit = |t: &Tensor<4>| {
            let [n, c, h, w] = t.dims();
            if n == b {
                t.clone()
            } else {
                t.clone().expand([b, c, h, w])
            }
        };
        let features: Vec<Tensor<4>> = condition.features.iter().map(fit).collect();
        let (mu, rho, pattern) = (
            fit(&condition.mu),
            fit(&condition.rho),
            fit(&condition.pattern),
        );
        let mut h = z;
        let mut logdet = Tensor::<1>::zeros([b], &h.device());
        for (level, f) in self.levels.iter().zip(&features) {
            h = squeeze(h);
            for step in &level.steps {
                let (y, ld) = step.actnorm.forward(h);
                logdet = logdet + ld.expand([b]);
                let (y, ld) = step.mix.forward(y);
                logdet = logdet + ld.expand([b]);
                let (y, ld) = step.coupling.forward(y, f.clone());
                logdet = logdet + ld;
                h = y;
            }
        }
        for _ in &self.levels {
            h = unsqueeze(h);
        }
        let mut h = h * rho.clone().exp();
        logdet = logdet + rho.reshape([b as i32, -1]).sum_dim(1).reshape([b]);
        if let Some(k) = &self.kspace {
            let (scaled, ld) = k.apply(h, pattern, false);
            h = scaled;
            logdet = logdet + ld;
        }
        (mu + h, logdet)
    }

    /// The same flow with every parameter frozen but the second mean stage's, so training moves
    /// only μ₂: the first stage and the covariance stay as trained, and nothing is
    /// back-propagated through them (μ₁ enters μ₂ as a constant).
    pub fn freeze_all_but_refine(mut self) -> Self {
        let refine = self.refine.take();
        Self {
            refine,
            ..self.freeze()
        }
    }

    /// z = G⁻¹(x; c) (the inverse of [`Self::forward`]).
    pub fn inverse(&self, x: Tensor<4>, cond: Tensor<4>) -> Result<Tensor<4>> {
        let FlowCondition {
            features,
            mu,
            rho,
            pattern,
        } = self.condition(cond);
        let mut h = x - mu;
        if let Some(k) = &self.kspace {
            h = k.apply(h, pattern, true).0;
        }
        let mut h = h * rho.neg().exp();
        for _ in &self.levels {
            h = squeeze(h);
        }
        for (level, f) in self.levels.iter().zip(&features).rev() {
            for step in level.steps.iter().rev() {
                h = step.coupling.inverse(h, f.clone());
                h = step.mix.inverse(h)?;
                h = step.actnorm.inverse(h);
            }
            h = unsqueeze(h);
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::device::default_device;
    use burn::module::ModuleMapper;

    /// Adds N(0, scale²) to every weight from its own seeded stream (not the backend's generator,
    /// which tests running in parallel share), so no layer is the identity and runs repeat.
    struct Perturb(f64, crate::rng::SeededRng);

    fn perturb(scale: f64) -> Perturb {
        Perturb(scale, crate::rng::substream(17, 0))
    }

    impl ModuleMapper for Perturb {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let scale = self.0 as f32;
            let rng = &mut self.1;
            param.map(|t| {
                let shape = t.shape();
                let mut v = vec![0.0f32; shape.num_elements()];
                crate::rng::fill_standard_normal(rng, &mut v);
                let noise = Tensor::<D>::from_data(
                    TensorData::new(v.iter().map(|x| x * scale).collect::<Vec<_>>(), shape),
                    &t.device(),
                );
                t + noise
            })
        }
    }

    fn tiny() -> FlowConfig {
        FlowConfig {
            in_channels: 2,
            image_size: 4,
            cond_channels: 3,
            levels: 1,
            steps_per_level: 2,
            hidden: 8,
            cond_features: 4,
            initial_log_std: -0.5,
            kspace_scale: true,
            mean_net: None,
            mean_unmeasured_only: false,
            refine_net: None,
        }
    }

    /// An 8×8, 2-level flow with a mean network restricted to unmeasured frequencies, its
    /// weights ~0.05 off the initialisation (so no layer is the identity and the mean network
    /// is on). Larger perturbations make the LU 1×1 convolutions badly conditioned (their
    /// condition number grows exponentially with the size) and f32 round-off then dominates any
    /// inverse.
    fn perturbed_flow_with_mean_net(device: &Device) -> ConditionalFlow {
        FlowConfig {
            image_size: 8,
            levels: 2,
            mean_net: Some(tiny_mean_net(8)),
            mean_unmeasured_only: true,
            refine_net: Some(tiny_mean_net(8)),
            ..tiny()
        }
        .init(device)
        .unwrap()
        .map(&mut perturb(0.05))
    }

    fn tiny_mean_net(image_size: usize) -> UNetConfig {
        UNetConfig {
            in_channels: 2,
            image_size,
            base_channels: 8,
            channel_mults: vec![1, 2],
            blocks_per_level: 1,
            attention_resolutions: vec![],
            dropout: 0.0,
            groups: 4,
        }
    }

    fn random(shape: [usize; 4], seed: u64, device: &Device) -> Tensor<4> {
        let mut rng = crate::rng::substream(seed, 0);
        let mut v = vec![0.0f32; shape.iter().product()];
        crate::rng::fill_standard_normal(&mut rng, &mut v);
        Tensor::from_data(TensorData::new(v, shape), device)
    }

    #[test]
    fn squeeze_round_trips_and_groups_2x2_blocks() {
        let device = default_device();
        let v: Vec<f32> = (0..2 * 4 * 4).map(|k| k as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(v.clone(), [1, 2, 4, 4]), &device);
        let s = squeeze(x.clone());
        assert_eq!(s.dims(), [1, 8, 2, 2]);
        // Channel 0 of the squeeze is the top-left pixel of every 2×2 block of channel 0.
        let sv = tensor_to_vec(s.clone()).unwrap();
        assert_eq!(&sv[..4], &[0.0, 2.0, 8.0, 10.0]);
        assert_eq!(tensor_to_vec(unsqueeze(s)).unwrap(), v);
    }

    #[test]
    fn untrained_flow_is_the_zero_filled_image_plus_scaled_noise() {
        let device = default_device();
        // The mean network's last layer starts at zero, so it changes nothing yet.
        let config = FlowConfig {
            mean_net: Some(tiny_mean_net(4)),
            ..tiny()
        };
        let flow = config.init(&device).unwrap();
        let z = random([2, 2, 4, 4], 1, &device);
        let cond = random([2, 3, 4, 4], 2, &device);
        let (x, logdet) = flow.forward(z.clone(), cond.clone());
        // Actnorm and couplings are the identity, the 1×1 convolutions permutations (volume 1).
        let expected_logdet = config.initial_log_std * 32.0;
        for v in tensor_to_vec(logdet).unwrap() {
            assert!(
                (v - expected_logdet).abs() < 1e-4,
                "{v} vs {expected_logdet}"
            );
        }
        let x = tensor_to_vec(x).unwrap();
        let c = tensor_to_vec(cond).unwrap();
        let zv = tensor_to_vec(z).unwrap();
        // Mean over z is Aᴴy: x − c[:2] is e^{ρ₀}·(a permutation of z), so equal norms.
        let (mut dn, mut zn) = (0.0f64, 0.0f64);
        for b in 0..2 {
            for k in 0..32 {
                let d = (x[b * 32 + k] - c[b * 48 + k]) as f64;
                dn += d * d;
                zn += (zv[b * 32 + k] as f64).powi(2);
            }
        }
        let ratio = (dn / zn).sqrt();
        assert!(
            (ratio - (config.initial_log_std as f64).exp()).abs() < 1e-4,
            "{ratio}"
        );
    }

    #[test]
    fn a_shared_condition_gives_the_same_draws_as_a_repeated_one() {
        let device = default_device();
        let flow = perturbed_flow_with_mean_net(&device);
        let z = random([3, 2, 8, 8], 5, &device);
        let cond = random([1, 3, 8, 8], 6, &device);
        let full = flow.forward(z.clone(), cond.clone().expand([3, 3, 8, 8]));
        let shared = flow.forward_conditioned(z, &flow.condition(cond));
        assert_same_draws(full, shared, 3);
    }

    /// Two (draws, log-dets) of `n` images agree: draws to 1e-5, log-determinants to 1e-3.
    fn assert_same_draws(a: (Tensor<4>, Tensor<1>), b: (Tensor<4>, Tensor<1>), n: usize) {
        let (xa, xb) = (tensor_to_vec(a.0).unwrap(), tensor_to_vec(b.0).unwrap());
        let d = xa
            .iter()
            .zip(&xb)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max);
        assert!(d < 1e-5, "draws differ by {d}");
        let (la, lb) = (tensor_to_vec(a.1).unwrap(), tensor_to_vec(b.1).unwrap());
        assert_eq!((la.len(), lb.len()), (n, n));
        for (p, q) in la.iter().zip(&lb) {
            assert!((p - q).abs() < 1e-3, "log-det {p} vs {q}");
        }
    }

    #[test]
    fn conditions_repeated_each_match_conditions_given_in_full() {
        let device = default_device();
        let flow = perturbed_flow_with_mean_net(&device);
        let z = random([4, 2, 8, 8], 8, &device);
        let distinct = random([2, 3, 8, 8], 9, &device);
        // Rows c0, c0, c1, c1.
        let full = Tensor::cat(
            vec![
                distinct.clone().narrow(0, 0, 1).expand([2, 3, 8, 8]),
                distinct.clone().narrow(0, 1, 1).expand([2, 3, 8, 8]),
            ],
            0,
        );
        let given = flow.forward(z.clone(), full);
        let repeated = flow.forward_conditioned(z, &flow.condition(distinct).repeat_each(2));
        assert_same_draws(given, repeated, 4);
    }

    #[test]
    fn an_unmeasured_only_mean_correction_leaves_measured_frequencies_alone() {
        let device = default_device();
        let flow = perturbed_flow_with_mean_net(&device);
        let image = random([1, 2, 8, 8], 7, &device);
        // Columns 0, 3 and 4 measured.
        let pattern: Vec<f32> = (0..64)
            .map(|k| {
                if [0, 3, 4].contains(&(k % 8)) {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let pattern = Tensor::<4>::from_data(TensorData::new(pattern, [1, 1, 8, 8]), &device);
        let cond = Tensor::cat(vec![image, pattern.clone()], 1);
        let p = tensor_to_vec(pattern).unwrap();
        for (stage, net) in [("mean", &flow.mean), ("refine", &flow.refine)] {
            let u = net.as_ref().unwrap().forward(cond.clone(), 2);
            let (kr, ki) = dft2(u.clone().narrow(1, 0, 1), u.narrow(1, 1, 1), false);
            let (kr, ki) = (tensor_to_vec(kr).unwrap(), tensor_to_vec(ki).unwrap());
            let (mut measured, mut unmeasured) = (0.0f32, 0.0f32);
            for k in 0..64 {
                let m = kr[k].hypot(ki[k]);
                if p[k] > 0.5 {
                    measured = measured.max(m);
                } else {
                    unmeasured = unmeasured.max(m);
                }
            }
            assert!(
                unmeasured > 1e-3,
                "{stage}: the perturbed correction should not vanish"
            );
            assert!(
                measured < 1e-5,
                "{stage}: measured frequencies moved by {measured}"
            );
        }
    }

    #[test]
    fn inverse_undoes_forward_to_1e_4() {
        let device = default_device();
        let flow = perturbed_flow_with_mean_net(&device);
        let z = random([3, 2, 8, 8], 3, &device);
        let cond = random([3, 3, 8, 8], 4, &device);
        let (x, _) = flow.forward(z.clone(), cond.clone());
        let back = flow.inverse(x.clone(), cond).unwrap();
        let (zv, bv) = (tensor_to_vec(z).unwrap(), tensor_to_vec(back).unwrap());
        let xv = tensor_to_vec(x).unwrap();
        let moved = zv
            .iter()
            .zip(&xv)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            moved > 0.1,
            "the perturbed flow should not be near the identity"
        );
        let err = zv
            .iter()
            .zip(&bv)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-4, "max |G⁻¹(G(z)) − z| = {err}");
    }

    /// log|det| of the row-major n × n matrix by LU with partial pivoting (f64).
    fn log_abs_det(mut m: Vec<f64>, n: usize) -> f64 {
        let mut total = 0.0;
        for col in 0..n {
            let pivot = (col..n)
                .max_by(|&i, &j| m[i * n + col].abs().total_cmp(&m[j * n + col].abs()))
                .unwrap();
            for k in 0..n {
                m.swap(col * n + k, pivot * n + k);
            }
            let p = m[col * n + col];
            total += p.abs().ln();
            for r in col + 1..n {
                let f = m[r * n + col] / p;
                for k in col..n {
                    m[r * n + k] -= f * m[col * n + k];
                }
            }
        }
        total
    }

    #[test]
    fn log_determinant_matches_a_brute_force_jacobian() {
        let device = default_device();
        let ad = device.clone().autodiff();
        let config = tiny();
        let flow = config
            .init(&device)
            .unwrap()
            // 0.1: larger weights saturate κ (e^{±6} per frequency) and the Jacobian's condition
            // number exceeds what its f32 entries resolve, so the brute force itself goes wrong.
            .map(&mut perturb(0.1))
            .valid()
            .to_device(&ad);
        let z0 = random([1, 2, 4, 4], 5, &device);
        let cond0 = random([1, 3, 4, 4], 6, &device);
        let zv = tensor_to_vec(z0).unwrap();
        let n = zv.len();
        let cond = Tensor::<4>::from_data(
            TensorData::new(tensor_to_vec(cond0).unwrap(), [1, 3, 4, 4]),
            &ad,
        );
        // Row i of ∂x/∂z by back-propagating x_i (32 backward passes, in f32).
        let mut jac = Vec::with_capacity(n * n);
        let mut flow_logdet = 0.0;
        for i in 0..n {
            let z = Tensor::<4>::from_data(TensorData::new(zv.clone(), [1, 2, 4, 4]), &ad)
                .require_grad();
            let (x, logdet) = flow.forward(z.clone(), cond.clone());
            flow_logdet = tensor_to_vec(logdet.inner()).unwrap()[0] as f64;
            let xi = x.reshape([n]).narrow(0, i, 1).sum();
            let grads = xi.backward();
            let g = tensor_to_vec(z.grad(&grads).unwrap()).unwrap();
            jac.extend(g.into_iter().map(f64::from));
        }
        let brute = log_abs_det(jac, n);
        assert!(
            (brute - flow_logdet).abs() < 1e-3 * brute.abs().max(1.0),
            "brute force {brute} vs flow {flow_logdet}"
        );
        // Not the trivial value of an untrained flow.
        assert!((flow_logdet - config.initial_log_std as f64 * 32.0).abs() > 0.1);
    }

    #[test]
    fn dft2_is_the_centred_orthonormal_fft_of_the_mri_operator() {
        let device = default_device();
        let (h, w) = (8, 8);
        let mut v = vec![0.0f32; 2 * h * w];
        crate::rng::fill_standard_normal(&mut crate::rng::substream(3, 0), &mut v);
        let re =
            Tensor::<4>::from_data(TensorData::new(v[..h * w].to_vec(), [1, 1, h, w]), &device);
        let im =
            Tensor::<4>::from_data(TensorData::new(v[h * w..].to_vec(), [1, 1, h, w]), &device);
        let (kr, ki) = dft2(re, im, false);
        let (kr, ki) = (tensor_to_vec(kr).unwrap(), tensor_to_vec(ki).unwrap());
        let fft = crate::physics::fft::Fft2::new([h, w]).unwrap();
        let mut buf: Vec<num_complex::Complex32> = (0..h * w)
            .map(|k| num_complex::Complex32::new(v[k], v[h * w + k]))
            .collect();
        let mut scratch = fft.make_scratch();
        fft.forward_centered(&mut buf, &mut scratch).unwrap();
        for k in 0..h * w {
            assert!(
                (buf[k].re - kr[k]).abs() < 1e-4 && (buf[k].im - ki[k]).abs() < 1e-4,
                "{k}"
            );
        }
    }

    #[test]
    fn gauss_jordan_inverts() {
        let a = vec![0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 3.0, 0.0, 1.0];
        let inv = invert(&a, 3).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..3).map(|k| a[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        assert!(invert(&[1.0, 2.0, 2.0, 4.0], 2).is_err());
    }

    #[test]
    fn config_validation() {
        assert!(FlowConfig::default().validate().is_ok());
        for bad in [
            FlowConfig {
                in_channels: 3,
                ..tiny()
            },
            FlowConfig {
                image_size: 6,
                levels: 2,
                ..tiny()
            },
            FlowConfig {
                cond_channels: 2,
                ..tiny()
            },
            FlowConfig {
                hidden: 0,
                ..tiny()
            },
            FlowConfig {
                initial_log_std: f32::NAN,
                ..tiny()
            },
            FlowConfig {
                mean_net: Some(tiny_mean_net(8)),
                ..tiny()
            },
            FlowConfig {
                mean_unmeasured_only: true,
                ..tiny()
            },
            FlowConfig {
                image_size: 8,
                refine_net: Some(tiny_mean_net(8)),
                ..tiny()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
