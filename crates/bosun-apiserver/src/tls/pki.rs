//! The API server's on-disk PKI: CA, serving and admin certificates, node join token, static
//! token file, and kubeconfig files, created on first start and loaded afterwards.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use rand::RngCore as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::RootCertStore;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::authentication::parse_token_file;
use super::{Error, Result};

/// Directory under the data dir that holds the certificates and keys.
pub const TLS_DIR: &str = "tls";
/// The node join token, relative to the data dir.
pub const NODE_TOKEN_FILE: &str = "node-token";
/// The static token file (upstream's `--token-auth-file` format), relative to the data dir.
pub const TOKEN_FILE: &str = "tokens.csv";
/// User the node join token authenticates as.
pub const NODE_BOOTSTRAP_USER: &str = "system:node-bootstrap";
/// Group of the node join token's user, as upstream names nodes' group.
pub const NODES_GROUP: &str = "system:nodes";
/// Common name of the admin client certificate, as k3s and kubeadm name it.
pub const ADMIN_USER: &str = "system:admin";
/// The group upstream's default RBAC binds to cluster-admin.
pub const MASTERS_GROUP: &str = "system:masters";
/// First address of the default service CIDR 10.96.0.0/12: the `kubernetes` Service's ClusterIP,
/// which in-cluster clients dial and so must be in the serving certificate.
pub const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const SERVING_CERT: &str = "serving.crt";
const SERVING_KEY: &str = "serving.key";
const ADMIN_CERT: &str = "admin.crt";
const ADMIN_KEY: &str = "admin.key";

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// k3s and kubeadm give their CAs ten years.
const CA_VALIDITY: Duration = Duration::from_secs(3650 * 24 * 60 * 60);
/// k3s and kubeadm give leaf certificates one year.
const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// k3s renews leaf certificates that expire within 90 days at start.
const RENEW_BEFORE: Duration = Duration::from_secs(90 * 24 * 60 * 60);
/// Backdating tolerates clocks of other nodes that run a little behind ours.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

const PRIVATE_MODE: u32 = 0o600;
const PUBLIC_MODE: u32 = 0o644;

/// The loaded PKI: PEM-encoded certificates and keys plus the join token.
#[derive(Clone)]
pub struct Pki {
    /// `DATA_DIR/tls`.
    pub dir: PathBuf,
    pub ca_cert_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
    /// The node join token (also in the token file as `system:node-bootstrap`).
    pub node_token: String,
    /// `DATA_DIR/tokens.csv`.
    pub token_file: PathBuf,
    /// Private so only `issue_client_cert` uses it and it never lands in a `Debug` print.
    ca_key_pem: String,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .field("token_file", &self.token_file)
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// The CA certificate in DER, for trust stores.
    pub fn ca_cert_der(&self) -> Result<CertificateDer<'static>> {
        pem_cert(&self.ca_cert_pem, &self.dir.join(CA_CERT))
    }

    /// Issues a client certificate (CN = user, O = groups) signed by the CA, returning
    /// `(cert_pem, key_pem)`; for nodes and in-process components.
    pub fn issue_client_cert(&self, user: &str, groups: &[&str]) -> Result<(String, String)> {
        let ca = Ca::from_pem(&self.dir, &self.ca_cert_pem, &self.ca_key_pem)?;
        let leaf = ca.issue(&client_params(user, groups)?, user)?;
        Ok((leaf.cert_pem, leaf.key_pem))
    }
}

