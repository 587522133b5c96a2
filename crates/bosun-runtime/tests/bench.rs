//! Runs the lifecycle benchmark briefly (figures printed, never asserted) and, if crun or runc
//! is installed (`apt-get install crun`), the same lifecycle with it on the same image.
mod common;

use bosun_runtime::bench::{bench_lifecycle, bench_oci_runtime, find_oci_runtime, write_bundle};
use common::*;

#[test]
fn lifecycle_benchmark_runs() {
    let data = tempfile::tempdir().unwrap();
    let rt = runtime_with_busybox(data.path());
    let n: usize = std::env::var("BOSUN_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let ours = bench_lifecycle(&rt, BUSYBOX, n).unwrap();
    eprintln!("bench: {}", serde_json::to_string(&ours).unwrap());
    assert_eq!(ours.n, n);
    assert!(rt.list().unwrap().is_empty());
    if let Some(oci) = find_oci_runtime() {
        let bundle = data.path().join("bundle");
        write_bundle(&rt, BUSYBOX, &bundle).unwrap();
        // The comparison is informational: an OCI runtime that cannot run on this host (crun
        // 1.8 refuses hybrid cgroup v1/v2 hosts) is reported, not a failure of ours.
        match bench_oci_runtime(&oci, &bundle, n) {
            Ok(theirs) => {
                eprintln!("bench: {}", serde_json::to_string(&theirs).unwrap());
                eprintln!(
                    "bench: bosun/{} median ratio {:.2}",
                    theirs.runtime,
                    ours.median_ms / theirs.median_ms
                );
            }
            Err(e) => eprintln!("bench: {} not comparable here: {e}", oci.display()),
        }
    } else {
        eprintln!("bench: no crun or runc installed; `apt-get install crun` for the comparison");
    }
}
