//! Pulling images from an OCI / Docker registry (distribution API v2) into the [`ImageStore`].
//!
//! A pull resolves the reference as Docker does (`busybox` → `docker.io/library/busybox:latest`,
//! served by `registry-1.docker.io`), fetches the manifest accepting OCI and Docker v2 indexes
//! and manifests, picks the `linux/<host arch>` image of an index, and downloads the config and
//! the layers the store lacks, a few at a time, each streamed to a temporary file, verified
//! against its digest and size, and renamed into place. The store's locks are taken as for an
//! import: shared while downloading (so a collection cannot remove what was just fetched, and
//! containers can still be created), exclusive to unpack and tag.
//!
//! Network I/O is async (tokio); file-lock waits and unpacking, which block, run in
//! `spawn_blocking`.
mod auth;
mod client;

use futures::stream::{self, StreamExt as _, TryStreamExt as _};
use http::StatusCode;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tracing::Instrument as _;

pub use auth::{parse_www_authenticate, Challenge, Credential};
use client::{error_detail, Session, Transport, MAX_MANIFEST};

use super::{digest_hex, normalize, ImageInfo, ImageStore};
use crate::error::{Error, Result};

pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const MEDIA_DOCKER_V1: &str = "application/vnd.docker.distribution.manifest.v1";

/// Everything a manifest GET accepts, indexes first (as containerd asks).
const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// How a pull reaches registries.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Registries (`host:port` as written in references, or `host` for every port) spoken to
    /// over plain HTTP. Default: none, HTTPS everywhere (Docker's default too, except that
    /// bosun does not treat `localhost` as implicitly insecure: it must be listed).
    pub insecure_registries: Vec<String>,
    /// Extra CA certificates (PEM), trusted besides the system's roots, for registries with a
    /// private CA.
    pub extra_ca_pem: Vec<Vec<u8>>,
    /// Credentials (from imagePullSecrets: [`Credential::from_docker_config`]). Those matching
    /// the reference are tried most specific first; without a match the pull is anonymous (the
    /// kubelet's rules).
    pub credentials: Vec<Credential>,
    /// Blobs downloaded at once. Default 3, dockerd's `max-concurrent-downloads`.
    pub max_concurrent_downloads: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            extra_ca_pem: Vec::new(),
            credentials: Vec::new(),
            max_concurrent_downloads: 3,
        }
    }
}

impl PullOptions {
    /// Adds the credentials of a docker config JSON (a `.dockerconfigjson` secret's value).
    pub fn add_docker_config(&mut self, json: &[u8]) -> Result<()> {
        self.credentials
            .extend(Credential::from_docker_config(json)?);
        Ok(())
    }
}

/// Why a pull failed, in the terms the kubelet reports (`ErrImagePull` messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullErrorKind {
    /// The repository, tag or digest does not exist (404, `MANIFEST_UNKNOWN`,
    /// `NAME_UNKNOWN`), or an index has no image for this platform.
    NotFound,
    /// The registry refused us (401/403): wrong or missing credentials. Docker Hub answers this
    /// for repositories that do not exist, too.
    Unauthorized,
    /// The registry could not be reached: DNS, connection refused, TLS failure, timeout, a
    /// transfer cut short.
    Unreachable,
    /// The reference itself is malformed (the kubelet's `InvalidImageName`).
    InvalidReference,
    /// The registry answered something unusable: an error status, a malformed or unsupported
    /// manifest (schema 1), a digest mismatch.
    Registry,
    /// Failing here, not there: disk, locks, configuration.
    Local,
}

/// A pull failure with its kind and the reference it concerns.
#[derive(Debug, Clone, thiserror::Error)]
#[error("pull {reference}: {detail}")]
pub struct PullError {
    pub kind: PullErrorKind,
    /// The normalised reference.
    pub reference: String,
    pub detail: String,
}

impl PullError {
    fn new(kind: PullErrorKind, reference: &str, detail: impl Into<String>) -> Self {
        Self {
            kind,
            reference: reference.to_owned(),
            detail: detail.into(),
        }
    }
}

impl From<PullError> for Error {
    fn from(e: PullError) -> Self {
        Error::Pull(e)
    }
}

