//! Running another process in a running container (`kubectl exec`, exec probes).
//!
//! The agent is multithreaded (tokio), and joining a mount namespace or making `setns` on a
//! PID namespace take effect needs a single-threaded process that forks. So the runtime
//! spawns a helper, the shim program with `exec --dir DIR [--tty] -- CMD...`, whose stdio is
//! the caller's pipes or a pty slave. The helper (single-threaded, see [`main`]) reads the
//! container's `config.json` and `state.json`, joins its cgroup and its IPC, UTS, network,
//! PID, cgroup and mount namespaces (from `/proc/<pid>/ns`), changes root to the container's
//! (`/proc/<pid>/root`) and its working directory, forks, and the child drops to the
//! container's user, groups, capabilities and `no_new_privs` (as the container's own init
//! does), takes the tty as its controlling terminal, and execs the command with the
//! container's env. The helper exits with the command's exit code (128 + signal when it was
//! killed), and the child dies with the helper (`PR_SET_PDEATHSIG`), so an abandoned exec
//! leaves nothing behind. This is what `runc exec` does, without a second daemon.
use std::fs::{self, File};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sched::{setns, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

use crate::error::{Error, Result};
use crate::fsutil;
use crate::runtime::Runtime;
use crate::spec::{ContainerConfig, ContainerState, Status};

/// Namespaces an exec joins, in this order (mount last: the others are opened through the
/// host's `/proc` beforehand anyway, but the root change must come after it).
const NAMESPACES: [&str; 6] = ["ipc", "uts", "net", "pid", "cgroup", "mnt"];

/// Exit code of the helper when the command could not be found (as a shell's).
pub const EXIT_NOT_FOUND: i32 = 127;
/// Exit code of the helper when the command could not be started for another reason.
pub const EXIT_CANNOT_RUN: i32 = 126;

impl Runtime {
    /// The command that runs `cmd` inside the running container `id`; the caller sets its
    /// stdio (pipes, or the slave of [`open_pty`] with `tty`) and spawns it. Its exit status
    /// is the command's.
    pub fn exec_command(&self, id: &str, cmd: &[String], tty: bool) -> Result<Command> {
        if cmd.is_empty() {
            return Err(Error::Other("exec: no command given".into()));
        }
        let st = self.state(id)?;
        if st.status != Status::Running {
            return Err(Error::BadState {
                id: id.to_owned(),
                state: st.status.to_string(),
                op: "exec in it",
            });
        }
        let mut c = self.shim_command();
        c.arg("exec").arg("--dir").arg(self.dir(id)?);
        if tty {
            c.arg("--tty");
        }
        c.arg("--").args(cmd);
        Ok(c)
    }
}

impl Runtime {
    /// A connection to the container's attach socket (see [`crate::shim::ATTACH_SOCKET`]
    /// for its framing); `None` when its shim has none (started before attach existed).
    pub fn attach(&self, id: &str) -> Result<Option<std::os::unix::net::UnixStream>> {
        crate::shim::connect_attach(&self.dir(id)?)
    }
}

/// A new pseudo-terminal: (master, slave).
pub fn open_pty() -> Result<(OwnedFd, OwnedFd)> {
    let p = nix::pty::openpty(None, None).map_err(Error::sys("openpty"))?;
    Ok((p.master, p.slave))
}

/// Sets a terminal's size (what a `resize` message of `kubectl exec -t` asks for).
pub fn set_window_size(tty: &impl AsFd, width: u16, height: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize struct that lives across the call.
    let r = unsafe { libc::ioctl(tty.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if r != 0 {
        return Err(Error::Sys {
            op: "TIOCSWINSZ".into(),
            source: nix::Error::last(),
        });
    }
    Ok(())
}

/// Entry point of `shim exec --dir DIR [--tty] -- CMD...`; returns the exit code. Must run
/// single-threaded (it joins a mount namespace and forks).
pub fn main(args: &[String]) -> i32 {
    let mut dir = None;
    let mut tty = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dir" => dir = it.next().map(PathBuf::from),
            "--tty" => tty = true,
            "--" => break,
            other => {
                eprintln!("bosun shim exec: unknown argument {other:?}");
                return 2;
            }
        }
    }
    let cmd: Vec<String> = it.cloned().collect();
    let Some(dir) = dir.filter(|_| !cmd.is_empty()) else {
        eprintln!("usage: bosun shim exec --dir DIR [--tty] -- CMD [ARG...]");
        return 2;
    };
    match run(&dir, tty, &cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("exec failed: {e}");
            EXIT_CANNOT_RUN
        }
    }
}

