//! `cinediff plot`: a line chart (SVG) of two numeric columns of a CSV file, one curve per group.

use std::path::PathBuf;

use anyhow::Context;
use cinediff::plot::{LineChart, Series};
use clap::Args;

/// Options of `cinediff plot`.
#[derive(Args)]
#[command(after_help = "Example:\n  \
cinediff plot --csv sweep.csv --x steps_per_frame --y psnr --group strategy --log-x \\\n    \
--title 'PSNR vs steps' --out docs/psnr_vs_steps.svg\n\n\
The CSV has a header row and comma-separated values (no quoting); rows whose --x or --y is not a\n\
number are refused with their line number. Curves are drawn in the order their groups first appear,\n\
points in row order.")]
pub struct PlotArgs {
    /// Input CSV file with a header row.
    #[arg(long)]
    csv: PathBuf,
    /// Column of the horizontal axis.
    #[arg(long)]
    x: String,
    /// Column of the vertical axis.
    #[arg(long)]
    y: String,
    /// Column naming the curve of each row (one curve without it).
    #[arg(long)]
    group: Option<String>,
    /// Logarithmic horizontal axis.
    #[arg(long)]
    log_x: bool,
    /// Chart title.
    #[arg(long, default_value = "")]
    title: String,
    /// Horizontal axis label (default: the --x column).
    #[arg(long)]
    x_label: Option<String>,
    /// Vertical axis label (default: the --y column).
    #[arg(long)]
    y_label: Option<String>,
    /// Width and height in pixels.
    #[arg(long, num_args = 2, value_names = ["W", "H"], default_values_t = [720, 440])]
    size: Vec<u32>,
    /// Output .svg file.
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    force: bool,
}

/// Largest CSV read (a cap before reading it whole).
const MAX_CSV_BYTES: u64 = 64 << 20;

pub fn run(args: PlotArgs) -> anyhow::Result<()> {
    let path = &args.csv;
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if size > MAX_CSV_BYTES {
        anyhow::bail!(
            "{}: {size} bytes, more than the {MAX_CSV_BYTES} a chart reads",
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines
        .next()
        .with_context(|| format!("{}: empty file, expected a header row", path.display()))?;
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let index = |name: &str| {
        columns.iter().position(|c| *c == name).with_context(|| {
            format!(
                "{}: no column {name:?}; columns are {columns:?}",
                path.display()
            )
        })
    };
    let (ix, iy) = (index(&args.x)?, index(&args.y)?);
    let ig = args.group.as_deref().map(index).transpose()?;
    let mut series: Vec<Series> = Vec::new();
    for (n, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let number = |i: usize, name: &str| -> anyhow::Result<f64> {
            let v = fields.get(i).copied().unwrap_or("");
            v.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .with_context(|| {
                    format!(
                        "{} line {}: column {name:?} is {v:?}, expected a finite number",
                        path.display(),
                        n + 1
                    )
                })
        };
        let point = (number(ix, &args.x)?, number(iy, &args.y)?);
        let name = ig.map_or(String::new(), |i| {
            fields.get(i).copied().unwrap_or("").to_string()
        });
        match series.iter_mut().find(|s| s.name == name) {
            Some(s) => s.points.push(point),
            None => series.push(Series {
                name,
                points: vec![point],
            }),
        }
    }
    let chart = LineChart {
        title: args.title.clone(),
        x_label: args.x_label.clone().unwrap_or_else(|| args.x.clone()),
        y_label: args.y_label.clone().unwrap_or_else(|| args.y.clone()),
        log_x: args.log_x,
        series,
    };
    let svg = chart
        .to_svg(args.size[0], args.size[1])
        .with_context(|| format!("{}", path.display()))?;
    if args.out.exists() && !args.force {
        anyhow::bail!("{} exists; pass --force to replace it", args.out.display());
    }
    std::fs::write(&args.out, svg).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
