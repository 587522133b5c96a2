//! Running work inside a network namespace: always on a fresh, dedicated OS thread that
//! `setns`es and then dies, never on a tokio worker (a worker left in a pod's namespace
//! would run unrelated tasks there).
use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};

use crate::error::{Error, Result};

/// Moves the calling thread into the network namespace at `path`.
pub fn enter(path: &Path) -> Result<()> {
    let f = File::open(path).map_err(Error::io("open netns", path))?;
    setns(&f, CloneFlags::CLONE_NEWNET).map_err(|source| Error::Netns {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs `f` on a new thread that first enters `netns` (if any), and awaits its result
/// without blocking the caller's runtime.
pub async fn run_in<T, F>(netns: Option<PathBuf>, what: &'static str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("netns-{what}"))
        .spawn(move || {
            let r = match &netns {
                Some(p) => enter(p).and_then(|_| f()),
                None => f(),
            };
            let _ = tx.send(r);
        })
        .map_err(Error::io("spawn thread for", what))?;
    rx.await.map_err(|_| Error::Thread(what))?
}

/// Runs the future `f` on a dedicated thread with its own single-threaded runtime, after
/// entering `netns`: netlink sockets opened inside belong to that namespace.
pub async fn run_async_in<T, F, Fut>(netns: Option<PathBuf>, what: &'static str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T>>,
{
    run_in(netns, what, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::io("build runtime for", what))?;
        rt.block_on(f())
    })
    .await
}

/// Opens a netlink route connection in the current thread's namespace, driving it on the
/// current (thread-local) runtime.
pub(crate) fn netlink() -> Result<rtnetlink::Handle> {
    let (conn, handle, _) =
        rtnetlink::new_connection().map_err(Error::io("open netlink socket", "rtnetlink"))?;
    tokio::spawn(conn);
    Ok(handle)
}
