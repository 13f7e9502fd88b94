//! Sampling masks: Cartesian line masks over phase-encode columns, 2-D Poisson-disc masks, ky–t
//! masks that change every frame, and pixel masks for inpainting.
//!
//! Axis convention: images and k-space are row-major `[h, w]`; rows (axis 0) are the readout
//! direction, always fully sampled, and **columns (axis 1, width `w`) are phase encodes**. A
//! [`LineMask`] selects columns and is broadcast over all rows by [`LineMask::to_mask`]. The
//! centre column is index ⌊w/2⌋, where the centred FFT puts the zero frequency.
//!
//! Acceleration R means the **total** number of sampled lines (or points) is round(n/R),
//! calibration (ACS) centre included, as fastMRI's and deepinv's generators do.

use rand::seq::SliceRandom;
use rand::Rng;

use crate::error::{Error, Result};
use crate::physics::operator::checked_size;
use crate::rng::SeededRng;

/// Which phase-encode lines a [`line_mask`] samples outside the ACS centre.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LinePattern {
    /// Evenly spaced lines (gaps differ by at most one) from a random offset.
    Equispaced,
    /// Lines drawn uniformly at random without replacement.
    Random,
    /// Variable density: lines drawn without replacement with weight exp(−(k−k₀)²/2σ²), σ = `std_fraction`·w.
    Gaussian {
        /// Standard deviation of the density as a fraction of the width.
        std_fraction: f64,
    },
}

/// A set of sampled phase-encode columns (`true` = acquired).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineMask {
    lines: Vec<bool>,
}

impl LineMask {
    /// Wraps explicit lines; fails if empty.
    pub fn new(lines: Vec<bool>) -> Result<Self> {
        if lines.is_empty() {
            return Err(Error::invalid("line mask width", "at least 1", 0));
        }
        Ok(Self { lines })
    }

    /// Every line sampled.
    pub fn full(width: usize) -> Result<Self> {
        Self::new(vec![true; width])
    }

    /// Number of columns w.
    pub fn width(&self) -> usize {
        self.lines.len()
    }

    /// `true` where the column is acquired.
    pub fn lines(&self) -> &[bool] {
        &self.lines
    }

    /// Number of acquired columns.
    pub fn sampled(&self) -> usize {
        self.lines.iter().filter(|&&s| s).count()
    }

    /// Achieved acceleration w / sampled (infinite when nothing is sampled).
    pub fn acceleration(&self) -> f64 {
        self.width() as f64 / self.sampled() as f64
    }

    /// The 2-D `[rows, w]` mask: every row samples the same columns.
    pub fn to_mask(&self, rows: usize) -> Result<Mask> {
        let w = self.width();
        let len = checked_size("mask shape", &[rows, w])?;
        let mut data = Vec::with_capacity(len);
        for _ in 0..rows {
            data.extend_from_slice(&self.lines);
        }
        Mask::new([rows, w], data)
    }

    /// Each line repeated `factor` times side by side, e.g. transmits → scan-line columns of that thickness.
    pub fn expand(&self, factor: usize) -> Result<Self> {
        checked_size("expanded line mask", &[self.width(), factor])?;
        Self::new(
            self.lines
                .iter()
                .flat_map(|&s| std::iter::repeat_n(s, factor))
                .collect(),
        )
    }
}

/// A 2-D sampling or inpainting mask over a row-major `[h, w]` grid (`true` = measured).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mask {
    shape: [usize; 2],
    data: Vec<bool>,
}

impl Mask {
    /// Wraps `data`; fails unless `data.len() == h·w`.
    pub fn new(shape: [usize; 2], data: Vec<bool>) -> Result<Self> {
        let len = checked_size("mask shape", &shape)?;
        if data.len() != len {
            return Err(Error::Shape {
                what: "mask data".into(),
                expected: vec![len],
                got: vec![data.len()],
            });
        }
        Ok(Self { shape, data })
    }

