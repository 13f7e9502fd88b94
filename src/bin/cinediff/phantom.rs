//! `cinediff phantom`: write the built-in cine phantoms (MRI short axis, or ultrasound apical
//! four-chamber in the beam domain).

use std::path::{Path, PathBuf};

use anyhow::Context;
use cinediff::data::echo::{echo_phantom, sector_display, EchoConfig};
use cinediff::data::phantom::{cine_phantom, PhantomConfig};
use cinediff::io::{model_dir::write_json, npy, png};
use cinediff::rng::substream;
use clap::{Args, ValueEnum};
use serde::Serialize;

/// Which phantom.
#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum KindArg {
    /// Cardiac cine MRI, short axis (magnitude, or complex with --complex).
    Mri,
    /// Cardiac ultrasound, apical four-chamber, log-compressed B-mode in [−1, 1] in the beam
    /// domain [depth, scan lines].
    Echo,
}

/// Options of `cinediff phantom`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  cinediff phantom --frames 16 --size 64 --count 4 --seed 1 --out p.npy\n  \
cinediff phantom --kind echo --frames 32 --size 64 --count 4 --seed 1 --out e.npy\n\n\
Writes p.npy ([count, frames, size, size]; float32 magnitude, or complex64 with --complex),\n\
p.png (the first sequence's frames) and p.config.json (the resolved settings and seed).\n\
--kind echo writes float32 [count, frames, depth, lines] (depth = --size, lines = --lines or\n\
--size), e.png (beam-domain frames), e.sector.png (the same frames scan-converted) and\n\
e.config.json."
)]
pub struct PhantomArgs {
    /// Phantom: MRI short-axis cine or ultrasound apical four-chamber cine.
    #[arg(long, value_enum, default_value_t = KindArg::Mri)]
    kind: KindArg,
    /// Frames per sequence.
    #[arg(long, default_value_t = 16)]
    frames: usize,
    /// Image side in pixels (mri: 32 to 256); echo: depth samples per scan line (16 to 256).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// echo: scan lines (8 to 256) [default: --size].
    #[arg(long, help_heading = "Ultrasound (--kind echo)")]
    lines: Option<usize>,
    /// echo: full sector angle in degrees (lines span ± half of it).
    #[arg(
        long,
        default_value_t = 75.0,
        help_heading = "Ultrasound (--kind echo)"
    )]
    sector_deg: f64,
    /// echo: dynamic range of the log compression in dB (−DR dB ↦ −1, 0 dB ↦ 1).
    #[arg(
        long,
        default_value_t = 60.0,
        help_heading = "Ultrasound (--kind echo)"
    )]
    dynamic_range: f64,
    /// echo: no rigid probe motion.
    #[arg(long, help_heading = "Ultrasound (--kind echo)")]
    no_probe_motion: bool,
    /// Frame t shows phantom time t·N: N× heart rate (and breathing / probe motion), e.g. 3 for
    /// severe motion.
    #[arg(long, value_name = "N", default_value_t = 1)]
    frame_stride: usize,
    /// Number of independent sequences (each has its own anatomy, heart rate and phase).
    #[arg(long, default_value_t = 4)]
    count: usize,
    /// Seed; sequence i uses stream i of this seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// mri: write complex64 images with a smooth phase (MRI images carry phase).
    #[arg(long)]
    complex: bool,
    /// mri: disable the slow breathing drift.
    #[arg(long)]
    no_breathing: bool,
    /// mri: sub-samples per pixel axis for partial-volume edges (1 to 8) [default: 3].
    #[arg(long)]
    supersample: Option<usize>,
    /// Output .npy path.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Serialize)]
struct Resolved<'a> {
    command: &'static str,
    version: &'static str,
    seed: u64,
    count: usize,
    phantom: &'a PhantomConfig,
    shape: [usize; 4],
    dtype: &'static str,
}

/// Most sequences one call may write (a cap before allocating).
const MAX_COUNT: usize = 10_000;

