//! File formats. The only part of the library that touches the file system.

pub mod bundle;
pub mod cfl;
pub mod convert;
pub mod gif;
pub mod kspace;
pub mod layout;
pub mod model_dir;
pub mod nifti;
pub mod npy;
pub mod png;
