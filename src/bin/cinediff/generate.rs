//! `cinediff generate`: unconditional sequences from an AID model, frame by frame, each frame
//! conditioned on the generated frames before it (a sliding window of L once full).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use cinediff::data::dataset::{magnitudes, to_complex, training_images};
use cinediff::diffusion::samplers::{Ddim, Ddpm, DdpmVariance, Sampler};
use cinediff::image::ImageBatch;
use cinediff::io::model_dir::{load_aid, write_json};
use cinediff::io::npy::{self, read_npy};
use cinediff::metrics::temporal_statistics;
use cinediff::nn::device::default_device;
use cinediff::sequence::{generate_aid, Aid};
use clap::Args;
use serde::Serialize;

use crate::progress::Progress;
use crate::sample::{SamplerArg, SpacingArg};

/// Options of `cinediff generate`.
#[derive(Args)]
#[command(after_help = "Example:\n  \
cinediff generate --model models/cine64-aid --frames 32 --seed 0 --out g.npy\n  \
cinediff generate --model models/cine64-aid --frames 32 --first start.npy --out g.npy\n\n\
Writes OUT ([T, H, W], or [N, T, H, W] with --count N; complex64 for complex models), OUT's\n\
sidecar .config.json (settings, seed, timing and the temporal statistics: mean |frame-to-frame\n\
difference| and autocorrelation over lags 1..8 of the magnitudes, averaged over the sequences).\n\
--first gives the first frames ([K, H, W] or [N, K, H, W], the model's units); the rest are\n\
generated. Frame n draws from substream(seed, n), so a seed reproduces the sequence.")]
pub struct GenerateArgs {
    /// AID model directory (from `cinediff train-aid`).
    #[arg(long)]
    model: PathBuf,
    /// Frames per sequence.
    #[arg(long, default_value_t = 32)]
    frames: usize,
    /// Sequences generated together.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Given first frames (.npy).
    #[arg(long)]
    first: Option<PathBuf>,
    /// Reverse sampler of every frame.
    #[arg(long, value_enum, default_value_t = SamplerArg::Ddim)]
    sampler: SamplerArg,
    /// Reverse steps per frame.
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// Clip x̂₀ to [−LIMIT, LIMIT] (network units).
    #[arg(long, default_value_t = 1.0)]
    clip_x0: f32,
    /// Correlation ρ of the frames' starting noise: x_T = √ρ·z (shared by the sequence) +
    /// √(1−ρ)·z_frame (PYoCo's mixed noise prior). 0 = fresh noise per frame, as AID samples;
    /// with 1 and the deterministic DDIM a frame changes only through its conditioning, so the
    /// motion is the model's.
    #[arg(long, value_name = "RHO", default_value_t = 0.0)]
    noise_correlation: f64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output .npy.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Serialize)]
struct Resolved<'a> {
    command: &'static str,
    version: &'static str,
    model: &'a std::path::Path,
    frames: usize,
    count: usize,
    given_first_frames: usize,
    sampler: SamplerArg,
    steps: usize,
    noise_correlation: f64,
    seed: u64,
    seconds: f64,
    seconds_per_frame: f64,
    temporal: cinediff::metrics::TemporalStatistics,
}

