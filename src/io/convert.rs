//! Arrays in any supported file format, chosen by extension: what `cinediff convert` and
//! `cinediff info` use.
//!
//! | extension | read | write |
//! |---|---|---|
//! | `.npy` | float32/64, complex64/128, uint8, bool | float32, complex64, uint8 (as read) |
//! | `.cfl` (+ `.hdr`) | complex64, BART dims → axes ([`crate::io::layout`]) | complex64 |
//! | `.nii` | NIfTI-1 ([`crate::io::nifti`]) | float32, complex64 |
//! | `.png` | greyscale 8/16-bit levels | one image, 8 or 16 bits, windowed magnitude |
//! | `.apng` | full-frame greyscale animations | `[T, H, W]` cine, windowed magnitude |
//! | `.gif` | — | `[T, H, W]` cine, 8-bit windowed magnitude |

use std::path::Path;

use num_complex::Complex32;

use crate::error::{Error, Result};
use crate::io::cfl::{read_cfl, write_cfl, Cfl};
use crate::io::layout::Layout;
use crate::io::nifti::{read_nifti, write_nifti, NiftiValues};
use crate::io::npy::{read_npy, write_npy_c64, write_npy_f32, write_npy_u8, NpyArray};
use crate::io::png::{read_png, write_apng, write_png, Depth, Window};

/// A file format, told by the file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// NumPy `.npy`.
    Npy,
    /// BART `.cfl` + `.hdr`.
    Cfl,
    /// NIfTI-1 `.nii`.
    Nifti,
    /// Still PNG.
    Png,
    /// Animated GIF (written only).
    Gif,
    /// Animated PNG.
    Apng,
}

impl Format {
    /// The format of `path` by its extension (`.hdr` counts as BART).
    pub fn from_path(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("npy") => Ok(Format::Npy),
            Some("cfl") | Some("hdr") => Ok(Format::Cfl),
            Some("nii") => Ok(Format::Nifti),
            Some("png") => Ok(Format::Png),
            Some("gif") => Ok(Format::Gif),
            Some("apng") => Ok(Format::Apng),
            _ => Err(Error::invalid(
                format!("file format of {}", path.display()),
                "an extension .npy, .cfl, .nii, .png, .gif or .apng",
                ext.map_or("none".to_string(), |e| format!(".{e}")),
            )),
        }
    }

    /// The format's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Npy => "npy",
            Format::Cfl => "BART cfl",
            Format::Nifti => "NIfTI-1",
            Format::Png => "PNG",
            Format::Gif => "GIF",
            Format::Apng => "APNG",
        }
    }
}

/// An array read from a file, with what its axes mean and how it was stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    /// The format it was read from.
    pub format: Format,
    /// The values, row-major (`Real` float32, `Complex` complex64 or `U8`).
    pub array: NpyArray,
    /// The axes' meaning when the file says it (cfl, NIfTI, PNG); `.npy` leaves it to the caller.
    pub layout: Option<Layout>,
    /// How the file stores the values (e.g. `int16 big-endian, scaled ×2 + 1`).
    pub stored: String,
}

