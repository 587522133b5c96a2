//! Registry credentials and challenges: `.dockerconfigjson` (imagePullSecrets) parsed into
//! [`Credential`]s matched to a reference as the kubelet's keyring does, and the
//! `WWW-Authenticate` header a registry answers a 401 with (RFC 7235; Docker's token flow).
use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::Deserialize;

use super::ImageRef;
use crate::error::{Error, Result};

/// A username and password for one registry (or a path inside it), as in one entry of a docker
/// config's `auths`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The key it applies to: `registry.example.com`, `registry.example.com:5000/team`,
    /// `https://index.docker.io/v1/` (Docker Hub) or `*.example.com`, as kubelet accepts them.
    pub registry: String,
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("registry", &self.registry)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credential {
    pub fn new(registry: &str, username: &str, password: &str) -> Self {
        Self {
            registry: registry.to_owned(),
            username: username.to_owned(),
            password: password.to_owned(),
        }
    }

    /// Reads the `auths` of a docker config JSON (the `.dockerconfigjson` key of a
    /// `kubernetes.io/dockerconfigjson` secret), or the older `.dockercfg` form that is the map
    /// itself. An entry gives `auth` (base64 of `user:password`) or `username` and `password`;
    /// entries with neither (identity tokens) are skipped.
    pub fn from_docker_config(json: &[u8]) -> Result<Vec<Credential>> {
        #[derive(Deserialize)]
        struct Entry {
            #[serde(default)]
            auth: Option<String>,
            #[serde(default)]
            username: Option<String>,
            #[serde(default)]
            password: Option<String>,
        }
        let bad = |msg: String| Error::Other(format!("invalid docker config json: {msg}"));
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| bad(e.to_string()))?;
        let auths = match value.get("auths") {
            Some(a) => a.clone(),
            None => value,
        };
        let auths: BTreeMap<String, Entry> =
            serde_json::from_value(auths).map_err(|e| bad(e.to_string()))?;
        let mut out = Vec::new();
        for (registry, e) in auths {
            let (username, password) = match (e.auth.as_deref(), e.username, e.password) {
                (Some(a), _, _) if !a.is_empty() => {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(a.trim())
                        .map_err(|e| bad(format!("auth of {registry}: {e}")))?;
                    let raw = String::from_utf8(raw)
                        .map_err(|_| bad(format!("auth of {registry} is not UTF-8")))?;
                    let (u, p) = raw
                        .split_once(':')
                        .ok_or_else(|| bad(format!("auth of {registry} is not user:password")))?;
                    (u.to_owned(), p.to_owned())
                }
                (_, Some(u), Some(p)) => (u, p),
                _ => continue,
            };
            out.push(Credential {
                registry,
                username,
                password,
            });
        }
        Ok(out)
    }

    pub(super) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// How specifically this credential's key matches `r`: `None` if it does not, else the
    /// length of its path (longer paths win, as in the kubelet's keyring).
    fn matches(&self, r: &ImageRef) -> Option<usize> {
        let key = self.registry.trim();
        let key = key
            .strip_prefix("https://")
            .or_else(|| key.strip_prefix("http://"))
            .unwrap_or(key);
        let (host, path) = match key.split_once('/') {
            Some((h, p)) => (h, p.trim_end_matches('/')),
            None => (key, ""),
        };
        // Docker Hub's historical key carries the API version as a path.
        let path = if canonical_host(host) == "docker.io" && path == "v1" {
            ""
        } else {
            path
        };
        let host_lower = host.to_ascii_lowercase();
        let host = canonical_host(&host_lower);
        let want = canonical_host(&r.registry);
        let host_ok = if let Some(suffix) = host.strip_prefix("*.") {
            // A wildcard stands for exactly one label, as the kubelet's glob match.
            want.split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix)
        } else {
            host == want
        };
        if !host_ok {
            return None;
        }
        if path.is_empty() {
            return Some(0);
        }
        let repo = r.repository.as_str();
        let path_ok = repo == path
            || repo
                .strip_prefix(path)
                .is_some_and(|rest| rest.starts_with('/'));
        path_ok.then_some(path.len())
    }
}

/// Docker Hub answers under several names; credentials for any of them apply to all.
pub(super) fn canonical_host(host: &str) -> &str {
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io",
        h => h,
    }
}

/// The credentials that apply to `r`, most specific first.
pub(super) fn matching<'a>(creds: &'a [Credential], r: &ImageRef) -> Vec<&'a Credential> {
    let mut found: Vec<(usize, &Credential)> = creds
        .iter()
        .filter_map(|c| c.matches(r).map(|n| (n, c)))
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found.into_iter().map(|(_, c)| c).collect()
}