    /// Everything measured.
    pub fn full(shape: [usize; 2]) -> Result<Self> {
        let len = checked_size("mask shape", &shape)?;
        Self::new(shape, vec![true; len])
    }

    /// Random-pixel inpainting: exactly round(`keep`·h·w) pixels kept, chosen uniformly.
    pub fn random_pixels(shape: [usize; 2], keep: f64, rng: &mut SeededRng) -> Result<Self> {
        let len = checked_size("mask shape", &shape)?;
        if !(keep.is_finite() && keep > 0.0 && keep <= 1.0) {
            return Err(Error::invalid("kept pixel fraction", "in (0, 1]", keep));
        }
        let count = ((keep * len as f64).round() as usize).clamp(1, len);
        let mut index: Vec<usize> = (0..len).collect();
        index.shuffle(rng);
        let mut data = vec![false; len];
        index[..count].iter().for_each(|&i| data[i] = true);
        Self::new(shape, data)
    }

    /// Box inpainting: everything measured except the `[bh, bw]` box at `[top, left]`.
    pub fn box_hole(shape: [usize; 2], top_left: [usize; 2], size: [usize; 2]) -> Result<Self> {
        let [h, w] = shape;
        let [top, left] = top_left;
        let [bh, bw] = size;
        let fits =
            |start: usize, len: usize, n: usize| start.checked_add(len).is_some_and(|e| e <= n);
        if bh == 0 || bw == 0 || !fits(top, bh, h) || !fits(left, bw, w) || (bh == h && bw == w) {
            return Err(Error::invalid(
                "inpainting box",
                format!("a non-empty box inside {h}×{w} that leaves some pixels"),
                format!("{bh}×{bw} at ({top}, {left})"),
            ));
        }
        let mut mask = Self::full(shape)?;
        for i in top..top + bh {
            mask.data[i * w + left..i * w + left + bw].fill(false);
        }
        Ok(mask)
    }

    /// `[h, w]`.
    pub fn shape(&self) -> [usize; 2] {
        self.shape
    }

    /// Row-major flags, `true` = measured.
    pub fn data(&self) -> &[bool] {
        &self.data
    }

    /// Number of measured points.
    pub fn sampled(&self) -> usize {
        self.data.iter().filter(|&&s| s).count()
    }

    /// Achieved acceleration h·w / sampled.
    pub fn acceleration(&self) -> f64 {
        self.data.len() as f64 / self.sampled() as f64
    }
}

/// The `len` centre indices of an axis of `n`: start ⌊(n − len + 1)/2⌋, so index ⌊n/2⌋ is covered (fastMRI).
pub fn centre_range(n: usize, len: usize) -> std::ops::Range<usize> {
    let len = len.min(n);
    let start = (n - len).div_ceil(2);
    start..start + len
}

/// Total sampled count round(n/R), validated against the ACS size.
fn target_count(what: &str, n: usize, acceleration: f64, acs_count: usize) -> Result<usize> {
    if !(acceleration.is_finite() && acceleration >= 1.0) {
        return Err(Error::invalid(
            "acceleration",
            "a finite R ≥ 1",
            acceleration,
        ));
    }
    let target = (n as f64 / acceleration).round() as usize;
    if target == 0 {
        return Err(Error::invalid(
            "acceleration",
            format!("R ≤ {} so that at least one {what} is sampled", 2 * n),
            acceleration,
        ));
    }
    if acs_count > target {
        return Err(Error::invalid(
            "ACS size",
            format!("at most the {target} {what}s that R = {acceleration} allows"),
            acs_count,
        ));
    }
    Ok(target)
}

fn check_acs(acs: usize, n: usize) -> Result<()> {
    if acs > n {
        return Err(Error::invalid(
            "ACS lines",
            format!("at most the width {n}"),
            acs,
        ));
    }
    Ok(())
}

/// A phase-encode line mask with round(w/R) lines in total, the centre `acs` lines included.
pub fn line_mask(
    width: usize,
    acceleration: f64,
    acs: usize,
    pattern: LinePattern,
    rng: &mut SeededRng,
) -> Result<LineMask> {
    let plan = LinePlan::new(width, acceleration, acs, pattern)?;
    let offset = plan.draw_offset(rng);
    plan.draw(offset, rng)
}

