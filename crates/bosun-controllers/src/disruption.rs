//! PodDisruptionBudget status, as upstream's `pkg/controller/disruption`: how many pods a
//! budget expects (its pods, or the scale of their controllers for percentages and
//! maxUnavailable), how many must stay healthy, how many are, and so how many disruptions
//! the eviction API may allow now. Pods the eviction API recorded in `disruptedPods` are
//! counted as gone until they are deleted or two minutes pass.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bosun_api::selector::LabelSelector;
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

use crate::events::Recorder;
use crate::informer::{key_of, Change, Informer, Informers};
use crate::queue::WorkQueue;
use crate::util::{self, chrono_of, controller_ref, time_of};
use crate::{Error, Result};

const COMPONENT: &str = "disruption-controller";
/// Upstream's `DeletionTimeout`: how long an evicted pod may take to be deleted before
/// the budget counts it again.
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) struct DisruptionController {
    client: Client,
    pdbs: Informer<PodDisruptionBudget>,
    pods: Informer<Pod>,
    rss: Informer<ReplicaSet>,
    deployments: Informer<Deployment>,
    rcs: Informer<ReplicationController>,
    statefulsets: Informer<StatefulSet>,
    queue: WorkQueue<String>,
    recorder: Recorder,
}

fn selector_of(pdb: &PodDisruptionBudget) -> Option<LabelSelector> {
    let sel = pdb.spec.as_ref()?.selector.as_ref()?;
    LabelSelector::from_api(Some(sel)).ok()
}

