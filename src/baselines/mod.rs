//! Classic (non-learned) reconstructions x̂ from y = A x + n, so that every number the diffusion
//! samplers produce has a reference next to it.
//!
//! Every method implements [`Reconstructor`] on any [`LinearOperator`]; one file each:
//!
//! | method | [`Reconstructor::name`] | x̂ | solver |
//! |---|---|---|---|
//! | [`ZeroFilled`] | `zero-filled` | Aᴴy | — |
//! | [`LeastSquares`] | `cg` | argmin ½‖Ax − y‖² + ½μ‖x‖² | CG on (AᴴA + μI) x = Aᴴy from 0 (CG-SENSE) |
//! | [`TotalVariation`] | `tv` | argmin ½‖Ax − y‖² + λs·TV(x) + λ_t s·Σ_t‖x_{t+1} − x_t‖₁ | Chambolle–Pock PDHG |
//! | [`WaveletL1`] | `wavelet` | argmin ½‖Ax − y‖² + λs·‖W x‖₁ (detail bands) | FISTA |
//! | [`LineInterpolation`] | `interp` | each row linear between the acquired scan lines (scan-line subsampling only) | — |
//!
//! **What λ means.** The regularisation weights are relative: the penalty is multiplied by
//! s = max|Aᴴy| ([`relative_scale`]), the peak of the zero-filled image. Scaling the data by c
//! scales s, the data term's gradient and the minimiser by c, so the same λ gives the same
//! reconstruction (up to the factor c) on data of any intensity: λ is unitless and transfers
//! between data sets. (For y = 0, s = 0 and every method returns 0.)
//!
//! **Shapes.** x̂ has A's input shape, row-major, in the units of the data. TV and wavelets act on
//! the last two axes (`[…, h, w]`); leading axes are independent frames, except that TV couples
//! consecutive frames of a `[T, h, w]` input through its temporal term.
//!
//! **Real images.** `real = true` constrains x̂ to real values (imaginary part exactly 0), the
//! right model for magnitude data such as ultrasound or the real phantom.
//!
//! **Errors.** y of the wrong length ([`Error::Shape`]), non-finite y ([`Error::NonFinite`]),
//! a negative or non-finite weight or tolerance, zero iterations, or an image too small for a
//! wavelet level ([`Error::InvalidArgument`]). A non-finite result is reported as
//! [`Error::NonFinite`] instead of being returned.

pub mod gradient;
pub mod least_squares;
pub mod line_interpolation;
pub mod total_variation;
pub mod wavelet;
pub mod zero_filled;

pub use gradient::FiniteDifferences;
pub use least_squares::LeastSquares;
pub use line_interpolation::LineInterpolation;
pub use total_variation::TotalVariation;
pub use wavelet::{Wavelet, WaveletL1, WaveletTransform};
pub use zero_filled::ZeroFilled;

use num_complex::Complex32;

use crate::error::{ensure_finite_complex, Error, Result};
use crate::physics::operator::{check_len, operator_norm, LinearOperator};
use crate::rng::seeded;

/// A classic (non-learned) reconstruction x̂ from y = A x + n.
pub trait Reconstructor {
    /// Short name (`zero-filled`, `cg`, `tv`, `wavelet`).
    fn name(&self) -> &'static str;

    /// x̂ (A's input shape, row-major, user units) from y (A's output shape). `real`: constrain x̂
    /// to real values (imaginary part 0).
    fn reconstruct(
        &self,
        operator: &dyn LinearOperator,
        y: &[Complex32],
        real: bool,
    ) -> Result<Vec<Complex32>>;
}

/// How an iterative solve ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IterationReport {
    /// Iterations run.
    pub iterations: usize,
    /// ‖x_k − x_{k−1}‖/‖x_{k−1}‖ of the last iteration (0 when none ran).
    pub relative_change: f64,
    /// True when the relative change fell below the tolerance before the iteration limit.
    pub converged: bool,
}

/// s = max|Aᴴy|ᵢ, the factor that makes the regularisation weights relative to the data intensity.
pub fn relative_scale(adjoint_y: &[Complex32]) -> f64 {
    adjoint_y
        .iter()
        .map(|v| (v.re as f64).hypot(v.im as f64))
        .fold(0.0, f64::max)
}