/// Creates `DATA_DIR/tls/` (CA, serving and admin certificates), `DATA_DIR/node-token` and
/// `DATA_DIR/tokens.csv` on first start, and loads them afterwards. A serving certificate that
/// lacks a required name, no longer chains to the CA, or expires within 90 days is reissued, as
/// is an admin certificate in the same state; the CA is never replaced once it exists.
pub fn ensure_pki(data_dir: &Path, extra_sans: &[String]) -> Result<Pki> {
    let dir = data_dir.join(TLS_DIR);
    create_private_dir(&dir)?;
    let ca = load_or_create_ca(&dir)?;

    let sans = serving_sans(extra_sans)?;
    let serving = load_or_issue(
        &dir,
        SERVING_CERT,
        SERVING_KEY,
        &ca,
        |der| serving_cert_is_current(der, &ca, &sans),
        || serving_params(&sans),
        "serving certificate",
    )?;
    let admin = load_or_issue(
        &dir,
        ADMIN_CERT,
        ADMIN_KEY,
        &ca,
        |der| client_cert_is_current(der, &ca, ADMIN_USER, &[MASTERS_GROUP]),
        || client_params(ADMIN_USER, &[MASTERS_GROUP]),
        "admin certificate",
    )?;

    let node_token = load_or_create_node_token(&data_dir.join(NODE_TOKEN_FILE))?;
    let token_file = data_dir.join(TOKEN_FILE);
    ensure_token_file(&token_file, &node_token)?;

    Ok(Pki {
        dir,
        ca_cert_pem: ca.cert_pem.clone(),
        ca_key_pem: ca.key.serialize_pem(),
        serving_cert_pem: serving.cert_pem,
        serving_key_pem: serving.key_pem,
        admin_cert_pem: admin.cert_pem,
        admin_key_pem: admin.key_pem,
        node_token,
        token_file,
    })
}

/// Writes a kubeconfig for the admin user, shaped like the one k3s writes (cluster, user and
/// context all named `default`), readable by its owner only.
pub fn write_kubeconfig(pki: &Pki, server_url: &str, path: &Path) -> Result<()> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    // Keys in the order client-go writes them, so the file diffs cleanly against k3s's.
    let config = serde_json::json!({
        "apiVersion": "v1",
        "clusters": [{
            "cluster": {
                "certificate-authority-data": b64(&pki.ca_cert_pem),
                "server": server_url,
            },
            "name": "default",
        }],
        "contexts": [{
            "context": { "cluster": "default", "user": "default" },
            "name": "default",
        }],
        "current-context": "default",
        "kind": "Config",
        "preferences": {},
        "users": [{
            "name": "default",
            "user": {
                "client-certificate-data": b64(&pki.admin_cert_pem),
                "client-key-data": b64(&pki.admin_key_pem),
            },
        }],
    });
    let text = serde_yaml::to_string(&config).map_err(|source| Error::Kubeconfig {
        path: path.to_owned(),
        source,
    })?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|source| Error::Write {
            path: parent.to_owned(),
            source,
        })?;
    }
    write_atomic(path, text.as_bytes(), PRIVATE_MODE)
}

/// The CA's certificate and key, able to sign leaves.
struct Ca {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key: KeyPair,
    cert_path: PathBuf,
}

impl Ca {
    fn from_pem(dir: &Path, cert_pem: &str, key_pem: &str) -> Result<Self> {
        let cert_path = dir.join(CA_CERT);
        let key_path = dir.join(CA_KEY);
        let cert_der = pem_cert(cert_pem, &cert_path)?;
        let key = KeyPair::from_pem(key_pem).map_err(|e| Error::Parse {
            path: key_path.clone(),
            reason: e.to_string(),
        })?;
        if !key_matches_cert(&key, &cert_der) {
            return Err(Error::CaKeyMismatch {
                key: key_path,
                cert: cert_path,
            });
        }
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            cert_der,
            key,
            cert_path,
        })
    }

    fn issue(&self, params: &CertificateParams, what: &str) -> Result<Leaf> {
        let generate = |source| Error::Generate {
            what: what.to_owned(),
            source,
        };
        let issuer =
            Issuer::from_ca_cert_der(&self.cert_der, &self.key).map_err(|e| Error::Parse {
                path: self.cert_path.clone(),
                reason: e.to_string(),
            })?;
        let key = KeyPair::generate().map_err(generate)?;
        let cert = params.signed_by(&key, &issuer).map_err(generate)?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    fn roots(&self) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        // The CA was parsed when loaded; should webpki still reject it, the empty store makes
        // every chain check fail, which reissues leaves rather than trusting them blindly.
        let _ = roots.add(self.cert_der.clone());
        Arc::new(roots)
    }
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
}

