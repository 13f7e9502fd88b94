//! `cinediff convert`: an array from one file format to another (by extension), or k-space into a
//! measurement bundle (`--kspace`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use cinediff::io::bundle::write_bundle;
use cinediff::io::cfl::cfl_paths;
use cinediff::io::convert::{
    default_layout, read_array, reshaped, to_complex, write_array, Format, ImageOptions, Loaded,
};
use cinediff::io::kspace::{bundle_from_kspace, mask_from_array, ImportOptions, Kspace};
use cinediff::io::layout::{Axis, Layout};
use cinediff::io::npy::NpyArray;
use cinediff::io::png::{Depth, Window};
use cinediff::physics::CoilMaps;
use clap::{Args, ValueEnum};

/// PNG sample depth.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BitDepthArg {
    /// Levels 0–255.
    #[value(name = "8")]
    Eight,
    /// Levels 0–65535.
    #[value(name = "16")]
    Sixteen,
}

/// Options of `cinediff convert`.
#[derive(Args)]
#[command(after_help = "Examples:\n  \
cinediff convert recon.npy recon.cfl            # opens in bart (bart show -m recon)\n  \
cinediff convert img.cfl img.nii\n  \
cinediff convert cine.npy cine.apng --window 0:1.5\n  \
cinediff convert k.cfl bundle/ --kspace --mask mask.npy   # k-space → measurement bundle\n\n\
Formats by extension: .npy .cfl (+ .hdr) .nii (NIfTI-1) .png .gif .apng; GIF is written only.\n\
Axes: cinediff arrays are row-major [.., H, W] (rows = readout, columns = phase encodes). An .npy's\n\
axes default by rank to h,w / t,h,w / t,c,h,w; --axes names them (t time, c coil, z slice, h, w,\n\
b<N> another BART dim). In BART files h, w, z, c, t are dims 0, 1, 2, 3, 10; in NIfTI h, w, z, t\n\
are dims 1 to 4. Images (.png .gif .apng) show |x| through the window [lo, hi] (default\n\
[min(0, smallest), largest]). PNG levels read back as float32 0-255 or 0-65535.\n\
--kspace writes a bundle directory (measurement.toml, y.npy, mask.npy) for\n\
`cinediff reconstruct --method zero-filled|cg|tv|...`: k-space centred (DC at H/2, W/2) as BART's;\n\
without --mask the sampled columns are those holding non-zero values; with --mask the rest are\n\
zeroed (retrospective undersampling); coil maps from --csm or estimated from the fully sampled centre.\n\
fastMRI / ISMRMRD HDF5 k-space (.h5 .hdf5 .mrd) with --kspace needs a build with --features hdf5:\n  \
cinediff convert file.h5 bundle/ --kspace [--slice N] [--crop-readout 320]")]
pub struct ConvertArgs {
    /// Input file.
    input: PathBuf,
    /// Output file (a bundle directory with --kspace).
    output: PathBuf,
    /// Meaning of the input's axes, comma-separated (e.g. t,h,w or c,h,w).
    #[arg(long)]
    axes: Option<String>,
    /// Replace an existing output.
    #[arg(long)]
    force: bool,
    /// Intensity window LO:HI of image outputs (|x| = LO black, HI white).
    #[arg(long, value_name = "LO:HI")]
    window: Option<String>,
    /// Bits per sample of .png / .apng outputs.
    #[arg(long, value_enum, default_value_t = BitDepthArg::Eight)]
    bit_depth: BitDepthArg,
    /// Frames per second of .gif / .apng outputs.
    #[arg(long, default_value_t = 10.0)]
    fps: f64,
    /// The input is k-space: write a measurement bundle directory.
    #[arg(long)]
    kspace: bool,
    /// Sampling mask (--kspace; any readable format, non-zero = sampled): [W], [T, W], [H, W] or
    /// [T, H, W] (a 2-D mask is [T, W] when T = H).
    #[arg(long, requires = "kspace")]
    mask: Option<PathBuf>,
    /// Coil sensitivity maps [C, H, W] (--kspace; e.g. from bart ecalib).
    #[arg(long, requires = "kspace")]
    csm: Option<PathBuf>,
    /// Measurement noise σ to record in measurement.toml (--kspace).
    #[arg(long, default_value_t = 0.0, requires = "kspace")]
    noise: f64,
    /// Import only this slice of a fastMRI / ISMRMRD HDF5 file (--kspace; default: slices → frames).
    #[arg(long, requires = "kspace")]
    slice: Option<usize>,
    /// Crop the readout of HDF5 k-space to this many rows (centre of the image; fastMRI's 2×
    /// oversampled readout: half its length).
    #[arg(long, value_name = "ROWS", requires = "kspace")]
    crop_readout: Option<usize>,
}

