//! Variance-preserving noise schedules: x_t = α_t x₀ + σ_t ε with α_t² + σ_t² = 1 (α_t = √ᾱ_t).
//! Timestep indices follow diffusers: t ∈ 0..T, where t = 0 is the first (least noisy) level.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which β sequence defines the schedule (diffusers' names in comments).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ScheduleKind {
    /// `linear`: β_t = linspace(beta_start, beta_end, T) (Ho et al. 2020).
    Linear { beta_start: f64, beta_end: f64 },
    /// `squaredcos_cap_v2`: β_i = min(1 − f((i+1)/T)/f(i/T), `max_beta`), f(u) = cos²((u + s)/(1 + s)·π/2),
    /// so ᾱ_i ≈ f((i+1)/T)/f(0).
    Cosine { s: f64, max_beta: f64 },
}

impl ScheduleKind {
    /// DDPM's linear β from 1e-4 to 0.02.
    pub const LINEAR: ScheduleKind = ScheduleKind::Linear {
        beta_start: 1e-4,
        beta_end: 0.02,
    };
    /// Nichol & Dhariwal's cosine schedule, s = 0.008, β ≤ 0.999.
    pub const COSINE: ScheduleKind = ScheduleKind::Cosine {
        s: 0.008,
        max_beta: 0.999,
    };
}

/// How a sampler with `n` steps picks its timesteps out of `0..T` (diffusers' `timestep_spacing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TimestepSpacing {
    /// round(linspace(0, T−1, n)), descending.
    #[default]
    Linspace,
    /// (0..n)·(T/n), descending (DDIM paper).
    Leading,
    /// round(T − k·T/n) − 1 for k = 0..n: always starts at T − 1.
    Trailing,
    /// Uniform in λ = log(α/σ) from λ(T−1) to λ(0), each point the nearest timestep (DPM-Solver's
    /// "logSNR" grid). Best for DPM-Solver++: time-uniform grids waste its second-order steps.
    /// Near n ≈ T neighbouring points can round to the same timestep; duplicates are dropped.
    LogSnr,
}

/// A discrete VP schedule with T levels, precomputed in f64.
#[derive(Clone, Debug, PartialEq)]
pub struct NoiseSchedule {
    kind: ScheduleKind,
    betas: Vec<f64>,
    alphas_cumprod: Vec<f64>,
}

impl NoiseSchedule {
    /// Builds the schedule with `num_train_timesteps` levels.
    pub fn new(kind: ScheduleKind, num_train_timesteps: usize) -> Result<Self> {
        if !(2..=100_000).contains(&num_train_timesteps) {
            return Err(Error::invalid(
                "num_train_timesteps",
                "2..=100000",
                num_train_timesteps,
            ));
        }
        let t_total = num_train_timesteps;
        let betas: Vec<f64> = match kind {
            ScheduleKind::Linear {
                beta_start,
                beta_end,
            } => {
                if !(0.0 < beta_start && beta_start <= beta_end && beta_end < 1.0) {
                    return Err(Error::invalid(
                        "linear schedule betas",
                        "0 < beta_start ≤ beta_end < 1",
                        format!("{beta_start}, {beta_end}"),
                    ));
                }
                (0..t_total)
                    .map(|i| beta_start + (beta_end - beta_start) * i as f64 / (t_total - 1) as f64)
                    .collect()
            }
            ScheduleKind::Cosine { s, max_beta } => {
                if !(s >= 0.0 && 0.0 < max_beta && max_beta < 1.0) {
                    return Err(Error::invalid(
                        "cosine schedule",
                        "s ≥ 0 and 0 < max_beta < 1",
                        format!("s = {s}, max_beta = {max_beta}"),
                    ));
                }
                let f = |u: f64| {
                    ((u + s) / (1.0 + s) * std::f64::consts::FRAC_PI_2)
                        .cos()
                        .powi(2)
                };
                (0..t_total)
                    .map(|i| {
                        let t1 = i as f64 / t_total as f64;
                        let t2 = (i + 1) as f64 / t_total as f64;
                        (1.0 - f(t2) / f(t1)).min(max_beta)
                    })
                    .collect()
            }
        };
        let mut alphas_cumprod = Vec::with_capacity(t_total);
        let mut prod = 1.0f64;
        for b in &betas {
            prod *= 1.0 - b;
            alphas_cumprod.push(prod);
        }
        // Every level must carry both signal and noise, or α, σ or λ = log(α/σ) degenerate.
        let (first, last) = (alphas_cumprod[0], alphas_cumprod[t_total - 1]);
        if !(first < 1.0 && last > 0.0 && last.sqrt().ln().is_finite()) {
            return Err(Error::invalid(
                "noise schedule",
                "0 < ᾱ_t < 1 at every level (signal and noise both present)",
                format!("ᾱ_0 = {first}, ᾱ_(T−1) = {last}"),
            ));
        }
        Ok(Self {
            kind,
            betas,
            alphas_cumprod,
        })
    }

    /// The DDPM default: linear β, T = 1000.
    pub fn linear_default() -> Self {
        Self::new(ScheduleKind::LINEAR, 1000).expect("default schedule is valid")
    }

