//! File formats. The only part of the library that touches the file system.

pub mod bundle;
pub mod gif;
pub mod model_dir;
pub mod npy;
pub mod png;