impl DisruptionController {
    pub(crate) fn new(informers: &Informers, recorder: Recorder) -> Arc<Self> {
        let c = Arc::new(DisruptionController {
            client: informers.client().clone(),
            pdbs: informers.get::<PodDisruptionBudget>(),
            pods: informers.get::<Pod>(),
            rss: informers.get::<ReplicaSet>(),
            deployments: informers.get::<Deployment>(),
            rcs: informers.get::<ReplicationController>(),
            statefulsets: informers.get::<StatefulSet>(),
            queue: WorkQueue::new(),
            recorder,
        });
        let me = Arc::downgrade(&c);
        c.pdbs.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            match ch {
                Change::Added(p) | Change::Updated { new: p, .. } => {
                    c.queue.add(key_of(p.as_ref()))
                }
                Change::Deleted(_) => {}
            }
        });
        let me = Arc::downgrade(&c);
        c.pods.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            match ch {
                Change::Added(p) | Change::Deleted(p) => c.enqueue_for_pod(p),
                Change::Updated { old, new } => {
                    c.enqueue_for_pod(new);
                    if old.metadata.labels != new.metadata.labels {
                        c.enqueue_for_pod(old);
                    }
                }
            }
        });
        // A controller's scale is the expected count of percentage budgets.
        macro_rules! scale_handler {
            ($inf:expr) => {{
                let me = Arc::downgrade(&c);
                $inf.add_handler(move |ch| {
                    let Some(c) = me.upgrade() else { return };
                    let o = match ch {
                        Change::Added(o) | Change::Deleted(o) | Change::Updated { new: o, .. } => o,
                    };
                    c.enqueue_namespace(&o.namespace().unwrap_or_default());
                });
            }};
        }
        scale_handler!(c.rss);
        scale_handler!(c.deployments);
        scale_handler!(c.rcs);
        scale_handler!(c.statefulsets);
        c
    }

    fn enqueue_for_pod(&self, pod: &Pod) {
        let ns = pod.namespace().unwrap_or_default();
        for pdb in self.pdbs.list_namespace(&ns) {
            if selector_of(&pdb).is_some_and(|s| s.matches_labels(pod.metadata.labels.as_ref())) {
                self.queue.add(key_of(pdb.as_ref()));
            }
        }
    }

    fn enqueue_namespace(&self, ns: &str) {
        for pdb in self.pdbs.list_namespace(ns) {
            self.queue.add(key_of(pdb.as_ref()));
        }
    }

    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        self.pdbs.wait_synced().await;
        self.pods.wait_synced().await;
        self.rss.wait_synced().await;
        self.deployments.wait_synced().await;
        self.rcs.wait_synced().await;
        self.statefulsets.wait_synced().await;
        let me = self.clone();
        util::run_workers(COMPONENT, self.queue.clone(), workers, move |key| {
            let me = me.clone();
            async move { me.sync(&key).await }
        })
        .await
    }

    /// The summed scale of the pods' controllers (upstream's `getExpectedScale`).
    fn expected_scale(&self, pods: &[Arc<Pod>]) -> std::result::Result<i32, String> {
        let mut seen: HashMap<String, i32> = HashMap::new();
        for pod in pods {
            let ns = pod.namespace().unwrap_or_default();
            let Some(r) = controller_ref(&pod.metadata) else {
                return Err(format!(
                    "found no controller ref for pod {:?}",
                    pod.name_any()
                ));
            };
            let (uid, scale) = match (r.kind.as_str(), util::group_of(&r.api_version)) {
                ("ReplicaSet", "apps") => {
                    let rs = self
                        .rss
                        .get(&ns, &r.name)
                        .filter(|o| o.metadata.uid.as_deref() == Some(r.uid.as_str()));
                    let Some(rs) = rs else {
                        return Err(format!("unable to find controller for pod {:?}", pod.name_any()));
                    };
                    // A ReplicaSet of a Deployment has the Deployment's scale.
                    match controller_ref(&rs.metadata).filter(|d| d.kind == "Deployment") {
                        Some(d) => {
                            let dep = self
                                .deployments
                                .get(&ns, &d.name)
                                .filter(|o| o.metadata.uid.as_deref() == Some(d.uid.as_str()));
                            let Some(dep) = dep else {
                                return Err(format!("unable to find controller for pod {:?}", pod.name_any()));
                            };
                            (d.uid.clone(), dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1))
                        }
                        None => (r.uid.clone(), rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)),
                    }
                }
                ("ReplicationController", "") => {
                    let Some(rc) = self.rcs.get(&ns, &r.name) else {
                        return Err(format!("unable to find controller for pod {:?}", pod.name_any()));
                    };
                    (r.uid.clone(), rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1))
                }
                ("StatefulSet", "apps") => {
                    let Some(ss) = self.statefulsets.get(&ns, &r.name) else {
                        return Err(format!("unable to find controller for pod {:?}", pod.name_any()));
                    };
                    (r.uid.clone(), ss.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1))
                }
                _ => {
                    return Err(format!(
                        "pod {:?} is controlled by a {} that has no scale known to the disruption controller",
                        pod.name_any(),
                        r.kind
                    ))
                }
            };
            seen.insert(uid, scale);
        }
        Ok(seen.values().sum())
    }

    async fn sync(&self, key: &str) -> Result<()> {
        let Some(pdb) = self.pdbs.get_key(key) else {
            return Ok(());
        };
        if pdb.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let ns = pdb.namespace().unwrap_or_default();
        let pods: Vec<Arc<Pod>> = match selector_of(&pdb) {
            Some(sel) => self
                .pods
                .list_namespace(&ns)
                .into_iter()
                .filter(|p| sel.matches_labels(p.metadata.labels.as_ref()))
                .collect(),
            None => Vec::new(),
        };
        if pods.is_empty() {
            self.recorder.record(
                pdb.as_ref(),
                "Normal",
                "NoPods",
                "No matching pods found".into(),
            );
        }
        let now = Utc::now();
        let status = match self.compute(&pdb, &pods, now) {
            Ok((status, recheck)) => {
                if let Some(at) = recheck {
                    let wait = (at - now).to_std().unwrap_or_default();
                    self.queue
                        .add_after(key.to_string(), wait + Duration::from_millis(100));
                }
                status
            }
            Err(why) => {
                self.recorder.record(
                    pdb.as_ref(),
                    "Warning",
                    "CalculateExpectedPodCountFailed",
                    format!("Failed to calculate the number of expected pods: {why}"),
                );
                fail_safe(&pdb, now)
            }
        };
        self.write_status(&pdb, status).await
    }

    /// The budget's new status and when an entry of `disruptedPods` expires.
    fn compute(
        &self,
        pdb: &PodDisruptionBudget,
        pods: &[Arc<Pod>],
        now: DateTime<Utc>,
    ) -> std::result::Result<(PodDisruptionBudgetStatus, Option<DateTime<Utc>>), String> {
        let spec = pdb.spec.clone().unwrap_or_default();
        let (expected, desired) = match (&spec.max_unavailable, &spec.min_available) {
            (Some(mu), _) => {
                let expected = self.expected_scale(pods)?;
                let max_unavailable = scaled(mu, expected)?;
                (expected, (expected - max_unavailable).max(0))
            }
            (None, Some(IntOrString::Int(n))) => (pods.len() as i32, *n),
            (None, Some(ma)) => {
                let expected = self.expected_scale(pods)?;
                (expected, scaled(ma, expected)?)
            }
            (None, None) => (0, 0),
        };
        let old = pdb.status.clone().unwrap_or_default();
        let (disrupted, recheck) = build_disrupted(&old.disrupted_pods, pods, now);
        let current = count_healthy(pods, &disrupted, now);
        let allowed = (current - desired).max(0);
        let generation = pdb.metadata.generation;
        let cond = disruption_condition(&old, allowed > 0, None, generation, now);
        Ok((
            PodDisruptionBudgetStatus {
                current_healthy: current,
                desired_healthy: desired,
                disruptions_allowed: allowed,
                expected_pods: expected,
                observed_generation: generation,
                disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
                conditions: Some(cond),
            },
            recheck,
        ))
    }

    async fn write_status(
        &self,
        pdb: &PodDisruptionBudget,
        status: PodDisruptionBudgetStatus,
    ) -> Result<()> {
        if pdb.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let ns = pdb.namespace().unwrap_or_default();
        let name = pdb.name_any();
        let mut new = pdb.clone();
        new.status = Some(status);
        let api: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), &ns);
        match api
            .replace_status(&name, &PostParams::default(), &new)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = Error::api(
                    "update status of",
                    format!("poddisruptionbudget {ns}/{name}"),
                    e,
                );
                if e.is_not_found() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// `GetScaledValueFromIntOrPercent(v, total, roundUp=true)`.
