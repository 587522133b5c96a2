//! `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward`, proxied to the kubelet of
//! the pod's node as upstream's API server does (`pkg/registry/core/pod/rest/log.go`,
//! `subresources.go`): the container is chosen (or the only one taken), the node's
//! InternalIP and `daemonEndpoints.kubeletEndpoint.Port` give the address; the kubelet's
//! `/containerLogs/{ns}/{pod}/{container}` answer is streamed back, and the streaming
//! subresources' upgraded connections are spliced through ([`pod_stream`]). The API server
//! authenticates to the kubelet with a client certificate from the cluster CA (upstream's
//! `--kubelet-client-certificate`); like upstream without `--kubelet-certificate-authority`,
//! it does not verify the kubelet's self-signed serving certificate.
use std::sync::Arc;

use axum::body::Body;
use axum::http::HeaderValue;
use axum::response::Response;
use bosun_api::StatusError;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
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

/// The container a `log`, `exec` or `attach` request means: the one named, or the only one.
fn pick_container(pod: &Value, q: &Query, name: &str) -> Result<String, StatusError> {
    let regular = names(pod, "containers");
    let mut all = regular.clone();
    all.extend(names(pod, "initContainers"));
    all.extend(names(pod, "ephemeralContainers"));
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
    Ok(container)
}

/// Where the kubelet of the pod's node listens: (host for a URL, port, node name).
async fn kubelet_of(
    st: &ApiState,
    pod: &Value,
    name: &str,
) -> Result<(String, u64, String), StatusError> {
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
    Ok((addr, port, node_name))
}

/// An HTTP/1.1 connection to a kubelet (upgrades allowed), authenticated with the API
/// server's client certificate.
async fn dial_kubelet(
    st: &ApiState,
    addr: &str,
    port: u64,
    node_name: &str,
) -> Result<
    (
        hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
        String,
    ),
    StatusError,
> {
    let unavailable =
        |e: String| StatusError::service_unavailable(format!("kubelet on node {node_name}: {e}"));
    let host = if addr.contains(':') {
        format!("[{addr}]")
    } else {
        addr.to_string()
    };
    let tcp = tokio::net::TcpStream::connect(format!("{host}:{port}"))
        .await
        .map_err(|e| unavailable(format!("dial {host}:{port}: {e}")))?;
    let server_name = ServerName::try_from(addr.to_string())
        .map_err(|e| unavailable(e.to_string()))?
        .to_owned();
    let tls = tokio_rustls::TlsConnector::from(st.kubelet.tls()?)
        .connect(server_name, tcp)
        .await
        .map_err(|e| unavailable(format!("TLS handshake: {e}")))?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok((sender, format!("{host}:{port}")))
}

/// A kubelet's error answer as the client's error (its Status body when it sent one).
async fn kubelet_error(resp: http::Response<hyper::body::Incoming>) -> StatusError {
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let message = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
    match status.as_u16() {
        400 => StatusError::bad_request(message),
        404 => StatusError::new(bosun_api::StatusReason::NotFound, message),
        503 => StatusError::service_unavailable(message),
        _ => StatusError::internal(message),
    }
}

