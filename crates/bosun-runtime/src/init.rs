//! The container's first process before it becomes the workload: runs in the shim's forked
//! child (pid 1 of the new PID namespace), builds the container's world and execs.
//!
//! Order matters and follows runc's: join the cgroup, join or create namespaces, mount the
//! overlay rootfs and the API filesystems, pivot_root, mask paths, report ready, wait for
//! `start`, then drop privileges (bounding set, keepcaps, ids, capabilities, no_new_privs) and
//! exec. Any failure is written to the sync pipe as `E<message>` before `_exit`.
use std::ffi::CString;
use std::fs;
use std::os::fd::{AsFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use crate::spec::{ContainerConfig, MASKED_PATHS, READONLY_PATHS};

/// File descriptors the child inherits from the shim.
pub(crate) struct InitFds {
    /// The read end of the shim's stdin pipe; `None` means /dev/null.
    pub stdin: Option<RawFd>,
    pub stdout: RawFd,
    pub stderr: RawFd,
    /// Child → shim: `R` when ready, `E<msg>` on failure; close-on-exec, so EOF after a
    /// successful exec.
    pub sync: RawFd,
    /// Shim → child: one byte means start, EOF means give up.
    pub start: RawFd,
}

type R<T> = std::result::Result<T, String>;

fn ctx<T, E: std::fmt::Display>(
    r: std::result::Result<T, E>,
    what: impl FnOnce() -> String,
) -> R<T> {
    r.map_err(|e| format!("{}: {e}", what()))
}

fn write_all(fd: RawFd, data: &[u8]) {
    let mut off = 0;
    while off < data.len() {
        // SAFETY: fd is an open pipe we own; the pointer and length describe a live slice.
        let n = unsafe { libc::write(fd, data[off..].as_ptr().cast(), data.len() - off) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        off += n as usize;
    }
}

/// Runs in the forked child; never returns.
pub(crate) fn run(
    cfg: &ContainerConfig,
    rootfs: &Path,
    upper: &Path,
    work: &Path,
    fds: InitFds,
) -> ! {
    let err = match setup(cfg, rootfs, upper, work, &fds) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    write_all(fds.sync, format!("E{err}").as_bytes());
    // SAFETY: terminating the forked child without running the parent's destructors.
    unsafe { libc::_exit(127) }
}

enum Never {}

fn setup(
    cfg: &ContainerConfig,
    rootfs: &Path,
    upper: &Path,
    work: &Path,
    fds: &InitFds,
) -> R<Never> {
    // stdio: stdin from the shim's pipe or /dev/null, stdout/stderr to the shim's pipes.
    let devnull = ctx(fs::File::open("/dev/null"), || "open /dev/null".into())?;
    // SAFETY: plain dup2 on descriptors this process owns.
    unsafe {
        use std::os::fd::AsRawFd;
        libc::dup2(fds.stdin.unwrap_or(devnull.as_raw_fd()), 0);
        libc::dup2(fds.stdout, 1);
        libc::dup2(fds.stderr, 2);
    }
    drop(devnull);

    // cgroup first, so everything below is accounted to the container.
    if let Some(path) = &cfg.cgroup_path {
        let mgr = crate::cgroup::manager(cfg.cgroup_version, &cfg.cgroup_root);
        for f in mgr.procs_files(path) {
            ctx(fs::write(&f, "0"), || {
                format!("join cgroup {}", f.display())
            })?;
        }
    }

    // Namespaces: join the sandbox's, create the rest.
    let mut new = CloneFlags::CLONE_NEWNS;
    for (path, flag, name) in [
        (&cfg.namespaces.net, CloneFlags::CLONE_NEWNET, "net"),
        (&cfg.namespaces.ipc, CloneFlags::CLONE_NEWIPC, "ipc"),
        (&cfg.namespaces.uts, CloneFlags::CLONE_NEWUTS, "uts"),
    ] {
        match path {
            Some(p) => {
                let f = ctx(fs::File::open(p), || {
                    format!("open {name} namespace {}", p.display())
                })?;
                ctx(setns(f.as_fd(), flag), || {
                    format!("join {name} namespace {}", p.display())
                })?;
            }
            None => new |= flag,
        }
    }
    if cfg.cgroup_path.is_some() {
        new |= CloneFlags::CLONE_NEWCGROUP;
    }
    ctx(unshare(new), || format!("unshare {new:?}"))?;
    if cfg.namespaces.uts.is_none() {
        if let Some(h) = &cfg.hostname {
            ctx(nix::unistd::sethostname(h), || format!("set hostname {h}"))?;
        }
    }

    // Nothing we mount may propagate back to the host.
    ctx(
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_SLAVE,
            None::<&str>,
        ),
        || "make / a slave mount".into(),
    )?;
    mount_rootfs(cfg, rootfs, upper, work)?;
    mount_api_filesystems(cfg, rootfs)?;
    for m in &cfg.mounts {
        bind_mount(rootfs, &m.source, &m.destination, m.readonly)?;
    }
    if let Some(cwd) = Some(&cfg.cwd).filter(|c| !c.is_empty()) {
        let _ = fs::create_dir_all(rootfs.join(cwd.trim_start_matches('/')));
    }
    pivot(rootfs)?;
    if !cfg.privileged {
        for p in MASKED_PATHS {
            mask(p)?;
        }
        for p in READONLY_PATHS {
            readonly(p)?;
        }
    }
    if cfg.readonly_rootfs {
        ctx(
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
                None::<&str>,
            ),
            || "remount / read-only".into(),
        )?;
    }

    // Ready; wait for start.
    write_all(fds.sync, b"R");
    let mut b = [0u8; 1];
    // SAFETY: reading one byte into a live buffer from our pipe.
    let n = unsafe { libc::read(fds.start, b.as_mut_ptr().cast(), 1) };
    if n != 1 {
        // SAFETY: the shim is gone or gave up; leave without running destructors.
        unsafe { libc::_exit(1) }
    }
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(fds.start) };

    ctx(nix::unistd::setsid(), || "setsid".into())?;
    drop_privileges(cfg)?;
    if !cfg.cwd.is_empty() {
        ctx(nix::unistd::chdir(cfg.cwd.as_str()), || {
            format!("chdir {}", cfg.cwd)
        })?;
    }
    exec(cfg)
}

