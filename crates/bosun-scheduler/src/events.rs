//! Events the scheduler records (`Scheduled`, `FailedScheduling`, `Preempted`), written
//! as core/v1 Events by a background task so that recording never blocks a decision.
//! Like client-go's broadcaster, it drops events when its queue is full rather than
//! slowing the scheduler down.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, PostParams};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::framework::PodInfo;

/// Events buffered before new ones are dropped (client-go's `maxQueuedEvents` is 1000;
/// a larger buffer rides out a burst of thousands of bindings).
const QUEUE: usize = 20_000;

#[derive(Clone)]
pub struct EventRecorder {
    tx: Option<mpsc::Sender<Event>>,
    component: String,
    seq: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
}

impl EventRecorder {
    /// A recorder writing through `client` with `concurrency` requests in flight.
    pub fn start(
        client: kube::Client,
        component: &str,
        concurrency: usize,
    ) -> (EventRecorder, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel::<Event>(QUEUE);
        let task = tokio::spawn(async move {
            tokio_stream_like(rx)
                .for_each_concurrent(concurrency.max(1), |ev| {
                    let client = client.clone();
                    async move {
                        let ns = ev.metadata.namespace.clone().unwrap_or_default();
                        let api: Api<Event> = Api::namespaced(client, &ns);
                        if let Err(e) = api.create(&PostParams::default(), &ev).await {
                            tracing::debug!(error = %e, reason = ?ev.reason, "recording an event failed");
                        }
                    }
                })
                .await;
        });
        (
            EventRecorder {
                tx: Some(tx),
                component: component.to_string(),
                seq: Arc::new(AtomicU64::new(0)),
                dropped: Arc::new(AtomicU64::new(0)),
            },
            task,
        )
    }

    /// A recorder that records nothing.
    pub fn disabled(component: &str) -> EventRecorder {
        EventRecorder {
            tx: None,
            component: component.to_string(),
            seq: Arc::new(AtomicU64::new(0)),
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records an event about `pod` (`kind` Normal or Warning).
    pub fn pod_event(
        &self,
        pod: &PodInfo,
        kind: &str,
        reason: &str,
        action: &str,
        message: String,
    ) {
        let Some(tx) = &self.tx else { return };
        let now = Utc::now();
        // Upstream names events `{object}.{unix nanos in hex}`; the sequence keeps two
        // events of the same nanosecond apart.
        let nanos = now.timestamp_nanos_opt().unwrap_or_default() as u64;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let ts = now.to_rfc3339_opts(SecondsFormat::Secs, true);
        let v = json!({
            "metadata": {"name": format!("{}.{:x}", pod.name, nanos.wrapping_add(seq)), "namespace": pod.namespace},
            "involvedObject": {
                "apiVersion": "v1", "kind": "Pod",
                "namespace": pod.namespace, "name": pod.name, "uid": pod.uid,
                "resourceVersion": pod.pod.metadata.resource_version,
            },
            "reason": reason,
            "message": message,
            "action": action,
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": "",
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
            "type": kind,
        });
        match serde_json::from_value::<Event>(v) {
            Ok(ev) => {
                if tx.try_send(ev).is_err() {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => tracing::debug!(error = %e, "building an event failed"),
        }
    }
}

/// A Stream over an mpsc receiver (tokio-stream's wrapper, without the dependency).
fn tokio_stream_like<T: Send + 'static>(rx: mpsc::Receiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}
