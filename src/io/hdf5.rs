//! fastMRI and ISMRMRD/MRD HDF5 k-space (read), compiled with `--features hdf5` (libhdf5; Debian:
//! `apt-get install libhdf5-dev`). The result is a [`Kspace`] `[T, C, H, W]` in the bundle's
//! convention (centred, DC at (H/2, W/2), rows H = readout, columns W = phase encodes) plus the
//! sampling mask the file states, for [`crate::io::kspace::bundle_from_kspace`].
//!
//! * **fastMRI**: `kspace` complex64 (h5py's compound `{r, i}`) `[slices, coils, H, W]` or
//!   `[slices, H, W]`; fastMRI's k-space is centred and orthonormal (`fftshift(fft2(ifftshift(x),
//!   norm="ortho"))`), H is the (2× oversampled) readout and W the phase encodes, so it is used as
//!   stored. Slices become frames (a slice stack) or `slice` picks one. An optional `mask` `[W]`
//!   (non-zero = sampled) is returned as the mask.
//! * **ISMRMRD/MRD**: `/<group>/data` (acquisitions `{head, traj, data}`) and `/<group>/xml`.
//!   Acquisitions flagged noise, calibration-only (`ACQ_IS_PARALLEL_CALIBRATION`; lines flagged
//!   calibration-and-imaging are kept), navigator, phase correction, feedback, dummy scan or
//!   surface-coil correction are skipped. Each remaining readout goes to column
//!   `kspace_encode_step_1 − centre + W/2` (W and the centre from the header's `encodedSpace` and
//!   `encodingLimits`, else W = largest step + 1 and centre W/2) and rows `sample − center_sample +
//!   H/2` with H = 2·max(center_sample, samples − center_sample) (an asymmetric echo is zero-padded;
//!   `discard_pre`/`discard_post` samples are zeroed); `ACQ_IS_REVERSE` readouts are reversed.
//!   Frames are the distinct cardiac phases (`idx.phase`), else repetitions, else slices; with
//!   `slice` only that slice is read. Readouts landing on the same frame and line (averages) are
//!   averaged. The mask is the set of (frame, column) that received a readout.
//!
//! Readout oversampling is kept unless `crop_readout` is given: then every column is inverse
//! transformed along the readout (centred, orthonormal), the centre `crop_readout` rows
//! (from H/2 − n/2) kept, and transformed back, so the image is the centre of the uncropped image
//! with the same pixel values (what fastMRI's `reconstruction_rss` crops to).
//!
//! Sizes are checked against caps before anything is allocated; errors name the file and dataset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use h5::types::{VarLenArray, VarLenAscii, VarLenUnicode};
use h5::H5Type;
use hdf5_metno as h5;
use num_complex::Complex32;

use crate::bundle::{BundleMask, MASK_FILE};
use crate::error::{Error, Result};
use crate::io::kspace::{mask_from_array, Kspace};
use crate::physics::fft::Fft2;

/// The largest k-space imported, in complex values (2 GiB of complex64).
pub const MAX_KSPACE_VALUES: usize = 1 << 28;
/// The most acquisitions an ISMRMRD dataset may hold.
pub const MAX_ACQUISITIONS: usize = 1 << 22;
/// The most coils.
pub const MAX_COILS: usize = 1024;
/// The largest header XML read, in bytes.
pub const MAX_XML_BYTES: usize = 16 << 20;

/// ISMRMRD acquisition flags (bit numbers, 1-based, as in `ismrmrd.h`).
pub mod flags {
    pub const NOISE_MEASUREMENT: u32 = 19;
    pub const PARALLEL_CALIBRATION: u32 = 20;
    pub const PARALLEL_CALIBRATION_AND_IMAGING: u32 = 21;
    pub const REVERSE: u32 = 22;
    pub const NAVIGATION_DATA: u32 = 23;
    pub const PHASECORR_DATA: u32 = 24;
    pub const HPFEEDBACK_DATA: u32 = 26;
    pub const DUMMYSCAN_DATA: u32 = 27;
    pub const RTFEEDBACK_DATA: u32 = 28;
    pub const SURFACECOILCORRECTIONSCAN_DATA: u32 = 29;