/// Reads `path` in the format its extension names.
pub fn read_array(path: &Path) -> Result<Loaded> {
    let format = Format::from_path(path)?;
    match format {
        Format::Npy => {
            let array = read_npy(path)?;
            let stored = format!("{} (npy)", array.dtype());
            Ok(Loaded {
                format,
                array,
                layout: None,
                stored,
            })
        }
        Format::Cfl => {
            let cfl = read_cfl(path)?;
            let (shape, layout, data) = cfl.to_row_major();
            let dims: Vec<String> = cfl.dims.iter().map(|d| d.to_string()).collect();
            Ok(Loaded {
                format,
                array: NpyArray::Complex { shape, data },
                layout: Some(layout),
                stored: format!("complex64, BART dims [{}]", dims.join(" ")),
            })
        }
        Format::Nifti => {
            let image = read_nifti(path)?;
            let h = &image.header;
            let mut stored = format!(
                "{} {}-endian, dim {:?}, voxel size {:?}",
                h.datatype.name(),
                if h.big_endian { "big" } else { "little" },
                h.dims,
                h.voxel_size
            );
            if let Some((slope, inter)) = h.scaling {
                stored.push_str(&format!(", scaled ×{slope} + {inter}"));
            }
            Ok(Loaded {
                format,
                array: image.array,
                layout: Some(image.layout),
                stored,
            })
        }
        Format::Png | Format::Apng => {
            let image = read_png(path)?;
            let layout = Layout::default_for_rank(image.shape.len())?;
            Ok(Loaded {
                format,
                stored: format!("{}-bit greyscale levels", image.bit_depth),
                array: NpyArray::Real {
                    shape: image.shape,
                    data: image.data,
                },
                layout: Some(layout),
            })
        }
        Format::Gif => Err(Error::invalid(
            format!("input {}", path.display()),
            "a readable format (.npy, .cfl, .nii, .png, .apng); GIF is written only",
            ".gif",
        )),
    }
}

/// cinediff's default reading of an array without named axes: leading axes of length 1 beyond
/// three are dropped (`phantom --count 1` writes `[1, T, H, W]`, as `simulate` reads it), then
/// [`Layout::default_for_rank`]. Returns the shape to use and its layout.
pub fn default_layout(shape: &[usize]) -> Result<(Vec<usize>, Layout)> {
    let mut shape = shape.to_vec();
    while shape.len() > 3 && shape[0] == 1 {
        shape.remove(0);
    }
    let layout = Layout::default_for_rank(shape.len())?;
    Ok((shape, layout))
}

/// `array` with a new shape of the same size (row-major data is unchanged).
pub fn reshaped(array: NpyArray, shape: Vec<usize>) -> Result<NpyArray> {
    if shape.iter().product::<usize>() != array.shape().iter().product::<usize>() {
        return Err(Error::Shape {
            what: "reshape".into(),
            expected: array.shape().to_vec(),
            got: shape,
        });
    }
    Ok(match array {
        NpyArray::Real { data, .. } => NpyArray::Real { shape, data },
        NpyArray::Complex { data, .. } => NpyArray::Complex { shape, data },
        NpyArray::U8 { data, .. } => NpyArray::U8 { shape, data },
    })
}

/// How [`write_array`] renders images (ignored by the array formats).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageOptions {
    /// Intensity window; `None` = [min(0, smallest), largest] of the magnitudes.
    pub window: Option<Window>,
    /// PNG/APNG sample depth (GIF is always 8-bit).
    pub depth: Depth,
    /// Frames per second of GIF/APNG cines.
    pub fps: f64,
}

impl Default for ImageOptions {
    fn default() -> Self {
        ImageOptions {
            window: None,
            depth: Depth::Eight,
            fps: 10.0,
        }
    }
}

/// The values as complex64 (real and uint8 arrays get zero imaginary parts).
pub fn to_complex(array: &NpyArray) -> Vec<Complex32> {
    match array {
        NpyArray::Real { data, .. } => data.iter().map(|&v| Complex32::new(v, 0.0)).collect(),
        NpyArray::Complex { data, .. } => data.clone(),
        NpyArray::U8 { data, .. } => data
            .iter()
            .map(|&v| Complex32::new(v as f32, 0.0))
            .collect(),
    }
}

/// Displayable values: magnitudes of complex data, real values as they are.
pub fn display_values(array: &NpyArray) -> Vec<f32> {
    match array {
        NpyArray::Real { data, .. } => data.clone(),
        NpyArray::Complex { data, .. } => data.iter().map(|v| v.norm()).collect(),
        NpyArray::U8 { data, .. } => data.iter().map(|&v| v as f32).collect(),
    }
}

/// `[frames, h, w]` of an image or image sequence: `[H, W]` is one frame, `[N, H, W]` N frames.
fn frames_of(shape: &[usize], what: &str) -> Result<[usize; 3]> {
    match *shape {
        [h, w] => Ok([1, h, w]),
        [n, h, w] => Ok([n, h, w]),
        _ => Err(Error::invalid(
            what,
            "an image [H, W] or a sequence [T, H, W]",
            format!("shape {shape:?}"),
        )),
    }
}

