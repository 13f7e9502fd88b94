//! Evaluation matrices: methods × operators × accelerations × seeds over a data set, one *cell*
//! (item × operator × acceleration × seed × method) at a time, with per-frame metrics, summaries
//! and a self-contained HTML report. Pure: the caller (`cinediff eval`) reads the data, stores
//! finished cells (so a re-run skips them) and writes the outputs.
//!
//! - [`methods`]: the registry of methods (one entry per method).
//! - [`items_from_array`] / [`EvalItem`]: the data — sequences with a known truth, measured here by
//!   [`measure`] ([`crate::bundle::simulate`]), or measurement bundles as they are.
//! - [`run_cell`]: one method on one measurement → per-frame [`FrameRow`]s, the image and, with
//!   several draws, the per-pixel posterior spread. It builds every method through
//!   [`crate::method_settings`] and runs [`crate::reconstruction`] / [`crate::sequence`].
//! - [`external`]: methods run by another program (BART), their settings swept, the best kept.
//! - [`table`]: `metrics.csv` rows and the mean ± std summary; [`report`]: the HTML page.

pub mod cell;
pub mod external;
pub mod methods;
pub mod report;
pub mod table;

pub use cell::{run_cell, CellOutput, Models, PriorModel};
pub use methods::{method, method_names, Family, MethodEntry, StrategyKind, METHODS};
pub use table::{summarize, FrameRow, GroupSummary, Stat};

use num_complex::Complex32;

use crate::bundle::{
    simulate, Bundle, BundleMask, MaskPattern, OperatorKind, SimulationSettings, Truth,
};
use crate::diffusion::TimestepSpacing;
use crate::error::{Error, Result};
use crate::method_settings::{SamplerKind, SamplerSettings};
use crate::reconstruction::IntensityMatch;

/// Every setting of the methods (one value per knob for the whole matrix).
#[derive(Clone, Debug, PartialEq)]
pub struct EvalSettings {
    /// cg: iterations.
    pub cg_iterations: usize,
    /// tv, tv-t: spatial λ relative to max|Aᴴy|.
    pub tv_lambda: f64,
    /// tv-t: temporal λ_t relative to max|Aᴴy|.
    pub tv_lambda_t: f64,
    /// tv, tv-t: iterations.
    pub tv_iterations: usize,
    /// wavelet: λ relative to max|Aᴴy|.
    pub wavelet_lambda: f64,
    /// wavelet: iterations.
    pub wavelet_iterations: usize,
    /// Knobs of the posterior samplers.
    pub sampler: SamplerSettings,
    /// Reverse steps of the single-frame samplers and of the independent strategy.
    pub steps: usize,
    /// Posterior draws averaged by the single-frame samplers (≥ 2 gives a std map).
    pub samples: usize,
    /// The sampler the sequence strategies drive.
    pub sequence_sampler: SamplerKind,
    /// The cold grid of seqdiff / seqdiff+ (frame 0).
    pub sequence_steps: usize,
    /// seqdiff / seqdiff+: steps of every warm-started frame.
    pub warm_start: usize,
    /// Particles of the sequence strategies (≥ 2 gives a std map).
    pub particles: usize,
    /// Draws averaged by APS (≥ 2 gives a std map).
    pub aps_samples: usize,
    /// Frames per network call of the single-frame samplers.
    pub batch: usize,
    /// Intensity matching of the data to the prior.
    pub intensity: IntensityMatch,
    /// Clip x̂₀ to ±limit in network units (`None`: no clipping).
    pub clip_x0: Option<f32>,
    /// Timestep spacing of every grid.
    pub spacing: TimestepSpacing,
}

impl Default for EvalSettings {
    /// Cheap settings that follow BENCHMARKS.md: TV λ 0.001 (the demo's, not tuned), temporal
    /// λ_t 0.003, wavelet λ 0.001; 50 steps for single-frame samplers and independent; DDIM + DC
    /// with K = 10 and step 1.5/L; DiffPIR λ 1, ζ 0.3; seqdiff on a 200-step grid with 10 warm
    /// steps; 2 particles for the sequence strategies (their spread is the uncertainty map).
    fn default() -> Self {
        Self {
            cg_iterations: 30,
            tv_lambda: 0.001,
            tv_lambda_t: 0.003,
            tv_iterations: 1000,
            wavelet_lambda: 0.001,
            wavelet_iterations: 200,
            sampler: SamplerSettings {
                zeta: 1.0,
                dc_steps: 10,
                dc_step_size: 1.5,
                cg_iterations: None,
                eta: None,
                diffpir_lambda: 1.0,
                diffpir_zeta: 0.3,
                sigma_n: None,
            },
            steps: 50,
            samples: 1,
            sequence_sampler: SamplerKind::DdimDc,
            sequence_steps: 200,
            warm_start: 10,
            particles: 2,
            aps_samples: 64,
            batch: 8,
            intensity: IntensityMatch::Auto,
            clip_x0: Some(1.0),
            spacing: TimestepSpacing::Linspace,
        }
    }
}