fn scaled(v: &IntOrString, total: i32) -> std::result::Result<i32, String> {
    match v {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            Ok(((pct * total as i64 + 99) / 100) as i32)
        }
    }
}

/// Entries of `disruptedPods` still pending: the pod exists, is not being deleted, and the
/// eviction is younger than [`DELETION_TIMEOUT`]; plus when the first of them expires.
fn build_disrupted(
    old: &Option<BTreeMap<String, Time>>,
    pods: &[Arc<Pod>],
    now: DateTime<Utc>,
) -> (BTreeMap<String, Time>, Option<DateTime<Utc>>) {
    let mut out = BTreeMap::new();
    let mut recheck: Option<DateTime<Utc>> = None;
    let Some(old) = old else {
        return (out, None);
    };
    let timeout = chrono::Duration::from_std(DELETION_TIMEOUT).unwrap_or_default();
    for pod in pods {
        let name = pod.name_any();
        let Some(t) = old.get(&name) else { continue };
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let expires = chrono_of(t) + timeout;
        if expires > now {
            out.insert(name, t.clone());
            recheck = Some(recheck.map_or(expires, |r| r.min(expires)));
        }
    }
    (out, recheck)
}

/// Ready pods not being deleted and not just evicted (upstream's `countHealthyPods`).
fn count_healthy(
    pods: &[Arc<Pod>],
    disrupted: &BTreeMap<String, Time>,
    _now: DateTime<Utc>,
) -> i32 {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| !disrupted.contains_key(&p.name_any()))
        .filter(|p| util::is_pod_ready(p))
        .count() as i32
}

/// The `DisruptionAllowed` condition, keeping its transition time when its status stays.
fn disruption_condition(
    old: &PodDisruptionBudgetStatus,
    allowed: bool,
    failed: Option<&str>,
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> Vec<Condition> {
    let (status, reason, message) = match failed {
        Some(m) => ("False", "SyncFailed", m.to_string()),
        None if allowed => ("True", "SufficientPods", String::new()),
        None => ("False", "InsufficientPods", String::new()),
    };
    let mut conds: Vec<Condition> = old
        .conditions
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_ != "DisruptionAllowed")
        .collect();
    let prev = old
        .conditions
        .as_ref()
        .and_then(|cs| cs.iter().find(|c| c.type_ == "DisruptionAllowed"));
    let last_transition_time = match prev {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => time_of(now),
    };
    conds.push(Condition {
        type_: "DisruptionAllowed".into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time,
    });
    conds
}

/// Upstream's `failSafe`: nothing may be disrupted while the budget cannot be computed.
fn fail_safe(pdb: &PodDisruptionBudget, now: DateTime<Utc>) -> PodDisruptionBudgetStatus {
    let old = pdb.status.clone().unwrap_or_default();
    PodDisruptionBudgetStatus {
        disruptions_allowed: 0,
        observed_generation: pdb.metadata.generation,
        conditions: Some(disruption_condition(
            &old,
            false,
            Some("found no controllers for the pods or failed to compute their scale"),
            pdb.metadata.generation,
            now,
        )),
        ..old
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};

    fn pod(name: &str, ready: bool) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn percentages_round_up() {
        assert_eq!(scaled(&IntOrString::String("50%".into()), 3), Ok(2));
        assert_eq!(scaled(&IntOrString::String("10%".into()), 10), Ok(1));
        assert_eq!(scaled(&IntOrString::Int(2), 10), Ok(2));
        assert!(scaled(&IntOrString::String("x".into()), 10).is_err());
    }

    #[test]
    fn healthy_excludes_disrupted_and_unready() {
        let now = Utc::now();
        let pods = vec![pod("a", true), pod("b", true), pod("c", false)];
        let old: BTreeMap<String, Time> = [
            (
                "a".to_string(),
                time_of(now - chrono::Duration::seconds(10)),
            ),
            (
                "b".to_string(),
                time_of(now - chrono::Duration::seconds(500)),
            ),
            ("gone".to_string(), time_of(now)),
        ]
        .into();
        let (d, recheck) = build_disrupted(&Some(old), &pods, now);
        assert_eq!(d.keys().collect::<Vec<_>>(), ["a"]);
        assert!(recheck.is_some());
        assert_eq!(count_healthy(&pods, &d, now), 1);
    }

    #[test]
    fn condition_keeps_transition_time() {
        let now = Utc::now();
        let first = disruption_condition(&Default::default(), true, None, Some(1), now);
        assert_eq!(first[0].reason, "SufficientPods");
        let old = PodDisruptionBudgetStatus {
            conditions: Some(first.clone()),
            ..Default::default()
        };
        let later = now + chrono::Duration::seconds(30);
        let again = disruption_condition(&old, true, None, Some(2), later);
        assert_eq!(again[0].last_transition_time, first[0].last_transition_time);
        let flipped = disruption_condition(&old, false, None, Some(2), later);
        assert_eq!(flipped[0].reason, "InsufficientPods");
        assert_eq!(flipped[0].last_transition_time, time_of(later));
    }
}
