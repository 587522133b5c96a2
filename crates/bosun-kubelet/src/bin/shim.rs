//! Stand-alone shim binary for this crate's tests (a test binary cannot be the shim); `bosun
//! shim` calls the same entry point.
fn main() {
    std::process::exit(bosun_runtime::shim::main(
        std::env::args().skip(1).collect(),
    ));
}
