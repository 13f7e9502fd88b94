//! Image-quality metrics (PSNR, SSIM, NRMSE, NMSE) with their conventions written down.
//!
//! Numbers from different tools only agree when the conventions agree, so here they are. `x` is the
//! reference (ground truth) image, `x̂` the estimate, both `h × w`, row-major. Every sum is
//! accumulated in `f64` (inputs are widened from `f32` first); results are `f64`.
//!
//! | metric | definition | scikit-image equivalent |
//! |---|---|---|
//! | PSNR  | `10·log10(R² / MSE)` dB, `MSE = mean((x̂ − x)²)` over all pixels, `R = max(x)` | `peak_signal_noise_ratio(x, x̂, data_range=x.max())` |
//! | SSIM  | mean SSIM, uniform 7 × 7 window, `K1 = 0.01`, `K2 = 0.03`, `R = max(x)`, sample covariance, border of 3 px cropped | `structural_similarity(x, x̂, win_size=7, data_range=x.max(), gaussian_weights=False)` |
//! | NRMSE | `‖x̂ − x‖₂ / ‖x‖₂` | `normalized_root_mse(x, x̂)` (`normalization="euclidean"`) |
//! | NMSE  | `‖x̂ − x‖₂² / ‖x‖₂²` | none (fastMRI's `nmse`) |
//!
//! * **Data range.** `R` is the maximum of the *reference* image — not `max − min`, not the dtype
//!   range, and not a maximum over both images. This is the fastMRI convention (`data_range=gt.max()`),
//!   except that fastMRI's `evaluate.py` takes the maximum over a whole volume, whereas
//!   [`frame_metrics`] and [`sequence_metrics`] take it per frame. Use [`psnr_with_data_range`] and
//!   [`ssim_with_data_range`] to impose another `R` (for instance the maximum over a whole sequence).
//!   A reference whose maximum is not positive (e.g. all zeros) has no data range: PSNR and SSIM fail
//!   with [`Error::InvalidArgument`] rather than return a meaningless number.
//! * **SSIM window.** Uniform (box) 7 × 7 window, not the Gaussian σ = 1.5 window of Wang et al.;
//!   local variances and the covariance use the unbiased sample normalisation (`× 49/48`,
//!   scikit-image's `use_sample_covariance=True`); `C1 = (K1·R)²`, `C2 = (K2·R)²`.
//! * **SSIM crop.** The SSIM map is averaged only over pixels whose 7 × 7 window lies inside the image,
//!   i.e. `pad = (7 − 1)/2 = 3` pixels are dropped at each edge, `(h − 6)·(w − 6)` values in total.
//!   (scikit-image filters with reflected borders and then crops the same 3 pixels, so the border mode
//!   never enters the result.) Images must therefore be at least 7 × 7.
//! * **Complex data.** The `*_complex` functions compare magnitudes `|z|` (computed in `f64`), as
//!   fastMRI does for complex reconstructions; phase errors are invisible to them.
//! * **Identical images.** PSNR is `+∞` (MSE = 0), SSIM is 1, NRMSE and NMSE are 0. JSON cannot hold
//!   `+∞`, so [`FrameMetrics`] serialises an infinite PSNR as `null` (and reads `null` back as `+∞`).
//!
//! Errors: [`Error::Shape`] when a slice length does not match the shape or the two images differ,
//! [`Error::InvalidArgument`] for an empty image, an image smaller than 7 × 7 (SSIM only), a
//! reference with no positive maximum (PSNR, SSIM) or with zero norm (NRMSE, NMSE), and
//! [`Error::NonFinite`] for NaN or infinite pixels in either image.

use num_complex::Complex32;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{ensure_finite, Error, Result};

/// Side of the square SSIM window (uniform weights).
pub const SSIM_WIN_SIZE: usize = 7;
/// SSIM luminance constant: `C1 = (K1·R)²`.
pub const SSIM_K1: f64 = 0.01;
/// SSIM contrast/structure constant: `C2 = (K2·R)²`.
pub const SSIM_K2: f64 = 0.03;

