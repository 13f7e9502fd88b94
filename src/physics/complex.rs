//! Complex buffers: inner products (accumulated in f64) and conversion to and from [`ImageBatch`]
//! channels (real images are one channel, complex images two: real then imaginary).

use num_complex::{Complex32, Complex64};

use crate::error::{Error, Result};
use crate::image::ImageBatch;

/// ⟨a, b⟩ = Σ conj(aᵢ)·bᵢ, accumulated in f64 (lengths must match; extra elements are ignored).
pub fn inner(a: &[Complex32], b: &[Complex32]) -> Complex64 {
    a.iter().zip(b).fold(Complex64::default(), |acc, (x, y)| {
        acc + Complex64::new(x.re as f64, -x.im as f64) * Complex64::new(y.re as f64, y.im as f64)
    })
}

/// ‖a‖₂ = √Σ|aᵢ|², accumulated in f64.
pub fn norm(a: &[Complex32]) -> f64 {
    a.iter()
        .map(|v| (v.re as f64).powi(2) + (v.im as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// A real buffer as complex with zero imaginary part.
pub fn from_real(values: &[f32]) -> Vec<Complex32> {
    values.iter().map(|&v| Complex32::new(v, 0.0)).collect()
}

/// Image `index` of `batch` as an `[h, w]` complex buffer: one channel is real, two are (re, im).
pub fn image_to_complex(batch: &ImageBatch, index: usize) -> Result<Vec<Complex32>> {
    let [n, c, h, w] = batch.shape();
    if index >= n {
        return Err(Error::invalid("image index", format!("< {n}"), index));
    }
    let plane = h * w;
    let image = batch.image(index);
    match c {
        1 => Ok(from_real(image)),
        2 => Ok(image[..plane]
            .iter()
            .zip(&image[plane..])
            .map(|(&re, &im)| Complex32::new(re, im))
            .collect()),
        _ => Err(Error::invalid(
            "image channels",
            "1 (real) or 2 (re, im)",
            c,
        )),
    }
}

/// A complex `[h, w]` buffer as two channel planes `[re; im]`, the layout of a 2-channel image.
pub fn complex_to_channels(values: &[Complex32]) -> Vec<f32> {
    values
        .iter()
        .map(|v| v.re)
        .chain(values.iter().map(|v| v.im))
        .collect()
}