/// ky–t masks for `frames` frames: equispaced masks shift by one line per frame (k–t shearing,
/// one random start offset); random and Gaussian masks are drawn independently per frame.
pub fn kt_line_masks(
    frames: usize,
    width: usize,
    acceleration: f64,
    acs: usize,
    pattern: LinePattern,
    rng: &mut SeededRng,
) -> Result<Vec<LineMask>> {
    if frames == 0 {
        return Err(Error::invalid("frames", "at least 1", 0));
    }
    let plan = LinePlan::new(width, acceleration, acs, pattern)?;
    let offset = plan.draw_offset(rng);
    (0..frames)
        .map(|t| plan.draw((offset + t as f64).rem_euclid(plan.spacing), rng))
        .collect()
}

/// The validated parameters of a line mask draw.
struct LinePlan {
    width: usize,
    acs: std::ops::Range<usize>,
    /// Lines to place outside the ACS block.
    outer: usize,
    /// Spacing of equispaced lines in the index space of the non-ACS columns.
    spacing: f64,
    pattern: LinePattern,
}

impl LinePlan {
    fn new(width: usize, acceleration: f64, acs: usize, pattern: LinePattern) -> Result<Self> {
        if width == 0 {
            return Err(Error::invalid("mask width", "at least 1", 0));
        }
        check_acs(acs, width)?;
        if let LinePattern::Gaussian { std_fraction } = pattern {
            if !(std_fraction.is_finite() && std_fraction > 0.0) {
                return Err(Error::invalid(
                    "Gaussian density std_fraction",
                    "finite and > 0",
                    std_fraction,
                ));
            }
        }
        let target = target_count("line", width, acceleration, acs)?;
        let outer = target - acs;
        let free = width - acs;
        Ok(Self {
            width,
            acs: centre_range(width, acs),
            outer,
            spacing: if outer == 0 {
                1.0
            } else {
                free as f64 / outer as f64
            },
            pattern,
        })
    }

    fn draw_offset(&self, rng: &mut SeededRng) -> f64 {
        match self.pattern {
            LinePattern::Equispaced => rng.random::<f64>() * self.spacing,
            _ => 0.0,
        }
    }

    fn draw(&self, offset: f64, rng: &mut SeededRng) -> Result<LineMask> {
        let mut lines = vec![false; self.width];
        lines[self.acs.clone()].fill(true);
        let free: Vec<usize> = (0..self.width).filter(|k| !self.acs.contains(k)).collect();
        match self.pattern {
            LinePattern::Equispaced => {
                for k in 0..self.outer {
                    // offset < spacing and spacing·outer = free.len() keep the index in range.
                    let q =
                        ((offset + k as f64 * self.spacing).floor() as usize).min(free.len() - 1);
                    lines[free[q]] = true;
                }
            }
            LinePattern::Random => {
                for k in weighted_choice(&free, |_| 1.0, self.outer, rng) {
                    lines[k] = true;
                }
            }
            LinePattern::Gaussian { std_fraction } => {
                let centre = (self.width / 2) as f64;
                let sigma = std_fraction * self.width as f64;
                let weight = |k: usize| (-((k as f64 - centre) / sigma).powi(2) / 2.0).exp();
                for k in weighted_choice(&free, weight, self.outer, rng) {
                    lines[k] = true;
                }
            }
        }
        LineMask::new(lines)
    }
}

/// `count` distinct items drawn without replacement with probabilities ∝ `weight`
/// (Efraimidis–Spirakis: keep the largest ln(u)/weight keys).
fn weighted_choice(
    items: &[usize],
    weight: impl Fn(usize) -> f64,
    count: usize,
    rng: &mut SeededRng,
) -> Vec<usize> {
    let mut keyed: Vec<(f64, usize)> = items
        .iter()
        .map(|&k| {
            let u = 1.0 - rng.random::<f64>();
            // Weights underflowing to 0 still get a (very small) chance rather than −∞·0.
            (u.ln() / weight(k).max(f64::MIN_POSITIVE), k)
        })
        .collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    keyed.into_iter().take(count).map(|(_, k)| k).collect()
}

