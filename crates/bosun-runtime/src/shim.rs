//! The shim: one small supervising process per container (`bosun shim --dir DIR`).
//!
//! It daemonizes (so the agent never has to reap it and can die without taking it along),
//! forks the container's init inside a new PID namespace, reports `created <pid>` or
//! `error <msg>` on its stdout to the runtime that spawned it, and then, single-threaded around
//! one `poll`: copies the container's stdout/stderr into the CRI log, answers `start`,
//! `kill <signal>` and `reopen` (of the log, after a rotation) on `DIR/shim.sock`, reaps the container and records its exit (code and
//! reason, `OOMKilled` from the cgroup's OOM-kill counter) in `DIR/state.json`, then exits.
//!
//! It must be entered before any thread exists (it forks): `bosun shim` calls [`main`] first
//! thing, before starting tokio.
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use crate::error::{Error, Result};
use crate::fsutil;
use crate::init::{self, InitFds};
use crate::logs::{self, LineSplitter};
use crate::spec::{ContainerConfig, ContainerState, Status};

/// The shim's control socket, relative to the container directory.
pub const SOCKET: &str = "shim.sock";
/// The attach socket (shims from before attach existed have none): a client receives the
/// container's output as frames `[stream: 1 stdout | 2 stderr][length: u32 BE][bytes]` from
/// the moment it connects, and what it writes goes to the container's stdin (when the
/// container has one); its end of writing closes stdin for a `stdin_once` container.
pub const ATTACH_SOCKET: &str = "attach.sock";
/// Stdin buffered in the shim for a container that does not read it; beyond, input is
/// dropped rather than the shim blocking.
const STDIN_BUFFER_MAX: usize = 1 << 20;

