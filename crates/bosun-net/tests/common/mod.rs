//! Test helpers: network namespaces created (and always deleted) by the test, and small TCP
//! servers and clients running on threads that entered a namespace. Traffic never leaves
//! namespaces the test created.
#![allow(dead_code)]
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Fails loudly unless running as root with `ip`, `nft` and `nsenter` available.
pub fn require_root_and_tools() {
    // SAFETY-free: geteuid through nix.
    assert!(
        nix::unistd::geteuid().is_root(),
        "bosun-net integration tests need root (network namespaces, netlink, nftables)"
    );
    for (tool, arg) in [("ip", "-V"), ("nft", "--version"), ("nsenter", "--version")] {
        let ok = Command::new(tool)
            .arg(arg)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(ok, "`{tool}` is missing: run scripts/install-net.sh (apt-get install -y nftables iproute2)");
    }
}

/// A named network namespace (`ip netns add bosun-test-…`), deleted on drop.
pub struct Netns {
    pub name: String,
    pub path: PathBuf,
}

impl Netns {
    pub fn new(tag: &str) -> Self {
        let name = format!("bosun-test-{tag}-{:08x}", rand::random::<u32>());
        run("ip", &["netns", "add", &name]);
        let ns = Self {
            path: PathBuf::from(format!("/var/run/netns/{name}")),
            name,
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NAME ARGS…`, panicking on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut a = vec!["-n", &self.name];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// `ip netns exec NAME CMD…` output (not checked).
    pub fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .expect("ip netns exec")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `f` on a thread inside the namespace at `ns`.
pub fn in_netns<T: Send + 'static>(ns: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_path_buf();
    std::thread::spawn(move || {
        bosun_net::netns::enter(&ns).expect("enter netns");
        f()
    })
    .join()
    .expect("netns thread")
}

/// A TCP server inside `ns` on 0.0.0.0:`port` answering every connection with `ident`
/// (the thread lives as long as the test process; the namespace's deletion ends it).
pub fn echo_server(ns: &Path, port: u16, ident: &str) {
    let ns = ns.to_path_buf();
    let ident = ident.to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        bosun_net::netns::enter(&ns).expect("enter netns");
        let l = TcpListener::bind(("0.0.0.0", port)).expect("bind echo server");
        tx.send(()).expect("signal");
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.write_all(ident.as_bytes());
        }
    });
    rx.recv().expect("echo server started");
}

/// Connects from inside `ns` and reads what the server says.
pub fn tcp_get(ns: &Path, addr: SocketAddr) -> std::io::Result<String> {
    in_netns(ns, move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })
}

pub fn node(name: &str, pod_cidr: &str, ip: &str) -> k8s_openapi::api::core::v1::Node {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}]}
    }))
    .expect("node")
}
