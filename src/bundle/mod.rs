//! Measurement bundles: the file contract between simulation, reconstruction and outside tools, held
//! in memory and validated (the `.npy`/TOML reading and writing is in [`crate::io::bundle`]).
//!
//! A bundle is one measured sequence y_t = A_t x_t + n_t, t = 0..T, of `[T, H, W]` images (T = 1 for
//! a still image), with the parameters of A_t ([`BundleSpec`], the sampling [`BundleMask`], coil maps)
//! and optionally the truth. [`Bundle::new`] checks every member against the others and names the
//! file (`y.npy`, `mask.npy`, `csm.npy`, `truth.npy`, `measurement.toml`) and the mismatch;
//! [`Bundle::frame_operators`] builds A_t. [`simulate`] makes a bundle from a known truth.

pub mod simulate;

use std::sync::Arc;

use num_complex::Complex32;
use serde::{Deserialize, Serialize};

use crate::error::{ensure_finite_complex as ensure_finite, Error, Result};
use crate::image::MAX_ELEMENTS;
use crate::physics::masks::centre_range;
use crate::physics::{
    AvgPool, CartesianMri, CoilMaps, Fft2, FrameSequence, GaussianBlur, Identity, LineMask,
    LinearOperator, Mask, PixelMask, ScanLineSubsampling, SenseMri,
};

pub use simulate::{simulate, MaskPattern, SimulationSettings};

/// The bundle's description file.
pub const SPEC_FILE: &str = "measurement.toml";
/// The measurement.
pub const Y_FILE: &str = "y.npy";
/// The sampling mask (uint8).
pub const MASK_FILE: &str = "mask.npy";
/// Coil sensitivity maps.
pub const CSM_FILE: &str = "csm.npy";
/// The ground truth (optional, for metrics).
pub const TRUTH_FILE: &str = "truth.npy";

/// Which forward model produced y.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OperatorKind {
    /// Cartesian MRI, y_{t,c} = M_t F(S_c x_t) (single coil: S = 1).
    Mri,
    /// Ultrasound scan-line subsampling, y_t = x_t ⊙ m_t (column mask).
    UsLines,
    /// Inpainting, y_t = M_t ⊙ x_t (pixel mask).
    Inpaint,
    /// Denoising, y_t = x_t + n_t.
    Denoise,
    /// Super-resolution, y_t = mean of `scale`×`scale` blocks of x_t.
    Superres,
    /// Gaussian blur with standard deviation `blur_sigma` pixels (periodic boundary).
    Blur,
}

impl OperatorKind {
    /// The name used in `measurement.toml` and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OperatorKind::Mri => "mri",
            OperatorKind::UsLines => "us-lines",
            OperatorKind::Inpaint => "inpaint",
            OperatorKind::Denoise => "denoise",
            OperatorKind::Superres => "superres",
            OperatorKind::Blur => "blur",
        }
    }

    /// True for operators whose parameters include `mask.npy`.
    pub fn uses_mask(self) -> bool {
        matches!(
            self,
            OperatorKind::Mri | OperatorKind::UsLines | OperatorKind::Inpaint
        )
    }
}

fn default_complex() -> bool {
    true
}
fn default_noise_sigma() -> f64 {
    0.01
}
fn default_coils() -> usize {
    4
}
fn default_scale() -> usize {
    2
}
fn default_blur_sigma() -> f64 {
    1.5
}

/// `measurement.toml`: the operator and its scalar parameters. Unknown keys are an error; missing
/// optional keys take the documented defaults (complex true, noise_sigma 0.01, coils 4, scale 2,
/// blur_sigma 1.5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleSpec {
    /// The forward model.
    pub operator: OperatorKind,
    /// Image shape [T, H, W].
    pub shape: [usize; 3],
    /// Whether the image is complex-valued.
    #[serde(default = "default_complex")]
    pub complex: bool,
    /// Standard deviation σ of the measurement noise: E|n|² = σ² per measured entry (complex noise
    /// has σ/√2 per real component).
    #[serde(default = "default_noise_sigma")]
    pub noise_sigma: f64,
    /// MRI receive coils (`csm.npy` holds the maps when > 1).
    #[serde(default = "default_coils")]
    pub coils: usize,
    /// Super-resolution factor.
    #[serde(default = "default_scale")]
    pub scale: usize,
    /// Blur standard deviation in pixels.
    #[serde(default = "default_blur_sigma")]
    pub blur_sigma: f64,
}