impl Error {
    /// The kind of a pull failure, for the kubelet's `ErrImagePull` / `InvalidImageName`.
    pub fn pull_error_kind(&self) -> PullErrorKind {
        match self {
            Error::Pull(e) => e.kind,
            Error::InvalidReference { .. } => PullErrorKind::InvalidReference,
            Error::DigestMismatch { .. } | Error::InvalidImage { .. } => PullErrorKind::Registry,
            _ => PullErrorKind::Local,
        }
    }
}

/// A reference split into what the registry API needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The normalised reference ([`normalize`]), what the store records.
    pub normalized: String,
    /// `docker.io`, `quay.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// `library/busybox`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(reference: &str) -> Result<Self> {
        let normalized = normalize(reference)?;
        let bad = |msg: &str| Error::InvalidReference {
            reference: reference.to_owned(),
            msg: msg.to_owned(),
        };
        let (registry, rest) = normalized
            .split_once('/')
            .ok_or_else(|| bad("no repository"))?;
        let (repository, tag, digest) = match rest.split_once('@') {
            Some((repo, d)) => {
                digest_hex(d).map_err(|_| bad("digest must be sha256:<64 hex>"))?;
                (repo, None, Some(d.to_owned()))
            }
            None => {
                let (repo, tag) = rest.rsplit_once(':').ok_or_else(|| bad("no tag"))?;
                let tag_ok = !tag.is_empty()
                    && tag.len() <= 128
                    && !tag.starts_with(['.', '-'])
                    && tag
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
                if !tag_ok {
                    return Err(bad("invalid tag"));
                }
                (repo, Some(tag.to_owned()), None)
            }
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && c.as_bytes()[0].is_ascii_alphanumeric()
                && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
        };
        if !repository.split('/').all(component_ok) {
            return Err(bad("invalid repository name"));
        }
        let port_ok = match registry.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(':') && !registry.starts_with('[') => {
                !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
            }
            _ => true,
        };
        let registry_ok = !registry.is_empty()
            && port_ok
            && registry.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
            });
        if !registry_ok {
            return Err(bad("invalid registry host"));
        }
        Ok(Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag,
            digest,
            normalized,
        })
    }

    /// The host serving the registry API: Docker Hub's names go to `registry-1.docker.io`.
    pub fn endpoint(&self) -> &str {
        if auth::canonical_host(&self.registry) == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// The tag or digest, as the manifests URL takes it.
    fn tag_or_digest(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

/// A content descriptor as manifests and indexes write it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// The platform of an index entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// Both manifests and indexes, OCI or Docker, read leniently: what decides is which fields
/// are there, then the media type.
#[derive(Debug, Deserialize)]
struct ManifestDoc {
    #[serde(rename = "schemaVersion", default)]
    schema_version: Option<u32>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

/// This machine's platform, in OCI's (Go's) names.
pub fn host_platform() -> Platform {
    let (architecture, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "x86" => ("386", None),
        "arm" => ("arm", None),
        "powerpc64" => ("ppc64le", None),
        "loongarch64" => ("loong64", None),
        other => (other, None),
    };
    Platform {
        architecture: architecture.to_owned(),
        os: "linux".to_owned(),
        variant: variant.map(str::to_owned),
    }
}

/// The variant an entry means when it gives none (containerd's normalisation).
fn normalized_variant<'a>(arch: &str, v: Option<&'a str>) -> Option<&'a str> {
    match (arch, v) {
        ("arm64", None | Some("")) => Some("v8"),
        ("amd64", None | Some("")) => Some("v1"),
        (_, Some("")) => None,
        (_, v) => v,
    }
}

/// The index entry to run on `host`: same OS and architecture, and the same variant where
/// the host has one (arm64's implicit `v8`, amd64's `v1`; a 32-bit arm host takes any). The
/// first match wins, as in containerd. Entries without a platform count only when no entry
/// has one (then the first is taken).
pub(crate) fn select_platform<'a>(
    entries: &'a [Descriptor],
    host: &Platform,
) -> Option<&'a Descriptor> {
    let manifests = || {
        entries.iter().filter(|d| {
            d.media_type.is_empty()
                || d.media_type == MEDIA_OCI_MANIFEST
                || d.media_type == MEDIA_DOCKER_MANIFEST
        })
    };
    if entries.iter().all(|d| d.platform.is_none()) {
        return manifests().next();
    }
    let host_variant = normalized_variant(&host.architecture, host.variant.as_deref());
    manifests().find(|d| {
        let Some(p) = &d.platform else {
            return false;
        };
        if p.os != host.os || p.architecture != host.architecture {
            return false;
        }
        match host_variant {
            None => true,
            Some(_) => normalized_variant(&p.architecture, p.variant.as_deref()) == host_variant,
        }
    })
}

