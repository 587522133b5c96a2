//! `bosun down`: what k3s's `k3s-killall.sh` is to k3s. Once `bosun up` (or `bosun agent`)
//! has stopped, containers keep running under their shims by design, and the node keeps the
//! agent's network state. `bosun down` stops those containers (through their shims, or by
//! killing what is left in their cgroups when a shim is gone), releases pod sandboxes and
//! removes the pods' cgroups, unmounts whatever is still mounted under the data directory (volumes, pinned namespaces)
//! and removes the network state (`bosun_net::cleanup`: bridge, veths, routes, rule, the DNS
//! address, nftables tables).
//!
//! The data directory itself (the store, certificates, images, pod state) is kept: the next
//! `bosun up` starts the cluster's pods again, as after a reboot. It refuses while a `bosun
//! up`/`bosun server` holds the data directory or any `bosun up`/`bosun agent` runs in this
//! network namespace (they own the network state it would remove).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use bosun_runtime::cgroup::{pod_cgroup_path, QosClass};
use bosun_runtime::runtime::{Runtime, RuntimeConfig};
use bosun_runtime::spec::Status;

#[derive(clap::Args)]
pub(crate) struct DownArgs {
    /// `bosun up`'s data directory (its agent's is DATA_DIR/agent, which is also `bosun
    /// agent`'s default when DATA_DIR is the default).
    #[arg(long, env = "BOSUN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The agent's data directory, when it is not DATA_DIR/agent (`bosun agent --data-dir`).
    #[arg(long)]
    agent_data_dir: Option<PathBuf>,
    /// The Service ClusterIP range the agent used: the cluster DNS address (its tenth
    /// address, 10.96.0.10) is removed from `lo`.
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cluster_ip_range: String,
}

/// A reason to refuse, or a failure: one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct DownError(String);

pub(crate) async fn run(args: DownArgs) -> anyhow::Result<()> {
    if !bosun_kubelet::is_root() {
        anyhow::bail!(DownError(
            "bosun down needs root (it stops containers, unmounts and removes network state): \
             run it as root, e.g. `sudo bosun down`"
                .into()
        ));
    }
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(crate::default_data_dir);
    let service_cidr: bosun_net::ipnet::Ipv4Net =
        args.service_cluster_ip_range.parse().map_err(|_| {
            DownError(format!(
                "--service-cluster-ip-range {:?} is not an IPv4 CIDR",
                args.service_cluster_ip_range
            ))
        })?;
    // Held until the end, so that no `bosun up` starts on this data directory meanwhile.
    let _lock = check_not_in_use(&data_dir)?;
    if let Some((pid, what)) = running_node_process(Path::new("/proc"), std::process::id()) {
        anyhow::bail!(DownError(format!(
            "`bosun {what}` (pid {pid}) is still running on this host and owns its network \
             state: stop it first (Ctrl-C, or `kill {pid}`), then run bosun down again"
        )));
    }

    let mut failures = Vec::new();
    let agent_dir = args
        .agent_data_dir
        .clone()
        .unwrap_or_else(|| crate::up::agent_data_dir(&data_dir));
    let mut stopped = 0;
    if agent_dir.join("containers").is_dir() {
        let runtime = Runtime::new(RuntimeConfig::new(&agent_dir))
            .with_context(|| format!("opening the runtime in {}", agent_dir.display()))?;
        for c in runtime.list().context("listing containers")? {
            match stop_container(&runtime, &c) {
                Ok(true) => {
                    println!("stopped container {}", c.id);
                    stopped += 1;
                }
                Ok(false) => {}
                Err(e) => failures.push(format!("container {}: {e:#}", c.id)),
            }
        }
        let sandboxes = agent_dir.join("sandboxes");
        for entry in std::fs::read_dir(&sandboxes)
            .with_context(|| format!("reading {}", sandboxes.display()))?
            .flatten()
        {
            let id = entry.file_name().to_string_lossy().into_owned();
            match runtime.remove_sandbox(&id) {
                Ok(()) => println!("released sandbox {id}"),
                Err(e) => failures.push(format!("sandbox {id}: {e}")),
            }
        }
        // The pods' own cgroups (the kubelet removes them when a pod terminates; its
        // containers' are gone with them above).
        let pods = agent_dir.join("pods");
        for entry in std::fs::read_dir(&pods).into_iter().flatten().flatten() {
            let uid = entry.file_name().to_string_lossy().into_owned();
            for qos in [
                QosClass::Guaranteed,
                QosClass::Burstable,
                QosClass::BestEffort,
            ] {
                let path = pod_cgroup_path(qos, &uid);
                if !runtime
                    .cgroups()
                    .procs_files(&path)
                    .iter()
                    .any(|f| f.exists())
                {
                    continue;
                }
                match runtime.cgroups().remove(&path) {
                    Ok(()) => println!("removed cgroup {path}"),
                    Err(e) => failures.push(format!("cgroup {path}: {e}")),
                }
            }
        }
    }
    let mut unmounted = 0;
    for m in mounts_under(&data_dir)? {
        match unmount(&m) {
            Ok(()) => {
                println!("unmounted {}", m.display());
                unmounted += 1;
            }
            Err(e) => failures.push(format!("unmount {}: {e}", m.display())),
        }
    }
    let cfg = bosun_net::cleanup::CleanupConfig {
        // As the agent computes it (kubeadm's choice: the tenth address of the range).
        dns_ip: std::net::Ipv4Addr::from(u32::from(service_cidr.network()) + 10),
        ..Default::default()
    };
    let network = match bosun_net::cleanup::remove_node_network(&cfg).await {
        Ok(removed) => removed,
        Err(e) => {
            failures.push(format!("network: {e}"));
            Vec::new()
        }
    };
    for r in &network {
        println!("removed {r}");
    }
    if !failures.is_empty() {
        anyhow::bail!(DownError(format!(
            "{} left behind: {}",
            failures.len(),
            failures.join("; ")
        )));
    }
    println!(
        "bosun down: {stopped} containers stopped, {unmounted} mounts unmounted, {} network \
         items removed; {} keeps the cluster's state (the next `bosun up` starts its pods again)",
        network.len(),
        data_dir.display()
    );
    Ok(())
}