/// A 2-D Poisson-disc mask over `[h, w]`: round(h·w/R) points in total, a fully sampled centred
/// `acs × acs` block included, the others at least a common radius apart (the largest radius that
/// still fits enough points, found by bisection; surplus points are dropped at random).
pub fn poisson_disc_mask(
    shape: [usize; 2],
    acceleration: f64,
    acs: usize,
    rng: &mut SeededRng,
) -> Result<Mask> {
    let len = checked_size("mask shape", &shape)?;
    let [h, w] = shape;
    check_acs(acs, h.min(w))?;
    let target = target_count("point", len, acceleration, acs * acs)?;
    let (rows, cols) = (centre_range(h, acs), centre_range(w, acs));
    let in_acs = |i: usize, j: usize| rows.contains(&i) && cols.contains(&j);
    let mut order: Vec<(usize, usize)> = (0..h)
        .flat_map(|i| (0..w).map(move |j| (i, j)))
        .filter(|&(i, j)| !in_acs(i, j))
        .collect();
    order.shuffle(rng);
    let wanted = target - acs * acs;
    let mut data = vec![false; len];
    rows.clone()
        .flat_map(|i| cols.clone().map(move |j| i * w + j))
        .for_each(|k| data[k] = true);
    if wanted > 0 {
        // Invariant: radius `lo` fits ≥ wanted points, `hi` fits fewer; radius 1 fits every point.
        let diagonal = ((h * h + w * w) as f64).sqrt();
        let mut lo = 1.0f64;
        let mut best = dart_throw(shape, &order, lo);
        let mut hi = 2.0f64;
        loop {
            let picked = dart_throw(shape, &order, hi);
            if picked.len() < wanted {
                break;
            }
            (lo, best) = (hi, picked);
            if hi > diagonal {
                break;
            }
            hi *= 2.0;
        }
        if lo < hi {
            for _ in 0..24 {
                let mid = 0.5 * (lo + hi);
                let picked = dart_throw(shape, &order, mid);
                if picked.len() >= wanted {
                    (lo, best) = (mid, picked);
                } else {
                    hi = mid;
                }
            }
        }
        // `order` is random, so dropping the last accepted points drops random points.
        best.truncate(wanted);
        best.into_iter().for_each(|k| data[k] = true);
    }
    Mask::new(shape, data)
}

/// Greedy dart throwing in `order`: accepts a point unless an accepted one is closer than `radius`.
fn dart_throw(shape: [usize; 2], order: &[(usize, usize)], radius: f64) -> Vec<usize> {
    let [h, w] = shape;
    let reach = radius.ceil() as usize;
    let window = (2 * reach + 1).saturating_mul(2 * reach + 1);
    let r2 = radius * radius;
    let close = |a: usize, b: usize, i: usize, j: usize| {
        (a as f64 - i as f64).powi(2) + (b as f64 - j as f64).powi(2) < r2
    };
    let mut taken = vec![false; h * w];
    let mut accepted: Vec<(usize, usize)> = Vec::new();
    for &(i, j) in order {
        // Scan whichever is smaller: the neighbourhood window or the accepted list.
        let blocked = if accepted.len() < window {
            accepted.iter().any(|&(a, b)| close(a, b, i, j))
        } else {
            (i.saturating_sub(reach)..(i + reach + 1).min(h)).any(|a| {
                (j.saturating_sub(reach)..(j + reach + 1).min(w))
                    .any(|b| taken[a * w + b] && close(a, b, i, j))
            })
        };
        if !blocked {
            taken[i * w + j] = true;
            accepted.push((i, j));
        }
    }
    accepted.into_iter().map(|(i, j)| i * w + j).collect()
}
