//! NIfTI-1 parsing: any bytes give an image whose values match its header, or an error.
#![no_main]

use cinediff::io::nifti::parse_nifti;
use cinediff::io::npy::NpyArray;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = parse_nifti(data) {
        let len = match &image.array {
            NpyArray::Real { data, .. } => data.len(),
            NpyArray::Complex { data, .. } => data.len(),
            NpyArray::U8 { data, .. } => data.len(),
        };
        assert_eq!(len, image.header.voxels());
        assert_eq!(image.array.shape().iter().product::<usize>(), len);
    }
});
