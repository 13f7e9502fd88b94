//! Pixel masking A = diag(M) (random-pixel and box inpainting); missing pixels read as zero.

use num_complex::Complex32;

use crate::error::Result;
use crate::physics::masks::Mask;
use crate::physics::operator::{check_io, LinearOperator};

/// y = M ⊙ x on `[h, w]` images, zeros where M is false; self-adjoint and idempotent.
#[derive(Clone, Debug)]
pub struct PixelMask {
    mask: Mask,
    shape: [usize; 2],
}

impl PixelMask {
    /// Masks `[h, w]` images with `mask`'s shape.
    pub fn new(mask: Mask) -> Self {
        let shape = mask.shape();
        Self { mask, shape }
    }

    /// The mask.
    pub fn mask(&self) -> &Mask {
        &self.mask
    }

    fn apply(&self, input: &[Complex32], output: &mut [Complex32]) {
        for ((o, &i), &keep) in output.iter_mut().zip(input).zip(self.mask.data()) {
            *o = if keep { i } else { Complex32::default() };
        }
    }
}

impl LinearOperator for PixelMask {
    fn input_shape(&self) -> &[usize] {
        &self.shape
    }

    fn output_shape(&self) -> &[usize] {
        &self.shape
    }

    fn forward_into(&self, x: &[Complex32], y: &mut [Complex32]) -> Result<()> {
        check_io(self, x.len(), y.len(), false)?;
        self.apply(x, y);
        Ok(())
    }

    fn adjoint_into(&self, y: &[Complex32], x: &mut [Complex32]) -> Result<()> {
        check_io(self, y.len(), x.len(), true)?;
        self.apply(y, x);
        Ok(())
    }

    fn normal_into(&self, x: &[Complex32], out: &mut [Complex32]) -> Result<()> {
        // MᴴM = M for a 0/1 mask.
        self.forward_into(x, out)
    }
}
