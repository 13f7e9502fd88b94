//! PNG / APNG decoding (8- and 16-bit greyscale): any bytes give levels within the bit depth, or
//! an error.
#![no_main]

use cinediff::io::png::parse_png;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = parse_png(data) {
        assert_eq!(image.shape.iter().product::<usize>(), image.data.len());
        let top = if image.bit_depth == 8 { 255.0 } else { 65535.0 };
        assert!(image.data.iter().all(|&v| (0.0..=top).contains(&v)));
    }
});
