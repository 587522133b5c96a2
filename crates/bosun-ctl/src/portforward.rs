//! `port-forward TARGET [LOCAL:]REMOTE ...`: listens on local ports and carries every accepted
//! connection to a pod's port over the server's `pods/portforward` (kube-rs's
//! `Api::portforward`, upstream's WebSocket channel protocol; one WebSocket per connection).
//! TARGET is `pod/NAME`, `NAME` or `svc/NAME`; a service resolves, as kubectl does, to one of
//! its running pods (ready ones first) and its service port to the `targetPort` (a named
//! target port to the pod's container port of that name). Prints kubectl's lines:
//! `Forwarding from 127.0.0.1:LOCAL -> REMOTE`, `Handling connection for LOCAL`.

use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

use crate::error::{Error, Result};
use crate::get::get_json;
use crate::Ctx;

/// What `port-forward` was asked for.
pub(crate) struct PortForwardOpts {
    pub target: String,
    pub ports: Vec<String>,
    pub addresses: Vec<String>,
}

/// One `[LOCAL:]REMOTE` argument; `remote` may still be a port name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mapping {
    /// `None`: the same as the (translated) remote port; `Some(0)`: let the system pick
    /// (`:REMOTE`).
    local: Option<u16>,
    remote: String,
}

/// Parses `[LOCAL:]REMOTE` as kubectl does: `8080` is 8080:8080, `:80` a random local port.
fn parse_mapping(s: &str) -> Result<Mapping> {
    let (local, remote) = match s.split_once(':') {
        Some(("", r)) => (Some(0), r),
        Some((l, r)) => {
            let l = l
                .parse::<u16>()
                .map_err(|_| Error::usage(format!("Error parsing local port '{l}'")))?;
            (Some(l), r)
        }
        None => (None, s),
    };
    // A remote port is a number in 1..=65535, or a port name translated later.
    let numeric = !remote.is_empty() && remote.chars().all(|c| c.is_ascii_digit());
    if remote.is_empty() || (numeric && !matches!(remote.parse::<u16>(), Ok(1..))) {
        return Err(Error::usage(format!(
            "remote port must be > 0 and < 65536: \"{s}\""
        )));
    }
    Ok(Mapping {
        local,
        remote: remote.to_string(),
    })
}

/// The container port named `name` in `pod`.
fn container_port(pod: &Value, name: &str) -> Option<u16> {
    pod.pointer("/spec/containers")?
        .as_array()?
        .iter()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .find(|p| p["name"].as_str() == Some(name))
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|n| u16::try_from(n).ok())
}

/// A pod's REMOTE: a number as is, a name through the pod's container ports.
fn pod_port(pod: &Value, pod_name: &str, remote: &str) -> Result<u16> {
    if let Ok(n) = remote.parse() {
        return Ok(n);
    }
    container_port(pod, remote).ok_or_else(|| {
        Error::usage(format!(
            "Pod '{pod_name}' does not have a named port '{remote}'"
        ))
    })
}

/// A service's REMOTE (its port number or name) as the pod's port: the `targetPort`, a named
/// one through the pod's container ports, none meaning the service port itself.
fn service_target_port(svc: &Value, pod: &Value, remote: &str) -> Result<u16> {
    let svc_name = svc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let found = ports.iter().find(|p| match remote.parse::<u64>() {
        Ok(n) => p["port"].as_u64() == Some(n),
        Err(_) => p["name"].as_str() == Some(remote),
    });
    let Some(sp) = found else {
        return Err(Error::usage(format!(
            "Service {svc_name} does not have a service port {remote}"
        )));
    };
    match &sp["targetPort"] {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| Error::usage(format!("invalid targetPort {n}"))),
        Value::String(name) => container_port(pod, name).ok_or_else(|| {
            Error::usage(format!(
                "Pod '{}' does not have a named port '{name}'",
                pod.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            ))
        }),
        _ => sp["port"]
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| Error::usage(format!("Service {svc_name} has an invalid port"))),
    }
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The pod behind a service: its selector's running pods, ready ones first.
async fn service_pod(ctx: &Ctx, svc: &Value) -> Result<Value> {
    let name = svc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let selector = svc
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            Error::usage(format!(
                "cannot attach to *v1.Service: invalid service '{name}': Service is defined without a selector"
            ))
        })?;
    let sel = selector
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join(",");
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("labelSelector", &sel)
        .finish();
    let list = get_json(
        &ctx.client,
        &format!("/api/v1/namespaces/{}/pods?{q}", ctx.namespace),
        "application/json",
    )
    .await?;
    let mut pods: Vec<Value> = list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
        .filter(|p| p.pointer("/status/phase").and_then(Value::as_str) == Some("Running"))
        .collect();
    pods.sort_by_key(|p| !is_ready(p));
    pods.into_iter().next().ok_or_else(|| {
        Error::usage(format!(
            "timed out waiting for the condition: no running pod for service {name}"
        ))
    })
}

