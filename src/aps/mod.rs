//! APS, amortised posterior sampling (Mammadov, Chung & Ye 2024): a conditional normalizing flow
//! x = G_φ(z; c(y)) ([`crate::nn::flow`]) trained once per operator family so that a posterior
//! sample costs one network evaluation.
//!
//! Training ([`crate::train::aps`]) minimises the amortised KL divergence
//! E_y E_z [ −log|det ∂G/∂z| + ‖y − A G‖²/(2σ²) (σ² for complex y) + L_prior(G) ] where L_prior is
//! the diffusion prior's denoising score-matching bound on −log p(x) with the likelihood (ELBO)
//! weighting, w_t = β_t / (2 (1 − β_t)(1 − ᾱ_t)) (see [`prior_bound_weight`]). This module holds
//! the model's description, the conditioning image and sampling.

use burn::tensor::{Device, Tensor, TensorData};
use num_complex::Complex32;
use serde::{Deserialize, Serialize};

use crate::bundle::{Bundle, MaskPattern, OperatorKind, SimulationSettings};
use crate::data::Normalization;
use crate::diffusion::schedule::NoiseSchedule;
use crate::error::{Error, Result};
use crate::nn::flow::{ConditionalFlow, FlowConfig};
use crate::nn::unet::UNetConfig;
use crate::nn::unet_denoiser::tensor_to_vec;
use crate::physics::operator::LinearOperator;
use crate::posterior::RunningMoments;
use crate::rng::{fill_standard_normal, substream};

pub mod symmetry;

pub use symmetry::{ProblemSymmetry, SamplingSymmetries};

/// `kind` of an APS model directory's config.json.
pub const APS_KIND: &str = "aps";

/// The operator family an APS model was trained for: how training measurements are simulated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasurementFamily {
    /// The forward model.
    pub operator: OperatorKind,
    /// Sampling pattern (a fresh draw for every training image).
    pub mask: MaskPattern,
    /// Acceleration R (operators with a mask).
    pub acceleration: f64,
    /// Fully sampled MRI centre lines.
    pub acs: usize,
    /// MRI receive coils.
    pub coils: usize,
    /// Noise σ per measured entry (E|n|² = σ²).
    pub noise_sigma: f64,
    /// Super-resolution factor.
    pub scale: usize,
    /// Blur σ in pixels.
    pub blur_sigma: f64,
}

impl MeasurementFamily {
    /// The simulation settings of one training measurement (one frame, its own mask).
    pub fn simulation(&self) -> SimulationSettings {
        SimulationSettings {
            operator: self.operator,
            mask: self.mask,
            acceleration: self.acceleration,
            acs: self.acs,
            coils: self.coils,
            noise_sigma: self.noise_sigma,
            static_mask: false,
            scale: self.scale,
            blur_sigma: self.blur_sigma,
        }
    }

    /// Fails for a noise level the likelihood cannot use (σ must be > 0) or bad numbers.
    pub fn validate(&self) -> Result<()> {
        if !(self.noise_sigma.is_finite() && self.noise_sigma > 0.0) {
            return Err(Error::invalid(
                "APS measurement noise σ",
                "> 0 (the likelihood ‖y − Ax‖²/σ² needs it)",
                self.noise_sigma,
            ));
        }
        if !(self.acceleration.is_finite() && self.acceleration >= 1.0) {
            return Err(Error::invalid("APS acceleration", "≥ 1", self.acceleration));
        }
        if self.coils == 0 || self.coils > 64 {
            return Err(Error::invalid("APS coils", "1..=64", self.coils));
        }
        Ok(())
    }
}

/// How the prior term's gradient with respect to the image is estimated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PriorGradient {
    /// The bound's own gradient, through the denoiser: w_t/p(t)·α_t·∇_{x_t}‖ε_θ(x_t, t) − ε‖²
    /// (one forward and one backward pass of the prior per draw).
    #[default]
    Bound,
    /// The denoiser's Jacobian dropped (score distillation, as in SDS and RED-diff):
    /// (ε_θ(x_t, t) − ε)/(α_t σ_t), whose mean over ε is −∇ log of the prior smoothed to level t
    /// (Tweedie: ε̂ = −σ_t ∇log p_t); exact for a unit Gaussian prior at every t and for any
    /// prior as t → 0. Drawn as an antithetic pair ±ε, (ε̂(α x + σ ε) + ε̂(α x − σ ε))/(2 α σ),
    /// which cancels the noise to first order. Two forward passes per draw and no backward
    /// pass; far less variance, as the network's ill-conditioned Jacobian no longer multiplies
    /// the noise.
    Distilled,
}

