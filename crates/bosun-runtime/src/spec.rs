//! What a container is made of: the caller's [`ContainerSpec`] (Kubernetes' view: command/args
//! overrides, env, user), the resolved [`ContainerConfig`] the shim runs (stored as
//! `config.json`), and the [`ContainerState`] the shim records (`state.json`).
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cgroup::{CgroupVersion, Resources};
use crate::error::{Error, Result};
use crate::image::Image;

/// The capabilities containerd grants by default (`oci.defaultUnixCaps`), which is what a
/// Kubernetes container gets without `securityContext.capabilities`.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Paths containerd masks (bind /dev/null or an empty read-only tmpfs over them).
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths containerd makes read-only.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Namespaces a container joins instead of creating its own (paths to ns files, e.g. a
/// sandbox's bind-mounted ones). `None` means a new namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinNamespaces {
    pub net: Option<PathBuf>,
    pub ipc: Option<PathBuf>,
    pub uts: Option<PathBuf>,
    /// Set for `shareProcessNamespace`.
    pub pid: Option<PathBuf>,
}

/// A bind mount into the container (volumes, `/etc/hosts`, `/etc/resolv.conf`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub source: PathBuf,
    pub destination: String,
    #[serde(default)]
    pub readonly: bool,
}

/// What a caller asks for, with Kubernetes' semantics.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Container id: 1-64 of `[a-zA-Z0-9_.-]`.
    pub id: String,
    pub image: String,
    /// `command` (replaces the image's entrypoint, and then its cmd too).
    pub command: Option<Vec<String>>,
    /// `args` (replaces the image's cmd).
    pub args: Option<Vec<String>>,
    /// `NAME=value`, appended to (and overriding) the image's env.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    /// `runAsUser` / `runAsGroup`; otherwise the image's `User`.
    pub run_as_user: Option<u32>,
    pub run_as_group: Option<u32>,
    pub supplemental_groups: Vec<u32>,
    pub hostname: Option<String>,
    pub namespaces: JoinNamespaces,
    /// Relative cgroup path (see [`crate::cgroup::pod_cgroup_path`]); `None` = no cgroup.
    pub cgroup_path: Option<String>,
    pub resources: Resources,
    /// Where the shim writes the CRI log; default `DIR/container.log`.
    pub log_path: Option<PathBuf>,
    pub mounts: Vec<Mount>,
    pub readonly_rootfs: bool,
    pub privileged: bool,
    /// `!allowPrivilegeEscalation`.
    pub no_new_privileges: bool,
    /// Replaces the default capability set (`CAP_*` names).
    pub capabilities: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
    /// `stdin`: the container's stdin is a pipe the shim holds, fed by attach clients
    /// (otherwise /dev/null).
    pub stdin: bool,
    /// `stdinOnce`: stdin is closed when the first attach client is done with it.
    pub stdin_once: bool,
}

/// A user as uid, gid and supplementary groups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Everything the shim needs, resolved; `DIR/config.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub id: String,
    pub image: String,
    pub image_id: String,
    /// Diff ids in use (the image store's collector reads them).
    pub layers: Vec<String>,
    /// Unpacked layers, bottom first.
    pub layer_dirs: Vec<PathBuf>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: User,
    pub hostname: Option<String>,
    pub namespaces: JoinNamespaces,
    pub cgroup_root: PathBuf,
    pub cgroup_version: CgroupVersion,
    pub cgroup_path: Option<String>,
    pub resources: Resources,
    pub log_path: PathBuf,
    pub mounts: Vec<Mount>,
    pub readonly_rootfs: bool,
    pub privileged: bool,
    pub no_new_privileges: bool,
    pub capabilities: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub created_at: String,
    /// See [`ContainerSpec::stdin`]; absent in configs written before attach existed.
    #[serde(default)]
    pub stdin: bool,
    #[serde(default)]
    pub stdin_once: bool,
}

/// A container's lifecycle: `Created` → `Running` → `Stopped`; `Unknown` when its shim died
/// without recording an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Created,
    Running,
    Stopped,
    Unknown,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Unknown => "unknown",
        })
    }
}

/// `DIR/state.json`, written by the shim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    pub status: Status,
    /// Host pid of the container's first process.
    pub pid: i32,
    pub shim_pid: i32,
    /// Start time of the shim (field 22 of /proc/PID/stat) so a reused pid is not mistaken
    /// for it.
    pub shim_start_time: u64,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub exit_code: Option<i32>,
    /// `Completed`, `Error`, `OOMKilled` (as Kubernetes reports them), or why it failed.
    pub reason: Option<String>,
    pub message: Option<String>,
}

pub(crate) fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_owned()))
    }
}

