//! `cinediff::metrics` against scikit-image 0.26.0 (numpy 2.4.6, float64 on the float32 test images).
//!
//! The expected values were printed by
//!
//!     /work/torchenv/bin/python tests/golden/metrics_golden.py
//!
//! which builds the same images from the same closed formulas (evaluated in f64 with libm sin/cos,
//! rounded to f32) and calls `peak_signal_noise_ratio(ref, x, data_range=ref.max())`,
//! `structural_similarity(ref, x, win_size=7, data_range=ref.max(), gaussian_weights=False)`,
//! `normalized_root_mse(ref, x)` and `‖x − ref‖² / ‖ref‖²` (NMSE). Keep the formulas below in sync
//! with that script.

use cinediff::metrics::{
    self, frame_metrics, frame_metrics_complex, nmse, nrmse, psnr, sequence_metrics,
    sequence_metrics_complex, ssim, FrameMetrics,
};
use cinediff::Error;
use num_complex::Complex32;

/// Relative tolerance against the float64 scikit-image numbers.
const RTOL: f64 = 1e-4;

// /work/torchenv/bin/python tests/golden/metrics_golden.py
// numpy 2.4.6, scikit-image 0.26.0
// (case, [psnr, ssim, nrmse, nmse])
const GOLDEN: [(&str, [f64; 4]); 9] = [
    (
        "smooth_16x16",
        [
            27.99628899920872,
            0.9544599611523147,
            0.06066073271176687,
            0.0036797244931284227,
        ],
    ),
    (
        "signed_23x19",
        [
            27.785985076640067,
            0.9232985307982899,
            0.09176230241402923,
            0.008420320144323758,
        ],
    ),
    (
        "low_contrast_16x16",
        [
            43.054749815318154,
            0.9573142478957831,
            0.022968885567475606,
            0.0005275697042117892,
        ],
    ),
    (
        "tiny_7x7",
        [
            33.243723944101326,
            0.995773579101836,
            0.030779890257282873,
            0.000947401644250377,
        ],
    ),
    (
        "complex_12x17",
        [
            28.46639921861067,
            0.9521457355541844,
            0.05538344570031354,
            0.0030673260576395784,
        ],
    ),
    (
        "sequence_frame_0_10x12",
        [
            40.411077509454145,
            0.9952882782842325,
            0.012679314473756436,
            0.00016076501552440945,
        ],
    ),
    (
        "sequence_frame_1_10x12",
        [
            32.13347244677547,
            0.969025685875634,
            0.031898299163029074,
            0.0010175014894941012,
        ],
    ),
    (
        "sequence_frame_2_10x12",
        [
            27.466636644555393,
            0.9189485019605758,
            0.05443925587090453,
            0.0029636325797778138,
        ],
    ),
    (
        "sequence_mean",
        [
            33.33706220026167,
            0.961087488706814,
            0.03300562316923001,
            0.0013806330282654415,
        ],
    ),
];

fn golden(name: &str) -> [f64; 4] {
    GOLDEN.iter().find(|(n, _)| *n == name).unwrap().1
}

// ------------------------------------------------------------------------------------------------
// The test images: the formulas of tests/golden/metrics_golden.py, verbatim.

/// f64 evaluation of `f(i, j)` on an `h × w` grid, rounded to f32 (row-major).
fn grid(h: usize, w: usize, f: impl Fn(f64, f64) -> f64) -> Vec<f32> {
    (0..h)
        .flat_map(|i| (0..w).map(move |j| (i as f64, j as f64)))
        .map(|(i, j)| f(i, j) as f32)
        .collect()
}

fn smooth(i: f64, j: f64) -> f64 {
    0.5 + 0.3 * (0.4 * i + 0.1).sin() * (0.3 * j - 0.2).cos() + 0.1 * i / 16.0
}

fn noise(i: f64, j: f64) -> f64 {
    0.05 * (1.7 * i * i + 2.3 * j + 0.37 * i * j).sin()
}

fn smooth_noisy(i: f64, j: f64) -> f64 {
    smooth(i, j) + noise(i, j)
}

/// Takes negative values: the data range is max(ref), not max(ref) − min(ref).
fn signed(i: f64, j: f64) -> f64 {
    0.2 + 0.6 * (0.25 * i - 0.5).sin() * (0.35 * j + 0.3).sin()
}

fn signed_estimate(i: f64, j: f64) -> f64 {
    0.9 * signed(i, j) + 0.02 + 0.5 * noise(j, i)
}

fn tiny(i: f64, j: f64) -> f64 {
    1.0 + 0.5 * (0.9 * i + 0.6 * j).cos()
}

fn tiny_estimate(i: f64, j: f64) -> f64 {
    tiny(i, j) + noise(i, j)
}

