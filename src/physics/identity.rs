//! The identity operator A = I (denoising).

use num_complex::Complex32;

use crate::error::Result;
use crate::physics::operator::{check_io, checked_size, LinearOperator};

/// A x = x on arrays of a fixed shape.
#[derive(Clone, Debug)]
pub struct Identity {
    shape: Vec<usize>,
}

impl Identity {
    /// The identity on arrays of `shape`.
    pub fn new(shape: &[usize]) -> Result<Self> {
        checked_size("identity shape", shape)?;
        Ok(Self {
            shape: shape.to_vec(),
        })
    }
}

impl LinearOperator for Identity {
    fn input_shape(&self) -> &[usize] {
        &self.shape
    }

    fn output_shape(&self) -> &[usize] {
        &self.shape
    }

    fn forward_into(&self, x: &[Complex32], y: &mut [Complex32]) -> Result<()> {
        check_io(self, x.len(), y.len(), false)?;
        y.copy_from_slice(x);
        Ok(())
    }

    fn adjoint_into(&self, y: &[Complex32], x: &mut [Complex32]) -> Result<()> {
        check_io(self, y.len(), x.len(), true)?;
        x.copy_from_slice(y);
        Ok(())
    }
}
