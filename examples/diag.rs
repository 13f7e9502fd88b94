use cinediff::io::model_dir::load_denoiser;
use cinediff::io::npy::{read_npy, NpyArray};
use cinediff::diffusion::Denoiser;
use cinediff::ImageBatch;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dev = cinediff::nn::device::default_device();
    let den = load_denoiser(std::path::Path::new(&args[1]), &dev).unwrap();
    let cfg = den.config().clone();
    let sch = cfg.noise_schedule().unwrap();
    let arr = read_npy(std::path::Path::new(&args[2])).unwrap();
    let NpyArray::Complex { data, .. } = arr else { panic!() };
    let n = 8; let len = 4096;
    let mut x0 = vec![0f32; n*2*len];
    for i in 0..n { for p in 0..len { let v = data[i*37*len % data.len() + p]; x0[(2*i)*len+p]=v.re/cfg.normalization.scale; x0[(2*i+1)*len+p]=v.im/cfg.normalization.scale; } }
    let mut rng = cinediff::rng::seeded(1);
    let eps = cinediff::rng::standard_normal(&mut rng, n*2*len);
    for t in [0usize, 10, 50, 100, 250, 500, 750, 900, 990, 999] {
        let (a, s) = (sch.alpha(t) as f32, sch.sigma(t) as f32);
        let xt: Vec<f32> = x0.iter().zip(&eps).map(|(x, e)| a*x + s*e).collect();
        let pred = den.predict_noise(&ImageBatch::new([n,2,64,64], xt.clone()).unwrap(), t).unwrap();
        let mse: f32 = pred.data().iter().zip(&eps).map(|(p,e)| (p-e)*(p-e)).sum::<f32>() / (n*2*len) as f32;
        let x0hat_err: f32 = pred.data().iter().zip(&eps).map(|(p,e)| ((p-e)*s/a).powi(2)).sum::<f32>() / (n*2*len) as f32;
        let pm: f32 = pred.data().iter().map(|p| p*p).sum::<f32>() / (n*2*len) as f32;
        println!("t={t:4} eps_mse={mse:.4} pred_ms={pm:.3} x0hat_rmse={:.3}", x0hat_err.sqrt());
    }
}
