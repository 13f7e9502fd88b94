//! fastMRI and ISMRMRD HDF5 k-space import (`cinediff convert file.h5 bundle/ --kspace`), against
//! files written by h5py and the values numpy computes for them (`tests/golden/hdf5_golden.py`,
//! `tests/data/hdf5/`). Needs `--features hdf5` (libhdf5); without it one test checks the error.
//!
//! cargo test --release --features hdf5 --test hdf5

#[macro_use]
mod common;

use std::path::PathBuf;

use common::*;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/hdf5")
        .join(name)
}

#[cfg(not(feature = "hdf5"))]
#[test]
fn without_the_feature_the_error_says_how_to_rebuild() {
    let tmp = TempDir::new("hdf5-nofeature");
    let out = tmp.join("bundle");
    fails(
        args!["convert", data("fastmri_multicoil.h5"), out, "--kspace"],
        &["fastmri_multicoil.h5", "--features hdf5", "libhdf5-dev"],
    );
}

#[cfg(feature = "hdf5")]
mod with_hdf5 {
    use super::*;
    use cinediff::io::hdf5::{read_hdf5_kspace, Hdf5Kind, Hdf5Options};
    use cinediff::io::npy::{read_npy, NpyArray};
    use num_complex::Complex32;
    use std::path::Path;

    fn complex(path: &Path) -> (Vec<usize>, Vec<Complex32>) {
        match read_npy(path).unwrap() {
            NpyArray::Complex { shape, data } => (shape, data),
            other => panic!(
                "{}: expected complex, got {}",
                path.display(),
                other.dtype()
            ),
        }
    }

    fn bytes_u8(path: &Path) -> (Vec<usize>, Vec<u8>) {
        match read_npy(path).unwrap() {
            NpyArray::U8 { shape, data } => (shape, data),
            other => panic!("{}: expected uint8, got {}", path.display(), other.dtype()),
        }
    }