/// The input with its layout: --axes, else what the file says, else cinediff's default for the
/// shape ([`default_layout`]: leading length-1 axes beyond three dropped).
fn with_layout(
    loaded: Loaded,
    axes: Option<&str>,
    path: &Path,
) -> anyhow::Result<(NpyArray, Layout)> {
    let Loaded {
        array,
        layout: file_layout,
        ..
    } = loaded;
    let file_shape = array.shape().to_vec();
    let context = || format!("{} has shape {file_shape:?}", path.display());
    let (array, layout) = match (axes, file_layout) {
        (Some(text), _) => (array, Layout::parse(text)?),
        (None, Some(l)) => (array, l),
        (None, None) => {
            let (shape, layout) = default_layout(&file_shape).with_context(context)?;
            (reshaped(array, shape)?, layout)
        }
    };
    layout.check_rank(array.shape()).with_context(context)?;
    Ok((array, layout))
}

/// True if writing `path` in `format` would replace a file.
fn output_exists(path: &Path, format: Format) -> bool {
    match format {
        Format::Cfl => {
            let (hdr, cfl) = cfl_paths(path);
            hdr.exists() || cfl.exists()
        }
        _ => path.exists(),
    }
}

fn parse_window(text: &str) -> anyhow::Result<Window> {
    let parsed = text.split_once(':').and_then(|(lo, hi)| {
        Some((
            lo.trim().parse::<f32>().ok()?,
            hi.trim().parse::<f32>().ok()?,
        ))
    });
    let (lo, hi) = parsed.ok_or_else(|| {
        anyhow::anyhow!("invalid --window: expected LO:HI (e.g. 0:1.5), got {text:?}")
    })?;
    Ok(Window::new(lo, hi)?)
}

pub fn run(args: ConvertArgs) -> anyhow::Result<()> {
    if args.kspace {
        return import_kspace(&args);
    }
    let out_format = Format::from_path(&args.output)?;
    if output_exists(&args.output, out_format) && !args.force {
        anyhow::bail!(
            "output {} already exists; pass --force to replace it",
            args.output.display()
        );
    }
    let (array, layout) = with_layout(read_array(&args.input)?, args.axes.as_deref(), &args.input)?;
    let image = ImageOptions {
        window: args.window.as_deref().map(parse_window).transpose()?,
        depth: match args.bit_depth {
            BitDepthArg::Eight => Depth::Eight,
            BitDepthArg::Sixteen => Depth::Sixteen,
        },
        fps: args.fps,
    };
    write_array(&args.output, out_format, &array, &layout, &image).with_context(|| {
        format!(
            "converting {} to {}",
            args.input.display(),
            args.output.display()
        )
    })?;
    eprintln!(
        "wrote {} ({} {:?}, axes {}, {})",
        args.output.display(),
        out_format.name(),
        array.shape(),
        layout.names(),
        array.dtype()
    );
    Ok(())
}

/// True for fastMRI / ISMRMRD HDF5 names (.h5, .hdf5, .mrd).
fn is_hdf5_input(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref(),
        Some("h5" | "hdf5" | "mrd")
    )
}

