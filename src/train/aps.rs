//! Training of an APS flow ([`crate::aps`]) by amortised variational inference, without paired
//! data: every step draws training images, simulates their measurements with the model's operator
//! family (fresh masks and noise), draws x = G_φ(z; c(y)) and lowers the estimate of
//! KL(q_φ(x|y) ‖ p(x|y)) + const = E[ −log|det ∂G/∂z| + D(x, y) + L_prior(x) ], where
//! D = ‖y − Ax‖²/σ² for complex measurements (½ that for real ones) and L_prior is the diffusion
//! prior's likelihood-weighted score-matching bound, estimated by w_t/p(t)·‖ε_θ(α_t x + σ_t ε, t) − ε‖²
//! with t drawn from p(t) ∝ 1/σ_t (importance sampling; unbiased for Σ_t w_t E‖·‖²). Its gradient
//! is either the bound's own or the Jacobian-free score-distillation estimate
//! ([`crate::aps::PriorGradient`]).
//!
//! The data and prior terms are differentiated outside the flow's graph — Aᴴ(Ax − y) with the
//! operator, the prior's gradient with [`Denoiser::noise_matching_grad`] (or, distilled, from
//! [`Denoiser::predict_noise`] alone) — and enter the flow's loss as ⟨x, stop-grad(g)⟩, whose
//! gradient with respect to φ is (∂x/∂φ)ᵀ g: the gradient of the objective (with the bound's own
//! prior gradient, exactly), without putting the prior network into the flow's autodiff graph.

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, RngCore};

use crate::aps::{conditioning, prior_bound_weight, ApsModelConfig, PriorGradient};
use crate::bundle::{simulate, Truth};
use crate::diffusion::schedule::NoiseSchedule;
use crate::diffusion::{Denoiser, TimestepDistribution};
use crate::error::{Error, Result};
use crate::image::ImageBatch;
use crate::nn::flow::ConditionalFlow;
use crate::nn::unet_denoiser::tensor_to_vec;
use crate::rng::{fill_standard_normal, substream};
use crate::train::{
    build_optimizer, optimization_step, push_flipped, Flips, StepReport, TrainConfig,
};

/// The per-dimension terms of one step's objective (batch means, nats per image value).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ApsTerms {
    /// −log|det ∂G/∂z| / D.
    pub neg_log_det: f64,
    /// ‖y − Ax‖²/σ² (or /2σ²) / D.
    pub data: f64,
    /// The prior bound's estimate / D.
    pub prior: f64,
}

impl ApsTerms {
    /// Their sum: the KL estimate up to a constant.
    pub fn total(&self) -> f64 {
        self.neg_log_det + self.data + self.prior
    }
}

/// `flow` on the autodiff device in training mode, frozen but for its refine stage when the
/// model trains that alone.
fn trainable(flow: ConditionalFlow, config: &ApsModelConfig, device: &Device) -> ConditionalFlow {
    let flow = flow.valid().to_device(&device.clone().autodiff()).train();
    if config.train_refine_only {
        flow.freeze_all_but_refine()
    } else {
        flow
    }
}

/// The APS flow's training state: flow, EMA copy, optimizer, step counter.
pub struct ApsTrainer {
    config: TrainConfig,
    model_config: ApsModelConfig,
    schedule: NoiseSchedule,
    model: ConditionalFlow,
    ema: ConditionalFlow,
    optimizer: ModuleOptimizer,
    step: usize,
    device: Device,
    last_terms: ApsTerms,
    timestep_sampler: TimestepDistribution,
}

impl ApsTrainer {
    /// Starts training `flow` against a prior trained with `schedule`.
    pub fn new(
        config: TrainConfig,
        model_config: &ApsModelConfig,
        schedule: NoiseSchedule,
        flow: ConditionalFlow,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        model_config.validate()?;
        if model_config.antithetic_latents && !config.batch_size.is_multiple_of(2) {
            return Err(Error::invalid(
                "APS batch size with antithetic latents",
                "an even number (pairs z, −z)",
                config.batch_size,
            ));
        }
        let total = schedule.num_train_timesteps();
        let bound = &model_config.prior_bound;
        let end = bound.max_timestep.unwrap_or(total);
        if bound.min_timestep >= total {
            return Err(Error::invalid(
                "APS prior min timestep",
                format!("< {total}"),
                bound.min_timestep,
            ));
        }
        if end <= bound.min_timestep || end > total {
            return Err(Error::invalid(
                "APS prior max timestep",
                format!("in {}..={total}", bound.min_timestep + 1),
                end,
            ));
        }
        let model = trainable(flow, model_config, device);
        let ema = model.valid().to_device(device);
        let timestep_sampler =
            TimestepDistribution::inverse_sigma(&schedule, bound.min_timestep..end)?;
        Ok(Self {
            timestep_sampler,
            optimizer: build_optimizer(&config),
            config,
            model_config: model_config.clone(),
            schedule,
            model,
            ema,
            step: 0,
            device: device.clone(),
            last_terms: ApsTerms::default(),
        })
    }