/// How the prior term is estimated during training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorBound {
    /// Timesteps t are drawn from `min_timestep..max_timestep` with p(t) ∝ 1/σ_t (0: the whole
    /// bound from below).
    pub min_timestep: usize,
    /// The end (exclusive) of the drawn timesteps; `None`: T. The distilled gradient at level t
    /// is the score of the prior smoothed by noise σ_t, so large t stand for a broader prior
    /// (a wider posterior) and add nothing to undoing aliasing, which small t already drive.
    #[serde(default)]
    pub max_timestep: Option<usize>,
    /// (t, ε) draws per training step, each over the whole batch.
    pub draws: usize,
    /// The gradient estimator (models saved before it existed used [`PriorGradient::Bound`]).
    #[serde(default)]
    pub gradient: PriorGradient,
}

/// An APS model directory's `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApsModelConfig {
    /// Always [`APS_KIND`].
    pub kind: String,
    /// The flow's architecture.
    pub flow: FlowConfig,
    /// User units ↔ network space (the prior's).
    pub normalization: Normalization,
    /// What it was trained to invert.
    pub family: MeasurementFamily,
    /// The prior term's estimator.
    pub prior_bound: PriorBound,
    /// Training draws latents in antithetic pairs (z, −z) for the same measurement, so the
    /// data term's gradient, linear in x, loses its zero-mean noise A·h to first order in what
    /// the pair shares (the mean); without it that noise, weighted by 1/σ², drowns the prior's
    /// pull on the mean. Half the batch's measurements are distinct.
    #[serde(default)]
    pub antithetic_latents: bool,
    /// Training moves only the second mean stage (`flow.refine_net`): the rest of the flow is
    /// frozen, so the new stage can take a larger learning rate than the trained one would bear.
    #[serde(default)]
    pub train_refine_only: bool,
    /// The diffusion prior it was distilled from (a path, for the model card).
    pub prior: String,
    /// What sampling draws over by default ([`ApsSampler::with_symmetries`]).
    #[serde(default)]
    pub sampling_symmetries: SamplingSymmetries,
}

impl ApsModelConfig {
    /// Checks every part.
    pub fn validate(&self) -> Result<()> {
        if self.kind != APS_KIND {
            return Err(Error::invalid(
                "model kind",
                format!("\"{APS_KIND}\""),
                format!("\"{}\"", self.kind),
            ));
        }
        self.flow.validate()?;
        self.normalization.validate()?;
        self.family.validate()?;
        if self.prior_bound.draws == 0 || self.prior_bound.draws > 64 {
            return Err(Error::invalid(
                "APS prior draws",
                "1..=64",
                self.prior_bound.draws,
            ));
        }
        for g in self.sampling_symmetries.orbit()? {
            g.check_problem(self.flow.in_channels, self.family.operator)?;
        }
        if self.train_refine_only && self.flow.refine_net.is_none() {
            return Err(Error::invalid(
                "APS train_refine_only",
                "a flow with a refine_net",
                "a flow without one",
            ));
        }
        if self.flow.cond_channels != self.flow.in_channels + 1 {
            return Err(Error::invalid(
                "APS flow cond_channels",
                format!("in_channels + 1 = {}", self.flow.in_channels + 1),
                self.flow.cond_channels,
            ));
        }
        Ok(())
    }
}

/// The mean network of width W (`train-aps --mean-net-width`) for `channels` × `size`²: up to 4
/// levels (widths W·[1, 2, 4, 4], down to 8×8 at 64²), one block each, attention at size/4 — the
/// same layout as the `small` prior, so its cost is about one prior evaluation.
pub fn mean_net_config(channels: usize, size: usize, width: usize) -> Option<UNetConfig> {
    if width == 0 {
        return None;
    }
    let mut levels = 1;
    while levels < 4 && size.is_multiple_of(1 << levels) && size >> levels >= 8 {
        levels += 1;
    }
    let attention = (size / 4).max(size >> (levels - 1));
    Some(UNetConfig {
        in_channels: channels,
        image_size: size,
        base_channels: width,
        channel_mults: [1, 2, 4, 4][..levels].to_vec(),
        blocks_per_level: 1,
        attention_resolutions: vec![attention],
        dropout: 0.0,
        groups: 4,
    })
}

