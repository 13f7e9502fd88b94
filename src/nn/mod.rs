//! Neural networks (burn). Models are backend-free burn modules; the backend is chosen at run time
//! through the burn `Device` (flex CPU by default, CUDA with the `cuda` feature).

pub mod aid;
pub mod device;
pub mod flow;
pub mod transition;
pub mod unet;
pub mod unet_denoiser;

pub use unet::{UNet, UNetConfig};
pub use unet_denoiser::UNetDenoiser;
