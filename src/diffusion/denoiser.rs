//! The [`Denoiser`] trait: ε̂ = ε_θ(x_t, t) and its vector–Jacobian product with respect to x_t.

use crate::error::Result;
use crate::image::ImageBatch;

/// A noise predictor for a variance-preserving diffusion with the schedule it was trained on.
///
/// Inputs and outputs are in the model's normalised intensity space; the same timestep `t`
/// (an index into the training schedule) applies to every image of the batch.
pub trait Denoiser {
    /// `[channels, height, width]` of the images this denoiser accepts, or `None` for any size.
    fn image_shape(&self) -> Option<[usize; 3]>;

    /// ε̂ = ε_θ(x_t, t).
    fn predict_noise(&self, x_t: &ImageBatch, t: usize) -> Result<ImageBatch>;

    /// (ε̂, vᵀ ∂ε̂/∂x_t): the prediction and the vector–Jacobian product with `v` (same shape as x_t).
    ///
    /// DPS uses it through ∇_{x_t}⟨x̂₀(x_t), g⟩ = (g − σ_t vjp(g)) / α_t.
    fn predict_noise_vjp(
        &self,
        x_t: &ImageBatch,
        t: usize,
        v: &ImageBatch,
    ) -> Result<(ImageBatch, ImageBatch)>;

    /// (‖ε_θ(x_t, t) − ε‖² per image, ∇_{x_t} ‖ε_θ(x_t, t) − ε‖² = 2 (∂ε̂/∂x_t)ᵀ(ε̂ − ε)): one
    /// term of the denoising score-matching bound on −log p(x₀) and its gradient (APS's prior
    /// term). The default asks for ε̂, then for the VJP with ε̂ − ε; networks override it with a
    /// single forward and backward pass.
    fn noise_matching_grad(
        &self,
        x_t: &ImageBatch,
        t: usize,
        eps: &ImageBatch,
    ) -> Result<(Vec<f64>, ImageBatch)> {
        x_t.ensure_same_shape("noise ε", eps)?;
        let eps_hat = self.predict_noise(x_t, t)?;
        let diff = ImageBatch::lincomb(1.0, &eps_hat, -1.0, eps)?;
        let (_, mut vjp) = self.predict_noise_vjp(x_t, t, &diff)?;
        for v in vjp.data_mut() {
            *v *= 2.0;
        }
        let losses = (0..diff.batch_size())
            .map(|i| diff.image(i).iter().map(|&d| (d as f64) * (d as f64)).sum())
            .collect();
        Ok((losses, vjp))
    }
}

/// Fails unless `x` has the shape `denoiser` accepts.
pub fn check_input_shape(denoiser: &dyn Denoiser, x: &ImageBatch) -> Result<()> {
    if let Some(expected) = denoiser.image_shape() {
        let s = x.shape();
        if [s[1], s[2], s[3]] != expected {
            return Err(crate::Error::Shape {
                what: "denoiser input [c, h, w]".into(),
                expected: expected.to_vec(),
                got: vec![s[1], s[2], s[3]],
            });
        }
    }
    Ok(())
}
