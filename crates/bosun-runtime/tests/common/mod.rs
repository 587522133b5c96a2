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
