//! BART `.cfl`/`.hdr` pairs: a text header (`# Dimensions` then up to 16 sizes) and raw
//! little-endian complex64 data (f32 re, f32 im) in column-major order, dimension 0 fastest.
//!
//! BART's dimensions (`src/misc/mri.h`): 0 READ, 1 PHS1, 2 PHS2, 3 COIL, 4 MAPS, 5 TE, 6 COEFF,
//! 7 COEFF2, 8 ITER, 9 CSHIFT, 10 TIME, 11 TIME2, 12 LEVEL, 13 SLICE, 14 AVG, 15 BATCH.
//! cinediff arrays map onto them through [`Layout`]: `[T, C, H, W]` ↔ dims (10, 3, 0, 1), so a
//! cinediff image `x[h, w]` is BART's `x[h, w]` with the readout along dim 0 (see
//! [`crate::io::layout`]). Reading validates the header (count, sizes, checked product, the cap) and
//! the data file's length before allocating.

use std::path::{Path, PathBuf};

use num_complex::Complex32;

use crate::error::{Error, Result};
use crate::image::MAX_ELEMENTS;
use crate::io::layout::{row_major_to_slots, slots_to_row_major, Axis, Layout, BART_DIMS};

/// Largest `.hdr` read (BART writes a few hundred bytes; its own buffer is 4096).
pub const MAX_HDR_BYTES: u64 = 64 * 1024;

/// A BART array: 16 sizes and column-major complex values.
#[derive(Clone, Debug, PartialEq)]
pub struct Cfl {
    /// Sizes of BART's 16 dimensions (unused ones are 1).
    pub dims: [usize; BART_DIMS],
    /// Column-major values, dimension 0 fastest.
    pub data: Vec<Complex32>,
}

impl Cfl {
    /// The array with every dimension ≥ 2 (and always 0 and 1, the image) as a row-major cinediff
    /// array: leading axes in decreasing BART order (TIME, …, COIL, PHS2), then `[H, W]`.
    pub fn to_row_major(&self) -> (Vec<usize>, Layout, Vec<Complex32>) {
        let mut slots: Vec<usize> = (2..BART_DIMS).rev().filter(|&d| self.dims[d] > 1).collect();
        slots.extend([0, 1]);
        let shape: Vec<usize> = slots.iter().map(|&d| self.dims[d]).collect();
        let data = slots_to_row_major(&shape, &slots, &self.dims, &self.data);
        // Distinct dims below 16 by construction, so Layout::new cannot fail.
        let layout = Layout::new(slots.iter().map(|&d| Axis::from_bart_dim(d)).collect())
            .unwrap_or_else(|_| unreachable!("distinct BART dims"));
        (shape, layout, data)
    }

    /// A row-major cinediff array of `shape` whose axes mean `layout`, in BART's order.
    pub fn from_row_major(shape: &[usize], layout: &Layout, data: &[Complex32]) -> Result<Self> {
        layout.check_rank(shape)?;
        let count = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| {
                Error::invalid("cfl array", "a shape whose size fits", format!("{shape:?}"))
            })?;
        if count != data.len() {
            return Err(Error::Shape {
                what: "cfl array values".into(),
                expected: shape.to_vec(),
                got: vec![data.len()],
            });
        }
        let slots: Vec<usize> = layout.axes().iter().map(|a| a.bart_dim()).collect();
        let mut dims = [1usize; BART_DIMS];
        for (&s, &n) in slots.iter().zip(shape) {
            dims[s] = n;
        }
        Ok(Cfl {
            dims,
            data: row_major_to_slots(shape, &slots, &dims, data),
        })
    }
}

/// The `.hdr` and `.cfl` paths of a BART array named `path` (with or without either extension).
pub fn cfl_paths(path: &Path) -> (PathBuf, PathBuf) {
    let base = match path.extension().and_then(|e| e.to_str()) {
        Some("cfl") | Some("hdr") => path.with_extension(""),
        _ => path.to_path_buf(),
    };
    let with = |ext: &str| {
        let mut s = base.clone().into_os_string();
        s.push(ext);
        PathBuf::from(s)
    };
    (with(".hdr"), with(".cfl"))
}