impl EvalSettings {
    /// Fails for zero steps, draws, particles, batch or iterations, warm steps beyond the grid,
    /// or non-finite / negative weights.
    pub fn validate(&self) -> Result<()> {
        for (what, v) in [
            ("cg iterations", self.cg_iterations),
            ("tv iterations", self.tv_iterations),
            ("wavelet iterations", self.wavelet_iterations),
            ("diffusion steps", self.steps),
            ("posterior samples", self.samples),
            ("sequence grid steps", self.sequence_steps),
            ("warm-start steps", self.warm_start),
            ("particles", self.particles),
            ("APS samples", self.aps_samples),
            ("frames per batch", self.batch),
        ] {
            if v == 0 {
                return Err(Error::invalid(what, "at least 1", 0));
            }
        }
        if self.warm_start > self.sequence_steps {
            return Err(Error::invalid(
                "warm-start steps",
                format!("at most the sequence grid's {} steps", self.sequence_steps),
                self.warm_start,
            ));
        }
        for (what, v) in [
            ("tv lambda", self.tv_lambda),
            ("tv temporal lambda", self.tv_lambda_t),
            ("wavelet lambda", self.wavelet_lambda),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(what, "a finite value ≥ 0", v));
            }
        }
        Ok(())
    }
}

/// How data with a known truth is measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeasurementSettings {
    /// MRI receive coils (synthetic maps).
    pub coils: usize,
    /// Noise σ per measured entry.
    pub noise_sigma: f64,
    /// Fully sampled MRI centre lines; `None`: fastMRI's fraction of the width (8 % below 8×,
    /// 4 % from 8× on), at least 1.
    pub acs: Option<usize>,
    /// Sampling pattern (a fresh draw every frame: ky–t).
    pub mask: MaskPattern,
}

impl Default for MeasurementSettings {
    /// 4 coils, σ = 0.01, random ky–t lines, fastMRI's calibration fraction.
    fn default() -> Self {
        Self {
            coils: 4,
            noise_sigma: 0.01,
            acs: None,
            mask: MaskPattern::Random,
        }
    }
}

/// The estimated network evaluations per frame of `entry` on sequences of `frames` frames (0 for
/// classic methods): the order cells run in, cheapest first, so a long run finishes the cheap
/// methods on every measurement before the expensive ones.
pub fn estimated_cost(entry: &MethodEntry, settings: &EvalSettings, frames: usize) -> Result<f64> {
    let per_step = |kind| -> Result<f64> {
        Ok(
            crate::method_settings::build_sampler(kind, &settings.sampler, 0.0)?
                .sampler
                .evaluations_per_step() as f64,
        )
    };
    Ok(match entry.family {
        Family::Classic { .. } | Family::External => 0.0,
        // One flow evaluation per draw, each far cheaper than a U-Net's.
        Family::Aps => 0.1 * settings.aps_samples as f64,
        Family::Posterior(kind) => per_step(kind)? * (settings.steps * settings.samples) as f64,
        Family::Sequence(strategy) => {
            let steps = match strategy {
                StrategyKind::Independent | StrategyKind::Aid => settings.steps as f64,
                _ => {
                    let frames = frames.max(1) as f64;
                    let warm = settings.warm_start.min(settings.sequence_steps) as f64;
                    (settings.sequence_steps as f64 + (frames - 1.0) * warm) / frames
                }
            };
            per_step(settings.sequence_sampler)? * steps * settings.particles as f64
        }
    })
}

/// Whether `operator`'s measurement depends on an acceleration (a mask).
pub fn uses_acceleration(operator: OperatorKind) -> bool {
    operator.uses_mask()
}

/// What an item is.
#[derive(Clone, Debug)]
pub enum ItemSource {
    /// A known sequence, measured by [`measure`] for every operator × acceleration × seed.
    Truth {
        /// `[T, H, W]`.
        truth: Truth,
        /// Complex-valued.
        complex: bool,
    },
    /// A measurement as it is (operator and acceleration are the bundle's).
    Bundle(Box<Bundle>),
}

/// One image or sequence of the data set.
#[derive(Clone, Debug)]
pub struct EvalItem {
    /// Name used in cell ids and the report (letters, digits, `.`, `_`, `-`).
    pub name: String,
    /// The data.
    pub source: ItemSource,
}

