//! The registry v2 HTTP client: one hyper client over rustls (system roots plus configured CAs),
//! plain HTTP only towards registries configured as insecure, redirects followed by hand
//! (blob stores send layers from a CDN) and the 401 → challenge → retry dance (Basic, or
//! Docker's bearer-token flow).
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, LOCATION, USER_AGENT, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

use super::auth::{parse_www_authenticate, Challenge, Credential};
use super::{Descriptor, ImageRef, PullError, PullErrorKind, PullOptions};
use crate::error::{Error, Result};

/// How long a TCP (and TLS) connection may take; containerd and Docker use 30 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a registry may take to answer a request's headers, or to send the next piece of a
/// body. A stalled transfer fails instead of hanging a pod's pull forever.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Manifests and indexes are small; containerd refuses ones over 4 MiB too.
pub(super) const MAX_MANIFEST: usize = 4 << 20;
/// Error bodies and token answers are read only this far.
const MAX_SMALL_BODY: usize = 1 << 20;
const MAX_REDIRECTS: usize = 5;
const UA: &str = concat!("bosun/", env!("CARGO_PKG_VERSION"));

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// What the pull can reach: the HTTP client and which registries may be spoken to in clear.
pub(super) struct Transport {
    http: HttpClient,
    insecure: Vec<String>,
}

