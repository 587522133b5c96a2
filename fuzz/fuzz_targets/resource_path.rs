//! cargo-fuzz target: `bosun_fuzz::resource_path` on every input (what it checks is documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bosun_fuzz::resource_path(data));
