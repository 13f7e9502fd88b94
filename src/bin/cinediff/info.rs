//! `cinediff info`: shape, type and magnitude range of an array file in any readable format.

use std::path::PathBuf;

use cinediff::io::convert::{default_layout, read_array, summarize};
use clap::Args;

/// Options of `cinediff info`.
#[derive(Args)]
#[command(after_help = "Example:\n  cinediff info recon.cfl\n\n\
Prints the format, shape (with the axes' meaning when known: t time, c coil, z slice, h rows =\n\
readout, w columns = phase encodes), dtype, how the file stores it, and min / max / mean of |x|\n\
over the finite values (plus the count of NaN or infinite values if any).\n\
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
    Ok(())
}