pub(crate) async fn port_forward(ctx: &Ctx, o: PortForwardOpts) -> Result<()> {
    let mappings = o
        .ports
        .iter()
        .map(|p| parse_mapping(p))
        .collect::<Result<Vec<_>>>()?;
    if mappings.is_empty() {
        return Err(Error::usage("at least 1 PORT is required for port-forward"));
    }
    let (kind, name) = match o.target.split_once('/') {
        Some((k, n)) => (k, n),
        None => ("pod", o.target.as_str()),
    };
    let (pod, remotes) = match kind {
        "pod" | "pods" | "po" => {
            let pod = get_json(
                &ctx.client,
                &format!("/api/v1/namespaces/{}/pods/{name}", ctx.namespace),
                "application/json",
            )
            .await?;
            let remotes = mappings
                .iter()
                .map(|m| pod_port(&pod, name, &m.remote))
                .collect::<Result<Vec<_>>>()?;
            (pod, remotes)
        }
        "svc" | "service" | "services" => {
            let svc = get_json(
                &ctx.client,
                &format!("/api/v1/namespaces/{}/services/{name}", ctx.namespace),
                "application/json",
            )
            .await?;
            let pod = service_pod(ctx, &svc).await?;
            let remotes = mappings
                .iter()
                .map(|m| service_target_port(&svc, &pod, &m.remote))
                .collect::<Result<Vec<_>>>()?;
            (pod, remotes)
        }
        other => {
            return Err(Error::usage(format!(
                "cannot port-forward to a {other}: use pod/NAME, NAME or svc/NAME"
            )))
        }
    };
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if phase != "Running" {
        return Err(Error::usage(format!(
            "unable to forward port because pod is not running. Current status={phase}"
        )));
    }
    let pod_name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or(name)
        .to_string();
    let mut addrs = Vec::new();
    for a in &o.addresses {
        let ip: IpAddr = if a == "localhost" {
            IpAddr::from([127, 0, 0, 1])
        } else {
            a.parse()
                .map_err(|_| Error::usage(format!("{a} is not a valid IP")))?
        };
        addrs.push(ip);
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let mut accepting = tokio::task::JoinSet::new();
    for (m, remote) in mappings.iter().zip(remotes) {
        let local = m.local.unwrap_or(remote);
        for ip in &addrs {
            let listener = TcpListener::bind(SocketAddr::new(*ip, local))
                .await
                .map_err(|e| Error::Io {
                    what: format!("unable to listen on port {local}"),
                    source: e,
                })?;
            let bound = listener.local_addr().map_err(|e| Error::Io {
                what: "local address".into(),
                source: e,
            })?;
            println!("Forwarding from {bound} -> {remote}");
            accepting.spawn(accept_loop(listener, api.clone(), pod_name.clone(), remote));
        }
    }
    // Runs until interrupted; a listener that fails ends the command.
    while let Some(r) = accepting.join_next().await {
        if let Ok(Err(e)) = r {
            return Err(e);
        }
    }
    Ok(())
}

async fn accept_loop(listener: TcpListener, api: Api<Pod>, pod: String, remote: u16) -> Result<()> {
    let local = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    loop {
        let (conn, _) = listener.accept().await.map_err(|e| Error::Io {
            what: format!("accept on port {local}"),
            source: e,
        })?;
        println!("Handling connection for {local}");
        let api = api.clone();
        let pod = pod.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(conn, &api, &pod, remote).await {
                eprintln!("error: an error occurred forwarding {local} -> {remote}: {e}");
            }
        });
    }
}

/// One local connection: its own port-forward WebSocket, bytes copied both ways; the pod's
/// error (a failed dial) is returned.
async fn handle(mut conn: TcpStream, api: &Api<Pod>, pod: &str, remote: u16) -> Result<()> {
    let mut pf = api.portforward(pod, &[remote]).await?;
    let mut stream = pf
        .take_stream(remote)
        .ok_or_else(|| Error::usage("no stream for the port"))?;
    let error = pf
        .take_error(remote)
        .ok_or_else(|| Error::usage("no error channel for the port"))?;
    let _ = tokio::io::copy_bidirectional(&mut conn, &mut stream).await;
    drop(stream);
    // The error channel resolves once the WebSocket ends: with a message if the pod's side
    // failed.
    if let Ok(Some(msg)) = tokio::time::timeout(std::time::Duration::from_secs(5), error).await {
        return Err(Error::usage(msg));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mappings_as_kubectl_reads_them() {
        let m = |l, r: &str| Mapping {
            local: l,
            remote: r.into(),
        };
        assert_eq!(parse_mapping("8080").unwrap(), m(None, "8080"));
        assert_eq!(parse_mapping("5000:80").unwrap(), m(Some(5000), "80"));
        assert_eq!(parse_mapping(":80").unwrap(), m(Some(0), "80"));
        assert_eq!(parse_mapping("5000:http").unwrap(), m(Some(5000), "http"));
        assert_eq!(parse_mapping("http").unwrap(), m(None, "http"));
        assert!(parse_mapping("5000:").is_err());
        assert!(parse_mapping("x:80").is_err());
        assert!(parse_mapping("70000").is_err());
        assert!(parse_mapping("0").is_err());
    }

    #[test]
    fn service_ports_resolve_to_target_ports() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "ports": [{"name": "web", "containerPort": 8080}]}]}});
        let svc = json!({"metadata": {"name": "s"}, "spec": {"ports": [
            {"name": "http", "port": 80, "targetPort": "web"},
            {"name": "metrics", "port": 9000, "targetPort": 9100},
            {"name": "plain", "port": 7000}]}});
        assert_eq!(service_target_port(&svc, &pod, "80").unwrap(), 8080);
        assert_eq!(service_target_port(&svc, &pod, "http").unwrap(), 8080);
        assert_eq!(service_target_port(&svc, &pod, "9000").unwrap(), 9100);
        assert_eq!(service_target_port(&svc, &pod, "7000").unwrap(), 7000);
        let e = service_target_port(&svc, &pod, "81").unwrap_err();
        assert_eq!(e.to_string(), "Service s does not have a service port 81");
        assert_eq!(pod_port(&pod, "p", "web").unwrap(), 8080);
        assert_eq!(pod_port(&pod, "p", "81").unwrap(), 81);
        assert!(pod_port(&pod, "p", "nope").is_err());
    }
}
