//! NIfTI-1 single-file images (`.nii`): read uint8 / int8 / int16 / uint16 / int32 / float32 /
//! float64 / complex64, either byte order (told by `sizeof_hdr`), with `scl_slope`/`scl_inter`;
//! write float32 and complex64 (little-endian, unscaled) so round trips are bitwise.
//!
//! Voxel (i, j, k, t) — i fastest in the file — is cinediff's `x[t, k, i, j]`: i is the row
//! (readout, H), j the column (W), so a slice `x[k]` is nibabel's `img.dataobj[:, :, k]`. A 2-D file
//! is `[H, W]`, a 3-D volume a slice stack `[Z, H, W]` (axes `z,h,w`), a 4-D file with one slice a
//! 2D+t series `[T, H, W]` (`t,h,w`) and with several `[T, Z, H, W]`. Field offsets are those of
//! `nifti1.h` (the NIfTI-1 standard); every header field used is validated before allocating.

use std::io::Read;
use std::path::Path;

use num_complex::Complex32;

use crate::error::{Error, Result};
use crate::image::MAX_ELEMENTS;
use crate::io::layout::{row_major_to_slots, slots_to_row_major, Axis, Layout};
use crate::io::npy::NpyArray;

/// `sizeof_hdr` of NIfTI-1.
const HEADER_BYTES: usize = 348;
/// Header plus the 4-byte extension flag: the smallest `vox_offset` of a `.nii`.
const MIN_VOX_OFFSET: usize = 352;
/// Largest `vox_offset` accepted (extensions are small metadata blocks).
const MAX_VOX_OFFSET: usize = 64 << 20;

/// A NIfTI-1 `datatype` code this reader understands (codes from `nifti1.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NiftiType {
    /// DT_UINT8 = 2.
    U8,
    /// DT_INT16 = 4.
    I16,
    /// DT_INT32 = 8.
    I32,
    /// DT_FLOAT32 = 16.
    F32,
    /// DT_COMPLEX64 = 32.
    C64,
    /// DT_FLOAT64 = 64.
    F64,
    /// DT_INT8 = 256.
    I8,
    /// DT_UINT16 = 512.
    U16,
}

impl NiftiType {
    fn from_code(code: i16) -> Option<Self> {
        Some(match code {
            2 => NiftiType::U8,
            4 => NiftiType::I16,
            8 => NiftiType::I32,
            16 => NiftiType::F32,
            32 => NiftiType::C64,
            64 => NiftiType::F64,
            256 => NiftiType::I8,
            512 => NiftiType::U16,
            _ => return None,
        })
    }

    fn code(self) -> i16 {
        match self {
            NiftiType::U8 => 2,
            NiftiType::I16 => 4,
            NiftiType::I32 => 8,
            NiftiType::F32 => 16,
            NiftiType::C64 => 32,
            NiftiType::F64 => 64,
            NiftiType::I8 => 256,
            NiftiType::U16 => 512,
        }
    }

    /// Bytes per voxel.
    pub fn bytes(self) -> usize {
        match self {
            NiftiType::U8 | NiftiType::I8 => 1,
            NiftiType::I16 | NiftiType::U16 => 2,
            NiftiType::I32 | NiftiType::F32 => 4,
            NiftiType::C64 | NiftiType::F64 => 8,
        }
    }

    /// The numpy name of the stored type.
    pub fn name(self) -> &'static str {
        match self {
            NiftiType::U8 => "uint8",
            NiftiType::I16 => "int16",
            NiftiType::I32 => "int32",
            NiftiType::F32 => "float32",
            NiftiType::C64 => "complex64",
            NiftiType::F64 => "float64",
            NiftiType::I8 => "int8",
            NiftiType::U16 => "uint16",
        }
    }
}