    /// Continues from saved weights, EMA weights, optimizer state and step count.
    pub fn resume(
        mut self,
        model: ConditionalFlow,
        ema: ConditionalFlow,
        optimizer: ModuleOptimizer,
        step: usize,
    ) -> Self {
        self.model = trainable(model, &self.model_config, &self.device);
        self.ema = ema.valid().to_device(&self.device);
        self.optimizer = optimizer;
        self.step = step;
        self
    }

    /// Steps done so far.
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// The optimisation settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The raw flow.
    pub fn model(&self) -> &ConditionalFlow {
        &self.model
    }

    /// The EMA flow, used for sampling.
    pub fn ema(&self) -> &ConditionalFlow {
        &self.ema
    }

    /// The optimizer (for checkpoints).
    pub fn optimizer(&self) -> &ModuleOptimizer {
        &self.optimizer
    }

    /// True once every configured step has run.
    pub fn finished(&self) -> bool {
        self.step >= self.config.steps
    }

    /// The terms of the last step.
    pub fn last_terms(&self) -> ApsTerms {
        self.last_terms
    }

    /// One optimizer step: a batch of `data` (network units, `[n, c, h, w]`) measured afresh,
    /// the prior term from `prior` (ε-prediction in the same network units). The reported loss
    /// is the KL estimate per image value ([`ApsTerms::total`]).
    pub fn train_step(&mut self, data: &ImageBatch, prior: &dyn Denoiser) -> Result<StepReport> {
        let f = &self.model_config.flow;
        let (c, s) = (f.in_channels, f.image_size);
        let [n, dc, dh, dw] = data.shape();
        if [dc, dh, dw] != [c, s, s] {
            return Err(Error::Shape {
                what: "APS training images [c, h, w]".into(),
                expected: vec![c, s, s],
                got: vec![dc, dh, dw],
            });
        }
        let mut rng = substream(self.config.seed, self.step as u64);
        self.device.seed(rng.next_u64());
        let b = self.config.batch_size;
        let plane = s * s;
        let len = c * plane;
        let norm = self.model_config.normalization;
        let sim = self.model_config.family.simulation();
        // Measure b training images.
        let mut conds = Vec::with_capacity(b * (c + 1) * plane);
        let mut bundles: Vec<crate::bundle::Bundle> = Vec::with_capacity(b);
        let antithetic = self.model_config.antithetic_latents;
        for k in 0..b {
            if antithetic && k % 2 == 1 {
                // The second of a pair: the same measurement again (its condition is computed
                // once below and repeated).
                bundles.push(bundles[k - 1].clone());
                continue;
            }
            let i = rng.random_range(0..n);
            let flip_x = matches!(self.config.flips, Flips::Horizontal | Flips::Both)
                && rng.random_bool(0.5);
            let flip_y = self.config.flips == Flips::Both && rng.random_bool(0.5);
            let mut user = Vec::with_capacity(len);
            push_flipped(&mut user, data.image(i), [c, s, s], flip_x, flip_y);
            norm.denormalize(&mut user);
            let values: Vec<num_complex::Complex32> = (0..plane)
                .map(|k| {
                    num_complex::Complex32::new(user[k], if c == 2 { user[plane + k] } else { 0.0 })
                })
                .collect();
            let bundle = simulate(
                Truth {
                    shape: vec![s, s],
                    values,
                },
                c == 2,
                &sim,
                rng.next_u64(),
            )?;
            conds.extend(conditioning(&bundle, 0, c, norm)?);
            bundles.push(bundle);
        }
        let mut z = vec![0.0f32; b * len];
        fill_standard_normal(&mut rng, &mut z);
        if antithetic {
            for pair in z.chunks_exact_mut(2 * len) {
                let (first, second) = pair.split_at_mut(len);
                for (s, f) in second.iter_mut().zip(first.iter()) {
                    *s = -f;
                }
            }
        }
        let ad = self.device.clone().autodiff();
        let z = Tensor::<4>::from_data(TensorData::new(z, [b, c, s, s]), &ad);
        let distinct = conds.len() / ((c + 1) * plane);
        let cond = Tensor::<4>::from_data(TensorData::new(conds, [distinct, c + 1, s, s]), &ad);
        let condition = self.model.condition(cond).repeat_each(b / distinct);
        let (x, logdet) = self.model.forward_conditioned(z, &condition);
        let x_values = tensor_to_vec(x.clone().inner())?;
        let logdets = tensor_to_vec(logdet.clone().inner())?;
        if let Some(bad) = x_values.iter().find(|v| !v.is_finite()) {
            return Err(Error::Model(format!(
                "APS sample became {bad} at step {}; lower the learning rate",
                self.step + 1
            )));
        }

        // Data term: value and gradient with respect to the network-space image.
        let sigma2 = self.model_config.family.noise_sigma.powi(2);
        let mut grad = vec![0.0f32; b * len];
        let mut data_term = 0.0f64;
        for (k, bundle) in bundles.iter().enumerate() {
            let img = &x_values[k * len..(k + 1) * len];
            let mut user = img.to_vec();
            norm.denormalize(&mut user);
            let x_user: Vec<num_complex::Complex32> = (0..plane)
                .map(|p| {
                    num_complex::Complex32::new(user[p], if c == 2 { user[plane + p] } else { 0.0 })
                })
                .collect();
            let op = bundle.frame_operators()?.swap_remove(0);
            let mut r = op.forward(&x_user)?;
            for (ri, yi) in r.iter_mut().zip(bundle.frame_y(0)) {
                *ri -= yi;
            }
            // −log p(y|x) = ‖r‖²/σ² for circular complex noise with E|n|² = σ², ‖r‖²/(2σ²) real.
            let complex_y = bundle.spec().y_is_complex();
            let weight = if complex_y {
                1.0 / sigma2
            } else {
                0.5 / sigma2
            };
            data_term += weight * r.iter().map(|v| v.norm_sqr() as f64).sum::<f64>();
            let atr = op.adjoint(&r)?;
            // ∂/∂x_net = scale · ∂/∂x_user; ∂‖r‖²/∂(re, im) x = 2 (Re, Im) Aᴴr.
            let g = (2.0 * weight) as f32 * norm.scale;
            let out = &mut grad[k * len..(k + 1) * len];
            for p in 0..plane {
                out[p] += g * atr[p].re;
                if c == 2 {
                    out[plane + p] += g * atr[p].im;
                }
            }
        }

        // Prior term: w_t/p(t)·‖ε_θ(α x + σ ε, t) − ε‖² with t ~ p, its gradient
        // α·w_t/p(t)·∇_{x_t}. p(t) ∝ 1/σ_t puts draws where the terms (and their gradients, which
        // grow like 1/σ_t²) are large, instead of a rare huge spike from a uniform draw.
        let bound = &self.model_config.prior_bound;
        let x_batch = ImageBatch::new([b, c, s, s], x_values.clone())?;
        let mut prior_term = 0.0f64;
        for _ in 0..bound.draws {
            let (t, p) = self.timestep_sampler.draw(&mut rng);
            let weight = prior_bound_weight(&self.schedule, t) / p / bound.draws as f64;
            let mut eps = vec![0.0f32; b * len];
            fill_standard_normal(&mut rng, &mut eps);
            let mut x_t = x_batch.data().to_vec();
            self.schedule.noise_to(t, &mut x_t, &eps);
            let x_t = ImageBatch::new([b, c, s, s], x_t)?;
            let eps = ImageBatch::new([b, c, s, s], eps)?;
            match bound.gradient {
                PriorGradient::Bound => {
                    let (losses, g) = prior.noise_matching_grad(&x_t, t, &eps)?;
                    prior_term += weight * losses.iter().sum::<f64>();
                    let scale = (weight * self.schedule.alpha(t)) as f32;
                    for (o, v) in grad.iter_mut().zip(g.data()) {
                        *o += scale * v;
                    }
                }
                PriorGradient::Distilled => {
                    // Antithetic pair ±ε in one batch: the ε terms cancel and so does the part of
                    // ε̂ linear in the noise, leaving (ε̂(αx + σε) + ε̂(αx − σε))/(2ασ).
                    let mut both = x_t.data().to_vec();
                    let mut minus = x_batch.data().to_vec();
                    let neg: Vec<f32> = eps.data().iter().map(|v| -v).collect();
                    self.schedule.noise_to(t, &mut minus, &neg);
                    both.extend(minus);
                    let both = ImageBatch::new([2 * b, c, s, s], both)?;
                    let eps_hat = prior.predict_noise(&both, t)?;
                    let (plus, minus) = eps_hat.data().split_at(b * len);
                    let scale = (0.5
                        / (self.schedule.alpha(t) * self.schedule.sigma(t))
                        / bound.draws as f64) as f32;
                    let mut sq = 0.0f64;
                    for (((o, ep), em), n) in grad.iter_mut().zip(plus).zip(minus).zip(eps.data()) {
                        let (dp, dm) = ((ep - n) as f64, (em + n) as f64);
                        sq += 0.5 * (dp * dp + dm * dm);
                        *o += scale * (ep + em);
                    }
                    // The value reported is still the bound's estimate, so runs compare.
                    prior_term += weight * sq;
                }
            }
        }

        let dims = (b * len) as f64;
        let terms = ApsTerms {
            neg_log_det: -logdets.iter().map(|&v| v as f64).sum::<f64>() / dims,
            data: data_term / dims,
            prior: prior_term / dims,
        };
        let g = Tensor::<4>::from_data(TensorData::new(grad, [b, c, s, s]), &ad);
        let surrogate = ((x * g).sum() - logdet.sum()) / dims as f32;
        let mut report = optimization_step(
            &mut self.model,
            &mut self.ema,
            &mut self.optimizer,
            &self.config,
            self.step,
            surrogate,
        )?;
        report.loss = terms.total() as f32;
        self.last_terms = terms;
        self.step = report.step;
        Ok(report)
    }
}

crate::train::impl_checkpointed!(ApsTrainer, ConditionalFlow);
