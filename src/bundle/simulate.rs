//! Simulated measurements of a known image or sequence: draw the sampling pattern and coil maps,
//! apply A_t and add noise, giving a [`Bundle`] that carries its truth.
//!
//! Randomness: masks come from stream 0 and noise from stream 1 of the seed
//! ([`substream`](crate::rng::substream)), so changing the noise level leaves the masks unchanged.

use num_complex::Complex32;

use crate::bundle::{Bundle, BundleMask, BundleSpec, OperatorKind, Truth};
use crate::error::{Error, Result};
use crate::physics::{kt_line_masks, poisson_disc_mask, CoilMaps, LineMask, LinePattern, Mask};
use crate::rng::{standard_normal, substream, SeededRng};

/// How the sampling mask is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaskPattern {
    /// Uniformly random lines (MRI phase encodes, ultrasound scan lines) or pixels (inpainting).
    Random,
    /// Evenly spaced lines from a random offset; per-frame masks shift by one line (k–t shearing).
    Equispaced,
    /// Variable-density lines, Gaussian density with σ = 0.25·W around the centre.
    Gaussian,
    /// 2-D Poisson-disc points (MRI only; both phase-encode axes).
    PoissonDisc,
}

impl MaskPattern {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            MaskPattern::Random => "random",
            MaskPattern::Equispaced => "equispaced",
            MaskPattern::Gaussian => "gaussian",
            MaskPattern::PoissonDisc => "poisson-disc",
        }
    }

    fn line_pattern(self) -> Option<LinePattern> {
        match self {
            MaskPattern::Random => Some(LinePattern::Random),
            MaskPattern::Equispaced => Some(LinePattern::Equispaced),
            MaskPattern::Gaussian => Some(LinePattern::Gaussian { std_fraction: 0.25 }),
            MaskPattern::PoissonDisc => None,
        }
    }
}

/// What to simulate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimulationSettings {
    /// The forward model.
    pub operator: OperatorKind,
    /// Sampling pattern (mri, us-lines, inpaint).
    pub mask: MaskPattern,
    /// Acceleration R: 1/R of the lines (pixels for inpainting and Poisson-disc) are measured.
    pub acceleration: f64,
    /// Fully sampled centre lines (MRI calibration; 0 for ultrasound).
    pub acs: usize,
    /// MRI receive coils (synthetic maps with root-sum-of-squares 1 when > 1).
    pub coils: usize,
    /// Noise standard deviation σ (E|n|² = σ² per measured entry).
    pub noise_sigma: f64,
    /// One mask for all frames instead of a fresh one per frame.
    pub static_mask: bool,
    /// Super-resolution factor.
    pub scale: usize,
    /// Blur standard deviation in pixels.
    pub blur_sigma: f64,
}

/// Simulates y_t = A_t x_t + n_t for `truth` (`[H, W]` or `[T, H, W]`); `complex` says whether the
/// image is complex-valued (a real truth has zero imaginary parts).
pub fn simulate(
    truth: Truth,
    complex: bool,
    settings: &SimulationSettings,
    seed: u64,
) -> Result<Bundle> {
    let shape: [usize; 3] = match truth.shape[..] {
        [h, w] => [1, h, w],
        [t, h, w] => [t, h, w],
        _ => {
            return Err(Error::invalid(
                "truth shape",
                "[H, W] or [T, H, W]",
                format!("{:?}", truth.shape),
            ))
        }
    };
    let spec = BundleSpec {
        operator: settings.operator,
        shape,
        complex,
        noise_sigma: settings.noise_sigma,
        coils: if settings.operator == OperatorKind::Mri {
            settings.coils
        } else {
            1
        },
        scale: settings.scale,
        blur_sigma: settings.blur_sigma,
    };
    spec.validate()?;
    if !(settings.acceleration.is_finite() && settings.acceleration >= 1.0) {
        return Err(Error::invalid(
            "acceleration",
            "a finite value ≥ 1",
            settings.acceleration,
        ));
    }
    let [_, h, w] = shape;
    let mask = draw_mask(settings, shape, &mut substream(seed, 0))?;
    let maps = (settings.operator == OperatorKind::Mri && settings.coils > 1)
        .then(|| CoilMaps::synthetic(settings.coils, [h, w]))
        .transpose()?;

    // Noise-free y from a bundle with a zero y, whose operators are then applied to the truth.
    let placeholder = Bundle::new(
        spec.clone(),
        vec![Complex32::default(); spec.y_shape().iter().product()],
        mask.clone(),
        maps.clone(),
        Some(truth.clone()),
    )?;
    let ops = placeholder.frame_operators()?;
    let frame_len = h * w;
    let mut noise_rng = substream(seed, 1);
    let mut y = Vec::with_capacity(placeholder.y().len());
    for (k, op) in ops.iter().enumerate() {
        let mut yk = op.forward(&truth.values[k * frame_len..(k + 1) * frame_len])?;
        let measured = measured_entries(&mask, k, h, yk.len())?;
        add_noise(
            &mut yk,
            &measured,
            settings.noise_sigma,
            spec.y_is_complex(),
            &mut noise_rng,
        );
        y.extend(yk);
    }
    Bundle::new(spec, y, mask, maps, Some(truth))
}