/// The validated header fields the reader uses.
#[derive(Clone, Debug, PartialEq)]
pub struct NiftiHeader {
    /// True when the file is big-endian.
    pub big_endian: bool,
    /// `dim[1..=dim[0]]`, i fastest.
    pub dims: Vec<usize>,
    /// The stored voxel type.
    pub datatype: NiftiType,
    /// Byte offset of the voxels.
    pub vox_offset: usize,
    /// (slope, intercept) when the file asks for scaling, else `None`.
    pub scaling: Option<(f64, f64)>,
    /// `pixdim[1..=3]`: voxel sizes along i, j, k (in the file's units).
    pub voxel_size: [f32; 3],
}

impl NiftiHeader {
    /// Voxels in the file (checked product, capped, at least 1).
    pub fn voxels(&self) -> usize {
        self.dims.iter().product()
    }

    /// Bytes the file must hold: `vox_offset` + voxels × bytes per voxel.
    pub fn file_bytes(&self) -> usize {
        self.vox_offset + self.voxels() * self.datatype.bytes()
    }

    /// The cinediff shape and axes of the data (see the module docs).
    pub fn layout(&self) -> (Vec<usize>, Layout) {
        let d = |k: usize| self.dims.get(k).copied().unwrap_or(1);
        let (shape, axes) = match self.dims.len() {
            2 => (vec![d(0), d(1)], vec![Axis::Row, Axis::Column]),
            3 => (
                vec![d(2), d(0), d(1)],
                vec![Axis::Slice, Axis::Row, Axis::Column],
            ),
            _ if d(2) == 1 => (
                vec![d(3), d(0), d(1)],
                vec![Axis::Time, Axis::Row, Axis::Column],
            ),
            _ => (
                vec![d(3), d(2), d(0), d(1)],
                vec![Axis::Time, Axis::Slice, Axis::Row, Axis::Column],
            ),
        };
        // The axes are distinct by construction.
        let layout = Layout::new(axes).unwrap_or_else(|_| unreachable!("distinct NIfTI axes"));
        (shape, layout)
    }
}

/// A NIfTI image as a cinediff array (float32 or complex64, scaling applied) with its axes.
#[derive(Clone, Debug, PartialEq)]
pub struct NiftiImage {
    /// The header it was read with.
    pub header: NiftiHeader,
    /// Row-major values, shape and type (`Real` or `Complex`).
    pub array: NpyArray,
    /// What each axis of `array` is.
    pub layout: Layout,
}

struct Fields<'a> {
    bytes: &'a [u8],
    big: bool,
}

impl Fields<'_> {
    fn i16(&self, at: usize) -> i16 {
        let b = [self.bytes[at], self.bytes[at + 1]];
        if self.big {
            i16::from_be_bytes(b)
        } else {
            i16::from_le_bytes(b)
        }
    }
    fn f32(&self, at: usize) -> f32 {
        let b = [
            self.bytes[at],
            self.bytes[at + 1],
            self.bytes[at + 2],
            self.bytes[at + 3],
        ];
        if self.big {
            f32::from_be_bytes(b)
        } else {
            f32::from_le_bytes(b)
        }
    }
}

