//! Linear interpolation across missing scan lines: the classic reference for ultrasound scan-line
//! subsampling. Each row (depth sample) of each frame is interpolated linearly between the nearest
//! acquired columns on either side; columns before the first or after the last acquired one take
//! its value (constant extrapolation). Acquired columns keep their measured values.
//!
//! The operator must be scan-line subsampling: y = m ⊙ x with a 0/1 column mask m broadcast over
//! depth (per frame), as [`ScanLineSubsampling`](crate::physics::ScanLineSubsampling) and
//! [`UltrasoundSequence`](crate::physics::UltrasoundSequence) are. A [`LinearOperator`] does not
//! say what it is, so the mask is read from A·1 and the operator is checked on a fixed random
//! probe p: A p = m ⊙ p and Aᴴ p = m ⊙ p. Anything else (MRI, blur, a pixel mask that is not
//! constant down the columns) is refused with [`Error::InvalidArgument`].

use num_complex::Complex32;

use crate::baselines::{finish, frames_of, project_real, Reconstructor};
use crate::error::{ensure_finite_complex, Error, Result};
use crate::physics::operator::{check_len, LinearOperator};
use crate::rng::{seeded, standard_normal};

/// Seed of the probe that checks the operator is a column mask.
const PROBE_SEED: u64 = 0x6c69_6e65_7320;

/// x̂: each row linearly interpolated between the acquired scan lines (`interp`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LineInterpolation;

impl Reconstructor for LineInterpolation {
    fn name(&self) -> &'static str {
        "interp"
    }

    fn reconstruct(
        &self,
        operator: &dyn LinearOperator,
        y: &[Complex32],
        real: bool,
    ) -> Result<Vec<Complex32>> {
        check_len("measurement y", operator.output_shape(), y.len())?;
        ensure_finite_complex("measurement y", y)?;
        let lines = acquired_lines(operator)?;
        let [frames, h, w] = frames_of(self.name(), operator.input_shape())?;
        let mut x = vec![Complex32::default(); frames * h * w];
        for t in 0..frames {
            let acquired: Vec<usize> = (0..w).filter(|&j| lines[t * w + j]).collect();
            if acquired.is_empty() {
                return Err(Error::invalid(
                    "line interpolation",
                    "at least one acquired scan line in every frame",
                    format!("none in frame {t}"),
                ));
            }
            for i in 0..h {
                let row = t * h * w + i * w;
                interpolate_row(&y[row..row + w], &acquired, &mut x[row..row + w]);
            }
        }
        if real {
            project_real(&mut x);
        }
        finish(self.name(), x)
    }
}

/// Fills `out` from the values of `y` at the (sorted, non-empty) `acquired` columns.
fn interpolate_row(y: &[Complex32], acquired: &[usize], out: &mut [Complex32]) {
    let (first, last) = (acquired[0], acquired[acquired.len() - 1]);
    out[..first].fill(y[first]);
    out[last..].fill(y[last]);
    for pair in acquired.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let span = (b - a) as f32;
        for (j, o) in out.iter_mut().enumerate().take(b).skip(a) {
            let f = (j - a) as f32 / span;
            *o = y[a] * (1.0 - f) + y[b] * f;
        }
    }
}

