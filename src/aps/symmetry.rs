//! Symmetries of a measurement problem that a trained flow is not built to respect: the
//! left–right mirror P and a global phase e^{iφ}. For a symmetry g of both the prior (the training
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
/// model's `config.json`; `reconstruct --mirrored-draws / --phase-rotations` override them).
/// For multi-coil MRI the mirror also assumes the coil layout's mirror image is one the model saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingSymmetries {
    /// The data hold mirror images (the model was trained with horizontal flips).
    pub mirror: bool,
    /// Global phases to draw over (1: none); > 1 for complex data whose global phase is
    /// arbitrary (MRI's receiver phase).
    pub phase_rotations: usize,
}

impl Default for SamplingSymmetries {
    fn default() -> Self {
        Self {
            mirror: false,
            phase_rotations: 1,
        }
    }
}

impl SamplingSymmetries {
    /// [`ProblemSymmetry::orbit`] of these settings.
    pub fn orbit(&self) -> Result<Vec<ProblemSymmetry>> {
        ProblemSymmetry::orbit(self.mirror, self.phase_rotations)
    }
}

/// g x = e^{iφ}·(P x if `mirror`), with (P x)[r, n] = x[r, W − 1 − n].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProblemSymmetry {
    /// Mirror left–right.
    pub mirror: bool,
    /// Global phase φ in radians (complex images only).
    pub phase: f32,
}

impl ProblemSymmetry {
    /// g = identity.
    pub const IDENTITY: Self = Self {
        mirror: false,
        phase: 0.0,
    };

    /// The draws' orbit: phases φ_k = 2πk/`phases` (k < `phases`), each unmirrored and, with
    /// `mirror`, mirrored; the identity first, the mirror second.
    pub fn orbit(mirror: bool, phases: usize) -> Result<Vec<Self>> {
        if phases == 0 || phases > 64 {
            return Err(Error::invalid("APS phase rotations", "1..=64", phases));
        }
        let mut out = Vec::with_capacity(2 * phases);
        for k in 0..phases {
            let phase = TAU * k as f32 / phases as f32;
            out.push(Self {
                mirror: false,
                phase,
            });
            if mirror {
                out.push(Self {
                    mirror: true,
                    phase,
                });
            }
        }
        Ok(out)
    }

    /// The conditioning `[channels + 1, h, w]` (Aᴴy in network units, then the sampling pattern)
    /// of the transformed problem. Aᴴ′y′ = g Aᴴy: the phase commutes with every linear operator
    /// and leaves circular complex noise's law unchanged; for MRI F P = D R F with R: k_x ↦ −k_x
    /// and D a phase, so the mirrored problem samples the centred grid's k-space columns
    /// j ↦ (2⌊W/2⌋ − j) mod W, while image-domain patterns (scan lines, inpainting) mirror like
    /// the image.
    pub fn conditioning(
        &self,
        cond: &[f32],
        channels: usize,
        [h, w]: [usize; 2],
        operator: OperatorKind,
    ) -> Result<Vec<f32>> {
        let plane = h * w;
        if cond.len() != (channels + 1) * plane || w == 0 {
            return Err(Error::Shape {
                what: "APS conditioning image".into(),
                expected: vec![channels + 1, h, w],
                got: vec![cond.len()],
            });
        }
        let mut out = cond.to_vec();
        self.rotate(&mut out[..channels * plane], channels, plane)?;
        if self.mirror {
            mirror_rows(&mut out[..channels * plane], w);
            let pattern = &mut out[channels * plane..];
            if operator == OperatorKind::Mri {
                for row in pattern.chunks_exact_mut(w) {
                    let original = row.to_vec();
                    for (n, v) in row.iter_mut().enumerate() {
                        *v = original[(2 * (w / 2) + w - n) % w];
                    }
                }
            } else {
                mirror_rows(pattern, w);
            }
        }
        Ok(out)
    }

    /// g⁻¹ applied in place to images `[n, channels, h, w]` (network units).
    pub fn invert_images(
        &self,
        images: &mut [f32],
        channels: usize,
        [h, w]: [usize; 2],
    ) -> Result<()> {
        let size = channels * h * w;
        if size == 0 || !images.len().is_multiple_of(size) {
            return Err(Error::Shape {
                what: "APS draws".into(),
                expected: vec![channels, h, w],
                got: vec![images.len()],
            });
        }
        let inverse = Self {
            mirror: self.mirror,
            phase: -self.phase,
        };
        for image in images.chunks_exact_mut(size) {
            // P and the phase commute, so the order does not matter.
            if self.mirror {
                mirror_rows(image, w);
            }
            inverse.rotate(image, channels, h * w)?;
        }
        Ok(())
    }

    /// Fails for a phase rotation of a real model (`channels` ≠ 2): a real image has no phase.
    pub fn check_channels(&self, channels: usize) -> Result<()> {
        if self.phase != 0.0 && channels != 2 {
            return Err(Error::invalid(
                "APS phase rotation",
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

/// Every row of length `w` reversed.
fn mirror_rows(values: &mut [f32], w: usize) {
    for row in values.chunks_exact_mut(w) {
        row.reverse();
    }
}