impl Transport {
    pub(super) fn new(opts: &PullOptions) -> Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        // Errors here are unreadable files in the system store; the certificates that did load
        // are used, and a registry they do not cover fails with a TLS error naming it.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        for (i, pem) in opts.extra_ca_pem.iter().enumerate() {
            let mut n = 0;
            for cert in rustls_pemfile::certs(&mut &pem[..]) {
                let cert =
                    cert.map_err(|e| Error::Other(format!("extra CA certificate #{i}: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| Error::Other(format!("extra CA certificate #{i}: {e}")))?;
                n += 1;
            }
            if n == 0 {
                return Err(Error::Other(format!(
                    "extra CA certificate #{i}: no PEM certificate found"
                )));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Other(format!("tls configuration: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let http = Client::builder(TokioExecutor::new()).build(https);
        Ok(Self {
            http,
            insecure: opts
                .insecure_registries
                .iter()
                .map(|s| s.trim().to_ascii_lowercase())
                .collect(),
        })
    }

    /// Whether `authority` (`host` or `host:port`) was configured as insecure. An entry without
    /// a port covers every port of that host.
    pub(super) fn is_insecure(&self, authority: &str) -> bool {
        let authority = authority.to_ascii_lowercase();
        let host = host_of(&authority);
        self.insecure
            .iter()
            .any(|e| *e == authority || (!e.contains(':') && e == host))
    }
}

fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .split_once(']')
            .map(|(h, _)| &h[1..])
            .unwrap_or(authority);
    }
    authority
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(authority)
}

/// Renders an error with its causes (`client error (Connect): tcp connect error: Connection
/// refused (os error 111)`), which is what a user needs to act.
pub(super) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// One pull's conversation with one registry: the base URL, the credential being tried and
/// the authorization the registry accepted, shared by concurrent blob downloads.
pub(super) struct Session<'a> {
    transport: &'a Transport,
    r: &'a ImageRef,
    /// `https://registry-1.docker.io` or `http://127.0.0.1:5000`.
    base: String,
    endpoint: String,
    cred: Option<&'a Credential>,
    auth: Mutex<Option<String>>,
}

impl<'a> Session<'a> {
    pub(super) fn new(
        transport: &'a Transport,
        r: &'a ImageRef,
        cred: Option<&'a Credential>,
    ) -> Self {
        let endpoint = r.endpoint().to_owned();
        let scheme = if transport.is_insecure(&r.registry) || transport.is_insecure(&endpoint) {
            "http"
        } else {
            "https"
        };
        Self {
            transport,
            r,
            base: format!("{scheme}://{endpoint}"),
            endpoint,
            cred,
            auth: Mutex::new(None),
        }
    }

    fn err(&self, kind: PullErrorKind, detail: impl Into<String>) -> PullError {
        PullError::new(kind, &self.r.normalized, detail)
    }

    fn current_auth(&self) -> Option<String> {
        self.auth.lock().map(|a| a.clone()).unwrap_or_default()
    }

    fn set_auth(&self, value: String) {
        if let Ok(mut a) = self.auth.lock() {
            *a = Some(value);
        }
    }

    /// GETs `path` (under `/v2/`) from the registry, authenticating on a 401 once. Any status
    /// but 401/403 is returned for the caller to judge.
    pub(super) async fn get(
        &self,
        path: &str,
        accept: Option<&str>,
    ) -> Result<Response<Incoming>, PullError> {
        let url = format!("{}{}", self.base, path);
        let mut challenged = false;
        loop {
            let auth = self.current_auth();
            let resp = self.get_url(&url, accept, auth.as_deref()).await?;
            match resp.status() {
                StatusCode::UNAUTHORIZED if !challenged => {
                    challenged = true;
                    let header = resp
                        .headers()
                        .get_all(WWW_AUTHENTICATE)
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .collect::<Vec<_>>()
                        .join(", ");
                    self.authenticate(&parse_www_authenticate(&header)).await?;
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    let detail = error_detail(resp).await;
                    return Err(self.err(PullErrorKind::Unauthorized, self.denied(&detail)));
                }
                _ => return Ok(resp),
            }
        }
    }

    fn denied(&self, detail: &str) -> String {
        let who = match self.cred {
            Some(c) => format!(
                "unauthorized: the credentials of user {:?} were refused",
                c.username
            ),
            None => "unauthorized: the repository does not exist or needs credentials \
                     (imagePullSecrets)"
                .to_owned(),
        };
        if detail.is_empty() {
            who
        } else {
            format!("{who} ({detail})")
        }
    }

    /// Answers a 401's challenges: a bearer token from the realm (with the credential as basic
    /// auth if there is one), or basic auth directly.
    async fn authenticate(&self, challenges: &[Challenge]) -> Result<(), PullError> {
        if let Some(b) = challenges.iter().find(|c| c.scheme == "bearer") {
            let token = self.fetch_token(b).await?;
            self.set_auth(format!("Bearer {token}"));
            return Ok(());
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            return match self.cred {
                Some(c) => {
                    self.set_auth(c.basic_header());
                    Ok(())
                }
                None => Err(self.err(PullErrorKind::Unauthorized, self.denied(""))),
            };
        }
        let schemes: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
        Err(self.err(
            PullErrorKind::Unauthorized,
            format!(
                "the registry asked for authentication bosun does not speak ({})",
                if schemes.is_empty() {
                    "no WWW-Authenticate challenge".to_owned()
                } else {
                    schemes.join(", ")
                }
            ),
        ))
    }

    /// Docker's token flow: `GET realm?service=…&scope=…`, answered with `{"token": …}` (or
    /// the OAuth2 `access_token`).
    async fn fetch_token(&self, c: &Challenge) -> Result<String, PullError> {
        let realm = c.params.get("realm").ok_or_else(|| {
            self.err(
                PullErrorKind::Registry,
                "bearer challenge without a realm".to_owned(),
            )
        })?;
        let default_scope = format!("repository:{}:pull", self.r.repository);
        let scope = c.params.get("scope").unwrap_or(&default_scope);
        let query = {
            let mut q = form_urlencoded::Serializer::new(String::new());
            if let Some(s) = c.params.get("service") {
                q.append_pair("service", s);
            }
            q.append_pair("scope", scope);
            q.finish()
        };
        let sep = if realm.contains('?') { '&' } else { '?' };
        let url = format!("{realm}{sep}{query}");
        let auth = self.cred.map(Credential::basic_header);
        let resp = self.get_url(&url, None, auth.as_deref()).await?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let detail = error_detail(resp).await;
            return Err(self.err(
                PullErrorKind::Unauthorized,
                format!("token service {realm}: {}", self.denied(&detail)),
            ));
        }
        if !status.is_success() {
            let detail = error_detail(resp).await;
            return Err(self.err(
                PullErrorKind::Registry,
                format!("token service {realm} answered {status}: {detail}"),
            ));
        }
        let body = self.read_small(resp, MAX_SMALL_BODY).await?;
        #[derive(serde::Deserialize)]
        struct Token {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
        }
        let t: Token = serde_json::from_slice(&body).map_err(|e| {
            self.err(
                PullErrorKind::Registry,
                format!("token service {realm}: invalid answer: {e}"),
            )
        })?;
        t.token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                self.err(
                    PullErrorKind::Registry,
                    format!("token service {realm} returned no token"),
                )
            })
    }

    /// One GET, following redirects. The authorization goes only to the host it was issued
    /// for (a CDN behind a redirect must not see it), and plain HTTP only to insecure hosts.
    async fn get_url(
        &self,
        url: &str,
        accept: Option<&str>,
        auth: Option<&str>,
    ) -> Result<Response<Incoming>, PullError> {
        let mut uri: Uri = url
            .parse()
            .map_err(|e| self.err(PullErrorKind::Registry, format!("invalid url {url:?}: {e}")))?;
        let first_authority = uri.authority().map(|a| a.as_str().to_owned());
        for _ in 0..=MAX_REDIRECTS {
            let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
            match uri.scheme_str() {
                Some("https") => {}
                Some("http") if self.transport.is_insecure(authority) => {}
                _ => {
                    return Err(self.err(
                        PullErrorKind::Registry,
                        format!(
                            "refusing {uri}: plain http is used only for registries configured \
                             as insecure"
                        ),
                    ))
                }
            }
            let mut req = Request::get(uri.clone()).header(USER_AGENT, UA);
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            if let Some(a) = auth {
                if first_authority.as_deref() == Some(authority) {
                    req = req.header(AUTHORIZATION, a);
                }
            }
            let req = req
                .body(Empty::new())
                .map_err(|e| self.err(PullErrorKind::Registry, format!("request {uri}: {e}")))?;
            let host = authority.to_owned();
            let resp = match tokio::time::timeout(IDLE_TIMEOUT, self.transport.http.request(req))
                .await
            {
                Err(_) => {
                    return Err(self.unreachable(&host, "no answer within 60 s".to_owned()));
                }
                Ok(Err(e)) => {
                    let mut detail = chain(&e);
                    // hyper-util's "client error (Connect): " says nothing the causes do not.
                    if let Some(rest) = detail.strip_prefix("client error (Connect): ") {
                        detail = rest.to_owned();
                    }
                    if uri.scheme_str() == Some("https") && detail.contains("InvalidContentType") {
                        detail.push_str(
                            " (the registry seems to speak plain HTTP; list it as an insecure \
                             registry if that is intended)",
                        );
                    }
                    return Err(self.unreachable(&host, detail));
                }
                Ok(Ok(r)) => r,
            };
            if resp.status().is_redirection() {
                if let Some(loc) = resp.headers().get(LOCATION).and_then(|l| l.to_str().ok()) {
                    uri = resolve(&uri, loc).ok_or_else(|| {
                        self.err(
                            PullErrorKind::Registry,
                            format!("invalid redirect from {uri} to {loc:?}"),
                        )
                    })?;
                    continue;
                }
            }
            return Ok(resp);
        }
        Err(self.err(
            PullErrorKind::Registry,
            format!("more than {MAX_REDIRECTS} redirects from {url}"),
        ))
    }

    fn unreachable(&self, host: &str, detail: String) -> PullError {
        let host = if host == self.endpoint {
            &self.r.registry
        } else {
            host
        };
        self.err(
            PullErrorKind::Unreachable,
            format!("registry {host} unreachable: {detail}"),
        )
    }

    /// Reads a whole (small) body, failing past `limit` bytes.
    pub(super) async fn read_small(
        &self,
        resp: Response<Incoming>,
        limit: usize,
    ) -> Result<Bytes, PullError> {
        let mut body = resp.into_body();
        let mut out = Vec::new();
        loop {
            let frame = match tokio::time::timeout(IDLE_TIMEOUT, body.frame()).await {
                Err(_) => {
                    return Err(self.unreachable(&self.endpoint, "transfer stalled".into()));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(self.unreachable(&self.endpoint, chain(&e))),
                Ok(Some(Ok(f))) => f,
            };
            if let Ok(data) = frame.into_data() {
                if out.len() + data.len() > limit {
                    return Err(self.err(
                        PullErrorKind::Registry,
                        format!("answer larger than {limit} bytes"),
                    ));
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(out.into())
    }

    /// Streams blob `d` to a temporary file in `dir` while hashing it, checks size and digest,
    /// then renames it to `dst`. Nothing but a complete, verified blob ever appears at `dst`;
    /// the temporary file goes away on every failure (and on cancellation).
    pub(super) async fn download_blob(
        &self,
        d: &Descriptor,
        dir: &Path,
        dst: &Path,
    ) -> Result<u64> {
        let path = format!("/v2/{}/blobs/{}", self.r.repository, d.digest);
        let resp = self.get(&path, None).await?;
        let status = resp.status();
        if !status.is_success() {
            let detail = error_detail(resp).await;
            let kind = if status == StatusCode::NOT_FOUND {
                PullErrorKind::NotFound
            } else {
                PullErrorKind::Registry
            };
            return Err(self
                .err(kind, format!("blob {}: {status} {detail}", d.digest))
                .into());
        }
        let tmp = TempFile(crate::fsutil::tmp_sibling(dir, "pull"));
        let file = tokio::fs::File::create(&tmp.0)
            .await
            .map_err(Error::io("create", &tmp.0))?;
        let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = resp.into_body();
        loop {
            let frame = match tokio::time::timeout(IDLE_TIMEOUT, body.frame()).await {
                Err(_) => {
                    return Err(self
                        .unreachable(&self.endpoint, format!("blob {} stalled", d.digest))
                        .into())
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(self
                        .unreachable(&self.endpoint, format!("blob {}: {}", d.digest, chain(&e)))
                        .into())
                }
                Ok(Some(Ok(f))) => f,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            size += data.len() as u64;
            if size > d.size {
                return Err(self
                    .err(
                        PullErrorKind::Registry,
                        format!("blob {} is larger than its {} bytes", d.digest, d.size),
                    )
                    .into());
            }
            hasher.update(&data);
            out.write_all(&data)
                .await
                .map_err(Error::io("write", &tmp.0))?;
        }
        out.flush().await.map_err(Error::io("write", &tmp.0))?;
        let file = out.into_inner();
        file.sync_all().await.map_err(Error::io("fsync", &tmp.0))?;
        drop(file);
        let actual = format!("sha256:{:x}", hasher.finalize());
        if size != d.size || actual != d.digest {
            return Err(Error::DigestMismatch {
                what: format!(
                    "blob {} of {} ({size} of {} bytes)",
                    d.digest, self.r.normalized, d.size
                ),
                expected: d.digest.clone(),
                actual,
            });
        }
        tokio::fs::rename(&tmp.0, dst)
            .await
            .map_err(Error::io("rename", dst))?;
        tmp.keep();
        Ok(size)
    }
}

/// A temporary file removed when dropped, unless kept.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The `errors` of a registry's error body (`MANIFEST_UNKNOWN: manifest unknown`), or the
/// start of a body that is not one.
pub(super) async fn error_detail(resp: Response<Incoming>) -> String {
    let body = match tokio::time::timeout(
        IDLE_TIMEOUT,
        http_body_util::Limited::new(resp.into_body(), MAX_SMALL_BODY).collect(),
    )
    .await
    {
        Ok(Ok(b)) => b.to_bytes(),
        _ => return String::new(),
    };
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(&body) {
        return e
            .errors
            .iter()
            .map(|i| match (i.code.is_empty(), i.message.is_empty()) {
                (false, false) => format!("{}: {}", i.code, i.message),
                (false, true) => i.code.clone(),
                _ => i.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    let text = String::from_utf8_lossy(&body);
    text.trim().chars().take(200).collect()
}

/// Resolves a `Location` against the URI it came from.
fn resolve(base: &Uri, loc: &str) -> Option<Uri> {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        return loc.parse().ok();
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    if let Some(rest) = loc.strip_prefix("//") {
        return format!("{scheme}://{rest}").parse().ok();
    }
    if loc.starts_with('/') {
        return format!("{scheme}://{authority}{loc}").parse().ok();
    }
    let dir = base
        .path()
        .rsplit_once('/')
        .map(|(d, _)| d)
        .unwrap_or_default();
    format!("{scheme}://{authority}{dir}/{loc}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_redirects() {
        let base: Uri = "https://r.io/v2/a/blobs/sha256:x".parse().unwrap();
        assert_eq!(
            resolve(&base, "https://cdn.io/b?sig=1")
                .unwrap()
                .to_string(),
            "https://cdn.io/b?sig=1"
        );
        assert_eq!(
            resolve(&base, "/other").unwrap().to_string(),
            "https://r.io/other"
        );
        assert_eq!(
            resolve(&base, "//cdn.io/c").unwrap().to_string(),
            "https://cdn.io/c"
        );
        assert_eq!(
            resolve(&base, "y").unwrap().to_string(),
            "https://r.io/v2/a/blobs/y"
        );
    }

    #[test]
    fn insecure_entries_match_host_and_port() {
        let t = Transport::new(&PullOptions {
            insecure_registries: vec!["127.0.0.1:5000".into(), "Plain.Local".into()],
            ..Default::default()
        })
        .unwrap();
        assert!(t.is_insecure("127.0.0.1:5000"));
        assert!(!t.is_insecure("127.0.0.1:5001"));
        assert!(t.is_insecure("plain.local:8080"));
        assert!(t.is_insecure("plain.local"));
        assert!(!t.is_insecure("other.local"));
        assert_eq!(host_of("[::1]:5000"), "::1");
    }
}