    /// The β sequence this schedule was built from.
    pub fn kind(&self) -> ScheduleKind {
        self.kind
    }

    /// T, the number of training levels.
    pub fn num_train_timesteps(&self) -> usize {
        self.betas.len()
    }

    /// β_t.
    pub fn beta(&self, t: usize) -> f64 {
        self.betas[t]
    }

    /// ᾱ_t = ∏_{s≤t} (1 − β_s).
    pub fn alpha_bar(&self, t: usize) -> f64 {
        self.alphas_cumprod[t]
    }

    /// ᾱ at timestep `t`, with `None` meaning clean data (ᾱ = 1), the level after the last step.
    pub fn alpha_bar_or_clean(&self, t: Option<usize>) -> f64 {
        t.map_or(1.0, |t| self.alpha_bar(t))
    }

    /// α_t = √ᾱ_t, the signal scale.
    pub fn alpha(&self, t: usize) -> f64 {
        self.alphas_cumprod[t].sqrt()
    }

    /// σ_t = √(1 − ᾱ_t), the noise scale.
    pub fn sigma(&self, t: usize) -> f64 {
        (1.0 - self.alphas_cumprod[t]).sqrt()
    }

    /// The forward process q(x_t | x₀): `x ← α_t·x + σ_t·noise`, in place.
    pub fn noise_to(&self, t: usize, x: &mut [f32], noise: &[f32]) {
        let (a, s) = (self.alpha(t) as f32, self.sigma(t) as f32);
        for (v, e) in x.iter_mut().zip(noise) {
            *v = a * *v + s * e;
        }
    }

    /// λ_t = log(α_t / σ_t), the half log-SNR used by DPM-Solver.
    pub fn lambda(&self, t: usize) -> f64 {
        half_log_snr(self.alpha_bar(t))
    }

    /// The timestep whose λ is closest to `target` (λ decreases with t, so a binary search works).
    fn nearest_timestep_to_lambda(&self, target: f64) -> usize {
        let t_total = self.num_train_timesteps();
        // First t with λ(t) ≤ target.
        let (mut lo, mut hi) = (0usize, t_total);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.lambda(mid) > target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        match lo {
            0 => 0,
            t if t >= t_total => t_total - 1,
            t => {
                if (self.lambda(t - 1) - target).abs() <= (self.lambda(t) - target).abs() {
                    t - 1
                } else {
                    t
                }
            }
        }
    }

    /// The `n` timesteps (descending, most noisy first) a sampler visits.
    pub fn timesteps(&self, n: usize, spacing: TimestepSpacing) -> Result<Vec<usize>> {
        let t_total = self.num_train_timesteps();
        if n == 0 || n > t_total {
            return Err(Error::invalid(
                "number of sampling steps",
                format!("1..={t_total}"),
                n,
            ));
        }
        // Mirrors diffusers' `DDIMScheduler.set_timesteps`, including numpy's arithmetic: `np.round`
        // rounds half to even (e.g. linspace(0, 999, 7) has 166.5 → 166), `np.linspace` computes
        // k·step with the end point set exactly, and float `np.arange(T, 0, −r)` fills T + k·δ with
        // δ = (T − r) − T.
        let mut steps: Vec<usize> = match spacing {
            TimestepSpacing::Linspace => {
                let stop = (t_total - 1) as f64;
                (0..n)
                    .map(|k| {
                        // n = 1: numpy gives [0], a useless one-step grid; start at T − 1 instead.
                        let v = if n == 1 || k == n - 1 {
                            stop
                        } else {
                            k as f64 * (stop / (n - 1) as f64)
                        };
                        v.round_ties_even() as usize
                    })
                    .collect()
            }
            TimestepSpacing::Leading => {
                // n = 1 would be [0], a grid that never leaves clean data; start at T − 1 instead.
                if n == 1 {
                    vec![t_total - 1]
                } else {
                    let ratio = t_total / n;
                    (0..n).map(|k| k * ratio).collect()
                }
            }
            TimestepSpacing::Trailing => {
                let start = t_total as f64;
                let delta = (start - start / n as f64) - start;
                (0..n)
                    .map(|k| {
                        let v = if k == 0 {
                            start
                        } else {
                            start + k as f64 * delta
                        };
                        (v.round_ties_even() as usize).saturating_sub(1)
                    })
                    .collect()
            }
            TimestepSpacing::LogSnr => {
                let (l_first, l_last) = (self.lambda(t_total - 1), self.lambda(0));
                (0..n)
                    .map(|k| {
                        let target = if n == 1 {
                            l_first
                        } else {
                            l_first + (l_last - l_first) * k as f64 / (n - 1) as f64
                        };
                        self.nearest_timestep_to_lambda(target)
                    })
                    .collect()
            }
        };
        steps.sort_unstable_by(|a, b| b.cmp(a));
        steps.dedup();
        Ok(steps)
    }
}

/// λ = log(α/σ) = ½ (ln ᾱ − ln(1 − ᾱ)) for 0 < ᾱ < 1 (`ln_1p` keeps 1 − ᾱ accurate near ᾱ → 0).
pub fn half_log_snr(alpha_bar: f64) -> f64 {
    0.5 * (alpha_bar.ln() - (-alpha_bar).ln_1p())
}
