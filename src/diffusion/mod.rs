//! The diffusion core: noise schedules, the denoiser trait and its analytic oracle, and samplers.

pub mod clipped;
pub mod denoiser;
pub mod gaussian;
pub mod samplers;
pub mod schedule;
pub mod timesteps;

pub use clipped::ClippedDenoiser;
pub use denoiser::Denoiser;
pub use gaussian::GaussianDenoiser;
pub use schedule::{NoiseSchedule, ScheduleKind, TimestepSpacing};
pub use timesteps::{TimestepDistribution, TimestepEmphasis};
