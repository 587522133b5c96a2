//! The content-addressed image store under `DATA_DIR/images`:
//!
//! ```text
//! images/lock                 flock: shared while reading, exclusive while importing or collecting
//! images/refs.json            reference (docker.io/library/busybox:latest) → manifest digest
//! images/blobs/sha256/<hex>   manifests, configs and layer blobs, verified against their digest
//! images/layers/<hex>/        each layer unpacked once, keyed by its diff id; overlay lowerdirs
//! images/tmp/                 archives being imported
//! ```
//!
//! Every file appears by an atomic rename, so a second process (`bosun image import` while the
//! agent runs) sees complete blobs and layers or nothing.
mod import;
pub mod reference;
pub mod registry;
pub mod unpack;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::{ImageConfiguration, ImageManifest};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::fsutil::{self, FileLock};

pub use reference::normalize;
pub use registry::{Credential, PullError, PullErrorKind, PullOptions, PullReport};

/// What `image ls` shows for one reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// Normalised reference, e.g. `docker.io/library/busybox:latest`.
    pub reference: String,
    /// Digest of the manifest (what a registry calls the image digest).
    pub manifest_digest: String,
    /// Digest of the config: the image ID, as `crictl images` shows it.
    pub config_digest: String,
    /// Sum of the (compressed) layer blob sizes.
    pub size: u64,
}

/// An image resolved for running: its config and its unpacked layers, bottom first.
#[derive(Debug, Clone)]
pub struct Image {
    pub reference: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub config: ImageConfiguration,
    /// Diff ids, bottom layer first.
    pub layers: Vec<String>,
    /// The unpacked directories of `layers`, same order.
    pub layer_dirs: Vec<PathBuf>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Refs {
    refs: BTreeMap<String, String>,
}

/// What a garbage collection removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcStats {
    pub blobs_removed: usize,
    pub layers_removed: usize,
    pub bytes_freed: u64,
}

/// The image store of one data directory.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
    containers_dir: PathBuf,
}

impl ImageStore {
    /// Opens (creating if needed) the store under `data_dir/images`.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let root = data_dir.join("images");
        for d in ["blobs/sha256", "layers", "tmp"] {
            fsutil::create_dir_all(&root.join(d))?;
        }
        Ok(Self {
            root,
            containers_dir: data_dir.join("containers"),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock_path(&self) -> PathBuf {
        self.root.join("lock")
    }

    pub(crate) fn lock_shared(&self) -> Result<FileLock> {
        FileLock::shared(&self.lock_path())
    }

    fn lock_exclusive(&self) -> Result<FileLock> {
        FileLock::exclusive(&self.lock_path())
    }

    fn refs_path(&self) -> PathBuf {
        self.root.join("refs.json")
    }

    fn read_refs(&self) -> Result<Refs> {
        Ok(fsutil::read_json_opt(&self.refs_path())?.unwrap_or_default())
    }

    fn write_refs(&self, refs: &Refs) -> Result<()> {
        fsutil::write_json(&self.refs_path(), refs)
    }

    /// Path of a blob by digest (`sha256:<hex>`).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        let hex = digest_hex(digest)?;
        Ok(self.root.join("blobs/sha256").join(hex))
    }

    /// Directory of an unpacked layer by diff id.
    pub fn layer_dir(&self, diff_id: &str) -> Result<PathBuf> {
        Ok(self.root.join("layers").join(digest_hex(diff_id)?))
    }

    /// Imports an OCI layout directory, an OCI archive or a `docker save` archive. `name`
    /// overrides the reference recorded in the archive. Returns the imported images.
    pub fn import(&self, path: &Path, name: Option<&str>) -> Result<Vec<ImageInfo>> {
        let _lock = self.lock_exclusive()?;
        let md = fs::metadata(path).map_err(Error::io("stat", path))?;
        if md.is_dir() {
            return import::import_dir(self, path, name);
        }
        let tmp = fsutil::tmp_sibling(&self.root.join("tmp"), "import");
        fsutil::create_dir_all(&tmp)?;
        let result = (|| {
            let f = fs::File::open(path).map_err(Error::io("open", path))?;
            let mut archive = tar::Archive::new(std::io::BufReader::new(f));
            archive
                .unpack(&tmp)
                .map_err(Error::io("unpack archive", path))?;
            import::import_dir(self, &tmp, name)
        })();
        fsutil::remove_dir_all(&tmp)?;
        result
    }

    /// Copies `src` into the blob store, verifying `expected` if given; returns (digest, size).
    pub(crate) fn put_blob_file(
        &self,
        src: &Path,
        expected: Option<&str>,
    ) -> Result<(String, u64)> {
        if let Some(d) = expected {
            let dst = self.blob_path(d)?;
            if let Ok(md) = fs::metadata(&dst) {
                return Ok((d.to_owned(), md.len()));
            }
        }
        let tmp = fsutil::tmp_sibling(&self.root.join("blobs/sha256"), "blob");
        let mut input = fs::File::open(src).map_err(Error::io("open", src))?;
        let mut out = fs::File::create(&tmp).map_err(Error::io("create", &tmp))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = input.read(&mut buf).map_err(Error::io("read", src))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            std::io::Write::write_all(&mut out, &buf[..n]).map_err(Error::io("write", &tmp))?;
            size += n as u64;
        }
        out.sync_all().map_err(Error::io("fsync", &tmp))?;
        let digest = format!("sha256:{:x}", hasher.finalize());
        if let Some(e) = expected {
            if e != digest {
                let _ = fs::remove_file(&tmp);
                return Err(Error::DigestMismatch {
                    what: src.display().to_string(),
                    expected: e.to_owned(),
                    actual: digest,
                });
            }
        }
        let dst = self.blob_path(&digest)?;
        fs::rename(&tmp, &dst).map_err(Error::io("rename", &dst))?;
        Ok((digest, size))
    }

