//! Recording core/v1 Events the way client-go's `tools/record` does, for every bosun
//! component that records them (controllers, scheduler, kubelet):
//! - [`Recorder::record`] never blocks: events go through a bounded queue and are dropped
//!   (and counted) when it is full, so a burst of thousands never slows the caller;
//! - one background sink correlates them in arrival order ([`Correlator`]: similar events
//!   combined, repeats counted on the first one, a per-object spam budget) and writes with
//!   a few requests in flight: a create, or a strategic merge patch of `count`,
//!   `lastTimestamp` and `message` on the earlier event (created anew if it is gone).
//!
//! So `kubectl describe` shows a probe that keeps failing as one line "(x5 over 2m)", and a
//! ReplicaSet creating 10,000 pods writes a few dozen events, not 10,000.

mod correlator;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use correlator::{Correlated, Correlator};

/// `Normal` events.
pub const NORMAL: &str = "Normal";
/// `Warning` events.
pub const WARNING: &str = "Warning";

/// A handle to one component's event sink; clones share it.
#[derive(Clone)]
pub struct Recorder {
    tx: Option<mpsc::Sender<Event>>,
    dropped: Arc<AtomicU64>,
}

impl Recorder {
    /// Starts the sink: at most `queue` events wait, `concurrency` writes are in flight.
    /// The sink ends when every clone of the recorder is dropped.
    pub fn start(client: Client, queue: usize, concurrency: usize) -> (Recorder, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel::<Event>(queue.max(1));
        let correlator = Arc::new(Mutex::new(Correlator::new()));
        let incoming =
            futures::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|ev| (ev, rx)) },
            );
        let task = tokio::spawn(incoming.for_each_concurrent(concurrency.max(1), move |ev| {
            // Correlation happens here, in arrival order; only the write is concurrent.
            let decision = correlator.lock().correlate(ev, Timestamp::now());
            let client = client.clone();
            let correlator = correlator.clone();
            async move {
                if let Some(written) = write(client, decision).await {
                    correlator.lock().update_state(&written);
                }
            }
        }));
        (
            Recorder {
                tx: Some(tx),
                dropped: Arc::new(AtomicU64::new(0)),
            },
            task,
        )
    }

    /// A recorder that records nothing (unit tests, components run without a sink).
    pub fn disabled() -> Recorder {
        Recorder {
            tx: None,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queues `ev` without waiting; drops it when the queue is full.
    pub fn record(&self, ev: Event) {
        let Some(tx) = &self.tx else { return };
        if tx.try_send(ev).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A new core/v1 Event about `involved`, as client-go's recorder makes it: named
/// `<object>.<nanoseconds in hex>`, in the object's namespace (`default` for
/// cluster-scoped objects), count 1, first and last timestamp now.
pub fn new_event(
    involved: ObjectReference,
    type_: &str,
    reason: &str,
    message: String,
    component: &str,
    host: Option<&str>,
) -> Event {
    let now = Timestamp::now();
    let name = involved.name.clone().unwrap_or_default();
    let ns = involved
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into());
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{:x}", now.as_nanosecond())),
            namespace: Some(ns),
            ..Default::default()
        },
        involved_object: involved,
        reason: Some(reason.to_owned()),
        message: Some(message),
        type_: Some(type_.to_owned()),
        source: Some(EventSource {
            component: Some(component.to_owned()),
            host: host.map(str::to_owned),
        }),
        reporting_component: Some(component.to_owned()),
        reporting_instance: Some(host.unwrap_or(component).to_owned()),
        // Whole seconds, as the v1 Time fields are serialized.
        first_timestamp: Some(Time(whole_seconds(now))),
        last_timestamp: Some(Time(whole_seconds(now))),
        count: Some(1),
        ..Default::default()
    }
}

fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// Writes one correlated event; the server's answer on success.
async fn write(client: Client, decision: Correlated) -> Option<Event> {
    let (ev, patch) = match decision {
        Correlated::Skip => return None,
        Correlated::Create(ev) => (ev, None),
        Correlated::Patch { event, patch } => (event, Some(patch)),
    };
    let ns = ev
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let api: Api<Event> = Api::namespaced(client, &ns);
    if let (Some(patch), Some(name)) = (patch, ev.metadata.name.clone()) {
        match api
            .patch(&name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            Ok(e) => return Some(e),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                tracing::debug!(error = %e, event = %name, "updating an event failed");
                return None;
            }
        }
    }
    // A new event, or the earlier one is gone (expired or deleted): create it.
    let mut ev = ev;
    ev.metadata.resource_version = None;
    match api.create(&PostParams::default(), &ev).await {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::debug!(error = %e, reason = ?ev.reason, "recording an event failed");
            None
        }
    }
}