/// w_t = β_t / (2 (1 − β_t)(1 − ᾱ_t)): the DDPM ELBO's weight on ‖ε_θ(x_t, t) − ε‖² (Ho et al.
/// 2020, eq. 12 with σ_t² = β_t), the discrete form of Song et al.'s likelihood weighting
/// g²/(2σ²). Σ_t w_t E‖ε_θ − ε‖² bounds −log p(x₀) up to a constant.
pub fn prior_bound_weight(schedule: &NoiseSchedule, t: usize) -> f64 {
    let beta = schedule.beta(t);
    beta / (2.0 * (1.0 - beta) * (1.0 - schedule.alpha_bar(t)))
}

/// Image channels (`[c, h, w]`, network units) of a complex image: re (and im when `channels` is 2),
/// normalised.
pub fn to_network_channels(
    values: &[Complex32],
    channels: usize,
    normalization: Normalization,
) -> Vec<f32> {
    let mut out: Vec<f32> = values.iter().map(|v| v.re).collect();
    if channels == 2 {
        out.extend(values.iter().map(|v| v.im));
    }
    normalization.normalize(&mut out);
    out
}

/// The conditioning image `[channels + 1, H, W]` of frame `frame` of `bundle`: Aᴴy in network
/// units, then the sampling pattern (1 where measured; all ones without a mask or when the mask
/// is not an image-sized pattern).
pub fn conditioning(
    bundle: &Bundle,
    frame: usize,
    channels: usize,
    normalization: Normalization,
) -> Result<Vec<f32>> {
    let t = bundle.spec().frames();
    if frame >= t {
        return Err(Error::invalid("frame", format!("< {t}"), frame));
    }
    let op = bundle.frame_operators()?.swap_remove(frame);
    frame_conditioning(bundle, frame, op.as_ref(), channels, normalization)
}

/// [`conditioning`] with frame `frame`'s operator already built (`op`), so a sequence builds its
/// operators once.
fn frame_conditioning(
    bundle: &Bundle,
    frame: usize,
    op: &dyn LinearOperator,
    channels: usize,
    normalization: Normalization,
) -> Result<Vec<f32>> {
    let [_, h, w] = bundle.spec().shape;
    let aty = op.adjoint(bundle.frame_y(frame))?;
    let mut out = to_network_channels(&aty, channels, normalization);
    let pattern: Vec<f32> = match bundle.mask() {
        Some(m) => {
            let mask = m.frame_pixels(frame, h)?;
            if mask.shape() == [h, w] {
                mask.data()
                    .iter()
                    .map(|&b| if b { 1.0 } else { 0.0 })
                    .collect()
            } else {
                vec![1.0; h * w]
            }
        }
        None => vec![1.0; h * w],
    };
    out.extend(pattern);
    Ok(out)
}

/// A trained APS model, ready to sample.
pub struct ApsSampler {
    config: ApsModelConfig,
    flow: ConditionalFlow,
    device: Device,
    symmetries: Vec<ProblemSymmetry>,
}

/// Posterior mean, per-pixel spread and a few draws of a sequence, `[T, H, W]` each.
#[derive(Clone, Debug)]
pub struct ApsEstimate {
    /// x̄ over the draws.
    pub mean: Vec<Complex32>,
    /// √(Σ|x_i − x̄|²/(N − 1)) per pixel; `None` for one draw.
    pub std: Option<Vec<f32>>,
    /// The first `keep` draws, each `[T, H, W]`.
    pub draws: Vec<Vec<Complex32>>,
    /// Seconds per frame spent in the network (all draws of the frame).
    pub seconds_per_frame: Vec<f64>,
}

/// Most draws evaluated in one network call.
const MAX_DRAWS_PER_CALL: usize = 64;

impl ApsSampler {
    /// Wraps a flow built from `config.flow`, drawing over `config.sampling_symmetries`.
    pub fn new(config: ApsModelConfig, flow: ConditionalFlow, device: &Device) -> Result<Self> {
        config.validate()?;
        let symmetries = config.sampling_symmetries.orbit()?;
        Ok(Self {
            config,
            flow,
            device: device.clone(),
            symmetries,
        })
    }

    /// Draw k of [`Self::estimate`] solves the problem transformed by `symmetries[k mod len]`
    /// and is mapped back ([`ProblemSymmetry`]): the draws then come from a mixture of the flow's
    /// images under the symmetries, which averages out the part of the amortisation error that
    /// is not symmetric, with the same number of draws (the conditioning network runs once per
    /// symmetry). Sound when the symmetries are the training data's (a model trained with
    /// horizontal flips; a global phase for MRI, whose receiver phase is arbitrary). Fails for
    /// an empty list, and for a symmetry that does not fit the model's problem
    /// ([`ProblemSymmetry::check_problem`]: a phase of a real model, a shift under
    /// super-resolution), so a bad option fails before any frame is drawn.
    pub fn with_symmetries(mut self, symmetries: Vec<ProblemSymmetry>) -> Result<Self> {
        if symmetries.is_empty() {
            return Err(Error::invalid("APS symmetries", "at least one", 0));
        }
        for g in &symmetries {
            g.check_problem(self.config.flow.in_channels, self.config.family.operator)?;
        }
        self.symmetries = symmetries;
        Ok(self)
    }