/// fastMRI / ISMRMRD HDF5 k-space and the mask the file states.
#[cfg(feature = "hdf5")]
fn read_hdf5(args: &ConvertArgs) -> anyhow::Result<(Kspace, Option<cinediff::bundle::BundleMask>)> {
    use cinediff::io::hdf5::{read_hdf5_kspace, Hdf5Options};
    let read = read_hdf5_kspace(
        &args.input,
        &Hdf5Options {
            slice: args.slice,
            crop_readout: args.crop_readout,
            group: None,
        },
    )?;
    for note in &read.notes {
        eprintln!("{}: {note}", args.input.display());
    }
    Ok((read.kspace, read.mask))
}

#[cfg(not(feature = "hdf5"))]
fn read_hdf5(args: &ConvertArgs) -> anyhow::Result<(Kspace, Option<cinediff::bundle::BundleMask>)> {
    anyhow::bail!(
        "{}: reading fastMRI / ISMRMRD HDF5 k-space needs cinediff built with `--features hdf5` \
         (and libhdf5: apt-get install libhdf5-dev on Debian)",
        args.input.display()
    )
}

/// `--kspace`: k-space (+ mask, maps) → a measurement bundle directory.
fn import_kspace(args: &ConvertArgs) -> anyhow::Result<()> {
    if Format::from_path(&args.output).is_ok() {
        anyhow::bail!(
            "with --kspace the output is a bundle directory, got the file name {}",
            args.output.display()
        );
    }
    let (kspace, file_mask) = if is_hdf5_input(&args.input) {
        read_hdf5(args)?
    } else {
        if args.slice.is_some() || args.crop_readout.is_some() {
            anyhow::bail!("--slice and --crop-readout apply to HDF5 k-space (.h5, .mrd)");
        }
        let (array, layout) =
            with_layout(read_array(&args.input)?, args.axes.as_deref(), &args.input)?;
        let kspace = Kspace::new(array.shape(), &layout, &to_complex(&array))
            .with_context(|| format!("k-space {}", args.input.display()))?;
        (kspace, None)
    };
    let [t, c, h, w] = kspace.shape;
    let mask = match &args.mask {
        Some(path) => {
            let m = read_array(path)?;
            let sampled: Vec<bool> = to_complex(&m.array)
                .iter()
                .map(|v| v.re != 0.0 || v.im != 0.0)
                .collect();
            Some(
                mask_from_array(m.array.shape(), &sampled, [t, h, w])
                    .with_context(|| format!("mask {}", path.display()))?,
            )
        }
        None => file_mask,
    };
    let coil_maps = match &args.csm {
        Some(path) => {
            let m = read_array(path)?;
            // An .npy of maps is [C, H, W] (csm.npy's layout), or [H, W] for one coil.
            let axes = (m.layout.is_none() && m.array.shape().len() == 3).then_some("c,h,w");
            let (maps, maps_layout) = with_layout(m, axes, path)?;
            let (shape, data) = maps_layout
                .arrange(
                    maps.shape(),
                    &to_complex(&maps),
                    &[Axis::Coil, Axis::Row, Axis::Column],
                )
                .with_context(|| format!("coil maps {}", path.display()))?;
            Some(
                CoilMaps::new([shape[0], shape[1], shape[2]], data)
                    .with_context(|| format!("coil maps {}", path.display()))?,
            )
        }
        None => None,
    };
    let bundle = bundle_from_kspace(
        kspace,
        ImportOptions {
            mask,
            coil_maps,
            noise_sigma: args.noise,
        },
    )
    .with_context(|| format!("importing k-space {}", args.input.display()))?;
    write_bundle(&args.output, &bundle, args.force)?;
    let fraction = bundle.mask().map_or(1.0, |m| {
        let bytes = m.to_u8();
        bytes.iter().filter(|&&b| b == 1).count() as f64 / bytes.len().max(1) as f64
    });
    eprintln!(
        "wrote bundle {} (mri, {t} frames of {h}×{w}, {c} coil{}, {:.1}% sampled)",
        args.output.display(),
        if c == 1 { "" } else { "s" },
        100.0 * fraction
    );
    Ok(())
}
