//! 8-bit greyscale PNG grids of magnitude images, for looking at samples and data.

use std::path::Path;

use crate::error::{Error, Result};

/// Writes `images` (each `h × w`, row-major) as a grid with `columns` tiles per row and a 2-pixel
/// gap. Intensities are windowed to [0, `white`] (e.g. the data's maximum) so tiles are comparable.
pub fn write_grid(
    path: &Path,
    images: &[Vec<f32>],
    h: usize,
    w: usize,
    columns: usize,
    white: f32,
) -> Result<()> {
    if images.is_empty() || columns == 0 || h == 0 || w == 0 {
        return Err(Error::invalid(
            "png grid",
            "at least one non-empty image and one column",
            images.len(),
        ));
    }
    if let Some(bad) = images.iter().find(|im| im.len() != h * w) {
        return Err(Error::Shape {
            what: "png grid tile".into(),
            expected: vec![h, w],
            got: vec![bad.len()],
        });
    }
    const GAP: usize = 2;
    let cols = columns.min(images.len());
    let rows = images.len().div_ceil(cols);
    let width = cols * w + (cols + 1) * GAP;
    let height = rows * h + (rows + 1) * GAP;
    let white = if white.is_finite() && white > 0.0 {
        white
    } else {
        1.0
    };
    let mut pixels = vec![0u8; width * height];
    for (k, im) in images.iter().enumerate() {
        let (r, c) = (k / cols, k % cols);
        let (y0, x0) = (GAP + r * (h + GAP), GAP + c * (w + GAP));
        for y in 0..h {
            for x in 0..w {
                let v = (im[y * w + x] / white).clamp(0.0, 1.0);
                let v = if v.is_finite() { v } else { 0.0 };
                pixels[(y0 + y) * width + x0 + x] = (v * 255.0).round() as u8;
            }
        }
    }
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width as u32, height as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let to_err = |e: png::EncodingError| Error::Format {
        path: path.to_path_buf(),
        reason: format!("png encoding failed: {e}"),
    };
    let mut writer = encoder.write_header().map_err(to_err)?;
    writer.write_image_data(&pixels).map_err(to_err)?;
    writer.finish().map_err(to_err)
}
