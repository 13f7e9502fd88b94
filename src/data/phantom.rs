//! Procedural 2D+t cardiac cine MRI phantom: a short-axis slice through a chest with a beating heart.
//!
//! The scene is analytic (ellipses and circles in normalised coordinates `[-1, 1]²`, `x` to the
//! right, `y` downwards, image right = patient left as in radiological display), so it needs no data
//! files, scales to any matrix size and can be supersampled for partial-volume edges. Every random
//! choice is drawn from the caller's RNG in one fixed order before any pixel is rendered, so the
//! flags `complex` and `breathing` never change which anatomy or heartbeat a given RNG state yields.

use num_complex::Complex32;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::SeededRng;

const PI: f64 = std::f64::consts::PI;
const TAU: f64 = std::f64::consts::TAU;

const SIZE_MIN: usize = 32;
const SIZE_MAX: usize = 256;
const FRAMES_MAX: usize = 1024;
const SUPERSAMPLE_MAX: usize = 8;
const STRIDE_MAX: usize = 64;

/// Parameters of the procedural cardiac cine phantom.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PhantomConfig {
    /// Image side in pixels (32..=256); below 32 the myocardium would be thinner than a pixel.
    pub size: usize,
    /// Frames per sequence (1..=1024).
    pub frames: usize,
    /// Adds a smooth spatial phase so complex-valued pipelines are exercised; magnitude is unchanged.
    pub complex: bool,
    /// Adds slow respiratory drift so the sequence is not exactly periodic in the heartbeat.
    pub breathing: bool,
    /// Sub-samples per pixel axis (1..=8); averaging them gives partial-volume edges instead of staircases.
    pub supersample: usize,
    /// Frame t is rendered at phantom time t·stride (1..=64): stride× heart and breathing rate
    /// (the severe-motion case), the same as keeping every stride-th frame of a longer cine.
    pub frame_stride: usize,
}

impl Default for PhantomConfig {
    fn default() -> Self {
        Self {
            size: 64,
            frames: 16,
            complex: false,
            breathing: true,
            supersample: 3,
            frame_stride: 1,
        }
    }
}

impl PhantomConfig {
    /// Fails with [`Error::InvalidArgument`] naming the first field that is out of range.
    pub fn validate(&self) -> Result<()> {
        if !(SIZE_MIN..=SIZE_MAX).contains(&self.size) {
            return Err(Error::invalid(
                "phantom size",
                format!("{SIZE_MIN}..={SIZE_MAX} pixels"),
                self.size,
            ));
        }
        if !(1..=FRAMES_MAX).contains(&self.frames) {
            return Err(Error::invalid(
                "phantom frames",
                format!("1..={FRAMES_MAX}"),
                self.frames,
            ));
        }
        if !(1..=SUPERSAMPLE_MAX).contains(&self.supersample) {
            return Err(Error::invalid(
                "phantom supersample",
                format!("1..={SUPERSAMPLE_MAX} sub-samples per pixel axis"),
                self.supersample,
            ));
        }
        if !(1..=STRIDE_MAX).contains(&self.frame_stride) {
            return Err(Error::invalid(
                "phantom frame_stride",
                format!("1..={STRIDE_MAX}"),
                self.frame_stride,
            ));
        }
        Ok(())
    }
}

/// One generated sequence: `frames × size × size`, frame-major, row-major within a frame.
#[derive(Clone, Debug, PartialEq)]
pub struct CineSequence {
    /// Number of frames.
    pub frames: usize,
    /// Image side in pixels.
    pub size: usize,
    /// Pixel values, `data[(frame * size + row) * size + col]`, magnitude in `[0, 1]`.
    pub data: Vec<Complex32>,
}

/// Generates one sequence; every random choice (anatomy jitter, heart rate, phase, texture, breathing) is drawn from `rng`.
pub fn cine_phantom(config: &PhantomConfig, rng: &mut SeededRng) -> Result<CineSequence> {
    config.validate()?;
    let scene = Scene::draw(rng);
    Ok(scene.render(config))
}

// ---------------------------------------------------------------------------------------------
// Random helpers. Plain affine maps of `random::<f64>()` keep the draw count per call fixed (one),
// so the order of draws, and hence the output, is easy to keep stable.