/// The mask of every frame (one draw repeated when `static_mask`), or `None` for maskless operators.
fn draw_mask(
    settings: &SimulationSettings,
    [t, h, w]: [usize; 3],
    rng: &mut SeededRng,
) -> Result<Option<BundleMask>> {
    let r = settings.acceleration;
    let draws = if settings.static_mask { 1 } else { t };
    let unsupported = |what: &str| {
        Error::invalid(
            "mask pattern",
            what.to_string(),
            settings.mask.name().to_string(),
        )
    };
    Ok(match settings.operator {
        OperatorKind::Mri | OperatorKind::UsLines => {
            let acs = if settings.operator == OperatorKind::UsLines {
                0
            } else {
                settings.acs
            };
            match settings.mask.line_pattern() {
                Some(pattern) => {
                    let lines: Vec<LineMask> = kt_line_masks(draws, w, r, acs, pattern, rng)?;
                    Some(BundleMask::Lines(repeat_frames(lines, t)))
                }
                None if settings.operator == OperatorKind::Mri => {
                    let masks: Vec<Mask> = (0..draws)
                        .map(|_| poisson_disc_mask([h, w], r, settings.acs, rng))
                        .collect::<Result<_>>()?;
                    Some(BundleMask::Pixels(repeat_frames(masks, t)))
                }
                None => return Err(unsupported("random, equispaced or gaussian for us-lines")),
            }
        }
        OperatorKind::Inpaint => {
            if settings.mask != MaskPattern::Random {
                return Err(unsupported("random for inpaint"));
            }
            let masks: Vec<Mask> = (0..draws)
                .map(|_| Mask::random_pixels([h, w], 1.0 / r, rng))
                .collect::<Result<_>>()?;
            Some(BundleMask::Pixels(repeat_frames(masks, t)))
        }
        OperatorKind::Denoise | OperatorKind::Superres | OperatorKind::Blur => None,
    })
}

/// Which entries of frame k's y (length `len`, coils × pixels or pixels) are measured.
fn measured_entries(
    mask: &Option<BundleMask>,
    k: usize,
    h: usize,
    len: usize,
) -> Result<Vec<bool>> {
    Ok(match mask {
        Some(m) => {
            // MRI k-space is coils × pixels: the pixel mask repeats for every coil.
            let pixels = m.frame_pixels(k, h)?;
            pixels.data().iter().copied().cycle().take(len).collect()
        }
        None => vec![true; len],
    })
}

/// Adds noise with E|n|² = σ² to the measured entries: complex (σ/√2 per part) or real.
fn add_noise(
    y: &mut [Complex32],
    measured: &[bool],
    sigma: f64,
    complex: bool,
    rng: &mut SeededRng,
) {
    if sigma == 0.0 {
        return;
    }
    let z = standard_normal(rng, 2 * y.len());
    let per_part = if complex {
        sigma / std::f64::consts::SQRT_2
    } else {
        sigma
    } as f32;
    for ((v, &m), pair) in y.iter_mut().zip(measured).zip(z.chunks_exact(2)) {
        if m {
            v.re += per_part * pair[0];
            if complex {
                v.im += per_part * pair[1];
            }
        }
    }
}

/// `draws` (one frame's mask, or one per frame) cycled to `t` frames.
fn repeat_frames<M: Clone>(draws: Vec<M>, t: usize) -> Vec<M> {
    draws.into_iter().cycle().take(t).collect()
}
