//! The process's allocator: mimalloc. The API server allocates many small short-lived
//! values per request (JSON trees, headers, h2 frames); glibc's malloc showed up as a fifth
//! of the server's CPU in `perf` profiles of `bosun bench api`, mimalloc's thread-local free
//! lists make those allocations cheap.
//!
//! Built with mimalloc's `no_thp`: otherwise it asks for transparent huge pages on its
//! arenas (`MADV_HUGEPAGE`), and on a machine whose THP mode is `madvise` an idle `bosun up`
//! then held 54 MiB of anonymous memory instead of 26 MiB (`MIMALLOC_ALLOW_THP=0` showed the
//! same: 117 → 89 MiB RSS), most of it in huge pages only partly used.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
