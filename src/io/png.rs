//! Greyscale PNG: 8-bit grids of magnitude images (for looking at samples and data), single
//! images at 8 or 16 bits through an intensity [`Window`], animated APNG cines, and reading
//! greyscale PNG/APNG back (levels as stored).

use std::path::Path;

use crate::error::{Error, Result};

/// Writes `images` (each `h × w`, row-major) as a grid with `columns` tiles per row and a 2-pixel
/// gap, all through one intensity `window` so tiles are comparable (non-finite values are black).
pub fn write_grid(
    path: &Path,
    images: &[Vec<f32>],
    h: usize,
    w: usize,
    columns: usize,
    window: Window,
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
    let mut pixels = vec![0u8; width * height];
    for (k, im) in images.iter().enumerate() {
        let (r, c) = (k / cols, k % cols);
        let (y0, x0) = (GAP + r * (h + GAP), GAP + c * (w + GAP));
        for y in 0..h {
            for x in 0..w {
                pixels[(y0 + y) * width + x0 + x] = window.level(im[y * w + x], Depth::Eight) as u8;
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

/// Bits per sample of a greyscale PNG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// 8-bit: levels 0–255.
    Eight,
    /// 16-bit: levels 0–65535.
    Sixteen,
}

impl Depth {
    /// The brightest level.
    pub fn max_level(self) -> u32 {
        match self {
            Depth::Eight => 255,
            Depth::Sixteen => 65535,
        }
    }
}

/// An intensity window: `lo` is shown black, `hi` white, values between linearly, outside clamped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    /// The value shown black.
    pub lo: f32,
    /// The value shown white.
    pub hi: f32,
}

impl Window {
    /// A window of two finite values with `lo < hi`.
    pub fn new(lo: f32, hi: f32) -> Result<Self> {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(Error::invalid(
                "intensity window",
                "finite lo < hi",
                format!("{lo}:{hi}"),
            ));
        }
        Ok(Window { lo, hi })
    }

    /// [min(0, smallest), largest] of the finite `values` ([0, 1] when they are all 0 or absent), so
    /// magnitudes start at black and signed values keep their sign visible.
    pub fn of(values: &[f32]) -> Self {
        let (mut lo, mut hi) = (0.0f32, f32::NEG_INFINITY);
        for &v in values.iter().filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if hi > lo {
            Window { lo, hi }
        } else {
            Window { lo, hi: lo + 1.0 }
        }
    }

    /// [0, `white`], the window of magnitudes up to `white` ([0, 1] unless `white` is finite and > 0).
    pub fn up_to(white: f32) -> Self {
        if white.is_finite() && white > 0.0 {
            Window { lo: 0.0, hi: white }
        } else {
            Window { lo: 0.0, hi: 1.0 }
        }
    }

    /// The level of `v` at `depth` (non-finite values are black).
    pub fn level(&self, v: f32, depth: Depth) -> u16 {
        let x = ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0);
        let x = if x.is_finite() { x } else { 0.0 };
        (x * depth.max_level() as f32).round() as u16
    }
}

/// Largest width or height written or read (the PNG limit is 2^31 − 1; this keeps one frame small).
pub const MAX_SIDE: usize = 1 << 16;
/// Largest number of pixels (all frames) read from one file.
pub const MAX_PIXELS: usize = 1 << 27;

fn encode_err(path: &Path) -> impl Fn(png::EncodingError) -> Error + '_ {
    move |e| Error::Format {
        path: path.to_path_buf(),
        reason: format!("png encoding failed: {e}"),
    }
}

/// Samples of one frame at `depth`, big-endian as PNG stores them.
fn frame_samples(values: &[f32], window: &Window, depth: Depth) -> Vec<u8> {
    match depth {
        Depth::Eight => values
            .iter()
            .map(|&v| window.level(v, depth) as u8)
            .collect(),
        Depth::Sixteen => values
            .iter()
            .flat_map(|&v| window.level(v, depth).to_be_bytes())
            .collect(),
    }
}

fn check_frames(what: &str, [t, h, w]: [usize; 3], len: usize) -> Result<()> {
    if t == 0 || h == 0 || w == 0 || h > MAX_SIDE || w > MAX_SIDE {
        return Err(Error::invalid(
            what,
            format!("at least one frame of 1 to {MAX_SIDE} pixels a side"),
            format!("shape {:?}", [t, h, w]),
        ));
    }
    if t.checked_mul(h * w) != Some(len) {
        return Err(Error::Shape {
            what: what.into(),
            expected: vec![t, h, w],
            got: vec![len],
        });
    }
    Ok(())
}

