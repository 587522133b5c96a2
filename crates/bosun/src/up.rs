//! `bosun up`: a one-node cluster in one process — the API server on the embedded store with
//! its controllers, scheduler and node IPAM (what `bosun server` runs), plus the agent for this
//! machine (what `bosun agent` runs), joined over loopback with the node token.
//!
//! Ctrl-C (SIGINT/SIGTERM) stops the control plane and the agent but leaves containers running
//! under their shims, as k3s leaves containerd's shims running when it stops (k3s-killall.sh
//! is its separate "stop everything"): stopping the cluster manager must not take workloads
//! down, and the next `bosun up` on the same data directory adopts them.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use k8s_openapi::api::core::v1::{Node, Service};
use kube::Api;

/// Version of the data directory's layout; a newer bosun that changes it bumps this, and an
/// older one refuses the directory instead of misreading it.
pub(crate) const DATA_VERSION: u32 = 1;
const VERSION_FILE: &str = "version";

#[derive(clap::Args)]
pub(crate) struct UpArgs {
    /// Every `bosun server` flag (`--data-dir`, `--secure-port`, ...) applies.
    #[command(flatten)]
    server: crate::ServerArgs,
    /// The Node's name (default: the hostname).
    #[arg(long)]
    node_name: Option<String>,
    /// The node's InternalIP (default: the first non-loopback IPv4 address).
    #[arg(long)]
    node_ip: Option<IpAddr>,
    /// Port of the kubelet HTTPS API (0 picks a free one).
    #[arg(long, default_value_t = 10250)]
    kubelet_port: u16,
    /// Never pull: images must be imported (`bosun image import --data-dir DATA_DIR/agent`).
    #[arg(long)]
    disable_image_pull: bool,
    /// Registries the agent pulls from over plain HTTP (`host:port`).
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
    /// No pod network, service proxy or cluster DNS (as `bosun agent --disable-network`).
    #[arg(long)]
    disable_network: bool,
    /// The agent's hard eviction thresholds (as `bosun agent --eviction-hard`; default
    /// upstream's `memory.available<100Mi,nodefs.available<10%`).
    #[arg(long)]
    eviction_hard: Option<String>,
    /// Disk use at which the agent removes unused images (as `bosun agent
    /// --image-gc-high-threshold`; default 85, 100 turns image GC off).
    #[arg(long)]
    image_gc_high_threshold: Option<u8>,
    /// Disk use that image GC frees down to (as `bosun agent --image-gc-low-threshold`).
    #[arg(long)]
    image_gc_low_threshold: Option<u8>,
    /// Rotate a container's log past this size (as `bosun agent --container-log-max-size`).
    #[arg(long)]
    container_log_max_size: Option<String>,
    /// Log files kept per container (as `bosun agent --container-log-max-files`).
    #[arg(long)]
    container_log_max_files: Option<usize>,
}

/// Builds `bosun agent`'s arguments from flags, so that new agent flags get their defaults.
#[derive(Parser)]
struct AgentCli {
    #[command(flatten)]
    agent: crate::AgentArgs,
}

/// A newcomer's problem: one line saying what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Preflight(String);

/// The agent's data directory inside `bosun up`'s.
pub(crate) fn agent_data_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("agent")
}

