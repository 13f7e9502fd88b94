//! Reconstructions computed by another program (BART's `pics`) as methods of the matrix. The
//! program runs behind [`ExternalMethod`], implemented in the I/O layer
//! ([`crate::io::bart::BartPics`]); the core sweeps its settings and keeps the one with the best
//! mean PSNR against the truth, the usual "best-tuned" reference of compressed sensing.

use num_complex::Complex32;

use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::method_settings::Resolved;

/// A reconstruction done by an outside program, one run per candidate setting.
pub trait ExternalMethod {
    /// Program, version and fixed settings (part of every cell's fingerprint).
    fn identity(&self) -> String;

    /// The settings swept on `bundle` (fails for measurements the program cannot reconstruct).
    fn candidates(&self, bundle: &Bundle) -> Result<Vec<Resolved>>;

    /// The reconstruction `[T, H, W]` (row-major, the bundle's units) with candidate `k`.
    fn reconstruct(&self, bundle: &Bundle, k: usize) -> Result<Vec<Complex32>>;
}

/// The winner of a sweep.
#[derive(Clone, Debug)]
pub struct SweepResult {
    /// The best reconstruction.
    pub recon: Vec<Complex32>,
    /// Its settings.
    pub settings: Resolved,
    /// Every candidate's settings as text and its score, in sweep order.
    pub scores: Vec<(String, f64)>,
}

/// Runs every candidate of `method` on `bundle` and keeps the highest `score` (e.g. mean PSNR);
/// `observer(done, total)` after each run. Fails on a wrong-sized or non-finite result.
pub fn best_of_sweep(
    method: &dyn ExternalMethod,
    bundle: &Bundle,
    score: &dyn Fn(&[Complex32]) -> Result<f64>,
    observer: &mut dyn FnMut(u64, u64),
) -> Result<SweepResult> {
    let candidates = method.candidates(bundle)?;
    if candidates.is_empty() {
        return Err(Error::invalid(
            "external method sweep",
            "at least one candidate setting",
            0,
        ));
    }
    let expected = bundle.spec().shape.iter().product::<usize>();
    let mut best: Option<(usize, Vec<Complex32>, f64)> = None;
    let mut scores = Vec::with_capacity(candidates.len());
    for (k, settings) in candidates.iter().enumerate() {
        let recon = method.reconstruct(bundle, k)?;
        if recon.len() != expected {
            return Err(Error::Shape {
                what: format!("{} reconstruction", method.identity()),
                expected: bundle.spec().shape.to_vec(),
                got: vec![recon.len()],
            });
        }
        crate::error::ensure_finite_complex("external reconstruction", &recon)?;
        let s = score(&recon)?;
        scores.push((describe(settings), s));
        if best.as_ref().is_none_or(|(_, _, b)| s > *b) {
            best = Some((k, recon, s));
        }
        observer(k as u64 + 1, candidates.len() as u64);
    }
    let (k, recon, _) = best.expect("at least one candidate ran");
    Ok(SweepResult {
        recon,
        settings: candidates[k].clone(),
        scores,
    })
}

/// `a=1, b=0.5`.
pub fn describe(settings: &Resolved) -> String {
    settings
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{simulate, MaskPattern, OperatorKind, SimulationSettings, Truth};
    use crate::method_settings::SettingValue;

    /// A program whose candidate k returns the truth scaled by (k + 1) / 3.
    struct Scaled(Vec<Complex32>);

    impl ExternalMethod for Scaled {
        fn identity(&self) -> String {
            "scaled".into()
        }
        fn candidates(&self, _: &Bundle) -> Result<Vec<Resolved>> {
            Ok((0..4).map(|k| vec![("k", SettingValue::Int(k))]).collect())
        }
        fn reconstruct(&self, _: &Bundle, k: usize) -> Result<Vec<Complex32>> {
            Ok(self.0.iter().map(|v| v * ((k + 1) as f32 / 3.0)).collect())
        }
    }

    #[test]
    fn keeps_the_best_candidate() {
        let values: Vec<Complex32> = (0..2 * 8 * 8)
            .map(|i| Complex32::new((i % 7) as f32 * 0.1, 0.0))
            .collect();
        let truth = Truth {
            shape: vec![2, 8, 8],
            values: values.clone(),
        };
        let sim = SimulationSettings {
            operator: OperatorKind::Denoise,
            mask: MaskPattern::Random,
            acceleration: 1.0,
            acs: 0,
            coils: 1,
            noise_sigma: 0.01,
            static_mask: false,
            scale: 2,
            blur_sigma: 1.0,
        };
        let bundle = simulate(truth, false, &sim, 0).unwrap();
        let error = |x: &[Complex32]| -> Result<f64> {
            Ok(-x
                .iter()
                .zip(&values)
                .map(|(a, b)| (a - b).norm_sqr() as f64)
                .sum::<f64>())
        };
        let mut calls = 0;
        let r = best_of_sweep(&Scaled(values.clone()), &bundle, &error, &mut |_, _| {
            calls += 1
        })
        .unwrap();
        // Candidate 2 is the truth exactly: (2 + 1) / 3 = 1.
        assert_eq!(r.settings, vec![("k", SettingValue::Int(2))]);
        assert_eq!(r.recon, values);
        assert_eq!((r.scores.len(), calls), (4, 4));
        assert_eq!(r.scores[2], ("k=2".to_string(), 0.0));
    }
}