/// Parses and validates the 348-byte header at the start of `bytes`.
pub fn parse_header(bytes: &[u8]) -> std::result::Result<NiftiHeader, String> {
    if bytes.len() >= 2 && bytes[..2] == [0x1f, 0x8b] {
        return Err("gzip-compressed (.nii.gz) files are not supported; gunzip it first".into());
    }
    if bytes.len() < HEADER_BYTES {
        return Err(format!(
            "truncated header: {} bytes, a NIfTI-1 header is {HEADER_BYTES}",
            bytes.len()
        ));
    }
    let size4 = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let big = match (i32::from_le_bytes(size4), i32::from_be_bytes(size4)) {
        (348, _) => false,
        (_, 348) => true,
        (540, _) | (_, 540) => {
            return Err("NIfTI-2 files are not supported (sizeof_hdr 540); expected NIfTI-1".into())
        }
        (le, _) => {
            return Err(format!(
                "sizeof_hdr is {le}, expected 348 (NIfTI-1, either byte order)"
            ))
        }
    };
    let f = Fields { bytes, big };
    match &bytes[344..348] {
        b"n+1\0" => {}
        b"ni1\0" => {
            return Err(
                "a header-only NIfTI pair (.hdr/.img, magic 'ni1'); expected a single-file .nii ('n+1')"
                    .into(),
            )
        }
        m => return Err(format!("magic is {m:?}, expected \"n+1\\0\" (single-file NIfTI-1)")),
    }
    let ndim = f.i16(40);
    if !(1..=7).contains(&ndim) {
        return Err(format!("dim[0] is {ndim}, expected 1 to 7"));
    }
    let mut dims = Vec::with_capacity(ndim as usize);
    for k in 1..=ndim as usize {
        let n = f.i16(40 + 2 * k);
        if n < 1 {
            return Err(format!("dim[{k}] is {n}, expected ≥ 1"));
        }
        dims.push(n as usize);
    }
    if dims.len() == 1 {
        return Err(format!(
            "1-D data (dim[0] = 1, {} voxels); expected an image of at least 2 dimensions",
            dims[0]
        ));
    }
    // Dimensions 5–7 (vector components, …) are not images: only trailing ones of size 1 pass.
    if let Some(k) = (4..dims.len()).find(|&k| dims[k] > 1) {
        return Err(format!(
            "dim[{}] is {}; expected at most 4 dimensions (x, y, z, t) with any further ones 1",
            k + 1,
            dims[k]
        ));
    }
    dims.truncate(4);
    let code = f.i16(70);
    let datatype = NiftiType::from_code(code).ok_or_else(|| {
        format!(
            "datatype {code} is not supported: expected 2 (uint8), 4 (int16), 8 (int32), 16 (float32), 32 (complex64), 64 (float64), 256 (int8) or 512 (uint16)"
        )
    })?;
    let bitpix = f.i16(72);
    if bitpix as i32 != 8 * datatype.bytes() as i32 {
        return Err(format!(
            "bitpix is {bitpix}, expected {} for datatype {code} ({})",
            8 * datatype.bytes(),
            datatype.name()
        ));
    }
    let vox = f.f32(108);
    if !(vox.is_finite()
        && vox.fract() == 0.0
        && vox >= MIN_VOX_OFFSET as f32
        && vox <= MAX_VOX_OFFSET as f32)
    {
        return Err(format!(
            "vox_offset is {vox}, expected a whole number from {MIN_VOX_OFFSET} to {MAX_VOX_OFFSET}"
        ));
    }
    let vox_offset = vox as usize;
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| format!("dimensions {dims:?} hold more than {MAX_ELEMENTS} voxels"))?;
    // count ≤ 2^31 and 8 bytes each: no overflow on 64-bit targets, checked anyway.
    count
        .checked_mul(datatype.bytes())
        .and_then(|n| n.checked_add(vox_offset))
        .ok_or("image size overflows")?;
    // nibabel's rule: a slope of 0 or a non-finite slope means "no scaling".
    let (slope, inter) = (f.f32(112) as f64, f.f32(116) as f64);
    let scaling = if slope == 0.0 || !slope.is_finite() || (slope == 1.0 && inter == 0.0) {
        None
    } else if !inter.is_finite() {
        return Err(format!("scl_inter is {inter}, expected a finite value"));
    } else {
        Some((slope, inter))
    };
    let voxel_size = [f.f32(80), f.f32(84), f.f32(88)];
    Ok(NiftiHeader {
        big_endian: big,
        dims,
        datatype,
        vox_offset,
        scaling,
        voxel_size,
    })
}

/// Decodes the voxels of a whole `.nii` file held in `bytes`.
pub fn parse_nifti(bytes: &[u8]) -> std::result::Result<NiftiImage, String> {
    let header = parse_header(bytes)?;
    decode(header, bytes)
}

