//! Posterior mean and per-pixel standard deviation (an uncertainty map) from N posterior samples.
//!
//! Sample i runs on `substream(seed, i)`, so the samples are independent and any one of them can be
//! reproduced alone. Moments are accumulated in f64 with Welford's update (no cancellation from
//! Σx² − (Σx)²/N); the standard deviation uses the unbiased N − 1 denominator.

use crate::data::Normalization;
use crate::diffusion::samplers::{Start, StepInfo};
use crate::error::{Error, Result};
use crate::image::ImageBatch;
use crate::posterior::{PosteriorProblem, PosteriorSampler};
use crate::rng::substream;

/// Per-pixel posterior mean and standard deviation, each `[n, c, h, w]` (network space unless converted).
#[derive(Clone, Debug, PartialEq)]
pub struct PosteriorStats {
    /// x̄ = (1/N) Σ_i x_i.
    pub mean: ImageBatch,
    /// s = √(Σ_i (x_i − x̄)² / (N − 1)), per channel (re and im separately for complex images).
    pub std: ImageBatch,
    /// N, the number of samples.
    pub samples: usize,
}

impl PosteriorStats {
    /// In user units: mean ↦ scale·mean + offset, std ↦ scale·std.
    pub fn to_user_units(&self, normalization: Normalization) -> Result<Self> {
        normalization.validate()?;
        let mut mean = self.mean.clone();
        normalization.denormalize(mean.data_mut());
        let mut std = self.std.clone();
        std.data_mut()
            .iter_mut()
            .for_each(|v| *v *= normalization.scale);
        Ok(Self {
            mean,
            std,
            samples: self.samples,
        })
    }
}

/// Runs `sampler` `samples` ≥ 2 times (sample i on `substream(seed, i)`) and returns the mean and std maps.
pub fn posterior_statistics(
    sampler: &dyn PosteriorSampler,
    problem: &PosteriorProblem<'_>,
    start: &Start,
    samples: usize,
    seed: u64,
    observer: &mut dyn FnMut(usize, StepInfo),
) -> Result<PosteriorStats> {
    if samples < 2 {
        return Err(Error::invalid(
            "posterior samples for mean and std",
            "at least 2",
            samples,
        ));
    }
    let mut moments = RunningMoments::default();
    let mut shape = [0; 4];
    for i in 0..samples {
        let mut rng = substream(seed, i as u64);
        let x = sampler.sample(problem, start.clone(), &mut rng, &mut |info| {
            observer(i, info)
        })?;
        shape = x.shape();
        moments.push(x.data())?;
    }
    Ok(PosteriorStats {
        mean: ImageBatch::new(shape, moments.mean())?,
        std: ImageBatch::new(shape, moments.std()?)?,
        samples,
    })
}

/// Element-wise running mean and variance (Welford, in f64) of equally long vectors.
#[derive(Clone, Debug, Default)]
pub struct RunningMoments {
    count: usize,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl RunningMoments {
    /// Adds one sample: x̄_i = x̄_{i−1} + (x − x̄_{i−1})/i, M2 += (x − x̄_{i−1})(x − x̄_i).
    pub fn push(&mut self, x: &[f32]) -> Result<()> {
        if self.count == 0 {
            self.mean = vec![0.0; x.len()];
            self.m2 = vec![0.0; x.len()];
        } else if x.len() != self.mean.len() {
            return Err(Error::Shape {
                what: "sample for running moments".into(),
                expected: vec![self.mean.len()],
                got: vec![x.len()],
            });
        }
        self.count += 1;
        let count = self.count as f64;
        for ((m, s), &v) in self.mean.iter_mut().zip(self.m2.iter_mut()).zip(x) {
            let v = v as f64;
            let delta = v - *m;
            *m += delta / count;
            *s += delta * (v - *m);
        }
        Ok(())
    }

    /// Samples pushed so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The element-wise mean.
    pub fn mean(&self) -> Vec<f32> {
        self.mean.iter().map(|&m| m as f32).collect()
    }

    /// The element-wise unbiased standard deviation √(M2/(N − 1)); needs N ≥ 2.
    pub fn std(&self) -> Result<Vec<f32>> {
        if self.count < 2 {
            return Err(Error::invalid(
                "samples for a standard deviation",
                "at least 2",
                self.count,
            ));
        }
        let denom = (self.count - 1) as f64;
        Ok(self.m2.iter().map(|s| (s / denom).sqrt() as f32).collect())
    }
}