fn uniform(rng: &mut SeededRng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// `value` scaled by a factor uniform in `[1 - rel, 1 + rel]`.
fn jitter(rng: &mut SeededRng, value: f64, rel: f64) -> f64 {
    value * uniform(rng, 1.0 - rel, 1.0 + rel)
}

/// `value` shifted by an offset uniform in `[-abs, abs]`.
fn nudge(rng: &mut SeededRng, value: f64, abs: f64) -> f64 {
    value + uniform(rng, -abs, abs)
}

// ---------------------------------------------------------------------------------------------
// Scene description.

/// Tissue classes; the discriminant indexes intensity and texture tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tissue {
    Background = 0,
    Soft,
    Fat,
    Lung,
    Myocardium,
    LvBlood,
    RvBlood,
    Aorta,
    Spine,
}

const N_TISSUES: usize = 9;

/// A rotated ellipse stored as what the inside test needs.
#[derive(Clone, Debug)]
struct Ellipse {
    cx: f64,
    cy: f64,
    cos: f64,
    sin: f64,
    inv_a: f64,
    inv_b: f64,
}

impl Ellipse {
    fn new(cx: f64, cy: f64, a: f64, b: f64, angle: f64) -> Self {
        Self {
            cx,
            cy,
            cos: angle.cos(),
            sin: angle.sin(),
            inv_a: 1.0 / a,
            inv_b: 1.0 / b,
        }
    }

    /// Below 1 inside, above 1 outside.
    #[inline]
    fn level(&self, x: f64, y: f64) -> f64 {
        let dx = x - self.cx;
        let dy = y - self.cy;
        let u = (self.cos * dx + self.sin * dy) * self.inv_a;
        let v = (-self.sin * dx + self.cos * dy) * self.inv_b;
        u * u + v * v
    }

    #[inline]
    fn contains(&self, x: f64, y: f64) -> bool {
        self.level(x, y) < 1.0
    }
}

/// Static heart anatomy; the beating geometry of one frame is a [`HeartPose`].
#[derive(Clone, Debug)]
struct Heart {
    /// LV centre.
    cx: f64,
    cy: f64,
    /// Rotation of the heart frame.
    cos: f64,
    sin: f64,
    /// Area-preserving anisotropy: the LV is a circle after `(p / stretch, q * stretch)`.
    stretch: f64,
    /// Direction of the RV from the LV centre, in the stretched heart frame.
    rv_cos: f64,
    rv_sin: f64,
    /// End-diastolic endocardial and epicardial LV radii.
    endo_d: f64,
    epi_d: f64,
    /// Fractional shrink of the LV cavity radius at peak systole.
    lv_shrink: f64,
    /// End-diastolic RV cavity width along the RV axis, and its fractional shrink at peak systole.
    rv_width_d: f64,
    rv_shrink: f64,
    /// How far behind the LV centre the RV ellipse reaches (fraction of the epicardial radius); it is
    /// hidden there by the LV, and decides how far the crescent wraps round.
    rv_back: f64,
    /// Lateral reach of the RV ellipse beyond the epicardium, in units of the RV width.
    rv_side: f64,
    /// RV free-wall thickness.
    rv_wall: f64,
}

/// Heart geometry of one frame (squared radii and RV ellipse in the stretched heart frame).
#[derive(Clone, Debug)]
struct HeartPose {
    endo2: f64,
    epi2: f64,
    rv_d: f64,
    rv_inv_a: f64,
    rv_inv_b: f64,
    wall_inv_a: f64,
    wall_inv_b: f64,
    reach2: f64,
}

impl Heart {
    /// The geometry at contraction `c` (0 = end-diastole, 1 = peak systole).
    fn pose(&self, c: f64) -> HeartPose {
        let endo = self.endo_d * (1.0 - self.lv_shrink * c);
        // Myocardial tissue is nearly incompressible: keep the ring area, so the wall thickens
        // and the epicardium moves less than the endocardium.
        let epi = (endo * endo + self.epi_d * self.epi_d - self.endo_d * self.endo_d).sqrt();
        let w = self.rv_width_d * (1.0 - self.rv_shrink * c);
        // RV cavity: an ellipse on the RV axis from `-rv_back·epi` (inside the LV, hence hidden)
        // to `epi + w`, minus the LV disc; what remains is a crescent hugging the septum.
        let a = ((1.0 + self.rv_back) * epi + w) / 2.0;
        let d = epi + w - a;
        let b = epi + self.rv_side * w;
        let reach = d + a.max(b) + self.rv_wall;
        HeartPose {
            endo2: endo * endo,
            epi2: epi * epi,
            rv_d: d,
            rv_inv_a: 1.0 / a,
            rv_inv_b: 1.0 / b,
            wall_inv_a: 1.0 / (a + self.rv_wall),
            wall_inv_b: 1.0 / (b + self.rv_wall),
            reach2: reach * reach,
        }
    }

