//! The runtime API the kubelet uses: create, start, kill, state, delete, list containers and
//! sandboxes. All state lives in files under `DATA_DIR/containers/<id>/` (written by the
//! runtime and the shim), so a new [`Runtime`] over the same data dir — an agent that
//! restarted — finds every container again, running ones included, under the same ids.
//!
//! ```text
//! containers/<id>/config.json   ContainerConfig (the runtime)
//! containers/<id>/state.json    ContainerState (the shim)
//! containers/<id>/shim.sock     the shim's control socket while the container lives
//! containers/<id>/{rootfs,upper,work}  overlay mount point and the container's own layer
//! containers/<id>/container.log CRI log unless the spec names another path
//! sandboxes/<id>/{net,ipc,uts}  pinned namespaces of a pod
//! ```
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cgroup::{self, CgroupManager, CgroupStats};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::image::ImageStore;
use crate::sandbox::{self, Sandbox};
use crate::shim;
use crate::spec::{
    check_id, merge_env, resolve_args, resolve_user, ContainerConfig, ContainerSpec,
    ContainerState, Status, DEFAULT_CAPABILITIES,
};

/// How to find and run things; see each field for its default.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The agent's `--data-dir`.
    pub data_dir: PathBuf,
    /// The program that is the shim. Default: `bosun-shim` next to this executable when it
    /// is there (a small binary: each shim costs a fraction of the memory), else this
    /// executable itself as `bosun shim`.
    pub shim_program: PathBuf,
    /// Arguments before the shim's own (`[]` for `bosun-shim`, `["shim"]` for `bosun shim`).
    pub shim_args: Vec<String>,
    /// The cgroup filesystem (default `/sys/fs/cgroup`; v1 or v2 detected there).
    pub cgroup_root: PathBuf,
}

impl RuntimeConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("bosun"));
        let (shim_program, shim_args) = match default_shim_next_to(&exe) {
            Some(small) => (small, Vec::new()),
            None => (exe, vec!["shim".into()]),
        };
        Self {
            data_dir: data_dir.into(),
            shim_program,
            shim_args,
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
        }
    }
}

/// The file name of the small shim program installed beside `bosun`.
pub const SHIM_BINARY: &str = "bosun-shim";

/// `bosun-shim` in the directory of `exe`, if it is there.
pub fn default_shim_next_to(exe: &Path) -> Option<PathBuf> {
    let p = exe.parent()?.join(SHIM_BINARY);
    p.is_file().then_some(p)
}

/// The container runtime of one data directory.
#[derive(Debug)]
pub struct Runtime {
    cfg: RuntimeConfig,
    images: ImageStore,
    cgroups: Box<dyn CgroupManager>,
    containers: PathBuf,
    sandboxes: PathBuf,
}

impl Runtime {
    pub fn new(cfg: RuntimeConfig) -> Result<Self> {
        let images = ImageStore::open(&cfg.data_dir)?;
        let containers = cfg.data_dir.join("containers");
        let sandboxes = cfg.data_dir.join("sandboxes");
        fsutil::create_dir_all(&containers)?;
        fsutil::create_dir_all(&sandboxes)?;
        let cgroups = cgroup::detect_at(&cfg.cgroup_root);
        Ok(Self {
            cfg,
            images,
            cgroups,
            containers,
            sandboxes,
        })
    }

    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    pub fn cgroups(&self) -> &dyn CgroupManager {
        self.cgroups.as_ref()
    }

    pub(crate) fn dir(&self, id: &str) -> Result<PathBuf> {
        check_id(id)?;
        Ok(self.containers.join(id))
    }

    pub(crate) fn shim_command(&self) -> Command {
        let mut c = Command::new(&self.cfg.shim_program);
        c.args(&self.cfg.shim_args);
        c
    }

