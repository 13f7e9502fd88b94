//! Operators on image sequences: one per-frame operator applied to each frame of `[T, …]`, so the
//! mask (or any other parameter) may change every frame.

use std::sync::Arc;

use num_complex::Complex32;

use crate::error::{Error, Result};
use crate::physics::coils::CoilMaps;
use crate::physics::fft::Fft2;
use crate::physics::masks::Mask;
use crate::physics::mri::CartesianMri;
use crate::physics::operator::{check_io, check_normal, checked_size, LinearOperator};
use crate::physics::sense::SenseMri;

/// (A x)_t = A_t x_t for frames t = 0..T; input `[T, in…]`, output `[T, out…]`, block-diagonal so ‖A‖ = max_t ‖A_t‖.
#[derive(Clone, Debug)]
pub struct FrameSequence<O> {
    frames: Vec<O>,
    input: Vec<usize>,
    output: Vec<usize>,
}

/// Dynamic single-coil MRI, y_t = M_t F x_t.
pub type DynamicMri = FrameSequence<CartesianMri>;

/// Dynamic multi-coil MRI, y_{t,c} = M_t F (S_c x_t).
pub type DynamicSense = FrameSequence<SenseMri>;

impl<O: LinearOperator> FrameSequence<O> {
    /// One operator per frame; fails if there are none or their shapes differ.
    pub fn new(frames: Vec<O>) -> Result<Self> {
        let first = frames
            .first()
            .ok_or_else(|| Error::invalid("frame operators", "at least 1", 0))?;
        let (fin, fout) = (first.input_shape().to_vec(), first.output_shape().to_vec());
        for op in &frames[1..] {
            for (what, expected, got) in [
                ("frame operator input shape", &fin, op.input_shape()),
                ("frame operator output shape", &fout, op.output_shape()),
            ] {
                if expected != got {
                    return Err(Error::Shape {
                        what: what.into(),
                        expected: expected.clone(),
                        got: got.to_vec(),
                    });
                }
            }
        }
        let input: Vec<usize> = std::iter::once(frames.len()).chain(fin).collect();
        let output: Vec<usize> = std::iter::once(frames.len()).chain(fout).collect();
        checked_size("sequence input shape", &input)?;
        checked_size("sequence output shape", &output)?;
        Ok(Self {
            frames,
            input,
            output,
        })
    }

    /// The same operator for each of `frames` frames.
    pub fn repeat(op: O, frames: usize) -> Result<Self>
    where
        O: Clone,
    {
        if frames == 0 {
            return Err(Error::invalid("frames", "at least 1", 0));
        }
        Self::new(vec![op; frames])
    }

    /// The per-frame operators.
    pub fn frames(&self) -> &[O] {
        &self.frames
    }

    fn frame_lens(&self) -> (usize, usize) {
        let t = self.frames.len();
        (self.input_len() / t, self.output_len() / t)
    }
}

impl DynamicMri {
    /// Dynamic single-coil MRI with one `[h, w]` mask per frame, sharing one FFT plan.
    pub fn from_masks(masks: Vec<Mask>) -> Result<Self> {
        let shape = masks
            .first()
            .ok_or_else(|| Error::invalid("frame masks", "at least 1", 0))?
            .shape();
        let fft = Arc::new(Fft2::new(shape)?);
        let frames = masks
            .into_iter()
            .map(|m| CartesianMri::with_plan(fft.clone(), m))
            .collect::<Result<Vec<_>>>()?;
        Self::new(frames)
    }
}

impl DynamicSense {
    /// Dynamic SENSE with fixed coil maps and one `[h, w]` mask per frame, sharing one FFT plan.
    pub fn from_masks(maps: Arc<CoilMaps>, masks: Vec<Mask>) -> Result<Self> {
        let [_, h, w] = maps.shape();
        let fft = Arc::new(Fft2::new([h, w])?);
        let frames = masks
            .into_iter()
            .map(|m| SenseMri::with_plan(fft.clone(), maps.clone(), m))
            .collect::<Result<Vec<_>>>()?;
        Self::new(frames)
    }
}

impl<O: LinearOperator> LinearOperator for FrameSequence<O> {
    fn input_shape(&self) -> &[usize] {
        &self.input
    }

    fn output_shape(&self) -> &[usize] {
        &self.output
    }

    fn forward_into(&self, x: &[Complex32], y: &mut [Complex32]) -> Result<()> {
        check_io(self, x.len(), y.len(), false)?;
        let (fin, fout) = self.frame_lens();
        for ((op, xt), yt) in self
            .frames
            .iter()
            .zip(x.chunks_exact(fin))
            .zip(y.chunks_exact_mut(fout))
        {
            op.forward_into(xt, yt)?;
        }
        Ok(())
    }

    fn adjoint_into(&self, y: &[Complex32], x: &mut [Complex32]) -> Result<()> {
        check_io(self, y.len(), x.len(), true)?;
        let (fin, fout) = self.frame_lens();
        for ((op, yt), xt) in self
            .frames
            .iter()
            .zip(y.chunks_exact(fout))
            .zip(x.chunks_exact_mut(fin))
        {
            op.adjoint_into(yt, xt)?;
        }
        Ok(())
    }

    fn normal_into(&self, x: &[Complex32], out: &mut [Complex32]) -> Result<()> {
        check_normal(self, x.len(), out.len())?;
        let (fin, _) = self.frame_lens();
        for ((op, xt), ot) in self
            .frames
            .iter()
            .zip(x.chunks_exact(fin))
            .zip(out.chunks_exact_mut(fin))
        {
            op.normal_into(xt, ot)?;
        }
        Ok(())
    }
}
