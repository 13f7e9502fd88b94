//! Held-out forecast error of a SeqDiff+ transition model against persistence (x̃_{t+1} = x_t):
//! for every window of K frames in every sequence of a file (optionally sampled with a frame
//! stride, the "faster heart" of the benchmarks), the MSE of predicting the next frame. A ratio
//! below 1 says the model knows more about the motion than "nothing moves", which is SeqDiff's
//! assumption. With INPUTS.npy (the same shape: posterior samples of the sequences, as SeqDiff+
//! feeds the model) the model and persistence see those and are scored against SEQUENCES.npy.
//!
//! cargo run --release --example transition_forecast_error -- TRANSITION_DIR SEQUENCES.npy [STRIDE [INPUTS.npy]]
use cinediff::data::dataset::training_images;
use cinediff::image::ImageBatch;
use cinediff::io::model_dir::load_transition;
use cinediff::io::npy::read_npy;
use cinediff::nn::device::default_device;
use cinediff::nn::transition::ForecastErrors;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if !(3..=5).contains(&args.len()) {
        anyhow::bail!(
            "usage: transition_forecast_error TRANSITION_DIR SEQUENCES.npy [STRIDE [INPUTS.npy]]"
        );
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
    let (shape, images) = read_frames(&args[2], k * stride)?;
    let inputs = match args.get(4) {
        Some(path) => {
            let (input_shape, inputs) = read_frames(path, k * stride)?;
            if input_shape != shape {
                anyhow::bail!(
                    "{path}: shape {input_shape:?}, but {} has {shape:?}",
                    args[2]
                );
            }
            Some(inputs)
        }
        None => None,
    };
    let inputs = inputs.as_ref().unwrap_or(&images);
    let [_, channels, height, width] = images.shape();
    let frame_shape = [1, channels, height, width];
    let frame = |set: &ImageBatch, s: usize, t: usize| -> anyhow::Result<ImageBatch> {
        Ok(ImageBatch::new(
            frame_shape,
            set.image(s * shape[1] + t).to_vec(),
        )?)
    };
    let mut errors = ForecastErrors::default();
    for s in 0..shape[0] {
        // Every stride-th frame from each start: the sequence at stride× the rate.
        for offset in 0..stride {
            let frames = |set: &ImageBatch| {
                (offset..shape[1])
                    .step_by(stride)
                    .map(|t| frame(set, s, t))
                    .collect::<anyhow::Result<Vec<_>>>()
            };
            errors.add(predictor.paired_forecast_errors(&frames(inputs)?, &frames(&images)?)?);
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

/// A `[N, T, H, W]` float or complex file with T > `span`, as frames in data units (exactly as a
/// reconstruction hands them to the predictor), with its shape.
fn read_frames(path: &str, span: usize) -> anyhow::Result<(Vec<usize>, ImageBatch)> {
    let array = read_npy(std::path::Path::new(path))?;
    let Some((real, complex)) = array.float_views() else {
        anyhow::bail!("{path}: expected float32 or complex64");
    };
    let shape = array.shape().to_vec();
    if shape.len() != 4 || shape[1] <= span {
        anyhow::bail!("{path}: expected [N, T, H, W] with T > K·STRIDE = {span}, got {shape:?}");
    }
    let images = training_images(&shape, real, complex)?.images;
    Ok((shape, images))
}