    pub(crate) fn put_blob_bytes(&self, data: &[u8]) -> Result<String> {
        let digest = format!("sha256:{:x}", Sha256::digest(data));
        let dst = self.blob_path(&digest)?;
        if !dst.exists() {
            fsutil::write_atomic(&dst, data)?;
        }
        Ok(digest)
    }

    fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.blob_path(digest)?;
        fs::read(&p).map_err(Error::io("read blob", p))
    }

    fn manifest(&self, digest: &str) -> Result<ImageManifest> {
        let data = self.read_blob(digest)?;
        ImageManifest::from_reader(&data[..]).map_err(|e| Error::InvalidImage {
            what: format!("manifest {digest}"),
            msg: e.to_string(),
        })
    }

    fn config(&self, digest: &str) -> Result<ImageConfiguration> {
        let data = self.read_blob(digest)?;
        ImageConfiguration::from_reader(&data[..]).map_err(|e| Error::InvalidImage {
            what: format!("config {digest}"),
            msg: e.to_string(),
        })
    }

    /// Stores a manifest's layers unpacked (once each) and checks them against the config's
    /// diff ids. The caller holds the exclusive lock.
    pub(crate) fn unpack_manifest(&self, manifest_digest: &str) -> Result<(String, u64)> {
        let manifest = self.manifest(manifest_digest)?;
        let config_digest = manifest.config().digest().to_string();
        let config = self.config(&config_digest)?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(Error::InvalidImage {
                what: format!("manifest {manifest_digest}"),
                msg: format!(
                    "{} layers but {} diff ids in the config",
                    manifest.layers().len(),
                    diff_ids.len()
                ),
            });
        }
        let mut size = 0;
        for (layer, diff_id) in manifest.layers().iter().zip(diff_ids) {
            size += layer.size();
            let dir = self.layer_dir(diff_id)?;
            if dir.exists() {
                continue;
            }
            let blob = self.blob_path(layer.digest().as_ref())?;
            let tmp = fsutil::tmp_sibling(&self.root.join("layers"), "layer");
            fsutil::create_dir_all(&tmp)?;
            let got = match unpack::unpack_layer(&blob, &tmp) {
                Ok(d) => d,
                Err(e) => {
                    let _ = fsutil::remove_dir_all(&tmp);
                    return Err(e);
                }
            };
            if &got != diff_id {
                let _ = fsutil::remove_dir_all(&tmp);
                return Err(Error::DigestMismatch {
                    what: format!("layer {}", layer.digest()),
                    expected: diff_id.clone(),
                    actual: got,
                });
            }
            fs::rename(&tmp, &dir).map_err(Error::io("rename", &dir))?;
        }
        Ok((config_digest, size))
    }

    /// Records `reference` → `manifest_digest`. The caller holds the exclusive lock.
    pub(crate) fn tag(&self, reference: &str, manifest_digest: &str) -> Result<()> {
        let mut refs = self.read_refs()?;
        refs.refs
            .insert(reference.to_owned(), manifest_digest.to_owned());
        self.write_refs(&refs)
    }

    fn info(&self, reference: &str, manifest_digest: &str) -> Result<ImageInfo> {
        let manifest = self.manifest(manifest_digest)?;
        Ok(ImageInfo {
            reference: reference.to_owned(),
            manifest_digest: manifest_digest.to_owned(),
            config_digest: manifest.config().digest().to_string(),
            size: manifest.layers().iter().map(|l| l.size()).sum(),
        })
    }

    /// Every reference with its image.
    pub fn list(&self) -> Result<Vec<ImageInfo>> {
        let _lock = self.lock_shared()?;
        let refs = self.read_refs()?;
        refs.refs.iter().map(|(r, d)| self.info(r, d)).collect()
    }

    /// Finds the manifest digest for a reference, a manifest digest or an image ID (config
    /// digest, also as a unique prefix of at least 12 hex digits).
    fn find(&self, refs: &Refs, reference: &str) -> Result<(String, String)> {
        let not_found = || Error::ImageNotFound(reference.to_owned());
        let hex_query = reference.strip_prefix("sha256:").unwrap_or(reference);
        let looks_like_id =
            hex_query.len() >= 12 && hex_query.bytes().all(|b| b.is_ascii_hexdigit());
        if looks_like_id {
            for (r, d) in &refs.refs {
                if digest_hex(d).is_ok_and(|h| h.starts_with(hex_query)) {
                    return Ok((r.clone(), d.clone()));
                }
                if let Ok(m) = self.manifest(d) {
                    if m.config().digest().digest().starts_with(hex_query) {
                        return Ok((r.clone(), d.clone()));
                    }
                }
            }
            if !reference.contains(':') {
                return Err(not_found());
            }
        }
        let norm = normalize(reference)?;
        if let Some(d) = refs.refs.get(&norm) {
            return Ok((norm, d.clone()));
        }
        if let Some((_, digest)) = norm.split_once('@') {
            if self.blob_path(digest)?.exists() {
                return Ok((norm.clone(), digest.to_owned()));
            }
        }
        Err(not_found())
    }

    /// Whether the image is present (for imagePullPolicy IfNotPresent / Never).
    pub fn exists(&self, reference: &str) -> Result<bool> {
        let _lock = self.lock_shared()?;
        let refs = self.read_refs()?;
        match self.find(&refs, reference) {
            Ok(_) => Ok(true),
            Err(Error::ImageNotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Resolves a reference to its config and unpacked layers. The caller that creates a
    /// container from it should hold [`ImageStore::lock_shared`] until the container's config
    /// (which names the layers) is written, so a collection cannot remove them in between.
    pub(crate) fn resolve_locked(&self, reference: &str) -> Result<Image> {
        let refs = self.read_refs()?;
        let (reference, manifest_digest) = self.find(&refs, reference)?;
        let manifest = self.manifest(&manifest_digest)?;
        let config_digest = manifest.config().digest().to_string();
        let config = self.config(&config_digest)?;
        let layers = config.rootfs().diff_ids().clone();
        let layer_dirs = layers
            .iter()
            .map(|l| self.layer_dir(l))
            .collect::<Result<Vec<_>>>()?;
        for d in &layer_dirs {
            if !d.is_dir() {
                return Err(Error::InvalidImage {
                    what: reference.clone(),
                    msg: format!("layer {} is not unpacked", d.display()),
                });
            }
        }
        Ok(Image {
            reference,
            manifest_digest,
            config_digest,
            config,
            layers,
            layer_dirs,
        })
    }

    /// Resolves a reference (see [`ImageStore::resolve_locked`]).
    pub fn resolve(&self, reference: &str) -> Result<Image> {
        let _lock = self.lock_shared()?;
        self.resolve_locked(reference)
    }

    /// Removes a reference (the blobs go at the next [`ImageStore::gc`]). Refused while a
    /// container uses the image.
    pub fn remove(&self, reference: &str) -> Result<ImageInfo> {
        let _lock = self.lock_exclusive()?;
        let mut refs = self.read_refs()?;
        let (name, digest) = self.find(&refs, reference)?;
        let info = self.info(&name, &digest)?;
        let config = self.config(&info.config_digest)?;
        let used = self.layers_in_use()?;
        let others_keep: HashSet<&String> = refs
            .refs
            .iter()
            .filter(|(r, _)| **r != name)
            .map(|(_, d)| d)
            .collect();
        if !others_keep.contains(&digest) {
            if let Some(layer) = config
                .rootfs()
                .diff_ids()
                .iter()
                .find(|l| used.contains_key(*l))
            {
                return Err(Error::ImageInUse {
                    reference: name,
                    container: used.get(layer).cloned().unwrap_or_default(),
                });
            }
        }
        refs.refs.remove(&name);
        self.write_refs(&refs)?;
        Ok(info)
    }

    /// Layers named by existing containers' configs (`DATA_DIR/containers/*/config.json`),
    /// mapped to one container using each.
    fn layers_in_use(&self) -> Result<BTreeMap<String, String>> {
        let mut used = BTreeMap::new();
        let entries = match fs::read_dir(&self.containers_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(used),
            Err(e) => return Err(Error::io("read directory", &self.containers_dir)(e)),
        };
        for entry in entries.flatten() {
            let path = entry.path().join("config.json");
            let Ok(Some(v)) = fsutil::read_json_opt::<serde_json::Value>(&path) else {
                continue;
            };
            if let Some(layers) = v.get("layers").and_then(|l| l.as_array()) {
                for l in layers.iter().filter_map(|l| l.as_str()) {
                    used.insert(
                        l.to_owned(),
                        entry.file_name().to_string_lossy().into_owned(),
                    );
                }
            }
        }
        Ok(used)
    }

    /// Removes blobs and layers that no reference and no container uses, and stale temporary
    /// files. Takes the exclusive lock, so it waits for imports and container creations.
    pub fn gc(&self) -> Result<GcStats> {
        let _lock = self.lock_exclusive()?;
        let refs = self.read_refs()?;
        let mut keep_blobs = HashSet::new();
        let mut keep_layers: HashSet<String> = self
            .layers_in_use()?
            .into_keys()
            .filter_map(|l| digest_hex(&l).ok().map(str::to_owned))
            .collect();
        for digest in refs.refs.values() {
            keep_blobs.insert(digest_hex(digest)?.to_owned());
            let Ok(m) = self.manifest(digest) else {
                continue;
            };
            keep_blobs.insert(m.config().digest().digest().to_owned());
            for l in m.layers() {
                keep_blobs.insert(l.digest().digest().to_owned());
            }
            if let Ok(c) = self.config(m.config().digest().as_ref()) {
                for d in c.rootfs().diff_ids() {
                    keep_layers.insert(digest_hex(d)?.to_owned());
                }
            }
        }
        let mut stats = GcStats::default();
        let blobs = self.root.join("blobs/sha256");
        for entry in fs::read_dir(&blobs).map_err(Error::io("read directory", &blobs))? {
            let entry = entry.map_err(Error::io("read directory", &blobs))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep_blobs.contains(&name) {
                stats.bytes_freed += entry.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(entry.path()).map_err(Error::io("remove", entry.path()))?;
                stats.blobs_removed += 1;
            }
        }
        let layers = self.root.join("layers");
        for entry in fs::read_dir(&layers).map_err(Error::io("read directory", &layers))? {
            let entry = entry.map_err(Error::io("read directory", &layers))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep_layers.contains(&name) {
                fsutil::remove_dir_all(&entry.path())?;
                stats.layers_removed += 1;
            }
        }
        let tmp = self.root.join("tmp");
        for entry in fs::read_dir(&tmp)
            .map_err(Error::io("read directory", &tmp))?
            .flatten()
        {
            fsutil::remove_dir_all(&entry.path())?;
        }
        Ok(stats)
    }
}

/// The hex part of `sha256:<hex>`, checked so it can be used as a file name.
pub(crate) fn digest_hex(digest: &str) -> Result<&str> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| Error::InvalidImage {
            what: digest.to_owned(),
            msg: "only sha256 digests are supported".into(),
        })?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::InvalidImage {
            what: digest.to_owned(),
            msg: "malformed digest".into(),
        });
    }
    Ok(hex)
}
