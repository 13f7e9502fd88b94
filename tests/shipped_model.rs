//! The shipped prior `models/cine64-small`: it loads, denoises unseen phantom frames far better
//! than the noisy input, and its samples have the phantom's intensity statistics. The other
//! shipped models (echo prior, APS, AID) each get a check of what their card claims.
//! `cargo test --release --test shipped_model`.

use std::path::Path;

use cinediff::data::phantom::{cine_phantom, PhantomConfig};
use cinediff::diffusion::samplers::{DpmSolverPlusPlus, Sampler, Start};
use cinediff::diffusion::{ClippedDenoiser, Denoiser, TimestepSpacing};
use cinediff::io::model_dir::load_denoiser;
use cinediff::nn::device::default_device;
use cinediff::rng::{seeded, standard_normal, substream};
use cinediff::ImageBatch;

const MODEL: &str = "models/cine64-small";

/// `count` frames of complex phantom sequences from a seed the model never saw, as user-unit
/// 2-channel images.
fn unseen_frames(count: usize) -> ImageBatch {
    let config = PhantomConfig {
        complex: true,
        frames: count,
        ..PhantomConfig::default()
    };
    complex_phantom(&config, 0)
}

/// One complex 64×64 phantom sequence of `config` from `substream(987_654, stream)` (a seed no
/// shipped model saw) as `[frames, 2, 64, 64]` user-unit images.
fn complex_phantom(config: &PhantomConfig, stream: u64) -> ImageBatch {
    let seq = cine_phantom(config, &mut substream(987_654, stream)).unwrap();
    cinediff::data::dataset::training_images(&[config.frames, 64, 64], None, Some(&seq.data))
        .unwrap()
        .images
}

/// Asserts that `predictor`'s summed squared forecast error over every window of `frames` (at
/// 3× the heart rate) is below `bound` × persistence's (x̃_{t+1} = x_t).
fn assert_forecast_beats_persistence(
    predictor: &cinediff::nn::transition::TransitionPredictor,
    frames: &[ImageBatch],
    bound: f64,
) {
    let errors = predictor.forecast_errors(frames).unwrap();
    let (model, persistence) = (errors.model, errors.persistence);
    eprintln!(
        "3× heart rate: summed squared forecast error, model {model:.4e}, persistence {persistence:.4e}, ratio {:.3}",
        model / persistence
    );
    assert!(
        model < bound * persistence,
        "model {model} vs persistence {persistence}"
    );
}

fn magnitudes(x: &ImageBatch) -> Vec<f32> {
    cinediff::data::dataset::magnitudes(x)
}

fn mean(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64
}