    #[inline]
    fn label(&self, x: f64, y: f64, pose: &HeartPose) -> Option<Tissue> {
        let dx = x - self.cx;
        let dy = y - self.cy;
        let hx = (self.cos * dx + self.sin * dy) / self.stretch;
        let hy = (-self.sin * dx + self.cos * dy) * self.stretch;
        let r2 = hx * hx + hy * hy;
        if r2 < pose.endo2 {
            return Some(Tissue::LvBlood);
        }
        if r2 < pose.epi2 {
            return Some(Tissue::Myocardium);
        }
        if r2 > pose.reach2 {
            return None;
        }
        let u = self.rv_cos * hx + self.rv_sin * hy - pose.rv_d;
        let v = -self.rv_sin * hx + self.rv_cos * hy;
        let (ua, vb) = (u * pose.rv_inv_a, v * pose.rv_inv_b);
        if ua * ua + vb * vb < 1.0 {
            return Some(Tissue::RvBlood);
        }
        let (ua, vb) = (u * pose.wall_inv_a, v * pose.wall_inv_b);
        if ua * ua + vb * vb < 1.0 {
            return Some(Tissue::Myocardium);
        }
        None
    }

    /// Stretched heart-frame radius of a point, relative to the LV centre (used by tests).
    #[cfg(test)]
    fn radius(&self, x: f64, y: f64) -> f64 {
        let dx = x - self.cx;
        let dy = y - self.cy;
        let hx = (self.cos * dx + self.sin * dy) / self.stretch;
        let hy = (-self.sin * dx + self.cos * dy) * self.stretch;
        (hx * hx + hy * hy).sqrt()
    }
}

/// Cardiac timing: a fast smooth contraction, a slower relaxation, then diastasis (rest).
#[derive(Clone, Debug)]
struct Beat {
    cycles_per_frame: f64,
    phase0: f64,
    systole: f64,
    relax: f64,
}

impl Beat {
    /// Contraction in `[0, 1]` at frame time `t`; cosine ramps keep it C¹ at every junction.
    fn contraction(&self, t: f64) -> f64 {
        let p = (self.cycles_per_frame * t + self.phase0).rem_euclid(1.0);
        if p < self.systole {
            0.5 - 0.5 * (PI * p / self.systole).cos()
        } else if p < self.systole + self.relax {
            0.5 + 0.5 * (PI * (p - self.systole) / self.relax).cos()
        } else {
            0.0
        }
    }
}

/// Respiratory drift: a rigid translation along one direction, lingering at end-expiration.
#[derive(Clone, Debug)]
struct Breath {
    cycles_per_frame: f64,
    phase0: f64,
    amplitude: f64,
    dir_x: f64,
    dir_y: f64,
}

impl Breath {
    fn shift(&self, t: f64) -> (f64, f64) {
        let p = self.cycles_per_frame * t + self.phase0;
        let s = 0.5 - 0.5 * (TAU * p).cos();
        // s² spends longer near 0 than near 1 (end-expiration rest); 3/8 is its mean, so the
        // anatomy drifts about its drawn position rather than to one side of it.
        let m = self.amplitude * (s * s - 0.375);
        (m * self.dir_x, m * self.dir_y)
    }
}

/// One plane wave `amp · cos(kx·x + ky·y + phase)`.
#[derive(Clone, Debug)]
struct Wave {
    kx: f64,
    ky: f64,
    phase: f64,
    amp: f64,
}

impl Wave {
    fn draw(rng: &mut SeededRng, k_lo: f64, k_hi: f64, amp: f64) -> Self {
        let k = uniform(rng, k_lo, k_hi);
        let dir = uniform(rng, 0.0, TAU);
        Self {
            kx: k * dir.cos(),
            ky: k * dir.sin(),
            phase: uniform(rng, 0.0, TAU),
            amp,
        }
    }

    #[inline]
    fn eval(&self, x: f64, y: f64) -> f64 {
        self.amp * (self.kx * x + self.ky * y + self.phase).cos()
    }
}

/// Multiplicative low-frequency intensity modulation of one tissue, `1 + Σ waves`.
#[derive(Clone, Debug)]
struct Texture {
    waves: [Wave; 3],
}

