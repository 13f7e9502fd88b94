//! The data model of posterior sampling: a [`Measurement`] y = A(x_user) + n of one frame, and its
//! [`DataFidelity`] f(x) = ½‖A(scale·x + offset) − y‖² expressed in the network's normalised space.
//!
//! The denoiser works on x_net, the operator on x_user = scale·x_net + offset (the model's
//! [`Normalization`]). Because A is linear, A(scale·x + offset·𝟙) = scale·A x + A(offset·𝟙), so in
//! network space the data term is ½‖scale·A x − ỹ‖² with ỹ = y − A(offset·𝟙): the effective operator
//! is scale·A, its gradient scale·Aᴴ(scale·A x − ỹ) (the chain rule ∇_net = scale·∇_user), and the
//! normal equations scale²·AᴴA x = scale·Aᴴỹ. Residuals and their norms are in measurement units.
//!
//! Images are `[c, h, w]` frames with c = 2 (re, im) or c = 1 (real); the operator acts on `[h, w]`
//! complex buffers. For real images the parameter space is ℝ^{hw}, so the adjoint of x ↦ A x is
//! r ↦ Re(Aᴴ r) and the normal operator x ↦ Re(AᴴA x): gradients and CG stay real and exact even when
//! AᴴA is not real (e.g. an asymmetric k-space mask).

use std::sync::{Arc, OnceLock};

use num_complex::Complex32;

use crate::data::Normalization;
use crate::error::{Error, Result};
use crate::physics::complex::norm;
use crate::physics::operator::{operator_norm, LinearOperator};
use crate::physics::FrameSequence;
use crate::posterior::cg::{conjugate_gradient, ensure_finite_complex, CgOptions, CgReport};

/// Power-iteration steps for ‖A‖ when it is not given ([`Measurement::with_operator_norm`]).
pub const OPERATOR_NORM_ITERATIONS: usize = 50;

/// Seed of the (fixed) power-iteration start, so that ‖A‖ and everything using it are reproducible
/// and independent of the sampling RNG.
const OPERATOR_NORM_SEED: u64 = 0x6e6f_726d;

/// One frame's measurement y = A(scale·x_net + offset) + n, in the operator's (user) units.
#[derive(Clone)]
pub struct Measurement {
    operator: Arc<dyn LinearOperator>,
    y: Vec<Complex32>,
    normalization: Normalization,
    operator_norm: OnceLock<f32>,
}

impl std::fmt::Debug for Measurement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Measurement")
            .field("input_shape", &self.operator.input_shape())
            .field("output_shape", &self.operator.output_shape())
            .field("normalization", &self.normalization)
            .field("operator_norm", &self.operator_norm.get())
            .finish()
    }
}

impl Measurement {
    /// y (length = the operator's output size, finite) of `operator`, for a model with `normalization`.
    pub fn new(
        operator: Arc<dyn LinearOperator>,
        y: Vec<Complex32>,
        normalization: Normalization,
    ) -> Result<Self> {
        normalization.validate()?;
        if y.len() != operator.output_len() {
            return Err(Error::Shape {
                what: "measurement y vs operator output".into(),
                expected: operator.output_shape().to_vec(),
                got: vec![y.len()],
            });
        }
        ensure_finite_complex("measurement y", &y)?;
        Ok(Self {
            operator,
            y,
            normalization,
            operator_norm: OnceLock::new(),
        })
    }

    /// One measurement per frame of a sequence operator: y is `[T, out…]`, frame t gets `A_t` and y_t.
    pub fn per_frame<O>(
        sequence: &FrameSequence<O>,
        y: &[Complex32],
        normalization: Normalization,
    ) -> Result<Vec<Self>>
    where
        O: LinearOperator + Clone + 'static,
    {
        if y.len() != sequence.output_len() {
            return Err(Error::Shape {
                what: "sequence measurement y vs operator output".into(),
                expected: sequence.output_shape().to_vec(),
                got: vec![y.len()],
            });
        }
        let frames = sequence.frames();
        let per = y.len() / frames.len();
        frames
            .iter()
            .zip(y.chunks_exact(per))
            .map(|(op, yt)| Self::new(Arc::new(op.clone()), yt.to_vec(), normalization))
            .collect()
    }

    /// Sets ‖A‖ (user units) instead of estimating it, e.g. 1 for a masked unitary FFT.
    pub fn with_operator_norm(self, operator_norm: f32) -> Result<Self> {
        if !(operator_norm.is_finite() && operator_norm >= 0.0) {
            return Err(Error::invalid(
                "operator norm",
                "a finite value ≥ 0",
                operator_norm,
            ));
        }
        let cell = OnceLock::new();
        let _ = cell.set(operator_norm);
        Ok(Self {
            operator_norm: cell,
            ..self
        })
    }