/// The four metrics of one frame (see the [module docs](self) for the conventions).
///
/// Serialises as `{"psnr": …, "ssim": …, "nrmse": …, "nmse": …}`; a PSNR of `+∞` (identical images)
/// is written as `null` because JSON has no infinity, and `null` is read back as `+∞`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrameMetrics {
    /// Peak signal-to-noise ratio in dB, `R = max(reference)`; `+∞` for identical images.
    #[serde(
        serialize_with = "serialize_psnr",
        deserialize_with = "deserialize_psnr"
    )]
    pub psnr: f64,
    /// Mean SSIM (uniform 7 × 7 window, sample covariance, 3-pixel border cropped), `R = max(reference)`.
    pub ssim: f64,
    /// `‖estimate − reference‖ / ‖reference‖`.
    pub nrmse: f64,
    /// `‖estimate − reference‖² / ‖reference‖²`.
    pub nmse: f64,
}

/// Per-frame metrics of a sequence and their arithmetic mean.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SequenceMetrics {
    /// One entry per frame, in order; each frame uses its own data range `max(reference frame)`.
    pub frames: Vec<FrameMetrics>,
    /// Field-wise arithmetic mean over the frames (PSNR averaged in dB; `+∞` if any frame is `+∞`).
    pub mean: FrameMetrics,
}

fn serialize_psnr<S: Serializer>(
    value: &f64,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    if value.is_finite() {
        serializer.serialize_f64(*value)
    } else {
        serializer.serialize_none()
    }
}

fn deserialize_psnr<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::INFINITY))
}

/// Peak signal-to-noise ratio in dB with `R = max(reference)`:
/// `10·log10(R² / mean((estimate − reference)²))`; `+∞` when the images are identical.
///
/// Same as scikit-image's `peak_signal_noise_ratio(reference, estimate, data_range=reference.max())`.
/// Fails if the reference has no positive maximum.
pub fn psnr(reference: &[f32], estimate: &[f32], shape: [usize; 2]) -> Result<f64> {
    let (x, y) = widen_pair(reference, estimate, shape)?;
    Ok(psnr_core(&x, &y, reference_max(&x)?))
}

/// [`psnr`] with an explicit data range `R` (finite, `> 0`) instead of `max(reference)`.
pub fn psnr_with_data_range(
    reference: &[f32],
    estimate: &[f32],
    shape: [usize; 2],
    data_range: f64,
) -> Result<f64> {
    check_data_range(data_range)?;
    let (x, y) = widen_pair(reference, estimate, shape)?;
    Ok(psnr_core(&x, &y, data_range))
}

/// Mean structural similarity with a uniform 7 × 7 window, `K1 = 0.01`, `K2 = 0.03`,
/// `R = max(reference)`, sample (`N − 1`) covariance normalisation, averaged over the pixels at least
/// 3 pixels away from every edge.
///
/// Same as scikit-image's `structural_similarity(reference, estimate, win_size=7,
/// data_range=reference.max(), gaussian_weights=False)`. Fails if either side is below 7 pixels or
/// the reference has no positive maximum.
pub fn ssim(reference: &[f32], estimate: &[f32], shape: [usize; 2]) -> Result<f64> {
    check_ssim_shape(shape)?;
    let (x, y) = widen_pair(reference, estimate, shape)?;
    Ok(ssim_core(&x, &y, shape, reference_max(&x)?))
}

/// [`ssim`] with an explicit data range `R` (finite, `> 0`) instead of `max(reference)`.
pub fn ssim_with_data_range(
    reference: &[f32],
    estimate: &[f32],
    shape: [usize; 2],
    data_range: f64,
) -> Result<f64> {
    check_data_range(data_range)?;
    check_ssim_shape(shape)?;
    let (x, y) = widen_pair(reference, estimate, shape)?;
    Ok(ssim_core(&x, &y, shape, data_range))
}