/// Most frames × sequences generated in one run (a cap before allocating).
const MAX_FRAMES: usize = 4096;

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    if args.frames < 2 || args.count == 0 || args.frames.saturating_mul(args.count) > MAX_FRAMES {
        anyhow::bail!(
            "invalid --frames / --count: expected frames ≥ 2, count ≥ 1 and frames·count ≤ {MAX_FRAMES}, got {} and {}",
            args.frames,
            args.count
        );
    }
    if args.steps == 0 {
        anyhow::bail!("invalid --steps: expected at least 1, got 0");
    }
    crate::check_output_path(&args.out)?;
    let device = default_device();
    let (config, net) = load_aid(&args.model, &device)
        .with_context(|| format!("loading the AID model {}", args.model.display()))?;
    let schedule = config.diffusion.noise_schedule()?;
    let timesteps = schedule.timesteps(args.steps, SpacingArg::Linspace.into())?;
    let norm = config.diffusion.normalization;
    let [c, h, w] = net.frame_shape();
    let first = match &args.first {
        None => Vec::new(),
        Some(path) => {
            let array = read_npy(path)?;
            let Some((real, complex)) = array.float_views() else {
                anyhow::bail!("{}: expected float32 or complex64", path.display())
            };
            let (n, k) = match *array.shape() {
                [k, _, _] => (1, k),
                [n, k, _, _] => (n, k),
                _ => anyhow::bail!(
                    "{}: expected first frames [K, H, W] or [N, K, H, W], got {:?}",
                    path.display(),
                    array.shape()
                ),
            };
            if n != args.count {
                anyhow::bail!(
                    "{}: {n} sequence(s) of first frames for --count {}",
                    path.display(),
                    args.count
                );
            }
            let set = training_images(array.shape(), real, complex)
                .with_context(|| format!("{}", path.display()))?;
            if set.images.shape()[1..] != [c, h, w] {
                anyhow::bail!(
                    "{}: frames of {:?}, the model makes {:?} ([c, h, w])",
                    path.display(),
                    &set.images.shape()[1..],
                    [c, h, w]
                );
            }
            let mut images = set.images;
            norm.normalize(images.data_mut());
            // [n·k] images, sequence-major → k frames of [n, c, h, w].
            (0..k)
                .map(|f| {
                    let data: Vec<f32> = (0..n)
                        .flat_map(|s| images.image(s * k + f).to_vec())
                        .collect();
                    ImageBatch::new([n, c, h, w], data)
                })
                .collect::<cinediff::Result<Vec<_>>>()?
        }
    };
    let sampler: Box<dyn Sampler> = match args.sampler {
        SamplerArg::Ddpm => Box::new(Ddpm {
            variance: DdpmVariance::Posterior,
        }),
        SamplerArg::Ddim => Box::new(Ddim::new(0.0)?),
        SamplerArg::DpmSolverPp => {
            anyhow::bail!("generate supports --sampler ddim or ddpm")
        }
    };
    let given = first.len();
    let aid = Aid::new(net, Some((schedule.clone(), args.clip_x0)), &device)?;
    let mut progress = Progress::new("generate", args.frames as u64);
    let started = Instant::now();
    let frames = generate_aid(
        &aid,
        sampler.as_ref(),
        &schedule,
        &timesteps,
        args.frames,
        args.count,
        first,
        args.seed,
        args.noise_correlation,
        &mut |done| progress.update(done as u64, ""),
    )?;
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    // Frames [T] of [N, c, h, w] → sequences [N, T, c, h, w] in user units.
    let (t, n, len) = (args.frames, args.count, c * h * w);
    let mut data = Vec::with_capacity(n * t * len);
    for s in 0..n {
        for f in &frames {
            data.extend_from_slice(f.image(s));
        }
    }
    norm.denormalize(&mut data);
    let all = ImageBatch::new([n * t, c, h, w], data)?;
    all.ensure_finite("generated frames")?;
    let shape: Vec<usize> = if n == 1 {
        vec![t, h, w]
    } else {
        vec![n, t, h, w]
    };
    if c == 2 {
        npy::write_npy_c64(&args.out, &shape, &to_complex(&all))?;
    } else {
        npy::write_npy_f32(&args.out, &shape, all.data())?;
    }
    let mags = magnitudes(&all);
    let mut mean_diff = 0.0;
    let mut auto = vec![0.0; 8.min(t - 1)];
    for s in 0..n {
        let st = temporal_statistics(&mags[s * t * h * w..(s + 1) * t * h * w], [t, h, w], 8)?;
        mean_diff += st.mean_abs_difference / n as f64;
        for (a, v) in auto.iter_mut().zip(&st.autocorrelation) {
            *a += v / n as f64;
        }
    }
    let temporal = cinediff::metrics::TemporalStatistics {
        mean_abs_difference: mean_diff,
        autocorrelation: auto,
    };
    write_json(
        &crate::sidecar_path(&args.out, "config.json"),
        &Resolved {
            command: "generate",
            version: env!("CARGO_PKG_VERSION"),
            model: &args.model,
            frames: t,
            count: n,
            given_first_frames: given,
            sampler: args.sampler,
            steps: args.steps,
            noise_correlation: args.noise_correlation,
            seed: args.seed,
            seconds,
            seconds_per_frame: seconds / (t - given).max(1) as f64,
            temporal: temporal.clone(),
        },
    )?;
    eprintln!(
        "wrote {} ({n} sequence(s) of {t} frames, {seconds:.1} s); mean |Δframe| {:.4e}, autocorrelation {:?}",
        args.out.display(),
        temporal.mean_abs_difference,
        temporal
            .autocorrelation
            .iter()
            .map(|v| format!("{v:.3}"))
            .collect::<Vec<_>>()
    );
    Ok(())
}