fn decode(header: NiftiHeader, bytes: &[u8]) -> std::result::Result<NiftiImage, String> {
    let need = header.file_bytes();
    if bytes.len() < need {
        return Err(format!(
            "truncated: {} bytes, expected vox_offset {} + {} voxels × {} bytes = {need}",
            bytes.len(),
            header.vox_offset,
            header.voxels(),
            header.datatype.bytes()
        ));
    }
    let raw = &bytes[header.vox_offset..need];
    let big = header.big_endian;
    macro_rules! values {
        ($t:ty, $n:expr) => {
            raw.chunks_exact($n)
                .map(|c| {
                    let mut b = [0u8; $n];
                    b.copy_from_slice(c);
                    (if big {
                        <$t>::from_be_bytes(b)
                    } else {
                        <$t>::from_le_bytes(b)
                    }) as f64
                })
                .collect::<Vec<f64>>()
        };
    }
    let (shape, layout) = header.layout();
    // NIfTI dims (i, j, k, t) are slots 0..4; cinediff axis h is i (slot 0), w is j (slot 1).
    let slots: Vec<usize> = layout
        .axes()
        .iter()
        .map(|a| a.nifti_dim().map_or(0, |d| d - 1))
        .collect();
    let mut slot_sizes = header.dims.clone();
    slot_sizes.resize(4, 1);
    let scale = |v: f64| match header.scaling {
        Some((s, i)) => v * s + i,
        None => v,
    };
    let array = if header.datatype == NiftiType::C64 {
        let re_im: Vec<f32> = raw
            .chunks_exact(4)
            .map(|c| {
                let b = [c[0], c[1], c[2], c[3]];
                if big {
                    f32::from_be_bytes(b)
                } else {
                    f32::from_le_bytes(b)
                }
            })
            .collect();
        // Scaling multiplies both parts and adds the intercept to the real part (x·slope + inter).
        let values: Vec<Complex32> = re_im
            .chunks_exact(2)
            .map(|c| match header.scaling {
                Some((s, i)) => {
                    Complex32::new((c[0] as f64 * s + i) as f32, (c[1] as f64 * s) as f32)
                }
                None => Complex32::new(c[0], c[1]),
            })
            .collect();
        NpyArray::Complex {
            data: slots_to_row_major(&shape, &slots, &slot_sizes, &values),
            shape,
        }
    } else {
        let values: Vec<f32> = match header.datatype {
            NiftiType::F32 => {
                let v: Vec<f32> = raw
                    .chunks_exact(4)
                    .map(|c| {
                        let b = [c[0], c[1], c[2], c[3]];
                        if big {
                            f32::from_be_bytes(b)
                        } else {
                            f32::from_le_bytes(b)
                        }
                    })
                    .collect();
                // Unscaled float32 is copied bit for bit.
                match header.scaling {
                    None => v,
                    Some(_) => v.into_iter().map(|x| scale(x as f64) as f32).collect(),
                }
            }
            other => {
                let v: Vec<f64> = match other {
                    NiftiType::U8 => raw.iter().map(|&b| b as f64).collect(),
                    NiftiType::I8 => raw.iter().map(|&b| b as i8 as f64).collect(),
                    NiftiType::I16 => values!(i16, 2),
                    NiftiType::U16 => values!(u16, 2),
                    NiftiType::I32 => values!(i32, 4),
                    _ => values!(f64, 8),
                };
                v.into_iter().map(|x| scale(x) as f32).collect()
            }
        };
        NpyArray::Real {
            data: slots_to_row_major(&shape, &slots, &slot_sizes, &values),
            shape,
        }
    };
    Ok(NiftiImage {
        header,
        array,
        layout,
    })
}

fn format_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads a single-file NIfTI-1 image (`.nii`).
pub fn read_nifti(path: &Path) -> Result<NiftiImage> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    // The header alone decides how much data there must be: check it before reading the rest.
    let mut head = Vec::with_capacity(HEADER_BYTES);
    (&mut file)
        .take(HEADER_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, e))?;
    let header = parse_header(&head).map_err(|r| format_err(path, r))?;
    let need = header.file_bytes() as u64;
    if size < need {
        return Err(format_err(
            path,
            format!(
                "truncated: {size} bytes, expected vox_offset {} + {} voxels × {} bytes = {need}",
                header.vox_offset,
                header.voxels(),
                header.datatype.bytes()
            ),
        ));
    }
    let mut bytes = head;
    bytes.reserve_exact(need as usize - bytes.len());
    (&mut file)
        .take(need - HEADER_BYTES as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    decode(header, &bytes).map_err(|r| format_err(path, r))
}

