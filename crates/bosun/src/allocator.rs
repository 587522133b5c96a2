//! The process's allocator: mimalloc. The API server allocates many small short-lived
//! values per request (JSON trees, headers, h2 frames); glibc's malloc showed up as a fifth
//! of the server's CPU in `perf` profiles of `bosun bench api`, mimalloc's thread-local free
//! lists make those allocations cheap.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