/// Faint texture under one bright corner pixel (R = 1): C2 dominates the local variances, so the
/// sample-covariance factor 49/48 moves the SSIM by ~7e-4 relative, well above the tolerance.
fn low_contrast(i: f64, j: f64) -> f64 {
    if i == 0.0 && j == 0.0 {
        return 1.0;
    }
    0.3 + 0.02 * (0.7 * i + 0.2).sin() * (0.5 * j).cos()
}

fn low_contrast_estimate(i: f64, j: f64) -> f64 {
    low_contrast(i, j) + 0.01 * (1.9 * i * j + 0.3 * i + 1.1 * j).sin()
}

fn frame(t: f64, i: f64, j: f64) -> f64 {
    1.0 + 0.4 * (0.3 * i + 0.5 * t).sin() * (0.25 * j - 0.2 * t).cos()
}

fn frame_estimate(t: f64, i: f64, j: f64) -> f64 {
    frame(t, i, j) + (0.02 + 0.03 * t) * (1.3 * i * j + 0.7 * t + 0.9 * i).sin()
}

fn complex_mag(i: f64, j: f64) -> f64 {
    1.0 + 0.5 * (0.3 * i).cos() * (0.2 * j + 0.4).sin()
}

fn complex_re(i: f64, j: f64) -> f64 {
    complex_mag(i, j) * (0.15 * i + 0.1 * j).cos()
}

fn complex_im(i: f64, j: f64) -> f64 {
    complex_mag(i, j) * (0.15 * i + 0.1 * j).sin()
}

fn complex_est_re(i: f64, j: f64) -> f64 {
    complex_re(i, j) + 0.08 * (2.1 * i + 1.1 * j * j).sin()
}

fn complex_est_im(i: f64, j: f64) -> f64 {
    complex_im(i, j) + 0.08 * (0.9 * i * j + 1.9 * j).cos()
}

fn complex_grid(
    h: usize,
    w: usize,
    re: impl Fn(f64, f64) -> f64,
    im: impl Fn(f64, f64) -> f64,
) -> Vec<Complex32> {
    grid(h, w, re)
        .into_iter()
        .zip(grid(h, w, im))
        .map(|(r, i)| Complex32::new(r, i))
        .collect()
}

/// The `[3, 10, 12]` reference and estimate sequences.
fn sequence() -> (Vec<f32>, Vec<f32>) {
    let (mut reference, mut estimate) = (Vec::new(), Vec::new());
    for t in 0..3 {
        let t = t as f64;
        reference.extend(grid(10, 12, |i, j| frame(t, i, j)));
        estimate.extend(grid(10, 12, |i, j| frame_estimate(t, i, j)));
    }
    (reference, estimate)
}

// ------------------------------------------------------------------------------------------------

fn assert_rel(case: &str, metric: &str, got: f64, expected: f64) {
    let rel = (got - expected).abs() / expected.abs();
    assert!(
        rel <= RTOL,
        "{case} {metric}: got {got:.12e}, scikit-image {expected:.12e} (rel. error {rel:.2e})"
    );
}

fn assert_frame(case: &str, got: &FrameMetrics) {
    let [p, s, r, n] = golden(case);
    assert_rel(case, "PSNR", got.psnr, p);
    assert_rel(case, "SSIM", got.ssim, s);
    assert_rel(case, "NRMSE", got.nrmse, r);
    assert_rel(case, "NMSE", got.nmse, n);
}

/// Checks the four single-metric functions and `frame_metrics` on one real case.
fn check_real_case(case: &str, h: usize, w: usize, reference: &[f32], estimate: &[f32]) {
    let shape = [h, w];
    let all = frame_metrics(reference, estimate, shape).unwrap();
    assert_frame(case, &all);
    let single = FrameMetrics {
        psnr: psnr(reference, estimate, shape).unwrap(),
        ssim: ssim(reference, estimate, shape).unwrap(),
        nrmse: nrmse(reference, estimate, shape).unwrap(),
        nmse: nmse(reference, estimate, shape).unwrap(),
    };
    assert_eq!(
        single, all,
        "{case}: single-metric functions disagree with frame_metrics"
    );
}

#[test]
fn smooth_16x16_matches_scikit_image() {
    let (r, e) = (grid(16, 16, smooth), grid(16, 16, smooth_noisy));
    check_real_case("smooth_16x16", 16, 16, &r, &e);
}

#[test]
fn non_square_23x19_with_negative_values_matches_scikit_image() {
    let (r, e) = (grid(23, 19, signed), grid(23, 19, signed_estimate));
    assert!(
        r.iter().any(|&v| v < 0.0),
        "the case is meant to contain negative values"
    );
    check_real_case("signed_23x19", 23, 19, &r, &e);
}

