//! Average-pool downsampling (super-resolution): each output pixel is the mean of an s×s block.

use num_complex::Complex32;

use crate::error::{Error, Result};
use crate::physics::operator::{check_io, checked_size, LinearOperator};

/// `y[i, j] = (1/s²) Σ_{a,b<s} x[si+a, sj+b]`; Aᴴ spreads `y[i, j]/s²` over the block, so AAᴴ = I/s² and ‖A‖ = 1/s.
#[derive(Clone, Debug)]
pub struct AvgPool {
    input: [usize; 2],
    output: [usize; 2],
    scale: usize,
}

impl AvgPool {
    /// Downsamples `[h, w]` by `scale` ≥ 1 along both axes; h and w must be multiples of it.
    pub fn new(shape: [usize; 2], scale: usize) -> Result<Self> {
        checked_size("average-pool input shape", &shape)?;
        if scale == 0 {
            return Err(Error::invalid("downsampling scale", "at least 1", 0));
        }
        let [h, w] = shape;
        if h % scale != 0 || w % scale != 0 {
            return Err(Error::invalid(
                "average-pool input shape",
                format!("h and w multiples of the scale {scale}"),
                format!("{h}×{w}"),
            ));
        }
        Ok(Self {
            input: shape,
            output: [h / scale, w / scale],
            scale,
        })
    }

    /// The downsampling factor s.
    pub fn scale(&self) -> usize {
        self.scale
    }
}

impl LinearOperator for AvgPool {
    fn input_shape(&self) -> &[usize] {
        &self.input
    }

    fn output_shape(&self) -> &[usize] {
        &self.output
    }

    fn forward_into(&self, x: &[Complex32], y: &mut [Complex32]) -> Result<()> {
        check_io(self, x.len(), y.len(), false)?;
        let s = self.scale;
        let (w, ow) = (self.input[1], self.output[1]);
        let weight = 1.0 / (s * s) as f32;
        y.fill(Complex32::default());
        for (i, row) in x.chunks_exact(w).enumerate() {
            let out = &mut y[(i / s) * ow..(i / s + 1) * ow];
            for (o, block) in out.iter_mut().zip(row.chunks_exact(s)) {
                *o += block.iter().sum::<Complex32>() * weight;
            }
        }
        Ok(())
    }

    fn adjoint_into(&self, y: &[Complex32], x: &mut [Complex32]) -> Result<()> {
        check_io(self, y.len(), x.len(), true)?;
        let s = self.scale;
        let (w, ow) = (self.input[1], self.output[1]);
        let weight = 1.0 / (s * s) as f32;
        for (i, row) in x.chunks_exact_mut(w).enumerate() {
            let src = &y[(i / s) * ow..(i / s + 1) * ow];
            for (block, &v) in row.chunks_exact_mut(s).zip(src) {
                block.fill(v * weight);
            }
        }
        Ok(())
    }
}
