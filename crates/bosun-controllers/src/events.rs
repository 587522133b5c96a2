//! Recording core/v1 Events (`SuccessfulCreate`, `ScalingReplicaSet`, …) as upstream's
//! controllers do, so `kubectl describe` shows them. Best effort: events go through a
//! bounded queue to one sender task and are dropped when it is full, so a burst of
//! thousands of pod creations never slows the controllers down.

use chrono::Utc;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::{Client, Resource};
use tokio::sync::mpsc;

/// Events waiting to be sent before new ones are dropped.
const QUEUE: usize = 1024;

#[derive(Clone)]
pub struct Recorder {
    component: &'static str,
    tx: Option<mpsc::Sender<Event>>,
}

impl Recorder {
    /// A recorder whose sender task runs until every clone is dropped.
    pub fn new(client: Client, component: &'static str) -> Recorder {
        let (tx, mut rx) = mpsc::channel::<Event>(QUEUE);
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let ns = ev
                    .metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".into());
                let api: Api<Event> = Api::namespaced(client.clone(), &ns);
                if let Err(e) = api.create(&PostParams::default(), &ev).await {
                    tracing::debug!(error = %e, reason = ?ev.reason, "event not recorded");
                }
            }
        });
        Recorder {
            component,
            tx: Some(tx),
        }
    }

    /// A recorder that records nothing (unit tests).
    pub fn disabled() -> Recorder {
        Recorder {
            component: "",
            tx: None,
        }
    }

    /// Records an event about `obj`: `type_` is `Normal` or `Warning`.
    pub fn record<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: &str,
        reason: &str,
        message: String,
    ) {
        let Some(tx) = &self.tx else { return };
        let meta = obj.meta();
        let name = meta.name.clone().unwrap_or_default();
        // Events of cluster-scoped objects live in `default`, as upstream's recorder does.
        let ns = meta
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        let now = Utc::now();
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(format!(
                    "{name}.{:x}",
                    now.timestamp_nanos_opt().unwrap_or(0)
                )),
                namespace: Some(ns),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some(K::api_version(&()).into_owned()),
                kind: Some(K::kind(&()).into_owned()),
                name: Some(name),
                namespace: meta.namespace.clone(),
                uid: meta.uid.clone(),
                resource_version: meta.resource_version.clone(),
                field_path: None,
            },
            reason: Some(reason.to_string()),
            message: Some(message),
            type_: Some(type_.to_string()),
            source: Some(EventSource {
                component: Some(self.component.to_string()),
                host: None,
            }),
            reporting_component: Some(self.component.to_string()),
            reporting_instance: Some(self.component.to_string()),
            first_timestamp: Some(crate::util::time_of(now)),
            last_timestamp: Some(crate::util::time_of(now)),
            event_time: None::<MicroTime>,
            count: Some(1),
            ..Default::default()
        };
        let _ = tx.try_send(ev);
    }
}
