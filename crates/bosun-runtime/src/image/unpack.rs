//! Unpacks one layer (tar, gzip or zstd) into a directory that overlayfs can use as a lower
//! layer: OCI whiteouts (`.wh.name`) become 0/0 character devices and opaque directories
//! (`.wh..wh..opq`) get the `trusted.overlay.opaque` xattr, as containerd's overlay snapshotter
//! does.
use std::ffi::CString;
use std::fs;
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Compression of a layer blob, found from its first bytes (media types lie more often).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn detect(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Passes bytes through and hashes them (the diff id is the digest of the uncompressed tar).
pub(crate) struct HashReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> HashReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    pub(crate) fn finish(mut self) -> io::Result<String> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(format!("sha256:{:x}", self.hasher.finalize()))
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Unpacks `blob` into `dst` (which must exist and be empty) and returns the diff id.
pub fn unpack_layer(blob: &Path, dst: &Path) -> Result<String> {
    let layer = blob.display().to_string();
    let mut file = BufReader::new(fs::File::open(blob).map_err(Error::io("open", blob))?);
    let head = {
        use std::io::BufRead;
        file.fill_buf().map_err(Error::io("read", blob))?.to_vec()
    };
    let reader: Box<dyn Read> = match Compression::detect(&head) {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(file).map_err(Error::io("zstd", blob))?,
        ),
    };
    let mut hashed = HashReader::new(reader);
    unpack_tar(&mut hashed, dst, &layer)?;
    hashed.finish().map_err(Error::io("read layer", blob))
}

/// Unpacks a tar stream with whiteout conversion. Paths that would leave `dst` are refused.
pub(crate) fn unpack_tar<R: Read>(reader: R, dst: &Path, layer: &str) -> Result<()> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(true);
    archive.set_overwrite(true);
    let entries = archive.entries().map_err(Error::io("read tar", layer))?;
    // Directory mtimes are set by tar after their content; we keep tar's behaviour.
    for entry in entries {
        let mut entry = entry.map_err(Error::io("read tar entry", layer))?;
        let raw = entry
            .path()
            .map_err(Error::io("read tar path", layer))?
            .into_owned();
        let rel = clean_path(&raw).ok_or_else(|| Error::UnsafePath {
            layer: layer.to_owned(),
            path: raw.display().to_string(),
        })?;
        let Some(name) = rel.file_name().map(|n| n.as_bytes().to_vec()) else {
            continue; // the root itself
        };
        if let Some(hidden) = name.strip_prefix(b".wh.") {
            let parent = rel.parent().unwrap_or(Path::new(""));
            let parent_abs = safe_dir(dst, parent, layer)?;
            if hidden == b".wh..opq" {
                set_xattr(&parent_abs, "trusted.overlay.opaque", b"y")?;
            } else {
                let target = parent_abs.join(std::ffi::OsStr::from_bytes(hidden));
                remove_any(&target)?;
                nix::sys::stat::mknod(
                    &target,
                    nix::sys::stat::SFlag::S_IFCHR,
                    nix::sys::stat::Mode::empty(),
                    0,
                )
                .map_err(Error::sys(format!("mknod whiteout {}", target.display())))?;
            }
            continue;
        }
        if !entry.header().entry_type().is_dir() {
            // A later entry replaces an earlier one of the same name.
            if let Some(parent) = rel.parent() {
                let parent_abs = safe_dir(dst, parent, layer)?;
                if let Some(fname) = rel.file_name() {
                    let target = parent_abs.join(fname);
                    if let Ok(md) = fs::symlink_metadata(&target) {
                        if !md.is_dir() {
                            remove_any(&target)?;
                        }
                    }
                }
            }
        }
        let ok = entry
            .unpack_in(dst)
            .map_err(Error::io("unpack", dst.join(&rel)))?;
        if !ok {
            return Err(Error::UnsafePath {
                layer: layer.to_owned(),
                path: raw.display().to_string(),
            });
        }
    }
    Ok(())
}

/// Strips `./` and `/` prefixes; `None` if the path has `..`.
fn clean_path(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => return None,
        }
    }
    Some(out)
}