fn load_or_create_ca(dir: &Path) -> Result<Ca> {
    let cert_path = dir.join(CA_CERT);
    let key_path = dir.join(CA_KEY);
    if let Some(cert_pem) = read_optional(&cert_path)? {
        let Some(key_pem) = read_optional(&key_path)? else {
            return Err(Error::MissingCaKey { path: key_path });
        };
        return Ca::from_pem(dir, &cert_pem, &key_pem);
    }
    // No certificate means nothing was ever signed by this CA, so a stray key (a crash between
    // the two writes) is safe to replace.
    let generate = |source| Error::Generate {
        what: "ca".to_owned(),
        source,
    };
    let key = KeyPair::generate().map_err(generate)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    // k3s names its CA after the server and the creation time, so CAs of different clusters
    // are told apart in a client's error messages.
    dn.push(DnType::CommonName, format!("bosun-ca@{}", unix_now()));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    set_validity(&mut params, CA_VALIDITY);
    let cert = params.self_signed(&key).map_err(generate)?;
    let cert_pem = cert.pem();
    write_atomic(&key_path, key.serialize_pem().as_bytes(), PRIVATE_MODE)?;
    write_atomic(&cert_path, cert_pem.as_bytes(), PUBLIC_MODE)?;
    Ok(Ca {
        cert_pem,
        cert_der: cert.der().clone(),
        key,
        cert_path,
    })
}

/// Loads a leaf if its key matches and `is_current` accepts it; otherwise issues a new one.
fn load_or_issue(
    dir: &Path,
    cert_name: &str,
    key_name: &str,
    ca: &Ca,
    is_current: impl Fn(&CertificateDer<'static>) -> bool,
    params: impl Fn() -> Result<CertificateParams>,
    what: &str,
) -> Result<Leaf> {
    let cert_path = dir.join(cert_name);
    let key_path = dir.join(key_name);
    if let (Some(cert_pem), Some(key_pem)) = (read_optional(&cert_path)?, read_optional(&key_path)?)
    {
        let usable = match (
            CertificateDer::from_pem_slice(cert_pem.as_bytes()),
            KeyPair::from_pem(&key_pem),
        ) {
            (Ok(der), Ok(key)) => key_matches_cert(&key, &der) && is_current(&der),
            _ => false,
        };
        if usable {
            return Ok(Leaf { cert_pem, key_pem });
        }
        tracing::info!(path = %cert_path.display(), "reissuing {what}");
    }
    let leaf = ca.issue(&params()?, what)?;
    write_atomic(&key_path, leaf.key_pem.as_bytes(), PRIVATE_MODE)?;
    write_atomic(&cert_path, leaf.cert_pem.as_bytes(), PUBLIC_MODE)?;
    Ok(leaf)
}

/// A subject alternative name, normalized so that comparisons ignore case and IP spelling.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum San {
    Dns(String),
    Ip(IpAddr),
}

impl San {
    fn parse(name: &str) -> Result<Self> {
        let name = name.trim();
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(San::Ip(ip));
        }
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'*' || b == b'_')
            });
        if !valid {
            return Err(Error::InvalidSan {
                name: name.to_owned(),
            });
        }
        Ok(San::Dns(name.to_ascii_lowercase()))
    }

    fn to_rcgen(&self) -> Result<SanType> {
        Ok(match self {
            San::Ip(ip) => SanType::IpAddress(*ip),
            San::Dns(name) => {
                SanType::DnsName(name.as_str().try_into().map_err(|_| Error::InvalidSan {
                    name: name.to_owned(),
                })?)
            }
        })
    }
}

/// Every name the serving certificate must carry: loopback, the host name, the in-cluster names
/// of the `kubernetes` Service and its ClusterIP, and the caller's extra names.
fn serving_sans(extra: &[String]) -> Result<BTreeSet<San>> {
    let mut sans = BTreeSet::new();
    for fixed in [
        "localhost",
        "127.0.0.1",
        "::1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        KUBERNETES_SERVICE_IP,
    ] {
        sans.insert(San::parse(fixed)?);
    }
    // A host name that is not a valid DNS name cannot be a SAN; clients then reach the server
    // by address or through an extra name instead.
    if let Some(host) = host_name() {
        if let Ok(san) = San::parse(&host) {
            sans.insert(san);
        }
    }
    for name in extra {
        sans.insert(San::parse(name)?);
    }
    Ok(sans)
}

