//! How much SeqDiff+ could gain from a perfect transition model (issue 4's ceiling): frame t
//! warm-starts from x̃_t = (1 − λ)·x_{t−1,0} + λ·x_t^true, noised to the warm-start level like
//! every warm start. λ = 0 is SeqDiff (persistence), λ = 1 an oracle forecast. For each λ it prints
//! the mean PSNR over frames 2..T (as `bench/frames_mean.py` scores a `reconstruct` run) and the
//! warm images' mean squared error against the truth over the previous samples' (persistence's)
//! in the same run (≈ (1 − λ)² for an unbiased blend), so a transition model's
//! forecast-error ratio (`examples/transition_forecast_error`) maps to the PSNR it could buy.
//! The setup is `bench/seqdiff_severe.sh`'s: DDIM + DC (K = 10, step 1.5), 200-step grid, clip 1,
//! automatic intensity, one particle, seed 0.
//!
//! cargo run --release --example seqdiff_oracle -- MODEL_DIR BUNDLE_DIR TRUTH.npy WARM_STEPS LEVEL [λ ...]
use std::path::Path;

use cinediff::diffusion::clipped::ClippedDenoiser;
use cinediff::diffusion::schedule::TimestepSpacing;
use cinediff::io::bundle::read_bundle;
use cinediff::io::model_dir::load_denoiser;
use cinediff::io::npy::{read_npy, NpyArray};
use cinediff::method_settings::{build_sampler, SamplerKind, SamplerSettings};
use cinediff::metrics::sequence_metrics_complex;
use cinediff::nn::device::default_device;
use cinediff::physics::complex::complex_to_channels;
use cinediff::reconstruction::{intensity_factor, stretched, IntensityMatch, Prior};
use cinediff::sequence::{run_sequence, SequenceOptions, SequenceStrategy};
use cinediff::ImageBatch;

/// Warm start (1 − λ)·(previous sample) + λ·(true frame), in network space.
struct Blend {
    truth: Vec<ImageBatch>,
    lambda: f32,
    /// Σ over warm frames of the mean squared error of the warm image and of the previous sample.
    squared_error: f64,
    persistence_error: f64,
}

impl SequenceStrategy for Blend {
    fn name(&self) -> &'static str {
        "oracle blend"
    }

    fn warm_image(
        &mut self,
        t: usize,
        history: &[ImageBatch],
    ) -> cinediff::Result<Option<ImageBatch>> {
        let previous = history.last().ok_or_else(|| {
            cinediff::Error::invalid("history", "the previous frame's sample", "none")
        })?;
        let warm = ImageBatch::lincomb(1.0 - self.lambda, previous, self.lambda, &self.truth[t])?;
        let mse = |x: &ImageBatch| {
            x.data()
                .iter()
                .zip(self.truth[t].data())
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
                / x.data().len() as f64
        };
        self.squared_error += mse(&warm);
        self.persistence_error += mse(previous);
        Ok(Some(warm))
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        anyhow::bail!(
            "usage: seqdiff_oracle MODEL_DIR BUNDLE_DIR TRUTH.npy WARM_STEPS LEVEL [λ ...]"
        );
    }
    let device = default_device();
    let denoiser = load_denoiser(Path::new(&args[1]), &device)?;
    let bundle = read_bundle(Path::new(&args[2]))?;
    let (shape, truth) = match read_npy(Path::new(&args[3]))? {
        NpyArray::Complex { shape, data } => (shape, data),
        _ => anyhow::bail!("{}: expected a complex [T, H, W] cine", args[3]),
    };
    let [frames, h, w] = match shape[..] {
        [t, h, w] | [1, t, h, w] => [t, h, w],
        _ => anyhow::bail!("{}: expected [T, H, W], got {shape:?}", args[3]),
    };
    if bundle.spec().shape != [frames, h, w] {
        anyhow::bail!(
            "bundle frames {:?}, truth {:?}",
            bundle.spec().shape,
            [frames, h, w]
        );
    }
    let warm_steps: usize = args[4].parse()?;
    let level: usize = args[5].parse()?;
    let lambdas: Vec<f32> = if args.len() > 6 {
        args[6..]
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()?
    } else {
        vec![0.0, 0.25, 0.5, 0.75, 1.0]
    };

    let config = denoiser.config().clone();
    let schedule = config.noise_schedule()?;
    let timesteps = schedule.timesteps(200, TimestepSpacing::Linspace)?;
    let clipped = ClippedDenoiser::new(&denoiser, &schedule, 1.0)?;
    let settings = SamplerSettings {
        dc_steps: 10,
        dc_step_size: 1.5,
        ..SamplerSettings::default()
    };
    let sampler = build_sampler(SamplerKind::DdimDc, &settings, bundle.spec().noise_sigma)?.sampler;
    let factor = intensity_factor(&bundle, config.normalization, IntensityMatch::Auto)?;
    let normalization = stretched(config.normalization, factor)?;
    let truth_net: Vec<ImageBatch> = (0..frames)
        .map(|t| {
            let mut planes = complex_to_channels(&truth[t * h * w..(t + 1) * h * w]);
            normalization.normalize(&mut planes);
            ImageBatch::new([1, 2, h, w], planes)
        })
        .collect::<cinediff::Result<_>>()?;
    let options = SequenceOptions {
        warm_steps,
        warm_level: Some(level),
        ..SequenceOptions::default()
    };
    println!("lambda,psnr_frames_2_to_T,warm_mse_over_persistence");
    for &lambda in &lambdas {
        let mut strategy = Blend {
            truth: truth_net.clone(),
            lambda,
            squared_error: 0.0,
            persistence_error: 0.0,
        };
        let prior = Prior {
            denoiser: &clipped,
            schedule: &schedule,
            timesteps: &timesteps,
        };
        let result = run_sequence(
            &bundle,
            sampler.as_ref(),
            prior,
            normalization,
            &mut strategy,
            &options,
            0,
            &mut |_, _| {},
        )?;
        let metrics = sequence_metrics_complex(&truth, &result.mean, [frames, h, w])?;
        let later = &metrics.frames[1..];
        let psnr = later.iter().map(|m| m.psnr).sum::<f64>() / later.len() as f64;
        let ratio = strategy.squared_error / strategy.persistence_error;
        println!("{lambda},{psnr:.3},{ratio:.3}");
    }
    Ok(())
}