impl Texture {
    fn draw(rng: &mut SeededRng) -> Self {
        let total = uniform(rng, 0.05, 0.08);
        let w = [
            uniform(rng, 0.2, 1.0),
            uniform(rng, 0.2, 1.0),
            uniform(rng, 0.2, 1.0),
        ];
        // Amplitudes sum to `total`, which bounds the modulation to ±total.
        let norm = total / (w[0] + w[1] + w[2]);
        let waves = w.map(|wi| Wave::draw(rng, 0.75 * PI, 3.0 * PI, wi * norm));
        Self { waves }
    }

    fn none() -> Self {
        let zero = || Wave {
            kx: 0.0,
            ky: 0.0,
            phase: 0.0,
            amp: 0.0,
        };
        Self {
            waves: [zero(), zero(), zero()],
        }
    }

    #[inline]
    fn factor(&self, x: f64, y: f64) -> f64 {
        1.0 + self.waves[0].eval(x, y) + self.waves[1].eval(x, y) + self.waves[2].eval(x, y)
    }
}

/// Smooth spatial phase (constant + linear + quadratic + one slow wave), fixed in the scanner frame
/// as a B0/coil phase would be, so it does not follow the breathing motion.
#[derive(Clone, Debug)]
struct PhaseField {
    c0: f64,
    gx: f64,
    gy: f64,
    qxx: f64,
    qxy: f64,
    qyy: f64,
    wave: Wave,
}

impl PhaseField {
    fn draw(rng: &mut SeededRng) -> Self {
        let c0 = uniform(rng, -PI, PI);
        // A gradient of at least π/4 per unit guarantees a visibly non-constant phase.
        let g = uniform(rng, 0.25 * PI, 0.5 * PI);
        let g_dir = uniform(rng, 0.0, TAU);
        let q = 0.15 * PI;
        let qxx = uniform(rng, -q, q);
        let qxy = uniform(rng, -q, q);
        let qyy = uniform(rng, -q, q);
        let amp = uniform(rng, 0.0, 0.25 * PI);
        let wave = Wave::draw(rng, 0.5 * PI, 1.5 * PI, amp);
        Self {
            c0,
            gx: g * g_dir.cos(),
            gy: g * g_dir.sin(),
            qxx,
            qxy,
            qyy,
            wave,
        }
    }

    fn eval(&self, x: f64, y: f64) -> f64 {
        self.c0
            + self.gx * x
            + self.gy * y
            + self.qxx * x * x
            + self.qxy * x * y
            + self.qyy * y * y
            + self.wave.eval(x, y)
    }
}

/// Everything random about one sequence, drawn up front.
#[derive(Clone, Debug)]
struct Scene {
    body: Ellipse,
    /// Inner border of the subcutaneous fat ring.
    fat_inner: Ellipse,
    /// Inner border of the chest wall (muscle, ribs): lungs are clipped to it so they never touch fat.
    chest_inner: Ellipse,
    lungs: [Ellipse; 2],
    aorta: Ellipse,
    spine: Ellipse,
    heart: Heart,
    beat: Beat,
    breath: Breath,
    base: [f64; N_TISSUES],
    textures: Vec<Texture>,
    phase: PhaseField,
}