    /// The operator A.
    pub fn operator(&self) -> &dyn LinearOperator {
        self.operator.as_ref()
    }

    /// The measured data y.
    pub fn y(&self) -> &[Complex32] {
        &self.y
    }

    /// The model's normalisation x_user = scale·x_net + offset.
    pub fn normalization(&self) -> Normalization {
        self.normalization
    }

    /// ‖A‖ = √λ_max(AᴴA) in user units: the value given, or a power-iteration estimate (cached).
    pub fn operator_norm(&self) -> Result<f32> {
        if let Some(&v) = self.operator_norm.get() {
            return Ok(v);
        }
        let mut rng = crate::rng::seeded(OPERATOR_NORM_SEED);
        let v = operator_norm(self.operator.as_ref(), OPERATOR_NORM_ITERATIONS, &mut rng)?;
        if !v.is_finite() {
            return Err(Error::NonFinite {
                what: "operator norm estimate".into(),
                index: 0,
            });
        }
        Ok(*self.operator_norm.get_or_init(|| v))
    }
}

/// The data term f(x) = ½‖scale·A x − ỹ‖², ỹ = y − A(offset·𝟙), of one `[c, h, w]` frame in network space.
#[derive(Clone, Debug)]
pub struct DataFidelity<'a> {
    measurement: &'a Measurement,
    channels: usize,
    plane: usize,
    scale: f32,
    /// ỹ = y − A(offset·𝟙).
    y_eff: Vec<Complex32>,
    /// b = scale·Aᴴỹ (real part only for real images): the right-hand side of the normal equations.
    rhs: Vec<Complex32>,
}

impl<'a> DataFidelity<'a> {
    /// Binds `measurement` to frames of `image_shape` = `[c, h, w]`; the operator must act on `[h, w]`.
    pub fn new(measurement: &'a Measurement, image_shape: [usize; 3]) -> Result<Self> {
        let [c, h, w] = image_shape;
        if c != 1 && c != 2 {
            return Err(Error::invalid(
                "image channels for a measurement",
                "1 (real) or 2 (re, im)",
                c,
            ));
        }
        let op = measurement.operator();
        if op.input_shape() != [h, w] {
            return Err(Error::Shape {
                what: "operator input vs image [h, w]".into(),
                expected: vec![h, w],
                got: op.input_shape().to_vec(),
            });
        }
        let Normalization { offset, scale } = measurement.normalization();
        let mut y_eff = measurement.y().to_vec();
        if offset != 0.0 {
            // The offset applies to every channel: offset·(1 + i) for complex images.
            let o = if c == 2 {
                Complex32::new(offset, offset)
            } else {
                Complex32::new(offset, 0.0)
            };
            let a_offset = op.forward(&vec![o; h * w])?;
            y_eff.iter_mut().zip(&a_offset).for_each(|(y, a)| *y -= a);
        }
        let mut fidelity = Self {
            measurement,
            channels: c,
            plane: h * w,
            scale,
            y_eff,
            rhs: Vec::new(),
        };
        let mut rhs = op.adjoint(&fidelity.y_eff)?;
        rhs.iter_mut().for_each(|v| *v *= scale);
        fidelity.project(&mut rhs);
        ensure_finite_complex("normal-equation right-hand side", &rhs)?;
        fidelity.rhs = rhs;
        Ok(fidelity)
    }

    /// The bound measurement.
    pub fn measurement(&self) -> &Measurement {
        self.measurement
    }

    /// Values per frame, c·h·w.
    pub fn image_len(&self) -> usize {
        self.channels * self.plane
    }

    /// r = A(scale·x + offset) − y = scale·A x − ỹ (measurement units).
    pub fn residual(&self, x: &[f32]) -> Result<Vec<Complex32>> {
        let v = self.to_complex(x)?;
        let mut r = self.measurement.operator().forward(&v)?;
        r.iter_mut()
            .zip(&self.y_eff)
            .for_each(|(ri, yi)| *ri = *ri * self.scale - yi);
        Ok(r)
    }