fn mount_rootfs(cfg: &ContainerConfig, rootfs: &Path, upper: &Path, work: &Path) -> R<()> {
    // overlay's lowerdir lists the top layer first. Relative to the layers' parent directory
    // (we chdir there) so many layers fit in the one-page mount options.
    let lowers: Vec<String> = cfg
        .layer_dirs
        .iter()
        .rev()
        .map(|d| {
            d.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let parent = cfg
        .layer_dirs
        .first()
        .and_then(|d| d.parent())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let (lowers, empty) = if lowers.is_empty() {
        // overlay needs a lower layer: an image without layers gets an empty one.
        let empty = rootfs.with_file_name("empty");
        let _ = fs::create_dir_all(&empty);
        (vec![empty.display().to_string()], true)
    } else {
        (lowers, false)
    };
    if !empty {
        ctx(nix::unistd::chdir(&parent), || {
            format!("chdir {}", parent.display())
        })?;
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        upper.display(),
        work.display()
    );
    ctx(
        mount(
            Some("overlay"),
            rootfs,
            Some("overlay"),
            MsFlags::empty(),
            Some(opts.as_str()),
        ),
        || format!("mount overlay on {} ({opts})", rootfs.display()),
    )?;
    Ok(())
}

fn mkdir_in(rootfs: &Path, dest: &str) -> R<PathBuf> {
    let p = rootfs.join(dest.trim_start_matches('/'));
    ctx(fs::create_dir_all(&p), || format!("create {}", p.display()))?;
    Ok(p)
}

fn mount_api_filesystems(cfg: &ContainerConfig, rootfs: &Path) -> R<()> {
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let m = |src: &str, dest: &str, fstype: &str, flags: MsFlags, data: Option<&str>| -> R<()> {
        let target = mkdir_in(rootfs, dest)?;
        ctx(mount(Some(src), &target, Some(fstype), flags, data), || {
            format!("mount {fstype} on {}", target.display())
        })
    };
    m("proc", "/proc", "proc", nosuid_nodev_noexec, None)?;
    let sys_flags = if cfg.privileged {
        nosuid_nodev_noexec
    } else {
        nosuid_nodev_noexec | MsFlags::MS_RDONLY
    };
    m("sysfs", "/sys", "sysfs", sys_flags, None)?;
    m(
        "tmpfs",
        "/dev",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    let dev = rootfs.join("dev");
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let p = dev.join(name);
        ctx(
            mknod(
                &p,
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o666),
                makedev(major, minor),
            ),
            || format!("mknod {}", p.display()),
        )?;
        // mknod honours the umask; the modes must be exact.
        ctx(
            fs::set_permissions(&p, fs::Permissions::from_mode(0o666)),
            || format!("chmod {}", p.display()),
        )?;
    }
    m(
        "devpts",
        "/dev/pts",
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    m(
        "shm",
        "/dev/shm",
        "tmpfs",
        nosuid_nodev_noexec,
        Some("mode=1777,size=65536k"),
    )?;
    m("mqueue", "/dev/mqueue", "mqueue", nosuid_nodev_noexec, None)?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ] {
        ctx(std::os::unix::fs::symlink(target, dev.join(link)), || {
            format!("symlink /dev/{link}")
        })?;
    }
    Ok(())
}

/// Bind-mounts `source` at `dest` inside the rootfs, creating a file or directory to mount on.
/// The destination is resolved inside the rootfs: a symlink in the image must not send the
/// mount elsewhere on the host.
fn bind_mount(rootfs: &Path, source: &Path, dest: &str, readonly: bool) -> R<()> {
    let rel = dest.trim_start_matches('/');
    if Path::new(rel)
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(format!("mount destination {dest} has .."));
    }
    let target = rootfs.join(rel);
    let is_dir = ctx(fs::metadata(source), || {
        format!("stat mount source {}", source.display())
    })?
    .is_dir();
    if let Some(parent) = target.parent() {
        ctx(fs::create_dir_all(parent), || {
            format!("create {}", parent.display())
        })?;
        let real = ctx(fs::canonicalize(parent), || {
            format!("resolve {}", parent.display())
        })?;
        let root = ctx(fs::canonicalize(rootfs), || {
            format!("resolve {}", rootfs.display())
        })?;
        if !real.starts_with(&root) {
            return Err(format!(
                "mount destination {dest} resolves outside the container"
            ));
        }
    }
    if is_dir {
        let _ = fs::create_dir_all(&target);
    } else if fs::symlink_metadata(&target).is_err() {
        ctx(fs::File::create(&target), || {
            format!("create {}", target.display())
        })?;
    }
    ctx(
        mount(
            Some(source),
            &target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ),
        || format!("bind {} on {}", source.display(), target.display()),
    )?;
    if readonly {
        ctx(
            mount(
                None::<&str>,
                &target,
                None::<&str>,
                MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
                None::<&str>,
            ),
            || format!("remount {} read-only", target.display()),
        )?;
    }
    Ok(())
}