/// What a pull did, beside the image it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullReport {
    pub image: ImageInfo,
    /// Blobs fetched from the registry (0 when everything was present).
    pub blobs_downloaded: usize,
    pub bytes_downloaded: u64,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Other(format!("blocking task failed: {e}")))?
}

/// A fetched, verified manifest.
struct Fetched {
    digest: String,
    bytes: bytes::Bytes,
    doc: ManifestDoc,
}

impl ImageStore {
    /// Pulls `reference` from its registry (see the module docs) and records it, returning the
    /// image as [`ImageStore::list`] shows it. Pulling an image that is present only fetches
    /// its manifest (or nothing, for a digest reference).
    pub async fn pull(&self, reference: &str, opts: &PullOptions) -> Result<ImageInfo> {
        Ok(self.pull_with_report(reference, opts).await?.image)
    }

    /// [`ImageStore::pull`], also saying what was downloaded.
    pub async fn pull_with_report(
        &self,
        reference: &str,
        opts: &PullOptions,
    ) -> Result<PullReport> {
        let r = ImageRef::parse(reference)?;
        let span = tracing::info_span!("pull", reference = %r.normalized);
        self.pull_ref(&r, opts).instrument(span).await
    }

    async fn pull_ref(&self, r: &ImageRef, opts: &PullOptions) -> Result<PullReport> {
        // A digest names content: if it is here, there is nothing to ask the registry.
        if r.digest.is_some() {
            let store = self.clone();
            let name = r.normalized.clone();
            let present = blocking(move || match store.resolve(&name) {
                Ok(img) => {
                    let _lock = store.lock_exclusive()?;
                    store.tag(&name, &img.manifest_digest)?;
                    store.info(&name, &img.manifest_digest).map(Some)
                }
                Err(_) => Ok(None),
            })
            .await?;
            if let Some(image) = present {
                return Ok(PullReport {
                    image,
                    blobs_downloaded: 0,
                    bytes_downloaded: 0,
                });
            }
        }
        let transport = Transport::new(opts)?;
        // As the kubelet: anonymous when no secret matches, else each matching credential in
        // turn (not anonymous after them), reporting the most specific one's refusal.
        let mut candidates: Vec<Option<&Credential>> = auth::matching(&opts.credentials, r)
            .into_iter()
            .map(Some)
            .collect();
        if candidates.is_empty() {
            candidates.push(None);
        }
        let mut first_refusal = None;
        for cred in candidates {
            let session = Session::new(&transport, r, cred);
            match self.pull_session(&session, r, opts).await {
                Err(Error::Pull(e)) if e.kind == PullErrorKind::Unauthorized => {
                    first_refusal.get_or_insert(e);
                }
                other => return other,
            }
        }
        Err(first_refusal
            .map(Error::Pull)
            .unwrap_or_else(|| Error::Other("no pull attempted".into())))
    }