    /// Creates a container: resolves its image, writes its config, creates its cgroup and
    /// starts its shim, which prepares everything up to the exec. `start` runs it.
    pub fn create(&self, spec: &ContainerSpec) -> Result<ContainerState> {
        let dir = self.dir(&spec.id)?;
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::ContainerExists(spec.id.clone()))
            }
            Err(e) => return Err(Error::io("create", &dir)(e)),
        }
        let result = self.create_in(&dir, spec);
        if result.is_err() {
            if let Some(p) = &spec.cgroup_path {
                let _ = self.cgroups.remove(p);
            }
            let _ = fsutil::remove_dir_all(&dir);
        }
        result
    }

    fn create_in(&self, dir: &Path, spec: &ContainerSpec) -> Result<ContainerState> {
        {
            // Holding the store's shared lock until config.json names the layers keeps a
            // concurrent `image rm` + gc from removing them.
            let _lock = self.images.lock_shared()?;
            let image = self.images.resolve_locked(&spec.image)?;
            let icfg = image.config.config().clone().unwrap_or_default();
            let args = resolve_args(
                icfg.entrypoint().as_deref().unwrap_or_default(),
                icfg.cmd().as_deref().unwrap_or_default(),
                spec.command.as_deref(),
                spec.args.as_deref(),
            );
            let cfg = ContainerConfig {
                id: spec.id.clone(),
                image: image.reference.clone(),
                image_id: image.config_digest.clone(),
                layers: image.layers.clone(),
                layer_dirs: image.layer_dirs.clone(),
                args,
                env: merge_env(icfg.env().as_deref().unwrap_or_default(), &spec.env),
                cwd: spec
                    .working_dir
                    .clone()
                    .or_else(|| icfg.working_dir().clone())
                    .filter(|w| !w.is_empty())
                    .unwrap_or_else(|| "/".into()),
                user: resolve_user(&image, spec)?,
                hostname: spec.hostname.clone(),
                namespaces: spec.namespaces.clone(),
                cgroup_root: self.cfg.cgroup_root.clone(),
                cgroup_version: self.cgroups.version(),
                cgroup_path: spec.cgroup_path.clone(),
                resources: spec.resources.clone(),
                log_path: spec
                    .log_path
                    .clone()
                    .unwrap_or_else(|| dir.join("container.log")),
                mounts: spec.mounts.clone(),
                readonly_rootfs: spec.readonly_rootfs,
                privileged: spec.privileged,
                no_new_privileges: spec.no_new_privileges,
                capabilities: spec.capabilities.clone().unwrap_or_else(|| {
                    DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect()
                }),
                labels: spec.labels.clone(),
                created_at: crate::logs::timestamp(),
                stdin: spec.stdin,
                stdin_once: spec.stdin_once,
            };
            if let Some(parent) = cfg.log_path.parent() {
                fsutil::create_dir_all(parent)?;
            }
            fsutil::write_json_volatile(&dir.join("config.json"), &cfg)?;
        }
        if let Some(p) = &spec.cgroup_path {
            self.cgroups.create(p, &spec.resources)?;
        }
        let shim_log = dir.join("shim.log");
        let log = fs::File::create(&shim_log).map_err(Error::io("create", &shim_log))?;
        let mut child = self
            .shim_command()
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(Error::io("spawn shim", &self.cfg.shim_program))?;
        let mut out = String::new();
        if let Some(mut s) = child.stdout.take() {
            s.read_to_string(&mut out)
                .map_err(Error::io("read shim handshake", &shim_log))?;
        }
        let _ = child.wait();
        shim::parse_handshake(&spec.id, &out)?;
        self.state(&spec.id)
    }

    /// Runs a created container's process.
    pub fn start(&self, id: &str) -> Result<()> {
        let dir = self.dir(id)?;
        let st = self.state(id)?;
        if st.status != Status::Created {
            return Err(Error::BadState {
                id: id.to_owned(),
                state: st.status.to_string(),
                op: "start",
            });
        }
        shim::call(&dir, id, "start")
    }

    /// Sends `signal` to the container's first process; a stopped container is left alone.
    pub fn kill(&self, id: &str, signal: i32) -> Result<()> {
        let dir = self.dir(id)?;
        let st = self.state(id)?;
        match st.status {
            Status::Stopped => Ok(()),
            Status::Created | Status::Running => shim::call(&dir, id, &format!("kill {signal}")),
            Status::Unknown => Err(Error::BadState {
                id: id.to_owned(),
                state: st.status.to_string(),
                op: "kill",
            }),
        }
    }

    /// Makes a running container's shim write its log to a new file at the log path, after
    /// the current one was renamed by a rotation (CRI's `ReopenContainerLog`).
    pub fn reopen_log(&self, id: &str) -> Result<()> {
        let dir = self.dir(id)?;
        let st = self.state(id)?;
        match st.status {
            Status::Created | Status::Running => shim::call(&dir, id, "reopen"),
            _ => Err(Error::BadState {
                id: id.to_owned(),
                state: st.status.to_string(),
                op: "reopen log",
            }),
        }
    }

    /// The container's resolved config.
    pub fn config(&self, id: &str) -> Result<ContainerConfig> {
        let dir = self.dir(id)?;
        match fsutil::read_json_opt(&dir.join("config.json"))? {
            Some(c) => Ok(c),
            None => Err(Error::ContainerNotFound(id.to_owned())),
        }
    }

    /// The container's state; `Unknown` if its shim is gone without having recorded an exit.
    pub fn state(&self, id: &str) -> Result<ContainerState> {
        let dir = self.dir(id)?;
        if !dir.is_dir() {
            return Err(Error::ContainerNotFound(id.to_owned()));
        }
        let unknown = |created_at: String, reason: &str| ContainerState {
            id: id.to_owned(),
            status: Status::Unknown,
            pid: 0,
            shim_pid: 0,
            shim_start_time: 0,
            created_at,
            started_at: None,
            finished_at: None,
            exit_code: None,
            reason: Some(reason.into()),
            message: None,
        };
        let mut st = match fsutil::read_json_opt::<ContainerState>(&dir.join("state.json")) {
            Ok(Some(st)) => st,
            Ok(None) => return Ok(unknown(self.config(id)?.created_at, "Creating")),
            // state.json is written without fsync (it does not outlive the machine): after a
            // crash of the machine it may be empty, which leaves the container deletable.
            Err(Error::Json { .. }) => {
                let created = self.config(id).map(|c| c.created_at).unwrap_or_default();
                return Ok(unknown(created, "StateUnreadable"));
            }
            Err(e) => return Err(e),
        };
        if matches!(st.status, Status::Created | Status::Running)
            && shim::process_start_time(st.shim_pid) != Some(st.shim_start_time)
        {
            // The shim may have written its final state just now.
            if let Some(again) = fsutil::read_json_opt::<ContainerState>(&dir.join("state.json"))? {
                if again.status == Status::Stopped {
                    return Ok(again);
                }
            }
            st.status = Status::Unknown;
            st.reason = Some("ShimDied".into());
        }
        Ok(st)
    }

    /// Every container of this data dir.
    pub fn list(&self) -> Result<Vec<ContainerState>> {
        let mut out = Vec::new();
        for entry in
            fs::read_dir(&self.containers).map_err(Error::io("read directory", &self.containers))?
        {
            let entry = entry.map_err(Error::io("read directory", &self.containers))?;
            let id = entry.file_name().to_string_lossy().into_owned();
            match self.state(&id) {
                Ok(s) => out.push(s),
                Err(Error::ContainerNotFound(_)) | Err(Error::InvalidId(_)) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Waits until the container has stopped (or its shim died): told by the shim when it
    /// exits, else (a shim that is exiting already, or from before `wait`) by reading the
    /// state at short intervals.
    pub fn wait(&self, id: &str, timeout: Duration) -> Result<ContainerState> {
        let deadline = Instant::now() + timeout;
        let st = self.state(id)?;
        if matches!(st.status, Status::Stopped | Status::Unknown) {
            return Ok(st);
        }
        shim::wait_exit(&self.dir(id)?, timeout);
        let mut pause = Duration::from_micros(200);
        loop {
            let st = self.state(id)?;
            if matches!(st.status, Status::Stopped | Status::Unknown) {
                return Ok(st);
            }
            if Instant::now() >= deadline {
                return Err(Error::BadState {
                    id: id.to_owned(),
                    state: st.status.to_string(),
                    op: "wait (timed out)",
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Removes a stopped container (with `force`, kills a live one first) and its cgroup.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let dir = self.dir(id)?;
        let st = self.state(id)?;
        if matches!(st.status, Status::Created | Status::Running) {
            if !force {
                return Err(Error::BadState {
                    id: id.to_owned(),
                    state: st.status.to_string(),
                    op: "delete",
                });
            }
            self.kill(id, libc::SIGKILL)?;
            self.wait(id, Duration::from_secs(10))?;
        }
        if let Ok(cfg) = self.config(id) {
            if let Some(p) = &cfg.cgroup_path {
                self.cgroups.remove(p)?;
            }
        }
        fsutil::remove_dir_all(&dir)
    }

    /// Usage figures from the container's cgroup.
    pub fn stats(&self, id: &str) -> Result<CgroupStats> {
        let cfg = self.config(id)?;
        match &cfg.cgroup_path {
            Some(p) => self.cgroups.stats(p),
            None => Ok(CgroupStats::default()),
        }
    }

    /// Creates a pod sandbox: new network, IPC and UTS namespaces (hostname set, loopback up)
    /// pinned under `DATA_DIR/sandboxes/<id>`.
    pub fn create_sandbox(&self, id: &str, hostname: Option<&str>) -> Result<Sandbox> {
        check_id(id)?;
        let dir = self.sandboxes.join(id);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::ContainerExists(format!("sandbox {id}")))
            }
            Err(e) => return Err(Error::io("create", &dir)(e)),
        }
        let mut cmd = self.shim_command();
        cmd.arg("sandbox").arg("--dir").arg(&dir);
        if let Some(h) = hostname {
            cmd.arg("--hostname").arg(h);
        }
        // The helper unshares itself: no `pre_exec` here, so the spawn is a vfork + exec
        // rather than a fork of the whole (multithreaded, large) agent.
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(Error::io("spawn sandbox helper", &self.cfg.shim_program))?;
        if !out.status.success() {
            let _ = sandbox::unpin(&dir);
            return Err(Error::Shim {
                id: format!("sandbox {id}"),
                msg: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(Sandbox {
            id: id.to_owned(),
            dir,
        })
    }

    /// A sandbox created earlier (after a restart), if it exists.
    pub fn sandbox(&self, id: &str) -> Result<Option<Sandbox>> {
        check_id(id)?;
        let dir = self.sandboxes.join(id);
        Ok(dir.join("net").exists().then(|| Sandbox {
            id: id.to_owned(),
            dir,
        }))
    }

    /// Releases a sandbox's namespaces; they disappear once its containers are gone.
    pub fn remove_sandbox(&self, id: &str) -> Result<()> {
        check_id(id)?;
        sandbox::unpin(&self.sandboxes.join(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_small_shim_is_taken_from_beside_the_executable() {
        let d = tempfile::tempdir().expect("tempdir");
        let exe = d.path().join("bosun");
        assert_eq!(default_shim_next_to(&exe), None, "absent: `bosun shim`");
        fs::write(d.path().join(SHIM_BINARY), b"").expect("write");
        assert_eq!(default_shim_next_to(&exe), Some(d.path().join(SHIM_BINARY)));
        fs::create_dir(d.path().join("sub")).expect("mkdir");
        assert_eq!(default_shim_next_to(&d.path().join("sub/bosun")), None);
    }
}
