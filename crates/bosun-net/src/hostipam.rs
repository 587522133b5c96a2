//! Pod IP allocation on one node, persisted as files (as the CNI `host-local` plugin does):
//! `DIR/<subnet>/<ip>` holds the owning pod's uid, `DIR/<subnet>/last` the last address
//! handed out, and every operation holds an exclusive `flock` on `DIR/<subnet>/lock`, so a
//! restarted agent (or a second process) never hands out an address twice.
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};

/// The address store of one node subnet.
#[derive(Debug, Clone)]
pub struct HostIpam {
    dir: PathBuf,
    subnet: Ipv4Net,
}

impl HostIpam {
    /// The store for `subnet` under `root` (e.g. `DATA_DIR/net/ipam`).
    pub fn new(root: &Path, subnet: Ipv4Net) -> Result<Self> {
        let dir = root.join(subnet.to_string().replace('/', "_"));
        fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        Ok(Self { dir, subnet })
    }

    /// The gateway address (the bridge's): the subnet's first host.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet.network()) + 1)
    }

    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    fn lock(&self) -> Result<Flock<File>> {
        let path = self.dir.join("lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io("open", &path))?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| Error::Io {
            op: "flock",
            path,
            source: e.into(),
        })
    }

    /// Every (address, owner) recorded.
    pub fn list(&self) -> Result<Vec<(Ipv4Addr, String)>> {
        let _g = self.lock()?;
        self.list_locked()
    }

    fn list_locked(&self) -> Result<Vec<(Ipv4Addr, String)>> {
        let mut out = Vec::new();
        let rd = fs::read_dir(&self.dir).map_err(Error::io("read", &self.dir))?;
        for ent in rd {
            let ent = ent.map_err(Error::io("read", &self.dir))?;
            let name = ent.file_name();
            let Some(ip) = name.to_str().and_then(|s| s.parse::<Ipv4Addr>().ok()) else {
                continue;
            };
            let owner = fs::read_to_string(ent.path()).map_err(Error::io("read", ent.path()))?;
            out.push((ip, owner.trim().to_string()));
        }
        out.sort();
        Ok(out)
    }

    /// The address of `owner`, allocating one if it has none (idempotent).
    pub fn allocate(&self, owner: &str) -> Result<Ipv4Addr> {
        let _g = self.lock()?;
        let taken = self.list_locked()?;
        if let Some((ip, _)) = taken.iter().find(|(_, o)| o == owner) {
            return Ok(*ip);
        }
        let first = u32::from(self.subnet.network()) + 2;
        let last = u32::from(self.subnet.broadcast()).saturating_sub(1);
        if last < first {
            return Err(Error::Exhausted {
                cidr: self.subnet.to_string(),
                what: "pod address",
            });
        }
        let last_path = self.dir.join("last");
        let prev = fs::read_to_string(&last_path)
            .ok()
            .and_then(|s| s.trim().parse::<Ipv4Addr>().ok())
            .map(u32::from)
            .filter(|p| (first..=last).contains(p))
            .unwrap_or(last);
        let n = last - first + 1;
        for k in 1..=n {
            let cand = first + (prev - first + k) % n;
            let ip = Ipv4Addr::from(cand);
            let path = self.dir.join(ip.to_string());
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    f.write_all(owner.as_bytes())
                        .and_then(|_| f.sync_all())
                        .map_err(Error::io("write", &path))?;
                    write_atomic(&last_path, ip.to_string().as_bytes())?;
                    return Ok(ip);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("create", &path)(e)),
            }
        }
        Err(Error::Exhausted {
            cidr: self.subnet.to_string(),
            what: "pod address",
        })
    }

    /// Releases every address of `owner`; returns what was released.
    pub fn release(&self, owner: &str) -> Result<Vec<Ipv4Addr>> {
        let _g = self.lock()?;
        let mut out = Vec::new();
        for (ip, o) in self.list_locked()? {
            if o == owner {
                let path = self.dir.join(ip.to_string());
                match fs::remove_file(&path) {
                    Ok(()) => out.push(ip),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("remove", &path)(e)),
                }
            }
        }
        Ok(out)
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, data).map_err(Error::io("write", &tmp))?;
    fs::rename(&tmp, path).map_err(Error::io("rename", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_is_persistent_idempotent_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let subnet: Ipv4Net = "10.244.3.0/29".parse().unwrap();
        let a = HostIpam::new(dir.path(), subnet).unwrap();
        assert_eq!(a.gateway(), Ipv4Addr::new(10, 244, 3, 1));
        let ip1 = a.allocate("pod-1").unwrap();
        assert_eq!(ip1, Ipv4Addr::new(10, 244, 3, 2));
        assert_eq!(a.allocate("pod-1").unwrap(), ip1);
        // A new instance (restarted agent) sees the same state.
        let b = HostIpam::new(dir.path(), subnet).unwrap();
        assert_eq!(b.allocate("pod-1").unwrap(), ip1);
        let ip2 = b.allocate("pod-2").unwrap();
        assert_ne!(ip1, ip2);
        // .2 .. .6 usable: five addresses.
        for i in 3..=5 {
            b.allocate(&format!("pod-{i}")).unwrap();
        }
        assert!(b.allocate("pod-6").is_err());
        assert_eq!(b.release("pod-2").unwrap(), vec![ip2]);
        assert_eq!(b.allocate("pod-6").unwrap(), ip2);
        assert_eq!(b.list().unwrap().len(), 5);
    }
}