pub(crate) async fn run(mut args: UpArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let data_dir = args
        .server
        .data_dir
        .clone()
        .unwrap_or_else(crate::default_data_dir);
    preflight(&args, &data_dir)?;
    args.server.data_dir = Some(data_dir.clone());
    // The agent's network uses the server's ranges.
    let cluster_cidr = args.server.cluster_cidr.clone();
    let service_range = args.server.service_cluster_ip_range.clone();
    let running = crate::start_server(args.server).await?;
    let url = running.server.url.clone();
    let kubeconfig = running.server.kubeconfig.clone();
    let node_name = args.node_name.clone().unwrap_or_else(crate::hostname);

    let agent_dir = agent_data_dir(&data_dir);
    // No --server/--token/--server-ca: the agent gets its client from here (below).
    let mut argv: Vec<String> = vec![
        "agent".into(),
        "--data-dir".into(),
        agent_dir.display().to_string(),
        "--node-name".into(),
        node_name.clone(),
        "--kubelet-port".into(),
        args.kubelet_port.to_string(),
        "--cluster-cidr".into(),
        cluster_cidr,
        "--service-cluster-ip-range".into(),
        service_range,
    ];
    if args.disable_network {
        argv.push("--disable-network".into());
    }
    if let Some(ip) = args.node_ip {
        argv.extend(["--node-ip".into(), ip.to_string()]);
    }
    if args.disable_image_pull {
        argv.push("--disable-image-pull".into());
    }
    for r in &args.insecure_registries {
        argv.extend(["--insecure-registry".into(), r.clone()]);
    }
    if let Some(e) = &args.eviction_hard {
        argv.extend(["--eviction-hard".into(), e.clone()]);
    }
    if let Some(p) = args.image_gc_high_threshold {
        argv.extend(["--image-gc-high-threshold".into(), p.to_string()]);
    }
    if let Some(p) = args.image_gc_low_threshold {
        argv.extend(["--image-gc-low-threshold".into(), p.to_string()]);
    }
    if let Some(s) = &args.container_log_max_size {
        argv.extend(["--container-log-max-size".into(), s.clone()]);
    }
    if let Some(n) = args.container_log_max_files {
        argv.extend(["--container-log-max-files".into(), n.to_string()]);
    }
    let agent_args = AgentCli::try_parse_from(argv)
        .context("building the agent's arguments")?
        .agent;
    // The agent runs in this process: it talks to the server over the loopback transport, as
    // the user its node token would make it over the network.
    use bosun_apiserver::tls;
    let agent_user = tls::UserInfo {
        name: tls::NODE_BOOTSTRAP_USER.into(),
        groups: vec![tls::NODES_GROUP.into(), tls::ALL_AUTHENTICATED.into()],
        uid: tls::NODE_BOOTSTRAP_USER.into(),
    };
    let agent_client =
        kube::Client::new(running.server.loopback().with_user(agent_user), "default");
    let ca_pem = running.server.pki.ca_cert_pem.clone();
    let mut agent = tokio::spawn(crate::run_agent_with(agent_args, agent_client, ca_pem));

    let client = crate::loopback_client(&running.server);
    let outcome = tokio::select! {
        r = wait_ready(&client, &node_name) => r.map(|()| true),
        r = &mut agent => Err(agent_ended(r)),
        _ = crate::shutdown_signal() => Ok(false),
    };
    let ready = match outcome {
        Ok(ready) => ready,
        Err(e) => {
            agent.abort();
            running.stop().await;
            return Err(e);
        }
    };
    if ready {
        let ms = started.elapsed().as_millis();
        println!("bosun is up: node {node_name} Ready in {ms} ms; API server {url}");
        println!("kubeconfig: {}", kubeconfig.display());
        println!("  export KUBECONFIG={}", kubeconfig.display());
        println!("  kubectl get nodes        # or: bosun ctl get nodes");
        println!(
            "images: bosun image import --data-dir {} FILE",
            agent_dir.display()
        );
        println!("Ctrl-C stops bosun; containers keep running and the next `bosun up` adopts them");
        let result = tokio::select! {
            r = &mut agent => Err(agent_ended(r)),
            _ = crate::shutdown_signal() => Ok(()),
        };
        println!(
            "bosun stopping; containers keep running (`bosun down --data-dir {}` stops them \
             and removes the network state)",
            data_dir.display()
        );
        agent.abort();
        running.stop().await;
        return result;
    }
    agent.abort();
    running.stop().await;
    Ok(())
}

