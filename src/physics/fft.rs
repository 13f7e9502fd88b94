//! Orthonormal 2-D FFTs over row-major `[h, w]` complex buffers ([`Fft2`]), uncentred and centred,
//! and the centred FFT as a [`LinearOperator`] ([`CenteredFft`]).

use std::sync::Arc;

use num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

use crate::error::{Error, Result};
use crate::physics::operator::{check_io, check_len, check_normal, checked_size, LinearOperator};

/// Columns gathered per batched column FFT: contiguous copies keep the strided access cheap.
const COLUMN_BLOCK: usize = 16;

/// Planned orthonormal 2-D DFTs of one `[h, w]` size: `(F x)[k, l] = (1/√(hw)) Σ x[i, j] e^{−2πi(ik/h + jl/w)}`.
///
/// Plans are built once and shared (`Arc<dyn Fft>` is `Send + Sync`); the transform runs over rows,
/// then over blocks of columns, in place. Calls take a scratch buffer of [`Fft2::scratch_len`]
/// elements; the convenience methods without one allocate it.
pub struct Fft2 {
    shape: [usize; 2],
    row_forward: Arc<dyn Fft<f32>>,
    row_inverse: Arc<dyn Fft<f32>>,
    col_forward: Arc<dyn Fft<f32>>,
    col_inverse: Arc<dyn Fft<f32>>,
    block: usize,
    scratch_len: usize,
    scale: f32,
}

impl std::fmt::Debug for Fft2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fft2").field("shape", &self.shape).finish()
    }
}

impl Fft2 {
    /// Plans the four 1-D transforms (rows and columns, forward and inverse) for `[h, w]`.
    pub fn new(shape: [usize; 2]) -> Result<Self> {
        let len = checked_size("FFT shape", &shape)?;
        let [h, w] = shape;
        let mut planner = FftPlanner::<f32>::new();
        let row_forward = planner.plan_fft_forward(w);
        let row_inverse = planner.plan_fft_inverse(w);
        let col_forward = planner.plan_fft_forward(h);
        let col_inverse = planner.plan_fft_inverse(h);
        let fft_scratch = [&row_forward, &row_inverse, &col_forward, &col_inverse]
            .iter()
            .map(|p| p.get_inplace_scratch_len())
            .max()
            .unwrap_or(0);
        let block = COLUMN_BLOCK.min(w);
        let scratch_len = block
            .checked_mul(h)
            .and_then(|b| b.checked_add(fft_scratch))
            .ok_or_else(|| Error::invalid("FFT shape", "a size that fits in memory", len))?;
        Ok(Self {
            shape,
            row_forward,
            row_inverse,
            col_forward,
            col_inverse,
            block,
            scratch_len,
            scale: (1.0 / (len as f64).sqrt()) as f32,
        })
    }

    /// `[h, w]`.
    pub fn shape(&self) -> [usize; 2] {
        self.shape
    }

    /// Elements of scratch space one transform needs.
    pub fn scratch_len(&self) -> usize {
        self.scratch_len
    }

    /// A zeroed scratch buffer of [`Fft2::scratch_len`] elements.
    pub fn make_scratch(&self) -> Vec<Complex32> {
        vec![Complex32::default(); self.scratch_len]
    }

    /// In place: x ← F x (uncentred, orthonormal).
    pub fn forward(&self, buf: &mut [Complex32], scratch: &mut [Complex32]) -> Result<()> {
        self.transform(buf, scratch, false)
    }

    /// In place: x ← F⁻¹ x = Fᴴ x (uncentred, orthonormal).
    pub fn inverse(&self, buf: &mut [Complex32], scratch: &mut [Complex32]) -> Result<()> {
        self.transform(buf, scratch, true)
    }

    /// In place: x ← fftshift(F(ifftshift(x))), numpy's `fftshift(fft2(ifftshift(x), norm="ortho"))`.
    pub fn forward_centered(&self, buf: &mut [Complex32], scratch: &mut [Complex32]) -> Result<()> {
        self.check(buf, scratch)?;
        self.ifftshift(buf);
        self.transform(buf, scratch, false)?;
        self.fftshift(buf);
        Ok(())
    }

    /// In place: x ← fftshift(F⁻¹(ifftshift(x))), the inverse and adjoint of [`Fft2::forward_centered`].
    pub fn inverse_centered(&self, buf: &mut [Complex32], scratch: &mut [Complex32]) -> Result<()> {
        self.check(buf, scratch)?;
        self.ifftshift(buf);
        self.transform(buf, scratch, true)?;
        self.fftshift(buf);
        Ok(())
    }

