//! Forward finite differences ∇ and their negative adjoint, the divergence (∇ᴴ = −div), on
//! `[frames, h, w]` complex arrays: the one place TV's discretisation is written down.
//!
//! `(∇x)_row[f, i, j] = x[f, i+1, j] − x[f, i, j]` for i < h − 1 and 0 on the last row (Neumann
//! boundary); the same along columns (j) and, when `temporal`, along frames (f). The gradient
//! buffer stacks the components: `[row | column | temporal]`, each `frames·h·w` long.

use num_complex::Complex32;

use crate::error::Result;
use crate::physics::operator::{check_len, checked_size};

/// ∇ and div on `[frames, h, w]` arrays, spatial (2 components) or spatio-temporal (3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FiniteDifferences {
    shape: [usize; 3],
    temporal: bool,
}

/// One differenced axis: its length and the flat-index stride between neighbours.
#[derive(Clone, Copy)]
struct Axis {
    len: usize,
    stride: usize,
}

impl Axis {
    /// Position of flat index `k` along this axis.
    fn coord(self, k: usize) -> usize {
        (k / self.stride) % self.len
    }
}

impl FiniteDifferences {
    /// Differences over `[frames, h, w]`; `temporal` adds the frame axis as a third component.
    pub fn new(shape: [usize; 3], temporal: bool) -> Result<Self> {
        checked_size("finite-difference shape", &shape)?;
        Ok(Self { shape, temporal })
    }

    /// `[frames, h, w]`.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// True when the frame axis is differenced too.
    pub fn temporal(&self) -> bool {
        self.temporal
    }

    /// Elements of an image x.
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Components of ∇x: 2 (row, column) or 3 (row, column, temporal).
    pub fn components(&self) -> usize {
        if self.temporal {
            3
        } else {
            2
        }
    }

    /// Elements of ∇x: `components · image_len`.
    pub fn gradient_len(&self) -> usize {
        self.components() * self.image_len()
    }

    fn axes(&self) -> impl Iterator<Item = Axis> {
        let [frames, h, w] = self.shape;
        [
            Axis { len: h, stride: w },
            Axis { len: w, stride: 1 },
            Axis {
                len: frames,
                stride: h * w,
            },
        ]
        .into_iter()
        .take(self.components())
    }

    /// g ← ∇x (forward differences, zero at the last index of each axis).
    pub fn gradient_into(&self, x: &[Complex32], g: &mut [Complex32]) -> Result<()> {
        check_len("gradient input", &self.shape, x.len())?;
        check_len("gradient output", &[self.gradient_len()], g.len())?;
        for (axis, gc) in self.axes().zip(g.chunks_exact_mut(x.len())) {
            for (k, out) in gc.iter_mut().enumerate() {
                *out = if axis.coord(k) + 1 < axis.len {
                    x[k + axis.stride] - x[k]
                } else {
                    Complex32::default()
                };
            }
        }
        Ok(())
    }

    /// out ← div p = −∇ᴴp: per axis, `p[k] − p[k − 1]` with `p[−1] = 0` and the last index's p
    /// (whose difference is 0 by the Neumann boundary) ignored.
    pub fn divergence_into(&self, p: &[Complex32], out: &mut [Complex32]) -> Result<()> {
        check_len("divergence input", &[self.gradient_len()], p.len())?;
        check_len("divergence output", &self.shape, out.len())?;
        out.fill(Complex32::default());
        let n = out.len();
        for (axis, pc) in self.axes().zip(p.chunks_exact(n)) {
            for (k, o) in out.iter_mut().enumerate() {
                let c = axis.coord(k);
                if c + 1 < axis.len {
                    *o += pc[k];
                }
                if c > 0 {
                    *o -= pc[k - axis.stride];
                }
            }
        }
        Ok(())
    }

    /// ∇x as a new buffer.
    pub fn gradient(&self, x: &[Complex32]) -> Result<Vec<Complex32>> {
        let mut g = vec![Complex32::default(); self.gradient_len()];
        self.gradient_into(x, &mut g)?;
        Ok(g)
    }

    /// div p as a new buffer.
    pub fn divergence(&self, p: &[Complex32]) -> Result<Vec<Complex32>> {
        let mut out = vec![Complex32::default(); self.image_len()];
        self.divergence_into(p, &mut out)?;
        Ok(out)
    }

    /// Σ_pixels √(|∂_row x|² + |∂_col x|²), the isotropic spatial TV of a gradient buffer g = ∇x.
    pub fn isotropic_norm(&self, g: &[Complex32]) -> Result<f64> {
        check_len("gradient buffer", &[self.gradient_len()], g.len())?;
        let n = self.image_len();
        Ok(g[..n]
            .iter()
            .zip(&g[n..2 * n])
            .map(|(a, b)| (a.norm_sqr() as f64 + b.norm_sqr() as f64).sqrt())
            .sum())
    }

    /// Σ|∂_t x|, the anisotropic temporal TV of a gradient buffer g = ∇x (0 without a temporal
    /// component).
    pub fn temporal_norm(&self, g: &[Complex32]) -> Result<f64> {
        check_len("gradient buffer", &[self.gradient_len()], g.len())?;
        let n = self.image_len();
        Ok(g[2 * n..]
            .iter()
            .map(|v| (v.re as f64).hypot(v.im as f64))
            .sum())
    }
}
