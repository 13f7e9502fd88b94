//! [`ImageBatch`]: a dense `[n, c, h, w]` float32 array, the currency between samplers and denoisers.
//! Complex images travel as two channels (real, imaginary).

use crate::error::{Error, Result};

/// Most values one array may hold (2³¹, 8 GiB of f32), checked before allocating.
pub const MAX_ELEMENTS: usize = 1 << 31;

/// A batch of `n` images with `c` channels of `h × w` pixels, row-major `[n, c, h, w]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageBatch {
    shape: [usize; 4],
    data: Vec<f32>,
}

impl ImageBatch {
    /// Wraps `data`; fails unless `data.len() == n·c·h·w`.
    pub fn new(shape: [usize; 4], data: Vec<f32>) -> Result<Self> {
        let expected = checked_len(&shape)?;
        if data.len() != expected {
            return Err(Error::Shape {
                what: "image batch data".into(),
                expected: vec![expected],
                got: vec![data.len()],
            });
        }
        Ok(Self { shape, data })
    }

    /// All zeros.
    pub fn zeros(shape: [usize; 4]) -> Result<Self> {
        let n = checked_len(&shape)?;
        Ok(Self {
            shape,
            data: vec![0.0; n],
        })
    }

    /// `[n, c, h, w]`.
    pub fn shape(&self) -> [usize; 4] {
        self.shape
    }

    /// Number of images.
    pub fn batch_size(&self) -> usize {
        self.shape[0]
    }

    /// Values per image (`c·h·w`).
    pub fn image_len(&self) -> usize {
        self.shape[1] * self.shape[2] * self.shape[3]
    }

    /// The flat data.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The flat data, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Consumes the batch, returning the flat data.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Image `i` as a flat slice.
    pub fn image(&self, i: usize) -> &[f32] {
        let len = self.image_len();
        &self.data[i * len..(i + 1) * len]
    }

    /// `self ← a·self + b·other` element-wise (shapes must match).
    pub fn axpby(&mut self, a: f32, b: f32, other: &ImageBatch) -> Result<()> {
        self.ensure_same_shape("axpby operand", other)?;
        for (s, o) in self.data.iter_mut().zip(&other.data) {
            *s = a * *s + b * *o;
        }
        Ok(())
    }

    /// `a·x + b·y` as a new batch.
    pub fn lincomb(a: f32, x: &ImageBatch, b: f32, y: &ImageBatch) -> Result<ImageBatch> {
        let mut out = x.clone();
        out.axpby(a, b, y)?;
        Ok(out)
    }

    /// Fails with a shape error unless `other` has this batch's shape.
    pub fn ensure_same_shape(&self, what: &str, other: &ImageBatch) -> Result<()> {
        if self.shape != other.shape {
            return Err(Error::Shape {
                what: what.into(),
                expected: self.shape.to_vec(),
                got: other.shape.to_vec(),
            });
        }
        Ok(())
    }

    /// Fails at the first non-finite value.
    pub fn ensure_finite(&self, what: &str) -> Result<()> {
        crate::error::ensure_finite(what, &self.data)
    }
}

/// `n·c·h·w` with overflow and zero checks.
fn checked_len(shape: &[usize; 4]) -> Result<usize> {
    if shape.contains(&0) {
        return Err(Error::invalid(
            "image batch shape",
            "all dimensions > 0",
            format!("{shape:?}"),
        ));
    }
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| {
            Error::invalid(
                "image batch shape",
                format!("at most {MAX_ELEMENTS} values"),
                format!("{shape:?}"),
            )
        })
}
