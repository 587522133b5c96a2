//! Request authentication as kube-apiserver does it: verified client certificate (CN = user,
//! O = groups), then bearer token from the static token file, then anonymous for the public
//! info paths only.

use std::collections::HashMap;
use std::path::Path;

use http::header::AUTHORIZATION;
use http::{HeaderMap, Method};
use parking_lot::RwLock;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{Error, Result};

/// The user anonymous requests run as.
pub const ANONYMOUS_USER: &str = "system:anonymous";
/// The group of anonymous requests.
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
/// The group upstream adds to every authenticated user.
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
/// Paths upstream's default RBAC (`system:public-info-viewer`) lets anonymous users GET; every
/// other path answers an unauthenticated request with 401.
pub const PUBLIC_INFO_PATHS: &[&str] = &["/healthz", "/livez", "/readyz", "/version", "/version/"];

/// Who made a request; handlers find it in the request's extensions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
    pub uid: String,
}

impl UserInfo {
    pub fn anonymous() -> Self {
        Self {
            name: ANONYMOUS_USER.to_owned(),
            groups: vec![ALL_UNAUTHENTICATED.to_owned()],
            uid: String::new(),
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.name == ANONYMOUS_USER
    }

    /// Adds `system:authenticated` as upstream's `AuthenticatedGroupAdder` does: not to the
    /// anonymous user, nor when either catch-all group is already there.
    fn with_authenticated_group(mut self) -> Self {
        let has_catch_all = self
            .groups
            .iter()
            .any(|g| g == ALL_AUTHENTICATED || g == ALL_UNAUTHENTICATED);
        if !self.is_anonymous() && !has_catch_all {
            self.groups.push(ALL_AUTHENTICATED.to_owned());
        }
        self
    }
}

/// Why a request was turned away with 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unauthenticated {
    /// A bearer token was sent but is not known; upstream never falls back to anonymous then.
    InvalidToken,
    /// No credentials, on a path anonymous users may not read.
    NoCredentials,
}

/// Resolves requests to users. Tokens can be added at run time (e.g. by a join flow) through a
/// shared reference, so the server can hold it in an `Arc`.
#[derive(Debug, Default)]
pub struct Authenticator {
    tokens: RwLock<HashMap<String, UserInfo>>,
}

impl Authenticator {
    pub fn new(tokens: HashMap<String, UserInfo>) -> Self {
        Self {
            tokens: RwLock::new(tokens),
        }
    }

    /// Loads a static token file (upstream's `--token-auth-file` format).
    pub fn from_token_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::new(parse_token_file(path, &text)?))
    }

    /// Adds or replaces a token.
    pub fn insert_token(&self, token: impl Into<String>, user: UserInfo) {
        self.tokens.write().insert(token.into(), user);
    }

    /// The user a bearer token belongs to, without the `system:authenticated` group.
    pub fn user_for_token(&self, token: &str) -> Option<UserInfo> {
        self.tokens.read().get(token).cloned()
    }

    /// Authenticates one request. `client_cert_user` is the user of the connection's verified
    /// client certificate, if any. On success by token the `Authorization` header is removed,
    /// as upstream does, so no handler is tempted to reuse the credential.
    pub(crate) fn authenticate(
        &self,
        client_cert_user: Option<&UserInfo>,
        method: &Method,
        path: &str,
        headers: &mut HeaderMap,
    ) -> std::result::Result<UserInfo, Unauthenticated> {
        if let Some(user) = client_cert_user {
            return Ok(user.clone().with_authenticated_group());
        }
        if let Some(token) = bearer_token(headers) {
            let user = self
                .user_for_token(token)
                .ok_or(Unauthenticated::InvalidToken)?;
            headers.remove(AUTHORIZATION);
            return Ok(user.with_authenticated_group());
        }
        // RBAC's non-resource rule is for verb "get", which only a GET request maps to.
        if method == Method::GET && PUBLIC_INFO_PATHS.contains(&path) {
            return Ok(UserInfo::anonymous());
        }
        Err(Unauthenticated::NoCredentials)
    }
}

