//! The zero-filled reconstruction x̂ = Aᴴy: the adjoint applied to the data, with unmeasured
//! k-space left at zero (for MRI, the aliased inverse FFT).

use num_complex::Complex32;

use crate::baselines::{adjoint_of_measurement, finish, Reconstructor};
use crate::error::Result;
use crate::physics::operator::LinearOperator;

/// x̂ = Aᴴy (Re(Aᴴy) when `real`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ZeroFilled;

impl Reconstructor for ZeroFilled {
    fn name(&self) -> &'static str {
        "zero-filled"
    }

    fn reconstruct(
        &self,
        operator: &dyn LinearOperator,
        y: &[Complex32],
        real: bool,
    ) -> Result<Vec<Complex32>> {
        finish(self.name(), adjoint_of_measurement(operator, y, real)?)
    }
}
