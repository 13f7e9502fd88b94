//! Conjugate gradients for Hermitian positive (semi)definite systems M x = b on complex buffers
//! (DDS, DiffPIR's proximal step, CG-SENSE).
//!
//! Iteration (Hestenes–Stiefel), started from the caller's x₀ (so a warm start such as DDS's x̂₀ is
//! kept in the null space of M): r₀ = b − M x₀, p₀ = r₀; α_k = ‖r_k‖²/⟨p_k, M p_k⟩,
//! x_{k+1} = x_k + α_k p_k, r_{k+1} = r_k − α_k M p_k, p_{k+1} = r_{k+1} + (‖r_{k+1}‖²/‖r_k‖²) p_k.
//! Inner products are accumulated in f64.

use num_complex::Complex32;

use crate::error::{Error, Result};
use crate::physics::complex::{inner, norm};

/// When CG stops.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CgOptions {
    /// Most iterations (each applies M once); 0 returns x₀ unchanged.
    pub max_iterations: usize,
    /// Stop once ‖b − M x‖ ≤ `tolerance`·‖b‖ (relative residual, ≥ 0).
    pub tolerance: f64,
}

impl Default for CgOptions {
    fn default() -> Self {
        Self {
            max_iterations: 20,
            tolerance: 1e-6,
        }
    }
}

impl CgOptions {
    /// Fails unless the tolerance is finite and ≥ 0.
    pub fn validate(&self) -> Result<()> {
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return Err(Error::invalid(
                "CG tolerance",
                "a finite value ≥ 0",
                self.tolerance,
            ));
        }
        Ok(())
    }
}

/// How a CG solve ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CgReport {
    /// Iterations run (applications of M inside the loop).
    pub iterations: usize,
    /// ‖b − M x‖ of the returned x (the recursively updated residual).
    pub residual_norm: f64,
    /// ‖b‖.
    pub rhs_norm: f64,
    /// True when ‖b − M x‖ ≤ tolerance·‖b‖ was reached.
    pub converged: bool,
}

/// Solves M x = b for Hermitian positive semidefinite M given as `apply(v, out)`: out ← M v.
///
/// `x` holds the start x₀ on entry and the solution on return. A search direction with
/// ⟨p, M p⟩ = 0 (p in the null space of a semidefinite M, reached only when the residual has
/// vanished for a consistent system) ends the iteration early; clearly negative curvature is an
/// error because M is then not positive semidefinite.
pub fn conjugate_gradient<F>(
    mut apply: F,
    b: &[Complex32],
    x: &mut [Complex32],
    options: &CgOptions,
) -> Result<CgReport>
where
    F: FnMut(&[Complex32], &mut [Complex32]) -> Result<()>,
{
    options.validate()?;
    if b.len() != x.len() {
        return Err(Error::Shape {
            what: "CG start vs right-hand side".into(),
            expected: vec![b.len()],
            got: vec![x.len()],
        });
    }
    ensure_finite_complex("CG right-hand side", b)?;
    ensure_finite_complex("CG start", x)?;
    let n = b.len();
    let rhs_norm = norm(b);
    let target = options.tolerance * rhs_norm;

    let mut mp = vec![Complex32::default(); n];
    let mut r = b.to_vec();
    if options.max_iterations > 0 {
        apply(x, &mut mp)?;
        ensure_finite_complex("CG operator output", &mp)?;
        r.iter_mut().zip(&mp).for_each(|(ri, m)| *ri -= m);
    }
    let mut rr = norm_sq(&r);
    let mut p = r.clone();
    let mut iterations = 0;
    while iterations < options.max_iterations && rr.sqrt() > target {
        apply(&p, &mut mp)?;
        let pmp = inner(&p, &mp).re;
        if !pmp.is_finite() {
            return Err(Error::NonFinite {
                what: "CG curvature ⟨p, M p⟩".into(),
                index: iterations,
            });
        }
        if pmp <= 0.0 {
            // Rounding can make a null-space direction slightly negative; anything beyond that
            // scale means M is indefinite and CG's answer would be meaningless.
            if -pmp > 1e-4 * norm(&p) * norm(&mp) {
                return Err(Error::invalid(
                    "CG operator",
                    "Hermitian positive semidefinite",
                    format!("⟨p, M p⟩ = {pmp:e} at iteration {iterations}"),
                ));
            }
            break;
        }
        let alpha = (rr / pmp) as f32;
        x.iter_mut().zip(&p).for_each(|(xi, pi)| *xi += alpha * pi);
        r.iter_mut().zip(&mp).for_each(|(ri, mi)| *ri -= alpha * mi);
        let rr_next = norm_sq(&r);
        let beta = (rr_next / rr) as f32;
        p.iter_mut()
            .zip(&r)
            .for_each(|(pi, ri)| *pi = ri + beta * *pi);
        rr = rr_next;
        iterations += 1;
    }
    let residual_norm = rr.sqrt();
    Ok(CgReport {
        iterations,
        residual_norm,
        rhs_norm,
        converged: residual_norm <= target,
    })
}

