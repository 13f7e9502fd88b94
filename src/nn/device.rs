//! Which burn device runs the networks.

use burn::tensor::Device;

/// The compute device: CUDA when built with `--features cuda`, otherwise the pure-Rust flex CPU backend.
pub fn default_device() -> Device {
    #[cfg(feature = "cuda")]
    {
        Device::cuda(0usize)
    }
    #[cfg(not(feature = "cuda"))]
    {
        Device::flex()
    }
}

/// The same device with autodiff enabled (training and input gradients).
pub fn autodiff_device() -> Device {
    default_device().autodiff()
}
