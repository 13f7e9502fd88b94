//! How far the diffusion prior's bound, used as APS uses it, can carry one measurement: Adam on a
//! point estimate x (started at Aᴴy) against ‖y − Ax‖²/σ² + λ·L_prior(x), where the prior
//! gradient comes from one of two estimators —
//! `bound`: the likelihood-weighted score-matching bound, differentiated through the denoiser
//! (w_t/p(t)·α_t·∇‖ε_θ(x_t, t) − ε‖², t ~ p(t) ∝ 1/σ_t, APS's training estimator);
//! `distill`: the same draws with the denoiser's Jacobian dropped, (ε_θ(x_t, t) − ε)/(α_t σ_t),
//! whose mean is the negative score of the prior smoothed to level t (exact for a unit
//! Gaussian prior at every t, for any prior as t → 0).
//! APS's amortised flow can at best reach the estimator's fixed point, so this bounds what
//! training it with that estimator can give. Prints PSNR of x against the bundle's truth.
//!
//! cargo run --release --example prior_descent -- PRIOR_DIR BUNDLE_DIR bound|distill ITERS [LR] [T_MAX]
//! (T_MAX: draw t only below it; default the whole schedule)
use cinediff::diffusion::{Denoiser, TimestepDistribution};
use cinediff::image::ImageBatch;
use cinediff::io::bundle::read_bundle;
use cinediff::io::model_dir::load_denoiser;
use cinediff::metrics::psnr;
use cinediff::nn::device::default_device;
use cinediff::rng::{fill_standard_normal, substream};
use num_complex::Complex32;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        anyhow::bail!("usage: prior_descent PRIOR_DIR BUNDLE_DIR bound|distill ITERS [LR]");
    }
    let device = default_device();
    let prior = load_denoiser(std::path::Path::new(&args[1]), &device)?;
    let norm = prior.config().normalization;
    let schedule = prior.config().noise_schedule()?;
    let bundle = read_bundle(std::path::Path::new(&args[2]))?;
    let estimator = args[3].as_str();
    let iters: usize = args[4].parse()?;
    let lr: f64 = args.get(5).map(|s| s.parse()).transpose()?.unwrap_or(0.01);
    let truth = bundle
        .truth()
        .ok_or_else(|| anyhow::anyhow!("bundle has no truth"))?;
    let [frames, h, w] = bundle.spec().shape;
    let plane = h * w;
    let len = 2 * plane;
    let sigma2 = bundle.spec().noise_sigma.max(1e-3).powi(2) as f64;
    let ops = bundle.frame_operators()?;
    let t_max: usize = args
        .get(6)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(schedule.num_train_timesteps());
    let sampler = TimestepDistribution::inverse_sigma(&schedule, 0..t_max)?;
    // x in network units, [frames, 2, h, w].
    let mut x = Vec::with_capacity(frames * len);
    for (f, op) in ops.iter().enumerate() {
        let aty = op.adjoint(bundle.frame_y(f))?;
        let mut v: Vec<f32> = aty.iter().map(|c| c.re).collect();
        v.extend(aty.iter().map(|c| c.im));
        norm.normalize(&mut v);
        x.extend(v);
    }
    let (mut m, mut s2) = (vec![0.0f64; x.len()], vec![0.0f64; x.len()]);
    let mut rng = substream(0, 0);
    for it in 0..=iters {
        if it % (iters / 10).max(1) == 0 {
            let mut total = 0.0;
            for f in 0..frames {
                let mut u = x[f * len..(f + 1) * len].to_vec();
                norm.denormalize(&mut u);
                let est: Vec<Complex32> = (0..plane)
                    .map(|p| Complex32::new(u[p], u[plane + p]))
                    .collect();
                let tr = &truth.values[f * plane..(f + 1) * plane];
                let a: Vec<f32> = est.iter().map(|c| c.norm()).collect();
                let b: Vec<f32> = tr.iter().map(|c| c.norm()).collect();
                total += psnr(&b, &a, [h, w])?;
            }
            println!(
                "{estimator} iter {it:5}: PSNR (magnitude) {:.2} dB",
                total / frames as f64
            );
        }
        if it == iters {
            break;
        }
        let mut grad = vec![0.0f64; x.len()];
        for (f, op) in ops.iter().enumerate() {
            let mut u = x[f * len..(f + 1) * len].to_vec();
            norm.denormalize(&mut u);
            let xu: Vec<Complex32> = (0..plane)
                .map(|p| Complex32::new(u[p], u[plane + p]))
                .collect();
            let mut r = op.forward(&xu)?;
            for (ri, yi) in r.iter_mut().zip(bundle.frame_y(f)) {
                *ri -= yi;
            }
            let atr = op.adjoint(&r)?;
            let g = 2.0 / sigma2 * norm.scale as f64;
            for p in 0..plane {
                grad[f * len + p] += g * atr[p].re as f64;
                grad[f * len + plane + p] += g * atr[p].im as f64;
            }
        }
        let (t, p) = sampler.draw(&mut rng);
        let mut eps = vec![0.0f32; x.len()];
        fill_standard_normal(&mut rng, &mut eps);
        let mut xt = x.clone();
        schedule.noise_to(t, &mut xt, &eps);
        let xt = ImageBatch::new([frames, 2, h, w], xt)?;
        let (a, sg) = (schedule.alpha(t), schedule.sigma(t));
        match estimator {
            "bound" => {
                let epsb = ImageBatch::new([frames, 2, h, w], eps.clone())?;
                let (_, g) = prior.noise_matching_grad(&xt, t, &epsb)?;
                let wt = cinediff::aps::prior_bound_weight(&schedule, t) / p * a;
                for (o, v) in grad.iter_mut().zip(g.data()) {
                    *o += wt * *v as f64;
                }
            }
            "distill" => {
                // Antithetic pair ±ε, as APS training draws it.
                let mut both = xt.data().to_vec();
                let mut minus = x.clone();
                let neg: Vec<f32> = eps.iter().map(|v| -v).collect();
                schedule.noise_to(t, &mut minus, &neg);
                both.extend(minus);
                let both = ImageBatch::new([2 * frames, 2, h, w], both)?;
                let e = prior.predict_noise(&both, t)?;
                let (ep, em) = e.data().split_at(frames * len);
                for ((o, p), m) in grad.iter_mut().zip(ep).zip(em) {
                    *o += (*p + *m) as f64 / (2.0 * a * sg);
                }
            }
            other => anyhow::bail!("estimator {other}: expected bound or distill"),
        }
        let k = (it + 1) as i32;
        for i in 0..x.len() {
            m[i] = 0.9 * m[i] + 0.1 * grad[i];
            s2[i] = 0.999 * s2[i] + 0.001 * grad[i] * grad[i];
            let mh = m[i] / (1.0 - 0.9f64.powi(k));
            let vh = s2[i] / (1.0 - 0.999f64.powi(k));
            x[i] -= (lr * mh / (vh.sqrt() + 1e-8)) as f32;
        }
    }
    Ok(())
}
