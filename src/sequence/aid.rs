//! AID as a sequence strategy: every frame runs the whole reverse trajectory (any posterior
//! sampler; AID's own is DDIM + data consistency, Algorithm 1) with the autoregressive denoiser
//! ε_θ(x_t, t | x_{t−L..t−1}) conditioned on the posterior samples of the L frames before it, each
//! particle on its own history. Frame 0 has no history and uses the per-frame prior (the U-Net
//! alone), as does any model whose branch is untrained.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::diffusion::schedule::NoiseSchedule;
use crate::diffusion::{ClippedDenoiser, Denoiser};
use crate::error::{Error, Result};
use crate::image::ImageBatch;
use crate::nn::aid::AidNet;
use crate::nn::unet_denoiser::{tensor_from_slice, tensor_to_vec};
use crate::sequence::SequenceStrategy;

/// The AID strategy: the network (plain and autodiff copies) and the x̂₀ clipping of the prior.
pub struct Aid {
    plain: AidNet,
    differentiable: AidNet,
    device: Device,
    image_shape: [usize; 3],
    clip: Option<(NoiseSchedule, f32)>,
}

impl Aid {
    /// Wraps a trained network; `clip` = (schedule, limit) clips x̂₀ as the prior's samplers do.
    pub fn new(net: AidNet, clip: Option<(NoiseSchedule, f32)>, device: &Device) -> Result<Self> {
        let u = net.frame_shape();
        let plain = net.valid().to_device(device);
        let differentiable = plain.clone().to_device(&device.clone().autodiff()).freeze();
        Ok(Self {
            plain,
            differentiable,
            device: device.clone(),
            image_shape: u,
            clip,
        })
    }

    /// The denoiser of a frame whose last L posterior samples are `window` (oldest first, each
    /// `[P, c, h, w]`; empty for the first frame).
    pub fn denoiser<'s>(&'s self, window: &[ImageBatch]) -> AidDenoiser<'s> {
        let keep = window.len().min(self.plain.window());
        AidDenoiser {
            aid: self,
            window: window[window.len() - keep..].to_vec(),
        }
    }
}

impl SequenceStrategy for Aid {
    fn name(&self) -> &'static str {
        "aid"
    }

    fn warm_image(&mut self, _t: usize, _history: &[ImageBatch]) -> Result<Option<ImageBatch>> {
        Ok(None)
    }

    fn history_frames(&self) -> usize {
        self.plain.window()
    }

    fn frame_denoiser<'s>(
        &'s self,
        _t: usize,
        history: &[ImageBatch],
    ) -> Result<Option<Box<dyn Denoiser + 's>>> {
        Ok(Some(Box::new(self.denoiser(history))))
    }
}

/// ε_θ(x_t, t | window): AID's network conditioned on a fixed window of earlier frames.
pub struct AidDenoiser<'s> {
    aid: &'s Aid,
    window: Vec<ImageBatch>,
}

/// The same without clipping (what [`ClippedDenoiser`] wraps).
struct Unclipped<'a, 's>(&'a AidDenoiser<'s>);