/// `host:port` of a Node's kubelet: its InternalIP (else ExternalIP, else Hostname) and
/// `daemonEndpoints.kubeletEndpoint.Port` (default 10250).
pub(crate) fn kubelet_address(node: &Value) -> Option<String> {
    let addrs = node.pointer("/status/addresses")?.as_array()?;
    let addr = ["InternalIP", "ExternalIP", "Hostname"]
        .iter()
        .find_map(|t| {
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
    let container = pick_container(&pod, q, &name)?;
    let (addr, port, node_name) = kubelet_of(st, &pod, &name).await?;
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
    let (mut sender, host) = dial_kubelet(st, &addr, port, &node_name).await?;
    let req = http::Request::get(&path)
        .header("host", host)
        .body(Empty::<Bytes>::new())
        .map_err(|e| StatusError::internal(e.to_string()))?;
    let resp = sender.send_request(req).await.map_err(|e| {
        StatusError::service_unavailable(format!("kubelet on node {node_name}: {e}"))
    })?;
    if !resp.status().is_success() {
        return Err(kubelet_error(resp).await);
    }
    let mut out = Response::new(Body::new(resp.into_body()));
    out.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/plain"));
    Ok(out)
}

/// Request headers an upgrade needs the kubelet to see (WebSocket handshake, SPDY
/// negotiation); credentials and hop-by-hop framing stay here.
const UPGRADE_HEADERS: [&str; 7] = [
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "x-stream-protocol-version",
    "user-agent",
];
/// Response headers of a kubelet's 101 the client needs.
const UPGRADE_RESPONSE_HEADERS: [&str; 5] = [
    "connection",
    "upgrade",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "x-stream-protocol-version",
];

/// `pods/{name}/exec`, `pods/{name}/attach` and `pods/{name}/portforward` (upstream's
/// `UpgradeAwareHandler`): the request goes to the kubelet's `/exec`, `/attach` or
/// `/portForward` with its upgrade headers; on `101 Switching Protocols` the client's and the
/// kubelet's upgraded connections are spliced both ways, so WebSocket (`v5.channel.k8s.io`,
/// `SPDY/3.1+portforward.k8s.io`) and SPDY pass through unchanged. Any other answer is the
/// kubelet's error, passed on as a Status.
pub async fn pod_stream(
    st: &ApiState,
    rp: &ResourcePath,
    mut req: axum::extract::Request,
) -> Result<Response, StatusError> {
    let mut parent = rp.clone();
    parent.subresource = None;
    let pod = st.registry.get(&parent, &Query::default()).await?;
    let name = rp.name.clone().unwrap_or_default();
    let ns = rp.namespace.clone().unwrap_or_default();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let q = Query::parse(Some(&raw_query));
    let sub = rp.subresource.as_deref().unwrap_or("");
    let path = match sub {
        "exec" | "attach" => {
            let container = pick_container(&pod, &q, &name)?;
            let phase = pod
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("");
            if phase == "Succeeded" || phase == "Failed" {
                return Err(StatusError::bad_request(format!(
                    "cannot {sub} into a container in a completed pod; current phase is {phase}"
                )));
            }
            format!("/{sub}/{ns}/{name}/{container}?{raw_query}")
        }
        _ => format!("/portForward/{ns}/{name}?{raw_query}"),
    };
    let (addr, port, node_name) = kubelet_of(st, &pod, &name).await?;
    let (mut sender, host) = dial_kubelet(st, &addr, port, &node_name).await?;
    let mut kreq = http::Request::builder()
        .method(req.method().clone())
        .uri(&path)
        .header("host", host);
    for (k, v) in req.headers() {
        if UPGRADE_HEADERS.contains(&k.as_str()) {
            kreq = kreq.header(k, v);
        }
    }
    let kreq = kreq
        .body(Empty::<Bytes>::new())
        .map_err(|e| StatusError::internal(e.to_string()))?;
    let mut resp = sender.send_request(kreq).await.map_err(|e| {
        StatusError::service_unavailable(format!("kubelet on node {node_name}: {e}"))
    })?;
    if resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        return Err(kubelet_error(resp).await);
    }
    let mut out = Response::new(Body::empty());
    *out.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    for (k, v) in resp.headers() {
        if UPGRADE_RESPONSE_HEADERS.contains(&k.as_str()) {
            out.headers_mut().append(k.clone(), v.clone());
        }
    }
    let from_client = hyper::upgrade::on(&mut req);
    let from_kubelet = hyper::upgrade::on(&mut resp);
    tokio::spawn(async move {
        let (Ok(c), Ok(k)) = (from_client.await, from_kubelet.await) else {
            return;
        };
        let (mut c, mut k) = (TokioIo::new(c), TokioIo::new(k));
        let _ = tokio::io::copy_bidirectional(&mut c, &mut k).await;
    });
    Ok(out)
}