impl Scene {
    /// Draws the scene. The order of draws is part of the output contract (same RNG state, same
    /// phantom); the phase field comes last and is drawn even for magnitude-only phantoms, so the
    /// `complex` flag changes neither the magnitude nor the RNG state left behind.
    fn draw(rng: &mut SeededRng) -> Self {
        // Body: chest cross-section, wider than deep, slightly posterior in the FOV.
        let bx = nudge(rng, 0.0, 0.03);
        let by = nudge(rng, 0.04, 0.03);
        let ba = jitter(rng, 0.86, 0.08);
        let bb = jitter(rng, 0.64, 0.08);
        let b_angle = nudge(rng, 0.0, 0.08);
        let fat = uniform(rng, 0.045, 0.07);
        let wall = uniform(rng, 0.04, 0.07);
        let body = Ellipse::new(bx, by, ba, bb, b_angle);
        let fat_inner = Ellipse::new(bx, by, ba - fat, bb - fat, b_angle);
        let chest_inner = Ellipse::new(bx, by, ba - fat - wall, bb - fat - wall, b_angle);
        // Positions of internal organs follow the body's centre and proportions.
        let (sx, sy) = (ba / 0.86, bb / 0.64);
        let at = |ox: f64, oy: f64| (bx + ox * sx, by + oy * sy);

        let lung = |rng: &mut SeededRng, ox: f64, a: f64, b: f64, tilt: f64| {
            let (cx, cy) = at(nudge(rng, ox, 0.04), nudge(rng, -0.08, 0.04));
            let a = jitter(rng, a, 0.12);
            let b = jitter(rng, b, 0.12);
            let angle = nudge(rng, tilt, 0.15);
            Ellipse::new(cx, cy, a, b, angle)
        };
        // Image left is the patient's right lung (larger), image right the left lung; both reach
        // the heart (which takes priority) so the epicardium borders dark lung as in real slices.
        let lungs = [
            lung(rng, -0.50, 0.21, 0.34, -0.2),
            lung(rng, 0.50, 0.19, 0.32, 0.2),
        ];

        let (hx, hy) = at(nudge(rng, 0.10, 0.04), nudge(rng, -0.06, 0.04));
        let h_angle = nudge(rng, 0.0, 0.2);
        let stretch = uniform(rng, 0.93, 1.07);
        let rv_angle = nudge(rng, PI + 0.35, 0.15);
        let endo_d = uniform(rng, 0.17, 0.21);
        let epi_d = endo_d + uniform(rng, 0.07, 0.09);
        let heart = Heart {
            cx: hx,
            cy: hy,
            cos: h_angle.cos(),
            sin: h_angle.sin(),
            stretch,
            rv_cos: rv_angle.cos(),
            rv_sin: rv_angle.sin(),
            endo_d,
            epi_d,
            lv_shrink: uniform(rng, 0.25, 0.40),
            rv_width_d: uniform(rng, 0.11, 0.16),
            rv_shrink: uniform(rng, 0.30, 0.50),
            rv_back: uniform(rng, 0.5, 0.7),
            rv_side: uniform(rng, 0.75, 1.05),
            rv_wall: uniform(rng, 0.02, 0.03),
        };

        let (ax, ay) = at(nudge(rng, 0.15, 0.03), nudge(rng, 0.33, 0.03));
        let ar = jitter(rng, 0.05, 0.12);
        let aorta = Ellipse::new(ax, ay, ar, ar, 0.0);
        let (spx, spy) = at(nudge(rng, 0.0, 0.02), nudge(rng, 0.44, 0.02));
        let spa = jitter(rng, 0.085, 0.12);
        let spb = jitter(rng, 0.075, 0.12);
        let spine = Ellipse::new(spx, spy, spa, spb, 0.0);

        // Intensities mimic bSSFP cine contrast; blood stays below 0.92 so that with at most 8%
        // texture it rarely needs the final clamp to 1.
        let mut base = [0.0; N_TISSUES];
        base[Tissue::Soft as usize] = uniform(rng, 0.35, 0.45);
        base[Tissue::Fat as usize] = uniform(rng, 0.80, 0.88);
        base[Tissue::Lung as usize] = uniform(rng, 0.05, 0.10);
        base[Tissue::Myocardium as usize] = uniform(rng, 0.25, 0.35);
        base[Tissue::LvBlood as usize] = uniform(rng, 0.86, 0.92);
        base[Tissue::RvBlood as usize] = uniform(rng, 0.80, 0.88);
        base[Tissue::Aorta as usize] = uniform(rng, 0.80, 0.90);
        base[Tissue::Spine as usize] = uniform(rng, 0.45, 0.55);
        let mut textures = Vec::with_capacity(N_TISSUES);
        textures.push(Texture::none());
        for _ in 1..N_TISSUES {
            textures.push(Texture::draw(rng));
        }

        let cycles_per_frame = uniform(rng, 1.0 / 24.0, 1.0 / 10.0);
        let beat = Beat {
            cycles_per_frame,
            phase0: uniform(rng, 0.0, 1.0),
            systole: uniform(rng, 0.30, 0.38),
            relax: uniform(rng, 0.35, 0.45),
        };

        // Drawn even when breathing is off, so switching it off leaves the anatomy unchanged.
        let b_dir = nudge(rng, 0.5 * PI, 0.4);
        let breath = Breath {
            cycles_per_frame: cycles_per_frame / uniform(rng, 3.0, 5.0),
            phase0: uniform(rng, 0.0, 1.0),
            amplitude: uniform(rng, 0.04, 0.08),
            dir_x: b_dir.cos(),
            dir_y: b_dir.sin(),
        };

        let phase = PhaseField::draw(rng);

        Self {
            body,
            fat_inner,
            chest_inner,
            lungs,
            aorta,
            spine,
            heart,
            beat,
            breath,
            base,
            textures,
            phase,
        }
    }