impl AidDenoiser<'_> {
    /// The window as `[n, K, c, h, w]` values for a batch of `n` images: image k is conditioned
    /// on particle k's history (a one-image history serves every image).
    fn condition(&self, n: usize) -> Result<Option<Vec<f32>>> {
        if self.window.is_empty() {
            return Ok(None);
        }
        let len: usize = self.aid.image_shape.iter().product();
        let mut out = Vec::with_capacity(n * self.window.len() * len);
        for k in 0..n {
            for frame in &self.window {
                let m = frame.batch_size();
                if frame.image_len() != len || (m != n && m != 1) {
                    return Err(Error::Shape {
                        what: "AID conditioning frame".into(),
                        expected: vec![
                            n,
                            self.aid.image_shape[0],
                            self.aid.image_shape[1],
                            self.aid.image_shape[2],
                        ],
                        got: frame.shape().to_vec(),
                    });
                }
                out.extend_from_slice(frame.image(if m == 1 { 0 } else { k }));
            }
        }
        Ok(Some(out))
    }

    fn raw_predict(&self, x_t: &ImageBatch, t: usize) -> Result<ImageBatch> {
        let [n, c, h, w] = x_t.shape();
        let device = &self.aid.device;
        let x = tensor_from_slice(x_t.data(), [n, c, h, w], device);
        let cond = self.condition(n)?.map(|v| {
            Tensor::<5>::from_data(
                burn::tensor::TensorData::new(v, [n, self.window.len(), c, h, w]),
                device,
            )
        });
        let eps = tensor_to_vec(self.aid.plain.forward_next(x, cond, &vec![t; n]))?;
        let eps = ImageBatch::new(x_t.shape(), eps)?;
        eps.ensure_finite("AID network output ε̂")?;
        Ok(eps)
    }

    fn raw_vjp(
        &self,
        x_t: &ImageBatch,
        t: usize,
        v: &ImageBatch,
    ) -> Result<(ImageBatch, ImageBatch)> {
        let [n, c, h, w] = x_t.shape();
        let ad = self.aid.device.clone().autodiff();
        let x = tensor_from_slice(x_t.data(), [n, c, h, w], &ad).require_grad();
        let vt = tensor_from_slice(v.data(), [n, c, h, w], &ad);
        let cond = self.condition(n)?.map(|vals| {
            Tensor::<5>::from_data(
                burn::tensor::TensorData::new(vals, [n, self.window.len(), c, h, w]),
                &ad,
            )
        });
        let e = self
            .aid
            .differentiable
            .forward_next(x.clone(), cond, &vec![t; n]);
        let grads = (e.clone() * vt).sum().backward();
        let g = x
            .grad(&grads)
            .ok_or_else(|| Error::Model("no gradient reached the input".into()))?;
        let eps = ImageBatch::new(x_t.shape(), tensor_to_vec(e.inner())?)?;
        let vjp = ImageBatch::new(x_t.shape(), tensor_to_vec(g)?)?;
        eps.ensure_finite("AID network output ε̂")?;
        vjp.ensure_finite("AID vector–Jacobian product")?;
        Ok((eps, vjp))
    }
}

impl Denoiser for Unclipped<'_, '_> {
    fn image_shape(&self) -> Option<[usize; 3]> {
        Some(self.0.aid.image_shape)
    }

    fn predict_noise(&self, x_t: &ImageBatch, t: usize) -> Result<ImageBatch> {
        self.0.raw_predict(x_t, t)
    }

    fn predict_noise_vjp(
        &self,
        x_t: &ImageBatch,
        t: usize,
        v: &ImageBatch,
    ) -> Result<(ImageBatch, ImageBatch)> {
        self.0.raw_vjp(x_t, t, v)
    }
}

impl Denoiser for AidDenoiser<'_> {
    fn image_shape(&self) -> Option<[usize; 3]> {
        Some(self.aid.image_shape)
    }

    fn predict_noise(&self, x_t: &ImageBatch, t: usize) -> Result<ImageBatch> {
        match &self.aid.clip {
            Some((schedule, limit)) => {
                ClippedDenoiser::new(&Unclipped(self), schedule, *limit)?.predict_noise(x_t, t)
            }
            None => self.raw_predict(x_t, t),
        }
    }

    fn predict_noise_vjp(
        &self,
        x_t: &ImageBatch,
        t: usize,
        v: &ImageBatch,
    ) -> Result<(ImageBatch, ImageBatch)> {
        match &self.aid.clip {
            Some((schedule, limit)) => ClippedDenoiser::new(&Unclipped(self), schedule, *limit)?
                .predict_noise_vjp(x_t, t, v),
            None => self.raw_vjp(x_t, t, v),
        }
    }
}
