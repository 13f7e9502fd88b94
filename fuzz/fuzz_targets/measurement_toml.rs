//! `measurement.toml` parsing: any text gives a spec or an error; a spec that validates is
//! written and parsed back unchanged.
#![no_main]

use cinediff::io::bundle::{parse_spec, spec_to_toml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = parse_spec(text) {
        if spec.validate().is_ok() {
            let again = spec_to_toml(&spec).expect("a valid spec serialises");
            assert_eq!(parse_spec(&again).expect("own output parses"), spec);
        }
    }
});
