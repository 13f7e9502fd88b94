//! Built-in procedural data and data preparation.

pub mod dataset;
pub mod echo;
pub mod normalization;
pub mod phantom;

pub use normalization::Normalization;