/// Refuses a data directory whose store another process holds (`bosun up`/`bosun server`);
/// otherwise holds its lock.
fn check_not_in_use(data_dir: &Path) -> Result<Option<std::fs::File>, DownError> {
    use std::os::fd::AsRawFd;
    let path = data_dir.join("db").join("lock");
    let file = match std::fs::OpenOptions::new().read(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(DownError(format!(
                "cannot open {}: {e}: pass the right --data-dir",
                path.display()
            )))
        }
    };
    // SAFETY: flock on a valid open descriptor, released when `file` is dropped.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(DownError(format!(
            "the data directory {} is in use by a running bosun (up or server): stop it first \
             (Ctrl-C), then run bosun down again",
            data_dir.display()
        )));
    }
    Ok(Some(file))
}

/// A `bosun up` or `bosun agent` process (not `me`) in this network namespace: (pid, verb).
fn running_node_process(proc: &Path, me: u32) -> Option<(u32, String)> {
    let own_net = std::fs::read_link(proc.join("self/ns/net")).ok();
    let entries = std::fs::read_dir(proc).ok()?;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let Some(verb) = node_verb(&cmdline) else {
            continue;
        };
        // Agents in network namespaces of their own (tests' nodes) own no host state.
        if std::fs::read_link(entry.path().join("ns/net")).ok() != own_net {
            continue;
        }
        return Some((pid, verb.to_string()));
    }
    None
}

/// `up` or `agent` if the command line is `.../bosun up|agent ...`.
fn node_verb(cmdline: &[u8]) -> Option<&'static str> {
    let mut args = cmdline.split(|b| *b == 0);
    let program = Path::new(OsStr::from_bytes(args.next()?));
    if program.file_name() != Some(OsStr::new("bosun")) {
        return None;
    }
    match args.next()? {
        b"up" => Some("up"),
        b"agent" => Some("agent"),
        _ => None,
    }
}

/// Stops one container and removes it (true), or only removes a stopped one (false).
fn stop_container(
    runtime: &Runtime,
    c: &bosun_runtime::spec::ContainerState,
) -> anyhow::Result<bool> {
    let live = match c.status {
        Status::Created | Status::Running => {
            runtime.delete(&c.id, true)?;
            return Ok(true);
        }
        Status::Stopped => false,
        // The shim is gone: whatever is left runs in the container's cgroup.
        Status::Unknown => {
            let cgroup = runtime.config(&c.id).ok().and_then(|cfg| cfg.cgroup_path);
            match cgroup {
                Some(p) => kill_cgroup(runtime, &p)?,
                None => false,
            }
        }
    };
    runtime.delete(&c.id, false)?;
    Ok(live)
}