/// Creates `dst/rel` as a directory and checks that it resolves inside `dst` (a symlink in the
/// layer must not redirect a whiteout outside).
fn safe_dir(dst: &Path, rel: &Path, layer: &str) -> Result<PathBuf> {
    let abs = dst.join(rel);
    fs::create_dir_all(&abs).map_err(Error::io("create directory", &abs))?;
    let real = fs::canonicalize(&abs).map_err(Error::io("resolve", &abs))?;
    let root = fs::canonicalize(dst).map_err(Error::io("resolve", dst))?;
    if !real.starts_with(&root) {
        return Err(Error::UnsafePath {
            layer: layer.to_owned(),
            path: rel.display().to_string(),
        });
    }
    Ok(real)
}

fn remove_any(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(path).map_err(Error::io("remove", path)),
        Ok(_) => fs::remove_file(path).map_err(Error::io("remove", path)),
        Err(_) => Ok(()),
    }
}

pub(crate) fn set_xattr(path: &Path, name: &str, value: &[u8]) -> Result<()> {
    let p = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Other(format!("nul byte in path {}", path.display())))?;
    let n = CString::new(name).map_err(|_| Error::Other(format!("nul byte in xattr {name}")))?;
    // SAFETY: both strings are valid NUL-terminated C strings and value is a valid slice for
    // the length passed.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(Error::io("set xattr on", path)(io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    fn tar_with(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            match data {
                Some(d) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(d.len() as u64);
                    h.set_mode(0o644);
                    h.set_cksum();
                    b.append_data(&mut h, path, *d).unwrap();
                }
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    h.set_mode(0o755);
                    h.set_cksum();
                    b.append_data(&mut h, path, &[][..]).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn detects_compression() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"etc/"), Compression::None);
    }

    #[test]
    fn unpacks_gzip_and_zstd_with_diff_id() {
        let raw = tar_with(&[("etc/", None), ("etc/hello", Some(b"hi\n"))]);
        let want = format!("sha256:{:x}", Sha256::digest(&raw));
        let tmp = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let zs = zstd::encode_all(&raw[..], 1).unwrap();
        for (i, blob) in [raw.clone(), gz.finish().unwrap(), zs].iter().enumerate() {
            let blob_path = tmp.path().join(format!("blob{i}"));
            fs::write(&blob_path, blob).unwrap();
            let dst = tmp.path().join(format!("dst{i}"));
            fs::create_dir(&dst).unwrap();
            assert_eq!(unpack_layer(&blob_path, &dst).unwrap(), want);
            assert_eq!(fs::read(dst.join("etc/hello")).unwrap(), b"hi\n");
        }
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        if !nix::unistd::geteuid().is_root() {
            panic!("this test needs root (mknod, trusted.* xattrs)");
        }
        let raw = tar_with(&[
            ("a/", None),
            ("a/.wh..wh..opq", Some(b"")),
            ("b/.wh.gone", Some(b"")),
        ]);
        let tmp = tempfile::tempdir().unwrap();
        unpack_tar(&raw[..], tmp.path(), "test").unwrap();
        let md = fs::symlink_metadata(tmp.path().join("b/gone")).unwrap();
        assert!(md.file_type().is_char_device());
        let mut buf = [0u8; 4];
        let p = CString::new(tmp.path().join("a").as_os_str().as_bytes()).unwrap();
        let n = CString::new("trusted.overlay.opaque").unwrap();
        // SAFETY: valid C strings and buffer.
        let len =
            unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        assert_eq!(len, 1);
        assert_eq!(buf[0], b'y');
    }

    #[test]
    fn refuses_parent_paths() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(1);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        // append_data refuses "..", so write the name into the header directly.
        h.as_old_mut().name[..9].copy_from_slice(b"../escape");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let raw = b.into_inner().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dst = tmp.path().join("d");
        fs::create_dir(&dst).unwrap();
        assert!(matches!(
            unpack_tar(&raw[..], &dst, "test"),
            Err(Error::UnsafePath { .. })
        ));
        assert!(!tmp.path().join("escape").exists());
    }
}