/// Normalised root-mean-square error `‖estimate − reference‖₂ / ‖reference‖₂`.
///
/// Same as scikit-image's `normalized_root_mse(reference, estimate)` (Euclidean normalisation).
/// Fails if the reference is all zeros.
pub fn nrmse(reference: &[f32], estimate: &[f32], shape: [usize; 2]) -> Result<f64> {
    let (x, y) = widen_pair(reference, estimate, shape)?;
    Ok(nmse_core(&x, &y)?.sqrt())
}

/// Normalised mean-square error `‖estimate − reference‖₂² / ‖reference‖₂²` (fastMRI's `nmse`).
/// Fails if the reference is all zeros.
pub fn nmse(reference: &[f32], estimate: &[f32], shape: [usize; 2]) -> Result<f64> {
    let (x, y) = widen_pair(reference, estimate, shape)?;
    nmse_core(&x, &y)
}

/// The data range used by [`psnr`] and [`ssim`]: the maximum of `reference`, which must be positive.
pub fn data_range(reference: &[f32]) -> Result<f64> {
    ensure_finite("metrics reference", reference)?;
    reference_max(&widen(reference))
}

/// PSNR, SSIM, NRMSE and NMSE of one `h × w` frame, all with `R = max(reference)`.
///
/// Fails for mismatched or empty shapes, frames smaller than 7 × 7, non-finite pixels, and a
/// reference with no positive maximum.
pub fn frame_metrics(
    reference: &[f32],
    estimate: &[f32],
    shape: [usize; 2],
) -> Result<FrameMetrics> {
    check_ssim_shape(shape)?;
    let (x, y) = widen_pair(reference, estimate, shape)?;
    frame_core(&x, &y, shape)
}

/// [`frame_metrics`] on the magnitudes `|z|` of complex images (computed in `f64`).
pub fn frame_metrics_complex(
    reference: &[Complex32],
    estimate: &[Complex32],
    shape: [usize; 2],
) -> Result<FrameMetrics> {
    check_ssim_shape(shape)?;
    let (x, y) = magnitude_pair(reference, estimate, &shape)?;
    frame_core(&x, &y, shape)
}

/// Metrics of every frame of a `[t, h, w]` sequence (row-major, frame after frame) and their mean.
///
/// Each frame is scored exactly as by [`frame_metrics`], with its own data range
/// `max(reference frame)`; a frame whose reference has no positive maximum (a blank frame) is an
/// error naming that frame. Non-finite pixels are reported with their flat index in the sequence.
pub fn sequence_metrics(
    reference: &[f32],
    estimate: &[f32],
    shape: [usize; 3],
) -> Result<SequenceMetrics> {
    check_ssim_shape([shape[1], shape[2]])?;
    let (x, y) = widen_pair(reference, estimate, shape)?;
    sequence_core(&x, &y, shape)
}

/// [`sequence_metrics`] on the magnitudes `|z|` of complex sequences (computed in `f64`).
pub fn sequence_metrics_complex(
    reference: &[Complex32],
    estimate: &[Complex32],
    shape: [usize; 3],
) -> Result<SequenceMetrics> {
    check_ssim_shape([shape[1], shape[2]])?;
    let (x, y) = magnitude_pair(reference, estimate, &shape)?;
    sequence_core(&x, &y, shape)
}

/// Magnitudes `|z|` (computed in `f64`, rounded to `f32`), for use with the real-valued functions.
pub fn magnitude(values: &[Complex32]) -> Vec<f32> {
    values.iter().map(|z| complex_abs(*z) as f32).collect()
}

// ---------------------------------------------------------------------------------------------
// Validation.

/// Number of pixels of `shape`, which must be non-empty and not overflow.
fn shape_len(shape: &[usize]) -> Result<usize> {
    let len = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            Error::invalid(
                "metrics image shape",
                "a size that fits in memory",
                format!("{shape:?}"),
            )
        })?;
    if len == 0 {
        return Err(Error::invalid(
            "metrics image shape",
            "no zero dimension",
            format!("{shape:?}"),
        ));
    }
    Ok(len)
}

