//! Procedural cardiac ultrasound cine phantom: an apical four-chamber-like view imaged with a fast
//! linear speckle model, in the **beam domain** `[depth, scan lines]` where scan-line subsampling acts.
//!
//! **Scene.** Lengths are fractions of the imaging depth; `x` is lateral (image right = the side of
//! the left ventricle, as in the standard apical four-chamber display), `z` is depth from the probe
//! at the origin. A heart frame `(u, v)` has its origin at the epicardial apex, `v` along the long
//! axis (away from the probe) and `u` across it (towards the left ventricle). Ventricles and atria
//! are blood pools; septum, walls, pericardium and annuli are tissue; four valve leaflets (mitral
//! and tricuspid) hinge at the annuli, closed in systole, open in early filling and at the atrial
//! kick. A periodic contraction with random rate and phase shortens the heart towards the apex and
//! pulls the walls in (the myocardium thickens as its cavity shrinks) while the atria stretch;
//! an optional slow rigid probe motion (rocking and shift) moves everything.
//!
//! **Imaging.** Point scatterers, uniform in the plane: tissue scatterers are drawn once per
//! sequence and carried by the deformation (speckle follows motion) plus a small mean-reverting
//! random radial jitter (Ornstein–Uhlenbeck, exact for any time lag), which gives the partial
//! decorrelation of real sequences; blood scatterers are weak and redrawn every frame. Each
//! scatterer is rasterised into a fine depth grid (4 bins per depth sample) of the scan lines its
//! beam reaches, with phase exp(i·4πr/λ) from its exact depth and the two-way lateral beam profile
//! exp(−Δ²/2σ(r)²) (Δ in line spacings, σ narrowest at the focus); convolving each line with the
//! Gaussian pulse envelope gives the IQ signal at the depth samples. A depth gain (TGC) makes the
//! expected intensity of unit-amplitude tissue exactly 1 at every depth; complex white noise sets
//! the floor. The envelope |IQ| is log-compressed: 20·log10(E/E₀) with E₀ the largest envelope
//! of the sequence's first frame (a fixed gain per sequence: no flicker, later frames clip at
//! 0 dB), clipped to the dynamic range and mapped linearly to [−1, 1] (−DR dB → −1, 0 dB → 1).
//!
//! **Geometry** ([`SectorGeometry`]): scan line ℓ of L points at θ_ℓ = θmax·(2ℓ/(L−1) − 1);
//! depth sample i of D is at r_i = (i + ½)/D of the imaging depth. [`scan_convert`] maps beam
//! frames to a Cartesian sector image for display.
//!
//! Every random choice is drawn from the caller's RNG in one fixed order: anatomy, timing, probe
//! motion and textures, then the tissue scatterers, then per frame the jitter step, the blood
//! scatterers and the noise. `probe_motion`, `frame_stride` and `dynamic_range_db` change no draw.

use num_complex::Complex32;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::SeededRng;

const PI: f64 = std::f64::consts::PI;
const TAU: f64 = std::f64::consts::TAU;

const DEPTH_MIN: usize = 16;
const DEPTH_MAX: usize = 256;
const LINES_MIN: usize = 8;
const LINES_MAX: usize = 256;
const FRAMES_MAX: usize = 1024;
const STRIDE_MAX: usize = 64;
const SECTOR_MIN_DEG: f64 = 20.0;
const SECTOR_MAX_DEG: f64 = 120.0;
const DR_MIN_DB: f64 = 10.0;
const DR_MAX_DB: f64 = 120.0;
/// Largest sector image side [`scan_convert`] produces.
const SCAN_SIDE_MAX: usize = 4096;

// Imaging constants, in depth samples and line spacings, so speckle has the same size in pixels
// at every grid size.
/// Standard deviation of the two-way pulse envelope along depth (samples).
const PULSE_SIGMA: f64 = 0.7;
/// Carrier wavelength (samples); the IQ phase of a scatterer at depth r is 4πr/λ.
const WAVELENGTH: f64 = 0.5;
/// Fine depth bins per depth sample.
const FINE: usize = 4;
/// Two-way lateral beam standard deviation at the focus (line spacings).
const BEAM_SIGMA_FOCUS: f64 = 0.55;
/// Focal depth and the depth over which the beam widens by √2 (fractions of the imaging depth).
const FOCUS_DEPTH: f64 = 0.6;
const BEAM_RANGE: f64 = 0.3;
/// Envelopes are cut at this many standard deviations.
const CUTOFF_SIGMAS: f64 = 3.0;
/// Tissue scatterers per resolution cell (π·σ_pulse·σ_beam at the focus) at [`CELL_DEPTH`].
const SCATTERERS_PER_CELL: f64 = 8.0;
const CELL_DEPTH: f64 = 0.3;
/// Blood scatterer density relative to tissue.
const BLOOD_DENSITY: f64 = 0.5;
/// Depth below which the TGC gain stops growing (fraction of the imaging depth).
const GAIN_MIN_DEPTH: f64 = 0.03;
/// Noise floor: complex noise power relative to unit-amplitude tissue (−50 dB).
const NOISE_POWER_DB: f64 = -50.0;
/// Radial jitter: stationary standard deviation (wavelengths) and correlation per frame.
const JITTER_SIGMA: f64 = 0.08;
const JITTER_CORRELATION: f64 = 0.9;
/// Scatterers are kept this far outside the sector (depth fraction, radians) so motion never
/// exposes an empty margin.
const MARGIN_DEPTH: f64 = 0.08;
const MARGIN_ANGLE: f64 = 0.08;

/// Parameters of the ultrasound cine phantom.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EchoConfig {
    /// Depth samples per scan line (16..=256).
    pub depth: usize,
    /// Scan lines (8..=256).
    pub lines: usize,
    /// Frames per sequence (1..=1024).
    pub frames: usize,
    /// Full sector angle in degrees (20..=120); lines span ±half of it.
    pub sector_degrees: f64,
    /// Dynamic range of the log compression in dB (10..=120): −DR dB ↦ −1, 0 dB ↦ 1.
    pub dynamic_range_db: f64,
    /// Frame t is rendered at phantom time t·stride (1..=64): stride× heart rate and probe
    /// motion, e.g. 3 for the severe-motion case.
    pub frame_stride: usize,
    /// Slow rigid probe motion (rocking and shift).
    pub probe_motion: bool,
}

impl Default for EchoConfig {
    fn default() -> Self {
        Self {
            depth: 64,
            lines: 64,
            frames: 16,
            sector_degrees: 75.0,
            dynamic_range_db: 60.0,
            frame_stride: 1,
            probe_motion: true,
        }
    }
}

impl EchoConfig {
    /// Fails with [`Error::InvalidArgument`] naming the first field that is out of range.
    pub fn validate(&self) -> Result<()> {
        if !(DEPTH_MIN..=DEPTH_MAX).contains(&self.depth) {
            return Err(Error::invalid(
                "echo phantom depth",
                format!("{DEPTH_MIN}..={DEPTH_MAX} samples"),
                self.depth,
            ));
        }
        if !(LINES_MIN..=LINES_MAX).contains(&self.lines) {
            return Err(Error::invalid(
                "echo phantom lines",
                format!("{LINES_MIN}..={LINES_MAX} scan lines"),
                self.lines,
            ));
        }
        if !(1..=FRAMES_MAX).contains(&self.frames) {
            return Err(Error::invalid(
                "echo phantom frames",
                format!("1..={FRAMES_MAX}"),
                self.frames,
            ));
        }
        if !(self.sector_degrees.is_finite()
            && (SECTOR_MIN_DEG..=SECTOR_MAX_DEG).contains(&self.sector_degrees))
        {
            return Err(Error::invalid(
                "echo phantom sector_degrees",
                format!("{SECTOR_MIN_DEG}..={SECTOR_MAX_DEG} degrees"),
                self.sector_degrees,
            ));
        }
        if !(self.dynamic_range_db.is_finite()
            && (DR_MIN_DB..=DR_MAX_DB).contains(&self.dynamic_range_db))
        {
            return Err(Error::invalid(
                "echo phantom dynamic_range_db",
                format!("{DR_MIN_DB}..={DR_MAX_DB} dB"),
                self.dynamic_range_db,
            ));
        }
        if !(1..=STRIDE_MAX).contains(&self.frame_stride) {
            return Err(Error::invalid(
                "echo phantom frame_stride",
                format!("1..={STRIDE_MAX}"),
                self.frame_stride,
            ));
        }
        Ok(())
    }

    /// The sector the scan lines span.
    pub fn geometry(&self) -> SectorGeometry {
        SectorGeometry {
            sector_degrees: self.sector_degrees,
        }
    }
}