fn agent_ended(r: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Error {
    match r {
        Ok(Ok(())) => anyhow::anyhow!("the agent stopped"),
        Ok(Err(e)) => e,
        Err(e) => anyhow::anyhow!("the agent stopped: {e}"),
    }
}

/// Waits until the Node is Ready and the `kubernetes` Service exists.
async fn wait_ready(client: &kube::Client, node_name: &str) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    loop {
        let node_ready = match nodes.get_opt(node_name).await {
            Ok(Some(n)) => n
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True"),
            _ => false,
        };
        if node_ready && matches!(services.get_opt("kubernetes").await, Ok(Some(_))) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the preflight checks look at on the host: gathered once by [`Host::detect`], and
/// made up in tests for each problem a newcomer can have.
struct Host {
    root: bool,
    /// Where `nft` was found, if anywhere.
    nft: Option<PathBuf>,
    /// The text of /proc/filesystems.
    filesystems: String,
    /// The cgroup filesystem's mount point (/sys/fs/cgroup).
    cgroup_root: PathBuf,
}

impl Host {
    fn detect() -> Host {
        Host {
            root: bosun_kubelet::is_root(),
            nft: find_program("nft"),
            filesystems: std::fs::read_to_string("/proc/filesystems").unwrap_or_default(),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
        }
    }
}

/// Checks, in the order a newcomer meets them, what would otherwise fail deep inside.
fn preflight(args: &UpArgs, data_dir: &Path) -> Result<(), Preflight> {
    check_host(&Host::detect())?;
    check_data_version(data_dir)?;
    let bind = args.server.bind_address;
    check_port(bind, args.server.secure_port, "--secure-port")?;
    check_port(bind, args.kubelet_port, "--kubelet-port")
}

/// Root, nftables, overlayfs and cgroups: each missing one is one line saying what to do.
fn check_host(host: &Host) -> Result<(), Preflight> {
    if !host.root {
        return Err(Preflight(
            "bosun up needs root: it runs containers (mounts, namespaces, cgroups) and programs \
             the network; run it as root, e.g. `sudo bosun up`"
                .into(),
        ));
    }
    if host.nft.is_none() {
        return Err(Preflight(
            "nftables' `nft` command was not found (bosun programs Services with it): install it \
             with `apt-get install nftables` (or scripts/install-net.sh)"
                .into(),
        ));
    }
    if !has_overlay(&host.filesystems) {
        return Err(Preflight(
            "the kernel has no overlayfs (containers' root filesystems need it): load it with \
             `modprobe overlay`"
                .into(),
        ));
    }
    if let Some(missing) = missing_cgroups(&host.cgroup_root) {
        return Err(Preflight(format!(
            "cgroups are missing ({missing} not found under {}): mount the cgroup \
             filesystem (v2: `mount -t cgroup2 none /sys/fs/cgroup`) or enable the controller",
            host.cgroup_root.display()
        )));
    }
    Ok(())
}

/// Refuses a data directory written by a newer bosun; records ours in a fresh or older one.
pub(crate) fn check_data_version(data_dir: &Path) -> Result<(), Preflight> {
    let path = data_dir.join(VERSION_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let found: u32 = s.trim().parse().map_err(|_| {
                Preflight(format!(
                    "{} does not hold a bosun data version (found {:?}): pass another --data-dir",
                    path.display(),
                    s.trim()
                ))
            })?;
            if found > DATA_VERSION {
                return Err(Preflight(format!(
                    "the data directory {} is from a newer bosun (data version {found}, this \
                     bosun reads up to {DATA_VERSION}): run that newer bosun, or pass another \
                     --data-dir",
                    data_dir.display()
                )));
            }
            if found == DATA_VERSION {
                return Ok(());
            }
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Preflight(format!(
                "cannot read {}: {e}: check the permissions of --data-dir",
                path.display()
            )))
        }
    }
    std::fs::create_dir_all(data_dir)
        .and_then(|()| std::fs::write(&path, format!("{DATA_VERSION}\n")))
        .map_err(|e| {
            Preflight(format!(
                "cannot write {}: {e}: pass a writable --data-dir",
                path.display()
            ))
        })
}

