//! File helpers shared by the image store, the runtime and the shim: atomic writes, file locks,
//! JSON files.
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// Writes `data` to `path` through a temporary file in the same directory and a rename, so a
/// reader (in this process or another) sees either the old or the new content, never a part.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    write_replacing(path, data, true)
}

/// [`write_atomic`] without the fsync, for a container's `config.json` and `state.json`:
/// they describe processes that do not outlive the machine, so they need no durability across
/// a crash of it (runc writes its `state.json` the same way), while a reader still sees either
/// the old or the new file thanks to the rename. An fsync here cost milliseconds per write on
/// a busy disk, four times per container lifecycle.
pub(crate) fn write_json_volatile<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let data = serde_json::to_vec_pretty(value).map_err(|source| Error::Json {
        path: path.to_owned(),
        source,
    })?;
    write_replacing(path, &data, false)
}

fn write_replacing(path: &Path, data: &[u8], durable: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut f = File::create(&tmp).map_err(Error::io("create", &tmp))?;
    f.write_all(data).map_err(Error::io("write", &tmp))?;
    if durable {
        f.sync_all().map_err(Error::io("fsync", &tmp))?;
    }
    drop(f);
    fs::rename(&tmp, path).map_err(Error::io("rename", path))?;
    Ok(())
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let data = serde_json::to_vec_pretty(value).map_err(|source| Error::Json {
        path: path.to_owned(),
        source,
    })?;
    write_atomic(path, &data)
}

pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let data = fs::read(path).map_err(Error::io("read", path))?;
    serde_json::from_slice(&data).map_err(|source| Error::Json {
        path: path.to_owned(),
        source,
    })
}

/// Reads a JSON file that may not exist yet.
pub(crate) fn read_json_opt<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|source| Error::Json {
                path: path.to_owned(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path)(e)),
    }
}

pub(crate) fn create_dir_all(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(Error::io("create directory", path))
}

/// Removes a directory tree; a missing one is fine.
pub(crate) fn remove_dir_all(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path)(e)),
    }
}

/// An advisory lock on a file (flock), held until dropped. Shared for readers, exclusive for
/// writers; works between processes (the agent and `bosun image ...`).
pub(crate) struct FileLock {
    _lock: Flock<File>,
}

impl FileLock {
    pub(crate) fn shared(path: &Path) -> Result<Self> {
        Self::lock(path, FlockArg::LockShared)
    }

    pub(crate) fn exclusive(path: &Path) -> Result<Self> {
        Self::lock(path, FlockArg::LockExclusive)
    }

    fn lock(path: &Path, arg: FlockArg) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(Error::io("open lock", path))?;
        let lock = Flock::lock(file, arg).map_err(|(_, e)| Error::Sys {
            op: format!("flock {}", path.display()),
            source: e,
        })?;
        Ok(Self { _lock: lock })
    }
}

/// A unique temporary name next to `base` (same filesystem, so a rename is atomic).
pub(crate) fn tmp_sibling(dir: &Path, stem: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".tmp-{stem}-{}-{n}", std::process::id()))
}
