//! cargo-fuzz target: `bosun_fuzz::quantity` on every input (what it checks is documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bosun_fuzz::quantity(data));