/// Both slices must hold exactly `shape` pixels.
fn check_lengths(reference: usize, estimate: usize, shape: &[usize]) -> Result<()> {
    let len = shape_len(shape)?;
    for (what, got) in [
        ("metrics reference", reference),
        ("metrics estimate", estimate),
    ] {
        if got != len {
            return Err(Error::Shape {
                what: format!("{what} (length of a {shape:?} image)"),
                expected: vec![len],
                got: vec![got],
            });
        }
    }
    Ok(())
}

fn check_ssim_shape(shape: [usize; 2]) -> Result<()> {
    if shape[0] < SSIM_WIN_SIZE || shape[1] < SSIM_WIN_SIZE {
        return Err(Error::invalid(
            "SSIM image size",
            format!("at least {SSIM_WIN_SIZE} × {SSIM_WIN_SIZE} (the SSIM window)"),
            format!("{} × {}", shape[0], shape[1]),
        ));
    }
    Ok(())
}

fn check_data_range(data_range: f64) -> Result<()> {
    if !(data_range.is_finite() && data_range > 0.0) {
        return Err(Error::invalid(
            "data range",
            "a finite value > 0",
            data_range,
        ));
    }
    Ok(())
}

fn widen(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| f64::from(v)).collect()
}

/// Checks lengths and finiteness, then widens both images to `f64`.
fn widen_pair(
    reference: &[f32],
    estimate: &[f32],
    shape: impl AsRef<[usize]>,
) -> Result<(Vec<f64>, Vec<f64>)> {
    check_lengths(reference.len(), estimate.len(), shape.as_ref())?;
    ensure_finite("metrics reference", reference)?;
    ensure_finite("metrics estimate", estimate)?;
    Ok((widen(reference), widen(estimate)))
}

fn complex_abs(z: Complex32) -> f64 {
    f64::from(z.re).hypot(f64::from(z.im))
}

fn complex_magnitudes(what: &str, values: &[Complex32]) -> Result<Vec<f64>> {
    if let Some(index) = values
        .iter()
        .position(|z| !(z.re.is_finite() && z.im.is_finite()))
    {
        return Err(Error::NonFinite {
            what: format!("{what} (complex element)"),
            index,
        });
    }
    Ok(values.iter().map(|&z| complex_abs(z)).collect())
}

fn magnitude_pair(
    reference: &[Complex32],
    estimate: &[Complex32],
    shape: &[usize],
) -> Result<(Vec<f64>, Vec<f64>)> {
    check_lengths(reference.len(), estimate.len(), shape)?;
    Ok((
        complex_magnitudes("metrics reference", reference)?,
        complex_magnitudes("metrics estimate", estimate)?,
    ))
}

// ---------------------------------------------------------------------------------------------
// The metrics on validated f64 data.

/// `max(reference)`, which must be positive to serve as a data range.
fn reference_max(reference: &[f64]) -> Result<f64> {
    let max = reference.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max > 0.0 {
        Ok(max)
    } else {
        Err(Error::invalid(
            "data range (maximum of the reference)",
            "> 0 (PSNR and SSIM are undefined for an all-zero or non-positive reference)",
            max,
        ))
    }
}

/// `Σ (y − x)²`.
fn sum_squared_error(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(a, b)| (b - a) * (b - a)).sum()
}

fn psnr_core(x: &[f64], y: &[f64], data_range: f64) -> f64 {
    let mse = sum_squared_error(x, y) / x.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (data_range * data_range / mse).log10()
    }
}

