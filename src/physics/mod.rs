//! Measurement physics: linear operators, FFTs, sampling masks and coil maps.
//!
//! Every operator implements [`LinearOperator`] (forward A, adjoint Aᴴ, normal AᴴA, shapes) on flat
//! row-major [`Complex32`](num_complex::Complex32) buffers; real images are complex with zero
//! imaginary part ([`complex`] converts to and from [`ImageBatch`](crate::ImageBatch) channels).
//! Operators compose with [`Compose`]; [`operator_norm`] estimates ‖A‖ by power iteration.
//!
//! | operator | A | shapes |
//! |---|---|---|
//! | [`Identity`] | x (denoising) | any → same |
//! | [`PixelMask`] | M ⊙ x (random-pixel / box inpainting) | `[h, w]` → `[h, w]` |
//! | [`AvgPool`] | mean of s×s blocks (super-resolution), ‖A‖ = 1/s | `[h, w]` → `[h/s, w/s]` |
//! | [`GaussianBlur`] | F⁻¹(K̂ ⊙ F x), periodic boundary, ‖A‖ = 1 | `[h, w]` → `[h, w]` |
//! | [`CenteredFft`] | F x (unitary) | `[h, w]` → `[h, w]` |
//! | [`CartesianMri`] | M ⊙ F x | `[h, w]` → `[h, w]` |
//! | [`SenseMri`] | M ⊙ F(S_c ⊙ x) per coil | `[h, w]` → `[coils, h, w]` |
//! | [`FrameSequence`] ([`DynamicMri`], [`DynamicSense`], [`UltrasoundSequence`]) | A_t x_t per frame | `[T, …]` → `[T, …]` |
//! | [`ScanLineSubsampling`] | x ⊙ m, acquired scan lines (columns) of a depth × line image | `[depth, lines]` → same |
//!
//! Conventions:
//! - **FFT**: F = fftshift ∘ FFT₂ ∘ ifftshift scaled by 1/√(hw), i.e. numpy's
//!   `fftshift(fft2(ifftshift(x), norm="ortho"))` (fastMRI, deepinv, `bart fft -u`), so it is
//!   unitary, Fᴴ = F⁻¹, and the zero frequency sits at index (⌊h/2⌋, ⌊w/2⌋) for odd sizes too.
//!   Forward and inverse use the same shift order, which for odd sizes differs from AID's
//!   (fftshift first); for even sizes they coincide.
//! - **Masks**: axis 0 (rows, h) is the fully sampled readout, **axis 1 (columns, w) is phase
//!   encode**; line masks select columns and broadcast over rows. Unsampled k-space is zero.
//!   Acceleration R counts all sampled lines (ACS centre included): round(w/R) lines in total.
//! - **Coil maps**: `[coils, h, w]`; simulation maps satisfy Σ_c|S_c|² = 1 at every pixel, which
//!   makes ‖A‖ ≤ 1 for SENSE.

pub mod avg_pool;
pub mod blur;
pub mod coils;
pub mod complex;
pub mod fft;
pub mod identity;
pub mod masks;
pub mod mri;
pub mod operator;
pub mod pixel_mask;
pub mod sense;
pub mod sequence;
pub mod ultrasound;

pub use avg_pool::AvgPool;
pub use blur::GaussianBlur;
pub use coils::CoilMaps;
pub use fft::{CenteredFft, Fft2};
pub use identity::Identity;
pub use masks::{kt_line_masks, line_mask, poisson_disc_mask, LineMask, LinePattern, Mask};
pub use mri::CartesianMri;
pub use operator::{operator_norm, Compose, LinearOperator};
pub use pixel_mask::PixelMask;
pub use sense::SenseMri;
pub use sequence::{DynamicMri, DynamicSense, FrameSequence};
pub use ultrasound::{ScanLineSubsampling, UltrasoundSequence};