fn rms_diff(a: &[f32], b: &[f32]) -> f64 {
    (a.iter()
        .zip(b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64)
        .sqrt()
}

#[test]
fn shipped_prior_denoises_unseen_frames() {
    let device = default_device();
    let den = load_denoiser(Path::new(MODEL), &device).unwrap();
    assert_eq!(den.image_shape(), Some([2, 64, 64]));
    let norm = den.config().normalization;
    let schedule = den.config().noise_schedule().unwrap();
    let mut x0 = unseen_frames(4);
    norm.normalize(x0.data_mut());
    let noise = standard_normal(&mut seeded(11), x0.data().len());
    // One-step Tweedie denoising at a moderate noise level: the error of x̂₀ must be a small
    // fraction of the error of the rescaled noisy input x_t/α.
    for t in [100, 300] {
        let mut xt = x0.clone();
        schedule.noise_to(t, xt.data_mut(), &noise);
        let eps = den.predict_noise(&xt, t).unwrap();
        let (a, s) = (schedule.alpha(t) as f32, schedule.sigma(t) as f32);
        let x0_hat: Vec<f32> = xt
            .data()
            .iter()
            .zip(eps.data())
            .map(|(x, e)| (x - s * e) / a)
            .collect();
        let naive: Vec<f32> = xt.data().iter().map(|x| x / a).collect();
        let err = rms_diff(&x0_hat, x0.data());
        let err_naive = rms_diff(&naive, x0.data());
        eprintln!("t = {t}: x̂₀ RMS error {err:.4}, noisy input {err_naive:.4}");
        assert!(
            err < 0.25 * err_naive,
            "t = {t}: x̂₀ error {err} vs noisy input {err_naive}"
        );
    }
}

#[test]
fn shipped_prior_samples_have_phantom_statistics() {
    let device = default_device();
    let den = load_denoiser(Path::new(MODEL), &device).unwrap();
    let norm = den.config().normalization;
    let schedule = den.config().noise_schedule().unwrap();
    let clipped = ClippedDenoiser::new(&den, &schedule, 1.0).unwrap();
    let steps = schedule.timesteps(15, TimestepSpacing::LogSnr).unwrap();
    let mut samples = DpmSolverPlusPlus::default()
        .sample(
            &clipped,
            &schedule,
            &steps,
            Start::Cold {
                shape: [6, 2, 64, 64],
            },
            &mut seeded(5),
            &mut |_| {},
        )
        .unwrap();
    norm.denormalize(samples.data_mut());
    let sample_mag = magnitudes(&samples);
    let data_mag = magnitudes(&unseen_frames(16));
    let background = |m: &[f32]| m.iter().filter(|&&v| v < 0.05).count() as f64 / m.len() as f64;
    let (ms, md) = (mean(&sample_mag), mean(&data_mag));
    let (bs, bd) = (background(&sample_mag), background(&data_mag));
    eprintln!("mean |x|: samples {ms:.3}, phantom {md:.3}; background fraction: samples {bs:.3}, phantom {bd:.3}");
    // Measured for the shipped weights: mean 0.238 vs 0.201, background 0.464 vs 0.560 (residual
    // noise texture in the background of some samples, see the model card; 0.249 and 0.393 before
    // fine-tuning). The same check on an
    // early checkpoint of the same run (step ≈ 1100) gave a background fraction of 0.198: it fails.
    assert!(
        (ms / md - 1.0).abs() < 0.35,
        "mean magnitude {ms} vs phantom {md}"
    );
    assert!(
        (bs - bd).abs() < 0.2,
        "background fraction {bs} vs phantom {bd}"
    );
}

/// The shipped ultrasound prior `models/echo64-small`: one-step denoising of beam-domain frames of
/// an echo-phantom cine from a seed it never saw (training used seed 1) beats the noisy input.
#[test]
fn shipped_echo_prior_denoises_unseen_frames() {
    use cinediff::data::echo::{echo_phantom, EchoConfig};
    let device = default_device();
    let den = load_denoiser(Path::new("models/echo64-small"), &device).unwrap();
    assert_eq!(den.image_shape(), Some([1, 64, 64]));
    let norm = den.config().normalization;
    let schedule = den.config().noise_schedule().unwrap();
    let config = EchoConfig {
        frames: 4,
        ..EchoConfig::default()
    };
    let seq = echo_phantom(&config, &mut substream(987_654, 0)).unwrap();
    let mut x0 = ImageBatch::new([4, 1, 64, 64], seq.data.clone()).unwrap();
    norm.normalize(x0.data_mut());
    let noise = standard_normal(&mut seeded(12), x0.data().len());
    for (t, ratio) in [(100, 0.6), (300, 0.35)] {
        let mut xt = x0.clone();
        schedule.noise_to(t, xt.data_mut(), &noise);
        let eps = den.predict_noise(&xt, t).unwrap();
        let (a, s) = (schedule.alpha(t) as f32, schedule.sigma(t) as f32);
        let x0_hat: Vec<f32> = xt
            .data()
            .iter()
            .zip(eps.data())
            .map(|(x, e)| (x - s * e) / a)
            .collect();
        let naive: Vec<f32> = xt.data().iter().map(|x| x / a).collect();
        let err = rms_diff(&x0_hat, x0.data());
        let err_naive = rms_diff(&naive, x0.data());
        eprintln!("echo, t = {t}: x̂₀ RMS error {err:.4}, noisy input {err_naive:.4}");
        // Speckle is unpredictable pixel by pixel, so the gain is smaller than for the MRI prior.
        assert!(err < ratio * err_naive, "t = {t}: {err} vs {err_naive}");
    }
}

/// The shipped APS model (4× random-line single-coil MRI): on an unseen phantom cine its draws are
/// data-consistent and spread where the measurement says nothing — the per-frequency spread of
/// the draws in unmeasured k-space columns is several times that in measured ones — and their
/// mean fills the missing k-space from the prior, well above zero-filling. (How far its mean is
/// from DPS's is in BENCHMARKS.md.)
#[test]
fn shipped_aps_model_is_data_consistent_and_uncertain_where_unmeasured() {
    use cinediff::bundle::{simulate, MaskPattern, OperatorKind, SimulationSettings, Truth};
    use cinediff::io::model_dir::load_aps;
    use cinediff::physics::fft::Fft2;
    use num_complex::Complex32;

    let device = default_device();
    let aps = load_aps(Path::new("models/cine64-aps-mri4x"), &device).unwrap();
    let config = PhantomConfig {
        complex: true,
        frames: 2,
        ..PhantomConfig::default()
    };
    let truth: Vec<Complex32> = cine_phantom(&config, &mut substream(2031, 0)).unwrap().data;
    let bundle = simulate(
        Truth {
            shape: vec![2, 64, 64],
            values: truth.clone(),
        },
        true,
        &SimulationSettings {
            operator: OperatorKind::Mri,
            mask: MaskPattern::Random,
            acceleration: 4.0,
            acs: 5,
            coils: 1,
            noise_sigma: 0.01,
            static_mask: false,
            scale: 2,
            blur_sigma: 1.5,
        },
        0,
    )
    .unwrap();
    let norm = aps.config().normalization;
    let est = aps
        .estimate(&bundle, norm, 16, 16, 0, &mut |_, _| {})
        .unwrap();
    let fft = Fft2::new([64, 64]).unwrap();
    let mut scratch = fft.make_scratch();
    let mask = bundle.mask().unwrap();
    let (mut measured, mut unmeasured) = ((0.0f64, 0usize), (0.0f64, 0usize));
    for f in 0..2 {
        let pixels = mask.frame_pixels(f, 64).unwrap();
        let spectra: Vec<Vec<Complex32>> = est
            .draws
            .iter()
            .map(|d| {
                let mut k = d[f * 4096..(f + 1) * 4096].to_vec();
                fft.forward_centered(&mut k, &mut scratch).unwrap();
                k
            })
            .collect();
        for p in 0..4096 {
            let mean: Complex32 = spectra.iter().map(|k| k[p]).sum::<Complex32>() / 16.0;
            let spread = spectra
                .iter()
                .map(|k| (k[p] - mean).norm_sqr() as f64)
                .sum::<f64>()
                / 15.0;
            let slot = if pixels.data()[p] {
                &mut measured
            } else {
                &mut unmeasured
            };
            slot.0 += spread;
            slot.1 += 1;
        }
    }
    let ratio = (unmeasured.0 / unmeasured.1 as f64) / (measured.0 / measured.1 as f64);
    assert!(
        ratio > 3.0,
        "k-space variance unmeasured / measured = {ratio:.2}"
    );
    // Mean vs zero-filled PSNR on magnitudes (peak = max |truth|).
    let ops = bundle.frame_operators().unwrap();
    let mut zf = Vec::new();
    for (f, op) in ops.iter().enumerate() {
        zf.extend(op.adjoint(bundle.frame_y(f)).unwrap());
    }
    let peak = truth.iter().map(|v| v.norm()).fold(0.0f32, f32::max) as f64;
    let psnr = |x: &[Complex32]| {
        let mse = x
            .iter()
            .zip(&truth)
            .map(|(a, b)| ((a.norm() - b.norm()) as f64).powi(2))
            .sum::<f64>()
            / truth.len() as f64;
        10.0 * (peak * peak / mse).log10()
    };
    let (p_aps, p_zf) = (psnr(&est.mean), psnr(&zf));
    eprintln!("APS mean of 16 draws {p_aps:.2} dB, zero-filled {p_zf:.2} dB, k-space variance ratio {ratio:.2}");
    // Measured here with the shipped weights (2026-12-04, 20 400 steps, drawing over the
    // model's 16 symmetries): 27.06 dB against 16.69 (+10.4 dB, variance ratio 31.6; the
    // 13 800-step weights: 26.64, the 11 600-step weights: 26.36,
    // and 25.70 with plain draws; the card's seed-2028 frames: +13.3 dB with 64 draws); the bound is a floor any model that
    // fills missing k-space from the prior clears (an earlier shipped version scored +6.8).
    assert!(
        p_aps > p_zf + 5.0,
        "APS mean {p_aps:.2} dB vs zero-filled {p_zf:.2} dB"
    );
}

/// The shipped AID model `models/cine64-aid`: its U-Net is the shipped prior (two-stage training
/// froze it), and on an unseen window its branch lowers the ε error of the U-Net alone at a
/// moderate noise level, i.e. it uses the earlier frames. The bound is a regression bound: the
/// model card's held-out ratio at t = 300 is 0.54 (4 unseen cines); 0.8 leaves room for one cine.
#[test]
fn shipped_aid_model_uses_its_history() {
    use burn::tensor::{Tensor, TensorData};
    use cinediff::io::model_dir::load_aid;
    use cinediff::nn::unet_denoiser::tensor_to_vec;

    let device = default_device();
    let (config, net) = load_aid(Path::new("models/cine64-aid"), &device).unwrap();
    let prior = load_denoiser(Path::new(MODEL), &device).unwrap();
    assert_eq!(
        config.diffusion,
        *prior.config(),
        "the AID was built on cine64-small"
    );
    let l = net.window();
    let len = 2 * 64 * 64;
    let mut frames = unseen_frames(l + 1);
    config.diffusion.normalization.normalize(frames.data_mut());
    let cond = frames.data()[..l * len].to_vec();
    let mut noisy = frames.data()[len..].to_vec();
    let noise = standard_normal(&mut seeded(12), l * len);
    let t = 300;
    config
        .diffusion
        .noise_schedule()
        .unwrap()
        .noise_to(t, &mut noisy, &noise);
    let shape = [1, l, 2, 64, 64];
    let eps_aid = tensor_to_vec(net.forward(
        Tensor::from_data(TensorData::new(noisy.clone(), shape), &device),
        Tensor::from_data(TensorData::new(cond, shape), &device),
        &[t],
    ))
    .unwrap();
    let alone = ImageBatch::new([l, 2, 64, 64], noisy).unwrap();
    let eps_prior = prior.predict_noise(&alone, t).unwrap();
    let mse = |e: &[f32]| rms_diff(e, &noise).powi(2);
    let (aid, unet) = (mse(&eps_aid), mse(eps_prior.data()));
    eprintln!(
        "t = {t}: ε-MSE AID {aid:.3e}, U-Net alone {unet:.3e}, ratio {:.3}",
        aid / unet
    );
    assert!(aid < 0.8 * unet, "AID {aid} vs U-Net alone {unet}");
}

/// The shipped ultrasound transition model `models/echo64-transition` (SeqDiff+): on an echo cine
/// from a seed it never saw, at 3× the heart rate, its forecast of each next frame from the four
/// before it has a lower MSE than persistence (x̃_{t+1} = x_t, SeqDiff's assumption). Regression
/// bound: the model card's ratio on 4 unseen cines is 0.75; 0.9 leaves room for one short cine.
#[test]
fn shipped_echo_transition_beats_persistence_under_fast_motion() {
    use cinediff::data::echo::{echo_phantom, EchoConfig};
    use cinediff::io::model_dir::load_transition;

    let device = default_device();
    let predictor = load_transition(Path::new("models/echo64-transition"), &device).unwrap();
    let config = EchoConfig {
        frames: 12,
        frame_stride: 3,
        ..EchoConfig::default()
    };
    let seq = echo_phantom(&config, &mut substream(987_654, 1)).unwrap();
    let len = 64 * 64;
    let frame = |t: usize| {
        ImageBatch::new([1, 1, 64, 64], seq.data[t * len..(t + 1) * len].to_vec()).unwrap()
    };
    let frames: Vec<ImageBatch> = (0..config.frames).map(frame).collect();
    assert_forecast_beats_persistence(&predictor, &frames, 0.9);
}

/// The shipped MRI transition model `models/cine64-transition` (SeqDiff+, K = 8): on a complex
/// phantom cine from a seed it never saw, at 3× the heart rate, its forecast of each next frame
/// from the eight before it has a lower MSE than persistence (x̃_{t+1} = x_t). Regression bound:
/// the model card's ratio on 4 unseen cines (seed 99) is 0.745 (0.704 on this one, 2026-12-08);
/// 0.85 leaves room for one cine and fails for the model it replaced (0.869 on this cine).
#[test]
fn shipped_mri_transition_beats_persistence_under_fast_motion() {
    use cinediff::io::model_dir::load_transition;

    let device = default_device();
    let predictor = load_transition(Path::new("models/cine64-transition"), &device).unwrap();
    let config = PhantomConfig {
        complex: true,
        frames: 32,
        frame_stride: 3,
        ..PhantomConfig::default()
    };
    let cine = complex_phantom(&config, 2);
    let frames: Vec<ImageBatch> = (0..config.frames)
        .map(|t| ImageBatch::new([1, 2, 64, 64], cine.image(t).to_vec()).unwrap())
        .collect();
    assert_forecast_beats_persistence(&predictor, &frames, 0.85);
}