    /// The mask of flag bit `bit`.
    pub const fn bit(bit: u32) -> u64 {
        1u64 << (bit - 1)
    }

    /// Acquisitions that are not imaging lines and are skipped.
    pub const SKIPPED: u64 = bit(NOISE_MEASUREMENT)
        | bit(PARALLEL_CALIBRATION)
        | bit(NAVIGATION_DATA)
        | bit(PHASECORR_DATA)
        | bit(HPFEEDBACK_DATA)
        | bit(DUMMYSCAN_DATA)
        | bit(RTFEEDBACK_DATA)
        | bit(SURFACECOILCORRECTIONSCAN_DATA);
}

/// Settings of an HDF5 k-space import.
#[derive(Clone, Debug, Default)]
pub struct Hdf5Options {
    /// Read only this slice (fastMRI: index along the first axis; ISMRMRD: `idx.slice`).
    pub slice: Option<usize>,
    /// Crop the readout to this many rows (centre of the image), see the module docs.
    pub crop_readout: Option<usize>,
    /// The ISMRMRD group (default `dataset`).
    pub group: Option<String>,
}

/// Which convention a file follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hdf5Kind {
    FastMri,
    Ismrmrd,
}

/// K-space read from an HDF5 file.
#[derive(Debug)]
pub struct Hdf5Kspace {
    pub kind: Hdf5Kind,
    /// `[T, C, H, W]` in the bundle's convention.
    pub kspace: Kspace,
    /// The mask the file states (fastMRI `mask`, ISMRMRD acquired lines), if any.
    pub mask: Option<BundleMask>,
    /// Things worth telling the user (skipped acquisitions, oversampling, attributes).
    pub notes: Vec<String>,
}

/// True if `path` has an HDF5 k-space extension (`.h5`, `.hdf5`, `.mrd`).
pub fn is_hdf5_path(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref(),
        Some("h5" | "hdf5" | "mrd")
    )
}

fn format_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Format {
        path: PathBuf::from(path),
        reason: reason.into(),
    }
}

/// An HDF5 library error on one line (its messages may span several).
fn h5_text(e: &h5::Error) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// An HDF5 library error as a format error naming the file and the object.
fn h5_error<'a>(path: &'a Path, what: &str) -> impl Fn(h5::Error) -> Error + 'a {
    let what = what.to_string();
    move |e| format_error(path, format!("{what}: {}", h5_text(&e)))
}

fn checked_product(path: &Path, what: &str, dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_KSPACE_VALUES)
        .ok_or_else(|| {
            format_error(
                path,
                format!(
                    "{what}: shape {dims:?} exceeds the cap of {MAX_KSPACE_VALUES} complex values"
                ),
            )
        })
}

/// Reads fastMRI or ISMRMRD k-space from `path` (see the module docs).
pub fn read_hdf5_kspace(path: &Path, options: &Hdf5Options) -> Result<Hdf5Kspace> {
    if !path.is_file() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        ));
    }
    let file = h5::File::open(path).map_err(h5_error(path, "not an HDF5 file"))?;
    let group = options.group.as_deref().unwrap_or("dataset");
    let mut out = if file.link_exists("kspace") {
        read_fastmri(path, &file, options)?
    } else if file.link_exists(group) && file.link_exists(&format!("{group}/data")) {
        read_ismrmrd(path, &file, group, options)?
    } else {
        let members = file.member_names().unwrap_or_default();
        return Err(format_error(
            path,
            format!(
                "neither fastMRI (a `kspace` dataset) nor ISMRMRD (`/{group}/data`): the file holds {members:?}"
            ),
        ));
    };
    if let Some(n) = options.crop_readout {
        let h = out.kspace.shape[2];
        if n == 0 || n > h {
            return Err(Error::invalid(
                "--crop-readout",
                format!("1 to {h} rows (the readout length)"),
                n,
            ));
        }
        if n < h {
            out.kspace = crop_readout(&out.kspace, n)?;
            out.notes.push(format!(
                "readout cropped from {h} to {n} rows (image centre)"
            ));
        }
    }
    Ok(out)
}