impl BundleSpec {
    /// Frames T.
    pub fn frames(&self) -> usize {
        self.shape[0]
    }

    /// One frame's shape [H, W].
    pub fn image_shape(&self) -> [usize; 2] {
        [self.shape[1], self.shape[2]]
    }

    /// Shape of y.npy for this spec.
    pub fn y_shape(&self) -> Vec<usize> {
        let [t, h, w] = self.shape;
        match self.operator {
            OperatorKind::Mri => vec![t, self.coils, h, w],
            OperatorKind::Superres => vec![t, h / self.scale.max(1), w / self.scale.max(1)],
            _ => vec![t, h, w],
        }
    }

    /// True when y.npy is complex64 (always for MRI k-space, else when the image is).
    pub fn y_is_complex(&self) -> bool {
        self.complex || self.operator == OperatorKind::Mri
    }

    /// Checks the scalar parameters on their own.
    pub fn validate(&self) -> Result<()> {
        let what = |key: &str| format!("{SPEC_FILE}: {key}");
        let [t, h, w] = self.shape;
        if t == 0 || h == 0 || w == 0 {
            return Err(Error::invalid(
                what("shape"),
                "[T, H, W] with every entry ≥ 1",
                format!("{:?}", self.shape),
            ));
        }
        let elements = t
            .checked_mul(h)
            .and_then(|n| n.checked_mul(w))
            .and_then(|n| n.checked_mul(self.coils.max(1)))
            .filter(|&n| n <= MAX_ELEMENTS);
        if elements.is_none() {
            return Err(Error::invalid(
                what("shape"),
                format!("at most {MAX_ELEMENTS} values (times coils)"),
                format!("{:?} with {} coils", self.shape, self.coils),
            ));
        }
        if !(self.noise_sigma.is_finite() && self.noise_sigma >= 0.0) {
            return Err(Error::invalid(
                what("noise_sigma"),
                "a finite value ≥ 0",
                self.noise_sigma,
            ));
        }
        match self.operator {
            OperatorKind::Mri if self.coils == 0 => {
                return Err(Error::invalid(what("coils"), "≥ 1", self.coils));
            }
            OperatorKind::Superres
                if self.scale < 2 || h % self.scale != 0 || w % self.scale != 0 =>
            {
                return Err(Error::invalid(
                    what("scale"),
                    format!("an integer ≥ 2 dividing H = {h} and W = {w}"),
                    self.scale,
                ));
            }
            OperatorKind::Blur if !(self.blur_sigma.is_finite() && self.blur_sigma > 0.0) => {
                return Err(Error::invalid(
                    what("blur_sigma"),
                    "a finite value > 0",
                    self.blur_sigma,
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

/// The sampling pattern: per-frame line masks `[T, W]` (phase-encode columns / scan lines) or
/// per-frame pixel masks `[T, H, W]`; `true` = measured.
#[derive(Clone, Debug, PartialEq)]
pub enum BundleMask {
    /// One column mask per frame.
    Lines(Vec<LineMask>),
    /// One pixel mask per frame.
    Pixels(Vec<Mask>),
}

impl BundleMask {
    /// Reads a `[T, W]` or `[T, H, W]` uint8 array of 0/1 values; `context` names the file.
    pub fn from_u8(shape: &[usize], data: &[u8], context: &str) -> Result<Self> {
        if let Some(pos) = data.iter().position(|&v| v > 1) {
            return Err(Error::invalid(
                context,
                "values 0 or 1",
                format!("{} at flat index {pos}", data[pos]),
            ));
        }
        let expected_len: usize = shape.iter().product();
        if expected_len != data.len() || shape.is_empty() {
            return Err(Error::Shape {
                what: context.into(),
                expected: shape.to_vec(),
                got: vec![data.len()],
            });
        }
        match *shape {
            [t, w] if t > 0 && w > 0 => Ok(BundleMask::Lines(
                data.chunks_exact(w)
                    .map(|c| LineMask::new(c.iter().map(|&v| v == 1).collect()))
                    .collect::<Result<_>>()?,
            )),
            [t, h, w] if t > 0 && h > 0 && w > 0 => Ok(BundleMask::Pixels(
                data.chunks_exact(h * w)
                    .map(|c| Mask::new([h, w], c.iter().map(|&v| v == 1).collect()))
                    .collect::<Result<_>>()?,
            )),
            _ => Err(Error::invalid(
                context,
                "shape [T, W] (line masks) or [T, H, W] (pixel masks) with every entry ≥ 1",
                format!("{shape:?}"),
            )),
        }
    }

    /// Frames T.
    pub fn frames(&self) -> usize {
        match self {
            BundleMask::Lines(l) => l.len(),
            BundleMask::Pixels(p) => p.len(),
        }
    }

    /// The array shape as stored in mask.npy.
    pub fn shape(&self) -> Vec<usize> {
        match self {
            BundleMask::Lines(l) => vec![l.len(), l.first().map_or(0, LineMask::width)],
            BundleMask::Pixels(p) => {
                let [h, w] = p.first().map_or([0, 0], Mask::shape);
                vec![p.len(), h, w]
            }
        }
    }

    /// The mask as 0/1 bytes in row-major order.
    pub fn to_u8(&self) -> Vec<u8> {
        match self {
            BundleMask::Lines(l) => l
                .iter()
                .flat_map(|m| m.lines().iter().map(|&b| b as u8))
                .collect(),
            BundleMask::Pixels(p) => p
                .iter()
                .flat_map(|m| m.data().iter().map(|&b| b as u8))
                .collect(),
        }
    }

    /// Frame t's mask broadcast to a `[h, w]` pixel mask.
    pub fn frame_pixels(&self, t: usize, rows: usize) -> Result<Mask> {
        match self {
            BundleMask::Lines(l) => l[t].to_mask(rows),
            BundleMask::Pixels(p) => Ok(p[t].clone()),
        }
    }

    /// Number of measured entries in frame t (lines or pixels).
    fn frame_sampled(&self, t: usize) -> usize {
        match self {
            BundleMask::Lines(l) => l[t].sampled(),
            BundleMask::Pixels(p) => p[t].sampled(),
        }
    }
}

/// The known image, for metrics: its own shape (`[H, W]` or `[T, H, W]`) and values.
#[derive(Clone, Debug, PartialEq)]
pub struct Truth {
    /// `[H, W]` (a still image) or `[T, H, W]`.
    pub shape: Vec<usize>,
    /// Row-major values; imaginary parts are 0 for real images.
    pub values: Vec<Complex32>,
}

/// A validated measurement bundle.
#[derive(Clone, Debug)]
pub struct Bundle {
    spec: BundleSpec,
    y: Vec<Complex32>,
    mask: Option<BundleMask>,
    coil_maps: Option<Arc<CoilMaps>>,
    truth: Option<Truth>,
}

impl Bundle {
    /// Checks every member against the spec: y's shape, the mask's shape, values and frame count
    /// (no frame may be empty), the coil maps' shape, finiteness, and the truth's shape.
    pub fn new(
        spec: BundleSpec,
        y: Vec<Complex32>,
        mask: Option<BundleMask>,
        coil_maps: Option<CoilMaps>,
        truth: Option<Truth>,
    ) -> Result<Self> {
        spec.validate()?;
        let [t, h, w] = spec.shape;
        let op = spec.operator.name();
        let expected_y: usize = spec.y_shape().iter().product();
        if y.len() != expected_y {
            return Err(Error::Shape {
                what: format!("{Y_FILE} (operator {op}, shape {:?})", spec.shape),
                expected: spec.y_shape(),
                got: vec![y.len()],
            });
        }
        ensure_finite(Y_FILE, &y)?;
        if !spec.y_is_complex() && y.iter().any(|v| v.im != 0.0) {
            return Err(Error::invalid(
                Y_FILE,
                "real values (complex = false)",
                "non-zero imaginary parts",
            ));
        }

        match (&mask, spec.operator.uses_mask()) {
            (None, true) => {
                return Err(Error::invalid(
                    MASK_FILE,
                    format!("present (operator {op} needs a sampling mask)"),
                    "missing",
                ))
            }
            (Some(_), false) => {
                return Err(Error::invalid(
                    MASK_FILE,
                    format!("absent (operator {op} takes no mask)"),
                    "a mask",
                ))
            }
            _ => {}
        }
        if let Some(m) = &mask {
            let shape = m.shape();
            let ok = match (spec.operator, m) {
                (OperatorKind::Mri, BundleMask::Lines(_)) | (OperatorKind::UsLines, _) => {
                    shape == [t, w] || shape == [t, h, w]
                }
                (OperatorKind::Mri, BundleMask::Pixels(_)) | (OperatorKind::Inpaint, _) => {
                    shape == [t, h, w]
                }
                _ => false,
            };
            if !ok {
                let expected = match spec.operator {
                    OperatorKind::Inpaint => vec![t, h, w],
                    _ => vec![t, w],
                };
                return Err(Error::Shape {
                    what: format!(
                        "{MASK_FILE} (operator {op}, image shape {:?}; [T, W] line masks or [T, H, W] pixel masks)",
                        spec.shape
                    ),
                    expected,
                    got: shape,
                });
            }
            if let Some(empty) = (0..t).find(|&k| m.frame_sampled(k) == 0) {
                return Err(Error::invalid(
                    MASK_FILE,
                    "at least one measured entry in every frame",
                    format!("frame {empty} samples nothing (all zeros)"),
                ));
            }
        }

        let coil_maps = match (spec.operator, coil_maps) {
            (OperatorKind::Mri, Some(maps)) => {
                if maps.shape() != [spec.coils, h, w] {
                    return Err(Error::Shape {
                        what: format!(
                            "{CSM_FILE} vs coils = {} and image {h}×{w} in {SPEC_FILE}",
                            spec.coils
                        ),
                        expected: vec![spec.coils, h, w],
                        got: maps.shape().to_vec(),
                    });
                }
                ensure_finite(CSM_FILE, maps.data())?;
                if maps.rss().iter().all(|&r| r == 0.0) {
                    return Err(Error::invalid(
                        CSM_FILE,
                        "coil maps with some non-zero sensitivity",
                        "all zeros",
                    ));
                }
                Some(Arc::new(maps))
            }
            (OperatorKind::Mri, None) if spec.coils > 1 => {
                // Real k-space rarely comes with maps: estimate them from the calibration centre.
                let m = mask
                    .as_ref()
                    .ok_or_else(|| Error::invalid(MASK_FILE, "present", "missing"))?;
                Some(Arc::new(estimate_coil_maps(&spec, &y, m)?))
            }
            (_, None) => None,
            (_, Some(_)) => {
                return Err(Error::invalid(
                    CSM_FILE,
                    format!("absent (operator {op} has no coils)"),
                    "coil maps",
                ))
            }
        };

        if let Some(truth) = &truth {
            let ok = truth.shape == [t, h, w] || (t == 1 && truth.shape == [h, w]);
            if !ok {
                return Err(Error::Shape {
                    what: format!("{TRUTH_FILE} vs shape in {SPEC_FILE}"),
                    expected: vec![t, h, w],
                    got: truth.shape.clone(),
                });
            }
            if truth.values.len() != t * h * w {
                return Err(Error::Shape {
                    what: TRUTH_FILE.into(),
                    expected: vec![t * h * w],
                    got: vec![truth.values.len()],
                });
            }
            ensure_finite(TRUTH_FILE, &truth.values)?;
            if !spec.complex && truth.values.iter().any(|v| v.im != 0.0) {
                return Err(Error::invalid(
                    TRUTH_FILE,
                    "real values (complex = false)",
                    "non-zero imaginary parts",
                ));
            }
        }
        Ok(Self {
            spec,
            y,
            mask,
            coil_maps,
            truth,
        })
    }

    /// The scalar description.
    pub fn spec(&self) -> &BundleSpec {
        &self.spec
    }

    /// y, `spec().y_shape()` row-major.
    pub fn y(&self) -> &[Complex32] {
        &self.y
    }

    /// Frame t's measurement.
    pub fn frame_y(&self, t: usize) -> &[Complex32] {
        let per = self.y.len() / self.spec.frames();
        &self.y[t * per..(t + 1) * per]
    }

    /// The sampling mask, if the operator has one.
    pub fn mask(&self) -> Option<&BundleMask> {
        self.mask.as_ref()
    }

    /// The coil maps (multi-coil MRI, or single-coil with explicit maps).
    pub fn coil_maps(&self) -> Option<&CoilMaps> {
        self.coil_maps.as_deref()
    }

    /// The truth, if the bundle has one.
    pub fn truth(&self) -> Option<&Truth> {
        self.truth.as_ref()
    }

    /// A_t for every frame t, sharing FFT plans.
    pub fn frame_operators(&self) -> Result<Vec<Arc<dyn LinearOperator>>> {
        let [t, h, w] = self.spec.shape;
        let mask = |k: usize| -> Result<Mask> {
            self.mask
                .as_ref()
                .ok_or_else(|| Error::invalid(MASK_FILE, "present", "missing"))?
                .frame_pixels(k, h)
        };
        let mut ops: Vec<Arc<dyn LinearOperator>> = Vec::with_capacity(t);
        match self.spec.operator {
            OperatorKind::Mri => {
                let fft = Arc::new(Fft2::new([h, w])?);
                for k in 0..t {
                    ops.push(match &self.coil_maps {
                        Some(maps) => {
                            Arc::new(SenseMri::with_plan(fft.clone(), maps.clone(), mask(k)?)?)
                        }
                        // y's coil axis of length 1 leaves the flat buffer as M F x.
                        None => Arc::new(CartesianMri::with_plan(fft.clone(), mask(k)?)?),
                    });
                }
            }
            OperatorKind::UsLines => {
                for k in 0..t {
                    ops.push(match &self.mask {
                        Some(BundleMask::Lines(l)) => {
                            Arc::new(ScanLineSubsampling::new(h, l[k].clone())?)
                        }
                        _ => Arc::new(PixelMask::new(mask(k)?)),
                    });
                }
            }
            OperatorKind::Inpaint => {
                for k in 0..t {
                    ops.push(Arc::new(PixelMask::new(mask(k)?)));
                }
            }
            OperatorKind::Denoise => {
                let op: Arc<dyn LinearOperator> = Arc::new(Identity::new(&[h, w])?);
                ops.extend(std::iter::repeat_n(op, t));
            }
            OperatorKind::Superres => {
                let op: Arc<dyn LinearOperator> = Arc::new(AvgPool::new([h, w], self.spec.scale)?);
                ops.extend(std::iter::repeat_n(op, t));
            }
            OperatorKind::Blur => {
                let op: Arc<dyn LinearOperator> =
                    Arc::new(GaussianBlur::new([h, w], self.spec.blur_sigma)?);
                ops.extend(std::iter::repeat_n(op, t));
            }
        }
        Ok(ops)
    }

    /// The whole sequence's block-diagonal operator, `[T, H, W]` → y's shape.
    pub fn sequence_operator(&self) -> Result<FrameSequence<Arc<dyn LinearOperator>>> {
        FrameSequence::new(self.frame_operators()?)
    }
}

/// Relative intensity below which the estimated coil maps fade to zero (noise-only background).
pub const COIL_MAP_THRESHOLD: f64 = 0.05;

/// Coil maps from the time-averaged k-space of the centred block sampled in every frame (ESPIRiT-
/// free low-resolution estimate, [`CoilMaps::estimate`]); fails naming `csm.npy` when no block of
/// at least 2×2 around the k-space centre is sampled in all frames.
pub fn estimate_coil_maps(
    spec: &BundleSpec,
    y: &[Complex32],
    mask: &BundleMask,
) -> Result<CoilMaps> {
    let [t, h, w] = spec.shape;
    let plane = h * w;
    let mut common = vec![true; plane];
    for k in 0..t {
        let m = mask.frame_pixels(k, h)?;
        common.iter_mut().zip(m.data()).for_each(|(c, &v)| *c &= v);
    }
    let sampled = |rows: std::ops::Range<usize>, cols: std::ops::Range<usize>| {
        rows.clone()
            .all(|i| cols.clone().all(|j| common[i * w + j]))
    };
    // Widest centred column block over all rows (line masks), else the largest centred square.
    let widest = (1..=w)
        .take_while(|&cc| sampled(0..h, centre_range(w, cc)))
        .last()
        .unwrap_or(0);
    let calib = if widest >= 2 {
        [h, widest]
    } else {
        let side = (1..=h.min(w))
            .take_while(|&s| sampled(centre_range(h, s), centre_range(w, s)))
            .last()
            .unwrap_or(0);
        [side, side]
    };
    if calib[0] < 2 || calib[1] < 2 {
        return Err(Error::invalid(
            CSM_FILE,
            format!(
                "present (coils = {} in {SPEC_FILE}), or a fully sampled calibration centre of k-space to estimate the maps from",
                spec.coils
            ),
            "neither",
        ));
    }
    let coils = spec.coils;
    let mut mean = vec![Complex32::default(); coils * plane];
    for frame in y.chunks_exact(coils * plane) {
        mean.iter_mut()
            .zip(frame)
            .for_each(|(m, v)| *m += v / t as f32);
    }
    CoilMaps::estimate(&mean, [coils, h, w], calib, COIL_MAP_THRESHOLD)
}
