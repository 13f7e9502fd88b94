//! Reconstructing a [`Bundle`]: a classic baseline or a posterior sampler applied to its frames,
//! giving the image sequence `[T, H, W]` in the bundle's units.
//!
//! Intensity matching. A prior knows its training intensities through its [`Normalization`]
//! (x_user = scale·x_net + offset, with the 99.9th percentile of |x| at x_net = 1). Data from a
//! scanner come in arbitrary units, so the normalisation is stretched by a factor c
//! ([`IntensityMatch`]): `auto` takes c = p₉₉.₉(|x_ls|)/p₉₉.₉,model, where x_ls is a short CG
//! least-squares reconstruction of the whole bundle — the same statistic the model was normalised
//! with, measured on the data (algorithms.md §8 pitfall 6: a wrong scale biases the prior/data balance).

use num_complex::Complex32;

use crate::baselines::{LeastSquares, Reconstructor};
use crate::bundle::Bundle;
use crate::data::normalization::{abs_quantile, FIT_QUANTILE};
use crate::data::Normalization;
use crate::diffusion::denoiser::Denoiser;
use crate::diffusion::samplers::{Start, StepInfo};
use crate::diffusion::schedule::NoiseSchedule;
use crate::error::{Error, Result};
use crate::physics::complex::image_to_complex;
use crate::posterior::{
    frame_rngs, Measurement, PosteriorProblem, PosteriorSampler, RunningMoments,
};
use crate::rng::{substream, SeededRng};

/// CG iterations of the least-squares image `auto` intensity matching measures.
pub const INTENSITY_CG_ITERATIONS: usize = 10;

/// How the data's intensity is matched to the prior's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum IntensityMatch {
    /// Use the model's normalisation as it is (data in the training units).
    Model,
    /// Measure the data's 99.9th percentile on a least-squares image and match the model's.
    Auto,
    /// Multiply the model's normalisation by this factor c > 0.
    Factor(f64),
}

/// Reconstructs with a classic method: frame by frame, or the whole `[T, H, W]` sequence in one
/// problem when `joint` (temporal regularisation). Returns `[T, H, W]` values.
pub fn reconstruct_classic(
    bundle: &Bundle,
    method: &dyn Reconstructor,
    joint: bool,
) -> Result<Vec<Complex32>> {
    let real = !bundle.spec().complex;
    if joint {
        let op = bundle.sequence_operator()?;
        return method.reconstruct(&op, bundle.y(), real);
    }
    let ops = bundle.frame_operators()?;
    let mut out = Vec::with_capacity(bundle.spec().shape.iter().product());
    for (t, op) in ops.iter().enumerate() {
        out.extend(method.reconstruct(op.as_ref(), bundle.frame_y(t), real)?);
    }
    Ok(out)
}

/// The factor c that stretches the model's normalisation for this bundle.
pub fn intensity_factor(
    bundle: &Bundle,
    model: Normalization,
    intensity: IntensityMatch,
) -> Result<f64> {
    match intensity {
        IntensityMatch::Model => Ok(1.0),
        IntensityMatch::Factor(c) => {
            if !(c.is_finite() && c > 0.0) {
                return Err(Error::invalid("intensity factor", "a finite value > 0", c));
            }
            Ok(c)
        }
        IntensityMatch::Auto => {
            let ls = LeastSquares {
                iterations: INTENSITY_CG_ITERATIONS,
                ..LeastSquares::default()
            };
            let x = reconstruct_classic(bundle, &ls, false)?;
            let magnitudes: Vec<f32> = x.iter().map(|v| v.norm()).collect();
            let p = abs_quantile(&magnitudes, FIT_QUANTILE) as f64;
            // The model's 99.9th percentile in user units: x_net = 1 ↦ scale + offset.
            let model_p = (model.scale + model.offset) as f64;
            if !(p.is_finite() && p > 0.0 && model_p > 0.0) {
                return Err(Error::invalid(
                    "automatic intensity matching",
                    "a least-squares image with a positive 99.9th percentile",
                    format!("{p:e} (is the measurement all zeros?)"),
                ));
            }
            Ok(p / model_p)
        }
    }
}

/// The model's normalisation stretched by c: x_user = c·(scale·x_net + offset).
pub fn stretched(model: Normalization, factor: f64) -> Result<Normalization> {
    let n = Normalization {
        offset: (model.offset as f64 * factor) as f32,
        scale: (model.scale as f64 * factor) as f32,
    };
    n.validate()?;
    Ok(n)
}

/// A diffusion prior ready for posterior sampling of a bundle.
#[derive(Clone, Copy)]
pub struct Prior<'a> {
    /// The noise predictor (network space).
    pub denoiser: &'a dyn Denoiser,
    /// Its training schedule.
    pub schedule: &'a NoiseSchedule,
    /// The descending reverse-step grid.
    pub timesteps: &'a [usize],
}