/// h5py's complex64.
#[derive(H5Type, Clone, Copy, Debug, Default)]
#[repr(C)]
struct H5Complex {
    r: f32,
    i: f32,
}

fn read_fastmri(path: &Path, file: &h5::File, options: &Hdf5Options) -> Result<Hdf5Kspace> {
    let ds = file
        .dataset("kspace")
        .map_err(h5_error(path, "dataset kspace"))?;
    let shape = ds.shape();
    let (slices, coils, h, w) = match *shape.as_slice() {
        [s, c, h, w] => (s, c, h, w),
        [s, h, w] => (s, 1, h, w),
        _ => {
            return Err(format_error(
                path,
                format!(
                    "dataset kspace: expected [slices, coils, H, W] or [slices, H, W], got shape {shape:?}"
                ),
            ))
        }
    };
    if slices == 0 || coils == 0 || h == 0 || w == 0 {
        return Err(format_error(
            path,
            format!("dataset kspace: empty shape {shape:?}"),
        ));
    }
    if coils > MAX_COILS {
        return Err(format_error(
            path,
            format!("dataset kspace: {coils} coils, expected at most {MAX_COILS}"),
        ));
    }
    check_complex_dtype(path, "kspace", &ds)?;
    let frames = match options.slice {
        Some(n) if n >= slices => {
            return Err(Error::invalid(
                "--slice",
                format!(
                    "0 to {} ({} has {slices} slices)",
                    slices - 1,
                    path.display()
                ),
                n,
            ))
        }
        Some(_) => 1,
        None => slices,
    };
    let total = checked_product(path, "dataset kspace", &[frames, coils, h, w])?;
    let values: Vec<H5Complex> = match options.slice {
        None => ds
            .read_raw::<H5Complex>()
            .map_err(h5_error(path, "reading dataset kspace"))?,
        Some(n) if shape.len() == 3 => ds
            .read_slice_2d::<H5Complex, _>((n, .., ..))
            .map_err(h5_error(path, "reading dataset kspace"))?
            .iter()
            .copied()
            .collect(),
        Some(n) => {
            let mut v = Vec::with_capacity(total);
            for c in 0..coils {
                let plane = ds
                    .read_slice_2d::<H5Complex, _>((n, c, .., ..))
                    .map_err(h5_error(path, "reading dataset kspace"))?;
                v.extend(plane.iter().copied());
            }
            v
        }
    };
    if values.len() != total {
        return Err(format_error(
            path,
            format!(
                "dataset kspace: expected {total} values, read {}",
                values.len()
            ),
        ));
    }
    let data = values
        .iter()
        .map(|v| Complex32::new(v.r, v.i))
        .collect::<Vec<_>>();
    let kspace = Kspace {
        shape: [frames, coils, h, w],
        data,
    };
    let mut notes = Vec::new();
    let mask = if file.link_exists("mask") {
        let m = file
            .dataset("mask")
            .map_err(h5_error(path, "dataset mask"))?;
        let mshape = m.shape();
        if mshape != [w] {
            return Err(format_error(
                path,
                format!("dataset mask: expected shape [{w}] (the k-space width), got {mshape:?}"),
            ));
        }
        let sampled: Vec<bool> = match m.read_raw::<f32>() {
            Ok(v) => v.iter().map(|&x| x != 0.0).collect(),
            Err(_) => m.read_raw::<bool>().map_err(h5_error(
                path,
                "dataset mask (expected numbers or booleans)",
            ))?,
        };
        notes.push(format!(
            "mask from dataset mask: {} of {w} columns sampled",
            sampled.iter().filter(|&&b| b).count()
        ));
        Some(
            mask_from_array(&[w], &sampled, [frames, h, w])
                .map_err(|e| format_error(path, format!("dataset mask: {e}")))?,
        )
    } else {
        None
    };
    if let Ok(attr) = file.attr("acquisition") {
        if let Some(text) = read_string_attr(&attr) {
            notes.push(format!("acquisition {text}"));
        }
    }
    if options.crop_readout.is_none() && h > w {
        notes.push(format!(
            "readout of {h} samples kept (fastMRI k-space is 2× oversampled along the readout; --crop-readout {} crops)",
            h / 2
        ));
    }
    Ok(Hdf5Kspace {
        kind: Hdf5Kind::FastMri,
        kspace,
        mask,
        notes,
    })
}

