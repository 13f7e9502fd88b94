//! Multi-coil (SENSE) Cartesian MRI: y_c = M F (S_c ⊙ x) for coil maps S_c.

use std::sync::Arc;

use num_complex::Complex32;

use crate::error::{Error, Result};
use crate::physics::coils::CoilMaps;
use crate::physics::fft::Fft2;
use crate::physics::masks::Mask;
use crate::physics::mri::apply_mask;
use crate::physics::operator::{check_io, check_normal, LinearOperator};

/// y_c = M ⊙ F(S_c ⊙ x) for `[h, w]` images and `[coils, h, w]` k-space;
/// Aᴴ y = Σ_c conj(S_c) ⊙ F⁻¹(M ⊙ y_c). With Σ_c|S_c|² ≤ 1, ‖A‖ ≤ 1.
#[derive(Clone, Debug)]
pub struct SenseMri {
    fft: Arc<Fft2>,
    maps: Arc<CoilMaps>,
    mask: Mask,
    input: [usize; 2],
    output: [usize; 3],
}

impl SenseMri {
    /// The operator for `maps` (`[coils, h, w]`) and a `[h, w]` mask shared by all coils.
    pub fn new(maps: Arc<CoilMaps>, mask: Mask) -> Result<Self> {
        let [_, h, w] = maps.shape();
        let fft = Arc::new(Fft2::new([h, w])?);
        Self::with_plan(fft, maps, mask)
    }

    /// Shares planned transforms; fails unless maps, mask and plan agree on `[h, w]`.
    pub fn with_plan(fft: Arc<Fft2>, maps: Arc<CoilMaps>, mask: Mask) -> Result<Self> {
        let [coils, h, w] = maps.shape();
        for (what, shape) in [("sampling mask", mask.shape()), ("FFT size", fft.shape())] {
            if shape != [h, w] {
                return Err(Error::Shape {
                    what: format!("{what} vs coil-map image size"),
                    expected: vec![h, w],
                    got: shape.to_vec(),
                });
            }
        }
        Ok(Self {
            fft,
            maps,
            mask,
            input: [h, w],
            output: [coils, h, w],
        })
    }

    /// The coil maps.
    pub fn maps(&self) -> &CoilMaps {
        &self.maps
    }

    /// The sampling mask.
    pub fn mask(&self) -> &Mask {
        &self.mask
    }
}

impl LinearOperator for SenseMri {
    fn input_shape(&self) -> &[usize] {
        &self.input
    }

    fn output_shape(&self) -> &[usize] {
        &self.output
    }

    fn forward_into(&self, x: &[Complex32], y: &mut [Complex32]) -> Result<()> {
        check_io(self, x.len(), y.len(), false)?;
        let mut scratch = self.fft.make_scratch();
        for (yc, sc) in y.chunks_exact_mut(x.len()).zip(self.maps.coil_images()) {
            for ((o, &s), &v) in yc.iter_mut().zip(sc).zip(x) {
                *o = s * v;
            }
            self.fft.forward_centered(yc, &mut scratch)?;
            apply_mask(yc, &self.mask);
        }
        Ok(())
    }

    fn adjoint_into(&self, y: &[Complex32], x: &mut [Complex32]) -> Result<()> {
        check_io(self, y.len(), x.len(), true)?;
        let mut scratch = self.fft.make_scratch();
        let mut coil = vec![Complex32::default(); x.len()];
        x.fill(Complex32::default());
        for (yc, sc) in y.chunks_exact(x.len()).zip(self.maps.coil_images()) {
            coil.copy_from_slice(yc);
            apply_mask(&mut coil, &self.mask);
            self.fft.inverse_centered(&mut coil, &mut scratch)?;
            for ((o, &s), &v) in x.iter_mut().zip(sc).zip(&coil) {
                *o += s.conj() * v;
            }
        }
        Ok(())
    }

    fn normal_into(&self, x: &[Complex32], out: &mut [Complex32]) -> Result<()> {
        check_normal(self, x.len(), out.len())?;
        // Coil by coil through one image-sized buffer instead of the full [coils, h, w] k-space.
        let mut scratch = self.fft.make_scratch();
        let mut coil = vec![Complex32::default(); x.len()];
        out.fill(Complex32::default());
        for sc in self.maps.coil_images() {
            for ((c, &s), &v) in coil.iter_mut().zip(sc).zip(x) {
                *c = s * v;
            }
            self.fft.forward_centered(&mut coil, &mut scratch)?;
            apply_mask(&mut coil, &self.mask);
            self.fft.inverse_centered(&mut coil, &mut scratch)?;
            for ((o, &s), &v) in out.iter_mut().zip(sc).zip(&coil) {
                *o += s.conj() * v;
            }
        }
        Ok(())
    }
}