impl EvalItem {
    /// `[T, H, W]` of the item.
    pub fn shape(&self) -> [usize; 3] {
        match &self.source {
            ItemSource::Truth { truth, .. } => [truth.shape[0], truth.shape[1], truth.shape[2]],
            ItemSource::Bundle(b) => b.spec().shape,
        }
    }

    /// Whether the item is complex-valued.
    pub fn complex(&self) -> bool {
        match &self.source {
            ItemSource::Truth { complex, .. } => *complex,
            ItemSource::Bundle(b) => b.spec().complex,
        }
    }
}

/// Items from an array of `[N, H, W]` images (each a one-frame item) or `[N, T, H, W]`
/// sequences, the first `limit_items` items and `limit_frames` frames of each (`None`: all).
pub fn items_from_array(
    shape: &[usize],
    values: Vec<Complex32>,
    complex: bool,
    limit_items: Option<usize>,
    limit_frames: Option<usize>,
) -> Result<Vec<EvalItem>> {
    let (n, t, h, w) = match *shape {
        [n, h, w] => (n, 1, h, w),
        [n, t, h, w] => (n, t, h, w),
        _ => {
            return Err(Error::invalid(
                "eval data shape",
                "[N, H, W] images or [N, T, H, W] sequences",
                format!("{shape:?}"),
            ))
        }
    };
    if n == 0 || t == 0 || h == 0 || w == 0 {
        return Err(Error::invalid(
            "eval data shape",
            "every axis at least 1",
            format!("{shape:?}"),
        ));
    }
    if values.len() != n * t * h * w {
        return Err(Error::Shape {
            what: "eval data values".into(),
            expected: shape.to_vec(),
            got: vec![values.len()],
        });
    }
    crate::error::ensure_finite_complex("eval data", &values)?;
    for (what, limit) in [
        ("--limit-items", limit_items),
        ("--limit-frames", limit_frames),
    ] {
        if limit == Some(0) {
            return Err(Error::invalid(what, "at least 1", 0));
        }
    }
    let items = limit_items.map_or(n, |k| k.min(n));
    let frames = limit_frames.map_or(t, |k| k.min(t));
    let digits = (items.max(2) - 1).to_string().len();
    Ok((0..items)
        .map(|i| {
            let start = i * t * h * w;
            let values = values[start..start + frames * h * w].to_vec();
            EvalItem {
                name: format!("item{i:0digits$}"),
                source: ItemSource::Truth {
                    truth: Truth {
                        shape: vec![frames, h, w],
                        values,
                    },
                    complex,
                },
            }
        })
        .collect())
}

/// An item from a measurement bundle, its first `limit_frames` frames (`None`: all). The bundle
/// must hold its truth (metrics need it).
pub fn item_from_bundle(
    name: &str,
    bundle: Bundle,
    limit_frames: Option<usize>,
) -> Result<EvalItem> {
    if bundle.truth().is_none() {
        return Err(Error::invalid(
            format!("bundle {name}"),
            "a truth.npy (metrics need the truth)",
            "none",
        ));
    }
    let bundle = match limit_frames {
        Some(0) => return Err(Error::invalid("--limit-frames", "at least 1", 0)),
        Some(k) if k < bundle.spec().frames() => first_frames(&bundle, k)?,
        _ => bundle,
    };
    Ok(EvalItem {
        name: sanitize(name),
        source: ItemSource::Bundle(Box::new(bundle)),
    })
}

/// The first `k` frames of a bundle.
fn first_frames(bundle: &Bundle, k: usize) -> Result<Bundle> {
    let mut spec = bundle.spec().clone();
    let frames = spec.frames();
    let per_y = bundle.y().len() / frames;
    spec.shape[0] = k;
    let mask = bundle.mask().map(|m| match m {
        BundleMask::Lines(l) => BundleMask::Lines(l[..k].to_vec()),
        BundleMask::Pixels(p) => BundleMask::Pixels(p[..k].to_vec()),
    });
    let truth = bundle.truth().map(|t| {
        let per = t.values.len() / frames;
        let mut shape = t.shape.clone();
        if shape.len() == 3 {
            shape[0] = k;
        }
        Truth {
            shape,
            values: t.values[..k * per].to_vec(),
        }
    });
    Bundle::new(
        spec,
        bundle.y()[..k * per_y].to_vec(),
        mask,
        bundle.coil_maps().cloned(),
        truth,
    )
}

/// `name` with every character outside letters, digits, `.`, `_`, `-` replaced by `_`.
pub fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "item".into()
    } else {
        s
    }
}