    async fn pull_session(
        &self,
        session: &Session<'_>,
        r: &ImageRef,
        opts: &PullOptions,
    ) -> Result<PullReport> {
        let top = fetch_manifest(session, r, r.tag_or_digest(), r.digest.as_deref()).await?;
        let manifest = if let Some(entries) = &top.doc.manifests {
            let host = host_platform();
            let d = select_platform(entries, &host).ok_or_else(|| {
                PullError::new(
                    PullErrorKind::NotFound,
                    &r.normalized,
                    format!(
                        "no image for {}/{}{} in the index (it has: {})",
                        host.os,
                        host.architecture,
                        host.variant
                            .as_deref()
                            .map(|v| format!("/{v}"))
                            .unwrap_or_default(),
                        platforms(entries)
                    ),
                )
            })?;
            let m = fetch_manifest(session, r, &d.digest, Some(&d.digest)).await?;
            if m.doc.manifests.is_some() {
                return Err(PullError::new(
                    PullErrorKind::Registry,
                    &r.normalized,
                    format!("index entry {} is another index", d.digest),
                )
                .into());
            }
            m
        } else {
            top
        };
        let config = manifest.doc.config.clone().ok_or_else(|| {
            PullError::new(
                PullErrorKind::Registry,
                &r.normalized,
                format!("manifest {} has no config", manifest.digest),
            )
        })?;
        // The store reads manifests with oci-spec; refuse here what it could not read later.
        oci_spec::image::ImageManifest::from_reader(&manifest.bytes[..]).map_err(|e| {
            PullError::new(
                PullErrorKind::Registry,
                &r.normalized,
                format!("manifest {}: {e}", manifest.digest),
            )
        })?;
        let mut blobs = vec![config];
        blobs.extend(manifest.doc.layers.iter().cloned());
        for b in &blobs {
            digest_hex(&b.digest).map_err(|_| {
                PullError::new(
                    PullErrorKind::Registry,
                    &r.normalized,
                    format!("unsupported digest {:?} (only sha256)", b.digest),
                )
            })?;
        }
        let mut downloaded = 0;
        let mut bytes = 0;
        // A collection may run between the downloads (shared lock) and the unpack (exclusive
        // lock) and remove the blobs no reference names yet; fetch again then.
        for _attempt in 0..3 {
            let (n, b) = self.download_missing(session, &blobs, opts).await?;
            downloaded += n;
            bytes += b;
            let store = self.clone();
            let name = r.normalized.clone();
            let digest = manifest.digest.clone();
            let mbytes = manifest.bytes.clone();
            let needed: Vec<String> = blobs.iter().map(|b| b.digest.clone()).collect();
            let done = blocking(move || {
                let _lock = store.lock_exclusive()?;
                for d in &needed {
                    if !store.blob_path(d)?.exists() {
                        return Ok(None);
                    }
                }
                let stored = store.put_blob_bytes(&mbytes)?;
                if stored != digest {
                    return Err(Error::DigestMismatch {
                        what: format!("manifest of {name}"),
                        expected: digest,
                        actual: stored,
                    });
                }
                store.unpack_manifest(&digest)?;
                store.tag(&name, &digest)?;
                store.info(&name, &digest).map(Some)
            })
            .await?;
            if let Some(image) = done {
                tracing::info!(
                    digest = %image.manifest_digest,
                    blobs = downloaded,
                    bytes,
                    "pulled"
                );
                return Ok(PullReport {
                    image,
                    blobs_downloaded: downloaded,
                    bytes_downloaded: bytes,
                });
            }
        }
        Err(Error::Other(format!(
            "pull {}: blobs kept disappearing (image garbage collection running?)",
            r.normalized
        )))
    }

    /// Downloads the blobs not in the store, `max_concurrent_downloads` at a time, holding the
    /// shared lock. Returns how many blobs and bytes were fetched.
    async fn download_missing(
        &self,
        session: &Session<'_>,
        blobs: &[Descriptor],
        opts: &PullOptions,
    ) -> Result<(usize, u64)> {
        let store = self.clone();
        let wanted: Vec<Descriptor> = blobs.to_vec();
        let (lock, missing) = blocking(move || {
            let lock = store.lock_shared()?;
            let mut missing = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for d in wanted {
                let path = store.blob_path(&d.digest)?;
                if !path.exists() && seen.insert(d.digest.clone()) {
                    missing.push((d, path));
                }
            }
            Ok((lock, missing))
        })
        .await?;
        let dir = self.root.join("blobs/sha256");
        let n = missing.len();
        // Collected first: a lazy `map` closure held across the awaits below would make the
        // pull future not `Send` (rustc's higher-ranked closure lifetimes).
        let downloads: Vec<_> = missing
            .iter()
            .map(|(d, path)| {
                tracing::debug!(digest = %d.digest, size = d.size, "downloading blob");
                session.download_blob(d, &dir, path)
            })
            .collect();
        let bytes: u64 = stream::iter(downloads)
            .buffer_unordered(opts.max_concurrent_downloads.max(1))
            .try_fold(0u64, |acc, b| async move { Ok(acc + b) })
            .await?;
        drop(lock);
        Ok((n, bytes))
    }
}

