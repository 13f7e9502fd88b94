//! Reading and writing measurement bundle directories (the contract is in README.md and
//! [`crate::bundle`]): `measurement.toml`, `y.npy`, `mask.npy` (uint8), `csm.npy`, `truth.npy`.
//!
//! Every error names the file; shapes and cross-file consistency are checked by [`Bundle::new`].

use std::path::Path;

use num_complex::Complex32;

use crate::bundle::{
    Bundle, BundleMask, BundleSpec, Truth, CSM_FILE, MASK_FILE, SPEC_FILE, TRUTH_FILE, Y_FILE,
};
use crate::error::{Error, Result};
use crate::io::npy::{read_npy, write_npy_c64, write_npy_f32, write_npy_u8, NpyArray};
use crate::physics::CoilMaps;

/// Largest `measurement.toml` read (it holds a handful of keys).
const MAX_SPEC_BYTES: u64 = 64 * 1024;

fn format_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Parses `measurement.toml` text; unknown keys and wrong types are errors.
pub fn parse_spec(text: &str) -> std::result::Result<BundleSpec, String> {
    toml::from_str::<BundleSpec>(text).map_err(|e| e.message().to_string())
}

/// The spec as `measurement.toml` text (every key written, so nothing depends on defaults).
pub fn spec_to_toml(spec: &BundleSpec) -> Result<String> {
    toml::to_string(spec).map_err(|e| Error::invalid("measurement.toml", "serialisable", e))
}

/// Reads and validates a bundle directory.
pub fn read_bundle(dir: &Path) -> Result<Bundle> {
    if !dir.is_dir() {
        return Err(format_err(dir, "is not a bundle directory"));
    }
    let spec_path = dir.join(SPEC_FILE);
    let size = std::fs::metadata(&spec_path)
        .map_err(|e| Error::io(&spec_path, e))?
        .len();
    if size > MAX_SPEC_BYTES {
        return Err(format_err(
            &spec_path,
            format!("{size} bytes; a measurement.toml is at most {MAX_SPEC_BYTES}"),
        ));
    }
    let text = std::fs::read_to_string(&spec_path).map_err(|e| Error::io(&spec_path, e))?;
    let spec = parse_spec(&text).map_err(|reason| format_err(&spec_path, reason))?;
    spec.validate()
        .map_err(|e| format_err(&spec_path, e.to_string()))?;

    let y_path = dir.join(Y_FILE);
    let y = read_values(&y_path, spec.y_is_complex())?;
    expect_shape(&y_path, &y.0, &spec.y_shape())?;

    let mask_path = dir.join(MASK_FILE);
    let mask = if mask_path.exists() {
        match read_npy(&mask_path)? {
            NpyArray::U8 { shape, data } => Some(
                BundleMask::from_u8(&shape, &data, MASK_FILE)
                    .map_err(|e| format_err(&mask_path, e.to_string()))?,
            ),
            other => {
                return Err(format_err(
                    &mask_path,
                    format!(
                        "dtype must be uint8 (0/1), got {}; save with mask.astype(np.uint8)",
                        other.dtype()
                    ),
                ))
            }
        }
    } else {
        None
    };

    let csm_path = dir.join(CSM_FILE);
    let maps = if csm_path.exists() {
        let (shape, data) = read_values(&csm_path, true)?;
        let [c, h, w] = shape[..] else {
            return Err(format_err(
                &csm_path,
                format!("expected shape [coils, H, W], got {shape:?}"),
            ));
        };
        Some(CoilMaps::new([c, h, w], data).map_err(|e| format_err(&csm_path, e.to_string()))?)
    } else {
        None
    };

    let truth_path = dir.join(TRUTH_FILE);
    let truth = if truth_path.exists() {
        let (shape, values) = read_values(&truth_path, spec.complex)?;
        Some(Truth { shape, values })
    } else {
        None
    };
    Bundle::new(spec, y.1, mask, maps, truth).map_err(|e| format_err(dir, e.to_string()))
}

/// Writes `bundle` into `dir` (created if missing). Refuses a directory that already holds a
/// bundle unless `overwrite`.
pub fn write_bundle(dir: &Path, bundle: &Bundle, overwrite: bool) -> Result<()> {
    let spec_path = dir.join(SPEC_FILE);
    if spec_path.exists() && !overwrite {
        return Err(format_err(
            dir,
            "already holds a bundle (measurement.toml); choose another directory or pass --force",
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let spec = bundle.spec();
    let write = |path: &Path, shape: &[usize], values: &[Complex32], complex: bool| {
        if complex {
            write_npy_c64(path, shape, values)
        } else {
            let re: Vec<f32> = values.iter().map(|v| v.re).collect();
            write_npy_f32(path, shape, &re)
        }
    };
    write(
        &dir.join(Y_FILE),
        &spec.y_shape(),
        bundle.y(),
        spec.y_is_complex(),
    )?;
    for stale in [MASK_FILE, CSM_FILE, TRUTH_FILE] {
        let path = dir.join(stale);
        if path.exists() {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    if let Some(mask) = bundle.mask() {
        write_npy_u8(&dir.join(MASK_FILE), &mask.shape(), &mask.to_u8())?;
    }
    if let Some(maps) = bundle.coil_maps() {
        write_npy_c64(&dir.join(CSM_FILE), &maps.shape(), maps.data())?;
    }
    if let Some(truth) = bundle.truth() {
        write(
            &dir.join(TRUTH_FILE),
            &truth.shape,
            &truth.values,
            spec.complex,
        )?;
    }
    // The spec last: a directory with measurement.toml is a complete bundle.
    let text = spec_to_toml(spec)?;
    std::fs::write(&spec_path, text).map_err(|e| Error::io(&spec_path, e))
}

/// Reads a float32/float64 (real) or complex64/complex128 array as complex values; `complex`
/// says which the contract requires.
pub fn read_values(path: &Path, complex: bool) -> Result<(Vec<usize>, Vec<Complex32>)> {
    match read_npy(path)? {
        NpyArray::Complex { shape, data } if complex => Ok((shape, data)),
        NpyArray::Real { shape, data } if !complex => Ok((
            shape,
            data.into_iter().map(|v| Complex32::new(v, 0.0)).collect(),
        )),
        other => Err(format_err(
            path,
            format!(
                "dtype must be {} here, got {}",
                if complex { "complex64" } else { "float32" },
                other.dtype()
            ),
        )),
    }
}

fn expect_shape(path: &Path, got: &[usize], expected: &[usize]) -> Result<()> {
    if got != expected {
        return Err(format_err(
            path,
            format!("expected shape {expected:?} from {SPEC_FILE}, got {got:?}"),
        ));
    }
    Ok(())
}
