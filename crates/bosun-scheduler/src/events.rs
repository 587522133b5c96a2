//! Events the scheduler records (`Scheduled`, `FailedScheduling`, `Preempted`), written
//! by a `bosun-events` sink (client-go's recorder: a pod that keeps failing to schedule
//! gets one FailedScheduling event whose count grows) so that recording never blocks a
//! decision. Like client-go's broadcaster, it drops events when its queue is full rather
//! than slowing the scheduler down.

use k8s_openapi::api::core::v1::ObjectReference;
use tokio::task::JoinHandle;

use crate::framework::PodInfo;

/// Events buffered before new ones are dropped (client-go's `maxQueuedEvents` is 1000;
/// a larger buffer rides out a burst of thousands of bindings).
const QUEUE: usize = 20_000;

#[derive(Clone)]
pub struct EventRecorder {
    sink: bosun_events::Recorder,
    component: String,
}

impl EventRecorder {
    /// A recorder writing through `client` with `concurrency` requests in flight.
    pub fn start(
        client: kube::Client,
        component: &str,
        concurrency: usize,
    ) -> (EventRecorder, JoinHandle<()>) {
        let (sink, task) = bosun_events::Recorder::start(client, QUEUE, concurrency);
        (
            EventRecorder {
                sink,
                component: component.to_string(),
            },
            task,
        )
    }

    /// A recorder that records nothing.
    pub fn disabled(component: &str) -> EventRecorder {
        EventRecorder {
            sink: bosun_events::Recorder::disabled(),
            component: component.to_string(),
        }
    }

    pub fn dropped(&self) -> u64 {
        self.sink.dropped()
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
        let involved = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some(pod.namespace.clone()),
            name: Some(pod.name.clone()),
            uid: Some(pod.uid.clone()),
            resource_version: pod.pod.metadata.resource_version.clone(),
            field_path: None,
        };
        let mut ev =
            bosun_events::new_event(involved, kind, reason, message, &self.component, None);
        ev.action = Some(action.to_owned());
        self.sink.record(ev);
    }
}