fn run(dir: &Path, tty: bool, cmd: &[String]) -> Result<i32> {
    let cfg: ContainerConfig = fsutil::read_json(&dir.join("config.json"))?;
    let st: ContainerState = fsutil::read_json(&dir.join("state.json"))?;
    if st.status != Status::Running || st.pid <= 0 {
        return Err(Error::BadState {
            id: cfg.id.clone(),
            state: st.status.to_string(),
            op: "exec in it",
        });
    }
    let proc_dir = PathBuf::from(format!("/proc/{}", st.pid));
    let mut namespaces = Vec::new();
    for ns in NAMESPACES {
        let p = proc_dir.join("ns").join(ns);
        namespaces.push((ns, File::open(&p).map_err(Error::io("open", &p))?));
    }
    let root_path = proc_dir.join("root");
    let root = File::open(&root_path).map_err(Error::io("open", &root_path))?;
    if let Some(path) = &cfg.cgroup_path {
        let mgr = crate::cgroup::manager(cfg.cgroup_version, &cfg.cgroup_root);
        for f in mgr.procs_files(path) {
            fs::write(&f, "0").map_err(Error::io("join cgroup", &f))?;
        }
    }
    for (name, f) in &namespaces {
        setns(f.as_fd(), CloneFlags::empty()).map_err(Error::sys(format!(
            "join {name} namespace of pid {}",
            st.pid
        )))?;
    }
    drop(namespaces);
    nix::unistd::fchdir(&root).map_err(Error::sys("enter the container's root"))?;
    nix::unistd::chroot(".").map_err(Error::sys("chroot to the container's root"))?;
    drop(root);
    if nix::unistd::chdir(cfg.cwd.as_str()).is_err() {
        nix::unistd::chdir("/").map_err(Error::sys("chdir /"))?;
    }
    let mut env = cfg.env.clone();
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    // SAFETY: the helper is single-threaded (the contract of `main`).
    match unsafe { fork() }.map_err(Error::sys("fork exec process"))? {
        ForkResult::Child => {
            let err = child(&cfg, tty, cmd, &env);
            eprintln!("exec failed: {err}");
            let code = if err.contains("not found in $PATH") || err.contains("No such file") {
                EXIT_NOT_FOUND
            } else {
                EXIT_CANNOT_RUN
            };
            // SAFETY: leaving the forked child without running the helper's destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, c)) => return Ok(c),
                Ok(WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as i32),
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("wait for the exec process")(e)),
            }
        },
    }
}

/// The forked child: session, controlling tty, credentials, exec. Returns only on failure.
fn child(cfg: &ContainerConfig, tty: bool, cmd: &[String], env: &[String]) -> String {
    if let Err(e) = nix::unistd::setsid() {
        return format!("setsid: {e}");
    }
    if tty {
        // SAFETY: TIOCSCTTY on our stdin, the pty slave the caller gave us.
        if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
            return format!("set controlling tty: {}", std::io::Error::last_os_error());
        }
    }
    if let Err(e) = crate::init::drop_privileges(cfg) {
        return e;
    }
    // After the credential change (which clears it): die with the helper.
    if let Err(e) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL) {
        return format!("PR_SET_PDEATHSIG: {e}");
    }
    match crate::init::exec_with(cmd, env) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_rejects_bad_usage() {
        assert_eq!(main(&["--dir".into(), "/nonexistent".into()]), 2);
        assert_eq!(main(&["--bogus".into()]), 2);
        // A container directory without state cannot be entered.
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            main(&[
                "--dir".into(),
                d.path().display().to_string(),
                "--".into(),
                "true".into()
            ]),
            EXIT_CANNOT_RUN
        );
    }

    #[test]
    fn pty_window_size() {
        let (m, s) = open_pty().unwrap();
        set_window_size(&m, 120, 40).unwrap();
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one winsize into a live struct.
        let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        assert_eq!(r, 0);
        assert_eq!((ws.ws_col, ws.ws_row), (120, 40));
    }
}
