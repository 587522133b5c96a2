//! `bosun-shim`: the per-container supervisor (and exec/sandbox helper) as a small program of
//! its own, installed next to `bosun`. The runtime prefers it to `bosun shim` (same code,
//! `bosun_runtime::shim::main`) because a shim lives as long as its container: this binary
//! links only the runtime's shim code and keeps the system allocator, so each shim maps a
//! fraction of the pages the whole `bosun` binary (and mimalloc's first arena) would dirty.
fn main() {
    std::process::exit(bosun_runtime::shim::main(
        std::env::args().skip(1).collect(),
    ));
}