/// Where beam-domain samples lie: line ℓ of L at θ_ℓ = θmax·(2ℓ/(L−1) − 1) with
/// θmax = `sector_degrees`/2, depth sample i of D at r_i = (i + ½)/D of the imaging depth, the
/// probe at the origin.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SectorGeometry {
    /// Full sector angle in degrees.
    pub sector_degrees: f64,
}

impl Default for SectorGeometry {
    fn default() -> Self {
        Self {
            sector_degrees: EchoConfig::default().sector_degrees,
        }
    }
}

impl SectorGeometry {
    /// Half the sector angle, in radians.
    pub fn half_angle(&self) -> f64 {
        0.5 * self.sector_degrees.to_radians()
    }

    /// The width of a sector image `height` pixels high with square pixels: the image spans depth
    /// 0..1 vertically and ±sin θmax laterally.
    pub fn image_width(&self, height: usize) -> usize {
        ((height as f64 * 2.0 * self.half_angle().sin()).round() as usize).max(1)
    }

    fn validate(&self) -> Result<()> {
        if !(self.sector_degrees.is_finite()
            && (SECTOR_MIN_DEG..=SECTOR_MAX_DEG).contains(&self.sector_degrees))
        {
            return Err(Error::invalid(
                "sector angle",
                format!("{SECTOR_MIN_DEG}..={SECTOR_MAX_DEG} degrees"),
                self.sector_degrees,
            ));
        }
        Ok(())
    }
}

/// One generated sequence in the beam domain.
#[derive(Clone, Debug, PartialEq)]
pub struct EchoSequence {
    /// Number of frames.
    pub frames: usize,
    /// Depth samples per line (rows).
    pub depth: usize,
    /// Scan lines (columns).
    pub lines: usize,
    /// Log-compressed B-mode in [−1, 1], `data[(frame * depth + sample) * lines + line]`.
    pub data: Vec<f32>,
}

/// Generates one sequence; every random choice is drawn from `rng` (see the module docs for the order).
pub fn echo_phantom(config: &EchoConfig, rng: &mut SeededRng) -> Result<EchoSequence> {
    config.validate()?;
    let mut sim = Simulation::new(config, rng);
    let (d, l) = (config.depth, config.lines);
    let mut data = Vec::with_capacity(config.frames * d * l);
    let mut reference = 0.0f32;
    for k in 0..config.frames {
        let envelope = sim.frame_envelope(k, rng);
        if k == 0 {
            reference = envelope.iter().copied().fold(0.0f32, f32::max);
        }
        data.extend(log_compress(&envelope, reference, config.dynamic_range_db));
    }
    Ok(EchoSequence {
        frames: config.frames,
        depth: d,
        lines: l,
        data,
    })
}

/// 20·log10(E/E₀) clipped to [−DR, 0] dB and mapped linearly to [−1, 1].
fn log_compress(envelope: &[f32], reference: f32, dynamic_range_db: f64) -> Vec<f32> {
    let reference = if reference > 0.0 && reference.is_finite() {
        reference as f64
    } else {
        1.0
    };
    envelope
        .iter()
        .map(|&e| {
            let db = 20.0 * (e as f64 / reference).log10();
            let x = 1.0 + 2.0 * db / dynamic_range_db;
            // log10(0) = −∞ maps to −1 like any value below the range.
            if x.is_nan() {
                -1.0
            } else {
                x.clamp(-1.0, 1.0) as f32
            }
        })
        .collect()
}

/// Beam-domain frames `[frames, depth, lines]` → sector images `[frames, height, width]` on a
/// Cartesian grid (depth 0..1 top to bottom, lateral ±sin θmax, square pixels for
/// `width = geometry.image_width(height)`), bilinear in (r, θ); pixels outside the sector get −1.
pub fn scan_convert(
    beam: &[f32],
    shape: [usize; 3],
    geometry: &SectorGeometry,
    size: [usize; 2],
) -> Result<Vec<f32>> {
    scan_convert_with_fill(beam, shape, geometry, size, -1.0)
}

/// [`scan_convert`] with `fill` outside the sector.
pub fn scan_convert_with_fill(
    beam: &[f32],
    [frames, depth, lines]: [usize; 3],
    geometry: &SectorGeometry,
    [height, width]: [usize; 2],
    fill: f32,
) -> Result<Vec<f32>> {
    geometry.validate()?;
    if frames == 0 || depth < 2 || lines < 2 {
        return Err(Error::invalid(
            "beam-domain shape for scan conversion",
            "at least 1 frame, 2 depth samples and 2 lines",
            format!("{:?}", [frames, depth, lines]),
        ));
    }
    let expected = frames
        .checked_mul(depth)
        .and_then(|v| v.checked_mul(lines))
        .ok_or_else(|| {
            Error::invalid(
                "beam-domain shape",
                "a size that fits in memory",
                "overflow",
            )
        })?;
    if beam.len() != expected {
        return Err(Error::Shape {
            what: "beam-domain frames for scan conversion".into(),
            expected: vec![frames, depth, lines],
            got: vec![beam.len()],
        });
    }
    if !(1..=SCAN_SIDE_MAX).contains(&height) || !(1..=SCAN_SIDE_MAX).contains(&width) {
        return Err(Error::invalid(
            "sector image size",
            format!("1..={SCAN_SIDE_MAX} pixels a side"),
            format!("{height}×{width}"),
        ));
    }
    frames
        .checked_mul(height)
        .and_then(|v| v.checked_mul(width))
        .filter(|&v| v <= 1 << 31)
        .ok_or_else(|| {
            Error::invalid(
                "sector images",
                "at most 2³¹ values",
                format!("{frames}×{height}×{width}"),
            )
        })?;
    let theta_max = geometry.half_angle();
    let x_half = theta_max.sin();
    // Per pixel: the four beam indices and bilinear weights, or None outside the sector.
    let taps: Vec<Option<([usize; 4], [f32; 4])>> = (0..height * width)
        .map(|p| {
            let (i, j) = (p / width, p % width);
            let z = (i as f64 + 0.5) / height as f64;
            let x = -x_half + (j as f64 + 0.5) * 2.0 * x_half / width as f64;
            let r = x.hypot(z);
            let theta = x.atan2(z);
            let fi = r * depth as f64 - 0.5;
            let fl = (theta / theta_max + 1.0) * 0.5 * (lines - 1) as f64;
            let inside = (-0.5..=depth as f64 - 0.5).contains(&fi)
                && (0.0..=(lines - 1) as f64).contains(&fl);
            if !inside {
                return None;
            }
            // Within half a sample of the first or last depth sample, the edge value is used.
            let fi = fi.clamp(0.0, (depth - 1) as f64);
            let (i0, l0) = ((fi as usize).min(depth - 2), (fl as usize).min(lines - 2));
            let (a, b) = ((fi - i0 as f64) as f32, (fl - l0 as f64) as f32);
            Some((
                [
                    i0 * lines + l0,
                    i0 * lines + l0 + 1,
                    (i0 + 1) * lines + l0,
                    (i0 + 1) * lines + l0 + 1,
                ],
                [(1.0 - a) * (1.0 - b), (1.0 - a) * b, a * (1.0 - b), a * b],
            ))
        })
        .collect();
    let mut out = Vec::with_capacity(frames * height * width);
    for frame in beam.chunks_exact(depth * lines) {
        out.extend(taps.iter().map(|t| match t {
            Some((idx, w)) => idx.iter().zip(w).map(|(&k, &wk)| frame[k] * wk).sum(),
            None => fill,
        }));
    }
    Ok(out)
}

/// Beam-domain frames `[frames, depth, lines]` → sector frames for display: `depth` rows, square
/// pixels (`width = geometry.image_width(depth)`), `fill` outside the sector. Returns the frames
/// and their shape `[frames, depth, width]`.
pub fn sector_frames(
    beam: &[f32],
    shape: [usize; 3],
    geometry: &SectorGeometry,
    fill: f32,
) -> Result<(Vec<f32>, [usize; 3])> {
    let height = shape[1];
    let width = geometry.image_width(height);
    let sector = scan_convert_with_fill(beam, shape, geometry, [height, width], fill)?;
    Ok((sector, [shape[0], height, width]))
}

/// Beam-domain B-mode in [−1, 1] → display sector frames in [0, 1] (`(x + 1)/2`, black outside
/// the sector), as [`sector_frames`].
pub fn sector_display(
    beam: &[f32],
    shape: [usize; 3],
    geometry: &SectorGeometry,
) -> Result<(Vec<f32>, [usize; 3])> {
    let (sector, shape) = sector_frames(beam, shape, geometry, -1.0)?;
    let display = sector
        .into_iter()
        .map(|x| (0.5 * (x + 1.0)).clamp(0.0, 1.0))
        .collect();
    Ok((display, shape))
}

// ---------------------------------------------------------------------------------------------
// Random helpers: one draw per call keeps the order of draws easy to keep stable.

