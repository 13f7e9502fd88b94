//! `cinediff simulate`: measure a known image or sequence and write a measurement bundle.

use std::path::PathBuf;

use anyhow::Context;
use cinediff::bundle::{simulate, MaskPattern, OperatorKind, SimulationSettings, Truth};
use cinediff::io::bundle::{read_values, write_bundle};
use cinediff::io::npy::{read_npy, NpyArray};
use clap::{Args, ValueEnum};

/// The forward model (see README "Measurement bundles").
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OperatorArg {
    /// Cartesian MRI: centred orthonormal FFT of each coil image, phase-encode lines (columns) sampled.
    Mri,
    /// Ultrasound scan-line subsampling: only some columns (scan lines) are acquired.
    UsLines,
    /// Inpainting: a random 1/accel of the pixels is kept.
    Inpaint,
    /// Denoising: every pixel, plus noise.
    Denoise,
    /// Super-resolution: mean of scale×scale blocks.
    Superres,
    /// Gaussian blur (periodic boundary).
    Blur,
}

impl From<OperatorArg> for OperatorKind {
    fn from(a: OperatorArg) -> Self {
        match a {
            OperatorArg::Mri => OperatorKind::Mri,
            OperatorArg::UsLines => OperatorKind::UsLines,
            OperatorArg::Inpaint => OperatorKind::Inpaint,
            OperatorArg::Denoise => OperatorKind::Denoise,
            OperatorArg::Superres => OperatorKind::Superres,
            OperatorArg::Blur => OperatorKind::Blur,
        }
    }
}

/// How the sampled lines (or pixels) are chosen.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MaskArg {
    /// Uniformly random lines (pixels for inpaint).
    Random,
    /// Evenly spaced lines from a random offset (sheared by one line per frame).
    Equispaced,
    /// Variable-density random lines, denser near the k-space centre.
    Gaussian,
    /// 2-D Poisson-disc points over both phase-encode axes (mri only).
    PoissonDisc,
}

impl From<MaskArg> for MaskPattern {
    fn from(a: MaskArg) -> Self {
        match a {
            MaskArg::Random => MaskPattern::Random,
            MaskArg::Equispaced => MaskPattern::Equispaced,
            MaskArg::Gaussian => MaskPattern::Gaussian,
            MaskArg::PoissonDisc => MaskPattern::PoissonDisc,
        }
    }
}

/// Options of `cinediff simulate`.
#[derive(Args)]
#[command(after_help = "Examples:\n  \
cinediff simulate --truth t.npy --operator mri --mask random --accel 4 --acs 8 --coils 4 --noise 0.01 --seed 0 --out b/\n  \
cinediff simulate --truth t.npy --operator us-lines --accel 4 --seed 0 --out b/\n\n\
--truth is float32 or complex64, [H, W] (a still image) or [T, H, W] (a sequence; a leading axis of\n\
length 1, as from `phantom --count 1`, is dropped). Masks are drawn\n\
afresh for every frame (ky-t sampling) unless --static-mask. The bundle directory gets\n\
measurement.toml, y.npy, mask.npy (uint8), csm.npy (coils > 1) and truth.npy; the format is in\n\
README.md. The same seed gives byte-identical files.")]
pub struct SimulateArgs {
    /// Ground-truth image(s), .npy float32 or complex64, [H, W] or [T, H, W].
    #[arg(long)]
    truth: PathBuf,
    /// Forward model.
    #[arg(long, value_enum)]
    operator: OperatorArg,
    /// Sampling pattern (mri, us-lines, inpaint).
    #[arg(long, value_enum, default_value_t = MaskArg::Random)]
    mask: MaskArg,
    /// Acceleration R: 1/R of the lines (pixels) are measured, calibration lines included.
    #[arg(long, default_value_t = 4.0)]
    accel: f64,
    /// Fully sampled k-space centre lines (mri) [default: round(0.08·W), fastMRI's fraction for R < 8].
    #[arg(long)]
    acs: Option<usize>,
    /// MRI receive coils; > 1 simulates SENSE with synthetic coil maps (root-sum-of-squares 1).
    #[arg(long, default_value_t = 4)]
    coils: usize,
    /// Noise standard deviation σ per measured entry (complex noise: E|n|² = σ²).
    #[arg(long, default_value_t = 0.01)]
    noise: f64,
    /// Super-resolution factor (superres).
    #[arg(long, default_value_t = 2)]
    scale: usize,
    /// Blur standard deviation in pixels (blur).
    #[arg(long, default_value_t = 1.5)]
    blur_sigma: f64,
    /// One mask for every frame instead of a fresh draw per frame.
    #[arg(long)]
    static_mask: bool,
    /// Seed of the mask draw and the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Bundle directory to write (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Replace a bundle already in --out.
    #[arg(long)]
    force: bool,
}

pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let complex = match read_npy(&args.truth)? {
        NpyArray::Complex { .. } => true,
        NpyArray::Real { .. } => false,
        NpyArray::U8 { .. } => anyhow::bail!(
            "{}: the truth must be float32 or complex64, got uint8",
            args.truth.display()
        ),
    };
    let (mut shape, values) = read_values(&args.truth, complex)?;
    // `phantom --count 1` writes [1, T, H, W]: drop leading axes of length 1 beyond three.
    while shape.len() > 3 && shape[0] == 1 {
        shape.remove(0);
    }
    let width = *shape.last().unwrap_or(&0);
    let operator: OperatorKind = args.operator.into();
    let acs = match operator {
        OperatorKind::Mri => args
            .acs
            .unwrap_or_else(|| ((0.08 * width as f64).round() as usize).max(1)),
        _ => args.acs.unwrap_or(0),
    };
    let settings = SimulationSettings {
        operator,
        mask: args.mask.into(),
        acceleration: args.accel,
        acs,
        coils: args.coils,
        noise_sigma: args.noise,
        static_mask: args.static_mask,
        scale: args.scale,
        blur_sigma: args.blur_sigma,
    };
    let bundle = simulate(Truth { shape, values }, complex, &settings, args.seed)
        .with_context(|| format!("simulating from {}", args.truth.display()))?;
    write_bundle(&args.out, &bundle, args.force)?;
    let spec = bundle.spec();
    let sampled = bundle.mask().map(|m| {
        let bytes = m.to_u8();
        bytes.len() as f64 / bytes.iter().filter(|&&b| b == 1).count().max(1) as f64
    });
    eprintln!(
        "wrote bundle {} ({} {:?}, {}{}, noise σ {})",
        args.out.display(),
        spec.operator.name(),
        spec.shape,
        if complex { "complex" } else { "real" },
        sampled.map_or(String::new(), |r| format!(", measured 1/{r:.2}")),
        spec.noise_sigma
    );
    Ok(())
}