    /// ∇_x f = scale·Aᴴ(scale·A x − ỹ) = scale²·AᴴA x − b, as `[c, h, w]` values.
    pub fn gradient(&self, x: &[f32]) -> Result<Vec<f32>> {
        let v = self.to_complex(x)?;
        let mut g = self.measurement.operator().normal(&v)?;
        let s2 = self.scale * self.scale;
        g.iter_mut()
            .zip(&self.rhs)
            .for_each(|(gi, bi)| *gi = *gi * s2 - bi);
        Ok(self.to_channels(&g))
    }

    /// (∇_x ‖r‖, ‖r‖) with r = scale·A x − ỹ: ∇‖r‖ = scale·Aᴴr/‖r‖ (DPS's non-squared norm; 0 at r = 0).
    pub fn norm_gradient(&self, x: &[f32]) -> Result<(Vec<f32>, f64)> {
        let r = self.residual(x)?;
        let r_norm = norm(&r);
        if r_norm == 0.0 {
            // ‖r‖ is not differentiable at 0; 0 is a subgradient and the minimum is reached.
            return Ok((vec![0.0; self.image_len()], 0.0));
        }
        let mut g = self.measurement.operator().adjoint(&r)?;
        let c = (self.scale as f64 / r_norm) as f32;
        g.iter_mut().for_each(|v| *v *= c);
        Ok((self.to_channels(&g), r_norm))
    }

    /// L = scale²·‖A‖², the Lipschitz constant of ∇f (the largest step-size scale for gradient descent).
    pub fn lipschitz(&self) -> Result<f64> {
        let n = self.measurement.operator_norm()? as f64;
        Ok((self.scale as f64 * n).powi(2))
    }

    /// Solves (scale²·AᴴA + ρ I) x = scale·Aᴴỹ + ρ·x_ref by CG from `start` (ρ ≥ 0; `x_ref` is
    /// needed only when ρ > 0). ρ = 0 gives the least-squares normal equations (DDS); ρ > 0 is
    /// argmin ‖A(x_user) − y‖² + ρ‖x − x_ref‖² (DiffPIR's proximal step).
    pub fn solve(
        &self,
        start: &[f32],
        rho: f64,
        x_ref: Option<&[f32]>,
        options: &CgOptions,
    ) -> Result<(Vec<f32>, CgReport)> {
        if !(rho.is_finite() && rho >= 0.0) {
            return Err(Error::invalid(
                "proximal weight ρ",
                "a finite value ≥ 0",
                rho,
            ));
        }
        let mut b = self.rhs.clone();
        if rho > 0.0 {
            let x_ref = x_ref.ok_or_else(|| {
                Error::invalid("proximal reference", "an image when ρ > 0", "none")
            })?;
            let r = self.to_complex(x_ref)?;
            let rho32 = rho as f32;
            b.iter_mut().zip(&r).for_each(|(bi, ri)| *bi += rho32 * ri);
        }
        let mut x = self.to_complex(start)?;
        let op = self.measurement.operator();
        let s2 = self.scale * self.scale;
        let rho32 = rho as f32;
        let report = conjugate_gradient(
            |v, out| {
                op.normal_into(v, out)?;
                out.iter_mut()
                    .zip(v)
                    .for_each(|(o, vi)| *o = *o * s2 + rho32 * vi);
                self.project(out);
                Ok(())
            },
            &b,
            &mut x,
            options,
        )?;
        Ok((self.to_channels(&x), report))
    }

    /// For real images, drops the imaginary part (the real adjoint Re(Aᴴ·)); no-op for complex.
    fn project(&self, v: &mut [Complex32]) {
        if self.channels == 1 {
            v.iter_mut().for_each(|z| z.im = 0.0);
        }
    }

    /// A `[c, h, w]` frame as an `[h, w]` complex buffer.
    fn to_complex(&self, x: &[f32]) -> Result<Vec<Complex32>> {
        if x.len() != self.image_len() {
            return Err(Error::Shape {
                what: "frame values for the data term".into(),
                expected: vec![self.image_len()],
                got: vec![x.len()],
            });
        }
        Ok(if self.channels == 2 {
            let (re, im) = x.split_at(self.plane);
            re.iter()
                .zip(im)
                .map(|(&a, &b)| Complex32::new(a, b))
                .collect()
        } else {
            x.iter().map(|&a| Complex32::new(a, 0.0)).collect()
        })
    }

    /// An `[h, w]` complex buffer as `[c, h, w]` values (real part only for real images).
    fn to_channels(&self, v: &[Complex32]) -> Vec<f32> {
        if self.channels == 2 {
            v.iter()
                .map(|z| z.re)
                .chain(v.iter().map(|z| z.im))
                .collect()
        } else {
            v.iter().map(|z| z.re).collect()
        }
    }
}
