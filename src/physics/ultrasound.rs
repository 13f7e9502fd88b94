//! Ultrasound scan-line subsampling: images in (depth × scan line) form, `[h = depth, w = lines]`,
//! of which only some columns (scan lines) are acquired. Draw the lines per frame with
//! [`kt_line_masks`](crate::physics::masks::kt_line_masks) (`acs` = 0) and widen transmits to
//! several columns with [`LineMask::expand`].

use num_complex::Complex32;

use crate::error::{Error, Result};
use crate::physics::masks::LineMask;
use crate::physics::operator::{check_io, checked_size, LinearOperator};
use crate::physics::sequence::FrameSequence;

/// y = x ⊙ m (column mask m broadcast over depth), zeros in missing lines; self-adjoint and idempotent.
///
/// zea fills missing lines with the image minimum (−1) instead of 0; that fill is affine, so add it
/// outside the operator.
#[derive(Clone, Debug)]
pub struct ScanLineSubsampling {
    lines: LineMask,
    shape: [usize; 2],
}

/// Scan-line subsampling with a different set of acquired lines in each frame.
pub type UltrasoundSequence = FrameSequence<ScanLineSubsampling>;

impl ScanLineSubsampling {
    /// Keeps the columns `lines` marks in `[depth, lines.width()]` images.
    pub fn new(depth: usize, lines: LineMask) -> Result<Self> {
        let shape = [depth, lines.width()];
        checked_size("ultrasound image shape", &shape)?;
        Ok(Self { lines, shape })
    }

    /// The acquired scan lines.
    pub fn lines(&self) -> &LineMask {
        &self.lines
    }

    fn apply(&self, input: &[Complex32], output: &mut [Complex32]) {
        let w = self.shape[1];
        for (orow, irow) in output.chunks_exact_mut(w).zip(input.chunks_exact(w)) {
            for ((o, &i), &keep) in orow.iter_mut().zip(irow).zip(self.lines.lines()) {
                *o = if keep { i } else { Complex32::default() };
            }
        }
    }
}

impl UltrasoundSequence {
    /// One set of acquired lines per frame for `[T, depth, lines]` sequences.
    pub fn from_lines(depth: usize, lines: Vec<LineMask>) -> Result<Self> {
        if lines.is_empty() {
            return Err(Error::invalid("frame line masks", "at least 1", 0));
        }
        let frames = lines
            .into_iter()
            .map(|l| ScanLineSubsampling::new(depth, l))
            .collect::<Result<Vec<_>>>()?;
        Self::new(frames)
    }
}

impl LinearOperator for ScanLineSubsampling {
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
        self.forward_into(x, out)
    }
}
