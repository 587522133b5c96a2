//! `bosun bench api --quick` with tiny sizes runs end to end against a real `bosun server`
//! child process, so the benchmark cannot rot. It checks what the run did, never how fast.

use std::process::Command;

#[test]
fn quick_bench_runs_end_to_end() {
    let out = Command::new(env!("CARGO_BIN_EXE_bosun"))
        .args([
            "bench",
            "api",
            "--quick",
            "--pods",
            "40",
            "--watchers",
            "20",
            "--watch-connections",
            "3",
            "--clients",
            "2,4",
            "--gets",
            "200",
            "--get-callers",
            "8",
            "--get-connections",
            "2",
            "--watch-writes",
            "3",
            "--list-runs",
            "1",
            "--baseline-inserts",
            "20",
            "--etcd",
            "auto",
            "--json",
        ])
        .env("BOSUN_LOG", "warn")
        .output()
        .expect("running bosun bench api");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bosun bench api failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let json = &stdout[stdout.find('{').expect("JSON on stdout")..];
    let r: serde_json::Value = serde_json::from_str(json).expect("the report is JSON");

    let s = &r["sqlite"];
    assert!(s["error"].is_null(), "{}", s["error"]);
    assert!(s["raw_store_per_sec"].as_f64().unwrap() > 0.0);
    let creates = s["creates"].as_array().unwrap();
    assert_eq!(creates.len(), 2);
    let created: u64 = creates.iter().map(|c| c["pods"].as_u64().unwrap()).sum();
    assert_eq!(created, 40);
    for c in creates {
        assert_eq!(c["failures"]["count"], 0, "{}", c["failures"]["first"]);
        assert_eq!(c["latency"]["samples"], c["pods"]);
    }
    assert_eq!(s["gets"]["requests"], 200);
    assert_eq!(s["gets"]["failures"]["count"], 0);
    let lists = s["lists"].as_array().unwrap();
    assert_eq!(lists.len(), 3);
    for l in lists {
        assert!(l["items"].as_u64().unwrap() >= 40, "{l}");
    }
    // 40 pods in pages of 500 is one page.
    assert_eq!(lists[1]["pages"], 1);
    let f = &s["fanout"];
    assert_eq!(f["incomplete_writes"], 0, "{f}");
    assert_eq!(f["after_response"]["samples"], 3);
    assert!(f["memory_with_watchers"]["rss_mib"].as_f64().unwrap() > 0.0);
    for m in ["rss_idle", "rss_at_pods", "rss_after_lists", "rss_end"] {
        assert!(s[m]["rss_mib"].as_f64().unwrap() > 0.0, "{m}");
    }
    assert_eq!(r["verdicts"].as_array().unwrap().len(), 4);

    // The etcd column is there when etcd is installed, else the report says why not.
    match r["etcd"].as_object() {
        Some(e) => {
            assert!(e["error"].is_null(), "{}", e["error"]);
            let created: u64 = e["creates"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["pods"].as_u64().unwrap())
                .sum();
            assert_eq!(created, 40);
        }
        None => assert!(r["etcd_missing"].is_string()),
    }
}
