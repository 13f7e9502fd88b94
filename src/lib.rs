//! cinediff: posterior sampling with diffusion-model priors for image sequences.
//!
//! The core (schedules, samplers, denoiser trait, phantom) is plain Rust and does no I/O; networks live
//! in [`nn`] and [`train`] (generic over a burn backend); files are read and written only in [`io`].

pub mod aps;
pub mod baselines;
pub mod bundle;
pub mod data;
pub mod diffusion;
pub mod error;
pub mod eval;
pub mod image;
pub mod io;
pub mod method_settings;
pub mod metrics;
pub mod nn;
pub mod physics;
pub mod plot;
pub mod posterior;
pub mod reconstruction;
pub mod rng;
pub mod sequence;
pub mod train;

pub use error::{Error, Result};
pub use image::ImageBatch;