/// ‖a‖² in f64.
fn norm_sq(a: &[Complex32]) -> f64 {
    let n = norm(a);
    n * n
}

pub(crate) use crate::error::ensure_finite_complex;

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×3 Hermitian positive definite matrix applied densely.
    fn hpd() -> [[Complex32; 3]; 3] {
        let c = Complex32::new;
        [
            [c(4.0, 0.0), c(1.0, 1.0), c(0.0, -0.5)],
            [c(1.0, -1.0), c(3.0, 0.0), c(0.2, 0.0)],
            [c(0.0, 0.5), c(0.2, 0.0), c(2.0, 0.0)],
        ]
    }

    fn apply(m: &[[Complex32; 3]; 3], v: &[Complex32], out: &mut [Complex32]) {
        for (o, row) in out.iter_mut().zip(m) {
            *o = row.iter().zip(v).map(|(a, b)| a * b).sum();
        }
    }

    #[test]
    fn solves_hermitian_system_in_n_steps() {
        let m = hpd();
        let x_true = [
            Complex32::new(1.0, -2.0),
            Complex32::new(0.5, 0.25),
            Complex32::new(-1.0, 3.0),
        ];
        let mut b = vec![Complex32::default(); 3];
        apply(&m, &x_true, &mut b);
        let mut x = vec![Complex32::default(); 3];
        let opts = CgOptions {
            max_iterations: 10,
            tolerance: 1e-6,
        };
        let report = conjugate_gradient(
            |v, o| {
                apply(&m, v, o);
                Ok(())
            },
            &b,
            &mut x,
            &opts,
        )
        .unwrap();
        assert!(report.converged && report.iterations <= 4, "{report:?}");
        for (a, e) in x.iter().zip(&x_true) {
            assert!((a - e).norm() < 1e-4, "{a} vs {e}");
        }
    }

    #[test]
    fn semidefinite_keeps_null_space_of_start() {
        // M = diag(1, 0): the second component of x₀ is untouched, the first solved.
        let b = [Complex32::new(2.0, 1.0), Complex32::default()];
        let mut x = vec![Complex32::new(5.0, 0.0), Complex32::new(-3.0, 0.5)];
        let report = conjugate_gradient(
            |v, o| {
                o[0] = v[0];
                o[1] = Complex32::default();
                Ok(())
            },
            &b,
            &mut x,
            &CgOptions::default(),
        )
        .unwrap();
        assert!(report.converged);
        assert_eq!(x[0], Complex32::new(2.0, 1.0));
        assert_eq!(x[1], Complex32::new(-3.0, 0.5));
    }

    #[test]
    fn rejects_indefinite_and_bad_input() {
        let b = [Complex32::new(1.0, 0.0), Complex32::new(1.0, 0.0)];
        let mut x = vec![Complex32::default(); 2];
        let neg = |v: &[Complex32], o: &mut [Complex32]| {
            o[0] = -v[0];
            o[1] = -v[1];
            Ok(())
        };
        assert!(conjugate_gradient(neg, &b, &mut x, &CgOptions::default()).is_err());
        let nan = [Complex32::new(f32::NAN, 0.0), Complex32::default()];
        let id = |v: &[Complex32], o: &mut [Complex32]| {
            o.copy_from_slice(v);
            Ok(())
        };
        assert!(matches!(
            conjugate_gradient(id, &nan, &mut x, &CgOptions::default()),
            Err(Error::NonFinite { .. })
        ));
        let mut short = vec![Complex32::default(); 1];
        assert!(matches!(
            conjugate_gradient(id, &b, &mut short, &CgOptions::default()),
            Err(Error::Shape { .. })
        ));
    }
}