    /// Largest |a − b| relative to max |b|.
    fn rel_error(a: &[Complex32], b: &[Complex32]) -> f32 {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().map(|v| v.norm()).fold(0.0f32, f32::max).max(1e-30);
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).norm())
            .fold(0.0f32, f32::max)
            / scale
    }

    /// Imports `input` with `extra` options and checks y.npy and mask.npy against the expected
    /// files (y to `tol` relative to its largest value).
    fn import_and_compare(input: &str, extra: &[&str], y_file: &str, mask_file: &str, tol: f32) {
        let tmp = TempDir::new("hdf5-import");
        let bundle = tmp.join("bundle");
        let mut a: Vec<std::ffi::OsString> = vec![
            "convert".into(),
            data(input).into(),
            bundle.clone().into(),
            "--kspace".into(),
        ];
        a.extend(extra.iter().map(|s| s.into()));
        let refs: Vec<&std::ffi::OsStr> = a.iter().map(|s| s.as_os_str()).collect();
        ok(&refs);
        let (shape, y) = complex(&bundle.join("y.npy"));
        let (want_shape, want) = complex(&data(y_file));
        assert_eq!(shape, want_shape, "{input}: y shape");
        let err = rel_error(&y, &want);
        assert!(
            err <= tol,
            "{input} {extra:?}: y differs from numpy by {err}"
        );
        let (mshape, mask) = bytes_u8(&bundle.join("mask.npy"));
        let (want_mshape, want_mask) = bytes_u8(&data(mask_file));
        assert_eq!(mshape, want_mshape, "{input}: mask shape");
        assert_eq!(mask, want_mask, "{input}: mask");
        // The bundle reads back (coil maps estimated from the calibration centre when C > 1).
        cinediff::io::bundle::read_bundle(&bundle).unwrap();
        // And reconstructs.
        let recon = tmp.join("recon");
        ok(args![
            "reconstruct",
            "--bundle",
            bundle,
            "--method",
            "zero-filled",
            "--out",
            recon
        ]);
    }

    #[test]
    fn fastmri_multicoil_becomes_a_slice_stack_with_the_files_mask() {
        // Fully sampled k-space + mask dataset = retrospective undersampling, exact values.
        import_and_compare(
            "fastmri_multicoil.h5",
            &[],
            "fastmri_multicoil_y.npy",
            "fastmri_multicoil_mask.npy",
            0.0,
        );
    }

    #[test]
    fn fastmri_slice_and_readout_crop_match_numpy() {
        let tmp = TempDir::new("hdf5-crop");
        let bundle = tmp.join("bundle");
        ok(args![
            "convert",
            data("fastmri_multicoil.h5"),
            bundle,
            "--kspace",
            "--slice",
            "1",
            "--crop-readout",
            "8"
        ]);
        let (shape, y) = complex(&bundle.join("y.npy"));
        let (want_shape, want) = complex(&data("fastmri_multicoil_slice1_crop8_y.npy"));
        assert_eq!(shape, [1, 2, 8, 8]);
        assert_eq!(shape, want_shape);
        let err = rel_error(&y, &want);
        assert!(err < 1e-5, "cropped y differs from numpy by {err}");
    }

    #[test]
    fn fastmri_single_coil_infers_the_mask_from_zero_columns() {
        import_and_compare(
            "fastmri_singlecoil.h5",
            &[],
            "fastmri_singlecoil_y.npy",
            "fastmri_singlecoil_mask.npy",
            0.0,
        );
    }

    #[test]
    fn ismrmrd_cine_assembles_phases_lines_averages_and_skips_noise_and_calibration() {
        import_and_compare(
            "ismrmrd_cine.h5",
            &[],
            "ismrmrd_cine_y.npy",
            "ismrmrd_cine_mask.npy",
            1e-7,
        );
        import_and_compare(
            "ismrmrd_cine.h5",
            &["--crop-readout", "8"],
            "ismrmrd_cine_crop8_y.npy",
            "ismrmrd_cine_mask.npy",
            1e-5,
        );
    }

    #[test]
    fn library_reports_kind_and_notes() {
        let read = read_hdf5_kspace(&data("ismrmrd_cine.h5"), &Hdf5Options::default()).unwrap();
        assert_eq!(read.kind, Hdf5Kind::Ismrmrd);
        assert_eq!(read.kspace.shape, [3, 2, 16, 8]);
        let notes = read.notes.join("\n");
        assert!(notes.contains("skipped 2 of 17"), "{notes}");
        assert!(notes.contains("3 frames from idx.phase"), "{notes}");
        assert!(notes.contains("averaged"), "{notes}");
        let read =
            read_hdf5_kspace(&data("fastmri_multicoil.h5"), &Hdf5Options::default()).unwrap();
        assert_eq!(read.kind, Hdf5Kind::FastMri);
        assert_eq!(read.kspace.shape, [3, 2, 16, 8]);
        assert!(
            read.notes.iter().any(|n| n.contains("CORPD_FBK")),
            "{:?}",
            read.notes
        );
        let one = read_hdf5_kspace(
            &data("fastmri_multicoil.h5"),
            &Hdf5Options {
                slice: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(one.kspace.shape, [1, 2, 16, 8]);
        assert_eq!(one.kspace.data[..], read.kspace.data[2 * 2 * 16 * 8..]);
    }

    #[test]
    fn malformed_files_fail_cleanly() {
        let tmp = TempDir::new("hdf5-bad");
        let out = tmp.join("bundle");
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                "fastmri_bad_rank.h5",
                &[],
                &["fastmri_bad_rank.h5", "kspace", "[4, 4]"],
            ),
            (
                "fastmri_real.h5",
                &[],
                &["fastmri_real.h5", "kspace", "expected complex"],
            ),
            (
                "fastmri_bad_mask.h5",
                &[],
                &["fastmri_bad_mask.h5", "mask", "[4]", "[5]"],
            ),
            (
                "neither.h5",
                &[],
                &["neither.h5", "fastmri", "ismrmrd", "image"],
            ),
            (
                "ismrmrd_bad_length.h5",
                &[],
                &["ismrmrd_bad_length.h5", "acquisition 1", "62 floats"],
            ),
            (
                "ismrmrd_bad_step.h5",
                &[],
                &["ismrmrd_bad_step.h5", "kspace_encode_step_1 40"],
            ),
            (
                "ismrmrd_noise_only.h5",
                &[],
                &["ismrmrd_noise_only.h5", "no imaging acquisitions"],
            ),
            (
                "ismrmrd_cine.h5",
                &["--slice", "3"],
                &["--slice", "[0]", "3"],
            ),
            (
                "fastmri_multicoil.h5",
                &["--slice", "3"],
                &["--slice", "0 to 2", "3"],
            ),
            (
                "fastmri_multicoil.h5",
                &["--crop-readout", "17"],
                &["--crop-readout", "1 to 16"],
            ),
            ("missing.h5", &[], &["missing.h5"]),
        ];
        for (file, extra, needles) in cases {
            let mut a: Vec<std::ffi::OsString> = vec![
                "convert".into(),
                data(file).into(),
                out.clone().into(),
                "--kspace".into(),
            ];
            a.extend(extra.iter().map(|s| s.into()));
            let refs: Vec<&std::ffi::OsStr> = a.iter().map(|s| s.as_os_str()).collect();
            fails(&refs, needles);
            assert!(!out.exists(), "{file}: no bundle on failure");
        }
        // Truncated and garbage files.
        let full = bytes(&data("fastmri_multicoil.h5"));
        for (name, content) in [
            ("truncated.h5", full[..full.len() / 2].to_vec()),
            ("header_only.h5", full[..600].to_vec()),
            ("garbage.h5", b"not an HDF5 file at all".to_vec()),
            ("empty.h5", Vec::new()),
        ] {
            let path = tmp.join(name);
            std::fs::write(&path, content).unwrap();
            fails(args!["convert", path, out, "--kspace"], &[name]);
            assert!(
                read_hdf5_kspace(&path, &Hdf5Options::default()).is_err(),
                "{name} read"
            );
        }
    }
}