/// The token of an `Authorization: Bearer <token>` header, parsed as upstream's bearertoken
/// authenticator does (scheme case-insensitive, a single space, no empty token).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let mut parts = value.splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The user of a (verified) client certificate: CN is the name, each O a group. `None` when the
/// certificate has no CN, which upstream treats as "not authenticated by this certificate".
pub fn user_from_certificate(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())?
        .to_owned();
    if name.is_empty() {
        return None;
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_owned)
        .collect();
    Some(UserInfo {
        name,
        groups,
        uid: String::new(),
    })
}

/// Parses a static token file: CSV records `token,user,uid[,"group1,group2"]`, read with the
/// rules of Go's encoding/csv as upstream's tokenfile package uses it (quoted fields with `""`
/// escapes, blank lines skipped, at least three fields, empty tokens skipped, later duplicates
/// win).
pub fn parse_token_file(path: &Path, text: &str) -> Result<HashMap<String, UserInfo>> {
    let mut tokens = HashMap::new();
    let records = parse_csv(text).map_err(|(line, reason)| Error::TokenFile {
        path: path.to_owned(),
        record: line,
        reason,
    })?;
    for (index, (line, record)) in records.into_iter().enumerate() {
        if record.len() < 3 {
            return Err(Error::TokenFile {
                path: path.to_owned(),
                record: line,
                reason: format!(
                    "must have at least 3 columns (token, user name, user uid), found {}",
                    record.len()
                ),
            });
        }
        let mut fields = record.into_iter();
        let (Some(token), Some(name), Some(uid)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if token.is_empty() {
            tracing::warn!(path = %path.display(), record = index + 1, "empty token in token file");
            continue;
        }
        let groups = fields
            .next()
            .map(|g| g.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        if tokens
            .insert(token, UserInfo { name, groups, uid })
            .is_some()
        {
            tracing::warn!(path = %path.display(), record = index + 1, "duplicate token in token file");
        }
    }
    Ok(tokens)
}

/// A CSV record's fields and the line it starts on.
type CsvRecord = (usize, Vec<String>);

/// Splits CSV text into records, each with the (1-based) line it starts on. Errors carry the
/// line and a reason worded like Go's csv.ParseError.
fn parse_csv(text: &str) -> std::result::Result<Vec<CsvRecord>, (usize, String)> {
    // Go's reader drops a carriage return before a newline everywhere, quoted fields included.
    let text = text.replace("\r\n", "\n");
    let mut records = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    loop {
        while chars.peek() == Some(&'\n') {
            chars.next();
            line += 1;
        }
        if chars.peek().is_none() {
            return Ok(records);
        }
        let start_line = line;
        let mut record = Vec::new();
        loop {
            let mut field = String::new();
            let mut end_of_record = false;
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next() {
                        None => {
                            return Err((
                                start_line,
                                "extraneous or missing \" in quoted-field".into(),
                            ))
                        }
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            field.push(c);
                        }
                    }
                }
                match chars.next() {
                    None => end_of_record = true,
                    Some(',') => {}
                    Some('\n') => {
                        line += 1;
                        end_of_record = true;
                    }
                    Some(_) => {
                        return Err((line, "extraneous or missing \" in quoted-field".into()))
                    }
                }
            } else {
                loop {
                    match chars.next() {
                        None => {
                            end_of_record = true;
                            break;
                        }
                        Some(',') => break,
                        Some('\n') => {
                            line += 1;
                            end_of_record = true;
                            break;
                        }
                        Some('"') => return Err((line, "bare \" in non-quoted-field".into())),
                        Some(c) => field.push(c),
                    }
                }
            }
            record.push(field);
            if end_of_record {
                break;
            }
        }
        records.push((start_line, record));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn parse(text: &str) -> Result<HashMap<String, UserInfo>> {
        parse_token_file(Path::new("tokens.csv"), text)
    }

    #[test]
    fn token_file_records_follow_upstream_format() {
        let tokens = parse(
            "abc,alice,1001,\"dev,ops\"\r\n\n\
             def,bob,1002\n\
             ,nobody,0\n\
             \"g\"\"h\",carol,\"10\n03\",\n",
        )
        .unwrap();
        assert_eq!(
            tokens["abc"],
            UserInfo {
                name: "alice".into(),
                groups: vec!["dev".into(), "ops".into()],
                uid: "1001".into()
            }
        );
        assert_eq!(tokens["def"].groups, Vec::<String>::new());
        assert_eq!(tokens["g\"h"].uid, "10\n03");
        // An empty fourth field is one empty group, as Go's strings.Split gives.
        assert_eq!(tokens["g\"h"].groups, vec![String::new()]);
        assert_eq!(tokens.len(), 3);
    }

    #[test]
    fn token_file_errors_name_the_record() {
        let err = parse("abc,alice,1\nshort,line\n").unwrap_err();
        assert!(err.to_string().contains("record 2"), "{err}");
        assert!(err.to_string().contains("at least 3 columns"), "{err}");
        let err = parse("a\"b,alice,1\n").unwrap_err();
        assert!(err.to_string().contains("bare \""), "{err}");
        let err = parse("\"ab\"x,alice,1\n").unwrap_err();
        assert!(err.to_string().contains("extraneous"), "{err}");
        assert!(parse("\"unterminated,alice,1\n").is_err());
    }

    #[test]
    fn later_duplicate_token_wins() {
        let tokens = parse("t,alice,1\nt,bob,2\n").unwrap();
        assert_eq!(tokens["t"].name, "bob");
    }

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    fn authn() -> Authenticator {
        Authenticator::new(parse("good,alice,1001,\"dev\"\n").unwrap())
    }

    #[test]
    fn bearer_token_authenticates_and_is_stripped() {
        let mut h = headers("Bearer good");
        let user = authn()
            .authenticate(None, &Method::GET, "/api", &mut h)
            .unwrap();
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, vec!["dev", ALL_AUTHENTICATED]);
        assert!(h.get(AUTHORIZATION).is_none());
        let mut h = headers("bearer good extra");
        assert!(authn()
            .authenticate(None, &Method::GET, "/api", &mut h)
            .is_ok());
    }

    #[test]
    fn bad_token_is_rejected_even_on_public_paths() {
        let mut h = headers("Bearer wrong");
        assert_eq!(
            authn().authenticate(None, &Method::GET, "/version", &mut h),
            Err(Unauthenticated::InvalidToken)
        );
    }

    #[test]
    fn anonymous_only_reads_public_info_paths() {
        let a = authn();
        let mut h = HeaderMap::new();
        for path in PUBLIC_INFO_PATHS {
            assert_eq!(
                a.authenticate(None, &Method::GET, path, &mut h),
                Ok(UserInfo::anonymous())
            );
        }
        for (method, path) in [
            (Method::GET, "/api"),
            (Method::GET, "/healthz/etcd"),
            (Method::POST, "/version"),
            (Method::GET, "/"),
        ] {
            assert_eq!(
                a.authenticate(None, &method, path, &mut h),
                Err(Unauthenticated::NoCredentials),
                "{method} {path}"
            );
        }
        // A non-bearer Authorization header is no credential at all.
        let mut h = headers("Basic YTpi");
        assert_eq!(
            a.authenticate(None, &Method::GET, "/api", &mut h),
            Err(Unauthenticated::NoCredentials)
        );
    }

    #[test]
    fn client_certificate_wins_over_a_bad_token() {
        let cert_user = UserInfo {
            name: "system:admin".into(),
            groups: vec!["system:masters".into()],
            uid: String::new(),
        };
        let mut h = headers("Bearer wrong");
        let user = authn()
            .authenticate(Some(&cert_user), &Method::GET, "/api", &mut h)
            .unwrap();
        assert_eq!(user.name, "system:admin");
        assert_eq!(user.groups, vec!["system:masters", ALL_AUTHENTICATED]);
    }

    #[test]
    fn tokens_added_at_run_time_authenticate() {
        let a = Authenticator::default();
        a.insert_token(
            "late",
            UserInfo {
                name: "n1".into(),
                ..Default::default()
            },
        );
        let mut h = headers("Bearer late");
        assert_eq!(
            a.authenticate(None, &Method::GET, "/api", &mut h)
                .unwrap()
                .name,
            "n1"
        );
    }
}