#[test]
fn low_contrast_16x16_matches_scikit_image_sample_covariance() {
    let (r, e) = (
        grid(16, 16, low_contrast),
        grid(16, 16, low_contrast_estimate),
    );
    check_real_case("low_contrast_16x16", 16, 16, &r, &e);
}

#[test]
fn smallest_7x7_image_matches_scikit_image() {
    // A single valid SSIM window after the 3-pixel crop.
    let (r, e) = (grid(7, 7, tiny), grid(7, 7, tiny_estimate));
    check_real_case("tiny_7x7", 7, 7, &r, &e);
}

#[test]
fn complex_12x17_matches_scikit_image_on_magnitudes() {
    let r = complex_grid(12, 17, complex_re, complex_im);
    let e = complex_grid(12, 17, complex_est_re, complex_est_im);
    assert_frame(
        "complex_12x17",
        &frame_metrics_complex(&r, &e, [12, 17]).unwrap(),
    );
    // Through the f32 magnitude helper: the rounding of |z| to f32 stays far inside the tolerance.
    let m = frame_metrics(&metrics::magnitude(&r), &metrics::magnitude(&e), [12, 17]).unwrap();
    assert_frame("complex_12x17", &m);
}

#[test]
fn sequence_matches_scikit_image_per_frame_and_mean() {
    let (r, e) = sequence();
    let seq = sequence_metrics(&r, &e, [3, 10, 12]).unwrap();
    assert_eq!(seq.frames.len(), 3);
    for (t, m) in seq.frames.iter().enumerate() {
        assert_frame(&format!("sequence_frame_{t}_10x12"), m);
    }
    assert_frame("sequence_mean", &seq.mean);

    // The complex variant on a real-valued (zero-phase) sequence gives the same numbers.
    let to_complex = |v: &[f32]| {
        v.iter()
            .map(|&x| Complex32::new(x, 0.0))
            .collect::<Vec<_>>()
    };
    let cseq = sequence_metrics_complex(&to_complex(&r), &to_complex(&e), [3, 10, 12]).unwrap();
    assert_eq!(cseq, seq);
}

#[test]
fn explicit_data_range_matches_reference_max() {
    let (r, e) = (grid(16, 16, smooth), grid(16, 16, smooth_noisy));
    let range = metrics::data_range(&r).unwrap();
    assert_eq!(range, r.iter().copied().fold(f32::MIN, f32::max) as f64);
    let shape = [16, 16];
    assert_eq!(
        metrics::psnr_with_data_range(&r, &e, shape, range).unwrap(),
        psnr(&r, &e, shape).unwrap()
    );
    assert_eq!(
        metrics::ssim_with_data_range(&r, &e, shape, range).unwrap(),
        ssim(&r, &e, shape).unwrap()
    );
    // Doubling R adds 20·log10(2) dB to the PSNR.
    let doubled = metrics::psnr_with_data_range(&r, &e, shape, 2.0 * range).unwrap();
    assert!((doubled - psnr(&r, &e, shape).unwrap() - 20.0 * 2f64.log10()).abs() < 1e-9);
}