fn check_port(bind: IpAddr, port: u16, flag: &str) -> Result<(), Preflight> {
    if port == 0 {
        return Ok(());
    }
    match TcpListener::bind(SocketAddr::new(bind, port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AddrInUse => Err(Preflight(format!(
            "port {port} is already in use (another `bosun up`, `bosun server` or Kubernetes \
             running? `ss -ltnp 'sport = :{port}'` shows which process): stop it, or pass \
             {flag} with a free port"
        ))),
        Err(e) => Err(Preflight(format!(
            "cannot listen on {bind}:{port}: {e}: pass another --bind-address or {flag}"
        ))),
    }
}

/// `prog` on $PATH or in the sbin directories (root's tools live there even when PATH
/// lacks them).
fn find_program(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

fn has_overlay(proc_filesystems: &str) -> bool {
    proc_filesystems
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"))
}

/// The first cgroup controller the runtime needs that the host lacks (v1 or v2).
fn missing_cgroups(root: &Path) -> Option<&'static str> {
    let needed = ["cpu", "memory", "pids"];
    if let Ok(controllers) = std::fs::read_to_string(root.join("cgroup.controllers")) {
        let have: Vec<&str> = controllers.split_whitespace().collect();
        return needed.into_iter().find(|c| !have.contains(c));
    }
    needed.into_iter().find(|c| !root.join(c).is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_version_is_written_then_checked() {
        let dir = tempfile::tempdir().unwrap();
        check_data_version(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(VERSION_FILE)).unwrap(),
            format!("{DATA_VERSION}\n")
        );
        check_data_version(dir.path()).unwrap();
        std::fs::write(dir.path().join(VERSION_FILE), "99\n").unwrap();
        let e = check_data_version(dir.path()).unwrap_err().to_string();
        assert!(e.contains("newer bosun (data version 99"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        std::fs::write(dir.path().join(VERSION_FILE), "garbage").unwrap();
        assert!(check_data_version(dir.path()).is_err());
    }

    #[test]
    fn port_in_use_is_one_line() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let e = check_port("127.0.0.1".parse().unwrap(), port, "--secure-port")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("port {port} is already in use")),
            "{e}"
        );
        assert!(e.contains("--secure-port") && !e.contains('\n'), "{e}");
        drop(l);
        check_port("127.0.0.1".parse().unwrap(), port, "--secure-port").unwrap();
    }

    /// Every problem issue 6 names gets one line that says what is wrong and what to do.
    #[test]
    fn each_host_problem_is_one_line_with_a_remedy() {
        let cg = tempfile::tempdir().unwrap();
        for c in ["cpu", "memory", "pids"] {
            std::fs::create_dir(cg.path().join(c)).unwrap();
        }
        let good = || Host {
            root: true,
            nft: Some(PathBuf::from("/usr/sbin/nft")),
            filesystems: "nodev\tsysfs\nnodev\toverlay\n".into(),
            cgroup_root: cg.path().to_path_buf(),
        };
        check_host(&good()).unwrap();
        let no_cgroups = tempfile::tempdir().unwrap();
        let cases: [(Host, &str, &str); 4] = [
            (
                Host {
                    root: false,
                    ..good()
                },
                "needs root",
                "sudo bosun up",
            ),
            (
                Host {
                    nft: None,
                    ..good()
                },
                "`nft` command was not found",
                "apt-get install nftables",
            ),
            (
                Host {
                    filesystems: "nodev\tsysfs\n\text4\n".into(),
                    ..good()
                },
                "no overlayfs",
                "modprobe overlay",
            ),
            (
                Host {
                    cgroup_root: no_cgroups.path().to_path_buf(),
                    ..good()
                },
                "cgroups are missing (cpu not found",
                "mount -t cgroup2",
            ),
        ];
        for (host, what, remedy) in cases {
            let e = check_host(&host).unwrap_err().to_string();
            assert!(e.contains(what) && e.contains(remedy), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn overlay_and_cgroups_detection() {
        assert!(has_overlay("nodev\tsysfs\nnodev\toverlay\n"));
        assert!(!has_overlay("nodev\tsysfs\n\text4\n"));
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(
            v2.path().join("cgroup.controllers"),
            "cpuset cpu io memory\n",
        )
        .unwrap();
        assert_eq!(missing_cgroups(v2.path()), Some("pids"));
        std::fs::write(v2.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        assert_eq!(missing_cgroups(v2.path()), None);
        let v1 = tempfile::tempdir().unwrap();
        std::fs::create_dir(v1.path().join("cpu")).unwrap();
        assert_eq!(missing_cgroups(v1.path()), Some("memory"));
        std::fs::create_dir(v1.path().join("memory")).unwrap();
        std::fs::create_dir(v1.path().join("pids")).unwrap();
        assert_eq!(missing_cgroups(v1.path()), None);
    }
}
