//! cargo-fuzz target: `bosun_fuzz::label_selector` on every input (what it checks is documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bosun_fuzz::label_selector(data));