/// Writes `array` (axes `layout`) to `path` in `format`.
pub fn write_array(
    path: &Path,
    format: Format,
    array: &NpyArray,
    layout: &Layout,
    image: &ImageOptions,
) -> Result<()> {
    let shape = array.shape().to_vec();
    layout.check_rank(&shape)?;
    match format {
        Format::Npy => match array {
            NpyArray::Real { data, .. } => write_npy_f32(path, &shape, data),
            NpyArray::Complex { data, .. } => write_npy_c64(path, &shape, data),
            NpyArray::U8 { data, .. } => write_npy_u8(path, &shape, data),
        },
        Format::Cfl => write_cfl(
            path,
            &Cfl::from_row_major(&shape, layout, &to_complex(array))?,
        ),
        Format::Nifti => match array {
            NpyArray::Complex { data, .. } => {
                write_nifti(path, &shape, layout, NiftiValues::C64(data))
            }
            other => write_nifti(
                path,
                &shape,
                layout,
                NiftiValues::F32(&display_values(other)),
            ),
        },
        Format::Png | Format::Gif | Format::Apng => {
            let values = display_values(array);
            let window = image.window.unwrap_or_else(|| Window::of(&values));
            let what = format!("{} output {}", format.name(), path.display());
            let [frames, h, w] = frames_of(&shape, &what)?;
            match format {
                Format::Png if frames == 1 => {
                    write_png(path, [h, w], &values, &window, image.depth)
                }
                Format::Png => Err(Error::invalid(
                    what,
                    "one image [H, W] (write a sequence as .apng or .gif)",
                    format!("{frames} frames, shape {shape:?}"),
                )),
                Format::Apng => write_apng(
                    path,
                    [frames, h, w],
                    &values,
                    &window,
                    image.depth,
                    image.fps,
                ),
                _ => {
                    // write_cine windows [0, white]: shifting by lo gives the window [lo, hi].
                    let panel = crate::io::gif::Panel {
                        values: values.iter().map(|v| v - window.lo).collect(),
                        white: window.hi - window.lo,
                    };
                    crate::io::gif::write_cine(path, &[panel], [frames, h, w], image.fps)
                }
            }
        }
    }
}

/// Shape, type and magnitude statistics of an array (what `cinediff info` prints).
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The array's shape.
    pub shape: Vec<usize>,
    /// `float32`, `complex64` or `uint8`.
    pub dtype: &'static str,
    /// Smallest |x| over the finite values.
    pub min: f64,
    /// Largest |x| over the finite values.
    pub max: f64,
    /// Mean |x| over the finite values.
    pub mean: f64,
    /// Values that are NaN or infinite (left out of the statistics).
    pub non_finite: usize,
}

/// Statistics of the magnitudes |x| (for real data, |x| of each value).
pub fn summarize(array: &NpyArray) -> Summary {
    let (mut min, mut max, mut sum, mut n, mut bad) =
        (f64::INFINITY, f64::NEG_INFINITY, 0.0f64, 0usize, 0usize);
    let mut add = |m: f64| {
        if m.is_finite() {
            min = min.min(m);
            max = max.max(m);
            sum += m;
            n += 1;
        } else {
            bad += 1;
        }
    };
    match array {
        NpyArray::Real { data, .. } => data.iter().for_each(|&v| add((v as f64).abs())),
        NpyArray::Complex { data, .. } => data
            .iter()
            .for_each(|v| add((v.re as f64).hypot(v.im as f64))),
        NpyArray::U8 { data, .. } => data.iter().for_each(|&v| add(v as f64)),
    }
    let (min, max, mean) = if n == 0 {
        (f64::NAN, f64::NAN, f64::NAN)
    } else {
        (min, max, sum / n as f64)
    };
    Summary {
        shape: array.shape().to_vec(),
        dtype: array.dtype(),
        min,
        max,
        mean,
        non_finite: bad,
    }
}
