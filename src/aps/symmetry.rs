//! Symmetries of a measurement problem that a trained flow is not built to respect: the
//! left–right mirror P, complex conjugation C, a global phase e^{iφ} and small circular shifts
//! S_d (the flow's squeeze levels make it equivariant to shifts by multiples of 2^levels only).
//! For a symmetry g of both the prior (the training
//! distribution holds g x whenever it holds x) and the likelihood (A g = g′ A for a map g′ of the
//! measurements that keeps the noise's law), the posterior of the transformed problem is the
//! image of the posterior under g, so g⁻¹ G(z; c(g′ y)) is another posterior draw. An amortised
//! flow's error is not symmetric, so drawing over an orbit of symmetries and mapping back averages
//! part of it out with the same number of draws.

use std::f32::consts::TAU;

use serde::{Deserialize, Serialize};

use crate::bundle::OperatorKind;
use crate::error::{Error, Result};

/// The symmetries of a model's training data that its sampling draws over by default (an APS
/// model's `config.json`; `reconstruct --mirrored-draws / --phase-rotations / --conjugate-draws /
/// --draw-shift` override them). For multi-coil MRI the mirror, conjugation and shifts also
/// assume that the coil maps' mirror image, conjugate or shifted copy is one the model saw;
/// circular shifts wrap the image's edges (for ultrasound, depth), so keep them small.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingSymmetries {
    /// The data hold mirror images (the model was trained with horizontal flips).
    pub mirror: bool,
    /// Global phases to draw over (1: none); > 1 for complex data whose global phase is
    /// arbitrary (MRI's receiver phase).
    pub phase_rotations: usize,
    /// Complex data whose phase is as likely negated (x and x̄ equally likely): draw from the
    /// conjugated problem too.
    #[serde(default)]
    pub conjugate: bool,
    /// Circular shifts `[dy, dx]` (pixels) drawn over besides the unshifted problem, for data
    /// whose content is as likely a few pixels off (a patient's position in the field of view).
    #[serde(default)]
    pub shifts: Vec<[i32; 2]>,
}

impl Default for SamplingSymmetries {
    fn default() -> Self {
        Self {
            mirror: false,
            phase_rotations: 1,
            conjugate: false,
            shifts: Vec::new(),
        }
    }
}

/// Most global phases an orbit draws over.
const MAX_PHASES: usize = 64;
/// Most extra shifts an orbit draws over.
const MAX_SHIFTS: usize = 16;
/// Largest shift along an axis, in pixels.
const MAX_SHIFT: i32 = 32;
/// Most symmetries in an orbit: draw k solves symmetry k mod the orbit's size, so a larger orbit
/// than draws leaves symmetries undrawn, and each one costs a conditioning image per frame.
const MAX_ORBIT: usize = 256;