/// Entry point of `bosun shim ARGS`; returns the process exit code.
///
/// `ARGS` is `--dir DIR` (run the container of `DIR/config.json`),
/// `sandbox --dir DIR [--hostname NAME]` (pin a pod sandbox's namespaces; see
/// [`crate::sandbox`]) or `exec --dir DIR [--tty] -- CMD...` (run a command in the running
/// container; see [`crate::exec`]).
pub fn main(args: Vec<String>) -> i32 {
    let (sub, rest) = match args.first().map(String::as_str) {
        Some("exec") => return crate::exec::main(&args[1..]),
        Some("sandbox") => ("sandbox", &args[1..]),
        _ => ("run", &args[..]),
    };
    let mut dir = None;
    let mut hostname = None;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dir" => dir = it.next().map(PathBuf::from),
            "--hostname" => hostname = it.next().cloned(),
            other => {
                eprintln!("bosun shim: unknown argument {other:?}");
                return 2;
            }
        }
    }
    let Some(dir) = dir else {
        eprintln!("usage: bosun shim [sandbox] --dir DIR [--hostname NAME]");
        return 2;
    };
    if sub == "sandbox" {
        return match crate::sandbox::pin_namespaces(&dir, hostname.as_deref()) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("bosun shim sandbox: {e}");
                1
            }
        };
    }
    // Daemonize: the runtime waits for this first process, the second one carries on, adopted
    // by init (or the nearest subreaper), in its own session.
    // SAFETY: the shim is single-threaded here (the contract of this entry point).
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => return 0,
        Ok(ForkResult::Child) => {}
        Err(e) => {
            println!("error fork shim: {e}");
            return 1;
        }
    }
    let _ = nix::unistd::setsid();
    let mut reported = false;
    match supervise(&dir, &mut reported) {
        Ok(()) => 0,
        Err(e) => {
            if !reported {
                println!("error {}", e.to_string().replace('\n', " "));
            }
            eprintln!("bosun shim {}: {e}", dir.display());
            1
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::sys("pipe2"))
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

/// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot.
pub(crate) fn process_start_time(pid: i32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

struct Shim {
    dir: PathBuf,
    cfg: ContainerConfig,
    state: ContainerState,
    pid: Pid,
    start_w: Option<OwnedFd>,
    sync_r: Option<File>,
    exit: Option<WaitStatus>,
}

impl Shim {
    fn save(&self) -> Result<()> {
        fsutil::write_json_volatile(&self.dir.join("state.json"), &self.state)
    }

    fn start(&mut self) -> std::result::Result<(), String> {
        if self.state.status != Status::Created {
            return Err(format!("container is {}", self.state.status));
        }
        let (Some(start_w), Some(mut sync_r)) = (self.start_w.take(), self.sync_r.take()) else {
            return Err("container already started".into());
        };
        let mut f = File::from(start_w);
        f.write_all(b"S")
            .map_err(|e| format!("signal start: {e}"))?;
        drop(f);
        // The sync pipe is close-on-exec in the child: EOF means the exec succeeded.
        let mut msg = String::new();
        let _ = sync_r.read_to_string(&mut msg);
        self.state.started_at = Some(logs::timestamp());
        if let Some(err) = msg.strip_prefix('E') {
            // Stays `Created` until the reaper records the exit: only the final save marks a
            // container stopped, after which the shim writes nothing more in its directory.
            self.state.reason = Some("StartError".into());
            self.state.message = Some(err.to_owned());
            let _ = self.save();
            return Err(err.to_owned());
        }
        if self.exit.is_none() {
            self.state.status = Status::Running;
        }
        self.save().map_err(|e| e.to_string())
    }

    fn command(&mut self, line: &str) -> String {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("start"), None) => match self.start() {
                Ok(()) => "ok".into(),
                Err(e) => format!("error {e}"),
            },
            (Some("kill"), Some(sig)) => {
                let sig = match sig
                    .parse::<i32>()
                    .ok()
                    .and_then(|n| Signal::try_from(n).ok())
                {
                    Some(s) => s,
                    None => return format!("error bad signal {sig}"),
                };
                if self.exit.is_some() {
                    return "ok".into();
                }
                match kill(self.pid, sig) {
                    Ok(()) => "ok".into(),
                    Err(e) => format!("error kill: {e}"),
                }
            }
            _ => format!("error unknown command {line:?}"),
        }
    }

    fn finish(&mut self, status: WaitStatus) {
        let (code, signaled) = match status {
            WaitStatus::Exited(_, c) => (c, None),
            WaitStatus::Signaled(_, s, _) => (128 + s as i32, Some(s)),
            _ => (255, None),
        };
        let oom = self
            .cfg
            .cgroup_path
            .as_ref()
            .and_then(|p| {
                crate::cgroup::manager(self.cfg.cgroup_version, &self.cfg.cgroup_root)
                    .stats(p)
                    .ok()
            })
            .is_some_and(|s| s.oom_kills > 0);
        let reason = if oom {
            "OOMKilled"
        } else if code == 0 {
            "Completed"
        } else {
            "Error"
        };
        if self.state.reason.as_deref() != Some("StartError") {
            self.state.reason = Some(reason.into());
        }
        self.state.status = Status::Stopped;
        self.state.exit_code = Some(code);
        self.state.finished_at = Some(logs::timestamp());
        if let Some(s) = signaled {
            self.state
                .message
                .get_or_insert_with(|| format!("killed by {s}"));
        }
    }
}