/// Kubernetes' rules: command replaces entrypoint (and drops the image cmd); args replace cmd.
pub fn resolve_args(
    entrypoint: &[String],
    cmd: &[String],
    command: Option<&[String]>,
    args: Option<&[String]>,
) -> Vec<String> {
    match (command, args) {
        (Some(c), Some(a)) => c.iter().chain(a).cloned().collect(),
        (Some(c), None) => c.to_vec(),
        (None, Some(a)) => entrypoint.iter().chain(a).cloned().collect(),
        (None, None) => entrypoint.iter().chain(cmd).cloned().collect(),
    }
}

/// Image env, then the spec's, a later `NAME=` replacing an earlier one in place.
pub fn merge_env(image: &[String], extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in image.iter().chain(extra) {
        let key = e.split('=').next().unwrap_or(e);
        match out
            .iter_mut()
            .find(|o| o.split('=').next().unwrap_or(o) == key)
        {
            Some(slot) => *slot = e.clone(),
            None => out.push(e.clone()),
        }
    }
    if !out.iter().any(|e| e.starts_with("PATH=")) {
        out.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    out
}

/// Finds `name` in `etc/passwd` or `etc/group` of the layers (topmost first).
fn lookup(layers: &[PathBuf], file: &str, name: &str) -> Option<(u32, Option<u32>)> {
    for dir in layers.iter().rev() {
        let Ok(s) = std::fs::read_to_string(dir.join(file)) else {
            continue;
        };
        for line in s.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 3 && f[0] == name {
                let id = f[2].parse().ok()?;
                let gid = f.get(3).and_then(|g| g.parse().ok());
                return Some((id, gid));
            }
        }
        return None;
    }
    None
}

/// Resolves an image's `User` (`uid`, `uid:gid`, `name`, `name:group`) against the layers,
/// then applies runAsUser/runAsGroup.
pub fn resolve_user(image: &Image, spec: &ContainerSpec) -> Result<User> {
    let image_user = image
        .config
        .config()
        .as_ref()
        .and_then(|c| c.user().clone())
        .unwrap_or_default();
    let (u, g) = match image_user.split_once(':') {
        Some((u, g)) => (u.to_owned(), Some(g.to_owned())),
        None => (image_user.clone(), None),
    };
    let bad = |what: &str| Error::InvalidImage {
        what: image.reference.clone(),
        msg: format!("unknown {what} in image user {image_user:?}"),
    };
    let (mut uid, mut gid) = if u.is_empty() {
        (0, 0)
    } else if let Ok(n) = u.parse::<u32>() {
        (
            n,
            lookup(&image.layer_dirs, "etc/passwd", &u)
                .and_then(|x| x.1)
                .unwrap_or(0),
        )
    } else {
        let (uid, gid) = lookup(&image.layer_dirs, "etc/passwd", &u).ok_or_else(|| bad("user"))?;
        (uid, gid.unwrap_or(0))
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                lookup(&image.layer_dirs, "etc/group", &g)
                    .ok_or_else(|| bad("group"))?
                    .0
            }
        };
    }
    if let Some(u) = spec.run_as_user {
        uid = u;
        if spec.run_as_group.is_none() && u != 0 && g_is_default(&image_user) {
            gid = 0;
        }
    }
    if let Some(g) = spec.run_as_group {
        gid = g;
    }
    Ok(User {
        uid,
        gid,
        additional_gids: spec.supplemental_groups.clone(),
    })
}

fn g_is_default(image_user: &str) -> bool {
    !image_user.contains(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn kubernetes_command_args_rules() {
        let ep = v(&["/ep"]);
        let cmd = v(&["a"]);
        assert_eq!(resolve_args(&ep, &cmd, None, None), v(&["/ep", "a"]));
        assert_eq!(resolve_args(&ep, &cmd, Some(&v(&["sh"])), None), v(&["sh"]));
        assert_eq!(
            resolve_args(&ep, &cmd, None, Some(&v(&["b"]))),
            v(&["/ep", "b"])
        );
        assert_eq!(
            resolve_args(&ep, &cmd, Some(&v(&["sh"])), Some(&v(&["-c", "x"]))),
            v(&["sh", "-c", "x"])
        );
    }

    #[test]
    fn env_merges_by_name() {
        let e = merge_env(&v(&["PATH=/bin", "A=1"]), &v(&["A=2", "B=3"]));
        assert_eq!(e, v(&["PATH=/bin", "A=2", "B=3"]));
        assert!(merge_env(&[], &[])[0].starts_with("PATH="));
    }

    #[test]
    fn ids() {
        assert!(check_id("abc-1.2_3").is_ok());
        assert!(check_id("").is_err());
        assert!(check_id("../x").is_err());
        assert!(check_id(&"a".repeat(65)).is_err());
    }
}
