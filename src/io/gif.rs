//! Animated greyscale GIF cine loops: every frame a row of panels (e.g. truth, zero-filled,
//! reconstruction, error) side by side, so a sequence reconstruction can be watched at a glance.

use std::path::Path;

use crate::error::{Error, Result};

/// Gap between panels, in pixels.
pub const GAP: usize = 2;

/// Largest width or height of the animation (GIF stores u16 sizes).
const MAX_SIDE: usize = u16::MAX as usize;

/// One column of the animation: `frames` images of `h × w` values, windowed to [0, `white`].
#[derive(Clone, Debug)]
pub struct Panel {
    /// Row-major `[frames, h, w]` non-negative values (magnitudes).
    pub values: Vec<f32>,
    /// The value shown white.
    pub white: f32,
}

/// Writes `panels` (each `[frames, h, w]`) side by side as a looping GIF at `fps` frames per second.
pub fn write_cine(path: &Path, panels: &[Panel], shape: [usize; 3], fps: f64) -> Result<()> {
    check_panels(panels, shape)?;
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    encode_into(file, path, panels, shape, fps)
}

/// The GIF of [`write_cine`] as bytes (e.g. for a `data:` URI in a report).
pub fn encode_cine(panels: &[Panel], shape: [usize; 3], fps: f64) -> Result<Vec<u8>> {
    check_panels(panels, shape)?;
    let mut bytes = Vec::new();
    encode_into(&mut bytes, Path::new("<in-memory GIF>"), panels, shape, fps)?;
    Ok(bytes)
}

/// Fails unless there is a panel of at least one frame and every panel is `[frames, h, w]` and
/// the animation fits GIF's sizes.
fn check_panels(panels: &[Panel], [frames, h, w]: [usize; 3]) -> Result<()> {
    if panels.is_empty() || frames == 0 || h == 0 || w == 0 {
        return Err(Error::invalid(
            "cine GIF",
            "at least one panel of at least one frame",
            format!("{} panels, shape {:?}", panels.len(), [frames, h, w]),
        ));
    }
    if let Some(p) = panels.iter().find(|p| p.values.len() != frames * h * w) {
        return Err(Error::Shape {
            what: "cine GIF panel".into(),
            expected: vec![frames, h, w],
            got: vec![p.values.len()],
        });
    }
    let width = panels.len() * w + (panels.len() + 1) * GAP;
    let height = h + 2 * GAP;
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(Error::invalid(
            "cine GIF size",
            format!("at most {MAX_SIDE} pixels a side"),
            format!("{width}×{height}"),
        ));
    }
    Ok(())
}

fn encode_into<W: std::io::Write>(
    file: W,
    path: &Path,
    panels: &[Panel],
    [frames, h, w]: [usize; 3],
    fps: f64,
) -> Result<()> {
    let width = panels.len() * w + (panels.len() + 1) * GAP;
    let height = h + 2 * GAP;
    // A 256-level grey palette.
    let palette: Vec<u8> = (0..=255u8).flat_map(|v| [v, v, v]).collect();
    let gif_err = |e: gif::EncodingError| Error::Format {
        path: path.to_path_buf(),
        reason: format!("GIF encoding failed: {e}"),
    };
    let mut encoder =
        gif::Encoder::new(file, width as u16, height as u16, &palette).map_err(gif_err)?;
    encoder.set_repeat(gif::Repeat::Infinite).map_err(gif_err)?;
    // GIF delays are in hundredths of a second.
    let delay = (100.0 / fps.clamp(1.0, 50.0)).round() as u16;
    let mut pixels = vec![0u8; width * height];
    for t in 0..frames {
        for (k, panel) in panels.iter().enumerate() {
            let white = if panel.white.is_finite() && panel.white > 0.0 {
                panel.white
            } else {
                1.0
            };
            let x0 = GAP + k * (w + GAP);
            for i in 0..h {
                let row = &panel.values[t * h * w + i * w..t * h * w + (i + 1) * w];
                let out = &mut pixels[(GAP + i) * width + x0..(GAP + i) * width + x0 + w];
                for (o, &v) in out.iter_mut().zip(row) {
                    let v = if v.is_finite() { v } else { 0.0 };
                    *o = ((v / white).clamp(0.0, 1.0) * 255.0).round() as u8;
                }
            }
        }
        let mut frame = gif::Frame {
            width: width as u16,
            height: height as u16,
            buffer: std::borrow::Cow::Borrowed(&pixels),
            delay,
            ..gif::Frame::default()
        };
        frame.make_lzw_pre_encoded();
        encoder
            .write_lzw_pre_encoded_frame(&frame)
            .map_err(gif_err)?;
    }
    Ok(())
}
