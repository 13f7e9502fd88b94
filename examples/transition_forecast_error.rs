//! Held-out forecast error of a SeqDiff+ transition model against persistence (x̃_{t+1} = x_t):
//! for every window of K frames in every sequence of a file (optionally sampled with a frame
//! stride, the "faster heart" of the benchmarks), the MSE of predicting the next frame. A ratio
//! below 1 says the model knows more about the motion than "nothing moves", which is SeqDiff's
//! assumption.
//!
//! cargo run --release --example transition_forecast_error -- TRANSITION_DIR SEQUENCES.npy [STRIDE]
use cinediff::data::dataset::training_images;
use cinediff::image::ImageBatch;
use cinediff::io::model_dir::load_transition;
use cinediff::io::npy::read_npy;
use cinediff::nn::device::default_device;
use cinediff::nn::transition::ForecastErrors;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if !(3..=4).contains(&args.len()) {
        anyhow::bail!("usage: transition_forecast_error TRANSITION_DIR SEQUENCES.npy [STRIDE]");
    }
    let stride: usize = match args.get(3) {
        Some(s) => s.parse()?,
        None => 1,
    };
    if stride == 0 {
        anyhow::bail!("STRIDE must be at least 1");
    }
    let device = default_device();
    let predictor = load_transition(std::path::Path::new(&args[1]), &device)?;
    let k = predictor.config().network.context_frames;
    let array = read_npy(std::path::Path::new(&args[2]))?;
    let Some((real, complex)) = array.float_views() else {
        anyhow::bail!("{}: expected float32 or complex64", args[2]);
    };
    let shape = array.shape().to_vec();
    if shape.len() != 4 || shape[1] <= k * stride {
        anyhow::bail!(
            "{}: expected [N, T, H, W] with T > K·STRIDE = {}, got {shape:?}",
            args[2],
            k * stride
        );
    }
    // Frames in data units, exactly as a reconstruction hands them to the predictor.
    let images = training_images(&shape, real, complex)?.images;
    let [_, channels, height, width] = images.shape();
    let frame_shape = [1, channels, height, width];
    let frame = |s: usize, t: usize| -> anyhow::Result<ImageBatch> {
        Ok(ImageBatch::new(
            frame_shape,
            images.image(s * shape[1] + t).to_vec(),
        )?)
    };
    let mut errors = ForecastErrors::default();
    for s in 0..shape[0] {
        // Every stride-th frame from each start: the sequence at stride× the rate.
        for offset in 0..stride {
            let frames = (offset..shape[1])
                .step_by(stride)
                .map(|t| frame(s, t))
                .collect::<anyhow::Result<Vec<_>>>()?;
            errors.add(predictor.forecast_errors(&frames)?);
        }
    }
    let n = errors.values as f64;
    println!(
        "stride {stride}, K = {k}: MSE model {:.6e}, persistence {:.6e}, ratio {:.3}",
        errors.model / n,
        errors.persistence / n,
        errors.ratio()
    );
    Ok(())
}