    /// The model's description.
    pub fn config(&self) -> &ApsModelConfig {
        &self.config
    }

    /// Fails unless `bundle` is a measurement this model can reconstruct (same operator kind,
    /// frame size and value type).
    pub fn check_bundle(&self, bundle: &Bundle) -> Result<()> {
        let spec = bundle.spec();
        let f = &self.config.flow;
        if spec.operator != self.config.family.operator {
            return Err(Error::invalid(
                "APS measurement operator",
                format!(
                    "{} (what the model was trained for)",
                    self.config.family.operator.name()
                ),
                spec.operator.name(),
            ));
        }
        if spec.image_shape() != [f.image_size, f.image_size] {
            return Err(Error::invalid(
                "APS frame size",
                format!("{0}×{0} (the model's)", f.image_size),
                format!("{}×{}", spec.shape[1], spec.shape[2]),
            ));
        }
        if spec.complex != (f.in_channels == 2) {
            return Err(Error::invalid(
                "APS image type",
                if f.in_channels == 2 {
                    "complex"
                } else {
                    "real"
                },
                if spec.complex { "complex" } else { "real" },
            ));
        }
        Ok(())
    }

    /// `samples` posterior draws of every frame of `bundle` (draws of frame t from
    /// `substream(seed, t)`), returning their mean, spread and the first `keep` draws in the
    /// bundle's units. `normalization` maps the bundle's units to the model's (its own, or one
    /// stretched by intensity matching for data of another scale). `observer(frames_done, frames)`.
    #[allow(clippy::too_many_arguments)]
    pub fn estimate(
        &self,
        bundle: &Bundle,
        normalization: Normalization,
        samples: usize,
        keep: usize,
        seed: u64,
        observer: &mut dyn FnMut(usize, usize),
    ) -> Result<ApsEstimate> {
        if samples == 0 {
            return Err(Error::invalid("APS samples", "at least 1", 0));
        }
        self.check_bundle(bundle)?;
        let [t, h, w] = bundle.spec().shape;
        let c = self.config.flow.in_channels;
        let plane = h * w;
        let keep = keep.min(samples);
        let mut mean = Vec::with_capacity(t * plane);
        let mut std = Vec::with_capacity(t * plane);
        let mut draws = vec![Vec::with_capacity(t * plane); keep];
        let mut seconds = Vec::with_capacity(t);
        let operators = bundle.frame_operators()?;
        for (frame, op) in operators.iter().enumerate() {
            let cond = frame_conditioning(bundle, frame, op.as_ref(), c, normalization)?;
            let conds = self.orbit_conditionings(&cond, [c, h, w], bundle.spec().operator)?;
            let mut rng = substream(seed, frame as u64);
            let mut moments = RunningMoments::default();
            let started = std::time::Instant::now();
            let mut done = 0;
            while done < samples {
                let n = MAX_DRAWS_PER_CALL.min(samples - done);
                let mut z = vec![0.0f32; n * c * plane];
                fill_standard_normal(&mut rng, &mut z);
                let x = self.generate_over_orbit(&z, &conds, done, [c, h, w])?;
                for (k, img) in x.chunks_exact(c * plane).enumerate() {
                    let values = self.to_user(img, plane, normalization);
                    let parts: Vec<f32> = values.iter().flat_map(|v| [v.re, v.im]).collect();
                    moments.push(&parts)?;
                    if done + k < keep {
                        draws[done + k].extend(values);
                    }
                }
                done += n;
            }
            seconds.push(started.elapsed().as_secs_f64());
            mean.extend(
                moments
                    .mean()
                    .chunks_exact(2)
                    .map(|p| Complex32::new(p[0], p[1])),
            );
            if samples > 1 {
                std.extend(moments.std()?.chunks_exact(2).map(|p| p[0].hypot(p[1])));
            }
            observer(frame + 1, t);
        }
        crate::error::ensure_finite_complex("APS posterior mean", &mean)?;
        Ok(ApsEstimate {
            mean,
            std: (samples > 1).then_some(std),
            draws,
            seconds_per_frame: seconds,
        })
    }

