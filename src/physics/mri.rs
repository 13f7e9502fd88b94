//! Single-coil Cartesian MRI: y = M F x, the centred orthonormal FFT followed by a sampling mask.

use std::sync::Arc;

use num_complex::Complex32;

use crate::error::{Error, Result};
use crate::physics::fft::Fft2;
use crate::physics::masks::Mask;
use crate::physics::operator::{check_io, check_normal, LinearOperator};

/// y = M ⊙ F x with F = fftshift∘FFT∘ifftshift (orthonormal), zeros where not sampled;
/// Aᴴ y = F⁻¹(M ⊙ y).
#[derive(Clone, Debug)]
pub struct CartesianMri {
    fft: Arc<Fft2>,
    mask: Mask,
    shape: [usize; 2],
}

impl CartesianMri {
    /// The operator for `mask`'s `[h, w]` shape (phase encodes along w).
    pub fn new(mask: Mask) -> Result<Self> {
        let fft = Arc::new(Fft2::new(mask.shape())?);
        Self::with_plan(fft, mask)
    }

    /// Shares planned transforms (e.g. across frames); fails unless the plan's shape is the mask's.
    pub fn with_plan(fft: Arc<Fft2>, mask: Mask) -> Result<Self> {
        if fft.shape() != mask.shape() {
            return Err(Error::Shape {
                what: "sampling mask vs FFT size".into(),
                expected: fft.shape().to_vec(),
                got: mask.shape().to_vec(),
            });
        }
        let shape = mask.shape();
        Ok(Self { fft, mask, shape })
    }

    /// The sampling mask.
    pub fn mask(&self) -> &Mask {
        &self.mask
    }
}

/// Zeroes every entry of `buf` where `mask` is false.
pub(crate) fn apply_mask(buf: &mut [Complex32], mask: &Mask) {
    for (v, &keep) in buf.iter_mut().zip(mask.data()) {
        if !keep {
            *v = Complex32::default();
        }
    }
}

impl LinearOperator for CartesianMri {
    fn input_shape(&self) -> &[usize] {
        &self.shape
    }

    fn output_shape(&self) -> &[usize] {
        &self.shape
    }

    fn forward_into(&self, x: &[Complex32], y: &mut [Complex32]) -> Result<()> {
        check_io(self, x.len(), y.len(), false)?;
        y.copy_from_slice(x);
        self.fft.forward_centered(y, &mut self.fft.make_scratch())?;
        apply_mask(y, &self.mask);
        Ok(())
    }

    fn adjoint_into(&self, y: &[Complex32], x: &mut [Complex32]) -> Result<()> {
        check_io(self, y.len(), x.len(), true)?;
        x.copy_from_slice(y);
        apply_mask(x, &self.mask);
        self.fft.inverse_centered(x, &mut self.fft.make_scratch())
    }

    fn normal_into(&self, x: &[Complex32], out: &mut [Complex32]) -> Result<()> {
        check_normal(self, x.len(), out.len())?;
        // F⁻¹ M F x in place, one scratch for both transforms.
        let mut scratch = self.fft.make_scratch();
        out.copy_from_slice(x);
        self.fft.forward_centered(out, &mut scratch)?;
        apply_mask(out, &self.mask);
        self.fft.inverse_centered(out, &mut scratch)
    }
}