    fn check(&self, buf: &[Complex32], scratch: &[Complex32]) -> Result<()> {
        check_len("FFT buffer", &self.shape, buf.len())?;
        if scratch.len() < self.scratch_len {
            return Err(Error::Shape {
                what: "FFT scratch buffer (minimum length)".into(),
                expected: vec![self.scratch_len],
                got: vec![scratch.len()],
            });
        }
        Ok(())
    }

    fn transform(
        &self,
        buf: &mut [Complex32],
        scratch: &mut [Complex32],
        inverse: bool,
    ) -> Result<()> {
        self.check(buf, scratch)?;
        let [h, w] = self.shape;
        let (row, col) = if inverse {
            (&self.row_inverse, &self.col_inverse)
        } else {
            (&self.row_forward, &self.col_forward)
        };
        let (cols, fft_scratch) = scratch.split_at_mut(self.block * h);
        // rustfft transforms every consecutive chunk of length w, i.e. all rows in one call.
        row.process_with_scratch(buf, fft_scratch);
        let scale = self.scale;
        for j0 in (0..w).step_by(self.block) {
            let nb = self.block.min(w - j0);
            let gathered = &mut cols[..nb * h];
            for (i, row) in buf.chunks_exact(w).enumerate() {
                for (b, &v) in row[j0..j0 + nb].iter().enumerate() {
                    gathered[b * h + i] = v;
                }
            }
            col.process_with_scratch(gathered, fft_scratch);
            for (i, row) in buf.chunks_exact_mut(w).enumerate() {
                for (b, v) in row[j0..j0 + nb].iter_mut().enumerate() {
                    *v = gathered[b * h + i] * scale;
                }
            }
        }
        Ok(())
    }

    /// Rolls both axes by ⌊n/2⌋ (numpy `fftshift`): the zero frequency moves to index ⌊n/2⌋.
    fn fftshift(&self, buf: &mut [Complex32]) {
        let [h, w] = self.shape;
        buf.chunks_exact_mut(w).for_each(|r| r.rotate_right(w / 2));
        buf.rotate_right((h / 2) * w);
    }

    /// Rolls both axes by −⌊n/2⌋ (numpy `ifftshift`), the inverse of `fftshift` for odd sizes too.
    fn ifftshift(&self, buf: &mut [Complex32]) {
        let [h, w] = self.shape;
        buf.chunks_exact_mut(w).for_each(|r| r.rotate_left(w / 2));
        buf.rotate_left((h / 2) * w);
    }
}

/// The centred orthonormal 2-D DFT as an operator: A = fftshift∘F∘ifftshift, unitary (Aᴴ = A⁻¹).
#[derive(Clone, Debug)]
pub struct CenteredFft {
    fft: Arc<Fft2>,
    shape: [usize; 2],
}

impl CenteredFft {
    /// Plans the transform for `[h, w]` images.
    pub fn new(shape: [usize; 2]) -> Result<Self> {
        Ok(Self::with_plan(Arc::new(Fft2::new(shape)?)))
    }

    /// Shares already planned transforms.
    pub fn with_plan(fft: Arc<Fft2>) -> Self {
        let shape = fft.shape();
        Self { fft, shape }
    }
}

impl LinearOperator for CenteredFft {
    fn input_shape(&self) -> &[usize] {
        &self.shape
    }

    fn output_shape(&self) -> &[usize] {
        &self.shape
    }

    fn forward_into(&self, x: &[Complex32], y: &mut [Complex32]) -> Result<()> {
        check_io(self, x.len(), y.len(), false)?;
        y.copy_from_slice(x);
        self.fft.forward_centered(y, &mut self.fft.make_scratch())
    }

    fn adjoint_into(&self, y: &[Complex32], x: &mut [Complex32]) -> Result<()> {
        check_io(self, y.len(), x.len(), true)?;
        x.copy_from_slice(y);
        self.fft.inverse_centered(x, &mut self.fft.make_scratch())
    }

    fn normal_into(&self, x: &[Complex32], out: &mut [Complex32]) -> Result<()> {
        check_normal(self, x.len(), out.len())?;
        // Unitary: FᴴF = I.
        out.copy_from_slice(x);
        Ok(())
    }
}