fn uniform(rng: &mut SeededRng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

fn normal(rng: &mut SeededRng) -> f64 {
    StandardNormal.sample(rng)
}

/// 0 below `lo`, 1 above `hi`, C¹ cubic in between.
fn smoothstep(lo: f64, hi: f64, x: f64) -> f64 {
    let t = ((x - lo) / (hi - lo)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

// ---------------------------------------------------------------------------------------------
// Scene.

/// Scatterer classes; the discriminant indexes the amplitude and texture tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tissue {
    Background = 0,
    ChestWall,
    Myocardium,
    AtrialWall,
    Pericardium,
    Annulus,
    Valve,
    Blood,
}

const N_TISSUES: usize = 8;

/// Mean scatterer amplitude of each class relative to myocardium (blood ≈ −36 dB).
const LEVELS: [f64; N_TISSUES] = [0.45, 1.3, 1.0, 0.9, 2.4, 2.0, 1.5, 0.015];

/// Relative amplitude of the low-frequency texture of each class.
const TEXTURE: [f64; N_TISSUES] = [0.4, 0.35, 0.2, 0.2, 0.25, 0.1, 0.1, 0.0];

/// An ellipse with axes along u and v.
#[derive(Clone, Debug)]
struct AxisEllipse {
    cu: f64,
    cv: f64,
    au: f64,
    av: f64,
}

impl AxisEllipse {
    fn grown(&self, by: f64) -> Self {
        Self {
            au: self.au + by,
            av: self.av + by,
            ..*self
        }
    }

    #[inline]
    fn contains(&self, u: f64, v: f64) -> bool {
        let (p, q) = ((u - self.cu) / self.au, (v - self.cv) / self.av);
        p * p + q * q < 1.0
    }

    /// Squared half-width at `v` (0 outside the ellipse's extent).
    #[inline]
    fn half_width2(&self, v: f64) -> f64 {
        let q = (v - self.cv) / self.av;
        (self.au * self.au * (1.0 - q * q)).max(0.0)
    }
}

/// `sqrt(1 − ((top − v)/(top − apex))²)` on `[apex, top]`: the bullet profile of a ventricle.
#[inline]
fn profile2(v: f64, apex: f64, top: f64) -> f64 {
    if v <= apex {
        return 0.0;
    }
    if v >= top {
        return 1.0;
    }
    let q = (top - v) / (top - apex);
    1.0 - q * q
}

/// The static anatomy in the heart frame (end-diastole), plus how it deforms.
#[derive(Clone, Debug)]
struct Heart {
    /// Epicardial apex in the image plane and the long-axis direction.
    apex_x: f64,
    apex_z: f64,
    cos: f64,
    sin: f64,
    /// Apex-to-annulus length (the AV plane is v = len).
    len: f64,
    /// LV cavity: half-width at the base and endocardial apex; lateral wall; septum.
    lv_half: f64,
    lv_apex: f64,
    lv_wall: f64,
    septum: f64,
    /// RV cavity: centre line, half-width at the base, apex; free wall.
    rv_centre: f64,
    rv_half: f64,
    rv_apex: f64,
    rv_wall: f64,
    la: AxisEllipse,
    ra: AxisEllipse,
    atrial_wall: f64,
    pericardium: f64,
    annulus_radius: f64,
    /// Chest wall depth (image z).
    chest_wall: f64,
    /// Valve hinge points (u, v): mitral septal, mitral lateral, tricuspid septal, tricuspid lateral.
    hinges: [(f64, f64); 4],
    /// Contraction: AV-plane excursion, LV and RV radial shortening, atrial radial stretch.
    long_shortening: f64,
    lv_shortening: f64,
    rv_shortening: f64,
    atrial_stretch: f64,
    /// Lateral extent of the heart (u) and the atrial roof (v), for the motion tapers.
    u_lo: f64,
    u_hi: f64,
    roof: f64,
}

impl Heart {
    fn draw(rng: &mut SeededRng) -> Self {
        let apex_x = uniform(rng, -0.03, 0.03);
        let apex_z = uniform(rng, 0.10, 0.14);
        let tilt = uniform(rng, 0.04, 0.20);
        let len = uniform(rng, 0.42, 0.50);
        let lv_half = uniform(rng, 0.11, 0.135);
        let lv_apex = uniform(rng, 0.05, 0.07);
        let lv_wall = uniform(rng, 0.05, 0.065);
        let septum = uniform(rng, 0.05, 0.065);
        let rv_half = uniform(rng, 0.08, 0.10);
        let rv_apex = len * uniform(rng, 0.25, 0.38);
        let rv_wall = uniform(rng, 0.03, 0.04);
        let interatrial = uniform(rng, 0.025, 0.035);
        let la_half = lv_half * uniform(rng, 0.85, 0.95);
        let la_height = uniform(rng, 0.20, 0.26);
        let ra_half = uniform(rng, 0.085, 0.105);
        let ra_height = uniform(rng, 0.18, 0.24);
        let atrial_wall = uniform(rng, 0.02, 0.03);
        let pericardium = uniform(rng, 0.015, 0.025);
        let chest_wall = uniform(rng, 0.05, 0.08);
        let long_shortening = uniform(rng, 0.05, 0.08);
        let lv_shortening = uniform(rng, 0.25, 0.38);
        let rv_shortening = uniform(rng, 0.18, 0.28);
        let atrial_stretch = uniform(rng, 0.08, 0.15);

        let rv_centre = -lv_half - septum - rv_half;
        // Atria: ellipses reaching a little above the AV plane (into the ventricles), so their
        // cross-section at v = len is the valve orifice.
        let la = AxisEllipse {
            cu: -lv_half + 0.5 * interatrial + la_half,
            cv: len + 0.42 * la_height,
            au: la_half,
            av: 0.58 * la_height,
        };
        let ra = AxisEllipse {
            cu: -lv_half - 0.5 * septum - ra_half,
            cv: len + 0.42 * ra_height,
            au: ra_half,
            av: 0.58 * ra_height,
        };
        let la_orifice = la.half_width2(len).sqrt();
        let ra_orifice = ra.half_width2(len).sqrt();
        let hinges = [
            (la.cu - la_orifice, len),
            (la.cu + la_orifice, len),
            (ra.cu + ra_orifice, len),
            (ra.cu - ra_orifice, len),
        ];
        let u_lo = (rv_centre - rv_half - rv_wall).min(ra.cu - ra.au - atrial_wall) - pericardium;
        let u_hi = (lv_half + lv_wall).max(la.cu + la.au + atrial_wall) + pericardium;
        let roof = (la.cv + la.av).max(ra.cv + ra.av) + atrial_wall + pericardium;
        Self {
            apex_x,
            apex_z,
            cos: tilt.cos(),
            sin: tilt.sin(),
            len,
            lv_half,
            lv_apex,
            lv_wall,
            septum,
            rv_centre,
            rv_half,
            rv_apex,
            rv_wall,
            la,
            ra,
            atrial_wall,
            pericardium,
            annulus_radius: 0.014,
            chest_wall,
            hinges,
            long_shortening,
            lv_shortening,
            rv_shortening,
            atrial_stretch,
            u_lo,
            u_hi,
            roof,
        }
    }

    /// Image (x, z) → heart frame (u, v).
    #[inline]
    fn to_heart(&self, x: f64, z: f64) -> (f64, f64) {
        let (dx, dz) = (x - self.apex_x, z - self.apex_z);
        (self.cos * dx - self.sin * dz, self.sin * dx + self.cos * dz)
    }

    /// Heart frame (u, v) → image (x, z).
    #[inline]
    fn to_image(&self, u: f64, v: f64) -> (f64, f64) {
        (
            self.apex_x + self.cos * u + self.sin * v,
            self.apex_z - self.sin * u + self.cos * v,
        )
    }

    #[inline]
    fn lv_half2(&self, v: f64) -> f64 {
        self.lv_half * self.lv_half * profile2(v, self.lv_apex, self.len)
    }

    #[inline]
    fn rv_half2(&self, v: f64) -> f64 {
        self.rv_half * self.rv_half * profile2(v, self.rv_apex, self.len)
    }

    fn is_blood(&self, u: f64, v: f64) -> bool {
        if v <= self.len {
            if v > self.lv_apex && u * u < self.lv_half2(v) {
                return true;
            }
            let s = u - self.rv_centre;
            if v > self.rv_apex && s * s < self.rv_half2(v) {
                return true;
            }
        }
        self.la.contains(u, v) || self.ra.contains(u, v)
    }

    /// Inside the ventricular myocardium outline grown by `grow` (0 = the epicardium).
    fn in_ventricles(&self, u: f64, v: f64, grow: f64) -> bool {
        if v < -grow || v > self.len + grow {
            return false;
        }
        let q = profile2(v, -grow, self.len).sqrt();
        // LV outline: asymmetric (lateral wall right, septum left).
        if u < (self.lv_half + self.lv_wall + grow) * q
            && u > -(self.lv_half + self.septum + grow) * q
        {
            return true;
        }
        // RV outline; its right side reaches into the LV outline, where it is hidden.
        let apex = self.rv_apex - 1.5 * self.rv_wall - grow;
        let q = profile2(v, apex, self.len).sqrt();
        let s = u - self.rv_centre;
        s > -(self.rv_half + self.rv_wall + grow) * q
            && s < (self.rv_half + self.septum + 0.5 * self.lv_half + grow) * q
    }

    fn in_atria(&self, u: f64, v: f64, grow: f64) -> bool {
        v > self.len - grow
            && (self.la.grown(self.atrial_wall + grow).contains(u, v)
                || self.ra.grown(self.atrial_wall + grow).contains(u, v))
    }

    /// The class at a reference (end-diastolic) image point.
    fn label(&self, x: f64, z: f64) -> Tissue {
        let (u, v) = self.to_heart(x, z);
        if self.is_blood(u, v) {
            return Tissue::Blood;
        }
        let r2 = self.annulus_radius * self.annulus_radius;
        if self
            .hinges
            .iter()
            .any(|&(hu, hv)| (u - hu).powi(2) + (v - hv).powi(2) < r2)
        {
            return Tissue::Annulus;
        }
        if self.in_ventricles(u, v, 0.0) {
            return Tissue::Myocardium;
        }
        if self.in_atria(u, v, 0.0) {
            return Tissue::AtrialWall;
        }
        if self.in_ventricles(u, v, self.pericardium) || self.in_atria(u, v, self.pericardium) {
            return Tissue::Pericardium;
        }
        if z < self.chest_wall {
            return Tissue::ChestWall;
        }
        Tissue::Background
    }

    /// How much of the heart's motion reaches lateral position u: 1 across the heart, fading to
    /// 0 over 0.2 beyond its sides.
    #[inline]
    fn side_taper(&self, u: f64) -> f64 {
        (1.0 - smoothstep(self.u_hi, self.u_hi + 0.2, u)
            - smoothstep(-self.u_lo, -self.u_lo + 0.2, -u))
        .max(0.0)
    }

    /// False where [`deform`](Self::deform) is the identity at every contraction.
    fn moves(&self, u: f64, v: f64) -> bool {
        v > 0.0 && v < self.roof + 0.1 && self.side_taper(u) > 0.0
    }

    /// Heart-frame position at contraction c ∈ [0, 1] of the reference point (u, v).
    fn deform(&self, u: f64, v: f64, c: f64) -> (f64, f64) {
        let side = self.side_taper(u);
        if c == 0.0 || side == 0.0 {
            return (u, v);
        }
        // Lateral: each cavity contracts (atria: stretch) about its centre line; outside a cavity
        // the map s'² = s² − a²(1 − (1−e)²) keeps the wall's area, so the wall thickens.
        let radial = |s: f64, a2: f64, e: f64| -> f64 {
            if a2 <= 0.0 {
                return 0.0;
            }
            if s * s <= a2 {
                -e * s
            } else {
                let k = 1.0 - (1.0 - e) * (1.0 - e);
                s.signum() * (s * s - a2 * k).sqrt() - s
            }
        };
        let v_cap = v.min(self.len);
        let ventricles = radial(u, self.lv_half2(v_cap), c * self.lv_shortening)
            + radial(
                u - self.rv_centre,
                self.rv_half2(v_cap),
                c * self.rv_shortening,
            );
        let atria = radial(
            u - self.la.cu,
            self.la.half_width2(v),
            -c * self.atrial_stretch,
        ) + radial(
            u - self.ra.cu,
            self.ra.half_width2(v),
            -c * self.atrial_stretch,
        );
        let w = 1.0 - smoothstep(self.len - 0.03, self.len + 0.03, v);
        let du = side * (w * ventricles + (1.0 - w) * atria);
        // Longitudinal: the AV plane moves towards the fixed apex; the atria lengthen; the motion
        // fades out beyond the atrial roof and to the sides of the heart.
        let g = if v <= 0.0 {
            0.0
        } else if v <= self.len {
            v / self.len
        } else {
            (1.0 - (v - self.len) / (self.roof + 0.1 - self.len)).max(0.0)
        };
        let dv = -c * self.long_shortening * g * side;
        (u + du, v + dv)
    }
}

/// Cardiac timing: fast contraction, slower relaxation, then diastasis; valves open in filling.
#[derive(Clone, Debug)]
struct Beat {
    cycles_per_frame: f64,
    phase0: f64,
    systole: f64,
    relax: f64,
}

impl Beat {
    fn phase(&self, t: f64) -> f64 {
        (self.cycles_per_frame * t + self.phase0).rem_euclid(1.0)
    }

    /// Contraction in [0, 1] at phase p (0 = end-diastole).
    fn contraction(&self, p: f64) -> f64 {
        if p < self.systole {
            0.5 - 0.5 * (PI * p / self.systole).cos()
        } else if p < self.systole + self.relax {
            0.5 + 0.5 * (PI * (p - self.systole) / self.relax).cos()
        } else {
            0.0
        }
    }

    /// Atrioventricular valve opening in [0, 1]: shut in systole and isovolumic relaxation, wide
    /// in early filling (E), half open in diastasis, open again at the atrial kick (A), shut at p = 1.
    fn valve_opening(&self, p: f64) -> f64 {
        let open = self.systole + 0.05;
        let e_peak = open + 0.08;
        let ease = |t: f64| 0.5 - 0.5 * (PI * t.clamp(0.0, 1.0)).cos();
        if p < open {
            0.0
        } else if p < e_peak {
            ease((p - open) / 0.08)
        } else if p < 0.82 {
            1.0 - 0.55 * ease((p - e_peak) / (0.82 - e_peak))
        } else if p < 0.9 {
            0.45 + 0.4 * ease((p - 0.82) / 0.08)
        } else {
            0.85 * (1.0 - ease((p - 0.9) / 0.1))
        }
    }
}

/// Slow rigid probe motion: rocking about the probe and an in-plane shift.
#[derive(Clone, Debug)]
struct Probe {
    cycles_per_frame: f64,
    phase0: f64,
    rock: f64,
    shift_x: f64,
    shift_z: f64,
    lag: f64,
}

impl Probe {
    /// (cos α, sin α, dx, dz) at phantom time t.
    fn pose(&self, t: f64) -> (f64, f64, f64, f64) {
        let a = TAU * (self.cycles_per_frame * t + self.phase0);
        let alpha = self.rock * a.sin();
        (
            alpha.cos(),
            alpha.sin(),
            self.shift_x * (a + self.lag).sin(),
            self.shift_z * (a + 2.0 * self.lag).sin(),
        )
    }
}

/// Multiplicative low-frequency amplitude texture, `1 + Σ waves`, bounded by ±`amp`.
#[derive(Clone, Debug)]
struct Texture {
    waves: [(f64, f64, f64, f64); 3],
}

impl Texture {
    fn draw(rng: &mut SeededRng, amp: f64) -> Self {
        let mut waves = [(0.0, 0.0, 0.0, 0.0); 3];
        for w in &mut waves {
            let k = uniform(rng, 2.0 * PI, 6.0 * PI);
            let dir = uniform(rng, 0.0, TAU);
            let phase = uniform(rng, 0.0, TAU);
            *w = (k * dir.cos(), k * dir.sin(), phase, amp / 3.0);
        }
        Self { waves }
    }

    fn factor(&self, x: f64, z: f64) -> f64 {
        1.0 + self
            .waves
            .iter()
            .map(|&(kx, kz, phase, a)| a * (kx * x + kz * z + phase).cos())
            .sum::<f64>()
    }
}

/// A valve leaflet: hinged at an annulus point, a thin rigid plate rotating with the opening.
#[derive(Clone, Debug)]
struct Leaflet {
    hinge: (f64, f64),
    /// +1 if it points towards +u when closed.
    side: f64,
    length: f64,
    closed: f64,
    open: f64,
}

const LEAFLET_THICKNESS: f64 = 0.012;

/// Everything random about one sequence that is drawn before the scatterers.
#[derive(Clone, Debug)]
struct Scene {
    heart: Heart,
    beat: Beat,
    probe: Probe,
    levels: [f64; N_TISSUES],
    textures: Vec<Texture>,
    leaflets: [Leaflet; 4],
}

impl Scene {
    fn draw(rng: &mut SeededRng) -> Self {
        let heart = Heart::draw(rng);
        let cycles_per_frame = uniform(rng, 1.0 / 40.0, 1.0 / 20.0);
        let beat = Beat {
            cycles_per_frame,
            phase0: uniform(rng, 0.0, 1.0),
            systole: uniform(rng, 0.30, 0.38),
            relax: uniform(rng, 0.35, 0.45),
        };
        // Drawn even when probe motion is off, so the flag changes nothing else.
        let probe = Probe {
            cycles_per_frame: cycles_per_frame / uniform(rng, 3.0, 5.0),
            phase0: uniform(rng, 0.0, 1.0),
            rock: uniform(rng, 0.005, 0.02),
            shift_x: uniform(rng, -0.012, 0.012),
            shift_z: uniform(rng, -0.008, 0.008),
            lag: uniform(rng, 0.0, TAU),
        };
        let mut levels = LEVELS;
        for l in levels.iter_mut() {
            *l *= uniform(rng, 0.85, 1.15);
        }
        let textures = TEXTURE.iter().map(|&a| Texture::draw(rng, a)).collect();
        let closed = uniform(rng, 0.05, 0.25);
        let open = uniform(rng, 1.2, 1.45);
        let orifice = |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).abs();
        let h = heart.hinges;
        let (mitral, tricuspid) = (orifice(h[0], h[1]), orifice(h[2], h[3]));
        let leaflet = |hinge, side, length| Leaflet {
            hinge,
            side,
            length,
            closed,
            open,
        };
        let leaflets = [
            leaflet(h[0], 1.0, 0.58 * mitral),
            leaflet(h[1], -1.0, 0.47 * mitral),
            leaflet(h[2], -1.0, 0.55 * tricuspid),
            leaflet(h[3], 1.0, 0.50 * tricuspid),
        ];
        Self {
            heart,
            beat,
            probe,
            levels,
            textures,
            leaflets,
        }
    }

    fn amplitude(&self, tissue: Tissue, x: f64, z: f64) -> f32 {
        let t = tissue as usize;
        (self.levels[t] * self.textures[t].factor(x, z)) as f32
    }
}

/// A tissue scatterer: reference position (heart frame, or leaflet frame for valves), amplitude,
/// radial jitter (depth samples) and which leaflet carries it, if any.
#[derive(Clone, Debug)]
struct Scatterer {
    u: f32,
    v: f32,
    amp: f32,
    jitter: f32,
    leaflet: u8,
    /// Its class (read by the tests' tissue masks).
    #[cfg_attr(not(test), allow(dead_code))]
    tissue: Tissue,
    /// False when the heart's deformation never moves it (only the probe does).
    moving: bool,
}

const NO_LEAFLET: u8 = u8::MAX;

/// The imaging chain: sector sampling, pulse, beam, gain and noise.
#[derive(Clone, Debug)]
struct Imager {
    depth: usize,
    lines: usize,
    theta_max: f64,
    /// Fine bins of padding before depth sample 0 and after the last.
    pad: usize,
    /// Pulse envelope on fine-bin offsets −half..=half.
    kernel: Vec<f32>,
    /// TGC gain per depth sample.
    gain: Vec<f32>,
    /// Lateral beam per fine depth bin.
    beam: Vec<BeamBin>,
    /// Scatterers per unit area (imaging depth²) that give [`SCATTERERS_PER_CELL`].
    density: f64,
    noise_sigma: f64,
}

impl Imager {
    fn new(depth: usize, lines: usize, geometry: &SectorGeometry) -> Self {
        let theta_max = geometry.half_angle();
        let dtheta = 2.0 * theta_max / (lines - 1) as f64;
        let half = (CUTOFF_SIGMAS * PULSE_SIGMA * FINE as f64).ceil() as usize;
        let kernel = (0..=2 * half)
            .map(|k| {
                let d = (k as f64 - half as f64) / (FINE as f64 * PULSE_SIGMA);
                (-0.5 * d * d).exp() as f32
            })
            .collect();
        let pad = half + FINE;
        // Expected intensity of unit scatterers at density ρ: ρ·r·(√π σ_r)(√π σ_θ) with
        // σ_r = PULSE_SIGMA/depth and σ_θ = σ(r)·dtheta (Gaussian integrals of the squared
        // envelopes); ρ is set for SCATTERERS_PER_CELL at CELL_DEPTH, the gain divides it out.
        let sigma_r = PULSE_SIGMA / depth as f64;
        let cell = |r: f64| PI * sigma_r * beam_sigma(r) * dtheta * r;
        let density = SCATTERERS_PER_CELL / (PI * sigma_r * BEAM_SIGMA_FOCUS * dtheta * CELL_DEPTH);
        let gain = (0..depth)
            .map(|i| {
                let r = ((i as f64 + 0.5) / depth as f64).max(GAIN_MIN_DEPTH);
                (1.0 / (density * cell(r)).sqrt()) as f32
            })
            .collect();
        let fine_len = depth * FINE + 2 * pad;
        let beam = (0..fine_len)
            .map(|b| {
                let rs = (b as f64 - pad as f64) / FINE as f64;
                let sigma = beam_sigma(((rs + 0.5) / depth as f64).max(0.0));
                let a = -0.5 / (sigma * sigma);
                BeamBin {
                    reach: CUTOFF_SIGMAS * sigma,
                    a: a as f32,
                    step: (2.0 * a).exp() as f32,
                }
            })
            .collect();
        Self {
            depth,
            lines,
            theta_max,
            pad,
            kernel,
            gain,
            beam,
            density,
            noise_sigma: 10f64.powf(NOISE_POWER_DB / 20.0),
        }
    }

    fn fine_len(&self) -> usize {
        self.depth * FINE + 2 * self.pad
    }

    /// Adds one scatterer at image point (x, z) with amplitude `amp` to the fine grid
    /// `[lines, fine_len]`; `jitter` (depth samples) displaces it along the beam.
    #[inline]
    fn deposit(&self, grid: &mut [Complex32], x: f64, z: f64, jitter: f64, amp: f32) {
        let r = (x * x + z * z).sqrt();
        // Depth in samples (sample i at i), and line coordinate.
        let rs = r * self.depth as f64 - 0.5 + jitter;
        let bin = (rs * FINE as f64).round() + self.pad as f64;
        let half = (self.kernel.len() / 2) as f64;
        if bin < half || bin >= (self.fine_len() as f64 - half) {
            return;
        }
        let bin = bin as usize;
        let beam = self.beam[bin];
        let fl = (x.atan2(z) / self.theta_max + 1.0) * 0.5 * (self.lines - 1) as f64;
        let lo = (fl - beam.reach).ceil().max(0.0);
        let hi = (fl + beam.reach).floor().min((self.lines - 1) as f64);
        if lo > hi {
            return;
        }
        let (s, c) = (2.0 * TAU * rs / WAVELENGTH).sin_cos();
        let value = Complex32::new(amp * c as f32, amp * s as f32);
        // Gaussian weights exp(a·d²) at d = d0, d0 + 1, …: w ← w·q, q ← q·exp(2a).
        let d0 = (lo - fl) as f32;
        let mut w = (beam.a * d0 * d0).exp();
        let mut q = (beam.a * (2.0 * d0 + 1.0)).exp();
        let fine = self.fine_len();
        for l in lo as usize..=hi as usize {
            grid[l * fine + bin] += value * w;
            w *= q;
            q *= beam.step;
        }
    }

    /// Pulse convolution, gain and (with `rng`) noise: the IQ frame `[depth, lines]`.
    fn iq(&self, grid: &[Complex32], rng: Option<&mut SeededRng>) -> Vec<Complex32> {
        let fine = self.fine_len();
        let half = self.kernel.len() / 2;
        let mut iq = vec![Complex32::default(); self.depth * self.lines];
        for l in 0..self.lines {
            let line = &grid[l * fine..(l + 1) * fine];
            for i in 0..self.depth {
                let centre = self.pad + i * FINE;
                let window = &line[centre - half..=centre + half];
                let mut acc = Complex32::default();
                for (v, &k) in window.iter().zip(&self.kernel) {
                    acc += v * k;
                }
                iq[i * self.lines + l] = acc * self.gain[i];
            }
        }
        if let Some(rng) = rng {
            let s = self.noise_sigma / 2f64.sqrt();
            for v in iq.iter_mut() {
                let (a, b) = (normal(rng), normal(rng));
                *v += Complex32::new((s * a) as f32, (s * b) as f32);
            }
        }
        iq
    }

    /// Reference-frame box and sector test for drawing scatterers.
    fn bounds(&self) -> (f64, f64, f64, f64) {
        let reach = 1.0 + MARGIN_DEPTH;
        let angle = (self.theta_max + MARGIN_ANGLE).min(0.5 * PI);
        let x = reach * angle.sin();
        (-x, x, 0.0, reach)
    }

    fn in_margin(&self, x: f64, z: f64) -> bool {
        x.hypot(z) <= 1.0 + MARGIN_DEPTH && x.atan2(z).abs() <= self.theta_max + MARGIN_ANGLE
    }
}

/// The lateral beam at one fine depth bin: weights exp(a·d²) for d line spacings, cut at `reach`.
#[derive(Clone, Copy, Debug)]
struct BeamBin {
    reach: f64,
    a: f32,
    /// exp(2a), the ratio of successive weight ratios.
    step: f32,
}

/// Two-way lateral beam standard deviation (line spacings) at depth fraction r.
fn beam_sigma(r: f64) -> f64 {
    let q = (r - FOCUS_DEPTH) / BEAM_RANGE;
    BEAM_SIGMA_FOCUS * (1.0 + q * q).sqrt()
}

/// Where everything is in one frame.
#[derive(Clone, Debug)]
struct FramePose {
    contraction: f64,
    /// (cos α, sin α, dx, dz) of the probe motion.
    probe: (f64, f64, f64, f64),
    /// Per leaflet: hinge (u, v) and unit direction (du, dv) in the heart frame.
    leaflets: [((f64, f64), (f64, f64)); 4],
}

/// The state of one sequence: scene, tissue scatterers and the imaging chain.
struct Simulation {
    scene: Scene,
    imager: Imager,
    tissue: Vec<Scatterer>,
    stride: usize,
    probe_motion: bool,
    /// The heart-frame box the blood is drawn in.
    blood_box: (f64, f64, f64, f64),
    blood_count: usize,
}

impl Simulation {
    fn new(config: &EchoConfig, rng: &mut SeededRng) -> Self {
        let scene = Scene::draw(rng);
        let imager = Imager::new(config.depth, config.lines, &config.geometry());
        let heart = &scene.heart;
        let (x0, x1, z0, z1) = imager.bounds();
        let count = (imager.density * (x1 - x0) * (z1 - z0)).round() as usize;
        let jitter_sigma = JITTER_SIGMA * WAVELENGTH;
        let mut tissue = Vec::with_capacity(count);
        for _ in 0..count {
            let x = uniform(rng, x0, x1);
            let z = uniform(rng, z0, z1);
            if !imager.in_margin(x, z) {
                continue;
            }
            let label = heart.label(x, z);
            if label == Tissue::Blood {
                continue;
            }
            let (u, v) = heart.to_heart(x, z);
            tissue.push(Scatterer {
                u: u as f32,
                v: v as f32,
                amp: scene.amplitude(label, x, z),
                jitter: (jitter_sigma * normal(rng)) as f32,
                leaflet: NO_LEAFLET,
                tissue: label,
                moving: heart.moves(u, v),
            });
        }
        for (k, leaflet) in scene.leaflets.iter().enumerate() {
            let n = (imager.density * leaflet.length * LEAFLET_THICKNESS).round() as usize;
            for _ in 0..n {
                let along = uniform(rng, 0.0, leaflet.length);
                let across = uniform(rng, -0.5, 0.5) * LEAFLET_THICKNESS;
                let (x, z) = heart.to_image(leaflet.hinge.0, leaflet.hinge.1);
                tissue.push(Scatterer {
                    u: along as f32,
                    v: across as f32,
                    amp: scene.amplitude(Tissue::Valve, x, z),
                    jitter: (jitter_sigma * normal(rng)) as f32,
                    leaflet: k as u8,
                    tissue: Tissue::Valve,
                    moving: true,
                });
            }
        }
        let blood_box = (
            (heart.ra.cu - heart.ra.au).min(heart.rv_centre - heart.rv_half),
            (heart.la.cu + heart.la.au).max(heart.lv_half),
            heart.lv_apex.min(heart.rv_apex),
            (heart.la.cv + heart.la.av).max(heart.ra.cv + heart.ra.av),
        );
        let area = (blood_box.1 - blood_box.0) * (blood_box.3 - blood_box.2);
        let blood_count = (BLOOD_DENSITY * imager.density * area).round() as usize;
        Self {
            scene,
            imager,
            tissue,
            stride: config.frame_stride,
            probe_motion: config.probe_motion,
            blood_box,
            blood_count,
        }
    }

    /// Geometry of frame k (phantom time k·stride).
    fn pose(&self, k: usize) -> FramePose {
        let t = (k * self.stride) as f64;
        let heart = &self.scene.heart;
        let p = self.scene.beat.phase(t);
        let contraction = self.scene.beat.contraction(p);
        let opening = self.scene.beat.valve_opening(p);
        let probe = if self.probe_motion {
            self.scene.probe.pose(t)
        } else {
            (1.0, 0.0, 0.0, 0.0)
        };
        // Leaflets: hinge carried by the deformation, direction from the opening.
        let mut leaflets = [((0.0, 0.0), (0.0, 0.0)); 4];
        for (pose, lf) in leaflets.iter_mut().zip(&self.scene.leaflets) {
            let hinge = heart.deform(lf.hinge.0, lf.hinge.1, contraction);
            let psi = lf.closed + opening * (lf.open - lf.closed);
            *pose = (hinge, (lf.side * psi.cos(), -psi.sin()));
        }
        FramePose {
            contraction,
            probe,
            leaflets,
        }
    }

    /// Image position (probe frame) of a heart-frame point at a pose.
    #[inline]
    fn place(&self, u: f64, v: f64, pose: &FramePose) -> (f64, f64) {
        let (x, z) = self.scene.heart.to_image(u, v);
        let (cos_a, sin_a, sx, sz) = pose.probe;
        (cos_a * x + sin_a * z + sx, -sin_a * x + cos_a * z + sz)
    }

    /// Image position of a tissue scatterer at a pose (before its radial jitter).
    #[inline]
    fn position(&self, s: &Scatterer, pose: &FramePose) -> (f64, f64) {
        let (u, v) = if !s.moving {
            (s.u as f64, s.v as f64)
        } else if s.leaflet == NO_LEAFLET {
            self.scene
                .heart
                .deform(s.u as f64, s.v as f64, pose.contraction)
        } else {
            let (hinge, (du, dv)) = pose.leaflets[s.leaflet as usize];
            let (a, b) = (s.u as f64, s.v as f64);
            // Along the leaflet, then across it (the perpendicular (−dv, du)).
            (hinge.0 + a * du - b * dv, hinge.1 + a * dv + b * du)
        };
        self.place(u, v, pose)
    }

    /// The linear envelope |IQ| of frame k, `[depth, lines]`. Frames must be rendered in order
    /// 0, 1, 2, … with the same `rng` (the jitter evolves from frame to frame).
    fn frame_envelope(&mut self, k: usize, rng: &mut SeededRng) -> Vec<f32> {
        // Jitter: an Ornstein–Uhlenbeck step over `stride` frames of phantom time.
        if k > 0 {
            let rho = JITTER_CORRELATION.powi(self.stride as i32);
            let step = JITTER_SIGMA * WAVELENGTH * (1.0 - rho * rho).sqrt();
            for s in self.tissue.iter_mut() {
                s.jitter = (rho * s.jitter as f64 + step * normal(rng)) as f32;
            }
        }
        let pose = self.pose(k);
        let heart = &self.scene.heart;
        let imager = &self.imager;
        let mut grid = vec![Complex32::default(); imager.lines * imager.fine_len()];
        for s in &self.tissue {
            let (x, z) = self.position(s, &pose);
            imager.deposit(&mut grid, x, z, s.jitter as f64, s.amp);
        }
        // Blood: fresh scatterers every frame (flow decorrelates it completely).
        let (u0, u1, v0, v1) = self.blood_box;
        let amp = self.scene.amplitude(Tissue::Blood, 0.0, 0.0);
        for _ in 0..self.blood_count {
            let u = uniform(rng, u0, u1);
            let v = uniform(rng, v0, v1);
            if heart.is_blood(u, v) {
                let (u, v) = heart.deform(u, v, pose.contraction);
                let (x, z) = self.place(u, v, &pose);
                imager.deposit(&mut grid, x, z, 0.0, amp);
            }
        }
        imager
            .iq(&grid, Some(rng))
            .iter()
            .map(|v| v.norm())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::seeded;
    use rand::RngCore;

    fn config(frames: usize) -> EchoConfig {
        EchoConfig {
            frames,
            ..EchoConfig::default()
        }
    }

    #[test]
    fn same_seed_same_data_different_seed_different_data() {
        let cfg = config(4);
        let a = echo_phantom(&cfg, &mut seeded(7)).unwrap();
        let b = echo_phantom(&cfg, &mut seeded(7)).unwrap();
        let c = echo_phantom(&cfg, &mut seeded(8)).unwrap();
        assert_eq!(
            (a.frames, a.depth, a.lines, a.data.len()),
            (4, 64, 64, 4 * 64 * 64)
        );
        assert!(a
            .data
            .iter()
            .zip(&b.data)
            .all(|(x, y)| x.to_bits() == y.to_bits()));
        let differing = a.data.iter().zip(&c.data).filter(|(x, y)| x != y).count();
        assert!(
            differing > a.data.len() / 2,
            "only {differing} values differ"
        );
    }

    #[test]
    fn values_lie_in_range_with_the_first_frame_peak_at_zero_db() {
        for seed in 0..3 {
            let cfg = EchoConfig {
                depth: 48,
                lines: 40,
                ..config(6)
            };
            let seq = echo_phantom(&cfg, &mut seeded(seed)).unwrap();
            assert!(seq
                .data
                .iter()
                .all(|x| x.is_finite() && (-1.0..=1.0).contains(x)));
            let frame0 = &seq.data[..48 * 40];
            assert_eq!(frame0.iter().copied().fold(f32::MIN, f32::max), 1.0);
            // The noise floor (−50 dB re tissue, tissue ≈ −15 dB re peak) lies below the range.
            assert!(frame0.iter().any(|&x| x == -1.0));
        }
    }

    #[test]
    fn dynamic_range_maps_decibels_linearly_and_changes_no_draw() {
        let wide = config(3);
        let narrow = EchoConfig {
            dynamic_range_db: 40.0,
            ..wide.clone()
        };
        let (mut r60, mut r40) = (seeded(3), seeded(3));
        let a = echo_phantom(&wide, &mut r60).unwrap();
        let b = echo_phantom(&narrow, &mut r40).unwrap();
        assert_eq!(r60.next_u64(), r40.next_u64(), "RNG consumption differs");
        // x = 1 + 2·dB/DR, so dB = (x − 1)·DR/2 is the same level under both ranges.
        let mut compared = 0;
        for (&x60, &x40) in a.data.iter().zip(&b.data) {
            let db = (x60 as f64 - 1.0) * 30.0;
            if db > -60.0 + 1e-3 {
                let expected = (1.0 + 2.0 * db / 40.0).max(-1.0);
                assert!(
                    (x40 as f64 - expected).abs() < 1e-4,
                    "{x60} → {x40}, expected {expected}"
                );
                compared += 1;
            } else {
                assert_eq!(x40, -1.0);
            }
        }
        assert!(compared > a.data.len() / 2);
    }

    #[test]
    fn frame_stride_and_probe_flag_change_no_draw() {
        let base = config(3);
        let mut rngs: Vec<SeededRng> = (0..3).map(|_| seeded(5)).collect();
        let a = echo_phantom(&base, &mut rngs[0]).unwrap();
        let fast = EchoConfig {
            frame_stride: 3,
            ..base.clone()
        };
        let b = echo_phantom(&fast, &mut rngs[1]).unwrap();
        let still = EchoConfig {
            probe_motion: false,
            ..base.clone()
        };
        let c = echo_phantom(&still, &mut rngs[2]).unwrap();
        let n = 64 * 64;
        // Frame 0 is phantom time 0 under any stride.
        assert_eq!(&a.data[..n], &b.data[..n]);
        assert_ne!(&a.data[n..], &b.data[n..]);
        assert_ne!(a.data, c.data);
        let next: Vec<u64> = rngs.iter_mut().map(|r| r.next_u64()).collect();
        assert!(
            next.iter().all(|&v| v == next[0]),
            "RNG consumption differs"
        );
    }

    /// Speckle through the real imaging chain on a homogeneous medium of unit scatterers.
    fn homogeneous_envelope(seed: u64) -> (Imager, Vec<f32>) {
        let imager = Imager::new(64, 64, &SectorGeometry::default());
        let mut rng = seeded(seed);
        let (x0, x1, z0, z1) = imager.bounds();
        let count = (imager.density * (x1 - x0) * (z1 - z0)).round() as usize;
        let mut grid = vec![Complex32::default(); imager.lines * imager.fine_len()];
        for _ in 0..count {
            let x = uniform(&mut rng, x0, x1);
            let z = uniform(&mut rng, z0, z1);
            imager.deposit(&mut grid, x, z, 0.0, 1.0);
        }
        let env = imager.iq(&grid, None).iter().map(|v| v.norm()).collect();
        (imager, env)
    }

    /// mean/std of `values`.
    fn snr(values: &[f64]) -> f64 {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        mean / var.sqrt()
    }

    #[test]
    fn homogeneous_speckle_is_rayleigh_with_unit_mean_intensity() {
        // Fully developed speckle: the IQ signal is circular complex Gaussian, so the envelope is
        // Rayleigh with mean/std = sqrt(π/(4 − π)) = 1.913 (Burckhardt 1978; Wagner et al. 1983)
        // and the depth gain makes E|IQ|² = 1 at every depth.
        let rayleigh = (PI / (4.0 - PI)).sqrt();
        let mut values = Vec::new();
        let mut bands = [
            (0.2, 0.4, 0.0, 0usize),
            (0.4, 0.7, 0.0, 0),
            (0.7, 0.95, 0.0, 0),
        ];
        for seed in 0..4 {
            let (imager, env) = homogeneous_envelope(seed);
            for i in 0..imager.depth {
                let r = (i as f64 + 0.5) / imager.depth as f64;
                // Lines away from the sector edge, where the beam sees scatterers on both sides.
                for l in 4..imager.lines - 4 {
                    let e = env[i * imager.lines + l] as f64;
                    for band in bands.iter_mut() {
                        if (band.0..band.1).contains(&r) {
                            band.2 += e * e;
                            band.3 += 1;
                        }
                    }
                    if r > 0.2 {
                        values.push(e);
                    }
                }
            }
        }
        let measured = snr(&values);
        eprintln!("homogeneous speckle: SNR {measured:.3} (Rayleigh {rayleigh:.3})");
        assert!(
            (measured - rayleigh).abs() < 0.08,
            "SNR {measured}, Rayleigh {rayleigh}"
        );
        for (lo, hi, sum, n) in bands {
            let mean = sum / n as f64;
            eprintln!("  mean intensity at depth {lo}..{hi}: {mean:.3}");
            assert!(
                (mean - 1.0).abs() < 0.1,
                "depth {lo}..{hi}: mean intensity {mean}"
            );
        }
    }

    /// Per beam pixel of frame k: true where the pixel and its 8 neighbours hold myocardium
    /// scatterers and nothing else (blood pixels hold no tissue scatterers).
    fn myocardium_pixels(sim: &Simulation, k: usize) -> Vec<bool> {
        let (d, l) = (sim.imager.depth, sim.imager.lines);
        let pose = sim.pose(k);
        let (mut myo, mut other) = (vec![0u32; d * l], vec![0u32; d * l]);
        for s in &sim.tissue {
            let (x, z) = sim.position(s, &pose);
            let i = (x.hypot(z) * d as f64 - 0.5).round();
            let fl = ((x.atan2(z) / sim.imager.theta_max + 1.0) * 0.5 * (l - 1) as f64).round();
            if (0.0..d as f64).contains(&i) && (0.0..l as f64).contains(&fl) {
                let p = i as usize * l + fl as usize;
                if s.tissue == Tissue::Myocardium {
                    myo[p] += 1;
                } else {
                    other[p] += 1;
                }
            }
        }
        let mut out = vec![false; d * l];
        for i in 1..d - 1 {
            for j in 1..l - 1 {
                out[i * l + j] = (i - 1..=i + 1)
                    .all(|a| (j - 1..=j + 1).all(|b| myo[a * l + b] > 0 && other[a * l + b] == 0));
            }
        }
        out
    }

    fn pearson(a: &[f64], b: &[f64]) -> f64 {
        let n = a.len() as f64;
        let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
        let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        cov / (va * vb).sqrt()
    }

    /// Mean correlation of the envelope between consecutive frames over myocardium pixels, and
    /// the myocardium envelope SNR, over `seeds` sequences.
    fn myocardium_statistics(stride: usize, seeds: std::ops::Range<u64>) -> (f64, f64) {
        let cfg = EchoConfig {
            frame_stride: stride,
            ..config(12)
        };
        let (mut corr, mut pairs, mut values) = (0.0, 0, Vec::new());
        for seed in seeds {
            let mut rng = seeded(seed);
            let mut sim = Simulation::new(&cfg, &mut rng);
            let mut prev: Option<(Vec<f32>, Vec<bool>)> = None;
            for k in 0..cfg.frames {
                let env = sim.frame_envelope(k, &mut rng);
                let mask = myocardium_pixels(&sim, k);
                values.extend(env.iter().zip(&mask).filter(|p| *p.1).map(|p| *p.0 as f64));
                if let Some((pe, pm)) = &prev {
                    let (a, b): (Vec<f64>, Vec<f64>) = (0..env.len())
                        .filter(|&p| mask[p] && pm[p])
                        .map(|p| (pe[p] as f64, env[p] as f64))
                        .unzip();
                    assert!(a.len() > 100, "only {} myocardium pixels", a.len());
                    corr += pearson(&a, &b);
                    pairs += 1;
                }
                prev = Some((env, mask));
            }
        }
        (corr / pairs as f64, snr(&values))
    }

    #[test]
    fn myocardium_speckle_follows_motion_and_decorrelates_partially() {
        let (corr1, snr1) = myocardium_statistics(1, 0..3);
        let (corr3, _) = myocardium_statistics(3, 0..3);
        eprintln!(
            "myocardium: SNR {snr1:.3}; consecutive-frame envelope correlation {corr1:.3} (1×), {corr3:.3} (3× heart rate)"
        );
        // Rayleigh-like (texture of ±20 % lowers mean/std a little below 1.913).
        assert!((1.6..2.05).contains(&snr1), "myocardium SNR {snr1}");
        assert!((0.3..0.98).contains(&corr1), "correlation at 1×: {corr1}");
        assert!(corr3 < corr1 - 0.05, "3×: {corr3} vs 1×: {corr1}");
    }

    #[test]
    fn blood_pools_are_darker_than_myocardium() {
        let cfg = config(4);
        for seed in 0..3 {
            let mut rng = seeded(seed);
            let mut sim = Simulation::new(&cfg, &mut rng);
            let mut reference = 0.0;
            for k in 0..cfg.frames {
                let env = sim.frame_envelope(k, &mut rng);
                if k == 0 {
                    reference = env.iter().copied().fold(0.0f32, f32::max);
                }
                let x = log_compress(&env, reference, cfg.dynamic_range_db);
                let myo = myocardium_pixels(&sim, k);
                // Blood: pixels with no tissue scatterer nearby inside the heart's blood pools.
                let pose = sim.pose(k);
                let (d, l) = (cfg.depth, cfg.lines);
                let mut blood = vec![0.0f64; 0];
                for i in 0..d {
                    for j in 0..l {
                        let r = (i as f64 + 0.5) / d as f64;
                        let th = sim.imager.theta_max * (2.0 * j as f64 / (l - 1) as f64 - 1.0);
                        let (xs, zs) = (r * th.sin(), r * th.cos());
                        // Undo the probe motion, then test the end-diastolic blood pools
                        // shrunk by the largest wall motion, so the pixel is blood at any phase.
                        let (c, s, dx, dz) = pose.probe;
                        let (x0, z0) = (xs - dx, zs - dz);
                        let (xr, zr) = (c * x0 - s * z0, s * x0 + c * z0);
                        let (u, v) = sim.scene.heart.to_heart(xr, zr);
                        let margin = 0.05;
                        if [
                            (0.0, 0.0),
                            (margin, 0.0),
                            (-margin, 0.0),
                            (0.0, margin),
                            (0.0, -margin),
                        ]
                        .iter()
                        .all(|&(a, b)| sim.scene.heart.is_blood(u + a, v + b))
                        {
                            blood.push(x[i * l + j] as f64);
                        }
                    }
                }
                let tissue: Vec<f64> = x
                    .iter()
                    .zip(&myo)
                    .filter(|p| *p.1)
                    .map(|p| *p.0 as f64)
                    .collect();
                let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
                assert!(blood.len() > 50 && tissue.len() > 50);
                let (b, t) = (mean(&blood), mean(&tissue));
                // Blood scatterers are ≈ 36 dB weaker: at 60 dB that is ≈ 1.2 on the [−1, 1] scale.
                assert!(
                    t - b > 0.8,
                    "seed {seed} frame {k}: blood {b:.3}, myocardium {t:.3}"
                );
            }
        }
    }

    #[test]
    fn valves_shut_in_systole_and_open_in_filling() {
        let beat = Beat {
            cycles_per_frame: 0.05,
            phase0: 0.0,
            systole: 0.34,
            relax: 0.4,
        };
        for i in 0..100 {
            let p = i as f64 / 100.0;
            let o = beat.valve_opening(p);
            assert!((0.0..=1.0).contains(&o));
            if p < beat.systole {
                assert_eq!(o, 0.0, "open at systolic phase {p}");
                assert!(beat.contraction(p) >= 0.0);
            }
        }
        assert!(beat.valve_opening(beat.systole + 0.13) > 0.99);
        assert!((beat.contraction(beat.systole) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn scan_conversion_puts_the_centre_line_on_the_vertical_centre() {
        // 65 lines: line 32 is θ = 0. Make it white and the others black.
        let (d, l) = (40, 65);
        let beam: Vec<f32> = (0..d * l)
            .map(|p| if p % l == 32 { 1.0 } else { -1.0 })
            .collect();
        let g = SectorGeometry::default();
        let (h, w) = (81, 99);
        let img = scan_convert(&beam, [1, d, l], &g, [h, w]).unwrap();
        let centre = w / 2;
        for i in 2..h {
            assert!(
                (img[i * w + centre] - 1.0).abs() < 1e-5,
                "row {i}: {}",
                img[i * w + centre]
            );
        }
        // Far from the centre line: black (inside) or the fill (outside), never white.
        for i in 0..h {
            for j in [0, 10, w - 11, w - 1] {
                assert!((img[i * w + j] + 1.0).abs() < 1e-5, "{}", img[i * w + j]);
            }
        }
        // The corners above the sector edges are outside; the bottom centre is inside.
        let filled = scan_convert_with_fill(&beam, [1, d, l], &g, [h, w], 7.0).unwrap();
        assert_eq!(filled[0], 7.0);
        assert_eq!(filled[w - 1], 7.0);
        assert_eq!(filled[(h - 1) * w + centre], 1.0);
        assert_eq!(g.image_width(64), 78);
    }

    #[test]
    fn scan_conversion_rejects_bad_input() {
        let g = SectorGeometry::default();
        let beam = vec![0.0; 2 * 8 * 8];
        assert!(matches!(
            scan_convert(&beam, [2, 8, 9], &g, [8, 8]),
            Err(Error::Shape { .. })
        ));
        assert!(scan_convert(&beam, [2, 8, 8], &g, [0, 8]).is_err());
        assert!(scan_convert(&beam, [2, 8, 8], &g, [8, 100_000]).is_err());
        let bad = SectorGeometry {
            sector_degrees: f64::NAN,
        };
        assert!(scan_convert(&beam, [2, 8, 8], &bad, [8, 8]).is_err());
        assert!(scan_convert(&[], [0, 8, 8], &g, [8, 8]).is_err());
    }

    #[test]
    fn validate_rejects_out_of_range_fields() {
        let ok = EchoConfig::default();
        assert!(ok.validate().is_ok());
        let bad = [
            EchoConfig {
                depth: 15,
                ..ok.clone()
            },
            EchoConfig {
                depth: 257,
                ..ok.clone()
            },
            EchoConfig {
                lines: 7,
                ..ok.clone()
            },
            EchoConfig {
                lines: 300,
                ..ok.clone()
            },
            EchoConfig {
                frames: 0,
                ..ok.clone()
            },
            EchoConfig {
                frames: 1025,
                ..ok.clone()
            },
            EchoConfig {
                sector_degrees: 10.0,
                ..ok.clone()
            },
            EchoConfig {
                sector_degrees: f64::NAN,
                ..ok.clone()
            },
            EchoConfig {
                dynamic_range_db: 0.0,
                ..ok.clone()
            },
            EchoConfig {
                dynamic_range_db: f64::INFINITY,
                ..ok.clone()
            },
            EchoConfig {
                frame_stride: 0,
                ..ok.clone()
            },
            EchoConfig {
                frame_stride: 65,
                ..ok.clone()
            },
        ];
        for cfg in bad {
            let err = cfg.validate().unwrap_err();
            assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
            assert!(echo_phantom(&cfg, &mut seeded(0)).is_err());
        }
        let err = EchoConfig { lines: 7, ..ok }.validate().unwrap_err();
        assert!(err.to_string().contains("lines"), "{err}");
    }

    #[test]
    fn config_round_trips_through_json_and_fills_defaults() {
        let cfg = EchoConfig {
            frame_stride: 3,
            probe_motion: false,
            ..EchoConfig::default()
        };
        let json = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<EchoConfig>(&json).unwrap(), cfg);
        let partial: EchoConfig = serde_json::from_str(r#"{"lines": 96}"#).unwrap();
        assert_eq!(partial.lines, 96);
        assert_eq!(partial.dynamic_range_db, 60.0);
    }

    #[test]
    fn a_default_frame_takes_milliseconds() {
        let cfg = config(8);
        // The best of three runs, so that other work on the machine inflates it less.
        let per_frame = (0..3)
            .map(|seed| {
                let start = std::time::Instant::now();
                echo_phantom(&cfg, &mut seeded(seed)).unwrap();
                start.elapsed().as_secs_f64() / cfg.frames as f64
            })
            .fold(f64::INFINITY, f64::min);
        eprintln!("echo phantom: {:.2} ms per 64×64 frame", per_frame * 1e3);
        // Only meaningful with optimisations (cargo test --release).
        if !cfg!(debug_assertions) {
            assert!(per_frame < 0.02, "{per_frame} s per frame");
        }
    }
}