/// One measurement of the matrix: an item under an operator, acceleration and seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// Index into the items.
    pub item: usize,
    /// The forward model.
    pub operator: OperatorKind,
    /// R (1 for operators without a mask).
    pub acceleration: f64,
    /// Seed of the mask and noise draws and of the reconstruction.
    pub seed: u64,
}

/// The conditions of the matrix, item-major.
/// Bundle items give one condition per seed (their own operator and measured acceleration).
pub fn conditions(
    items: &[EvalItem],
    operators: &[OperatorKind],
    accelerations: &[f64],
    seeds: &[u64],
) -> Vec<Condition> {
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match &item.source {
            ItemSource::Bundle(b) => {
                for &seed in seeds {
                    out.push(Condition {
                        item: i,
                        operator: b.spec().operator,
                        acceleration: measured_acceleration(b),
                        seed,
                    });
                }
            }
            ItemSource::Truth { .. } => {
                for &operator in operators {
                    let accels: &[f64] = if uses_acceleration(operator) {
                        accelerations
                    } else {
                        &[1.0]
                    };
                    for &acceleration in accels {
                        for &seed in seeds {
                            out.push(Condition {
                                item: i,
                                operator,
                                acceleration,
                                seed,
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// Entries / sampled entries of a bundle's mask (1 without a mask), rounded to 0.1.
pub fn measured_acceleration(bundle: &Bundle) -> f64 {
    match bundle.mask() {
        Some(m) => {
            let bytes = m.to_u8();
            let sampled = bytes.iter().filter(|&&b| b == 1).count().max(1);
            (bytes.len() as f64 / sampled as f64 * 10.0).round() / 10.0
        }
        None => 1.0,
    }
}

/// The measurement of a condition: a bundle item as it is, or its truth simulated with
/// [`simulate`] (masks and noise from `condition.seed`).
pub fn measure(
    item: &EvalItem,
    condition: &Condition,
    settings: &MeasurementSettings,
) -> Result<Bundle> {
    match &item.source {
        ItemSource::Bundle(b) => Ok((**b).clone()),
        ItemSource::Truth { truth, complex } => {
            let width = truth.shape[2];
            let r = condition.acceleration;
            let acs = match condition.operator {
                OperatorKind::Mri => settings.acs.unwrap_or_else(|| {
                    let fraction = if r < 8.0 { 0.08 } else { 0.04 };
                    ((fraction * width as f64).round() as usize).max(1)
                }),
                _ => 0,
            };
            let sim = SimulationSettings {
                operator: condition.operator,
                mask: settings.mask,
                acceleration: r,
                acs,
                coils: settings.coils,
                noise_sigma: settings.noise_sigma,
                static_mask: false,
                scale: 2,
                blur_sigma: 1.5,
            };
            simulate(truth.clone(), *complex, &sim, condition.seed).map_err(|e| {
                Error::invalid(
                    format!(
                        "measuring {} with {} at {}×",
                        item.name,
                        condition.operator.name(),
                        r
                    ),
                    "a valid simulation",
                    e.to_string(),
                )
            })
        }
    }
}

/// The acceleration as written in ids and tables: `4`, `8`, `2.5`.
pub fn acceleration_label(r: f64) -> String {
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r}")
    }
}

/// The directory name of a cell: `item0_mri-4x_s0_ddim-dc`.
pub fn cell_id(item: &str, condition: &Condition, method: &str) -> String {
    format!(
        "{item}_{}-{}x_s{}_{method}",
        condition.operator.name(),
        acceleration_label(condition.acceleration),
        condition.seed
    )
}

/// FNV-1a 64 of the bit patterns of `values` (a fingerprint of the data, not a security hash).
pub fn data_hash(values: &[Complex32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values {
        for b in
            v.re.to_bits()
                .to_le_bytes()
                .into_iter()
                .chain(v.im.to_bits().to_le_bytes())
        {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Everything a cell's result depends on, as text: the method's settings, the measurement (its
/// y, truth and spec), and the models (`models`: e.g. their directories and sizes). A stored cell
/// whose fingerprint differs is run again.
pub fn fingerprint(
    entry: &MethodEntry,
    settings: &EvalSettings,
    bundle: &Bundle,
    models: &str,
) -> String {
    let method = match entry.family {
        Family::Classic { kind, temporal } => format!(
            "{kind:?} temporal={temporal} cg={} tv=({}, {}, {}) wavelet=({}, {})",
            settings.cg_iterations,
            settings.tv_lambda,
            if temporal { settings.tv_lambda_t } else { 0.0 },
            settings.tv_iterations,
            settings.wavelet_lambda,
            settings.wavelet_iterations
        ),
        Family::Posterior(kind) => format!(
            "{kind:?} {:?} steps={} samples={} batch={} intensity={:?} clip={:?} spacing={:?} models={models}",
            settings.sampler,
            settings.steps,
            settings.samples,
            settings.batch,
            settings.intensity,
            settings.clip_x0,
            settings.spacing
        ),
        Family::External => format!("External models={models}"),
        Family::Aps => format!("Aps samples={} models={models}", settings.aps_samples),
        Family::Sequence(strategy) => format!(
            "{strategy:?} {:?} {:?} {} particles={} intensity={:?} clip={:?} spacing={:?} models={models}",
            settings.sequence_sampler,
            settings.sampler,
            match strategy {
                StrategyKind::Independent | StrategyKind::Aid => format!("steps={}", settings.steps),
                _ => format!(
                    "grid={} warm={}",
                    settings.sequence_steps, settings.warm_start
                ),
            },
            settings.particles,
            settings.intensity,
            settings.clip_x0,
            settings.spacing
        ),
    };
    let truth = bundle.truth().map_or(0, |t| data_hash(&t.values));
    format!(
        "cinediff {} | {} | {method} | spec {:?} y {:016x} truth {truth:016x}",
        env!("CARGO_PKG_VERSION"),
        entry.name,
        bundle.spec(),
        data_hash(bundle.y()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phantom_item(frames: usize) -> EvalItem {
        let values: Vec<Complex32> = (0..frames * 32 * 32)
            .map(|i| Complex32::new(0.2 + (i % 5) as f32 * 0.1, 0.0))
            .collect();
        items_from_array(&[1, frames, 32, 32], values, false, None, None)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn cost_orders_cheap_methods_first() {
        let s = EvalSettings::default();
        let cost = |name: &str| estimated_cost(method(name).unwrap(), &s, 32).unwrap();
        assert_eq!(cost("tv"), 0.0);
        // By the definition: 50 steps × 2 evaluations (DPS's VJP) vs 50 × 1; seqdiff runs the
        // 200-step grid once and 10 steps for each of the other 31 frames, with 2 particles.
        assert_eq!(cost("dps"), 100.0);
        assert_eq!(cost("ddim-dc"), 50.0);
        assert_eq!(cost("independent"), 100.0);
        assert_eq!(cost("seqdiff"), (200.0 + 31.0 * 10.0) / 32.0 * 2.0);
    }

    #[test]
    fn fingerprints_follow_the_settings_a_method_uses() {
        let item = phantom_item(2);
        let c = Condition {
            item: 0,
            operator: OperatorKind::Mri,
            acceleration: 4.0,
            seed: 0,
        };
        let bundle = measure(&item, &c, &MeasurementSettings::default()).unwrap();
        let base = EvalSettings::default();
        let more_steps = EvalSettings {
            steps: 60,
            ..base.clone()
        };
        let print = |m: &str, s: &EvalSettings| fingerprint(method(m).unwrap(), s, &bundle, "m");
        assert_ne!(print("ddim-dc", &base), print("ddim-dc", &more_steps));
        assert_ne!(
            print("independent", &base),
            print("independent", &more_steps)
        );
        assert_eq!(print("seqdiff", &base), print("seqdiff", &more_steps));
        assert_eq!(print("tv", &base), print("tv", &more_steps));
        // Another seed measures differently (masks, noise): every cell runs again.
        let other = measure(
            &item,
            &Condition {
                seed: 1,
                ..c.clone()
            },
            &MeasurementSettings::default(),
        )
        .unwrap();
        assert_ne!(
            print("tv", &base),
            fingerprint(method("tv").unwrap(), &base, &other, "m")
        );
        assert_eq!(cell_id("item0", &c, "tv"), "item0_mri-4x_s0_tv");
    }

    #[test]
    fn items_and_limits() {
        let values = vec![Complex32::new(1.0, 0.0); 3 * 4 * 8 * 8];
        let items =
            items_from_array(&[3, 4, 8, 8], values.clone(), true, Some(2), Some(3)).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].name, "item1");
        assert_eq!(items[0].shape(), [3, 8, 8]);
        assert!(items_from_array(&[3, 4, 8, 8], values.clone(), true, Some(0), None).is_err());
        assert!(items_from_array(&[3, 4, 8], values, true, None, None).is_err());
        let mut bad = vec![Complex32::new(1.0, 0.0); 2 * 8 * 8];
        bad[5].re = f32::NAN;
        assert!(items_from_array(&[2, 8, 8], bad, false, None, None).is_err());
    }
}