/// Values to write: float32 or complex64.
#[derive(Clone, Copy, Debug)]
pub enum NiftiValues<'a> {
    /// DT_FLOAT32.
    F32(&'a [f32]),
    /// DT_COMPLEX64.
    C64(&'a [Complex32]),
}

/// The bytes of a little-endian NIfTI-1 file holding row-major `values` of `shape` whose axes
/// are `layout` (any of `t z h w`; `h` and `w` required), unscaled, no orientation (qform and
/// sform codes 0, voxel size 1).
pub fn nifti_bytes(shape: &[usize], layout: &Layout, values: NiftiValues) -> Result<Vec<u8>> {
    layout.check_rank(shape)?;
    let mut slots = Vec::with_capacity(shape.len());
    for a in layout.axes() {
        match a.nifti_dim() {
            Some(d) => slots.push(d - 1),
            None => {
                return Err(Error::invalid(
                    "NIfTI axes",
                    "t, z, h and w (NIfTI has no coil axis)",
                    layout.names(),
                ))
            }
        }
    }
    if !slots.contains(&0) || !slots.contains(&1) {
        return Err(Error::invalid(
            "NIfTI axes",
            "both image axes h and w",
            layout.names(),
        ));
    }
    let mut dims = [1usize; 4];
    for (&s, &n) in slots.iter().zip(shape) {
        if n == 0 || n > i16::MAX as usize {
            return Err(Error::invalid(
                "NIfTI size",
                format!("every size from 1 to {}", i16::MAX),
                format!("{shape:?}"),
            ));
        }
        dims[s] = n;
    }
    // ndim: the highest slot used; a [Z, H, W] stack stays 3-D even when Z = 1.
    let ndim = slots.iter().max().map_or(2, |&m| m + 1).max(2);
    let count: usize = shape.iter().product();
    let (datatype, len) = match values {
        NiftiValues::F32(v) => (NiftiType::F32, v.len()),
        NiftiValues::C64(v) => (NiftiType::C64, v.len()),
    };
    if len != count {
        return Err(Error::Shape {
            what: "NIfTI values".into(),
            expected: shape.to_vec(),
            got: vec![len],
        });
    }
    let mut h = vec![0u8; MIN_VOX_OFFSET];
    let put_i16 =
        |h: &mut Vec<u8>, at: usize, v: i16| h[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put_f32 =
        |h: &mut Vec<u8>, at: usize, v: f32| h[at..at + 4].copy_from_slice(&v.to_le_bytes());
    h[0..4].copy_from_slice(&(HEADER_BYTES as i32).to_le_bytes());
    h[38] = b'r'; // "regular", as NIfTI-1 writers set for ANALYZE compatibility
    put_i16(&mut h, 40, ndim as i16);
    for k in 0..7 {
        // Sizes fit i16 (checked above); unused dimensions are 1.
        let n = dims.get(k).filter(|_| k < ndim).map_or(1, |&n| n as i16);
        put_i16(&mut h, 42 + 2 * k, n);
    }
    put_i16(&mut h, 70, datatype.code());
    put_i16(&mut h, 72, 8 * datatype.bytes() as i16);
    for k in 0..8 {
        put_f32(&mut h, 76 + 4 * k, 1.0); // pixdim[0] = qfac 1, voxel sizes 1
    }
    put_f32(&mut h, 108, MIN_VOX_OFFSET as f32);
    // scl_slope 0 = unscaled (and so bitwise: x·1 + 0 would turn −0.0 into +0.0).
    let descrip = b"cinediff";
    h[148..148 + descrip.len()].copy_from_slice(descrip);
    h[344..348].copy_from_slice(b"n+1\0");
    // Bytes 348..352: the extension flag, 0 = no extensions.
    let mut out = h;
    match values {
        NiftiValues::F32(v) => {
            out.reserve(v.len() * 4);
            for x in row_major_to_slots(shape, &slots, &dims, v) {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        NiftiValues::C64(v) => {
            out.reserve(v.len() * 8);
            for x in row_major_to_slots(shape, &slots, &dims, v) {
                out.extend_from_slice(&x.re.to_le_bytes());
                out.extend_from_slice(&x.im.to_le_bytes());
            }
        }
    }
    Ok(out)
}

/// Writes a NIfTI-1 `.nii` file (see [`nifti_bytes`]).
pub fn write_nifti(
    path: &Path,
    shape: &[usize],
    layout: &Layout,
    values: NiftiValues,
) -> Result<()> {
    let bytes = nifti_bytes(shape, layout, values)?;
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(shape: &[usize]) -> Vec<f32> {
        (0..shape.iter().product::<usize>())
            .map(|k| k as f32 * 0.5 - 3.0)
            .collect()
    }

    #[test]
    fn float_round_trip_is_bitwise() {
        let shape = [3usize, 4, 5];
        let mut v = stack(&shape);
        v[0] = -0.0;
        v[1] = f32::MIN_POSITIVE / 2.0; // a subnormal
        for layout in ["t,h,w", "z,h,w"] {
            let layout = Layout::parse(layout).unwrap();
            let bytes = nifti_bytes(&shape, &layout, NiftiValues::F32(&v)).unwrap();
            let img = parse_nifti(&bytes).unwrap();
            assert_eq!(img.layout, layout);
            let NpyArray::Real { shape: s, data } = img.array else {
                panic!("expected real data")
            };
            assert_eq!(s, shape);
            let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&data), bits(&v));
        }
    }

    #[test]
    fn voxel_order_is_i_fastest() {
        // [H=2, W=3] row-major 0..6: voxel (i, j) = x[i, j] is stored at i + 2j.
        let layout = Layout::parse("h,w").unwrap();
        let v: Vec<f32> = (0..6).map(|k| k as f32).collect();
        let bytes = nifti_bytes(&[2, 3], &layout, NiftiValues::F32(&v)).unwrap();
        let stored: Vec<f32> = bytes[352..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(stored, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }

    #[test]
    fn bad_headers_are_refused() {
        let layout = Layout::parse("h,w").unwrap();
        let good = nifti_bytes(&[2, 2], &layout, NiftiValues::F32(&[1.0; 4])).unwrap();
        let edit = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.clone();
            f(&mut b);
            parse_nifti(&b).unwrap_err()
        };
        let cases: Vec<(String, &str)> = vec![
            (edit(&|b| b.truncate(360)), "truncated"),
            (edit(&|b| b.truncate(100)), "truncated header"),
            (edit(&|b| b[0] = 0), "sizeof_hdr"),
            (edit(&|b| b[344] = b'x'), "magic"),
            (
                edit(&|b| b[40..42].copy_from_slice(&9i16.to_le_bytes())),
                "dim[0]",
            ),
            (
                edit(&|b| b[42..44].copy_from_slice(&(-2i16).to_le_bytes())),
                "dim[1]",
            ),
            (
                edit(&|b| b[70..72].copy_from_slice(&1i16.to_le_bytes())),
                "datatype 1",
            ),
            (
                edit(&|b| b[72..74].copy_from_slice(&8i16.to_le_bytes())),
                "bitpix",
            ),
            (
                edit(&|b| b[108..112].copy_from_slice(&100f32.to_le_bytes())),
                "vox_offset",
            ),
            (
                edit(&|b| b[108..112].copy_from_slice(&f32::NAN.to_le_bytes())),
                "vox_offset",
            ),
            (edit(&|b| b[..2].copy_from_slice(&[0x1f, 0x8b])), "gzip"),
        ];
        for (err, needle) in cases {
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
}
