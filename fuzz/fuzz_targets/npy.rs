//! `.npy` parsing: any bytes give an array whose size matches its shape, or an error.
#![no_main]

use cinediff::io::npy::{parse_npy, NpyArray};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(array) = parse_npy(data) {
        let count: usize = array.shape().iter().product();
        let len = match &array {
            NpyArray::Real { data, .. } => data.len(),
            NpyArray::Complex { data, .. } => data.len(),
            NpyArray::U8 { data, .. } => data.len(),
        };
        assert_eq!(count, len, "shape {:?}", array.shape());
    }
});
