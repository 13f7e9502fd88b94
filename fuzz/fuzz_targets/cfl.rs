//! BART `.hdr` + `.cfl` parsing. The input's first byte splits it: that many bytes (mod the
//! length) of header text, the rest `.cfl` data. A parsed array converts to row-major and back
//! unchanged.
#![no_main]

use cinediff::io::cfl::{parse_cfl, Cfl};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let split = if rest.is_empty() {
        0
    } else {
        n as usize % (rest.len() + 1)
    };
    let (hdr, body) = rest.split_at(split);
    if let Ok(cfl) = parse_cfl(hdr, body) {
        let (shape, layout, values) = cfl.to_row_major();
        assert_eq!(shape.iter().product::<usize>(), values.len());
        let back = Cfl::from_row_major(&shape, &layout, &values).expect("own layout");
        assert_eq!(back.dims, cfl.dims);
        let bits = |c: &Cfl| {
            c.data
                .iter()
                .map(|v| (v.re.to_bits(), v.im.to_bits()))
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&back), bits(&cfl));
    }
});
