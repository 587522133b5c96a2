//! Helpers for the integration tests: root check, test images.
#![allow(dead_code)]
use std::path::PathBuf;
use std::process::Command;
use std::sync::Once;

/// Fails loudly (never skips) when not root: these tests mount, unshare and write cgroups.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "bosun-runtime integration tests must run as root (they mount overlays, create \
         namespaces and cgroups); run them with sudo or as root in CI"
    );
}

/// Builds the test images once (scripts/build-test-images.sh is idempotent) and returns their
/// directory.
pub fn images_dir() -> PathBuf {
    static BUILD: Once = Once::new();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    BUILD.call_once(|| {
        let status = Command::new("bash")
            .arg(root.join("scripts/build-test-images.sh"))
            .status()
            .expect("run scripts/build-test-images.sh");
        assert!(status.success(), "scripts/build-test-images.sh failed");
    });
    let dir = std::env::var_os("BOSUN_IMAGES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or("/root".into()))
                .join(".cache/bosun/images")
        });
    assert!(
        dir.join("busybox.oci.tar").is_file(),
        "no busybox.oci.tar in {}",
        dir.display()
    );
    dir
}

pub const BUSYBOX: &str = "bosun.test/busybox:latest";

use bosun_runtime::{Runtime, RuntimeConfig};

/// A runtime over `data` whose shim is this crate's `bosun-runtime-shim` binary.
pub fn runtime(data: &std::path::Path) -> Runtime {
    let mut cfg = RuntimeConfig::new(data);
    cfg.shim_program = PathBuf::from(env!("CARGO_BIN_EXE_bosun-runtime-shim"));
    cfg.shim_args = vec![];
    Runtime::new(cfg).expect("runtime")
}

/// A runtime with the busybox image imported.
pub fn runtime_with_busybox(data: &std::path::Path) -> Runtime {
    require_root();
    let rt = runtime(data);
    rt.images()
        .import(&images_dir().join("busybox.oci.tar"), None)
        .expect("import busybox");
    rt
}

pub fn sh(id: &str, script: &str) -> bosun_runtime::ContainerSpec {
    bosun_runtime::ContainerSpec {
        id: id.into(),
        image: BUSYBOX.into(),
        command: Some(vec!["sh".into(), "-c".into(), script.into()]),
        ..Default::default()
    }
}

/// The text of the CRI log's records for one stream.
pub fn log_lines(path: &std::path::Path, stream: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(bosun_runtime::logs::parse_line)
        .filter(|(_, s, _, _)| *s == stream)
        .map(|(_, _, _, t)| t.to_owned())
        .collect()
}