/// Fails unless `y` has A's output length and is finite.
fn check_measurement(operator: &dyn LinearOperator, y: &[Complex32]) -> Result<()> {
    check_len("measurement y", operator.output_shape(), y.len())?;
    ensure_finite_complex("measurement y", y)
}

/// Aᴴy after checking y; the real part only when `real`.
pub(crate) fn adjoint_of_measurement(
    operator: &dyn LinearOperator,
    y: &[Complex32],
    real: bool,
) -> Result<Vec<Complex32>> {
    check_measurement(operator, y)?;
    let mut aty = operator.adjoint(y)?;
    if real {
        project_real(&mut aty);
    }
    ensure_finite_complex("Aᴴy", &aty)?;
    Ok(aty)
}

/// Sets every imaginary part to 0 (the projection onto real images).
pub(crate) fn project_real(x: &mut [Complex32]) {
    x.iter_mut().for_each(|v| v.im = 0.0);
}

/// Fails unless a regularisation weight or stopping tolerance is finite and ≥ 0 (a tolerance of
/// 0 runs every iteration).
pub(crate) fn check_non_negative(what: &str, value: f64) -> Result<()> {
    if !(value.is_finite() && value >= 0.0) {
        return Err(Error::invalid(what, "a finite value ≥ 0", value));
    }
    Ok(())
}

/// Fails unless an iterative method is allowed at least one iteration.
pub(crate) fn check_iterations(what: &str, value: usize) -> Result<()> {
    if value == 0 {
        return Err(Error::invalid(what, "at least 1", value));
    }
    Ok(())
}

/// `[frames, h, w]` for an input of shape `[…, h, w]` (leading axes flattened into frames).
pub(crate) fn frames_of(method: &str, shape: &[usize]) -> Result<[usize; 3]> {
    match shape {
        [.., h, w] => {
            let frames = shape[..shape.len() - 2].iter().product();
            Ok([frames, *h, *w])
        }
        _ => Err(Error::invalid(
            format!("{method} operator input shape"),
            "at least two axes [.., h, w]",
            format!("{shape:?}"),
        )),
    }
}

/// Power-iteration steps for ‖A‖ (the top eigenvalue of the MRI operators is highly degenerate,
/// so this is far more than they need; blur-like spectra converge to within a percent or two).
const NORM_ITERATIONS: usize = 40;

/// Power iteration starts from a fixed seed so that reconstructions are deterministic.
const NORM_SEED: u64 = 0x6261_7365_6c69_6e65;

/// Power iteration converges from below; this margin keeps step sizes on the safe side.
const NORM_MARGIN: f64 = 1.02;

/// An upper estimate of ‖A‖ (power iteration from a fixed seed, times a 2 % margin).
pub(crate) fn operator_norm_bound(operator: &dyn LinearOperator) -> Result<f64> {
    let estimate = operator_norm(operator, NORM_ITERATIONS, &mut seeded(NORM_SEED))? as f64;
    if !estimate.is_finite() {
        return Err(Error::NonFinite {
            what: "operator norm estimate".into(),
            index: 0,
        });
    }
    Ok(estimate * NORM_MARGIN)
}

/// ½‖A x − y‖², accumulated in f64.
pub(crate) fn data_term(
    operator: &dyn LinearOperator,
    x: &[Complex32],
    y: &[Complex32],
) -> Result<f64> {
    let ax = operator.forward(x)?;
    Ok(0.5
        * ax.iter()
            .zip(y)
            .map(|(a, b)| (a - b).norm_sqr() as f64)
            .sum::<f64>())
}

/// ‖a − b‖₂ in f64.
pub(crate) fn distance(a: &[Complex32], b: &[Complex32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(u, v)| {
            let d = u - v;
            (d.re as f64).powi(2) + (d.im as f64).powi(2)
        })
        .sum::<f64>()
        .sqrt()
}

/// Checks the result before it is returned: a non-finite x̂ is an error, never an output.
pub(crate) fn finish(method: &str, x: Vec<Complex32>) -> Result<Vec<Complex32>> {
    ensure_finite_complex(&format!("{method} reconstruction"), &x)?;
    Ok(x)
}