/// Writes one `[h, w]` image (row-major) as a greyscale PNG of `depth`, windowed by `window`.
pub fn write_png(
    path: &Path,
    [h, w]: [usize; 2],
    values: &[f32],
    window: &Window,
    depth: Depth,
) -> Result<()> {
    check_frames("png image", [1, h, w], values.len())?;
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w as u32, h as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(match depth {
        Depth::Eight => png::BitDepth::Eight,
        Depth::Sixteen => png::BitDepth::Sixteen,
    });
    let mut writer = encoder.write_header().map_err(encode_err(path))?;
    writer
        .write_image_data(&frame_samples(values, window, depth))
        .map_err(encode_err(path))?;
    writer.finish().map_err(encode_err(path))
}

/// One `[h, w]` image as 8-bit greyscale PNG bytes windowed by `window` (for embedding, e.g. a
/// `data:` URI in a report).
pub fn encode_png([h, w]: [usize; 2], values: &[f32], window: &Window) -> Result<Vec<u8>> {
    check_frames("png image", [1, h, w], values.len())?;
    let err = encode_err(Path::new("<in-memory PNG>"));
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, w as u32, h as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(&err)?;
        writer
            .write_image_data(&frame_samples(values, window, Depth::Eight))
            .map_err(&err)?;
        writer.finish().map_err(&err)?;
    }
    Ok(bytes)
}

/// Writes `[frames, h, w]` images as a looping greyscale APNG (animated PNG) at `fps` frames per
/// second; every frame is a full image, so any PNG viewer shows at least the first.
pub fn write_apng(
    path: &Path,
    [frames, h, w]: [usize; 3],
    values: &[f32],
    window: &Window,
    depth: Depth,
    fps: f64,
) -> Result<()> {
    check_frames("APNG cine", [frames, h, w], values.len())?;
    let n = u32::try_from(frames)
        .map_err(|_| Error::invalid("APNG frames", "at most 2^32 − 1", frames))?;
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w as u32, h as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(match depth {
        Depth::Eight => png::BitDepth::Eight,
        Depth::Sixteen => png::BitDepth::Sixteen,
    });
    let err = encode_err(path);
    // num_plays 0 = loop forever; the delay is a fraction numerator/denominator of a second.
    encoder.set_animated(n, 0).map_err(&err)?;
    let centiseconds = (100.0 / fps.clamp(1.0, 100.0)).round() as u16;
    encoder.set_frame_delay(centiseconds, 100).map_err(&err)?;
    let mut writer = encoder.write_header().map_err(&err)?;
    for frame in values.chunks_exact(h * w) {
        writer
            .write_image_data(&frame_samples(frame, window, depth))
            .map_err(&err)?;
    }
    writer.finish().map_err(&err)
}

/// A decoded greyscale PNG or APNG: the stored levels (0–255 or 0–65535) as float32.
#[derive(Clone, Debug, PartialEq)]
pub struct PngImage {
    /// `[h, w]` for a still image, `[frames, h, w]` for an animation (APNG) of several frames.
    pub shape: Vec<usize>,
    /// 8 or 16.
    pub bit_depth: u8,
    /// Row-major levels.
    pub data: Vec<f32>,
}