/// SIGKILLs every process of a cgroup and waits until it is empty; true if there were any.
fn kill_cgroup(runtime: &Runtime, path: &str) -> anyhow::Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut killed = false;
    loop {
        let pids = runtime.cgroups().pids(path).unwrap_or_default();
        if pids.is_empty() {
            return Ok(killed);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "processes {pids:?} of cgroup {path} survive SIGKILL"
        );
        for pid in pids {
            // SAFETY: kill has no memory preconditions; the pid was just read from the cgroup.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Mount points at or under `dir`, deepest first (from /proc/self/mountinfo).
fn mounts_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = match std::fs::canonicalize(dir) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("resolving {}", dir.display())),
    };
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    Ok(mount_points_under(&info, &dir))
}

fn mount_points_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal escapes.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lazy unmount (`umount -l`): a mount still in use goes once its last user does.
fn unmount(path: &Path) -> std::io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: umount2 reads a valid NUL-terminated path.
    let rc = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    // Gone meanwhile (a parent's lazy unmount took it along).
    if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOENT)) {
        return Ok(());
    }
    Err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_under_a_directory_deepest_first() {
        let info = "\
22 1 0:21 / / rw - ext4 /dev/vda rw
40 22 0:4 net:[4026532] /tmp/d/agent/sandboxes/p1/net rw - nsfs nsfs rw
41 22 0:50 / /tmp/d/agent/pods/u1/volumes/kubernetes.io~empty-dir/a\\040b rw - tmpfs tmpfs rw
42 22 0:51 / /tmp/d rw - tmpfs tmpfs rw
43 22 0:52 / /tmp/dd/x rw - tmpfs tmpfs rw
";
        let got = mount_points_under(info, Path::new("/tmp/d"));
        assert_eq!(
            got,
            vec![
                PathBuf::from("/tmp/d/agent/pods/u1/volumes/kubernetes.io~empty-dir/a b"),
                PathBuf::from("/tmp/d/agent/sandboxes/p1/net"),
                PathBuf::from("/tmp/d"),
            ]
        );
    }

    #[test]
    fn only_bosun_up_and_agent_are_node_processes() {
        assert_eq!(
            node_verb(b"/usr/local/bin/bosun\0up\0--data-dir\0/x\0"),
            Some("up")
        );
        assert_eq!(node_verb(b"bosun\0agent\0"), Some("agent"));
        assert_eq!(node_verb(b"/usr/bin/bosun\0shim\0--dir\0/x\0"), None);
        assert_eq!(node_verb(b"/usr/bin/bosun\0down\0"), None);
        assert_eq!(node_verb(b"/usr/bin/not-bosun\0up\0"), None);
        assert_eq!(node_verb(b""), None);
    }

    #[test]
    fn a_running_process_is_found_in_the_same_network_namespace_only() {
        let proc = tempfile::tempdir().unwrap();
        let p = proc.path();
        let mk = |pid: &str, cmdline: &[u8], net: &str| {
            std::fs::create_dir_all(p.join(pid).join("ns")).unwrap();
            std::fs::write(p.join(pid).join("cmdline"), cmdline).unwrap();
            std::os::unix::fs::symlink(net, p.join(pid).join("ns/net")).unwrap();
        };
        std::fs::create_dir_all(p.join("self/ns")).unwrap();
        std::os::unix::fs::symlink("net:[1]", p.join("self/ns/net")).unwrap();
        mk("10", b"/x/bosun\0agent\0", "net:[2]");
        mk("11", b"/x/bosun\0shim\0", "net:[1]");
        mk("12", b"/x/bosun\0down\0", "net:[1]");
        assert_eq!(running_node_process(p, 12), None);
        mk("13", b"/x/bosun\0up\0", "net:[1]");
        assert_eq!(running_node_process(p, 12), Some((13, "up".into())));
        assert_eq!(running_node_process(p, 13), None);
    }

    #[test]
    fn a_held_data_directory_is_refused_in_one_line() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        assert!(check_not_in_use(dir.path()).unwrap().is_none());
        std::fs::create_dir_all(dir.path().join("db")).unwrap();
        let held = std::fs::File::create(dir.path().join("db/lock")).unwrap();
        // SAFETY: flock on a valid open descriptor.
        assert_eq!(
            unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
            0
        );
        let e = check_not_in_use(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("is in use by a running bosun") && !e.contains('\n'),
            "{e}"
        );
        drop(held);
        assert!(check_not_in_use(dir.path()).unwrap().is_some());
    }
}