fn host_name() -> Option<String> {
    let name = fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

fn serving_params(sans: &BTreeSet<San>) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    // kubeadm's serving certificate CN.
    dn.push(DnType::CommonName, "kube-apiserver");
    params.distinguished_name = dn;
    params.subject_alt_names = sans.iter().map(San::to_rcgen).collect::<Result<_>>()?;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, LEAF_VALIDITY);
    Ok(params)
}

fn client_params(user: &str, groups: &[&str]) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    // Upstream's x509 authenticator reads the user from CN and the groups from every O.
    dn.push(DnType::CommonName, user);
    for group in groups {
        dn.push(DnType::OrganizationName, *group);
    }
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, LEAF_VALIDITY);
    Ok(params)
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + validity;
}

fn serving_cert_is_current(
    der: &CertificateDer<'static>,
    ca: &Ca,
    required: &BTreeSet<San>,
) -> bool {
    let Ok(verifier) = rustls::client::WebPkiServerVerifier::builder_with_provider(
        ca.roots(),
        super::serving::crypto_provider(),
    )
    .build() else {
        return false;
    };
    let chains = verifier
        .verify_server_cert(
            der,
            &[],
            &ServerName::from(std::net::Ipv4Addr::LOCALHOST),
            &[],
            UnixTime::now(),
        )
        .is_ok();
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return false;
    };
    chains && !expires_soon(&cert) && required.is_subset(&cert_sans(&cert))
}

fn client_cert_is_current(
    der: &CertificateDer<'static>,
    ca: &Ca,
    user: &str,
    groups: &[&str],
) -> bool {
    let Ok(verifier) = rustls::server::WebPkiClientVerifier::builder_with_provider(
        ca.roots(),
        super::serving::crypto_provider(),
    )
    .build() else {
        return false;
    };
    if verifier
        .verify_client_cert(der, &[], UnixTime::now())
        .is_err()
    {
        return false;
    }
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return false;
    };
    let Some(info) = super::authentication::user_from_certificate(der) else {
        return false;
    };
    !expires_soon(&cert) && info.name == user && info.groups == groups
}

fn expires_soon(cert: &X509Certificate<'_>) -> bool {
    let not_after = cert.validity().not_after.timestamp();
    let now = unix_now() as i64;
    not_after - now < RENEW_BEFORE.as_secs() as i64
}

fn cert_sans(cert: &X509Certificate<'_>) -> BTreeSet<San> {
    let mut sans = BTreeSet::new();
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return sans;
    };
    for name in &ext.value.general_names {
        match name {
            GeneralName::DNSName(dns) => {
                sans.insert(San::Dns(dns.to_ascii_lowercase()));
            }
            GeneralName::IPAddress(bytes) => {
                let ip = match bytes.len() {
                    4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                    16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                    _ => None,
                };
                if let Some(ip) = ip {
                    sans.insert(San::Ip(ip));
                }
            }
            _ => {}
        }
    }
    sans
}

fn key_matches_cert(key: &KeyPair, der: &CertificateDer<'_>) -> bool {
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw(),
        Err(_) => false,
    }
}

fn pem_cert(pem: &str, path: &Path) -> Result<CertificateDer<'static>> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| Error::Parse {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