fn nmse_core(x: &[f64], y: &[f64]) -> Result<f64> {
    let norm2: f64 = x.iter().map(|a| a * a).sum();
    if norm2 == 0.0 {
        return Err(Error::invalid(
            "reference norm ‖x‖",
            "> 0 (NRMSE and NMSE are undefined for an all-zero reference)",
            0.0,
        ));
    }
    Ok(sum_squared_error(x, y) / norm2)
}

/// Mean SSIM over the valid window positions (shape already checked to be ≥ 7 × 7).
///
/// Window sums are taken directly (separable: 7-tap row sums, then 7-tap column sums), so every
/// valid window is a plain sum of its 49 pixels, with no running-sum drift.
fn ssim_core(x: &[f64], y: &[f64], shape: [usize; 2], data_range: f64) -> f64 {
    const W: usize = SSIM_WIN_SIZE;
    let [h, w] = shape;
    let (out_h, out_w) = (h - W + 1, w - W + 1);
    // Row sums of x, y, x², y², xy over each horizontal run of W pixels.
    let mut rows = vec![[0.0f64; 5]; h * out_w];
    for i in 0..h {
        for c in 0..out_w {
            let mut s = [0.0f64; 5];
            for k in 0..W {
                let (a, b) = (x[i * w + c + k], y[i * w + c + k]);
                s[0] += a;
                s[1] += b;
                s[2] += a * a;
                s[3] += b * b;
                s[4] += a * b;
            }
            rows[i * out_w + c] = s;
        }
    }
    let n = (W * W) as f64;
    let cov_norm = n / (n - 1.0);
    let c1 = (SSIM_K1 * data_range).powi(2);
    let c2 = (SSIM_K2 * data_range).powi(2);
    let mut total = 0.0f64;
    for r in 0..out_h {
        for c in 0..out_w {
            let mut s = [0.0f64; 5];
            for k in 0..W {
                let row = &rows[(r + k) * out_w + c];
                for (acc, v) in s.iter_mut().zip(row) {
                    *acc += v;
                }
            }
            let [ux, uy, uxx, uyy, uxy] = s.map(|v| v / n);
            let vx = cov_norm * (uxx - ux * ux);
            let vy = cov_norm * (uyy - uy * uy);
            let vxy = cov_norm * (uxy - ux * uy);
            let num = (2.0 * ux * uy + c1) * (2.0 * vxy + c2);
            let den = (ux * ux + uy * uy + c1) * (vx + vy + c2);
            total += num / den;
        }
    }
    total / (out_h * out_w) as f64
}

fn frame_core(x: &[f64], y: &[f64], shape: [usize; 2]) -> Result<FrameMetrics> {
    let range = reference_max(x)?;
    let nmse = nmse_core(x, y)?;
    Ok(FrameMetrics {
        psnr: psnr_core(x, y, range),
        ssim: ssim_core(x, y, shape, range),
        nrmse: nmse.sqrt(),
        nmse,
    })
}

/// Prefixes the `what` of a per-frame error with the frame index.
fn in_frame(error: Error, t: usize) -> Error {
    match error {
        Error::InvalidArgument {
            what,
            expected,
            got,
        } => Error::InvalidArgument {
            what: format!("frame {t}: {what}"),
            expected,
            got,
        },
        other => other,
    }
}

fn sequence_core(x: &[f64], y: &[f64], shape: [usize; 3]) -> Result<SequenceMetrics> {
    let [t, h, w] = shape;
    let len = h * w;
    let frames = (0..t)
        .map(|f| {
            let span = f * len..(f + 1) * len;
            frame_core(&x[span.clone()], &y[span], [h, w]).map_err(|e| in_frame(e, f))
        })
        .collect::<Result<Vec<_>>>()?;
    let count = t as f64;
    let mean_of = |field: fn(&FrameMetrics) -> f64| frames.iter().map(field).sum::<f64>() / count;
    let mean = FrameMetrics {
        psnr: mean_of(|m| m.psnr),
        ssim: mean_of(|m| m.ssim),
        nrmse: mean_of(|m| m.nrmse),
        nmse: mean_of(|m| m.nmse),
    };
    Ok(SequenceMetrics { frames, mean })
}

