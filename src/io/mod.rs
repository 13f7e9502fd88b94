//! File formats. The only part of the library that touches the file system.

pub mod bart;
pub mod bundle;
pub mod cfl;
pub mod convert;
pub mod gif;
#[cfg(feature = "hdf5")]
pub mod hdf5;
pub mod kspace;
pub mod layout;
pub mod model_dir;
pub mod nifti;
pub mod npy;
pub mod png;
