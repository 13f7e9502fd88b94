//! Ultrasound scan-line subsampling: images in (depth × scan line) form, `[h = depth, w = lines]`,
//! of which only some columns (scan lines) are acquired. Draw the lines per frame with
//! [`kt_line_masks`](crate::physics::masks::kt_line_masks) (`acs` = 0) and widen transmits to
//! several columns with [`LineMask::expand`].

use num_complex::Complex32;

use crate::error::{Error, Result};
use crate::physics::masks::LineMask;
use crate::physics::operator::{checked_size, LinearOperator};
use crate::physics::pixel_mask::PixelMask;
use crate::physics::sequence::FrameSequence;

/// y = x ⊙ m (column mask m broadcast over depth), zeros in missing lines; self-adjoint and idempotent.
///
/// zea fills missing lines with the image minimum (−1) instead of 0; that fill is affine, so add it
/// outside the operator.
#[derive(Clone, Debug)]
pub struct ScanLineSubsampling {
    lines: LineMask,
    /// The same selection as a pixel mask over `[depth, lines]`; it does the work.
    pixels: PixelMask,
}

/// Scan-line subsampling with a different set of acquired lines in each frame.
pub type UltrasoundSequence = FrameSequence<ScanLineSubsampling>;

impl ScanLineSubsampling {
    /// Keeps the columns `lines` marks in `[depth, lines.width()]` images.
    pub fn new(depth: usize, lines: LineMask) -> Result<Self> {
        let shape = [depth, lines.width()];
        checked_size("ultrasound image shape", &shape)?;
        let pixels = PixelMask::new(lines.to_mask(depth)?);
        Ok(Self { lines, pixels })
    }

    /// The acquired scan lines.
    pub fn lines(&self) -> &LineMask {
        &self.lines
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
        self.pixels.input_shape()
    }

    fn output_shape(&self) -> &[usize] {
        self.pixels.output_shape()
    }

    fn forward_into(&self, x: &[Complex32], y: &mut [Complex32]) -> Result<()> {
        self.pixels.forward_into(x, y)
    }

    fn adjoint_into(&self, y: &[Complex32], x: &mut [Complex32]) -> Result<()> {
        self.pixels.adjoint_into(y, x)
    }

    fn normal_into(&self, x: &[Complex32], out: &mut [Complex32]) -> Result<()> {
        self.pixels.normal_into(x, out)
    }
}
