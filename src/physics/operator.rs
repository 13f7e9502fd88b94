//! The [`LinearOperator`] trait, composition, and shared shape checks.

use std::sync::Arc;

use num_complex::Complex32;

use crate::error::{Error, Result};
use crate::physics::complex::norm;
use crate::rng::{fill_standard_normal, SeededRng};

/// A linear map A between complex row-major arrays, with its adjoint Aᴴ.
///
/// Buffers are flat `Complex32` slices whose lengths must equal the products of
/// [`input_shape`](Self::input_shape) and [`output_shape`](Self::output_shape); implementations
/// return [`Error::Shape`] otherwise. Real images are complex with zero imaginary part.
pub trait LinearOperator: Send + Sync {
    /// Shape of x (row-major).
    fn input_shape(&self) -> &[usize];

    /// Shape of y = A x (row-major).
    fn output_shape(&self) -> &[usize];

    /// y ← A x.
    fn forward_into(&self, x: &[Complex32], y: &mut [Complex32]) -> Result<()>;

    /// x ← Aᴴ y.
    fn adjoint_into(&self, y: &[Complex32], x: &mut [Complex32]) -> Result<()>;

    /// out ← AᴴA x (default: forward then adjoint through a temporary).
    fn normal_into(&self, x: &[Complex32], out: &mut [Complex32]) -> Result<()> {
        let mut y = vec![Complex32::default(); self.output_len()];
        self.forward_into(x, &mut y)?;
        self.adjoint_into(&y, out)
    }

    /// Number of elements of x.
    fn input_len(&self) -> usize {
        // Shapes are validated with checked arithmetic when operators are built.
        self.input_shape().iter().product()
    }

    /// Number of elements of y.
    fn output_len(&self) -> usize {
        self.output_shape().iter().product()
    }

    /// A x as a new buffer.
    fn forward(&self, x: &[Complex32]) -> Result<Vec<Complex32>> {
        let mut y = vec![Complex32::default(); self.output_len()];
        self.forward_into(x, &mut y)?;
        Ok(y)
    }

    /// Aᴴ y as a new buffer.
    fn adjoint(&self, y: &[Complex32]) -> Result<Vec<Complex32>> {
        let mut x = vec![Complex32::default(); self.input_len()];
        self.adjoint_into(y, &mut x)?;
        Ok(x)
    }

    /// AᴴA x as a new buffer.
    fn normal(&self, x: &[Complex32]) -> Result<Vec<Complex32>> {
        let mut out = vec![Complex32::default(); self.input_len()];
        self.normal_into(x, &mut out)?;
        Ok(out)
    }
}

macro_rules! forward_linear_operator {
    ($ty:ty) => {
        impl<T: LinearOperator + ?Sized> LinearOperator for $ty {
            fn input_shape(&self) -> &[usize] {
                (**self).input_shape()
            }
            fn output_shape(&self) -> &[usize] {
                (**self).output_shape()
            }
            fn forward_into(&self, x: &[Complex32], y: &mut [Complex32]) -> Result<()> {
                (**self).forward_into(x, y)
            }
            fn adjoint_into(&self, y: &[Complex32], x: &mut [Complex32]) -> Result<()> {
                (**self).adjoint_into(y, x)
            }
            fn normal_into(&self, x: &[Complex32], out: &mut [Complex32]) -> Result<()> {
                (**self).normal_into(x, out)
            }
        }
    };
}

forward_linear_operator!(Box<T>);
forward_linear_operator!(Arc<T>);
forward_linear_operator!(&T);

/// The composition A∘B: x ↦ A(B x), with adjoint Bᴴ(Aᴴ y).
#[derive(Clone, Debug)]
pub struct Compose<A, B> {
    outer: A,
    inner: B,
}

impl<A: LinearOperator, B: LinearOperator> Compose<A, B> {
    /// `outer ∘ inner`; fails unless `inner`'s output shape is `outer`'s input shape.
    pub fn new(outer: A, inner: B) -> Result<Self> {
        if outer.input_shape() != inner.output_shape() {
            return Err(Error::Shape {
                what: "composed operator (outer input vs inner output)".into(),
                expected: outer.input_shape().to_vec(),
                got: inner.output_shape().to_vec(),
            });
        }
        Ok(Self { outer, inner })
    }

    /// The operator applied last (A).
    pub fn outer(&self) -> &A {
        &self.outer
    }

    /// The operator applied first (B).
    pub fn inner(&self) -> &B {
        &self.inner
    }
}

