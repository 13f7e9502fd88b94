//! Intensity normalisation between user units and the network's space: x_net = (x − offset) / scale.
//! It is stored in the model config, so sampling and reconstruction undo it exactly.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The quantile of |x| that [`Normalization::fit`] maps to 1 in network space.
pub const FIT_QUANTILE: f64 = 0.999;

/// The `q`-quantile of |v| over `values` (nearest rank; 0 for no values).
pub fn abs_quantile(values: &[f32], q: f64) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted: Vec<f32> = values.iter().map(|v| v.abs()).collect();
    sorted.sort_unstable_by(f32::total_cmp);
    sorted[((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize]
}

/// Affine map x_net = (x − offset) / scale, applied to every channel.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Subtracted before scaling (0 for complex data, so phase is preserved).
    pub offset: f32,
    /// Divides after the offset; > 0.
    pub scale: f32,
}

impl Normalization {
    /// Fits the map to training data: non-negative data in [0, m] goes to [−1, 1] (offset = scale =
    /// m/2); complex or signed data keeps zero offset and is scaled so |x| ≤ 1; m is the 99.9th
    /// percentile of |x| (robust to a few outliers). `values` are magnitudes for complex data.
    pub fn fit(values: &[f32], complex: bool) -> Result<Self> {
        let magnitudes = values;
        let signed = !complex && values.iter().any(|v| *v < 0.0);
        if magnitudes.is_empty() {
            return Err(Error::invalid(
                "training data",
                "at least one value",
                "an empty array",
            ));
        }
        let m = abs_quantile(magnitudes, FIT_QUANTILE);
        if !(m.is_finite() && m > 0.0) {
            return Err(Error::invalid(
                "training data",
                "a positive finite intensity range",
                format!("99.9th percentile |x| = {m}"),
            ));
        }
        Ok(if complex || signed {
            Normalization {
                offset: 0.0,
                scale: m,
            }
        } else {
            Normalization {
                offset: m / 2.0,
                scale: m / 2.0,
            }
        })
    }

    /// Checks that the map is invertible and finite.
    pub fn validate(&self) -> Result<()> {
        if !(self.scale.is_normal() && self.scale > 0.0 && self.offset.is_finite()) {
            return Err(Error::invalid(
                "normalization",
                "finite offset and scale > 0",
                format!("offset {}, scale {}", self.offset, self.scale),
            ));
        }
        Ok(())
    }

    /// User units → network space, in place.
    pub fn normalize(&self, values: &mut [f32]) {
        for v in values {
            *v = (*v - self.offset) / self.scale;
        }
    }

    /// Network space → user units, in place.
    pub fn denormalize(&self, values: &mut [f32]) {
        for v in values {
            *v = *v * self.scale + self.offset;
        }
    }
}