fn format_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Parses `.hdr` text into 16 sizes; fewer than 16 listed sizes leave the rest 1, as BART does.
pub fn parse_hdr(bytes: &[u8]) -> std::result::Result<[usize; BART_DIMS], String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "header is not UTF-8 text".to_string())?;
    // BART can keep the data in another file; cinediff reads only the .cfl beside the .hdr.
    if text.lines().any(|l| l.trim() == "# Data") {
        return Err(
            "header names a separate data file ('# Data'); expected the data in the .cfl beside it"
                .into(),
        );
    }
    let mut lines = text.lines();
    let mut dims_line = None;
    while let Some(line) = lines.next() {
        if line.trim() == "# Dimensions" {
            dims_line = Some(
                lines
                    .next()
                    .ok_or("'# Dimensions' is not followed by a line of sizes")?,
            );
            break;
        }
    }
    let line = dims_line.ok_or("no '# Dimensions' line: not a BART header")?;
    let tokens: Vec<&str> = line.split_whitespace().collect();
    if tokens.is_empty() || tokens.len() > BART_DIMS {
        return Err(format!(
            "expected 1 to {BART_DIMS} sizes after '# Dimensions', got {}",
            tokens.len()
        ));
    }
    let mut dims = [1usize; BART_DIMS];
    for (k, tok) in tokens.iter().enumerate() {
        dims[k] = match tok.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => return Err(format!("dimension {k}: expected a size ≥ 1, got {tok:?}")),
        };
    }
    element_count(&dims)?;
    Ok(dims)
}

/// The number of values of `dims`, checked against overflow and [`MAX_ELEMENTS`].
fn element_count(dims: &[usize; BART_DIMS]) -> std::result::Result<usize, String> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| format!("dimensions {dims:?} hold more than {MAX_ELEMENTS} values"))
}

/// Decodes `.cfl` bytes for `dims`; the length must be exactly 8 bytes per value.
pub fn parse_cfl_data(
    dims: &[usize; BART_DIMS],
    bytes: &[u8],
) -> std::result::Result<Vec<Complex32>, String> {
    let count = element_count(dims)?;
    if Some(bytes.len()) != count.checked_mul(8) {
        return Err(format!(
            "data is {} bytes, expected {count} complex64 values × 8 = {} bytes for dimensions {:?}",
            bytes.len(),
            count as u128 * 8,
            trimmed(dims)
        ));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| {
            Complex32::new(
                f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                f32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            )
        })
        .collect())
}

/// Parses a header and its data (both in memory).
pub fn parse_cfl(hdr: &[u8], data: &[u8]) -> std::result::Result<Cfl, String> {
    let dims = parse_hdr(hdr)?;
    let data = parse_cfl_data(&dims, data)?;
    Ok(Cfl { dims, data })
}

/// `dims` without trailing 1s, for messages.
fn trimmed(dims: &[usize; BART_DIMS]) -> Vec<usize> {
    let last = dims
        .iter()
        .rposition(|&d| d != 1)
        .map_or(1, |k| k + 1)
        .max(2);
    dims[..last].to_vec()
}

/// Reads the BART array named `path` (`x`, `x.cfl` or `x.hdr`: both files are read).
pub fn read_cfl(path: &Path) -> Result<Cfl> {
    let (hdr_path, cfl_path) = cfl_paths(path);
    let hdr_size = std::fs::metadata(&hdr_path)
        .map_err(|e| Error::io(&hdr_path, e))?
        .len();
    if hdr_size > MAX_HDR_BYTES {
        return Err(format_err(
            &hdr_path,
            format!("header is {hdr_size} bytes, more than the {MAX_HDR_BYTES}-byte limit"),
        ));
    }
    let hdr = std::fs::read(&hdr_path).map_err(|e| Error::io(&hdr_path, e))?;
    let dims = parse_hdr(&hdr).map_err(|r| format_err(&hdr_path, r))?;
    let count = element_count(&dims).map_err(|r| format_err(&hdr_path, r))?;
    // Compare the data file's length with the header before reading it into memory.
    let size = std::fs::metadata(&cfl_path)
        .map_err(|e| Error::io(&cfl_path, e))?
        .len();
    if size != count as u64 * 8 {
        return Err(format_err(
            &cfl_path,
            format!(
                "data is {size} bytes, expected {count} complex64 values × 8 = {} bytes for dimensions {:?} in {}",
                count as u64 * 8,
                trimmed(&dims),
                hdr_path.display()
            ),
        ));
    }
    let bytes = std::fs::read(&cfl_path).map_err(|e| Error::io(&cfl_path, e))?;
    let data = parse_cfl_data(&dims, &bytes).map_err(|r| format_err(&cfl_path, r))?;
    Ok(Cfl { dims, data })
}

