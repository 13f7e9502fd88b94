//! NumPy `.npy` (format versions 1–3), C order, little-endian float32 / float64 / complex64 / complex128,
//! and uint8 / bool (sampling masks).
//! Reading validates the header, the shape (checked product, capped before allocating) and the size.

use std::io::Write;
use std::path::Path;

use num_complex::Complex32;

use crate::error::{Error, Result};

/// Upper bound on elements in one array, checked before decoding.
pub use crate::image::MAX_ELEMENTS;

/// An array read from `.npy`: real or complex, with its shape.
#[derive(Clone, Debug, PartialEq)]
pub enum NpyArray {
    /// float32 (float64 files are converted).
    Real { shape: Vec<usize>, data: Vec<f32> },
    /// complex64 (complex128 files are converted).
    Complex {
        shape: Vec<usize>,
        data: Vec<Complex32>,
    },
    /// uint8 (bool files are read as 0/1).
    U8 { shape: Vec<usize>, data: Vec<u8> },
}

/// A float array's data as (real, complex), exactly one of them `Some`.
pub type FloatViews<'a> = (Option<&'a [f32]>, Option<&'a [Complex32]>);

impl NpyArray {
    /// The array's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            NpyArray::Real { shape, .. }
            | NpyArray::Complex { shape, .. }
            | NpyArray::U8 { shape, .. } => shape,
        }
    }

    /// True for complex dtypes.
    pub fn is_complex(&self) -> bool {
        matches!(self, NpyArray::Complex { .. })
    }

    /// The float data as (real, complex), exactly one of them `Some` — the form
    /// [`crate::data::dataset::training_images`] takes; `None` for uint8 arrays.
    pub fn float_views(&self) -> Option<FloatViews<'_>> {
        match self {
            NpyArray::Real { data, .. } => Some((Some(data), None)),
            NpyArray::Complex { data, .. } => Some((None, Some(data))),
            NpyArray::U8 { .. } => None,
        }
    }

    /// The numpy dtype string.
    pub fn dtype(&self) -> &'static str {
        match self {
            NpyArray::Real { .. } => "float32",
            NpyArray::Complex { .. } => "complex64",
            NpyArray::U8 { .. } => "uint8",
        }
    }
}

fn format_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads a `.npy` file.
pub fn read_npy(path: &Path) -> Result<NpyArray> {
    // Refuse files that cannot hold a valid array before reading them into memory.
    let size = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    let limit = (MAX_ELEMENTS as u64) * 16 + (1 << 20);
    if size > limit {
        return Err(format_err(
            path,
            format!("file is {size} bytes, more than the {limit}-byte limit"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_npy(&bytes).map_err(|reason| format_err(path, reason))
}

/// Parses `.npy` bytes; the error string says what is wrong.
pub fn parse_npy(bytes: &[u8]) -> std::result::Result<NpyArray, String> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy file (missing \\x93NUMPY magic)".into());
    }
    let major = bytes[6];
    let (header_len, start): (usize, usize) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated .npy header".into());
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(format!("unsupported .npy format version {v}")),
    };
    let end = start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| "header is not text")?;
    let descr = dict_value(header, "descr").ok_or("header has no 'descr'")?;
    let fortran = dict_value(header, "fortran_order").ok_or("header has no 'fortran_order'")?;
    let shape_text = dict_value(header, "shape").ok_or("header has no 'shape'")?;
    if fortran.trim() != "False" {
        return Err(
            "Fortran-ordered arrays are not supported; save with np.ascontiguousarray".into(),
        );
    }
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"');
    let shape = parse_shape(shape_text)?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| format!("shape {shape:?} has more than {MAX_ELEMENTS} elements"))?;
    let payload = &bytes[end..];
    if matches!(descr, "|u1" | "<u1" | "u1" | "|b1" | "<b1" | "b1") {
        if payload.len() != count {
            return Err(format!(
                "data size {} bytes does not match shape {shape:?} of '{descr}' ({count} bytes)",
                payload.len()
            ));
        }
        if descr.ends_with("b1") {
            if let Some(pos) = payload.iter().position(|&v| v > 1) {
                return Err(format!(
                    "bool array holds byte {} at flat index {pos}",
                    payload[pos]
                ));
            }
        }
        return Ok(NpyArray::U8 {
            shape,
            data: payload.to_vec(),
        });
    }
    let (item, complex) = match descr {
        "<f4" => (4, false),
        "<f8" => (8, false),
        "<c8" => (8, true),
        "<c16" => (16, true),
        other => {
            return Err(format!(
                "dtype '{other}' is not supported: expected float32 ('<f4'), float64, complex64 ('<c8'), complex128, uint8 ('|u1') or bool"
            ))
        }
    };
    let need = count.checked_mul(item).ok_or("array size overflows")?;
    if payload.len() != need {
        return Err(format!(
            "data size {} bytes does not match shape {shape:?} of '{descr}' ({need} bytes)",
            payload.len()
        ));
    }
    let reals: Vec<f32> = match item_width(descr) {
        4 => payload
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        _ => payload
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
    };
    Ok(if complex {
        NpyArray::Complex {
            shape,
            data: reals
                .chunks_exact(2)
                .map(|c| Complex32::new(c[0], c[1]))
                .collect(),
        }
    } else {
        NpyArray::Real { shape, data: reals }
    })
}

/// Bytes per scalar component of a dtype.
fn item_width(descr: &str) -> usize {
    match descr {
        "<f4" | "<c8" => 4,
        _ => 8,
    }
}

/// The text of `key`'s value in a Python dict literal header.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pos = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[pos + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    if rest.starts_with('(') {
        let close = rest.find(')')?;
        Some(&rest[..=close])
    } else {
        let stop = rest.find([',', '}']).unwrap_or(rest.len());
        Some(&rest[..stop])
    }
}

fn parse_shape(text: &str) -> std::result::Result<Vec<usize>, String> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("malformed shape {text}"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("malformed shape {text}"))
        })
        .collect()
}

fn header_bytes(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Pad so the data starts on a 64-byte boundary, as numpy does.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

fn check_len(shape: &[usize], len: usize) -> Result<()> {
    let count: usize = shape.iter().product();
    if count != len {
        return Err(Error::Shape {
            what: "array to write".into(),
            expected: shape.to_vec(),
            got: vec![len],
        });
    }
    Ok(())
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))
}

/// Writes a float32 array.
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    check_len(shape, data.len())?;
    let mut bytes = header_bytes("<f4", shape);
    bytes.reserve(data.len() * 4);
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    write_bytes(path, &bytes)
}

/// Writes a complex64 array.
pub fn write_npy_c64(path: &Path, shape: &[usize], data: &[Complex32]) -> Result<()> {
    check_len(shape, data.len())?;
    let mut bytes = header_bytes("<c8", shape);
    bytes.reserve(data.len() * 8);
    for v in data {
        bytes.extend_from_slice(&v.re.to_le_bytes());
        bytes.extend_from_slice(&v.im.to_le_bytes());
    }
    write_bytes(path, &bytes)
}

/// Writes a uint8 array.
pub fn write_npy_u8(path: &Path, shape: &[usize], data: &[u8]) -> Result<()> {
    check_len(shape, data.len())?;
    let mut bytes = header_bytes("|u1", shape);
    bytes.extend_from_slice(data);
    write_bytes(path, &bytes)
}
