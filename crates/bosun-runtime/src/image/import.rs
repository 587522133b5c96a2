//! Importing images from an OCI image layout directory (also what an OCI archive unpacks to)
//! or from the unpacked `docker save` format.
use std::fs;
use std::path::Path;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use serde::Deserialize;

use super::unpack::Compression;
use super::{digest_hex, normalize, ImageInfo, ImageStore};
use crate::error::{Error, Result};

const NAME_ANNOTATIONS: [&str; 2] = [
    "io.containerd.image.name",
    "org.opencontainers.image.ref.name",
];

/// Imports every image of an unpacked archive or layout directory. Caller holds the lock.
pub(super) fn import_dir(
    store: &ImageStore,
    dir: &Path,
    name: Option<&str>,
) -> Result<Vec<ImageInfo>> {
    if dir.join("index.json").is_file() {
        import_oci(store, dir, name)
    } else if dir.join("manifest.json").is_file() {
        import_docker(store, dir, name)
    } else {
        Err(Error::InvalidImage {
            what: dir.display().to_string(),
            msg: "neither an OCI layout (index.json) nor a docker save archive (manifest.json)"
                .into(),
        })
    }
}

fn invalid(what: impl Into<String>, msg: impl ToString) -> Error {
    Error::InvalidImage {
        what: what.into(),
        msg: msg.to_string(),
    }
}

fn layout_blob(dir: &Path, d: &Descriptor) -> Result<std::path::PathBuf> {
    let digest = d.digest().to_string();
    Ok(dir.join("blobs/sha256").join(digest_hex(&digest)?))
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn platform_matches(d: &Descriptor) -> bool {
    match d.platform() {
        None => true,
        Some(p) => p.os().to_string() == "linux" && p.architecture().to_string() == host_arch(),
    }
}

/// The manifests an index names for this platform, following nested indexes.
fn collect_manifests(
    dir: &Path,
    index: &ImageIndex,
    out: &mut Vec<Descriptor>,
    depth: u8,
) -> Result<()> {
    if depth > 4 {
        return Err(invalid(
            dir.display().to_string(),
            "indexes nested too deep",
        ));
    }
    for d in index.manifests() {
        match d.media_type() {
            MediaType::ImageIndex => {
                let path = layout_blob(dir, d)?;
                let nested = ImageIndex::from_file(&path)
                    .map_err(|e| invalid(path.display().to_string(), e))?;
                let before = out.len();
                collect_manifests(dir, &nested, out, depth + 1)?;
                // A nested index carries the name on its own descriptor.
                if let Some(a) = d.annotations() {
                    for m in &mut out[before..] {
                        let mut ann = m.annotations().clone().unwrap_or_default();
                        for k in NAME_ANNOTATIONS {
                            if let Some(v) = a.get(k) {
                                ann.entry(k.to_owned()).or_insert_with(|| v.clone());
                            }
                        }
                        m.set_annotations(Some(ann));
                    }
                }
            }
            MediaType::ImageManifest | MediaType::Other(_) if platform_matches(d) => {
                out.push(d.clone());
            }
            _ => {}
        }
    }
    Ok(())
}

fn import_oci(store: &ImageStore, dir: &Path, name: Option<&str>) -> Result<Vec<ImageInfo>> {
    let index_path = dir.join("index.json");
    let index = ImageIndex::from_file(&index_path)
        .map_err(|e| invalid(index_path.display().to_string(), e))?;
    let mut manifests = Vec::new();
    collect_manifests(dir, &index, &mut manifests, 0)?;
    if manifests.is_empty() {
        return Err(invalid(
            dir.display().to_string(),
            format!("no image for linux/{}", host_arch()),
        ));
    }
    let mut out = Vec::new();
    for (i, d) in manifests.iter().enumerate() {
        let reference = match (name, i) {
            (Some(n), 0) => normalize(n)?,
            _ => {
                let ann = d.annotations().clone().unwrap_or_default();
                let found = NAME_ANNOTATIONS
                    .iter()
                    .filter_map(|k| ann.get(*k))
                    .find(|v| v.contains('/') || v.contains(':'));
                match found {
                    Some(n) => normalize(n)?,
                    None => {
                        return Err(invalid(
                            dir.display().to_string(),
                            "the archive names no image; give a name",
                        ))
                    }
                }
            }
        };
        let manifest_digest = d.digest().to_string();
        store.put_blob_file(&layout_blob(dir, d)?, Some(&manifest_digest))?;
        let mpath = store.blob_path(&manifest_digest)?;
        let manifest =
            ImageManifest::from_file(&mpath).map_err(|e| invalid(manifest_digest.clone(), e))?;
        store.put_blob_file(
            &layout_blob(dir, manifest.config())?,
            Some(manifest.config().digest().as_ref()),
        )?;
        for l in manifest.layers() {
            store.put_blob_file(&layout_blob(dir, l)?, Some(l.digest().as_ref()))?;
        }
        let (config_digest, size) = store.unpack_manifest(&manifest_digest)?;
        store.tag(&reference, &manifest_digest)?;
        out.push(ImageInfo {
            reference,
            manifest_digest,
            config_digest,
            size,
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// A path inside the archive directory, refusing `..` and absolute paths.
fn inside(dir: &Path, rel: &str) -> Result<std::path::PathBuf> {
    let p = Path::new(rel);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(Error::UnsafePath {
            layer: dir.display().to_string(),
            path: rel.to_owned(),
        });
    }
    Ok(dir.join(p))
}

fn import_docker(store: &ImageStore, dir: &Path, name: Option<&str>) -> Result<Vec<ImageInfo>> {
    let mpath = dir.join("manifest.json");
    let data = fs::read(&mpath).map_err(Error::io("read", &mpath))?;
    let entries: Vec<DockerManifest> =
        serde_json::from_slice(&data).map_err(|source| Error::Json {
            path: mpath.clone(),
            source,
        })?;
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let (config_digest, config_size) =
            store.put_blob_file(&inside(dir, &entry.config)?, None)?;
        let mut layers = Vec::new();
        for l in &entry.layers {
            let path = inside(dir, l)?;
            let mut head = [0u8; 4];
            let n = {
                use std::io::Read;
                let mut f = fs::File::open(&path).map_err(Error::io("open", &path))?;
                f.read(&mut head).map_err(Error::io("read", &path))?
            };
            let media_type = match Compression::detect(&head[..n]) {
                Compression::None => "application/vnd.oci.image.layer.v1.tar",
                Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
                Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            };
            let (digest, size) = store.put_blob_file(&path, None)?;
            layers
                .push(serde_json::json!({"mediaType": media_type, "digest": digest, "size": size}));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config_size,
            },
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&manifest).map_err(|source| Error::Json {
            path: mpath.clone(),
            source,
        })?;
        let manifest_digest = store.put_blob_bytes(&bytes)?;
        let (config_digest, size) = store.unpack_manifest(&manifest_digest)?;
        let mut names: Vec<String> = match (name, i) {
            (Some(n), 0) => vec![n.to_owned()],
            _ => entry.repo_tags.clone().unwrap_or_default(),
        };
        if names.is_empty() {
            return Err(invalid(
                dir.display().to_string(),
                "the archive names no image; give a name",
            ));
        }
        for n in names.drain(..) {
            let reference = normalize(&n)?;
            store.tag(&reference, &manifest_digest)?;
            out.push(ImageInfo {
                reference,
                manifest_digest: manifest_digest.clone(),
                config_digest: config_digest.clone(),
                size,
            });
        }
    }
    Ok(out)
}
