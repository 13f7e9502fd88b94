//! `measurement.toml` parsing: any text gives a spec or an error; a spec that validates is
//! written, and that text parses to a spec written as the same text (compared as text, since
//! fields the operator does not use may hold NaN, which is not equal to itself).
#![no_main]

use cinediff::io::bundle::{parse_spec, spec_to_toml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = parse_spec(text) {
        if spec.validate().is_ok() {
            let text = spec_to_toml(&spec).expect("a valid spec serialises");
            let again = parse_spec(&text).expect("own output parses");
            assert_eq!(spec_to_toml(&again).expect("serialises again"), text);
        }
    }
});
