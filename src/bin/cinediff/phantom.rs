//! `cinediff phantom`: write the built-in cine phantom.

use std::path::PathBuf;

use anyhow::Context;
use cinediff::data::phantom::{cine_phantom, PhantomConfig};
use cinediff::io::{model_dir::write_json, npy, png};
use cinediff::rng::substream;
use clap::Args;
use serde::Serialize;

/// Options of `cinediff phantom`.
#[derive(Args)]
#[command(
    after_help = "Example:\n  cinediff phantom --frames 16 --size 64 --count 4 --seed 1 --out p.npy\n\n\
Writes p.npy ([count, frames, size, size]; float32 magnitude, or complex64 with --complex),\n\
p.png (the first sequence's frames) and p.config.json (the resolved settings and seed)."
)]
pub struct PhantomArgs {
    /// Frames per sequence.
    #[arg(long, default_value_t = 16)]
    frames: usize,
    /// Image side in pixels (32 to 256).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Number of independent sequences (each has its own anatomy, heart rate and phase).
    #[arg(long, default_value_t = 4)]
    count: usize,
    /// Seed; sequence i uses stream i of this seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write complex64 images with a smooth phase (MRI images carry phase).
    #[arg(long)]
    complex: bool,
    /// Disable the slow breathing drift.
    #[arg(long)]
    no_breathing: bool,
    /// Sub-samples per pixel axis for partial-volume edges (1 to 8).
    #[arg(long, default_value_t = 3)]
    supersample: usize,
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
    let config = PhantomConfig {
        size: args.size,
        frames: args.frames,
        complex: args.complex,
        breathing: !args.no_breathing,
        supersample: args.supersample,
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
        1.0,
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