/// Writes `cfl` as `x.hdr` (all 16 sizes, as BART writes them) and `x.cfl`.
pub fn write_cfl(path: &Path, cfl: &Cfl) -> Result<()> {
    let count = element_count(&cfl.dims).map_err(|r| {
        Error::invalid(
            "cfl dimensions",
            format!("at most {MAX_ELEMENTS} values"),
            r,
        )
    })?;
    if count != cfl.data.len() {
        return Err(Error::Shape {
            what: "cfl values".into(),
            expected: trimmed(&cfl.dims),
            got: vec![cfl.data.len()],
        });
    }
    let (hdr_path, cfl_path) = cfl_paths(path);
    let mut bytes = Vec::with_capacity(cfl.data.len() * 8);
    for v in &cfl.data {
        bytes.extend_from_slice(&v.re.to_le_bytes());
        bytes.extend_from_slice(&v.im.to_le_bytes());
    }
    std::fs::write(&cfl_path, &bytes).map_err(|e| Error::io(&cfl_path, e))?;
    let sizes: Vec<String> = cfl.dims.iter().map(|d| d.to_string()).collect();
    let text = format!(
        "# Dimensions\n{} \n# Creator\ncinediff {}\n",
        sizes.join(" "),
        env!("CARGO_PKG_VERSION")
    );
    std::fs::write(&hdr_path, text).map_err(|e| Error::io(&hdr_path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing() {
        // The header `bart phantom -x 8 img` writes (bart 0.8.00).
        let bart = b"# Dimensions\n8 8 1 1 1 1 1 1 1 1 1 1 1 1 1 1 \n# Command\nphantom -x 8 img \n# Files\n >img\n# Creator\nBART v0.8.00\n";
        let dims = parse_hdr(bart).unwrap();
        assert_eq!(&dims[..3], &[8, 8, 1]);
        // numpy cfl.py writes only the array's own dims.
        assert_eq!(parse_hdr(b"# Dimensions\n4 5 1 3\n").unwrap()[3], 3);
        for (bad, needle) in [
            (&b"8 8\n"[..], "no '# Dimensions'"),
            (b"# Dimensions\n", "not followed"),
            (b"# Dimensions\n8 0\n", "dimension 1"),
            (b"# Dimensions\n8 -1\n", "dimension 1"),
            (
                b"# Dimensions\n1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1\n",
                "1 to 16",
            ),
            (b"# Dimensions\n65536 65536 65536\n", "more than"),
            (b"# Dimensions\n18446744073709551615 2\n", "more than"),
            (b"# Data\nfoo\n# Dimensions\n2 2\n", "separate data file"),
            (b"# Dimensions\n\xff\n", "UTF-8"),
        ] {
            let err = parse_hdr(bad).unwrap_err();
            assert!(err.contains(needle), "{bad:?}: {err}");
        }
    }

    #[test]
    fn data_length_must_match() {
        let dims = parse_hdr(b"# Dimensions\n2 2\n").unwrap();
        assert!(parse_cfl_data(&dims, &[0u8; 32]).is_ok());
        let err = parse_cfl_data(&dims, &[0u8; 31]).unwrap_err();
        assert!(
            err.contains("31 bytes") && err.contains("32 bytes"),
            "{err}"
        );
    }

    #[test]
    fn row_major_round_trip() {
        let shape = [2usize, 3, 4, 5];
        let data: Vec<Complex32> = (0..120)
            .map(|k| Complex32::new(k as f32, -(k as f32)))
            .collect();
        let layout = Layout::default_for_rank(4).unwrap();
        let cfl = Cfl::from_row_major(&shape, &layout, &data).unwrap();
        assert_eq!(&cfl.dims[..4], &[4, 5, 1, 3]);
        assert_eq!(cfl.dims[10], 2);
        // x[t=1, c=2, h=3, w=4] is row-major index ((1·3+2)·4+3)·5+4 = 119, BART index
        // h + 4·w + 20·c + 60·t = 3 + 16 + 40 + 60 = 119 — same here; check an asymmetric one:
        // x[0, 0, 1, 0] (row-major 5) is BART h=1 → index 1.
        assert_eq!(cfl.data[1], data[5]);
        let (back_shape, back_layout, back) = cfl.to_row_major();
        assert_eq!(back_shape, shape);
        assert_eq!(back_layout, layout);
        assert_eq!(back, data);
    }
}
