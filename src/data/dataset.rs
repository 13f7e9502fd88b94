//! Training images from an array: `[N, H, W]` or `[N, T, H, W]` (every frame one sample), float32
//! (1 channel) or complex (2 channels: real, imaginary).

use num_complex::Complex32;

use crate::error::{Error, Result};
use crate::image::ImageBatch;

/// Images as `[n, c, h, w]` in user units, plus whether they came from complex data.
pub struct TrainingImages {
    /// The images.
    pub images: ImageBatch,
    /// True when channel 0/1 are real/imaginary parts.
    pub complex: bool,
}

/// Splits a real or complex array of shape `[N, H, W]` or `[N, T, H, W]` into square training images.
pub fn training_images(
    shape: &[usize],
    real: Option<&[f32]>,
    complex: Option<&[Complex32]>,
) -> Result<TrainingImages> {
    let (n, h, w) = match *shape {
        [n, h, w] => (n, h, w),
        [n, t, h, w] => (
            n.checked_mul(t).ok_or_else(|| {
                Error::invalid(
                    "array shape",
                    "a size that fits in memory",
                    format!("{shape:?}"),
                )
            })?,
            h,
            w,
        ),
        _ => {
            return Err(Error::invalid(
                "array rank",
                "3 ([N, H, W]) or 4 ([N, T, H, W])",
                format!("{} (shape {shape:?})", shape.len()),
            ))
        }
    };
    if n == 0 || h == 0 || w == 0 {
        return Err(Error::invalid(
            "array shape",
            "no zero-length dimension",
            format!("{shape:?}"),
        ));
    }
    if h != w {
        return Err(Error::invalid(
            "image shape",
            "square images (H = W)",
            format!("{h} × {w}"),
        ));
    }
    match (real, complex) {
        (Some(data), None) => {
            crate::error::ensure_finite("training data", data)?;
            Ok(TrainingImages {
                images: ImageBatch::new([n, 1, h, w], data.to_vec())?,
                complex: false,
            })
        }
        (None, Some(data)) => {
            let len = h * w;
            let mut out = vec![0.0f32; data.len() * 2];
            for (i, img) in data.chunks_exact(len).enumerate() {
                for (p, v) in img.iter().enumerate() {
                    if !(v.re.is_finite() && v.im.is_finite()) {
                        return Err(Error::NonFinite {
                            what: "training data".into(),
                            index: i * len + p,
                        });
                    }
                    out[2 * i * len + p] = v.re;
                    out[(2 * i + 1) * len + p] = v.im;
                }
            }
            Ok(TrainingImages {
                images: ImageBatch::new([n, 2, h, w], out)?,
                complex: true,
            })
        }
        _ => Err(Error::invalid(
            "training data",
            "exactly one of real or complex values",
            "both or neither",
        )),
    }
}

/// Per-pixel magnitudes of `[n, c, h, w]` images (|x| for 1 channel, √(re² + im²) for 2).
pub fn magnitudes(images: &ImageBatch) -> Vec<f32> {
    let [n, c, h, w] = images.shape();
    let len = h * w;
    let mut out = Vec::with_capacity(n * len);
    for i in 0..n {
        let img = images.image(i);
        if c == 2 {
            out.extend((0..len).map(|p| img[p].hypot(img[len + p])));
        } else {
            out.extend(img[..len].iter().map(|v| v.abs()));
        }
    }
    out
}

/// Complex values of 2-channel `[n, 2, h, w]` images, `[n, h, w]` order.
pub fn to_complex(images: &ImageBatch) -> Vec<Complex32> {
    let [n, _, h, w] = images.shape();
    let len = h * w;
    let mut out = Vec::with_capacity(n * len);
    for i in 0..n {
        let img = images.image(i);
        out.extend((0..len).map(|p| Complex32::new(img[p], img[len + p])));
    }
    out
}