fn pivot(rootfs: &Path) -> R<()> {
    ctx(nix::unistd::chdir(rootfs), || {
        format!("chdir {}", rootfs.display())
    })?;
    ctx(nix::unistd::pivot_root(".", "."), || "pivot_root".into())?;
    // The old root is now stacked under the new one at "."; detach it.
    ctx(
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        ),
        || "make old root a slave".into(),
    )?;
    ctx(umount2(".", MntFlags::MNT_DETACH), || {
        "detach old root".into()
    })?;
    ctx(nix::unistd::chdir("/"), || "chdir /".into())?;
    Ok(())
}

fn mask(path: &str) -> R<()> {
    let md = match fs::metadata(path) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    let r = if md.is_dir() {
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
    } else {
        mount(
            Some("/dev/null"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    };
    ctx(r, || format!("mask {path}"))
}

fn readonly(path: &str) -> R<()> {
    if fs::metadata(path).is_err() {
        return Ok(());
    }
    ctx(
        mount(
            Some(path),
            path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ),
        || format!("bind {path}"),
    )?;
    ctx(
        mount(
            Some(path),
            path,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_REC,
            None::<&str>,
        ),
        || format!("remount {path} read-only"),
    )
}

pub(crate) fn drop_privileges(cfg: &ContainerConfig) -> R<()> {
    use caps::{CapSet, Capability, CapsHashSet};
    let keep: CapsHashSet = if cfg.privileged {
        caps::all()
    } else {
        cfg.capabilities
            .iter()
            .map(|c| {
                c.parse::<Capability>()
                    .map_err(|e| format!("capability {c}: {e}"))
            })
            .collect::<R<_>>()?
    };
    for c in caps::all() {
        if !keep.contains(&c) && caps::has_cap(None, CapSet::Bounding, c).unwrap_or(false) {
            ctx(caps::drop(None, CapSet::Bounding, c), || {
                format!("drop {c} from bounding set")
            })?;
        }
    }
    // Keep the permitted set across setuid; we set the final sets right after.
    ctx(nix::sys::prctl::set_keepcaps(true), || {
        "PR_SET_KEEPCAPS".into()
    })?;
    let gids: Vec<nix::unistd::Gid> = cfg
        .user
        .additional_gids
        .iter()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    ctx(nix::unistd::setgroups(&gids), || "setgroups".into())?;
    let gid = nix::unistd::Gid::from_raw(cfg.user.gid);
    let uid = nix::unistd::Uid::from_raw(cfg.user.uid);
    ctx(nix::unistd::setresgid(gid, gid, gid), || {
        format!("setgid {gid}")
    })?;
    ctx(nix::unistd::setresuid(uid, uid, uid), || {
        format!("setuid {uid}")
    })?;
    ctx(nix::sys::prctl::set_keepcaps(false), || {
        "PR_CLEAR_KEEPCAPS".into()
    })?;
    ctx(caps::clear(None, CapSet::Ambient), || {
        "clear ambient capabilities".into()
    })?;
    // Effective first: it must stay a subset of permitted at every step.
    ctx(caps::set(None, CapSet::Effective, &keep), || {
        "set effective capabilities".into()
    })?;
    ctx(caps::set(None, CapSet::Permitted, &keep), || {
        "set permitted capabilities".into()
    })?;
    ctx(caps::set(None, CapSet::Inheritable, &keep), || {
        "set inheritable capabilities".into()
    })?;
    if cfg.no_new_privileges {
        ctx(nix::sys::prctl::set_no_new_privs(), || {
            "PR_SET_NO_NEW_PRIVS".into()
        })?;
    }
    Ok(())
}

/// Finds the program like execvp, but in the container's PATH (from its env, not ours).
fn find_program(args: &[String], env: &[String]) -> R<PathBuf> {
    let arg0 = args
        .first()
        .ok_or("no command: the image has no entrypoint or cmd and none was given")?;
    if arg0.contains('/') {
        return Ok(PathBuf::from(arg0));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let p = Path::new(dir).join(arg0);
        if let Ok(md) = fs::metadata(&p) {
            if md.is_file() && md.permissions().mode() & 0o111 != 0 {
                return Ok(p);
            }
        }
    }
    Err(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    ))
}

fn exec(cfg: &ContainerConfig) -> R<Never> {
    exec_with(&cfg.args, &cfg.env).map(|n| match n {})
}

/// Execs `args` with `env` (PATH looked up in `env`); returns only on failure.
pub(crate) fn exec_with(args: &[String], env: &[String]) -> R<std::convert::Infallible> {
    let prog = find_program(args, env)?;
    let cstr = |s: &[u8]| CString::new(s).map_err(|_| "nul byte in command or env".to_string());
    let prog_c = cstr(prog.as_os_str().as_bytes())?;
    let argv: Vec<CString> = args.iter().map(|a| cstr(a.as_bytes())).collect::<R<_>>()?;
    let envp: Vec<CString> = env.iter().map(|e| cstr(e.as_bytes())).collect::<R<_>>()?;
    // The shim blocks SIGCHLD for its signalfd; the workload starts with a clean mask and
    // default dispositions.
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
    let e = nix::unistd::execve(&prog_c, &argv, &envp).unwrap_err();
    Err(format!("exec {}: {e}", prog.display()))
}