pub fn run(args: PhantomArgs) -> anyhow::Result<()> {
    if args.count == 0 || args.count > MAX_COUNT {
        anyhow::bail!(
            "invalid --count: expected 1..={MAX_COUNT}, got {}",
            args.count
        );
    }
    crate::check_output_path(&args.out)?;
    if args.kind == KindArg::Echo {
        return run_echo(&args);
    }
    if args.lines.is_some() || args.no_probe_motion {
        anyhow::bail!("--lines and --no-probe-motion apply to --kind echo");
    }
    let config = PhantomConfig {
        size: args.size,
        frames: args.frames,
        complex: args.complex,
        breathing: !args.no_breathing,
        supersample: args
            .supersample
            .unwrap_or(PhantomConfig::default().supersample),
        frame_stride: args.frame_stride,
    };
    config.validate()?;
    let total = args
        .count
        .checked_mul(args.frames)
        .and_then(|v| v.checked_mul(args.size * args.size))
        .filter(|&v| v <= npy::MAX_ELEMENTS)
        .with_context(|| "phantom too large: count × frames × size² exceeds 2³¹ values")?;
    let mut data = Vec::with_capacity(total);
    for i in 0..args.count {
        let mut rng = substream(args.seed, i as u64);
        data.extend(cine_phantom(&config, &mut rng)?.data);
    }
    let shape = [args.count, args.frames, args.size, args.size];
    if args.complex {
        npy::write_npy_c64(&args.out, &shape, &data)?;
    } else {
        let real: Vec<f32> = data.iter().map(|c| c.re).collect();
        npy::write_npy_f32(&args.out, &shape, &real)?;
    }
    let frame = args.size * args.size;
    let tiles: Vec<Vec<f32>> = data[..args.frames * frame]
        .chunks_exact(frame)
        .map(|f| f.iter().map(|c| c.norm()).collect())
        .collect();
    png::write_grid(
        &crate::sidecar_path(&args.out, "png"),
        &tiles,
        args.size,
        args.size,
        8,
        png::Window::up_to(1.0),
    )?;
    write_json(
        &crate::sidecar_path(&args.out, "config.json"),
        &Resolved {
            command: "phantom",
            version: env!("CARGO_PKG_VERSION"),
            seed: args.seed,
            count: args.count,
            phantom: &config,
            shape,
            dtype: if args.complex { "complex64" } else { "float32" },
        },
    )?;
    eprintln!(
        "wrote {} ({} × {} frames of {}×{}, {})",
        args.out.display(),
        args.count,
        args.frames,
        args.size,
        args.size,
        if args.complex { "complex64" } else { "float32" }
    );
    Ok(())
}

#[derive(Serialize)]
struct ResolvedEcho<'a> {
    command: &'static str,
    kind: &'static str,
    version: &'static str,
    seed: u64,
    count: usize,
    echo: &'a EchoConfig,
    shape: [usize; 4],
    dtype: &'static str,
    /// What the values mean.
    units: &'static str,
}

fn run_echo(args: &PhantomArgs) -> anyhow::Result<()> {
    if args.complex || args.no_breathing || args.supersample.is_some() {
        anyhow::bail!("--complex, --no-breathing and --supersample apply to --kind mri");
    }
    let config = EchoConfig {
        depth: args.size,
        lines: args.lines.unwrap_or(args.size),
        frames: args.frames,
        sector_degrees: args.sector_deg,
        dynamic_range_db: args.dynamic_range,
        frame_stride: args.frame_stride,
        probe_motion: !args.no_probe_motion,
    };
    config.validate()?;
    let frame = config.depth * config.lines;
    let total = args
        .count
        .checked_mul(args.frames)
        .and_then(|v| v.checked_mul(frame))
        .filter(|&v| v <= npy::MAX_ELEMENTS)
        .with_context(|| "phantom too large: count × frames × depth × lines exceeds 2³¹ values")?;
    let mut data = Vec::with_capacity(total);
    for i in 0..args.count {
        let mut rng = substream(args.seed, i as u64);
        data.extend(echo_phantom(&config, &mut rng)?.data);
    }
    let shape = [args.count, args.frames, config.depth, config.lines];
    npy::write_npy_f32(&args.out, &shape, &data)?;
    let first = &data[..args.frames * frame];
    // PNGs show [−1, 1] as black..white.
    let beam: Vec<Vec<f32>> = first
        .chunks_exact(frame)
        .map(|f| f.iter().map(|x| 0.5 * (x + 1.0)).collect())
        .collect();
    png::write_grid(
        &crate::sidecar_path(&args.out, "png"),
        &beam,
        config.depth,
        config.lines,
        8,
        png::Window::up_to(1.0),
    )?;
    write_sector_png(
        &crate::sidecar_path(&args.out, "sector.png"),
        first,
        [args.frames, config.depth, config.lines],
        &config,
    )?;
    write_json(
        &crate::sidecar_path(&args.out, "config.json"),
        &ResolvedEcho {
            command: "phantom",
            kind: "echo",
            version: env!("CARGO_PKG_VERSION"),
            seed: args.seed,
            count: args.count,
            echo: &config,
            shape,
            dtype: "float32",
            units: "log-compressed envelope, -dynamic_range_db..0 dB mapped linearly to [-1, 1]; axes [count, frames, depth, lines]",
        },
    )?;
    eprintln!(
        "wrote {} ({} × {} frames of {} depth samples × {} scan lines, float32 in [−1, 1])",
        args.out.display(),
        args.count,
        args.frames,
        config.depth,
        config.lines,
    );
    Ok(())
}

fn write_sector_png(
    path: &Path,
    beam: &[f32],
    shape: [usize; 3],
    config: &EchoConfig,
) -> anyhow::Result<()> {
    let (sector, [frames, h, w]) = sector_display(beam, shape, &config.geometry())?;
    let tiles: Vec<Vec<f32>> = sector.chunks_exact(h * w).map(|c| c.to_vec()).collect();
    debug_assert_eq!(tiles.len(), frames);
    png::write_grid(path, &tiles, h, w, 8, png::Window::up_to(1.0))?;
    Ok(())
}
