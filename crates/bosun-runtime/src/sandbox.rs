//! A pod sandbox: the network, IPC and UTS namespaces its containers share, held open by bind
//! mounts of their ns files (`DIR/{net,ipc,uts}`, as `ip netns add` does) rather than by a
//! pause process: nothing to supervise, no memory per pod.
use std::fs::File;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Error, Result};
use crate::spec::JoinNamespaces;

/// The namespaces pinned for one pod.
pub const NAMESPACES: [&str; 3] = ["net", "ipc", "uts"];

/// A created sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    pub id: String,
    pub dir: PathBuf,
}

impl Sandbox {
    /// What its containers join.
    pub fn namespaces(&self) -> JoinNamespaces {
        JoinNamespaces {
            net: Some(self.dir.join("net")),
            ipc: Some(self.dir.join("ipc")),
            uts: Some(self.dir.join("uts")),
            pid: None,
        }
    }

    /// Path of the pinned network namespace (for the pod network to configure).
    pub fn netns(&self) -> PathBuf {
        self.dir.join("net")
    }
}

/// Runs in the helper process the runtime spawned (`bosun shim sandbox`, single-threaded):
/// moves into new net/IPC/UTS namespaces, sets the hostname, brings loopback up, and
/// bind-mounts its ns files into `dir`.
pub(crate) fn pin_namespaces(dir: &Path, hostname: Option<&str>) -> Result<()> {
    nix::sched::unshare(
        nix::sched::CloneFlags::CLONE_NEWNET
            | nix::sched::CloneFlags::CLONE_NEWIPC
            | nix::sched::CloneFlags::CLONE_NEWUTS,
    )
    .map_err(Error::sys("unshare net, ipc and uts namespaces"))?;
    if let Some(h) = hostname {
        nix::unistd::sethostname(h).map_err(Error::sys(format!("set hostname {h}")))?;
    }
    loopback_up()?;
    for ns in NAMESPACES {
        let target = dir.join(ns);
        File::create(&target).map_err(Error::io("create", &target))?;
        let source = format!("/proc/self/ns/{ns}");
        mount(
            Some(source.as_str()),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(Error::sys(format!("bind {source} on {}", target.display())))?;
    }
    Ok(())
}

/// Unmounts the pinned namespaces (they die with their last user) and removes `dir`.
pub(crate) fn unpin(dir: &Path) -> Result<()> {
    for ns in NAMESPACES {
        let target = dir.join(ns);
        match umount2(&target, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => {
                return Err(Error::Sys {
                    op: format!("unmount {}", target.display()),
                    source: e,
                })
            }
        }
    }
    crate::fsutil::remove_dir_all(dir)
}

fn loopback_up() -> Result<()> {
    // SAFETY: a plain datagram socket for the interface ioctls; closed below.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(Error::io("socket for", "lo")(
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo".iter().enumerate() {
        ifr.ifr_name[i] = *b as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we pass, which lives across
    // the calls; the union member used is ifru_flags, as the ioctls define.
    let rc = unsafe {
        let mut rc = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut ifr);
        if rc == 0 {
            ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            rc = libc::ioctl(sock, libc::SIOCSIFFLAGS, &ifr);
        }
        rc
    };
    let err = std::io::Error::last_os_error();
    // SAFETY: closing the socket we opened.
    unsafe { libc::close(sock) };
    if rc != 0 {
        return Err(Error::io("bring up", "lo")(err));
    }
    Ok(())
}
