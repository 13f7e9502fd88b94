//! `cinediff info`: shape, type and magnitude range of an array file in any readable format.

use std::path::PathBuf;

use cinediff::io::convert::{default_layout, read_array, summarize};
use cinediff::io::npy::NpyArray;
use cinediff::metrics::temporal_statistics;
use clap::Args;

/// Options of `cinediff info`.
#[derive(Args)]
#[command(after_help = "Example:\n  cinediff info recon.cfl\n\n\
Prints the format, shape (with the axes' meaning when known: t time, c coil, z slice, h rows =\n\
readout, w columns = phase encodes), dtype, how the file stores it, and min / max / mean of |x|\n\
over the finite values (plus the count of NaN or infinite values if any); for sequences\n\
([T, H, W] or [N, T, H, W]) also the mean |frame-to-frame difference| and the autocorrelation of\n\
the magnitudes over lags 1..8 (averaged over the sequences).\n\
Readable: .npy .cfl (.hdr) .nii .png .apng.")]
pub struct InfoArgs {
    /// The file.
    file: PathBuf,
}

pub fn run(args: InfoArgs) -> anyhow::Result<()> {
    let loaded = read_array(&args.file)?;
    let s = summarize(&loaded.array);
    // Files that name their axes say so; for .npy, say how convert would read it.
    let axes = match &loaded.layout {
        Some(l) => format!(" (axes {})", l.names()),
        None => match default_layout(&s.shape) {
            Ok((shape, l)) if shape != s.shape => {
                format!(" (read as {shape:?}, axes {})", l.names())
            }
            Ok((_, l)) => format!(" (axes {})", l.names()),
            Err(_) => String::new(),
        },
    };
    println!("file:   {}", args.file.display());
    println!("format: {}", loaded.format.name());
    println!("shape:  {:?}{axes}", s.shape);
    println!("dtype:  {} (stored as {})", s.dtype, loaded.stored);
    println!(
        "|x|:    min {:.6e}  max {:.6e}  mean {:.6e}",
        s.min, s.max, s.mean
    );
    if s.non_finite > 0 {
        println!("non-finite values: {}", s.non_finite);
    }
    // Sequences: how much and how coherently the frames change (AID's coherence check).
    let (seqs, frames) = match s.shape[..] {
        [t, _, _] if t >= 2 => (1, t),
        [n, t, _, _] if t >= 2 => (n, t),
        _ => (0, 0),
    };
    if seqs > 0 && s.non_finite == 0 {
        let rank = s.shape.len();
        let (h, w) = (s.shape[rank - 2], s.shape[rank - 1]);
        let mags: Vec<f32> = match &loaded.array {
            NpyArray::Real { data, .. } => data.iter().map(|v| v.abs()).collect(),
            NpyArray::Complex { data, .. } => data.iter().map(|v| v.norm()).collect(),
            NpyArray::U8 { data, .. } => data.iter().map(|&v| v as f32).collect(),
        };
        let plane = frames * h * w;
        let mut diff = 0.0;
        let mut auto = vec![0.0; 8.min(frames - 1)];
        for k in 0..seqs {
            let st = temporal_statistics(&mags[k * plane..(k + 1) * plane], [frames, h, w], 8)?;
            diff += st.mean_abs_difference / seqs as f64;
            for (a, v) in auto.iter_mut().zip(&st.autocorrelation) {
                *a += v / seqs as f64;
            }
        }
        println!(
            "frames: mean |x_t+1 - x_t| {diff:.6e}; autocorrelation lag 1..{}: {}",
            auto.len(),
            auto.iter()
                .map(|v| format!("{v:.4}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    Ok(())
}