fn supervise(dir: &Path, reported: &mut bool) -> Result<()> {
    let cfg: ContainerConfig = fsutil::read_json(&dir.join("config.json"))?;
    let rootfs = dir.join("rootfs");
    let upper = dir.join("upper");
    let work = dir.join("work");
    for d in [&rootfs, &upper, &work] {
        fsutil::create_dir_all(d)?;
    }
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&cfg.log_path)
        .map_err(Error::io("open log", &cfg.log_path))?;

    nix::sys::prctl::set_child_subreaper(true).map_err(Error::sys("PR_SET_CHILD_SUBREAPER"))?;
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        mask.add(s);
    }
    mask.thread_block().map_err(Error::sys("block signals"))?;
    // SAFETY: ignoring SIGPIPE so a vanished socket client is an EPIPE, not our death.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(Error::sys("signalfd"))?;

    match &cfg.namespaces.pid {
        Some(p) => {
            let f = File::open(p).map_err(Error::io("open pid namespace", p))?;
            setns(f.as_fd(), CloneFlags::CLONE_NEWPID).map_err(Error::sys("join pid namespace"))?;
        }
        None => unshare(CloneFlags::CLONE_NEWPID).map_err(Error::sys("unshare pid namespace"))?,
    }

    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let stdin_pipe = if cfg.stdin { Some(pipe()?) } else { None };
    let (sync_r, sync_w) = pipe()?;
    let (start_r, start_w) = pipe()?;

    // SAFETY: the shim is single-threaded; the child only builds the container and execs.
    let pid = match unsafe { fork() }.map_err(Error::sys("fork container"))? {
        ForkResult::Child => {
            drop((out_r, err_r, sync_r, start_w, sfd));
            init::run(
                &cfg,
                &rootfs,
                &upper,
                &work,
                InitFds {
                    stdin: stdin_pipe.as_ref().map(|(r, _)| r.as_raw_fd()),
                    stdout: out_w.as_raw_fd(),
                    stderr: err_w.as_raw_fd(),
                    sync: sync_w.as_raw_fd(),
                    start: start_r.as_raw_fd(),
                },
            );
        }
        ForkResult::Parent { child } => child,
    };
    drop((out_w, err_w, sync_w, start_r));
    let mut stdin_w: Option<File> = stdin_pipe.map(|(r, w)| {
        drop(r);
        let f = File::from(w);
        set_nonblocking(f.as_raw_fd());
        f
    });
    let mut stdin_pending: Vec<u8> = Vec::new();
    let mut stdin_close_when_drained = false;
    let mut sync_r = File::from(sync_r);
    let mut b = [0u8; 1];
    let ready = sync_r.read(&mut b).unwrap_or(0) == 1 && b[0] == b'R';
    if !ready {
        let mut msg = String::new();
        if b[0] == b'E' {
            let _ = sync_r.read_to_string(&mut msg);
        }
        let _ = waitpid(pid, None);
        if msg.is_empty() {
            msg = "container init exited before it was ready".into();
        }
        return Err(Error::Shim {
            id: cfg.id.clone(),
            msg,
        });
    }

    let state = ContainerState {
        id: cfg.id.clone(),
        status: Status::Created,
        pid: pid.as_raw(),
        shim_pid: std::process::id() as i32,
        shim_start_time: process_start_time(std::process::id() as i32).unwrap_or(0),
        created_at: cfg.created_at.clone(),
        started_at: None,
        finished_at: None,
        exit_code: None,
        reason: None,
        message: None,
    };
    let mut shim = Shim {
        dir: dir.to_owned(),
        cfg,
        state,
        pid,
        start_w: Some(start_w),
        sync_r: Some(sync_r),
        exit: None,
    };
    shim.save()?;

    // The socket is bound by a relative name (sun_path is 108 bytes; data dirs can be long).
    nix::unistd::chdir(dir).map_err(Error::sys(format!("chdir {}", dir.display())))?;
    let _ = fs::remove_file(SOCKET);
    let listener = UnixListener::bind(SOCKET).map_err(Error::io("bind", dir.join(SOCKET)))?;
    listener
        .set_nonblocking(true)
        .map_err(Error::io("set nonblocking", dir.join(SOCKET)))?;
    let _ = fs::remove_file(ATTACH_SOCKET);
    let attach =
        UnixListener::bind(ATTACH_SOCKET).map_err(Error::io("bind", dir.join(ATTACH_SOCKET)))?;
    attach
        .set_nonblocking(true)
        .map_err(Error::io("set nonblocking", dir.join(ATTACH_SOCKET)))?;
    // (socket, still reading its input?)
    let mut attached: Vec<(UnixStream, bool)> = Vec::new();

    // Handshake done: tell the runtime, then stdout goes where stderr goes (the shim log).
    println!("created {}", pid.as_raw());
    let _ = std::io::stdout().flush();
    *reported = true;
    // SAFETY: dup2 on our own stdio descriptors.
    unsafe { libc::dup2(2, 1) };

    let out_r = File::from(out_r);
    let err_r = File::from(err_r);
    set_nonblocking(out_r.as_raw_fd());
    set_nonblocking(err_r.as_raw_fd());
    let mut streams: Vec<(File, LineSplitter, bool)> = vec![
        (out_r, LineSplitter::new("stdout"), true),
        (err_r, LineSplitter::new("stderr"), true),
    ];
    let mut clients: Vec<(UnixStream, Vec<u8>)> = Vec::new();
    let mut drain_deadline: Option<Instant> = None;
    let mut buf = vec![0u8; 64 * 1024];

    loop {
        if let Some(st) = shim.exit {
            let open = streams.iter().any(|s| s.2);
            if !open || drain_deadline.is_some_and(|d| Instant::now() >= d) {
                for (_, split, _) in &mut streams {
                    let _ = split.finish(&mut log);
                }
                shim.finish(st);
                break;
            }
        }
        let timeout = match drain_deadline {
            Some(d) => PollTimeout::try_from(
                d.saturating_duration_since(Instant::now()).as_millis() as i32,
            )
            .unwrap_or(PollTimeout::ZERO),
            None => PollTimeout::NONE,
        };
        // Only descriptors with something to wait for are polled: poll reports a hang-up
        // whatever the requested events, so a closed stream (or an attach client done with
        // stdin) left in the set would make every poll return at once, a busy loop for as
        // long as the container runs.
        let open_streams: Vec<usize> = (0..streams.len()).filter(|i| streams[*i].2).collect();
        let reading_attached: Vec<usize> = (0..attached.len()).filter(|i| attached[*i].1).collect();
        let (
            ready_streams,
            sig_ready,
            accept_ready,
            ready_clients,
            attach_ready,
            ready_attached,
            stdin_ready,
        ) = {
            let mut fds: Vec<PollFd> = Vec::new();
            for i in &open_streams {
                fds.push(PollFd::new(streams[*i].0.as_fd(), PollFlags::POLLIN));
            }
            fds.push(PollFd::new(sfd.as_fd(), PollFlags::POLLIN));
            fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
            for (c, _) in &clients {
                fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
            }
            fds.push(PollFd::new(attach.as_fd(), PollFlags::POLLIN));
            for i in &reading_attached {
                fds.push(PollFd::new(attached[*i].0.as_fd(), PollFlags::POLLIN));
            }
            let stdin_slot = stdin_w.as_ref().filter(|_| !stdin_pending.is_empty());
            if let Some(w) = stdin_slot {
                fds.push(PollFd::new(w.as_fd(), PollFlags::POLLOUT));
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Err(Error::Sys {
                        op: "poll".into(),
                        source: e,
                    })
                }
            }
            let ev = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
            let n = open_streams.len();
            let a = n + 2 + clients.len();
            (
                open_streams
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| ev(*k))
                    .map(|(_, i)| *i)
                    .collect::<Vec<_>>(),
                ev(n),
                ev(n + 1),
                (0..clients.len())
                    .map(|i| ev(n + 2 + i))
                    .collect::<Vec<_>>(),
                ev(a),
                reading_attached
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| ev(a + 1 + *k))
                    .map(|(_, i)| *i)
                    .collect::<Vec<_>>(),
                stdin_slot.is_some() && ev(a + 1 + reading_attached.len()),
            )
        };
        for i in ready_streams {
            if !streams[i].2 {
                continue;
            }
            let (f, split, open) = &mut streams[i];
            loop {
                match f.read(&mut buf) {
                    Ok(0) => {
                        *open = false;
                        let _ = split.finish(&mut log);
                        break;
                    }
                    Ok(n) => {
                        let _ = split.push(&buf[..n], &mut log);
                        broadcast(&mut attached, i as u8 + 1, &buf[..n]);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        *open = false;
                        break;
                    }
                }
            }
        }
        if sig_ready {
            while let Ok(Some(si)) = sfd.read_signal() {
                let signo = si.ssi_signo as i32;
                if signo == libc::SIGCHLD {
                    continue;
                }
                // Forward termination requests to the container.
                if shim.exit.is_none() {
                    if let Ok(s) = Signal::try_from(signo) {
                        let _ = kill(shim.pid, s);
                    }
                }
            }
            // Reap everything (we are a subreaper); note our container's exit.
            loop {
                match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(st) => {
                        if st.pid() == Some(shim.pid) {
                            shim.exit = Some(st);
                            // Give the pipes a moment: a daemonized grandchild may hold them.
                            drain_deadline = Some(Instant::now() + Duration::from_millis(200));
                        }
                    }
                }
            }
        }
        if accept_ready {
            while let Ok((c, _)) = listener.accept() {
                let _ = c.set_nonblocking(true);
                clients.push((c, Vec::new()));
            }
        }
        let mut keep = Vec::with_capacity(clients.len());
        for (i, (mut c, mut pending)) in clients.drain(..).enumerate() {
            if !ready_clients.get(i).copied().unwrap_or(false) {
                keep.push((c, pending));
                continue;
            }
            let mut closed = false;
            let mut tmp = [0u8; 512];
            loop {
                match c.read(&mut tmp) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => pending.extend_from_slice(&tmp[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
            while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
                let line = String::from_utf8_lossy(&pending[..nl]).into_owned();
                pending.drain(..=nl);
                // `wait`: no answer; the connection closes when the shim exits, once the
                // container's exit is in state.json (the runtime's `wait` without polling).
                if line.trim() == "wait" {
                    continue;
                }
                // `reopen`: the log file was renamed (rotated); write to a new one at the
                // configured path (CRI's ReopenContainerLog).
                let reply = if line.trim() == "reopen" {
                    match OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&shim.cfg.log_path)
                    {
                        Ok(f) => {
                            log = f;
                            "ok".to_string()
                        }
                        Err(e) => format!("error reopen log: {e}"),
                    }
                } else {
                    shim.command(&line)
                };
                let _ = c.set_nonblocking(false);
                let _ = c.write_all(format!("{reply}\n").as_bytes());
                let _ = c.set_nonblocking(true);
            }
            if !closed {
                keep.push((c, pending));
            }
        }
        clients = keep;

        if attach_ready {
            while let Ok((c, _)) = attach.accept() {
                let _ = c.set_nonblocking(true);
                attached.push((c, true));
            }
        }
        for i in ready_attached {
            let Some((c, reading)) = attached.get_mut(i) else {
                continue;
            };
            if !*reading {
                continue;
            }
            let mut tmp = [0u8; 16 * 1024];
            loop {
                match c.read(&mut tmp) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Ok(0) | Err(_) => {
                        // This client is done with stdin.
                        *reading = false;
                        if shim.cfg.stdin_once {
                            stdin_close_when_drained = true;
                        }
                        break;
                    }
                    Ok(n) => {
                        if stdin_w.is_some() && stdin_pending.len() + n <= STDIN_BUFFER_MAX {
                            stdin_pending.extend_from_slice(&tmp[..n]);
                        }
                    }
                }
            }
        }
        if stdin_ready || !stdin_pending.is_empty() {
            if let Some(w) = stdin_w.as_mut() {
                loop {
                    if stdin_pending.is_empty() {
                        break;
                    }
                    match w.write(&stdin_pending) {
                        Ok(n) => {
                            stdin_pending.drain(..n);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => {
                            // The container closed its stdin.
                            stdin_pending.clear();
                            stdin_w = None;
                            break;
                        }
                    }
                }
            }
        }
        if stdin_close_when_drained && stdin_pending.is_empty() {
            stdin_w = None;
        }
    }
    let _ = log.flush();
    let saved = shim.save();
    drop(listener);
    drop(attach);
    drop(attached);
    let _ = fs::remove_file(SOCKET);
    let _ = fs::remove_file(ATTACH_SOCKET);
    // Only now do waiters see their connection close: the exit is recorded.
    drop(clients);
    saved
}