    /// The tissue at anatomy-frame point `(x, y)`; earlier tests take priority over later ones.
    #[inline]
    fn label(&self, x: f64, y: f64, pose: &HeartPose) -> Tissue {
        if !self.body.contains(x, y) {
            return Tissue::Background;
        }
        if let Some(t) = self.heart.label(x, y, pose) {
            return t;
        }
        if self.aorta.contains(x, y) {
            return Tissue::Aorta;
        }
        if self.spine.contains(x, y) {
            return Tissue::Spine;
        }
        if !self.fat_inner.contains(x, y) {
            return Tissue::Fat;
        }
        if self.chest_inner.contains(x, y)
            && (self.lungs[0].contains(x, y) || self.lungs[1].contains(x, y))
        {
            return Tissue::Lung;
        }
        Tissue::Soft
    }

    fn render(&self, config: &PhantomConfig) -> CineSequence {
        let n = config.size;
        let ss = config.supersample;
        let pixel = 2.0 / n as f64;
        let centres: Vec<f64> = (0..n).map(|i| -1.0 + pixel * (i as f64 + 0.5)).collect();
        let sub = pixel / ss as f64;
        let subs: Vec<f64> = (0..n * ss).map(|m| -1.0 + sub * (m as f64 + 0.5)).collect();
        let inv_count = 1.0 / (ss * ss) as f64;

        // The phase is evaluated once per pixel centre (not averaged over sub-samples), which is
        // what keeps the magnitude identical to the real phantom.
        let rotor: Vec<(f64, f64)> = if config.complex {
            let mut r = Vec::with_capacity(n * n);
            for &y in &centres {
                for &x in &centres {
                    let phi = self.phase.eval(x, y);
                    r.push((phi.cos(), phi.sin()));
                }
            }
            r
        } else {
            Vec::new()
        };

        let mut data = Vec::with_capacity(config.frames * n * n);
        for k in 0..config.frames {
            let t = (k * config.frame_stride) as f64;
            let pose = self.heart.pose(self.beat.contraction(t));
            let (dx, dy) = if config.breathing {
                self.breath.shift(t)
            } else {
                (0.0, 0.0)
            };
            for i in 0..n {
                let ys = &subs[i * ss..(i + 1) * ss];
                for j in 0..n {
                    let xs = &subs[j * ss..(j + 1) * ss];
                    let mut counts = [0u32; N_TISSUES];
                    for &y in ys {
                        for &x in xs {
                            counts[self.label(x - dx, y - dy, &pose) as usize] += 1;
                        }
                    }
                    // Texture is low-frequency, so one evaluation at the pixel centre (in the
                    // anatomy frame, so it moves with the chest) is as good as per sub-sample.
                    let (cx, cy) = (centres[j] - dx, centres[i] - dy);
                    let mut v = 0.0;
                    for (tissue, &c) in counts.iter().enumerate().skip(1) {
                        if c > 0 {
                            v +=
                                c as f64 * self.base[tissue] * self.textures[tissue].factor(cx, cy);
                        }
                    }
                    let v = (v * inv_count).clamp(0.0, 1.0);
                    data.push(if config.complex {
                        let (c, s) = rotor[i * n + j];
                        Complex32::new((v * c) as f32, (v * s) as f32)
                    } else {
                        Complex32::new(v as f32, 0.0)
                    });
                }
            }
        }
        CineSequence {
            frames: config.frames,
            size: n,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::seeded;
    use rand::RngCore;

    fn config(size: usize, frames: usize, complex: bool, breathing: bool) -> PhantomConfig {
        PhantomConfig {
            size,
            frames,
            complex,
            breathing,
            supersample: 3,
            frame_stride: 1,
        }
    }

    #[test]
    fn same_seed_same_data_different_seed_different_data() {
        let cfg = config(48, 8, true, true);
        let a = cine_phantom(&cfg, &mut seeded(7)).unwrap();
        let b = cine_phantom(&cfg, &mut seeded(7)).unwrap();
        let c = cine_phantom(&cfg, &mut seeded(8)).unwrap();
        assert_eq!(a.data.len(), 8 * 48 * 48);
        assert!(a
            .data
            .iter()
            .zip(&b.data)
            .all(|(x, y)| x.re.to_bits() == y.re.to_bits() && x.im.to_bits() == y.im.to_bits()));
        let differing = a.data.iter().zip(&c.data).filter(|(x, y)| x != y).count();
        assert!(
            differing > a.data.len() / 10,
            "only {differing} pixels differ"
        );
    }

    #[test]
    fn values_finite_bounded_and_real_when_not_complex() {
        for seed in 0..6 {
            for complex in [false, true] {
                let seq = cine_phantom(&config(64, 12, complex, true), &mut seeded(seed)).unwrap();
                assert_eq!(
                    (seq.frames, seq.size, seq.data.len()),
                    (12, 64, 12 * 64 * 64)
                );
                for z in &seq.data {
                    assert!(z.re.is_finite() && z.im.is_finite());
                    let m = z.norm();
                    // With a phase, |v·e^{iφ}| in f32 can exceed v by rounding only.
                    assert!((0.0..=1.0 + 1e-6).contains(&m), "magnitude {m}");
                    if !complex {
                        assert_eq!(z.im.to_bits(), 0.0f32.to_bits());
                        assert!((0.0..=1.0).contains(&z.re));
                    }
                }
                // Dark background in the corner, a bright blood pool somewhere, not constant.
                assert_eq!(seq.data[0].norm(), 0.0);
                let max = seq.data.iter().map(|z| z.norm()).fold(0.0f32, f32::max);
                assert!(max > 0.8, "brightest pixel {max}");
            }
        }
    }

    /// Pixels brighter than halfway between myocardium and LV blood, within the end-diastolic
    /// cavity (shrunk a little so the RV can never enter the window), for each frame.
    fn lv_bright_counts(seed: u64, cfg: &PhantomConfig) -> Vec<usize> {
        let mut rng = seeded(seed);
        let mut replay = rng.clone();
        let seq = cine_phantom(cfg, &mut rng).unwrap();
        let scene = Scene::draw(&mut replay);
        // The replayed draw must have consumed exactly what the generator did.
        assert_eq!(rng.next_u64(), replay.next_u64());
        let n = cfg.size;
        let threshold =
            0.5 * (scene.base[Tissue::Myocardium as usize] + scene.base[Tissue::LvBlood as usize]);
        let window = 0.95 * scene.heart.endo_d;
        let c = |i: usize| -1.0 + 2.0 * (i as f64 + 0.5) / n as f64;
        (0..seq.frames)
            .map(|k| {
                let frame = &seq.data[k * n * n..(k + 1) * n * n];
                let mut count = 0;
                for i in 0..n {
                    for j in 0..n {
                        if scene.heart.radius(c(j), c(i)) < window
                            && frame[i * n + j].norm() as f64 > threshold
                        {
                            count += 1;
                        }
                    }
                }
                count
            })
            .collect()
    }

    #[test]
    fn lv_blood_pool_contracts() {
        let cfg = config(64, 24, false, false);
        for seed in 0..8 {
            let counts = lv_bright_counts(seed, &cfg);
            let max = *counts.iter().max().unwrap() as f64;
            let min = *counts.iter().min().unwrap() as f64;
            assert!(max >= 50.0, "seed {seed}: LV pool only {max} pixels");
            assert!(
                (max - min) / max >= 0.15,
                "seed {seed}: LV pool {min}..{max} pixels, counts {counts:?}"
            );
        }
    }

    #[test]
    fn breathing_moves_the_anatomy() {
        let still = cine_phantom(&config(64, 32, false, false), &mut seeded(3)).unwrap();
        let moving = cine_phantom(&config(64, 32, false, true), &mut seeded(3)).unwrap();
        // Body outline moves: count background/foreground flips over the sequence.
        let flips = still
            .data
            .iter()
            .zip(&moving.data)
            .filter(|(a, b)| (a.re == 0.0) != (b.re == 0.0))
            .count();
        assert!(
            flips > 100,
            "breathing changed only {flips} body-edge pixels"
        );
    }

    #[test]
    fn complex_keeps_magnitude_and_adds_phase() {
        for seed in 0..4 {
            let mut rng_r = seeded(seed);
            let mut rng_c = seeded(seed);
            let real = cine_phantom(&config(64, 6, false, true), &mut rng_r).unwrap();
            let cplx = cine_phantom(&config(64, 6, true, true), &mut rng_c).unwrap();
            assert_eq!(
                rng_r.next_u64(),
                rng_c.next_u64(),
                "flag changed RNG consumption"
            );
            let mut sum = Complex32::new(0.0, 0.0);
            let mut weight = 0.0f32;
            for (r, c) in real.data.iter().zip(&cplx.data) {
                assert!((r.re - c.norm()).abs() <= 1e-6, "{} vs {}", r.re, c.norm());
                if r.re > 0.2 {
                    sum += c / c.norm();
                    weight += 1.0;
                }
            }
            // Circular variance of the phase over the body: 0 for a constant phase.
            let spread = 1.0 - sum.norm() / weight;
            assert!(
                spread > 0.05,
                "seed {seed}: phase nearly constant ({spread})"
            );
        }
    }

    #[test]
    fn extreme_sizes_and_supersampling_work() {
        for (size, ss) in [(32, 1), (256, 1), (32, 8)] {
            let cfg = PhantomConfig {
                size,
                frames: 2,
                supersample: ss,
                ..PhantomConfig::default()
            };
            let seq = cine_phantom(&cfg, &mut seeded(1)).unwrap();
            assert_eq!(seq.data.len(), 2 * size * size);
            assert!(seq.data.iter().any(|z| z.re > 0.8));
        }
        // Without supersampling every pixel is one tissue and no tissue lies in (0.115, 0.22)
        // (lung is below, myocardium above); partial-volume edges fill that gap.
        let levels = |ss: usize| {
            let cfg = PhantomConfig {
                supersample: ss,
                frames: 1,
                ..PhantomConfig::default()
            };
            let seq = cine_phantom(&cfg, &mut seeded(5)).unwrap();
            seq.data
                .iter()
                .filter(|z| z.re > 0.115 && z.re < 0.22)
                .count()
        };
        assert_eq!(levels(1), 0);
        assert!(levels(4) > 10);
    }

    #[test]
    fn validate_rejects_out_of_range_fields() {
        let ok = PhantomConfig::default();
        assert!(ok.validate().is_ok());
        let bad = [
            PhantomConfig {
                size: 16,
                ..ok.clone()
            },
            PhantomConfig {
                size: 300,
                ..ok.clone()
            },
            PhantomConfig {
                frames: 0,
                ..ok.clone()
            },
            PhantomConfig {
                frames: 1025,
                ..ok.clone()
            },
            PhantomConfig {
                supersample: 0,
                ..ok.clone()
            },
            PhantomConfig {
                supersample: 9,
                ..ok.clone()
            },
            PhantomConfig {
                frame_stride: 0,
                ..ok.clone()
            },
            PhantomConfig {
                frame_stride: 65,
                ..ok.clone()
            },
        ];
        for cfg in bad {
            let err = cfg.validate().unwrap_err();
            assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
            assert!(cine_phantom(&cfg, &mut seeded(0)).is_err());
        }
        let err = PhantomConfig { size: 16, ..ok }.validate().unwrap_err();
        assert!(err.to_string().contains("size"), "{err}");
    }

    #[test]
    fn frame_stride_keeps_every_stride_th_frame() {
        let n = 48 * 48;
        let slow = PhantomConfig {
            frames: 10,
            ..config(48, 10, true, true)
        };
        let fast = PhantomConfig {
            frames: 4,
            frame_stride: 3,
            ..slow.clone()
        };
        let a = cine_phantom(&slow, &mut seeded(11)).unwrap();
        let b = cine_phantom(&fast, &mut seeded(11)).unwrap();
        for t in 0..4 {
            assert_eq!(
                &a.data[3 * t * n..(3 * t + 1) * n],
                &b.data[t * n..(t + 1) * n],
                "frame {t}"
            );
        }
        // A config written before the field existed still reads, with stride 1.
        let old: PhantomConfig = serde_json::from_str(
            r#"{"size":64,"frames":16,"complex":false,"breathing":true,"supersample":3}"#,
        )
        .unwrap();
        assert_eq!(old, PhantomConfig::default());
    }

    #[test]
    fn config_round_trips_through_json_and_fills_defaults() {
        let cfg = PhantomConfig {
            complex: true,
            ..PhantomConfig::default()
        };
        let json = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<PhantomConfig>(&json).unwrap(), cfg);
        let partial: PhantomConfig = serde_json::from_str(r#"{"size": 128}"#).unwrap();
        assert_eq!(partial.size, 128);
        assert_eq!(partial.supersample, 3);
    }
}