fn load_or_create_node_token(path: &Path) -> Result<String> {
    if let Some(text) = read_optional(path)? {
        let token = text.trim();
        if !token.is_empty() {
            return Ok(token.to_owned());
        }
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_atomic(path, format!("{token}\n").as_bytes(), PRIVATE_MODE)?;
    Ok(token)
}

/// Makes sure the token file exists and holds the node token, appending it when the file was
/// written by hand or before the token changed.
fn ensure_token_file(path: &Path, node_token: &str) -> Result<()> {
    let line =
        format!("{node_token},{NODE_BOOTSTRAP_USER},{NODE_BOOTSTRAP_USER},\"{NODES_GROUP}\"\n");
    match read_optional(path)? {
        None => write_atomic(path, line.as_bytes(), PRIVATE_MODE),
        Some(text) => {
            let tokens = parse_token_file(path, &text)?;
            if tokens.contains_key(node_token) {
                return Ok(());
            }
            let mut text = text;
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&line);
            write_atomic(path, text.as_bytes(), PRIVATE_MODE)
        }
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let err = |source| Error::Write {
        path: dir.to_owned(),
        source,
    };
    fs::create_dir_all(dir).map_err(err)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes through a fresh temporary file and a rename, so a crash never leaves a truncated key
/// and the file never exists, even briefly, with wider permissions than `mode`.
fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let err = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    file.write_all(contents).map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    fs::rename(&tmp, path).map_err(err)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(DAY)
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn parse(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn creates_then_loads_the_same_pki() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure_pki(dir.path(), &[]).unwrap();
        let second = ensure_pki(dir.path(), &[]).unwrap();
        assert_eq!(first.ca_cert_pem, second.ca_cert_pem);
        assert_eq!(first.ca_key_pem, second.ca_key_pem);
        assert_eq!(first.serving_cert_pem, second.serving_cert_pem);
        assert_eq!(first.serving_key_pem, second.serving_key_pem);
        assert_eq!(first.admin_cert_pem, second.admin_cert_pem);
        assert_eq!(first.node_token, second.node_token);
        let tokens = fs::read_to_string(dir.path().join(TOKEN_FILE)).unwrap();
        assert_eq!(tokens.lines().count(), 1, "{tokens}");
    }

    #[test]
    fn private_files_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ensure_pki(dir.path(), &[]).unwrap();
        for key in [CA_KEY, SERVING_KEY, ADMIN_KEY] {
            assert_eq!(mode(&pki.dir.join(key)), 0o600, "{key}");
        }
        assert_eq!(mode(&dir.path().join(NODE_TOKEN_FILE)), 0o600);
        assert_eq!(mode(&dir.path().join(TOKEN_FILE)), 0o600);
        assert_eq!(mode(&pki.dir), 0o700);
        let kubeconfig = dir.path().join("kube/config");
        write_kubeconfig(&pki, "https://127.0.0.1:6443", &kubeconfig).unwrap();
        assert_eq!(mode(&kubeconfig), 0o600);
    }

    #[test]
    fn serving_cert_carries_every_required_name() {
        let dir = tempfile::tempdir().unwrap();
        let extra = vec!["bosun.example.org".to_owned(), "192.0.2.7".to_owned()];
        let pki = ensure_pki(dir.path(), &extra).unwrap();
        let der = parse(&pki.serving_cert_pem);
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        let sans = cert_sans(&cert);
        for name in [
            "localhost",
            "127.0.0.1",
            "::1",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "10.96.0.1",
            "bosun.example.org",
            "192.0.2.7",
        ] {
            assert!(
                sans.contains(&San::parse(name).unwrap()),
                "missing {name}: {sans:?}"
            );
        }
        if let Some(host) = host_name() {
            if let Ok(san) = San::parse(&host) {
                assert!(sans.contains(&san), "missing host name {host}");
            }
        }
    }

    #[test]
    fn new_extra_name_reissues_serving_cert_under_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure_pki(dir.path(), &[]).unwrap();
        let second = ensure_pki(dir.path(), &["node-7.example.org".to_owned()]).unwrap();
        assert_eq!(first.ca_cert_pem, second.ca_cert_pem);
        assert_ne!(first.serving_cert_pem, second.serving_cert_pem);
        assert_eq!(first.admin_cert_pem, second.admin_cert_pem);
        let der = parse(&second.serving_cert_pem);
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        assert!(cert_sans(&cert).contains(&San::Dns("node-7.example.org".into())));
        // Dropping the extra name again keeps the (still sufficient) certificate.
        let third = ensure_pki(dir.path(), &[]).unwrap();
        assert_eq!(second.serving_cert_pem, third.serving_cert_pem);
    }

    #[test]
    fn admin_cert_verifies_against_the_ca_and_names_system_admin() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ensure_pki(dir.path(), &[]).unwrap();
        let ca = Ca::from_pem(&pki.dir, &pki.ca_cert_pem, &pki.ca_key_pem).unwrap();
        let der = parse(&pki.admin_cert_pem);
        assert!(client_cert_is_current(
            &der,
            &ca,
            ADMIN_USER,
            &[MASTERS_GROUP]
        ));
        let user = crate::tls::user_from_certificate(&der).unwrap();
        assert_eq!(user.name, "system:admin");
        assert_eq!(user.groups, vec!["system:masters".to_owned()]);

        // A certificate from another CA must not verify.
        let other = tempfile::tempdir().unwrap();
        let other = ensure_pki(other.path(), &[]).unwrap();
        assert!(!client_cert_is_current(
            &parse(&other.admin_cert_pem),
            &ca,
            ADMIN_USER,
            &[MASTERS_GROUP]
        ));
    }

    #[test]
    fn issued_client_cert_carries_user_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ensure_pki(dir.path(), &[]).unwrap();
        let (cert, key) = pki
            .issue_client_cert("system:node:n1", &["system:nodes"])
            .unwrap();
        let ca = Ca::from_pem(&pki.dir, &pki.ca_cert_pem, &pki.ca_key_pem).unwrap();
        let der = parse(&cert);
        assert!(client_cert_is_current(
            &der,
            &ca,
            "system:node:n1",
            &["system:nodes"]
        ));
        assert!(key_matches_cert(&KeyPair::from_pem(&key).unwrap(), &der));
    }

    #[test]
    fn damaged_leaf_is_reissued_and_missing_ca_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure_pki(dir.path(), &[]).unwrap();
        fs::write(first.dir.join(SERVING_CERT), "not a certificate").unwrap();
        let second = ensure_pki(dir.path(), &[]).unwrap();
        assert_ne!(first.serving_cert_pem, second.serving_cert_pem);
        assert_eq!(first.ca_cert_pem, second.ca_cert_pem);

        // A serving key that no longer matches its certificate is replaced too.
        fs::write(first.dir.join(SERVING_KEY), &first.admin_key_pem).unwrap();
        let third = ensure_pki(dir.path(), &[]).unwrap();
        assert_ne!(third.serving_cert_pem, second.serving_cert_pem);

        fs::remove_file(first.dir.join(CA_KEY)).unwrap();
        let err = ensure_pki(dir.path(), &[]).unwrap_err();
        assert!(matches!(err, Error::MissingCaKey { .. }), "{err}");
    }

    #[test]
    fn token_file_gains_the_node_token_when_edited_by_hand() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(TOKEN_FILE), "secret,alice,1001,\"dev,ops\"").unwrap();
        let pki = ensure_pki(dir.path(), &[]).unwrap();
        let text = fs::read_to_string(&pki.token_file).unwrap();
        let tokens = parse_token_file(&pki.token_file, &text).unwrap();
        assert_eq!(tokens["secret"].name, "alice");
        let node = &tokens[&pki.node_token];
        assert_eq!(node.name, NODE_BOOTSTRAP_USER);
        assert_eq!(node.groups, vec![NODES_GROUP.to_owned()]);
    }

    #[test]
    fn invalid_extra_name_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let err = ensure_pki(dir.path(), &["bad name!".to_owned()]).unwrap_err();
        assert!(matches!(err, Error::InvalidSan { .. }), "{err}");
    }

    #[test]
    fn kubeconfig_embeds_ca_and_admin_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ensure_pki(dir.path(), &[]).unwrap();
        let path = dir.path().join("kubeconfig.yaml");
        write_kubeconfig(&pki, "https://127.0.0.1:6443", &path).unwrap();
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(doc["current-context"], "default");
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
        let ca = doc["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .unwrap();
        let ca = base64::engine::general_purpose::STANDARD
            .decode(ca)
            .unwrap();
        assert_eq!(ca, pki.ca_cert_pem.as_bytes());
        let key = doc["users"][0]["user"]["client-key-data"].as_str().unwrap();
        let key = base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap();
        assert_eq!(key, pki.admin_key_pem.as_bytes());
    }
}
