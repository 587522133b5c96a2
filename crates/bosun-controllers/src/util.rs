//! Helpers every controller shares: pod readiness and availability as upstream's
//! `podutil`, controller references, creating pods from templates, running workers.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;

use crate::queue::WorkQueue;
use crate::Result;

/// A Kubernetes time as chrono's (the API types carry jiff timestamps).
pub fn chrono_of(t: &Time) -> DateTime<Utc> {
    DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32)
        .unwrap_or_default()
}

/// A chrono time as a Kubernetes `Time` (whole seconds, as the API serializes it).
pub fn time_of(d: DateTime<Utc>) -> Time {
    Time(Timestamp::from_second(d.timestamp()).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// A chrono time as a Kubernetes `MicroTime`.
pub fn micro_time_of(d: DateTime<Utc>) -> MicroTime {
    MicroTime(Timestamp::from_microsecond(d.timestamp_micros()).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// The owner reference with `controller: true`, if any.
pub fn controller_ref(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// The group of an `apiVersion` ("" for the core group).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
}

/// A controller reference to `owner` (`controller` and `blockOwnerDeletion` set, as
/// upstream's `NewControllerRef`).
pub fn new_controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

pub fn is_being_deleted(meta: &ObjectMeta) -> bool {
    meta.deletion_timestamp.is_some()
}

pub fn pod_phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Neither finished nor being deleted (upstream's `IsPodActive`).
pub fn is_pod_active(pod: &Pod) -> bool {
    let phase = pod_phase(pod);
    phase != "Succeeded" && phase != "Failed" && pod.metadata.deletion_timestamp.is_none()
}

pub fn is_pod_terminal(pod: &Pod) -> bool {
    matches!(pod_phase(pod), "Succeeded" | "Failed")
}

fn ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

pub fn is_pod_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// When the pod last became ready, if it is ready.
pub fn pod_ready_time(pod: &Pod) -> Option<DateTime<Utc>> {
    ready_condition(pod)
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(chrono_of)
}

/// Ready for at least `min_ready_seconds` (upstream's `IsPodAvailable`).
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: DateTime<Utc>) -> bool {
    if !is_pod_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    match pod_ready_time(pod) {
        Some(t) => t + chrono::Duration::seconds(min_ready_seconds as i64) < now,
        None => false,
    }
}

/// The most restarts of any container of the pod.
pub fn max_container_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

/// A pod to create from `template`, owned by `owner`, named `<prefix><random>` by the
/// API server (upstream's `GetPodFromTemplate`).
pub fn pod_from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    generate_name: &str,
    owner: Option<OwnerReference>,
) -> Pod {
    let tm = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            namespace: Some(namespace.to_string()),
            generate_name: Some(generate_name.to_string()),
            labels: tm.labels,
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// The `generateName` of pods of the controller `name`: `name-`, shortened so that the
/// generated name stays a valid DNS subdomain (upstream's `getPodsPrefix`).
pub fn pods_prefix(name: &str) -> String {
    // The API server appends 5 characters and names are at most 253 long.
    let max = 253 - 5;
    let mut p = format!("{name}-");
    if p.len() > max {
        p.truncate(max);
    }
    p
}

/// Runs `workers` tasks that take keys off `queue` and sync them; errors re-queue the key
/// with back-off, success forgets its back-off. Ends when the queue shuts down.
pub async fn run_workers<F, Fut>(
    name: &'static str,
    queue: WorkQueue<String>,
    workers: usize,
    sync: F,
) where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let sync = Arc::new(sync);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let queue = queue.clone();
        let sync = sync.clone();
        set.spawn(async move {
            while let Some(key) = queue.get().await {
                let res = sync(key.clone()).await;
                match res {
                    Ok(()) => queue.forget(&key),
                    Err(e) => {
                        tracing::warn!(controller = name, key = %key, error = %e, "sync failed, retrying");
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        });
    }
    while set.join_next().await.is_some() {}
}

/// Whether a node selector requirement admits a node whose label (or field) has `value`
/// (upstream `NodeSelectorRequirementsAsSelector` semantics: `Gt`/`Lt` compare integers).
pub(crate) fn node_requirement_matches(
    r: &k8s_openapi::api::core::v1::NodeSelectorRequirement,
    value: Option<&str>,
) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};

    fn ready_pod(since: DateTime<Utc>) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(time_of(since)),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn availability_waits_min_ready_seconds() {
        let now = Utc::now();
        let p = ready_pod(now - chrono::Duration::seconds(5));
        assert!(is_pod_ready(&p));
        assert!(is_pod_available(&p, 0, now));
        assert!(is_pod_available(&p, 4, now));
        assert!(!is_pod_available(&p, 10, now));
        assert!(!is_pod_available(&Pod::default(), 0, now));
    }

    #[test]
    fn active_excludes_finished_and_deleting() {
        let mut p = ready_pod(Utc::now());
        assert!(is_pod_active(&p));
        p.metadata.deletion_timestamp = Some(time_of(Utc::now()));
        assert!(!is_pod_active(&p));
        let mut q = ready_pod(Utc::now());
        if let Some(s) = q.status.as_mut() {
            s.phase = Some("Succeeded".into());
        }
        assert!(!is_pod_active(&q));
    }

    #[test]
    fn groups_and_prefixes() {
        assert_eq!(group_of("apps/v1"), "apps");
        assert_eq!(group_of("v1"), "");
        assert_eq!(pods_prefix("web"), "web-");
        assert_eq!(pods_prefix(&"a".repeat(300)).len(), 248);
    }
}