/// Sends one output chunk to every attach client; one that cannot take it at once is
/// dropped (the shim never blocks on a client).
fn broadcast(attached: &mut Vec<(UnixStream, bool)>, stream: u8, data: &[u8]) {
    if attached.is_empty() {
        return;
    }
    let mut frame = Vec::with_capacity(data.len() + 5);
    frame.push(stream);
    frame.extend_from_slice(&(data.len() as u32).to_be_bytes());
    frame.extend_from_slice(data);
    attached.retain_mut(|(c, _)| {
        let mut off = 0;
        while off < frame.len() {
            match c.write(&frame[off..]) {
                Ok(0) => return false,
                Ok(n) => off += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    });
}

/// Connects to a container's attach socket (`None` if its shim predates attach or is gone).
pub(crate) fn connect_attach(dir: &Path) -> Result<Option<UnixStream>> {
    if !dir.join(ATTACH_SOCKET).exists() {
        return Ok(None);
    }
    let dirfd = File::open(dir).map_err(Error::io("open", dir))?;
    let path = format!("/proc/self/fd/{}/{ATTACH_SOCKET}", dirfd.as_raw_fd());
    match UnixStream::connect(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(None),
        Err(e) => Err(Error::io("connect", dir.join(ATTACH_SOCKET))(e)),
    }
}

/// Blocks until the shim of `dir` exits (its `wait` command: the connection closes once the
/// container's exit is recorded) or `timeout` passes. False when that cannot be known this
/// way (no socket: the shim is gone or exiting; a shim from before `wait` answers it with an
/// error), so the caller falls back to reading the state.
pub(crate) fn wait_exit(dir: &Path, timeout: Duration) -> bool {
    let Ok(dirfd) = File::open(dir) else {
        return false;
    };
    let path = format!("/proc/self/fd/{}/{SOCKET}", dirfd.as_raw_fd());
    let Ok(mut s) = UnixStream::connect(&path) else {
        return false;
    };
    drop(dirfd);
    if s.write_all(b"wait\n").is_err() {
        return false;
    }
    let deadline = Instant::now() + timeout;
    let mut b = [0u8; 64];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || s.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        match s.read(&mut b) {
            Ok(0) => return true,
            // Any answer means this shim does not know `wait`.
            Ok(_) => return false,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

/// Sends one command to a shim and returns its answer (`Ok` for `ok`).
pub(crate) fn call(dir: &Path, id: &str, command: &str) -> Result<()> {
    // Connect through /proc/self/fd so the path stays short whatever the data dir is.
    let dirfd = File::open(dir).map_err(Error::io("open", dir))?;
    let path = format!("/proc/self/fd/{}/{SOCKET}", dirfd.as_raw_fd());
    let mut s = UnixStream::connect(&path).map_err(|e| Error::Shim {
        id: id.to_owned(),
        msg: format!("connect {}: {e}", dir.join(SOCKET).display()),
    })?;
    drop(dirfd);
    s.write_all(format!("{command}\n").as_bytes())
        .map_err(Error::io("write", dir.join(SOCKET)))?;
    let mut reply = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&mut s), &mut reply)
        .map_err(Error::io("read", dir.join(SOCKET)))?;
    let reply = reply.trim();
    match reply.strip_prefix("error ") {
        None if reply == "ok" => Ok(()),
        Some(msg) => Err(Error::Shim {
            id: id.to_owned(),
            msg: msg.to_owned(),
        }),
        None => Err(Error::Shim {
            id: id.to_owned(),
            msg: format!("unexpected reply {reply:?}"),
        }),
    }
}

/// Reads the shim's answer to its spawn: `created <pid>` or `error <msg>`.
pub(crate) fn parse_handshake(id: &str, out: &str) -> Result<i32> {
    let line = out.lines().next().unwrap_or("").trim();
    if let Some(pid) = line.strip_prefix("created ") {
        return pid.parse().map_err(|_| Error::Shim {
            id: id.to_owned(),
            msg: format!("bad handshake {line:?}"),
        });
    }
    Err(Error::Shim {
        id: id.to_owned(),
        msg: line
            .strip_prefix("error ")
            .unwrap_or(if line.is_empty() {
                "shim exited without a word"
            } else {
                line
            })
            .to_owned(),
    })
}