/// One challenge of a `WWW-Authenticate` header: a scheme (lowercased) and its parameters
/// (names lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses a `WWW-Authenticate` value, which may hold several challenges:
/// `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="…"`,
/// `Basic realm="Registry Realm"`. Unparseable parts are skipped, never an error: the caller
/// reports "unauthorized" if no usable challenge remains.
pub fn parse_www_authenticate(header: &str) -> Vec<Challenge> {
    let s = header.as_bytes();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < s.len() && (s[*i] == b' ' || s[*i] == b'\t') {
            *i += 1;
        }
    };
    loop {
        while i < s.len() && matches!(s[i], b' ' | b'\t' | b',') {
            i += 1;
        }
        if i >= s.len() {
            break;
        }
        let start = i;
        while i < s.len() && !matches!(s[i], b' ' | b'\t' | b',' | b'=') {
            i += 1;
        }
        let token = &header[start..i];
        skip_ws(&mut i);
        if i < s.len() && s[i] == b'=' && !out.is_empty() && !token.is_empty() {
            i += 1;
            skip_ws(&mut i);
            let value = if i < s.len() && s[i] == b'"' {
                i += 1;
                let mut v = Vec::new();
                while i < s.len() && s[i] != b'"' {
                    if s[i] == b'\\' && i + 1 < s.len() {
                        i += 1;
                    }
                    v.push(s[i]);
                    i += 1;
                }
                i += 1; // closing quote
                String::from_utf8_lossy(&v).into_owned()
            } else {
                let vs = i;
                while i < s.len() && !matches!(s[i], b',' | b' ' | b'\t') {
                    i += 1;
                }
                header[vs..i].to_owned()
            };
            if let Some(c) = out.last_mut() {
                c.params.insert(token.to_ascii_lowercase(), value);
            }
        } else if token.is_empty() {
            // A stray '=' (token68 padding): skip it.
            i += 1;
        } else {
            out.push(Challenge {
                scheme: token.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_hub_bearer_challenge() {
        let c = parse_www_authenticate(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.docker.io/token");
        assert_eq!(c[0].params["service"], "registry.docker.io");
        assert_eq!(c[0].params["scope"], "repository:library/busybox:pull");
    }

    #[test]
    fn parses_several_challenges_and_odd_spacing() {
        let c = parse_www_authenticate(
            r#"Basic realm="Registry Realm", Bearer  realm = "https://x/t?a=b" , scope="a:b:pull,push", error="invalid_token""#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].params["realm"], "Registry Realm");
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].params["realm"], "https://x/t?a=b");
        assert_eq!(c[1].params["scope"], "a:b:pull,push");
        assert_eq!(c[1].params["error"], "invalid_token");
    }

    #[test]
    fn parses_unquoted_escaped_and_garbage() {
        let c = parse_www_authenticate(r#"BASIC Realm=plain, Bearer realm="a\"b""#);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].params["realm"], "plain");
        assert_eq!(c[1].params["realm"], "a\"b");
        assert!(parse_www_authenticate("").is_empty());
        assert!(parse_www_authenticate("=,=").is_empty());
        let t = parse_www_authenticate("Negotiate abc==");
        assert_eq!(t[0].scheme, "negotiate");
        let unterminated = parse_www_authenticate(r#"Bearer realm="https://x"#);
        assert_eq!(unterminated[0].params["realm"], "https://x");
    }

    #[test]
    fn reads_docker_config_json() {
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:s3:cret");
        let json = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},
              "reg.example.com:5000":{{"username":"u","password":"p"}},
              "token.example.com":{{"identitytoken":"x"}}}}}}"#
        );
        let creds = Credential::from_docker_config(json.as_bytes()).unwrap();
        assert_eq!(creds.len(), 2);
        let hub = creds
            .iter()
            .find(|c| c.registry.contains("docker"))
            .unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("bob", "s3:cret")
        );
        assert!(!format!("{hub:?}").contains("s3:cret"));
        // The legacy .dockercfg form is the map itself.
        let legacy =
            Credential::from_docker_config(br#"{"r.io":{"username":"a","password":"b"}}"#).unwrap();
        assert_eq!(legacy[0].registry, "r.io");
        assert!(Credential::from_docker_config(b"not json").is_err());
        assert!(Credential::from_docker_config(br#"{"auths":{"r":{"auth":"!!"}}}"#).is_err());
    }

    #[test]
    fn matches_credentials_like_the_kubelet() {
        let creds = vec![
            Credential::new("https://index.docker.io/v1/", "hub", "x"),
            Credential::new("reg.example.com:5000", "port", "x"),
            Credential::new("reg.example.com:5000/team", "team", "x"),
            Credential::new("*.example.org", "wild", "x"),
        ];
        let names = |r: &str| -> Vec<String> {
            let r = ImageRef::parse(r).unwrap();
            matching(&creds, &r)
                .iter()
                .map(|c| c.username.clone())
                .collect()
        };
        assert_eq!(names("busybox"), ["hub"]);
        assert_eq!(names("docker.io/user/app"), ["hub"]);
        assert_eq!(names("reg.example.com:5000/team/app"), ["team", "port"]);
        assert_eq!(names("reg.example.com:5000/teamx/app"), ["port"]);
        assert!(names("reg.example.com/app").is_empty());
        assert_eq!(names("a.example.org/app"), ["wild"]);
        assert!(names("a.b.example.org/app").is_empty());
        assert!(names("example.org/app").is_empty());
    }
}
