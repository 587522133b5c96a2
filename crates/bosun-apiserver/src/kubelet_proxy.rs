//! `pods/log`, proxied to the kubelet of the pod's node as upstream's API server does
//! (`pkg/registry/core/pod/rest/log.go`): the container is chosen (or the only one taken),
//! the node's InternalIP and `daemonEndpoints.kubeletEndpoint.Port` give the address, and the
//! kubelet's `/containerLogs/{ns}/{pod}/{container}` answer is streamed back. The API server
//! authenticates to the kubelet with a client certificate from the cluster CA (upstream's
//! `--kubelet-client-certificate`); like upstream without `--kubelet-certificate-authority`,
//! it does not verify the kubelet's self-signed serving certificate.
use std::sync::Arc;

use axum::body::Body;
use axum::http::HeaderValue;
use axum::response::Response;
use bosun_api::StatusError;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::Value;

use crate::handlers::ApiState;
use crate::request::{Query, ResourcePath};
use crate::tls::Pki;

/// The user the API server presents to kubelets (kubeadm's name for it).
const KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";
/// Query parameters of `pods/log` the kubelet understands.
const LOG_PARAMS: [&str; 7] = [
    "follow",
    "previous",
    "tailLines",
    "sinceSeconds",
    "sinceTime",
    "timestamps",
    "limitBytes",
];

/// The API server's client for kubelets; its TLS config is built on first use.
pub struct KubeletClient {
    pki: Pki,
    tls: once_cell::sync::OnceCell<Arc<rustls::ClientConfig>>,
}

impl KubeletClient {
    pub fn new(pki: Pki) -> Self {
        KubeletClient {
            pki,
            tls: once_cell::sync::OnceCell::new(),
        }
    }

    pub(crate) fn tls(&self) -> Result<Arc<rustls::ClientConfig>, StatusError> {
        self.tls
            .get_or_try_init(|| {
                let (cert, key) = self
                    .pki
                    .issue_client_cert(KUBELET_CLIENT_USER, &["system:masters"])
                    .map_err(|e| e.to_string())?;
                let certs: Vec<CertificateDer<'static>> =
                    CertificateDer::pem_slice_iter(cert.as_bytes())
                        .collect::<Result<_, _>>()
                        .map_err(|e| e.to_string())?;
                let key =
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| e.to_string())?;
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>(Arc::new(cfg))
            })
            .cloned()
            .map_err(|e| StatusError::internal(format!("kubelet client credentials: {e}")))
    }
}

#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn names(pod: &Value, key: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{key}"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `host:port` of a Node's kubelet: its InternalIP (else ExternalIP, else Hostname) and
/// `daemonEndpoints.kubeletEndpoint.Port` (default 10250).
pub(crate) fn kubelet_address(node: &Value) -> Option<String> {
    let addrs = node.pointer("/status/addresses")?.as_array()?;
    let addr = ["InternalIP", "ExternalIP", "Hostname"].iter().find_map(|t| {
        addrs
            .iter()
            .find(|a| a["type"] == *t)
            .and_then(|a| a["address"].as_str())
    })?;
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .unwrap_or(10250);
    Some(if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    })
}

/// `GET pods/{name}/log`.
pub async fn pod_log(st: &ApiState, rp: &ResourcePath, q: &Query) -> Result<Response, StatusError> {
    let mut parent = rp.clone();
    parent.subresource = None;
    let pod = st.registry.get(&parent, &Query::default()).await?;
    let name = rp.name.clone().unwrap_or_default();
    let ns = rp.namespace.clone().unwrap_or_default();
    let regular = names(&pod, "containers");
    let mut all = regular.clone();
    all.extend(names(&pod, "initContainers"));
    all.extend(names(&pod, "ephemeralContainers"));
    let container = match q.get("container").filter(|c| !c.is_empty()) {
        Some(c) => c.to_string(),
        None if regular.len() == 1 => regular[0].clone(),
        None => {
            return Err(StatusError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                regular.join(" ")
            )))
        }
    };
    if !all.contains(&container) {
        return Err(StatusError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            StatusError::bad_request(format!("pod {name} does not have a host assigned"))
        })?
        .to_string();
    let nodes = bosun_api::resources::find("", "v1", "nodes")
        .ok_or_else(|| StatusError::internal("no nodes resource"))?;
    let node = st
        .registry
        .get(
            &ResourcePath {
                def: nodes,
                namespace: None,
                name: Some(node_name.clone()),
                subresource: None,
            },
            &Query::default(),
        )
        .await?;
    let addrs = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let addr = ["InternalIP", "ExternalIP", "Hostname"]
        .iter()
        .find_map(|t| {
            addrs
                .iter()
                .find(|a| a["type"] == *t)
                .and_then(|a| a["address"].as_str())
        })
        .ok_or_else(|| {
            StatusError::service_unavailable(format!("node {node_name} reports no address"))
        })?
        .to_string();
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .unwrap_or(10250);
    let path = {
        // The serializer is not Send: it must not live across an await.
        let mut query = form_urlencoded::Serializer::new(String::new());
        for k in LOG_PARAMS {
            if let Some(v) = q.get(k) {
                query.append_pair(k, v);
            }
        }
        format!("/containerLogs/{ns}/{name}/{container}?{}", query.finish())
    };
    let unavailable =
        |e: String| StatusError::service_unavailable(format!("kubelet on node {node_name}: {e}"));
    let host = if addr.contains(':') {
        format!("[{addr}]")
    } else {
        addr.clone()
    };
    let tcp = tokio::net::TcpStream::connect(format!("{host}:{port}"))
        .await
        .map_err(|e| unavailable(format!("dial {host}:{port}: {e}")))?;
    let server_name = ServerName::try_from(addr.clone())
        .map_err(|e| unavailable(e.to_string()))?
        .to_owned();
    let tls = tokio_rustls::TlsConnector::from(st.kubelet.tls()?)
        .connect(server_name, tcp)
        .await
        .map_err(|e| unavailable(format!("TLS handshake: {e}")))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::get(&path)
        .header("host", format!("{host}:{port}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| StatusError::internal(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
            .unwrap_or_default();
        return Err(match status.as_u16() {
            400 => StatusError::bad_request(body),
            404 => StatusError::new(bosun_api::StatusReason::NotFound, body),
            _ => StatusError::internal(body),
        });
    }
    let mut out = Response::new(Body::new(resp.into_body()));
    out.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/plain"));
    Ok(out)
}
