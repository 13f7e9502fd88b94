//! A trained U-Net behind the [`Denoiser`] trait, with the model description saved beside its weights.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::data::Normalization;
use crate::diffusion::denoiser::{check_input_shape, Denoiser};
use crate::diffusion::schedule::{NoiseSchedule, ScheduleKind};
use crate::error::{Error, Result};
use crate::image::ImageBatch;
use crate::nn::unet::{UNet, UNetConfig};

/// Everything needed to rebuild and use a trained prior (written as `config.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiffusionModelConfig {
    /// Network architecture.
    pub unet: UNetConfig,
    /// The noise schedule the network was trained with.
    pub schedule: ScheduleKind,
    /// T, the number of training levels.
    pub num_train_timesteps: usize,
    /// User units ↔ network space.
    pub normalization: Normalization,
}

impl DiffusionModelConfig {
    /// Validates every part.
    pub fn validate(&self) -> Result<()> {
        self.unet.validate()?;
        self.normalization.validate()?;
        NoiseSchedule::new(self.schedule, self.num_train_timesteps)?;
        Ok(())
    }

    /// The noise schedule.
    pub fn noise_schedule(&self) -> Result<NoiseSchedule> {
        NoiseSchedule::new(self.schedule, self.num_train_timesteps)
    }

    /// True when the model's images are complex (2 channels).
    pub fn is_complex(&self) -> bool {
        self.unet.in_channels == 2
    }
}

/// Images per network call; bounds peak memory for large batches.
const MAX_CHUNK: usize = 16;

/// A U-Net noise predictor: a plain copy for ε̂ and a frozen autodiff copy for vector–Jacobian products.
pub struct UNetDenoiser {
    config: DiffusionModelConfig,
    plain: UNet,
    differentiable: UNet,
    device: Device,
}

impl UNetDenoiser {
    /// Wraps `model` (on any device) for inference on `device`.
    pub fn new(config: DiffusionModelConfig, model: UNet, device: &Device) -> Result<Self> {
        config.validate()?;
        let plain = model.valid().to_device(device);
        let differentiable = plain.clone().to_device(&device.clone().autodiff()).freeze();
        Ok(Self {
            config,
            plain,
            differentiable,
            device: device.clone(),
        })
    }

    /// The plain (non-autodiff) network.
    pub fn into_unet(self) -> UNet {
        self.plain
    }

    /// The model's description.
    pub fn config(&self) -> &DiffusionModelConfig {
        &self.config
    }

    /// The network (inference copy).
    pub fn network(&self) -> &UNet {
        &self.plain
    }

    fn check(&self, x: &ImageBatch, t: usize) -> Result<()> {
        check_input_shape(self, x)?;
        if t >= self.config.num_train_timesteps {
            return Err(Error::invalid(
                "timestep",
                format!("< {}", self.config.num_train_timesteps),
                t,
            ));
        }
        Ok(())
    }
}

/// `[n, c, h, w]` tensor from `data` on `device`.
pub fn tensor_from_slice(data: &[f32], shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(data.to_vec(), shape), device)
}

/// Flat f32 values of a tensor.
pub fn tensor_to_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| Error::Model(format!("reading tensor data: {e:?}")))
}

impl Denoiser for UNetDenoiser {
    fn image_shape(&self) -> Option<[usize; 3]> {
        let u = &self.config.unet;
        Some([u.in_channels, u.image_size, u.image_size])
    }

    fn predict_noise(&self, x_t: &ImageBatch, t: usize) -> Result<ImageBatch> {
        self.check(x_t, t)?;
        let [n, c, h, w] = x_t.shape();
        let len = x_t.image_len();
        let mut out = Vec::with_capacity(x_t.data().len());
        for start in (0..n).step_by(MAX_CHUNK) {
            let m = MAX_CHUNK.min(n - start);
            let x = tensor_from_slice(
                &x_t.data()[start * len..(start + m) * len],
                [m, c, h, w],
                &self.device,
            );
            out.extend(tensor_to_vec(self.plain.forward(x, &vec![t; m]))?);
        }
        let eps = ImageBatch::new(x_t.shape(), out)?;
        eps.ensure_finite("network output ε̂")?;
        Ok(eps)
    }

    fn predict_noise_vjp(
        &self,
        x_t: &ImageBatch,
        t: usize,
        v: &ImageBatch,
    ) -> Result<(ImageBatch, ImageBatch)> {
        self.check(x_t, t)?;
        x_t.ensure_same_shape("vjp vector", v)?;
        let [n, c, h, w] = x_t.shape();
        let len = x_t.image_len();
        let ad = self.device.clone().autodiff();
        let (mut eps, mut vjp) = (Vec::with_capacity(n * len), Vec::with_capacity(n * len));
        for start in (0..n).step_by(MAX_CHUNK) {
            let m = MAX_CHUNK.min(n - start);
            let range = start * len..(start + m) * len;
            let x = tensor_from_slice(&x_t.data()[range.clone()], [m, c, h, w], &ad).require_grad();
            let vt = tensor_from_slice(&v.data()[range], [m, c, h, w], &ad);
            let e = self.differentiable.forward(x.clone(), &vec![t; m]);
            let grads = (e.clone() * vt).sum().backward();
            let g = x
                .grad(&grads)
                .ok_or_else(|| Error::Model("no gradient reached the input".into()))?;
            eps.extend(tensor_to_vec(e.inner())?);
            vjp.extend(tensor_to_vec(g)?);
        }
        let eps = ImageBatch::new(x_t.shape(), eps)?;
        let vjp = ImageBatch::new(x_t.shape(), vjp)?;
        eps.ensure_finite("network output ε̂")?;
        vjp.ensure_finite("network vector–Jacobian product")?;
        Ok((eps, vjp))
    }

    fn noise_matching_grad(
        &self,
        x_t: &ImageBatch,
        t: usize,
        eps: &ImageBatch,
    ) -> Result<(Vec<f64>, ImageBatch)> {
        self.check(x_t, t)?;
        x_t.ensure_same_shape("noise ε", eps)?;
        let [n, c, h, w] = x_t.shape();
        let len = x_t.image_len();
        let ad = self.device.clone().autodiff();
        let (mut losses, mut grad) = (Vec::with_capacity(n), Vec::with_capacity(n * len));
        for start in (0..n).step_by(MAX_CHUNK) {
            let m = MAX_CHUNK.min(n - start);
            let range = start * len..(start + m) * len;
            let x = tensor_from_slice(&x_t.data()[range.clone()], [m, c, h, w], &ad).require_grad();
            let target = tensor_from_slice(&eps.data()[range], [m, c, h, w], &ad);
            let per_image = (self.differentiable.forward(x.clone(), &vec![t; m]) - target)
                .powi_scalar(2)
                .reshape([m as i32, -1])
                .sum_dim(1);
            let grads = per_image.clone().sum().backward();
            let g = x
                .grad(&grads)
                .ok_or_else(|| Error::Model("no gradient reached the input".into()))?;
            losses.extend(tensor_to_vec(per_image.inner())?.into_iter().map(f64::from));
            grad.extend(tensor_to_vec(g)?);
        }
        let grad = ImageBatch::new(x_t.shape(), grad)?;
        grad.ensure_finite("gradient of the noise-matching loss")?;
        Ok((losses, grad))
    }
}