fn platforms(entries: &[Descriptor]) -> String {
    let list: Vec<String> = entries
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .map(|p| match &p.variant {
            Some(v) if !v.is_empty() => format!("{}/{}/{v}", p.os, p.architecture),
            _ => format!("{}/{}", p.os, p.architecture),
        })
        .collect();
    if list.is_empty() {
        "no platforms".into()
    } else {
        list.join(", ")
    }
}

/// GETs a manifest or index by tag or digest and verifies it: against `expected` when pulling
/// by digest, else against the registry's `Docker-Content-Digest`, if it sends one.
async fn fetch_manifest(
    session: &Session<'_>,
    r: &ImageRef,
    tag_or_digest: &str,
    expected: Option<&str>,
) -> Result<Fetched> {
    let perr = |kind, detail: String| Error::from(PullError::new(kind, &r.normalized, detail));
    let path = format!("/v2/{}/manifests/{tag_or_digest}", r.repository);
    let resp = session.get(&path, Some(ACCEPT_MANIFESTS)).await?;
    let status = resp.status();
    if status == StatusCode::NOT_FOUND {
        let detail = error_detail(resp).await;
        let detail = if detail.is_empty() {
            "manifest unknown".to_owned()
        } else {
            detail
        };
        return Err(perr(
            PullErrorKind::NotFound,
            format!("image not found in registry {} ({detail})", r.registry),
        ));
    }
    if !status.is_success() {
        let detail = error_detail(resp).await;
        return Err(perr(
            PullErrorKind::Registry,
            format!("manifest {tag_or_digest}: registry answered {status}: {detail}"),
        ));
    }
    let header_digest = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let content_type = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned());
    let bytes = session.read_small(resp, MAX_MANIFEST).await?;
    let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
    let want = expected
        .map(str::to_owned)
        .or(header_digest.filter(|d| d.starts_with("sha256:")));
    if let Some(want) = want {
        if want != digest {
            return Err(Error::DigestMismatch {
                what: format!("manifest {tag_or_digest} of {}", r.normalized),
                expected: want,
                actual: digest,
            });
        }
    }
    let media_type = content_type.unwrap_or_default();
    if media_type.starts_with(MEDIA_DOCKER_V1) {
        return Err(perr(
            PullErrorKind::Registry,
            "the image has a Docker schema 1 manifest, which is not supported (deprecated \
             since 2019); push it again with a current client"
                .into(),
        ));
    }
    let doc: ManifestDoc = serde_json::from_slice(&bytes).map_err(|e| {
        perr(
            PullErrorKind::Registry,
            format!("manifest {tag_or_digest}: invalid json: {e}"),
        )
    })?;
    if doc.schema_version == Some(1) {
        return Err(perr(
            PullErrorKind::Registry,
            "the image has a Docker schema 1 manifest, which is not supported (deprecated \
             since 2019); push it again with a current client"
                .into(),
        ));
    }
    let kind = doc.media_type.as_deref().unwrap_or(&media_type);
    let is_index = doc.manifests.is_some() || kind == MEDIA_OCI_INDEX || kind == MEDIA_DOCKER_LIST;
    if is_index && doc.manifests.is_none() {
        return Err(perr(
            PullErrorKind::Registry,
            format!("index {tag_or_digest} lists no manifests"),
        ));
    }
    if !is_index && doc.config.is_none() {
        return Err(perr(
            PullErrorKind::Registry,
            format!("manifest {tag_or_digest} ({kind}) is neither an image manifest nor an index"),
        ));
    }
    Ok(Fetched { digest, bytes, doc })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references_like_docker() {
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/busybox");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.endpoint(), "registry-1.docker.io");
        assert_eq!(r.normalized, "docker.io/library/busybox:latest");

        let r = ImageRef::parse("docker.io/busybox:1.36").unwrap();
        assert_eq!(r.repository, "library/busybox");
        assert_eq!(r.normalized, "docker.io/library/busybox:1.36");

        let r = ImageRef::parse("index.docker.io/user/app").unwrap();
        assert_eq!(r.endpoint(), "registry-1.docker.io");

        let r = ImageRef::parse("127.0.0.1:5000/team/app:v1.2-rc_3").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("v1.2-rc_3"));
        assert_eq!(r.endpoint(), "127.0.0.1:5000");

        let d = format!("sha256:{}", "ab".repeat(32));
        let r = ImageRef::parse(&format!("quay.io/a/b:ignored@{d}")).unwrap();
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.tag, None);
        assert_eq!(r.tag_or_digest(), d);
        assert_eq!(r.normalized, format!("quay.io/a/b@{d}"));

        let r = ImageRef::parse("localhost/app").unwrap();
        assert_eq!(r.registry, "localhost");

        for bad in [
            "",
            "Busybox",
            "a b",
            "busybox:",
            "busybox:-x",
            "busybox:a/b",
            "a//b",
            "r.io/-a",
            "r.io/a_",
            "x@sha256:zz",
            "x@md5:abc",
        ] {
            let e = ImageRef::parse(bad).unwrap_err();
            assert_eq!(
                e.pull_error_kind(),
                PullErrorKind::InvalidReference,
                "{bad}"
            );
        }
    }

    fn entry(digest: &str, os: &str, arch: &str, variant: Option<&str>) -> Descriptor {
        Descriptor {
            media_type: MEDIA_OCI_MANIFEST.into(),
            digest: digest.into(),
            size: 1,
            platform: Some(Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: variant.map(Into::into),
            }),
        }
    }

    fn host(arch: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: variant.map(Into::into),
        }
    }

    #[test]
    fn selects_the_host_platform_from_an_index() {
        let mut attestation = entry("att", "unknown", "unknown", None);
        attestation.media_type = MEDIA_OCI_MANIFEST.into();
        let entries = vec![
            entry("win", "windows", "amd64", None),
            entry("arm7", "linux", "arm", Some("v7")),
            entry("arm64", "linux", "arm64", Some("v8")),
            entry("amd64v3", "linux", "amd64", Some("v3")),
            entry("amd64", "linux", "amd64", None),
            attestation,
        ];
        let pick = |h: Platform| select_platform(&entries, &h).map(|d| d.digest.as_str());
        assert_eq!(pick(host("amd64", None)), Some("amd64"));
        assert_eq!(pick(host("arm64", Some("v8"))), Some("arm64"));
        assert_eq!(pick(host("arm64", None)), Some("arm64"));
        assert_eq!(pick(host("arm", None)), Some("arm7"));
        assert_eq!(pick(host("s390x", None)), None);

        // arm64 without a variant in the index is v8.
        let e = vec![entry("a", "linux", "arm64", None)];
        assert!(select_platform(&e, &host("arm64", Some("v8"))).is_some());

        // No platforms at all: the first manifest. Nested indexes are not candidates.
        let mut nested = entry("idx", "linux", "amd64", None);
        nested.media_type = MEDIA_OCI_INDEX.into();
        nested.platform = None;
        let mut plain = nested.clone();
        plain.media_type = MEDIA_DOCKER_MANIFEST.into();
        plain.digest = "plain".into();
        let e = vec![nested, plain];
        assert_eq!(
            select_platform(&e, &host("amd64", None)).map(|d| d.digest.as_str()),
            Some("plain")
        );
        assert_eq!(host_platform().os, "linux");
    }

    #[test]
    fn error_kinds_and_messages() {
        let e = Error::from(PullError::new(
            PullErrorKind::NotFound,
            "docker.io/library/nope:latest",
            "not found in docker.io: MANIFEST_UNKNOWN: manifest unknown",
        ));
        assert_eq!(e.pull_error_kind(), PullErrorKind::NotFound);
        assert_eq!(
            e.to_string(),
            "pull docker.io/library/nope:latest: not found in docker.io: MANIFEST_UNKNOWN: \
             manifest unknown"
        );
        let io = Error::Other("disk".into());
        assert_eq!(io.pull_error_kind(), PullErrorKind::Local);
    }

    #[test]
    fn pull_future_is_send() {
        fn send<T: Send>(_: T) {}
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        let opts = PullOptions::default();
        send(store.pull("busybox", &opts));
    }
}