/// Posterior-samples every frame of `bundle` independently (frame t conditioned on y_t, with its
/// own random stream, so the result does not depend on `batch`), `batch` frames per network call.
/// `normalization` maps the bundle's units to network space. Returns `[T, H, W]` values (real
/// part only when the bundle is real). `observer(frames_done, step)` reports progress.
pub fn reconstruct_posterior(
    bundle: &Bundle,
    sampler: &dyn PosteriorSampler,
    prior: Prior<'_>,
    normalization: Normalization,
    batch: usize,
    rng: &mut SeededRng,
    observer: &mut dyn FnMut(usize, StepInfo),
) -> Result<Vec<Complex32>> {
    if batch == 0 {
        return Err(Error::invalid("frames per batch", "at least 1", 0));
    }
    let spec = bundle.spec();
    let t = spec.frames();
    let [c, h, w] = prior_image_shape(bundle, &prior)?;
    let measurements = bundle
        .frame_operators()?
        .into_iter()
        .enumerate()
        .map(|(k, op)| Measurement::new(op, bundle.frame_y(k).to_vec(), normalization))
        .collect::<Result<Vec<_>>>()?;
    let mut rngs = frame_rngs(rng, t);
    let mut out = Vec::with_capacity(t * h * w);
    let mut done = 0;
    for (chunk, chunk_rngs) in measurements.chunks(batch).zip(rngs.chunks_mut(batch)) {
        let problem = PosteriorProblem {
            denoiser: prior.denoiser,
            schedule: prior.schedule,
            timesteps: prior.timesteps,
            measurements: chunk,
        };
        let mut x = sampler.sample_frames(
            &problem,
            Start::Cold {
                shape: [chunk.len(), c, h, w],
            },
            chunk_rngs,
            &mut |info| observer(done, info),
        )?;
        normalization.denormalize(x.data_mut());
        for k in 0..chunk.len() {
            let mut image = image_to_complex(&x, k)?;
            if !spec.complex {
                image.iter_mut().for_each(|v| v.im = 0.0);
            }
            out.extend(image);
        }
        done += chunk.len();
    }
    Ok(out)
}

/// The posterior mean of `samples` draws and, for two or more, the per-pixel standard deviation.
#[derive(Clone, Debug, PartialEq)]
pub struct PosteriorEstimate {
    /// x̄ = (1/N) Σ_i x_i, `[T, H, W]`.
    pub mean: Vec<Complex32>,
    /// √(Σ_i |x_i − x̄|²/(N − 1)) per pixel (real and imaginary spread together); `None` for N = 1.
    pub std: Option<Vec<f32>>,
    /// N.
    pub samples: usize,
}

/// Runs [`reconstruct_posterior`] `samples` times, draw i on `substream(seed, i)` (so draw 0 is
/// the single-sample result), and returns their mean and spread. `observer(i, frames_done, step)`.
#[allow(clippy::too_many_arguments)]
pub fn posterior_estimate(
    bundle: &Bundle,
    sampler: &dyn PosteriorSampler,
    prior: Prior<'_>,
    normalization: Normalization,
    batch: usize,
    samples: usize,
    seed: u64,
    observer: &mut dyn FnMut(usize, usize, StepInfo),
) -> Result<PosteriorEstimate> {
    if samples == 0 {
        return Err(Error::invalid("posterior samples", "at least 1", 0));
    }
    let mut moments = RunningMoments::default();
    for i in 0..samples {
        let mut rng = substream(seed, i as u64);
        let x = reconstruct_posterior(
            bundle,
            sampler,
            prior,
            normalization,
            batch,
            &mut rng,
            &mut |done, info| observer(i, done, info),
        )?;
        let parts: Vec<f32> = x.iter().flat_map(|v| [v.re, v.im]).collect();
        moments.push(&parts)?;
    }
    let mean = moments
        .mean()
        .chunks_exact(2)
        .map(|p| Complex32::new(p[0], p[1]))
        .collect();
    let std = (samples > 1)
        .then(|| moments.std())
        .transpose()?
        .map(|s| s.chunks_exact(2).map(|p| p[0].hypot(p[1])).collect());
    Ok(PosteriorEstimate { mean, std, samples })
}

/// The `[c, h, w]` images the prior samples for `bundle`: the prior's own shape, which must match
/// the bundle's frames and have 2 channels for complex data (a shape-agnostic denoiser such as
/// the Gaussian oracle takes the bundle's frame shape).
pub fn prior_image_shape(bundle: &Bundle, prior: &Prior<'_>) -> Result<[usize; 3]> {
    let spec = bundle.spec();
    let [_, bh, bw] = spec.shape;
    let [c, h, w] =
        prior
            .denoiser
            .image_shape()
            .unwrap_or([if spec.complex { 2 } else { 1 }, bh, bw]);
    if [h, w] != [bh, bw] {
        // Measured with a scratch patch (not kept, 2026-12-07): the 64×64 cine prior run fully
        // convolutionally on 100×100 frames (the same anatomy, zero-padded) lost 5.5 dB of its
        // 10 dB gain over zero-filled; GroupNorm and border cues tie a U-Net prior to its
        // training field of view.
        return Err(Error::invalid(
            "bundle frame size [h, w]",
            format!(
                "[{h}, {w}], the size the prior was trained on (priors do not transfer across \
                 frame sizes: train one on frames of this size with `cinediff train`)"
            ),
            format!("[{bh}, {bw}]"),
        ));
    }
    if spec.complex && c != 2 {
        return Err(Error::invalid(
            "prior channels",
            "2 (re, im) for a complex bundle",
            format!("{c}: a real-valued prior cannot represent the phase"),
        ));
    }
    Ok([c, h, w])
}