    /// `n` posterior draws of frame `frame` of `bundle` (whose operator `op` the caller built
    /// once, with [`Bundle::frame_operators`]) as a batch `[n, c, h, w]` in the network units of
    /// `normalization` (z from `rng`; draw k over symmetry k mod len, as in [`Self::estimate`]).
    pub fn frame_draws(
        &self,
        bundle: &Bundle,
        frame: usize,
        op: &dyn LinearOperator,
        n: usize,
        normalization: Normalization,
        rng: &mut crate::rng::SeededRng,
    ) -> Result<crate::image::ImageBatch> {
        if n == 0 || n > MAX_DRAWS_PER_CALL {
            return Err(Error::invalid(
                "APS draws per frame",
                format!("1..={MAX_DRAWS_PER_CALL}"),
                n,
            ));
        }
        self.check_bundle(bundle)?;
        let f = &self.config.flow;
        let cond = frame_conditioning(bundle, frame, op, f.in_channels, normalization)?;
        let [c, s] = [f.in_channels, f.image_size];
        let conds = self.orbit_conditionings(&cond, [c, s, s], bundle.spec().operator)?;
        let mut z = vec![0.0f32; n * c * s * s];
        fill_standard_normal(rng, &mut z);
        let x = self.generate_over_orbit(&z, &conds, 0, [c, s, s])?;
        crate::image::ImageBatch::new([n, c, s, s], x)
    }

    /// The conditioning image `cond` (`[c + 1, h, w]`) transformed by each symmetry of the orbit.
    fn orbit_conditionings(
        &self,
        cond: &[f32],
        [c, h, w]: [usize; 3],
        operator: OperatorKind,
    ) -> Result<Vec<Vec<f32>>> {
        self.symmetries
            .iter()
            .map(|g| g.conditioning(cond, c, [h, w], operator))
            .collect()
    }

    /// Draws `first..first + n` of a frame (z `[n, c, h, w]`): draw k from the problem
    /// transformed by `symmetries[k mod len]` (conditioning `conds[k mod len]`), mapped back;
    /// one network call per symmetry.
    fn generate_over_orbit(
        &self,
        z: &[f32],
        conds: &[Vec<f32>],
        first: usize,
        [c, h, w]: [usize; 3],
    ) -> Result<Vec<f32>> {
        let size = c * h * w;
        let n = z.len() / size;
        if conds.len() == 1 && self.symmetries[0] == ProblemSymmetry::IDENTITY {
            return self.generate(z, &conds[0], n);
        }
        let mut out = vec![0.0f32; z.len()];
        for (g, (symmetry, cond)) in self.symmetries.iter().zip(conds).enumerate() {
            let members: Vec<usize> = (0..n).filter(|i| (first + i) % conds.len() == g).collect();
            if members.is_empty() {
                continue;
            }
            let zg: Vec<f32> = members
                .iter()
                .flat_map(|&i| z[i * size..(i + 1) * size].iter().copied())
                .collect();
            let mut x = self.generate(&zg, cond, members.len())?;
            symmetry.invert_images(&mut x, c, [h, w])?;
            for (&i, img) in members.iter().zip(x.chunks_exact(size)) {
                out[i * size..(i + 1) * size].copy_from_slice(img);
            }
        }
        Ok(out)
    }

    /// G(z; c) for `n` draws sharing one conditioning image, network units.
    fn generate(&self, z: &[f32], cond: &[f32], n: usize) -> Result<Vec<f32>> {
        let f = &self.config.flow;
        let s = f.image_size;
        let z = Tensor::<4>::from_data(
            TensorData::new(z.to_vec(), [n, f.in_channels, s, s]),
            &self.device,
        );
        let c = Tensor::<4>::from_data(
            TensorData::new(cond.to_vec(), [1, f.cond_channels, s, s]),
            &self.device,
        );
        let (x, _) = self.flow.forward_conditioned(z, &self.flow.condition(c));
        let x = tensor_to_vec(x)?;
        crate::error::ensure_finite("APS sample", &x)?;
        Ok(x)
    }

    /// One network-space image `[c, h, w]` as complex values in user units.
    fn to_user(&self, image: &[f32], plane: usize, normalization: Normalization) -> Vec<Complex32> {
        let mut v = image.to_vec();
        normalization.denormalize(&mut v);
        if self.config.flow.in_channels == 2 {
            // The offset of complex data is 0, so denormalising each channel is exact.
            (0..plane)
                .map(|k| Complex32::new(v[k], v[plane + k]))
                .collect()
        } else {
            v.into_iter().map(|re| Complex32::new(re, 0.0)).collect()
        }
    }
}