/// Temporal statistics of a sequence (AID's coherence check): the mean absolute frame-to-frame
/// difference (1/(T−1)) Σ_t mean_px |x_{t+1} − x_t| and, for lags ℓ = 1..=L, the autocorrelation
/// r(ℓ) = mean_t corr(x_t, x_{t+ℓ}) (Pearson correlation over pixels).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TemporalStatistics {
    /// Mean |x_{t+1} − x_t| over pixels and frame pairs.
    pub mean_abs_difference: f64,
    /// r(1), …, r(L).
    pub autocorrelation: Vec<f64>,
}

/// [`TemporalStatistics`] of `frames` (`[T, H, W]` values, e.g. magnitudes), lags up to
/// `max_lag` (capped at T − 1). Fails for fewer than 2 frames or a wrong length.
pub fn temporal_statistics(
    frames: &[f32],
    shape: [usize; 3],
    max_lag: usize,
) -> Result<TemporalStatistics> {
    let [t, h, w] = shape;
    let plane = h * w;
    if t < 2 || plane == 0 {
        return Err(Error::invalid(
            "sequence for temporal statistics",
            "at least 2 frames",
            t,
        ));
    }
    if frames.len() != t * plane {
        return Err(Error::Shape {
            what: "sequence values".into(),
            expected: shape.to_vec(),
            got: vec![frames.len()],
        });
    }
    let frame = |k: usize| &frames[k * plane..(k + 1) * plane];
    let mut diff = 0.0f64;
    for k in 0..t - 1 {
        diff += frame(k)
            .iter()
            .zip(frame(k + 1))
            .map(|(a, b)| (a - b).abs() as f64)
            .sum::<f64>()
            / plane as f64;
    }
    let corr = |a: &[f32], b: &[f32]| -> f64 {
        let n = a.len() as f64;
        let (ma, mb) = (
            a.iter().map(|&v| v as f64).sum::<f64>() / n,
            b.iter().map(|&v| v as f64).sum::<f64>() / n,
        );
        let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
        for (&x, &y) in a.iter().zip(b) {
            let (dx, dy) = (x as f64 - ma, y as f64 - mb);
            sab += dx * dy;
            saa += dx * dx;
            sbb += dy * dy;
        }
        if saa > 0.0 && sbb > 0.0 {
            sab / (saa * sbb).sqrt()
        } else {
            0.0
        }
    };
    let autocorrelation = (1..=max_lag.min(t - 1))
        .map(|lag| {
            (0..t - lag)
                .map(|k| corr(frame(k), frame(k + lag)))
                .sum::<f64>()
                / (t - lag) as f64
        })
        .collect();
    Ok(TemporalStatistics {
        mean_abs_difference: diff / (t - 1) as f64,
        autocorrelation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporal_statistics_by_hand() {
        // Frames 0, 1, 0 (constant images): |Δ| = 1 between each pair.
        let f: Vec<f32> = [0.0f32, 1.0, 0.0].iter().flat_map(|&v| [v; 4]).collect();
        let s = temporal_statistics(&f, [3, 2, 2], 2).unwrap();
        assert_eq!(s.mean_abs_difference, 1.0);
        // A ramp and its negative alternate: r(1) = −1, r(2) = +1.
        let a = [0.0f32, 1.0, 2.0, 3.0];
        let f: Vec<f32> = [1.0f32, -1.0, 1.0]
            .iter()
            .flat_map(|&m| a.map(|v| m * v))
            .collect();
        let s = temporal_statistics(&f, [3, 2, 2], 5).unwrap();
        assert_eq!(s.autocorrelation.len(), 2);
        assert!((s.autocorrelation[0] + 1.0).abs() < 1e-12);
        assert!((s.autocorrelation[1] - 1.0).abs() < 1e-12);
        assert!(temporal_statistics(&f, [1, 2, 2], 1).is_err());
    }
}