fn check_complex_dtype(path: &Path, name: &str, ds: &h5::Dataset) -> Result<()> {
    use h5::types::{FloatSize, TypeDescriptor};
    let desc = ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(h5_error(path, &format!("dataset {name} type")))?;
    let ok = match &desc {
        TypeDescriptor::Compound(c) => {
            let names: Vec<&str> = c.fields.iter().map(|f| f.name.as_str()).collect();
            names == ["r", "i"]
                && c.fields
                    .iter()
                    .all(|f| matches!(f.ty, TypeDescriptor::Float(FloatSize::U4 | FloatSize::U8)))
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format_error(
            path,
            format!("dataset {name}: expected complex (compound {{r, i}} of floats, as h5py writes complex64), got {desc}"),
        ))
    }
}

fn read_string_attr(attr: &h5::Attribute) -> Option<String> {
    if let Ok(s) = attr.read_scalar::<VarLenUnicode>() {
        return Some(s.as_str().to_string());
    }
    attr.read_scalar::<VarLenAscii>()
        .ok()
        .map(|s| s.as_str().to_string())
}

/// The encoding counters of an acquisition (the members used; HDF5 converts by name).
#[derive(H5Type, Clone, Copy, Debug, Default)]
#[repr(C)]
struct EncodingCounters {
    kspace_encode_step_1: u16,
    kspace_encode_step_2: u16,
    average: u16,
    slice: u16,
    contrast: u16,
    phase: u16,
    repetition: u16,
    set: u16,
}

/// The members of ISMRMRD's `AcquisitionHeader` that the import uses.
#[derive(H5Type, Clone, Copy, Debug, Default)]
#[repr(C)]
struct AcquisitionHead {
    flags: u64,
    scan_counter: u32,
    number_of_samples: u16,
    active_channels: u16,
    discard_pre: u16,
    discard_post: u16,
    center_sample: u16,
    trajectory_dimensions: u16,
    idx: EncodingCounters,
}

#[derive(H5Type, Clone, Copy, Debug)]
#[repr(C)]
struct HeadOnly {
    head: AcquisitionHead,
}

#[derive(H5Type, Clone, Debug)]
#[repr(C)]
struct Acquisition {
    head: AcquisitionHead,
    data: VarLenArray<f32>,
}

/// The text between `<name>` and `</name>` (first occurrence) in `xml`.
fn xml_tag<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(&xml[start..end])
}

fn xml_number(xml: &str, path: &[&str]) -> Option<usize> {
    let mut text = xml;
    for name in path {
        text = xml_tag(text, name)?;
    }
    text.trim().parse().ok()
}

/// What the ISMRMRD header says about the first encoding.
#[derive(Debug, Default)]
struct HeaderHints {
    encoded_x: Option<usize>,
    encoded_y: Option<usize>,
    recon_x: Option<usize>,
    center_e1: Option<usize>,
}

fn read_xml(path: &Path, file: &h5::File, group: &str) -> Result<Option<String>> {
    let name = format!("{group}/xml");
    if !file.link_exists(&name) {
        return Ok(None);
    }
    let ds = file
        .dataset(&name)
        .map_err(h5_error(path, &format!("dataset {name}")))?;
    if ds.size() > 1 {
        return Err(format_error(
            path,
            format!(
                "dataset {name}: expected one string, got shape {:?}",
                ds.shape()
            ),
        ));
    }
    let text = if let Ok(v) = ds.read_raw::<VarLenUnicode>() {
        v.first().map(|s| s.as_str().to_string())
    } else if let Ok(v) = ds.read_raw::<VarLenAscii>() {
        v.first().map(|s| s.as_str().to_string())
    } else {
        return Err(format_error(
            path,
            format!("dataset {name}: expected a variable-length string (the ISMRMRD XML header)"),
        ));
    };
    match text {
        Some(t) if t.len() > MAX_XML_BYTES => Err(format_error(
            path,
            format!(
                "dataset {name}: {} bytes, more than {MAX_XML_BYTES}",
                t.len()
            ),
        )),
        t => Ok(t),
    }
}