/// Decodes PNG bytes: greyscale of any depth (1/2/4-bit scaled to 8-bit levels,
/// v·255/(2^d − 1)), or RGB with equal channels (as `bart toimg` writes); APNG animations become
/// `[frames, h, w]` (full-size frames only).
pub fn parse_png(bytes: &[u8]) -> std::result::Result<PngImage, String> {
    let mut decoder = png::Decoder::new_with_limits(
        std::io::Cursor::new(bytes),
        png::Limits { bytes: MAX_PIXELS },
    );
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("not a readable PNG: {e}"))?;
    let (width, height) = (reader.info().width as usize, reader.info().height as usize);
    // Both checks come before the frame buffer is allocated.
    if width > MAX_SIDE || height > MAX_SIDE || width * height > MAX_PIXELS {
        return Err(format!(
            "image is {width}×{height}: at most {MAX_SIDE} pixels a side and {MAX_PIXELS} in all"
        ));
    }
    let (color, depth) = reader.output_color_type();
    let channels = match color {
        png::ColorType::Grayscale => 1,
        png::ColorType::Rgb => 3,
        other => {
            return Err(format!(
                "colour type {other:?}: expected greyscale (or RGB with equal channels)"
            ))
        }
    };
    let sample_bytes = match depth {
        png::BitDepth::Eight => 1,
        png::BitDepth::Sixteen => 2,
        other => {
            return Err(format!(
                "bit depth {other:?} after expansion: expected 8 or 16"
            ))
        }
    };
    // An APNG whose IDAT image is not part of the animation has one extra, default image first.
    let (frames, skip_default) = match &reader.info().animation_control {
        Some(ac) => (
            ac.num_frames as usize,
            reader.info().frame_control.is_none(),
        ),
        None => (1, false),
    };
    if frames == 0 {
        return Err("APNG declares 0 frames".into());
    }
    let plane = width * height;
    let mut buf = vec![0u8; reader.output_buffer_size().ok_or("frame size overflows")?];
    let mut data: Vec<f32> = Vec::new();
    let mut decoded = 0usize;
    if skip_default {
        reader
            .next_frame(&mut buf)
            .map_err(|e| format!("default image: {e}"))?;
    }
    while decoded < frames {
        if (decoded + 1).saturating_mul(plane) > MAX_PIXELS {
            return Err(format!(
                "{frames} frames of {width}×{height} are more than {MAX_PIXELS} pixels"
            ));
        }
        let info = reader
            .next_frame(&mut buf)
            .map_err(|e| format!("frame {decoded}: {e}"))?;
        if (info.width as usize, info.height as usize) != (width, height) {
            return Err(format!(
                "frame {decoded} is a {}×{} region; only full {width}×{height} frames are supported",
                info.width, info.height
            ));
        }
        let line = info.line_size;
        for row in buf.chunks(line).take(height) {
            let px = &row[..width * channels * sample_bytes];
            for p in px.chunks_exact(channels * sample_bytes) {
                let sample = |c: usize| -> u16 {
                    let s = &p[c * sample_bytes..(c + 1) * sample_bytes];
                    if sample_bytes == 1 {
                        s[0] as u16
                    } else {
                        u16::from_be_bytes([s[0], s[1]])
                    }
                };
                let v = sample(0);
                if channels == 3 && (sample(1) != v || sample(2) != v) {
                    return Err(format!(
                        "frame {decoded} holds a coloured pixel (R, G, B = {v}, {}, {}); expected greyscale",
                        sample(1),
                        sample(2)
                    ));
                }
                data.push(v as f32);
            }
        }
        decoded += 1;
    }
    let shape = if frames == 1 {
        vec![height, width]
    } else {
        vec![frames, height, width]
    };
    Ok(PngImage {
        shape,
        bit_depth: 8 * sample_bytes as u8,
        data,
    })
}

/// Reads a PNG or APNG file (see [`parse_png`]).
pub fn read_png(path: &Path) -> Result<PngImage> {
    let size = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    // Stored (uncompressed) deflate blocks add little, so a valid file is not much larger than its
    // raw samples (at most 6 bytes a pixel, 16-bit RGB): refuse anything bigger unread.
    let limit = (MAX_PIXELS as u64) * 8 + (1 << 20);
    if size > limit {
        return Err(Error::Format {
            path: path.to_path_buf(),
            reason: format!("file is {size} bytes, more than the {limit}-byte limit"),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_png(&bytes).map_err(|reason| Error::Format {
        path: path.to_path_buf(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grid of signed values through a [−1, 1] window: −1 is black, 1 white, 0 mid-grey (not the
    /// magnitude's black–white–black), NaN black, and the gaps black.
    #[test]
    fn grid_shows_signed_values_through_the_window() {
        let path = std::env::temp_dir().join(format!("cinediff-grid-{}.png", std::process::id()));
        let tiles = vec![vec![-1.0, 0.0, 1.0, f32::NAN], vec![0.5, -0.5, 2.0, -2.0]];
        write_grid(&path, &tiles, 2, 2, 2, Window::new(-1.0, 1.0).unwrap()).unwrap();
        let image = read_png(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        // 2 tiles of 2×2 with 2-pixel gaps: 2·2 + 3·2 = 10 wide, 2 + 2·2 = 6 high.
        assert_eq!(image.shape, vec![6, 10]);
        let at = |y: usize, x: usize| image.data[y * 10 + x];
        assert_eq!(
            [at(2, 2), at(2, 3), at(3, 2), at(3, 3)],
            [0.0, 128.0, 255.0, 0.0]
        );
        assert_eq!(
            [at(2, 6), at(2, 7), at(3, 6), at(3, 7)],
            [191.0, 64.0, 255.0, 0.0]
        );
        assert!(image.data[..20].iter().all(|&v| v == 0.0), "top gap");
        assert_eq!(Window::up_to(0.0), Window { lo: 0.0, hi: 1.0 });
    }
}