impl SamplingSymmetries {
    /// The draws' orbit, identity first: for each shift (none, then `shifts`), each phase
    /// φ_k = 2πk/`phase_rotations`, unconjugated then (with `conjugate`) conjugated, each
    /// unmirrored then (with `mirror`) mirrored. Fails for 0 or more than 64 phases, more than 16
    /// shifts, a shift beyond ±32 pixels, a repeated or zero shift.
    pub fn orbit(&self) -> Result<Vec<ProblemSymmetry>> {
        let phases = self.phase_rotations;
        if phases == 0 || phases > MAX_PHASES {
            return Err(Error::invalid(
                "APS phase rotations",
                format!("1..={MAX_PHASES}"),
                phases,
            ));
        }
        if self.shifts.len() > MAX_SHIFTS {
            return Err(Error::invalid(
                "APS draw shifts",
                format!("at most {MAX_SHIFTS}"),
                self.shifts.len(),
            ));
        }
        for (i, &s) in self.shifts.iter().enumerate() {
            if s == [0, 0] || s.iter().any(|d| d.abs() > MAX_SHIFT) || self.shifts[..i].contains(&s)
            {
                return Err(Error::invalid(
                    "APS draw shift",
                    format!("distinct non-zero [dy, dx] within ±{MAX_SHIFT} pixels"),
                    format!("{s:?}"),
                ));
            }
        }
        // [false] for a symmetry that is off, [false, true] for one that is on.
        let choices = |on: bool| &[false, true][..1 + usize::from(on)];
        let (conjugations, mirrors) = (choices(self.conjugate), choices(self.mirror));
        let size = (1 + self.shifts.len()) * phases * conjugations.len() * mirrors.len();
        if size > MAX_ORBIT {
            return Err(Error::invalid(
                "APS symmetry orbit",
                format!("at most {MAX_ORBIT} symmetries (shifts × phases × conjugation × mirror)"),
                size,
            ));
        }
        let mut out = Vec::with_capacity(size);
        for shift in std::iter::once([0, 0]).chain(self.shifts.iter().copied()) {
            for k in 0..phases {
                let phase = TAU * k as f32 / phases as f32;
                for &conjugate in conjugations {
                    for &mirror in mirrors {
                        out.push(ProblemSymmetry {
                            mirror,
                            conjugate,
                            phase,
                            shift,
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}

/// g x = S_d e^{iφ} C(P x): P mirrors left–right ((P x)[r, n] = x[r, W − 1 − n]) if `mirror`,
/// C conjugates if `conjugate`, then the global phase, then S_d shifts circularly by
/// `shift` = d ((S_d x)[r, n] = x[r − d_y, n − d_x], indices mod H, W).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProblemSymmetry {
    /// Mirror left–right.
    pub mirror: bool,
    /// Complex conjugate (complex images only).
    pub conjugate: bool,
    /// Global phase φ in radians (complex images only).
    pub phase: f32,
    /// Circular shift `[dy, dx]` in pixels.
    pub shift: [i32; 2],
}

impl ProblemSymmetry {
    /// g = identity.
    pub const IDENTITY: Self = Self {
        mirror: false,
        conjugate: false,
        phase: 0.0,
        shift: [0, 0],
    };

    /// The conditioning `[channels + 1, h, w]` (Aᴴy in network units, then the sampling pattern)
    /// of the transformed problem: Aᴴ′y′ = g Aᴴy. The phase commutes with every linear operator
    /// and leaves circular complex noise's law unchanged. For MRI, F P = D R_x F with R_x:
    /// k_x ↦ −k_x and D a phase, F C = C R F with R: k ↦ −k, and F S_d = e^{−2πi⟨k, d⟩/N} F: so the
    /// transformed problem samples the centred grid's k-space columns j ↦ (2⌊W/2⌋ − j) mod W
    /// once per mirror and conjugation, rows i ↦ (2⌊H/2⌋ − i) mod H per conjugation, and the same
    /// frequencies after a shift. Image-domain patterns (scan lines, inpainting) mirror and
    /// shift like the image and do not conjugate. Shifts are refused for super-resolution,
    /// whose block average is not shift-invariant.
    pub fn conditioning(
        &self,
        cond: &[f32],
        channels: usize,
        [h, w]: [usize; 2],
        operator: OperatorKind,
    ) -> Result<Vec<f32>> {
        let plane = h * w;
        if cond.len() != (channels + 1) * plane || w == 0 || h == 0 {
            return Err(Error::Shape {
                what: "APS conditioning image".into(),
                expected: vec![channels + 1, h, w],
                got: vec![cond.len()],
            });
        }
        self.check_problem(channels, operator)?;
        let mut out = cond.to_vec();
        let (image, pattern) = out.split_at_mut(channels * plane);
        if self.mirror {
            mirror_rows(image, w);
        }
        if self.conjugate {
            negate(&mut image[plane..]);
        }
        self.rotate(image, channels, plane)?;
        for channel in image.chunks_exact_mut(plane) {
            shift_plane(channel, [h, w], self.shift.map(i64::from));
        }
        if operator == OperatorKind::Mri {
            if self.mirror != self.conjugate {
                reindex_columns(pattern, w);
            }
            if self.conjugate {
                let original = pattern.to_vec();
                for (i, row) in pattern.chunks_exact_mut(w).enumerate() {
                    let source = negated_frequency(i, h);
                    row.copy_from_slice(&original[source * w..(source + 1) * w]);
                }
            }
        } else {
            if self.mirror {
                mirror_rows(pattern, w);
            }
            shift_plane(pattern, [h, w], self.shift.map(i64::from));
        }
        Ok(out)
    }

    /// g⁻¹ = P C e^{−iφ} S_{−d} applied in place to images `[n, channels, h, w]` (network units).
    pub fn invert_images(
        &self,
        images: &mut [f32],
        channels: usize,
        [h, w]: [usize; 2],
    ) -> Result<()> {
        let plane = h * w;
        let size = channels * plane;
        if size == 0 || !images.len().is_multiple_of(size) {
            return Err(Error::Shape {
                what: "APS draws".into(),
                expected: vec![channels, h, w],
                got: vec![images.len()],
            });
        }
        self.check_channels(channels)?;
        let unrotate = Self {
            phase: -self.phase,
            ..Self::IDENTITY
        };
        let back = self.shift.map(|d| -i64::from(d));
        for image in images.chunks_exact_mut(size) {
            for channel in image.chunks_exact_mut(plane) {
                shift_plane(channel, [h, w], back);
            }
            unrotate.rotate(image, channels, plane)?;
            if self.conjugate {
                negate(&mut image[plane..]);
            }
            if self.mirror {
                mirror_rows(image, w);
            }
        }
        Ok(())
    }

    /// Fails unless this symmetry maps a problem of `operator` on `channels`-channel images to
    /// one of the same kind: [`Self::check_channels`], and no shift under super-resolution,
    /// whose block average does not commute with shifts.
    pub fn check_problem(&self, channels: usize, operator: OperatorKind) -> Result<()> {
        self.check_channels(channels)?;
        if self.shift != [0, 0] && operator == OperatorKind::Superres {
            return Err(Error::invalid(
                "APS draw shift",
                "an operator that commutes with shifts (not super-resolution)",
                format!("{:?}", self.shift),
            ));
        }
        Ok(())
    }

    /// Fails for a phase rotation or conjugation of a real model (`channels` ≠ 2): a real
    /// image has no phase.
    pub fn check_channels(&self, channels: usize) -> Result<()> {
        if (self.phase != 0.0 || self.conjugate) && channels != 2 {
            return Err(Error::invalid(
                "APS phase rotation or conjugation",
                "a complex model (2 channels)",
                format!("{channels} channel(s)"),
            ));
        }
        Ok(())
    }

    /// Multiplies the complex image (channels re, im) by e^{iφ}.
    fn rotate(&self, image: &mut [f32], channels: usize, plane: usize) -> Result<()> {
        self.check_channels(channels)?;
        if self.phase == 0.0 {
            return Ok(());
        }
        let (sin, cos) = self.phase.sin_cos();
        let (re, im) = image.split_at_mut(plane);
        for (a, b) in re.iter_mut().zip(im.iter_mut()) {
            let (x, y) = (*a, *b);
            *a = x * cos - y * sin;
            *b = x * sin + y * cos;
        }
        Ok(())
    }
}

/// Every value negated (the imaginary channel of a conjugated image).
fn negate(values: &mut [f32]) {
    for v in values {
        *v = -*v;
    }
}

/// The index (2⌊n/2⌋ − i) mod n of the frequency −k on a centred grid of n whose index i holds
/// k = i − ⌊n/2⌋.
fn negated_frequency(i: usize, n: usize) -> usize {
    (2 * (n / 2) + n - i) % n
}

/// Every row's centred-grid column j replaced by the column of −k_x.
fn reindex_columns(values: &mut [f32], w: usize) {
    for row in values.chunks_exact_mut(w) {
        let original = row.to_vec();
        for (n, v) in row.iter_mut().enumerate() {
            *v = original[negated_frequency(n, w)];
        }
    }
}

/// One `[h, w]` plane shifted circularly: out[r, n] = in[r − dy, n − dx] (indices mod h, w).
fn shift_plane(plane: &mut [f32], [h, w]: [usize; 2], [dy, dx]: [i64; 2]) {
    if (dy == 0 && dx == 0) || h == 0 || w == 0 {
        return;
    }
    let original = plane.to_vec();
    // Image sides are far below i64::MAX, so the casts are exact.
    let wrap = |v: i64, n: usize| v.rem_euclid(n as i64) as usize;
    let (sy, sx) = (wrap(dy, h), wrap(dx, w));
    for r in 0..h {
        let from = (r + h - sy) % h;
        for n in 0..w {
            plane[r * w + n] = original[from * w + (n + w - sx) % w];
        }
    }
}

/// Every row of length `w` reversed.
fn mirror_rows(values: &mut [f32], w: usize) {
    for row in values.chunks_exact_mut(w) {
        row.reverse();
    }
}
