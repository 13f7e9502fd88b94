//! The analytic Gaussian denoiser: the exact ε̂ for data x₀ ~ N(μ, diag(s²)). It is the test oracle
//! that makes every sampler testable without trained weights.

use crate::diffusion::denoiser::{check_input_shape, Denoiser};
use crate::diffusion::schedule::NoiseSchedule;
use crate::error::{Error, Result};
use crate::image::ImageBatch;

/// Exact noise predictor for x₀ ~ N(μ, diag(s²)) under a VP schedule.
///
/// With x_t = α x₀ + σ ε: E[ε | x_t] = σ (x_t − α μ) / (α² s² + σ²), whose Jacobian is the diagonal
/// σ / (α² s² + σ²).
#[derive(Clone, Debug)]
pub struct GaussianDenoiser {
    schedule: NoiseSchedule,
    shape: [usize; 3],
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl GaussianDenoiser {
    /// Oracle for images of `shape` with per-pixel `mean` and standard deviation `std`.
    pub fn new(
        schedule: NoiseSchedule,
        shape: [usize; 3],
        mean: Vec<f32>,
        std: Vec<f32>,
    ) -> Result<Self> {
        let n = shape.iter().product::<usize>();
        for (what, v) in [("oracle mean", &mean), ("oracle std", &std)] {
            if v.len() != n {
                return Err(Error::Shape {
                    what: what.into(),
                    expected: vec![n],
                    got: vec![v.len()],
                });
            }
            crate::error::ensure_finite(what, v)?;
        }
        if let Some(bad) = std.iter().find(|s| **s < 0.0) {
            return Err(Error::invalid("oracle std", "≥ 0", bad));
        }
        Ok(Self {
            schedule,
            shape,
            mean,
            std,
        })
    }

    /// Per-pixel mean μ.
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// Per-pixel standard deviation s.
    pub fn std(&self) -> &[f32] {
        &self.std
    }

    /// (ε̂, dε̂/dx) for one value `x` at `pixel` (index within an image) and timestep `t`.
    fn eps_and_slope(&self, x: f32, pixel: usize, t: usize) -> (f32, f32) {
        let a = self.schedule.alpha(t);
        let s = self.schedule.sigma(t);
        let var = self.std[pixel] as f64;
        let denom = a * a * var * var + s * s;
        let slope = s / denom;
        let eps = slope * (x as f64 - a * self.mean[pixel] as f64);
        (eps as f32, slope as f32)
    }

    fn check(&self, x_t: &ImageBatch, t: usize) -> Result<()> {
        check_input_shape(self, x_t)?;
        if t >= self.schedule.num_train_timesteps() {
            return Err(Error::invalid(
                "timestep",
                format!("< {}", self.schedule.num_train_timesteps()),
                t,
            ));
        }
        Ok(())
    }
}

impl Denoiser for GaussianDenoiser {
    fn image_shape(&self) -> Option<[usize; 3]> {
        Some(self.shape)
    }

    fn predict_noise(&self, x_t: &ImageBatch, t: usize) -> Result<ImageBatch> {
        self.check(x_t, t)?;
        let len = x_t.image_len();
        let data = x_t
            .data()
            .iter()
            .enumerate()
            .map(|(i, &x)| self.eps_and_slope(x, i % len, t).0)
            .collect();
        ImageBatch::new(x_t.shape(), data)
    }

    fn predict_noise_vjp(
        &self,
        x_t: &ImageBatch,
        t: usize,
        v: &ImageBatch,
    ) -> Result<(ImageBatch, ImageBatch)> {
        self.check(x_t, t)?;
        x_t.ensure_same_shape("vjp vector", v)?;
        let len = x_t.image_len();
        let (eps, vjp): (Vec<f32>, Vec<f32>) = x_t
            .data()
            .iter()
            .zip(v.data())
            .enumerate()
            .map(|(i, (&x, &vi))| {
                let (e, slope) = self.eps_and_slope(x, i % len, t);
                (e, slope * vi)
            })
            .unzip();
        Ok((
            ImageBatch::new(x_t.shape(), eps)?,
            ImageBatch::new(x_t.shape(), vjp)?,
        ))
    }
}
