//! `cinediff`: the command-line shell. Each subcommand parses, calls the library, and writes files.

mod convert;
mod demo;
mod eval;
mod generate;
mod info;
mod phantom;
mod plot;
mod progress;
mod reconstruct;
mod sample;
mod simulate;
mod train;
mod train_aid;
mod train_aps;
mod train_transition;

use clap::{Parser, Subcommand};

/// Diffusion-prior reconstruction of image sequences (cine MRI, cardiac ultrasound).
///
/// Typical flow: make or bring data (`phantom`), train a prior (`train`), draw samples (`sample`),
/// measure (`simulate`) and reconstruct (`reconstruct`).
#[derive(Parser)]
#[command(name = "cinediff", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The main job: simulate an 8× undersampled multi-coil cine of the built-in phantom and
    /// reconstruct it with SeqDiff (shipped prior), TV and zero-filling → demo-output/.
    Demo(demo::DemoArgs),
    /// Generate the built-in 2D+t cardiac cine phantom as .npy (float32 magnitude or complex64).
    Phantom(phantom::PhantomArgs),
    /// Train a diffusion prior (U-Net, ε-prediction) on images from a .npy file.
    Train(train::TrainArgs),
    /// Train SeqDiff+'s transition model (a small video transformer) on sequences from a .npy file.
    TrainTransition(train_transition::TrainTransitionArgs),
    /// Train AID's autoregressive denoiser (per-frame U-Net + causal temporal branch) on sequences.
    TrainAid(train_aid::TrainAidArgs),
    /// Distil a prior into an APS conditional flow for one operator family (one network
    /// evaluation per posterior sample).
    TrainAps(train_aps::TrainApsArgs),
    /// Generate sequences from an AID model, frame by frame, each conditioned on the frames before.
    Generate(generate::GenerateArgs),
    /// Draw unconditional samples from a trained prior.
    Sample(sample::SampleArgs),
    /// Measure a known image or sequence (MRI, ultrasound lines, inpainting, …) into a bundle.
    Simulate(simulate::SimulateArgs),
    /// Reconstruct a measurement bundle (classic baseline or diffusion posterior sampling).
    Reconstruct(reconstruct::ReconstructArgs),
    /// Convert between .npy, BART .cfl, NIfTI .nii, .png, .gif and .apng, or k-space into a bundle.
    Convert(convert::ConvertArgs),
    /// Draw a line chart (SVG) of two columns of a CSV file, e.g. PSNR against steps per frame.
    Plot(plot::PlotArgs),
    /// Print the shape, dtype and magnitude range of an array file.
    Info(info::InfoArgs),
    /// Evaluate methods × operators × accelerations × seeds on a data set → metrics.csv,
    /// summary.json and a self-contained report.html (resumable).
    Eval(eval::EvalArgs),
}

/// Runs one subcommand.
fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo(args) => demo::run(args),
        Command::Phantom(args) => phantom::run(args),
        Command::Train(args) => train::run(args),
        Command::TrainTransition(args) => train_transition::run(args),
        Command::TrainAps(args) => train_aps::run(args),
        Command::TrainAid(args) => train_aid::run(args),
        Command::Sample(args) => sample::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Reconstruct(args) => reconstruct::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Plot(args) => plot::run(args),
        Command::Info(args) => info::run(args),
        Command::Eval(args) => eval::run(args),
    }
}

/// Parses `argv` (program name first) as a command line and runs it, as the binary would.
pub fn run_command_line<I, S>(argv: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    dispatch(Cli::try_parse_from(argv)?.command)
}

fn main() {
    let cli = Cli::parse();
    let result = dispatch(cli.command);
    if let Err(e) = result {
        // One line: the chain of causes, most general first. A cause whose text the line already
        // holds is skipped (library I/O errors print their source themselves).
        let mut line = String::new();
        for cause in e.chain() {
            let text = cause.to_string();
            if !line.contains(&text) {
                if !line.is_empty() {
                    line.push_str(": ");
                }
                line.push_str(&text);
            }
        }
        eprintln!("error: {line}");
        std::process::exit(1);
    }
}

/// `out.npy` → `out.config.json`: where the resolved settings of an output are written.
pub fn sidecar_path(out: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!("{stem}.{suffix}"))
}

/// Fails unless `out` is a `.npy` path in an existing directory (checked before long work, and so
/// the `.png` / `.config.json` written beside it can never overwrite it).
pub fn check_output_path(out: &std::path::Path) -> anyhow::Result<()> {
    if out.extension().and_then(|e| e.to_str()) != Some("npy") {
        anyhow::bail!("output {} must end in .npy", out.display());
    }
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(p) = parent {
        if !p.is_dir() {
            anyhow::bail!("output directory {} does not exist", p.display());
        }
    }
    if out.is_dir() {
        anyhow::bail!(
            "output {} is a directory, expected a file path",
            out.display()
        );
    }
    Ok(())
}
