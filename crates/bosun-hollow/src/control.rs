//! The simulator's HTTP control endpoint, to kill and revive nodes from outside the
//! process (a test script, `curl`):
//!
//! - `GET /nodes` — `[{"name": "...", "alive": true}, ...]`
//! - `POST /nodes/{name}/kill` — stop heartbeating the node (204, or 404 if unknown)
//! - `POST /nodes/{name}/revive` — heartbeat again (204, or 404)
//! - `GET /stats` — the [`crate::HollowStats`] counters
//! - `GET /healthz` — `ok`

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::{set_alive, Error, Result, Shared};

pub(crate) async fn serve(
    shared: Arc<Shared>,
    addr: SocketAddr,
) -> Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Control { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| Error::Control { addr, source })?;
    let app = router(shared);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "hollow control endpoint stopped");
        }
    });
    tracing::info!(addr = %bound, "hollow control endpoint listening");
    Ok((bound, task))
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/nodes", get(list))
        .route("/stats", get(stats))
        .route("/nodes/{name}/kill", post(kill))
        .route("/nodes/{name}/revive", post(revive))
        .with_state(shared)
}

async fn list(State(s): State<Arc<Shared>>) -> Json<Value> {
    let mut nodes: Vec<(String, bool)> = s
        .nodes
        .lock()
        .iter()
        .map(|(k, n)| (k.clone(), n.alive))
        .collect();
    nodes.sort();
    Json(json!(nodes
        .into_iter()
        .map(|(name, alive)| json!({"name": name, "alive": alive}))
        .collect::<Vec<_>>()))
}

async fn stats(State(s): State<Arc<Shared>>) -> Json<Value> {
    use std::sync::atomic::Ordering::Relaxed;
    let c = &s.counters;
    Json(json!({
        "nodes": s.nodes.lock().len(),
        "podsStarted": c.pods_started.load(Relaxed),
        "podsFinished": c.pods_finished.load(Relaxed),
        "podsDeleted": c.pods_deleted.load(Relaxed),
        "leaseRenewals": c.lease_renewals.load(Relaxed),
        "nodeStatusUpdates": c.node_status_updates.load(Relaxed),
        "writeErrors": c.write_errors.load(Relaxed),
    }))
}

fn answer(r: Result<()>) -> (StatusCode, String) {
    match r {
        Ok(()) => (StatusCode::NO_CONTENT, String::new()),
        Err(e @ Error::UnknownNode(_)) => (StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn kill(State(s): State<Arc<Shared>>, Path(name): Path<String>) -> (StatusCode, String) {
    answer(set_alive(&s, &name, false))
}

async fn revive(State(s): State<Arc<Shared>>, Path(name): Path<String>) -> (StatusCode, String) {
    answer(set_alive(&s, &name, true))
}
