//! CG-SENSE: the (Tikhonov-regularised) least-squares solution
//! x̂ = argmin ½‖Ax − y‖² + ½μ‖x‖², i.e. (AᴴA + μI) x̂ = Aᴴy, by conjugate gradients from x₀ = 0.
//!
//! Started from 0, CG stays in the range of Aᴴ, so for μ = 0 and a rank-deficient A (undersampled
//! single-coil MRI) it converges to the minimum-norm solution; stopping early regularises too
//! (the iteration count is a regularisation parameter, as in Pruessmann et al. 2001).

use num_complex::Complex32;

use crate::baselines::{
    adjoint_of_measurement, check_iterations, check_non_negative, finish, project_real,
    Reconstructor,
};
use crate::error::Result;
use crate::physics::operator::LinearOperator;
use crate::posterior::cg::{conjugate_gradient, CgOptions, CgReport};

/// CG on (AᴴA + μI) x = Aᴴy from x₀ = 0, μ = `tikhonov`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeastSquares {
    /// Most CG iterations (≥ 1; each applies AᴴA once).
    pub iterations: usize,
    /// Stop once ‖b − M x‖ ≤ `tolerance`·‖b‖ (relative residual of the normal equations, ≥ 0).
    pub tolerance: f64,
    /// μ ≥ 0, the weight of ½μ‖x‖² (absolute, in the units of AᴴA: ‖A‖² for MRI is 1).
    pub tikhonov: f64,
}

impl Default for LeastSquares {
    fn default() -> Self {
        Self {
            iterations: 30,
            tolerance: 1e-6,
            tikhonov: 0.0,
        }
    }
}

impl LeastSquares {
    /// Fails unless iterations ≥ 1 and the tolerance and μ are finite and ≥ 0.
    pub fn validate(&self) -> Result<()> {
        check_iterations("least-squares iterations", self.iterations)?;
        check_non_negative("least-squares tolerance", self.tolerance)?;
        check_non_negative("Tikhonov weight μ", self.tikhonov)
    }

    /// x̂ and CG's report. With `real`, CG runs on real vectors with M x = Re(AᴴA x) + μx and
    /// b = Re(Aᴴy): the exact normal equations of the real parameter space.
    pub fn solve(
        &self,
        operator: &dyn LinearOperator,
        y: &[Complex32],
        real: bool,
    ) -> Result<(Vec<Complex32>, CgReport)> {
        self.validate()?;
        let b = adjoint_of_measurement(operator, y, real)?;
        let mu = self.tikhonov as f32;
        let mut x = vec![Complex32::default(); b.len()];
        let options = CgOptions {
            max_iterations: self.iterations,
            tolerance: self.tolerance,
        };
        let report = conjugate_gradient(
            |v, out| {
                operator.normal_into(v, out)?;
                if real {
                    // For real x, ‖A x − y‖² has gradient Re(AᴴA x − Aᴴy): the real-part
                    // projection is the normal operator of A restricted to real images.
                    project_real(out);
                }
                if mu != 0.0 {
                    out.iter_mut().zip(v).for_each(|(o, vi)| *o += mu * vi);
                }
                Ok(())
            },
            &b,
            &mut x,
            &options,
        )?;
        Ok((finish(self.name(), x)?, report))
    }
}

impl Reconstructor for LeastSquares {
    fn name(&self) -> &'static str {
        "cg"
    }

    fn reconstruct(
        &self,
        operator: &dyn LinearOperator,
        y: &[Complex32],
        real: bool,
    ) -> Result<Vec<Complex32>> {
        self.solve(operator, y, real).map(|(x, _)| x)
    }
}
