//! Outside k-space (e.g. `bart phantom -k`, a scanner export, a `.npy`) as a measurement bundle
//! that `cinediff reconstruct` reads.
//!
//! The k-space must follow the bundle's convention (README, "Measurement bundles"): centred, DC at
//! (H/2, W/2), readout along H, phase encodes along W — which is BART's (`bart fft` is centred and
//! BART's dim 0 is the readout). BART's forward FFT is not unitary unless `-u`: k-space made with
//! plain `bart fft` (or `bart phantom -k`) is √(H·W) times the orthonormal k-space, so images
//! reconstructed from it are √(H·W) times brighter than `bart fft -u -i` would give — the same
//! image `bart fft -i` gives divided by √(H·W). Intensity matters only for diffusion priors, and
//! `reconstruct --intensity auto` matches it.

use num_complex::Complex32;

use crate::bundle::{Bundle, BundleMask, BundleSpec, OperatorKind, MASK_FILE};
use crate::error::{Error, Result};
use crate::io::layout::{Axis, Layout};
use crate::physics::CoilMaps;

/// K-space arranged as a bundle's `y.npy`: `[T, C, H, W]`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Kspace {
    /// `[T, C, H, W]`.
    pub shape: [usize; 4],
    /// Row-major values.
    pub data: Vec<Complex32>,
}

impl Kspace {
    /// K-space of `shape` whose axes are `layout` (any of `t`, `c`, `h`, `w`; other axes must
    /// have size 1), rearranged to `[T, C, H, W]`.
    pub fn new(shape: &[usize], layout: &Layout, data: &[Complex32]) -> Result<Self> {
        let (s, data) = layout.arrange(
            shape,
            data,
            &[Axis::Time, Axis::Coil, Axis::Row, Axis::Column],
        )?;
        Ok(Kspace {
            shape: [s[0], s[1], s[2], s[3]],
            data,
        })
    }

    /// The sampled phase-encode columns of each frame, `[T, W]`: column w of frame t counts as
    /// sampled when any coil holds a non-zero value in it (zero-filled k-space marks the rest).
    pub fn sampled_columns(&self) -> BundleMask {
        let [t, c, h, w] = self.shape;
        let mut lines = vec![0u8; t * w];
        for (k, frame) in self.data.chunks_exact(c * h * w).enumerate() {
            for row in frame.chunks_exact(w) {
                for (j, v) in row.iter().enumerate() {
                    if v.re != 0.0 || v.im != 0.0 {
                        lines[k * w + j] = 1;
                    }
                }
            }
        }
        // Shapes and values are valid by construction; an all-zero frame is reported by Bundle::new.
        BundleMask::from_u8(&[t, w], &lines, MASK_FILE)
            .unwrap_or_else(|_| unreachable!("[T, W] 0/1 mask"))
    }
}

/// A sampling mask for `frames` × `[h, w]` from a user's array of `shape` (non-zero = sampled):
/// `[W]` or `[1, W]` (the same lines every frame), `[T, W]` (lines per frame), `[H, W]` (the same
/// pixels every frame) or `[T, H, W]`. When T = H a 2-D mask is read as `[T, W]`, the layout of a
/// bundle's `mask.npy`.
pub fn mask_from_array(
    shape: &[usize],
    values: &[bool],
    [t, h, w]: [usize; 3],
) -> Result<BundleMask> {
    let bytes = |v: &[bool]| v.iter().map(|&b| b as u8).collect::<Vec<u8>>();
    let repeat = |n: usize| -> Vec<u8> { (0..n).flat_map(|_| bytes(values)).collect() };
    let (mask_shape, data) = match *shape {
        [n] if n == w => (vec![t, w], repeat(t)),
        [1, n] if n == w => (vec![t, w], repeat(t)),
        [a, n] if a == t && n == w => (vec![t, w], bytes(values)),
        [a, n] if a == h && n == w => (vec![t, h, w], repeat(t)),
        [a, b, n] if a == t && b == h && n == w => (vec![t, h, w], bytes(values)),
        _ => {
            return Err(Error::invalid(
                "mask shape",
                format!("[W], [T, W], [H, W] or [T, H, W] for k-space of {t} frames of {h}×{w}"),
                format!("{shape:?}"),
            ))
        }
    };
    BundleMask::from_u8(&mask_shape, &data, "mask")
}

/// Settings of a k-space import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// The sampling mask; `None` = the columns holding non-zero k-space ([`Kspace::sampled_columns`]).
    pub mask: Option<BundleMask>,
    /// Coil maps `[C, H, W]`; `None` estimates them from the calibration centre when C > 1.
    pub coil_maps: Option<CoilMaps>,
    /// The measurement noise σ recorded in `measurement.toml` (unknown for outside data: 0).
    pub noise_sigma: f64,
}

/// An MRI measurement bundle from k-space: entries outside the mask are set to zero, so a fully
/// sampled k-space with a mask is a retrospective undersampling.
pub fn bundle_from_kspace(kspace: Kspace, options: ImportOptions) -> Result<Bundle> {
    let [t, c, h, w] = kspace.shape;
    let mask = match options.mask {
        Some(m) => m,
        None => kspace.sampled_columns(),
    };
    let spec = BundleSpec {
        operator: OperatorKind::Mri,
        shape: [t, h, w],
        complex: true,
        noise_sigma: options.noise_sigma,
        coils: c,
        scale: 2,
        blur_sigma: 1.5,
    };
    spec.validate()?;
    if mask.frames() != t {
        return Err(Error::Shape {
            what: "mask frames vs k-space".into(),
            expected: vec![t],
            got: vec![mask.frames()],
        });
    }
    let mut y = kspace.data;
    for (k, frame) in y.chunks_exact_mut(c * h * w).enumerate() {
        let m = mask.frame_pixels(k, h)?;
        for coil in frame.chunks_exact_mut(h * w) {
            for (v, &keep) in coil.iter_mut().zip(m.data()) {
                if !keep {
                    *v = Complex32::new(0.0, 0.0);
                }
            }
        }
    }
    Bundle::new(spec, y, Some(mask), options.coil_maps, None)
}