#[test]
fn identical_images_give_perfect_scores() {
    let r = grid(23, 19, signed);
    let m = frame_metrics(&r, &r, [23, 19]).unwrap();
    assert_eq!(m.psnr, f64::INFINITY);
    assert!((m.ssim - 1.0).abs() < 1e-12, "SSIM {}", m.ssim);
    assert_eq!(m.nrmse, 0.0);
    assert_eq!(m.nmse, 0.0);

    // JSON has no infinity: PSNR +inf is written as null, and null reads back as +inf.
    let json = serde_json::to_string(&m).unwrap();
    assert!(json.starts_with(r#"{"psnr":null,"ssim":"#), "{json}");
    let back: FrameMetrics = serde_json::from_str(&json).unwrap();
    assert_eq!(back, m);

    // Finite PSNRs stay numbers and round-trip exactly.
    let e = grid(23, 19, signed_estimate);
    let m = frame_metrics(&r, &e, [23, 19]).unwrap();
    let value: serde_json::Value = serde_json::to_value(m).unwrap();
    assert_eq!(value["psnr"].as_f64(), Some(m.psnr));
    let back: FrameMetrics = serde_json::from_value(value).unwrap();
    assert_eq!(back, m);

    // A sequence with one identical frame has a mean PSNR of +inf (null in JSON).
    let (mut r, e) = sequence();
    r[120..240].copy_from_slice(&e[120..240]);
    let seq = sequence_metrics(&r, &e, [3, 10, 12]).unwrap();
    assert_eq!(seq.frames[1].psnr, f64::INFINITY);
    assert_eq!(seq.mean.psnr, f64::INFINITY);
    assert!(seq.frames[0].psnr.is_finite());
    let json = serde_json::to_value(&seq).unwrap();
    assert!(json["mean"]["psnr"].is_null());
}

#[test]
fn size_mismatch_is_a_shape_error() {
    let r = grid(16, 16, smooth);
    let e = grid(16, 15, smooth);
    let err = frame_metrics(&r, &e, [16, 16]).unwrap_err();
    assert!(
        matches!(err, Error::Shape { ref expected, ref got, .. } if expected == &[256] && got == &[240]),
        "{err}"
    );
    let err = psnr(&r, &r, [16, 15]).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    let err = sequence_metrics(&r, &r, [2, 16, 16]).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    let c = vec![Complex32::new(1.0, 0.0); 256];
    let err = frame_metrics_complex(&c, &c[..255], [16, 16]).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
}

#[test]
fn images_below_the_ssim_window_are_rejected() {
    let r = grid(6, 9, tiny);
    for err in [
        ssim(&r, &r, [6, 9]).unwrap_err(),
        frame_metrics(&r, &r, [6, 9]).unwrap_err(),
        frame_metrics(&r, &r, [9, 6]).unwrap_err(),
        sequence_metrics(&r, &r, [1, 6, 9]).unwrap_err(),
    ] {
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
        assert!(err.to_string().contains("7 × 7"), "{err}");
    }
    // PSNR, NRMSE and NMSE have no window and work on any non-empty image.
    let e = grid(6, 9, tiny_estimate);
    assert!(psnr(&r, &e, [6, 9]).unwrap().is_finite());
    assert!(nrmse(&r, &e, [6, 9]).unwrap() > 0.0);
    assert!(nmse(&r, &e, [6, 9]).unwrap() > 0.0);
    // Empty images are rejected.
    let err = psnr(&[], &[], [0, 5]).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
}

#[test]
fn non_finite_values_are_rejected() {
    let r = grid(8, 8, tiny);
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut e = r.clone();
        e[13] = bad;
        let err = frame_metrics(&r, &e, [8, 8]).unwrap_err();
        assert!(
            matches!(err, Error::NonFinite { ref what, index: 13 } if what.contains("estimate")),
            "{err}"
        );
        let err = nmse(&e, &r, [8, 8]).unwrap_err();
        assert!(
            matches!(err, Error::NonFinite { ref what, index: 13 } if what.contains("reference")),
            "{err}"
        );
    }
    // Flat index within the whole sequence.
    let (r, mut e) = sequence();
    e[150] = f32::NAN;
    let err = sequence_metrics(&r, &e, [3, 10, 12]).unwrap_err();
    assert!(matches!(err, Error::NonFinite { index: 150, .. }), "{err}");
    // Complex: either part.
    let mut c = vec![Complex32::new(1.0, 0.5); 64];
    c[5].im = f32::NAN;
    let ok = vec![Complex32::new(1.0, 0.5); 64];
    let err = frame_metrics_complex(&ok, &c, [8, 8]).unwrap_err();
    assert!(matches!(err, Error::NonFinite { index: 5, .. }), "{err}");
}

#[test]
fn zero_reference_has_no_data_range() {
    let zero = vec![0.0f32; 64];
    let e = grid(8, 8, tiny);
    for err in [
        psnr(&zero, &e, [8, 8]).unwrap_err(),
        ssim(&zero, &e, [8, 8]).unwrap_err(),
        frame_metrics(&zero, &e, [8, 8]).unwrap_err(),
        metrics::data_range(&zero).unwrap_err(),
    ] {
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
        assert!(err.to_string().contains("data range"), "{err}");
    }
    // A reference whose maximum is negative has no data range either.
    let negative = vec![-1.0f32; 64];
    assert!(psnr(&negative, &e, [8, 8]).is_err());
    // NRMSE and NMSE need a non-zero reference norm.
    for err in [
        nrmse(&zero, &e, [8, 8]).unwrap_err(),
        nmse(&zero, &e, [8, 8]).unwrap_err(),
    ] {
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
        assert!(err.to_string().contains("norm"), "{err}");
    }
    // Explicit data ranges must be finite and positive.
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(metrics::psnr_with_data_range(&e, &e, [8, 8], bad).is_err());
        assert!(metrics::ssim_with_data_range(&e, &e, [8, 8], bad).is_err());
    }
    // A blank frame in a sequence is named.
    let (mut r, e) = sequence();
    r[240..360].fill(0.0);
    let err = sequence_metrics(&r, &e, [3, 10, 12]).unwrap_err();
    assert!(err.to_string().contains("frame 2"), "{err}");
    assert!(err.to_string().contains("data range"), "{err}");
}
