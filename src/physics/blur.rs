//! Gaussian blur by FFT convolution with **periodic** (circular) boundaries: the image wraps around,
//! so content near one edge blurs into the opposite edge.

use std::sync::Arc;

use num_complex::Complex32;

use crate::error::{Error, Result};
use crate::physics::fft::Fft2;
use crate::physics::operator::{check_io, check_normal, LinearOperator};

/// y = k ⊛ x (circular), k the wrapped Gaussian of std σ pixels normalised to Σk = 1:
/// y = F⁻¹(K̂ ⊙ F x) with a real, symmetric K̂ ≤ 1, so A = Aᴴ and ‖A‖ = K̂(0) = 1.
#[derive(Clone, Debug)]
pub struct GaussianBlur {
    fft: Arc<Fft2>,
    shape: [usize; 2],
    sigma: f64,
    /// Unnormalised DFT of the kernel (the transfer function), row-major `[h, w]`.
    transfer: Vec<f32>,
}

impl GaussianBlur {
    /// Blurs `[h, w]` images with a Gaussian of standard deviation `sigma` > 0 pixels.
    pub fn new(shape: [usize; 2], sigma: f64) -> Result<Self> {
        if !(sigma.is_finite() && sigma > 0.0) {
            return Err(Error::invalid(
                "blur sigma",
                "finite and > 0 (pixels)",
                sigma,
            ));
        }
        let fft = Arc::new(Fft2::new(shape)?);
        let [h, w] = shape;
        // The kernel is separable, so its transfer function is the product of two 1-D ones.
        let (th, tw) = (transfer_1d(h, sigma), transfer_1d(w, sigma));
        let transfer = th
            .iter()
            .flat_map(|&a| tw.iter().map(move |&b| (a * b) as f32))
            .collect();
        Ok(Self {
            fft,
            shape,
            sigma,
            transfer,
        })
    }

    /// The standard deviation σ in pixels.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// buf ← F⁻¹(K̂ᵖ ⊙ F buf).
    fn filter(&self, buf: &mut [Complex32], power: i32) -> Result<()> {
        let mut scratch = self.fft.make_scratch();
        self.fft.forward(buf, &mut scratch)?;
        for (v, &k) in buf.iter_mut().zip(&self.transfer) {
            *v *= k.powi(power);
        }
        self.fft.inverse(buf, &mut scratch)
    }
}

/// ĝ(u) = Σ_i g(i) cos(2πui/n) for the wrapped Gaussian g(i) ∝ exp(−min(i, n−i)²/2σ²), Σg = 1
/// (the sine terms cancel because g(i) = g(n−i)).
fn transfer_1d(n: usize, sigma: f64) -> Vec<f64> {
    let g: Vec<f64> = (0..n)
        .map(|i| {
            let d = i.min(n - i) as f64;
            (-d * d / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let total: f64 = g.iter().sum();
    (0..n)
        .map(|u| {
            g.iter()
                .enumerate()
                .map(|(i, &gi)| {
                    // Reduce u·i mod n first so the angle stays exact for large sizes.
                    let phase = ((u * i) % n) as f64 / n as f64;
                    gi * (2.0 * std::f64::consts::PI * phase).cos()
                })
                .sum::<f64>()
                / total
        })
        .collect()
}

impl LinearOperator for GaussianBlur {
    fn input_shape(&self) -> &[usize] {
        &self.shape
    }

    fn output_shape(&self) -> &[usize] {
        &self.shape
    }

    fn forward_into(&self, x: &[Complex32], y: &mut [Complex32]) -> Result<()> {
        check_io(self, x.len(), y.len(), false)?;
        y.copy_from_slice(x);
        self.filter(y, 1)
    }

    fn adjoint_into(&self, y: &[Complex32], x: &mut [Complex32]) -> Result<()> {
        check_io(self, y.len(), x.len(), true)?;
        x.copy_from_slice(y);
        self.filter(x, 1)
    }

    fn normal_into(&self, x: &[Complex32], out: &mut [Complex32]) -> Result<()> {
        check_normal(self, x.len(), out.len())?;
        out.copy_from_slice(x);
        self.filter(out, 2)
    }
}