fn header_hints(xml: &str) -> HeaderHints {
    let encoding = xml_tag(xml, "encoding").unwrap_or("");
    HeaderHints {
        encoded_x: xml_number(encoding, &["encodedSpace", "matrixSize", "x"]),
        encoded_y: xml_number(encoding, &["encodedSpace", "matrixSize", "y"]),
        recon_x: xml_number(encoding, &["reconSpace", "matrixSize", "x"]),
        center_e1: xml_number(
            encoding,
            &["encodingLimits", "kspace_encoding_step_1", "center"],
        ),
    }
}

/// Distinct values of a counter, sorted.
fn distinct(values: impl Iterator<Item = u16>) -> Vec<u16> {
    let mut v: Vec<u16> = values.collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn read_ismrmrd(
    path: &Path,
    file: &h5::File,
    group: &str,
    options: &Hdf5Options,
) -> Result<Hdf5Kspace> {
    let name = format!("{group}/data");
    let err = |reason: String| format_error(path, format!("dataset {name}: {reason}"));
    let ds = file
        .dataset(&name)
        .map_err(h5_error(path, &format!("dataset {name}")))?;
    let shape = ds.shape();
    let n_acq = match *shape.as_slice() {
        [n] => n,
        _ => {
            return Err(err(format!(
                "expected a 1-D array of acquisitions, got shape {shape:?}"
            )))
        }
    };
    if n_acq == 0 {
        return Err(err("no acquisitions".into()));
    }
    if n_acq > MAX_ACQUISITIONS {
        return Err(err(format!(
            "{n_acq} acquisitions, more than the cap of {MAX_ACQUISITIONS}"
        )));
    }
    let heads: Vec<AcquisitionHead> = ds
        .read_raw::<HeadOnly>()
        .map_err(|e| {
            err(format!(
                "expected ISMRMRD acquisitions (compound {{head, traj, data}}): {}",
                h5_text(&e)
            ))
        })?
        .into_iter()
        .map(|h| h.head)
        .collect();
    let xml = read_xml(path, file, group)?;
    let hints = xml.as_deref().map(header_hints).unwrap_or_default();
    let mut notes = Vec::new();

    // Which acquisitions are imaging lines of the requested slice.
    let skipped = heads
        .iter()
        .filter(|h| h.flags & flags::SKIPPED != 0)
        .count();
    let mut keep: Vec<usize> = (0..n_acq)
        .filter(|&k| heads[k].flags & flags::SKIPPED == 0)
        .collect();
    if skipped > 0 {
        notes.push(format!(
            "skipped {skipped} of {n_acq} acquisitions (noise, calibration-only, navigator, phase correction, feedback or dummy scans)"
        ));
    }
    if let Some(s) = options.slice {
        let slices = distinct(keep.iter().map(|&k| heads[k].idx.slice));
        keep.retain(|&k| heads[k].idx.slice as usize == s);
        if keep.is_empty() {
            return Err(Error::invalid(
                "--slice",
                format!("one of the slices in {}: {slices:?}", path.display()),
                s,
            ));
        }
    }
    if keep.is_empty() {
        return Err(err("no imaging acquisitions (all are flagged noise, calibration or other non-imaging data)".into()));
    }
    let first = heads[keep[0]];
    let samples = first.number_of_samples as usize;
    let coils = first.active_channels as usize;
    let center = first.center_sample as usize;
    for &k in &keep {
        let h = &heads[k];
        if h.number_of_samples as usize != samples
            || h.active_channels as usize != coils
            || h.center_sample as usize != center
        {
            return Err(err(format!(
                "acquisition {k}: {} samples, {} channels, centre {}; expected the {samples}, {coils}, {center} of acquisition {}",
                h.number_of_samples, h.active_channels, h.center_sample, keep[0]
            )));
        }
        if h.trajectory_dimensions != 0 {
            return Err(err(format!(
                "acquisition {k} has a trajectory ({} dimensions): only Cartesian data are imported",
                h.trajectory_dimensions
            )));
        }
    }
    if samples == 0 || coils == 0 || center > samples {
        return Err(err(format!(
            "acquisition {}: {samples} samples, {coils} channels, centre sample {center}",
            keep[0]
        )));
    }
    if coils > MAX_COILS {
        return Err(err(format!("{coils} channels, more than {MAX_COILS}")));
    }
    for (what, values) in [
        (
            "kspace_encode_step_2 (3-D)",
            distinct(keep.iter().map(|&k| heads[k].idx.kspace_encode_step_2)),
        ),
        (
            "contrast",
            distinct(keep.iter().map(|&k| heads[k].idx.contrast)),
        ),
        ("set", distinct(keep.iter().map(|&k| heads[k].idx.set))),
    ] {
        if values.len() > 1 {
            return Err(err(format!(
                "several values of {what} ({values:?}): not supported"
            )));
        }
    }
    let phases = distinct(keep.iter().map(|&k| heads[k].idx.phase));
    let reps = distinct(keep.iter().map(|&k| heads[k].idx.repetition));
    let slices = distinct(keep.iter().map(|&k| heads[k].idx.slice));
    let frame_of: Box<dyn Fn(&AcquisitionHead) -> u16> = if phases.len() > 1 {
        if slices.len() > 1 {
            return Err(err(format!(
                "{} cardiac phases in each of {} slices: choose one with --slice ({slices:?})",
                phases.len(),
                slices.len()
            )));
        }
        notes.push(format!("{} frames from idx.phase", phases.len()));
        Box::new(|h| h.idx.phase)
    } else if reps.len() > 1 {
        if slices.len() > 1 {
            return Err(err(format!(
                "{} repetitions in each of {} slices: choose one with --slice ({slices:?})",
                reps.len(),
                slices.len()
            )));
        }
        notes.push(format!("{} frames from idx.repetition", reps.len()));
        Box::new(|h| h.idx.repetition)
    } else if slices.len() > 1 {
        notes.push(format!(
            "{} frames from idx.slice (a slice stack)",
            slices.len()
        ));
        Box::new(|h| h.idx.slice)
    } else {
        Box::new(|_| 0)
    };
    let frame_values = distinct(keep.iter().map(|&k| frame_of(&heads[k])));
    let frame_index: BTreeMap<u16, usize> = frame_values
        .iter()
        .enumerate()
        .map(|(i, &v)| (v, i))
        .collect();
    let t = frame_values.len();

    // Geometry: rows from the readout, columns from the header (hint) or the data.
    let h = 2 * center.max(samples - center);
    let max_e1 = keep
        .iter()
        .map(|&k| heads[k].idx.kspace_encode_step_1 as usize)
        .max()
        .unwrap_or(0);
    let w = hints.encoded_y.unwrap_or(max_e1 + 1).max(1);
    let center_e1 = hints.center_e1.unwrap_or(w / 2);
    if let Some(x) = hints.encoded_x {
        if x != samples {
            notes.push(format!(
                "header encodedSpace x = {x}, readouts hold {samples} samples: sized from the data"
            ));
        }
    }
    if let (Some(rx), None) = (hints.recon_x, options.crop_readout) {
        if rx < h {
            notes.push(format!(
                "readout of {h} samples kept (reconSpace x = {rx}; --crop-readout {rx} crops)"
            ));
        }
    }
    let total = checked_product(path, &name, &[t, coils, h, w])?;
    let column = |k: usize| -> Result<usize> {
        let e1 = heads[k].idx.kspace_encode_step_1 as usize;
        (e1 + w / 2)
            .checked_sub(center_e1)
            .filter(|&c| c < w)
            .ok_or_else(|| {
                err(format!(
                    "acquisition {k}: kspace_encode_step_1 {e1} falls outside {w} columns (centre {center_e1})"
                ))
            })
    };
    for &k in &keep {
        column(k)?;
    }

    let mut data = vec![Complex32::new(0.0, 0.0); total];
    let mut counts = vec![0u32; t * w];
    let row0 = h / 2 - center;
    let chunk = 1024;
    let mut next = 0;
    while next < keep.len() {
        let start = keep[next];
        let end = (start + chunk).min(n_acq);
        let records = ds
            .read_slice_1d::<Acquisition, _>(start..end)
            .map_err(|e| {
                err(format!(
                    "reading acquisitions {start}..{end}: {}",
                    h5_text(&e)
                ))
            })?;
        while next < keep.len() && keep[next] < end {
            let k = keep[next];
            next += 1;
            let acq = &records[k - start];
            let head = &heads[k];
            let values = acq.data.as_slice();
            if values.len() != 2 * samples * coils {
                return Err(err(format!(
                    "acquisition {k}: data holds {} floats, expected 2 × {samples} samples × {coils} channels = {}",
                    values.len(),
                    2 * samples * coils
                )));
            }
            let frame = frame_index[&frame_of(head)];
            let col = column(k)?;
            let reverse = head.flags & flags::bit(flags::REVERSE) != 0;
            let lo = (head.discard_pre as usize).min(samples);
            let hi = samples.saturating_sub(head.discard_post as usize).max(lo);
            for c in 0..coils {
                let base = ((frame * coils + c) * h) * w;
                for s in lo..hi {
                    let src = if reverse { samples - 1 - s } else { s };
                    let v = Complex32::new(
                        values[2 * (c * samples + src)],
                        values[2 * (c * samples + src) + 1],
                    );
                    data[base + (row0 + s) * w + col] += v;
                }
            }
            counts[frame * w + col] += 1;
        }
    }
    // Average repeated lines (averages), and the mask of acquired lines.
    let mut averaged = 0;
    for frame in 0..t {
        for col in 0..w {
            let n = counts[frame * w + col];
            if n > 1 {
                averaged += 1;
                let inv = 1.0 / n as f32;
                for c in 0..coils {
                    let base = ((frame * coils + c) * h) * w;
                    for row in 0..h {
                        data[base + row * w + col] *= inv;
                    }
                }
            }
        }
    }
    if averaged > 0 {
        notes.push(format!(
            "{averaged} lines acquired more than once were averaged"
        ));
    }
    let lines: Vec<u8> = counts.iter().map(|&n| (n > 0) as u8).collect();
    let mask = BundleMask::from_u8(&[t, w], &lines, MASK_FILE)?;
    Ok(Hdf5Kspace {
        kind: Hdf5Kind::Ismrmrd,
        kspace: Kspace {
            shape: [t, coils, h, w],
            data,
        },
        mask: Some(mask),
        notes,
    })
}

/// Crops the readout (rows) of centred k-space to `n`: inverse FFT along H, keep rows
/// H/2 − n/2 .. + n, FFT back (both centred, orthonormal).
fn crop_readout(kspace: &Kspace, n: usize) -> Result<Kspace> {
    let [t, c, h, w] = kspace.shape;
    let long = Fft2::new([h, 1])?;
    let short = Fft2::new([n, 1])?;
    let mut scratch_long = long.make_scratch();
    let mut scratch_short = short.make_scratch();
    let first = h / 2 - n / 2;
    let mut out = vec![Complex32::new(0.0, 0.0); t * c * n * w];
    let mut column = vec![Complex32::new(0.0, 0.0); h];
    let mut cropped = vec![Complex32::new(0.0, 0.0); n];
    for (plane, dst) in kspace
        .data
        .chunks_exact(h * w)
        .zip(out.chunks_exact_mut(n * w))
    {
        for col in 0..w {
            for (row, v) in column.iter_mut().enumerate() {
                *v = plane[row * w + col];
            }
            long.inverse_centered(&mut column, &mut scratch_long)?;
            cropped.copy_from_slice(&column[first..first + n]);
            short.forward_centered(&mut cropped, &mut scratch_short)?;
            for (row, v) in cropped.iter().enumerate() {
                dst[row * w + col] = *v;
            }
        }
    }
    Ok(Kspace {
        shape: [t, c, n, w],
        data: out,
    })
}