impl<A: LinearOperator, B: LinearOperator> LinearOperator for Compose<A, B> {
    fn input_shape(&self) -> &[usize] {
        self.inner.input_shape()
    }

    fn output_shape(&self) -> &[usize] {
        self.outer.output_shape()
    }

    fn forward_into(&self, x: &[Complex32], y: &mut [Complex32]) -> Result<()> {
        let mut mid = vec![Complex32::default(); self.inner.output_len()];
        self.inner.forward_into(x, &mut mid)?;
        self.outer.forward_into(&mid, y)
    }

    fn adjoint_into(&self, y: &[Complex32], x: &mut [Complex32]) -> Result<()> {
        let mut mid = vec![Complex32::default(); self.inner.output_len()];
        self.outer.adjoint_into(y, &mut mid)?;
        self.inner.adjoint_into(&mid, x)
    }

    fn normal_into(&self, x: &[Complex32], out: &mut [Complex32]) -> Result<()> {
        // Bᴴ(AᴴA)(B x) lets the outer operator use its own (possibly cheaper) normal.
        let mut mid = vec![Complex32::default(); self.inner.output_len()];
        let mut mid2 = vec![Complex32::default(); self.inner.output_len()];
        self.inner.forward_into(x, &mut mid)?;
        self.outer.normal_into(&mid, &mut mid2)?;
        self.inner.adjoint_into(&mid2, out)
    }
}

/// Estimates the operator norm ‖A‖ = √λ_max(AᴴA) by `iterations` power-iteration steps from a
/// random complex start (a lower bound that converges from below).
pub fn operator_norm(
    op: &(impl LinearOperator + ?Sized),
    iterations: usize,
    rng: &mut SeededRng,
) -> Result<f32> {
    if iterations == 0 {
        return Err(Error::invalid("power iterations", "at least 1", 0));
    }
    let n = op.input_len();
    let mut parts = vec![0.0f32; 2 * n];
    fill_standard_normal(rng, &mut parts);
    let mut x: Vec<Complex32> = parts
        .chunks_exact(2)
        .map(|p| Complex32::new(p[0], p[1]))
        .collect();
    let mut ax = vec![Complex32::default(); n];
    let mut estimate = 0.0f64;
    for _ in 0..iterations {
        let nx = norm(&x);
        if nx == 0.0 {
            return Ok(0.0);
        }
        let inv = (1.0 / nx) as f32;
        x.iter_mut().for_each(|v| *v *= inv);
        op.normal_into(&x, &mut ax)?;
        // For unit x, ‖AᴴA x‖ → λ_max; ⟨x, AᴴA x⟩ = ‖A x‖² is the Rayleigh quotient.
        estimate = crate::physics::complex::inner(&x, &ax).re.max(0.0);
        std::mem::swap(&mut x, &mut ax);
    }
    Ok(estimate.sqrt() as f32)
}

/// Fails with [`Error::Shape`] unless `len` equals the element count of `shape`.
pub(crate) fn check_len(what: &str, shape: &[usize], len: usize) -> Result<()> {
    let expected: usize = shape.iter().product();
    if expected != len {
        return Err(Error::Shape {
            what: what.into(),
            expected: vec![expected],
            got: vec![len],
        });
    }
    Ok(())
}

/// Checks the input and output buffer lengths of one application of `op`.
pub(crate) fn check_io(
    op: &(impl LinearOperator + ?Sized),
    input: usize,
    output: usize,
    adjoint: bool,
) -> Result<()> {
    let (ins, outs) = if adjoint {
        (op.output_shape(), op.input_shape())
    } else {
        (op.input_shape(), op.output_shape())
    };
    let dir = if adjoint { "adjoint" } else { "forward" };
    check_len(&format!("{dir} input buffer"), ins, input)?;
    check_len(&format!("{dir} output buffer"), outs, output)
}

/// Checks the buffers of one normal-operator application (both of input shape).
pub(crate) fn check_normal(
    op: &(impl LinearOperator + ?Sized),
    input: usize,
    output: usize,
) -> Result<()> {
    check_len("normal input buffer", op.input_shape(), input)?;
    check_len("normal output buffer", op.input_shape(), output)
}

/// The product of `dims` with overflow and zero checks.
pub(crate) fn checked_size(what: &str, dims: &[usize]) -> Result<usize> {
    if dims.is_empty() || dims.contains(&0) {
        return Err(Error::invalid(
            what,
            "all dimensions > 0",
            format!("{dims:?}"),
        ));
    }
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::invalid(what, "a size that fits in memory", format!("{dims:?}")))
}
