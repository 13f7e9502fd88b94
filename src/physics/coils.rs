//! Coil sensitivity maps: synthetic maps for simulation and estimation from the fully sampled
//! k-space centre (calibration / ACS region) of real data.

use num_complex::Complex32;

use crate::error::{ensure_finite_complex, Error, Result};
use crate::physics::fft::Fft2;
use crate::physics::masks::centre_range;
use crate::physics::operator::{check_len, checked_size};

/// Complex sensitivities S_c of `coils` receive coils over `[h, w]` images, row-major `[coils, h, w]`.
#[derive(Clone, Debug, PartialEq)]
pub struct CoilMaps {
    shape: [usize; 3],
    data: Vec<Complex32>,
}

impl CoilMaps {
    /// Wraps `data`; fails unless `data.len() == coils·h·w` and every value is finite.
    pub fn new(shape: [usize; 3], data: Vec<Complex32>) -> Result<Self> {
        checked_size("coil-map shape", &shape)?;
        check_len("coil-map data", &shape, data.len())?;
        ensure_finite_complex("coil maps", &data)?;
        Ok(Self { shape, data })
    }

    /// Smooth synthetic maps: Gaussian sensitivity bumps from coils evenly spaced on a circle just
    /// outside the field of view, each with a smooth linear phase, scaled so Σ_c|S_c|² = 1 at every pixel.
    pub fn synthetic(coils: usize, image_shape: [usize; 2]) -> Result<Self> {
        let [h, w] = image_shape;
        let shape = [coils, h, w];
        let len = checked_size("coil-map shape", &shape)?;
        let plane = h * w;
        let mut maps = vec![num_complex::Complex64::default(); len];
        for (c, map) in maps.chunks_exact_mut(plane).enumerate() {
            let angle = std::f64::consts::TAU * c as f64 / coils as f64;
            let (dir_x, dir_y) = (angle.cos(), angle.sin());
            // Coil 1.3 half-widths from the centre, sensitivity width 0.8 half-widths (FOV = [−1, 1]²).
            let (cx, cy) = (1.3 * dir_x, 1.3 * dir_y);
            for (k, v) in map.iter_mut().enumerate() {
                let y = (k / w) as f64 * 2.0 / h as f64 + 1.0 / h as f64 - 1.0;
                let x = (k % w) as f64 * 2.0 / w as f64 + 1.0 / w as f64 - 1.0;
                let d2 = (x - cx).powi(2) + (y - cy).powi(2);
                let magnitude = (-d2 / (2.0 * 0.8 * 0.8)).exp();
                let phase = angle + 0.6 * (x * dir_x + y * dir_y);
                *v = num_complex::Complex64::from_polar(magnitude, phase);
            }
        }
        for k in 0..plane {
            let rss = (0..coils)
                .map(|c| maps[c * plane + k].norm_sqr())
                .sum::<f64>()
                .sqrt();
            (0..coils).for_each(|c| maps[c * plane + k] /= rss);
        }
        let data = maps
            .iter()
            .map(|v| Complex32::new(v.re as f32, v.im as f32))
            .collect();
        Self::new(shape, data)
    }

    /// Maps from `[coils, h, w]` centred k-space whose centred `calib = [rows, cols]` block is fully
    /// sampled: low-resolution coil images I_c (block × cos² window, zero-filled, inverse FFT),
    /// S_c = m(r)·I_c/r with r = √Σ|I_c|², and m a smoothstep from 0 at r = `threshold`·max(r)/2 to 1 at
    /// `threshold`·max(r) that removes noise-only background.
    pub fn estimate(
        kspace: &[Complex32],
        shape: [usize; 3],
        calib: [usize; 2],
        threshold: f64,
    ) -> Result<Self> {
        checked_size("k-space shape", &shape)?;
        check_len("k-space data", &shape, kspace.len())?;
        ensure_finite_complex("k-space", kspace)?;
        let [coils, h, w] = shape;
        let [cr, cc] = calib;
        if cr == 0 || cc == 0 || cr > h || cc > w {
            return Err(Error::invalid(
                "calibration region",
                format!("between 1×1 and the k-space size {h}×{w}"),
                format!("{cr}×{cc}"),
            ));
        }
        if !(threshold.is_finite() && (0.0..1.0).contains(&threshold)) {
            return Err(Error::invalid("coil-map threshold", "in [0, 1)", threshold));
        }
        let fft = Fft2::new([h, w])?;
        let mut scratch = fft.make_scratch();
        let plane = h * w;
        let (rows, cols) = (centre_range(h, cr), centre_range(w, cc));
        // A window symmetric about the zero frequency keeps I_c free of spurious phase and ringing.
        let window = |k: usize, n: usize, len: usize| {
            let d = k as f64 - (n / 2) as f64;
            if 2.0 * d.abs() >= len as f64 {
                0.0
            } else {
                (std::f64::consts::PI * d / len as f64).cos().powi(2)
            }
        };
        let mut images = vec![Complex32::default(); kspace.len()];
        for (image, ksp) in images
            .chunks_exact_mut(plane)
            .zip(kspace.chunks_exact(plane))
        {
            for i in rows.clone() {
                let wi = window(i, h, cr);
                for j in cols.clone() {
                    image[i * w + j] = ksp[i * w + j] * (wi * window(j, w, cc)) as f32;
                }
            }
            fft.inverse_centered(image, &mut scratch)?;
        }
        let rss: Vec<f64> = (0..plane)
            .map(|k| {
                (0..coils)
                    .map(|c| images[c * plane + k].norm_sqr() as f64)
                    .sum::<f64>()
                    .sqrt()
            })
            .collect();
        let peak = rss.iter().cloned().fold(0.0, f64::max);
        if peak <= 0.0 {
            return Err(Error::invalid(
                "calibration k-space",
                "some non-zero signal in the calibration region",
                "all zeros",
            ));
        }
        let (lo, hi) = (0.5 * threshold * peak, threshold * peak);
        for (k, &r) in rss.iter().enumerate() {
            let weight = if r <= 0.0 {
                0.0
            } else if hi <= lo || r >= hi {
                1.0
            } else {
                let s = ((r - lo) / (hi - lo)).clamp(0.0, 1.0);
                s * s * (3.0 - 2.0 * s)
            };
            let factor = if r > 0.0 { (weight / r) as f32 } else { 0.0 };
            (0..coils).for_each(|c| images[c * plane + k] *= factor);
        }
        Self::new(shape, images)
    }

    /// `[coils, h, w]`.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Number of coils.
    pub fn coils(&self) -> usize {
        self.shape[0]
    }

    /// All maps, row-major `[coils, h, w]`.
    pub fn data(&self) -> &[Complex32] {
        &self.data
    }

    /// The `[h, w]` map of each coil in turn.
    pub fn coil_images(&self) -> std::slice::ChunksExact<'_, Complex32> {
        self.data.chunks_exact(self.shape[1] * self.shape[2])
    }

    /// Root-sum-of-squares √Σ_c|S_c|² per pixel, `[h, w]`.
    pub fn rss(&self) -> Vec<f32> {
        let plane = self.shape[1] * self.shape[2];
        (0..plane)
            .map(|k| {
                self.coil_images()
                    .map(|s| s[k].norm_sqr() as f64)
                    .sum::<f64>()
                    .sqrt() as f32
            })
            .collect()
    }
}
