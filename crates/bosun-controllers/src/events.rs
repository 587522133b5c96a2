//! Recording core/v1 Events (`SuccessfulCreate`, `ScalingReplicaSet`, …) as upstream's
//! controllers do, so `kubectl describe` shows them, through `bosun-events` (client-go's
//! recorder: repeats counted, similar events combined, a per-object spam budget). Best
//! effort: a full queue drops events, so a burst of thousands of pod creations never slows
//! the controllers down.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{Client, Resource};

/// Events waiting to be sent before new ones are dropped.
const QUEUE: usize = 1024;

#[derive(Clone)]
pub struct Recorder {
    component: &'static str,
    sink: bosun_events::Recorder,
}

impl Recorder {
    /// A recorder whose sink (one write at a time, as client-go's) runs until every clone
    /// is dropped.
    pub fn new(client: Client, component: &'static str) -> Recorder {
        let (sink, _task) = bosun_events::Recorder::start(client, QUEUE, 1);
        Recorder { component, sink }
    }

    /// A recorder that records nothing (unit tests).
    pub fn disabled() -> Recorder {
        Recorder {
            component: "",
            sink: bosun_events::Recorder::disabled(),
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
        let meta = obj.meta();
        let involved = ObjectReference {
            api_version: Some(K::api_version(&()).into_owned()),
            kind: Some(K::kind(&()).into_owned()),
            name: meta.name.clone(),
            namespace: meta.namespace.clone(),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            field_path: None,
        };
        self.sink.record(bosun_events::new_event(
            involved,
            type_,
            reason,
            message,
            self.component,
            None,
        ));
    }
}
