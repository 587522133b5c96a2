//! `bosun bench services` with tiny sizes runs end to end (root: it makes scratch network
//! namespaces), so the benchmark cannot rot. It checks what the run did, never how fast.

use std::process::Command;

#[test]
fn quick_bench_services_runs_end_to_end() {
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "bosun bench services needs root (network namespaces, nftables)"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_bosun"))
        .args([
            "bench",
            "services",
            "--services",
            "20,40",
            "--changes",
            "3",
            "--transfer-mib",
            "4",
            "--dns-seconds",
            "1",
            "--json",
        ])
        .env("BOSUN_LOG", "warn")
        .output()
        .expect("running bosun bench services");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    let p = r["programming"].as_array().expect("programming figures");
    assert_eq!(p.len(), 2, "{r}");
    assert_eq!(p[0]["services"], 20);
    assert_eq!(p[1]["endpoints"], 80);
    assert_eq!(p[1]["change"]["samples"], 3);
    assert!(
        r["throughput"]["direct_mib_s"].as_f64().unwrap_or(0.0) > 0.0,
        "{r}"
    );
    assert!(
        r["throughput"]["ratio"].as_f64().unwrap_or(0.0) > 0.0,
        "{r}"
    );
    assert!(r["dns"]["answered"].as_u64().unwrap_or(0) > 0, "{r}");
    assert!(r["machine"]["load_before"].is_string());
}
