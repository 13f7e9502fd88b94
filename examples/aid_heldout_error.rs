//! Held-out denoising error of an AID model against its U-Net alone, by diffusion time: for the
//! first window of every sequence in a file (frames 0..L−1 condition, 1..L noised with seeded
//! noise), the ε-MSE of both and the x̂₀ RMSE they imply, √(MSE_ε)·σ_t/α_t. A ratio below 1
//! says the branch uses the earlier frames.
//!
//! cargo run --release --example aid_heldout_error -- models/cine64-aid held_out.npy
use burn::tensor::{Tensor, TensorData};
use cinediff::data::dataset::training_images;
use cinediff::io::model_dir::load_aid;
use cinediff::io::npy::read_npy;
use cinediff::nn::device::default_device;
use cinediff::nn::unet_denoiser::tensor_to_vec;
use cinediff::rng::{fill_standard_normal, substream};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        anyhow::bail!("usage: aid_heldout_error AID_MODEL_DIR SEQUENCES.npy ([N, T, H, W], T > L)");
    }
    let device = default_device();
    let (config, net) = load_aid(std::path::Path::new(&args[1]), &device)?;
    let schedule = config.diffusion.noise_schedule()?;
    let array = read_npy(std::path::Path::new(&args[2]))?;
    let Some((real, complex)) = array.float_views() else {
        anyhow::bail!("{}: expected float32 or complex64", args[2]);
    };
    let shape = array.shape().to_vec();
    if shape.len() != 4 || shape[1] <= net.window() {
        anyhow::bail!(
            "{}: expected [N, T, H, W] with T > {}, got {shape:?}",
            args[2],
            net.window()
        );
    }
    let set = training_images(&shape, real, complex)?;
    let mut images = set.images;
    config.diffusion.normalization.normalize(images.data_mut());
    let l = net.window();
    let [c, h, w] = net.frame_shape();
    let len = c * h * w;
    let n = shape[0];
    let t_frames = shape[1];
    for &t in &[10usize, 50, 150, 300, 500, 700, 900] {
        let (mut se_aid, mut se_prior, mut cnt) = (0.0f64, 0.0f64, 0usize);
        for s in 0..n {
            let mut cond = Vec::new();
            let mut noisy = Vec::new();
            for j in 0..l {
                cond.extend_from_slice(images.image(s * t_frames + j));
                noisy.extend_from_slice(images.image(s * t_frames + j + 1));
            }
            let mut noise = vec![0.0f32; l * len];
            // Seeded per (sequence, t) so every model sees the same noise.
            let mut rng = substream(7, (s * 1000 + t) as u64);
            fill_standard_normal(&mut rng, &mut noise);
            schedule.noise_to(t, &mut noisy, &noise);
            let x: Tensor<5> =
                Tensor::from_data(TensorData::new(noisy.clone(), [1, l, c, h, w]), &device);
            let cnd: Tensor<5> = Tensor::from_data(TensorData::new(cond, [1, l, c, h, w]), &device);
            let e = net.forward(x, cnd, &[t]);
            let e = tensor_to_vec(e)?;
            let xp: Tensor<4> = Tensor::from_data(TensorData::new(noisy, [l, c, h, w]), &device);
            let p = net.unet().forward(xp, &vec![t; l]);
            let p = tensor_to_vec(p)?;
            for i in 0..l * len {
                se_aid += ((e[i] - noise[i]) as f64).powi(2);
                se_prior += ((p[i] - noise[i]) as f64).powi(2);
            }
            cnt += l * len;
        }
        let a = schedule.alpha(t);
        let sg = schedule.sigma(t);
        let k = (sg / a).powi(2);
        println!(
            "t={t:4} eps-mse aid {:.3e} prior {:.3e} ratio {:.3}  x0-rmse aid {:.4} prior {:.4}",
            se_aid / cnt as f64,
            se_prior / cnt as f64,
            se_aid / se_prior,
            (k * se_aid / cnt as f64).sqrt(),
            (k * se_prior / cnt as f64).sqrt()
        );
    }
    Ok(())
}