/// The acquired columns `[frames, w]` of a scan-line subsampling operator, or an error saying
/// the operator is not one.
fn acquired_lines(operator: &dyn LinearOperator) -> Result<Vec<bool>> {
    let shape = operator.input_shape();
    let refuse = |why: String| {
        Error::invalid(
            "line interpolation operator",
            "scan-line subsampling (a 0/1 column mask broadcast over depth)",
            why,
        )
    };
    if operator.output_shape() != shape {
        return Err(refuse(format!(
            "an operator from {shape:?} to {:?}",
            operator.output_shape()
        )));
    }
    let [frames, h, w] = frames_of("line interpolation", shape)?;
    let mask = operator.forward(&vec![Complex32::new(1.0, 0.0); frames * h * w])?;
    let mut lines = vec![false; frames * w];
    for t in 0..frames {
        for j in 0..w {
            let top = mask[t * h * w + j];
            let kept = if top == Complex32::new(1.0, 0.0) {
                true
            } else if top == Complex32::default() {
                false
            } else {
                return Err(refuse(format!("A·1 = {top} at frame {t}, column {j}")));
            };
            if (1..h).any(|i| mask[t * h * w + i * w + j] != top) {
                return Err(refuse(format!(
                    "A·1 not constant down column {j} of frame {t}"
                )));
            }
            lines[t * w + j] = kept;
        }
    }
    // A probe with every entry distinct from zero: A p and Aᴴ p must be p on the kept columns
    // and zero elsewhere.
    let n = frames * h * w;
    let values = standard_normal(&mut seeded(PROBE_SEED), 2 * n);
    let probe: Vec<Complex32> = values
        .chunks_exact(2)
        .map(|c| Complex32::new(c[0], c[1]))
        .collect();
    for (what, image) in [
        ("A p", operator.forward(&probe)?),
        ("Aᴴ p", operator.adjoint(&probe)?),
    ] {
        let mismatch = image.iter().zip(&probe).enumerate().find(|(k, (a, p))| {
            let kept = lines[(k / (h * w)) * w + k % w];
            let expected = if kept { **p } else { Complex32::default() };
            (*a - expected).norm() > 1e-6 * (1.0 + p.norm())
        });
        if let Some((k, _)) = mismatch {
            return Err(refuse(format!(
                "{what} differs from the masked probe at flat index {k}"
            )));
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physics::masks::{LineMask, Mask};
    use crate::physics::{CartesianMri, PixelMask, ScanLineSubsampling, UltrasoundSequence};

    fn mask(lines: &[usize], w: usize) -> LineMask {
        LineMask::new((0..w).map(|j| lines.contains(&j)).collect()).unwrap()
    }

    #[test]
    fn exact_on_a_field_linear_across_columns() {
        // Rows a_i + b_i·j (complex) on [3 frames, 5 rows, 12 columns], each frame its own lines,
        // the first and last column always acquired: interpolation reproduces the field exactly.
        let (h, w) = (5, 12);
        let frames = [vec![0, 3, 4, 11], vec![0, 5, 11], vec![0, 1, 2, 7, 9, 11]];
        let op =
            UltrasoundSequence::from_lines(h, frames.iter().map(|l| mask(l, w)).collect()).unwrap();
        let truth: Vec<Complex32> = (0..3 * h * w)
            .map(|k| {
                let (t, i, j) = (k / (h * w), (k / w) % h, k % w);
                let a = Complex32::new(0.3 * i as f32 - t as f32, 0.1 * i as f32);
                let b = Complex32::new(0.25 - 0.05 * i as f32, 0.02 * t as f32);
                a + b * j as f32
            })
            .collect();
        let y = op.forward(&truth).unwrap();
        let x = LineInterpolation.reconstruct(&op, &y, false).unwrap();
        for (k, (a, b)) in x.iter().zip(&truth).enumerate() {
            assert!((a - b).norm() < 1e-5, "index {k}: {a} vs {b}");
        }
        // `real` drops the imaginary part and nothing else.
        let xr = LineInterpolation.reconstruct(&op, &y, true).unwrap();
        for (a, b) in xr.iter().zip(&x) {
            assert_eq!((a.re, a.im), (b.re, 0.0));
        }
    }

    #[test]
    fn edges_are_constant_and_acquired_lines_are_kept() {
        let (h, w) = (2, 8);
        let op = ScanLineSubsampling::new(h, mask(&[2, 5], w)).unwrap();
        let truth: Vec<Complex32> = (0..h * w)
            .map(|k| Complex32::new((k * k) as f32, 0.0))
            .collect();
        let y = op.forward(&truth).unwrap();
        let x = LineInterpolation.reconstruct(&op, &y, true).unwrap();
        for i in 0..h {
            let row = &x[i * w..(i + 1) * w];
            let (v2, v5) = (truth[i * w + 2].re, truth[i * w + 5].re);
            assert_eq!(row[0].re, v2);
            assert_eq!(row[1].re, v2);
            assert_eq!(row[2].re, v2);
            assert!((row[3].re - (2.0 * v2 + v5) / 3.0).abs() < 1e-4);
            assert_eq!(row[5].re, v5);
            assert_eq!(row[7].re, v5);
        }
    }

    #[test]
    fn refuses_operators_that_are_not_scan_line_subsampling() {
        let (h, w) = (8, 8);
        let lines = mask(&[0, 2, 4, 6], w);
        let mri = CartesianMri::new(lines.to_mask(h).unwrap()).unwrap();
        let y = vec![Complex32::default(); h * w];
        let err = LineInterpolation.reconstruct(&mri, &y, false).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
        assert!(err.to_string().contains("scan-line subsampling"), "{err}");
        // A pixel mask that is not constant down the columns.
        let mut data = lines.to_mask(h).unwrap().data().to_vec();
        data[3 * w] = !data[3 * w];
        let pixels = PixelMask::new(Mask::new([h, w], data).unwrap());
        let err = LineInterpolation
            .reconstruct(&pixels, &y, false)
            .unwrap_err();
        assert!(err.to_string().contains("column 0"), "{err}");
        // No acquired line at all, and a measurement of the wrong length.
        let none = ScanLineSubsampling::new(h, mask(&[], w)).unwrap();
        assert!(LineInterpolation.reconstruct(&none, &y, false).is_err());
        let ok = ScanLineSubsampling::new(h, lines).unwrap();
        assert!(matches!(
            LineInterpolation.reconstruct(&ok, &y[1..], false),
            Err(Error::Shape { .. })
        ));
    }
}
