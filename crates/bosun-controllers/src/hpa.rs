//! HorizontalPodAutoscaler (autoscaling/v2; v1 objects are stored as v2 by the server),
//! as upstream's `pkg/controller/podautoscaler`, for Resource metrics (cpu, memory) with
//! Utilization or AverageValue targets:
//!
//! - Usage comes from a [`MetricsSource`]: by default the `metrics.k8s.io/v1beta1`
//!   PodMetrics API; tests inject a synthetic one. When it fails the HPA says so
//!   (ScalingActive=False, FailedGetResourceMetric) and keeps the scale.
//! - Replicas as upstream's `ReplicaCalculator` ([`Calculator`], a pure function of the
//!   pods and their metrics): usage ratio against the target with the 0.1 tolerance;
//!   pods grouped as `groupPods` does — pending pods, and on cpu pods not ready or
//!   sampled less than one window after becoming ready within the 5 min initialization
//!   period, are left out (and count as 0 % when scaling up); running pods without a
//!   metric count as 100 % of their request when scaling down and 0 % when scaling up;
//!   pods being deleted and failed pods are ignored.
//! - Behaviour: stabilization windows (scale-down 300 s by default) over recent
//!   recommendations, then the Pods/Percent policies per period with selectPolicy,
//!   then min/max replicas, with AbleToScale, ScalingActive and ScalingLimited conditions.
//! - Scaling through the target's `scale` subresource; `SuccessfulRescale` events.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bosun_api::quantity::Quantity;
use bosun_api::selector::LabelSelector;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use k8s_openapi::api::autoscaling::v2::{
    HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition,
    HorizontalPodAutoscalerStatus, MetricStatus, MetricValueStatus, ResourceMetricStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::discovery::Catalog;
use crate::events::Recorder;
use crate::informer::{key_of, split_key, Change, Informer, Informers};
use crate::queue::WorkQueue;
use crate::util::{self, time_of};
use crate::{Error, Result};

const COMPONENT: &str = "horizontal-pod-autoscaler";

/// One pod's usage as the metrics API reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodUsage {
    pub name: String,
    /// Summed over the pod's containers, by resource name (`cpu`, `memory`).
    pub usage: BTreeMap<String, Quantity>,
    /// When the usage was sampled (`None`: now).
    pub timestamp: Option<DateTime<Utc>>,
    /// The interval the usage is averaged over (metrics-server's `window`).
    pub window: Duration,
}

/// Where pod usage comes from (upstream's `MetricsClient`).
pub trait MetricsSource: Send + Sync {
    /// The usage of the pods in `namespace` matching `selector`; an error says why there
    /// is none (it ends up in the HPA's conditions).
    fn pod_usage<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a str,
    ) -> BoxFuture<'a, std::result::Result<Vec<PodUsage>, String>>;
}

/// The `metrics.k8s.io/v1beta1` PodMetrics API (metrics-server's), read with the client.
pub struct ApiMetrics {
    client: Client,
}

impl ApiMetrics {
    pub fn new(client: Client) -> ApiMetrics {
        ApiMetrics { client }
    }
}

impl MetricsSource for ApiMetrics {
    fn pod_usage<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a str,
    ) -> BoxFuture<'a, std::result::Result<Vec<PodUsage>, String>> {
        Box::pin(async move {
            let mut url = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods");
            if !selector.is_empty() {
                let sel: String = url_encode(selector);
                url.push_str(&format!("?labelSelector={sel}"));
            }
            let req = http::Request::get(url)
                .body(Vec::new())
                .map_err(|e| e.to_string())?;
            let list: Value = self.client.request(req).await.map_err(|e| match e {
                kube::Error::Api(s) if s.code == 404 => {
                    "the server could not find the requested resource (get pods.metrics.k8s.io)"
                        .to_string()
                }
                e => e.to_string(),
            })?;
            let items = list["items"].as_array().cloned().unwrap_or_default();
            Ok(items
                .iter()
                .map(|it| {
                    let mut usage: BTreeMap<String, Quantity> = BTreeMap::new();
                    for c in it["containers"].as_array().into_iter().flatten() {
                        for (k, v) in c["usage"].as_object().into_iter().flatten() {
                            if let Some(q) = v.as_str().and_then(|s| Quantity::parse(s).ok()) {
                                let sum = usage.get(k).map(|x| x.add(&q)).unwrap_or(q);
                                usage.insert(k.clone(), sum);
                            }
                        }
                    }
                    PodUsage {
                        name: it["metadata"]["name"].as_str().unwrap_or("").to_string(),
                        usage,
                        timestamp: it["timestamp"]
                            .as_str()
                            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                            .map(|t| t.with_timezone(&Utc)),
                        window: it["window"]
                            .as_str()
                            .and_then(go_duration)
                            .unwrap_or_default(),
                    }
                })
                .collect())
        })
    }
}

/// A Go duration string (`10s`, `1m30s`, `500ms`, `1.5s`).
fn go_duration(s: &str) -> Option<Duration> {
    let mut total = 0.0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The HPA controller's settings: kube-controller-manager's flags.
#[derive(Clone)]
pub struct HpaConfig {
    /// `--horizontal-pod-autoscaler-sync-period` (15 s).
    pub sync_period: Duration,
    /// `--horizontal-pod-autoscaler-tolerance` (0.1).
    pub tolerance: f64,
    /// `--horizontal-pod-autoscaler-downscale-stabilization` (5 min), for HPAs without
    /// a scale-down behaviour of their own.
    pub downscale_stabilization: Duration,
    /// `--horizontal-pod-autoscaler-cpu-initialization-period` (5 min): how long after
    /// its start a pod's cpu sample counts only once it was taken a window after the pod
    /// became ready.
    pub cpu_initialization_period: Duration,
    /// `--horizontal-pod-autoscaler-initial-readiness-delay` (30 s): after the
    /// initialization period, an unready pod's sample is left out only if it has not been
    /// ready since this long after its start.
    pub initial_readiness_delay: Duration,
    /// Where usage comes from; `None` reads the `metrics.k8s.io` API.
    pub metrics: Option<Arc<dyn MetricsSource>>,
}

impl fmt::Debug for HpaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HpaConfig")
            .field("sync_period", &self.sync_period)
            .field("tolerance", &self.tolerance)
            .field("downscale_stabilization", &self.downscale_stabilization)
            .field("cpu_initialization_period", &self.cpu_initialization_period)
            .field("initial_readiness_delay", &self.initial_readiness_delay)
            .field("metrics", &self.metrics.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl Default for HpaConfig {
    fn default() -> Self {
        HpaConfig {
            sync_period: Duration::from_secs(15),
            tolerance: 0.1,
            downscale_stabilization: Duration::from_secs(300),
            cpu_initialization_period: Duration::from_secs(300),
            initial_readiness_delay: Duration::from_secs(30),
            metrics: None,
        }
    }
}

/// What the HPA remembers between syncs (upstream keeps the same in memory).
#[derive(Default)]
struct History {
    recommendations: Vec<(DateTime<Utc>, i32)>,
    /// (when, replica change) of the scalings done.
    scale_up_events: Vec<(DateTime<Utc>, i32)>,
    scale_down_events: Vec<(DateTime<Utc>, i32)>,
}

pub(crate) struct HpaController {
    client: Client,
    catalog: Arc<Catalog>,
    hpas: Informer<HorizontalPodAutoscaler>,
    pods: Informer<Pod>,
    queue: WorkQueue<String>,
    recorder: Recorder,
    cfg: HpaConfig,
    metrics: Arc<dyn MetricsSource>,
    history: Mutex<HashMap<String, History>>,
}

/// One metric's outcome.
struct MetricResult {
    replicas: i32,
    status: MetricStatus,
    describe: String,
}

impl HpaController {
    pub(crate) fn new(
        informers: &Informers,
        catalog: Arc<Catalog>,
        recorder: Recorder,
        cfg: HpaConfig,
    ) -> Arc<Self> {
        let metrics = cfg
            .metrics
            .clone()
            .unwrap_or_else(|| Arc::new(ApiMetrics::new(informers.client().clone())));
        let c = Arc::new(HpaController {
            client: informers.client().clone(),
            catalog,
            hpas: informers.get::<HorizontalPodAutoscaler>(),
            pods: informers.get::<Pod>(),
            queue: WorkQueue::new(),
            recorder,
            cfg,
            metrics,
            history: Mutex::new(HashMap::new()),
        });
        let me = Arc::downgrade(&c);
        c.hpas.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            match ch {
                Change::Added(h) => c.queue.add(key_of(h.as_ref())),
                Change::Updated { old, new } => {
                    if old.spec != new.spec {
                        c.queue.add(key_of(new.as_ref()))
                    }
                }
                Change::Deleted(h) => {
                    c.history.lock().remove(&key_of(h.as_ref()));
                }
            }
        });
        c
    }

    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        self.hpas.wait_synced().await;
        self.pods.wait_synced().await;
        let me = self.clone();
        util::run_workers(COMPONENT, self.queue.clone(), workers, move |key| {
            let me = me.clone();
            async move {
                let res = me.sync(&key).await;
                // Every HPA is looked at again each sync period, as upstream's resync.
                if me.hpas.get_key(&key).is_some() {
                    me.queue.add_after(key, me.cfg.sync_period);
                }
                res
            }
        })
        .await
    }

    /// `/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}/scale` of the target.
    async fn scale_url(
        &self,
        ns: &str,
        api_version: &str,
        kind: &str,
        name: &str,
    ) -> Result<String> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let known = match (group, kind) {
            ("apps", "Deployment") => Some("deployments"),
            ("apps", "ReplicaSet") => Some("replicasets"),
            ("apps", "StatefulSet") => Some("statefulsets"),
            ("", "ReplicationController") => Some("replicationcontrollers"),
            _ => None,
        };
        let plural = match known {
            Some(p) => p.to_string(),
            None => self
                .catalog
                .resources()
                .await?
                .iter()
                .find(|s| s.resource.group == group && s.resource.kind == kind)
                .map(|s| s.resource.plural.clone())
                .ok_or_else(|| Error::Invalid {
                    what: format!("scaleTargetRef {api_version} {kind}"),
                    message: "no such resource is served".into(),
                })?,
        };
        let base = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        Ok(format!("{base}/namespaces/{ns}/{plural}/{name}/scale"))
    }

    async fn request(&self, req: http::Request<Vec<u8>>, what: String) -> Result<Value> {
        self.client
            .request::<Value>(req)
            .await
            .map_err(|e| Error::api("scale", what, e))
    }

    async fn sync(&self, key: &str) -> Result<()> {
        let Some(hpa) = self.hpas.get_key(key) else {
            return Ok(());
        };
        let (ns, _) = split_key(key);
        let spec = hpa.spec.clone().unwrap_or_default();
        let target = &spec.scale_target_ref;
        let now = Utc::now();
        let mut conds: Vec<HorizontalPodAutoscalerCondition> = Vec::new();
        let api_version = target.api_version.clone().unwrap_or_default();
        let what = format!("{} {ns}/{}", target.kind, target.name);
        let url = self
            .scale_url(ns, &api_version, &target.kind, &target.name)
            .await;
        let scale = match url {
            Ok(url) => {
                let req = http::Request::get(url.clone()).body(Vec::new());
                match req {
                    Ok(req) => self.request(req, what.clone()).await.map(|s| (url, s)),
                    Err(e) => Err(Error::Invalid {
                        what: what.clone(),
                        message: e.to_string(),
                    }),
                }
            }
            Err(e) => Err(e),
        };
        let (url, scale) = match scale {
            Ok(s) => s,
            Err(e) => {
                let e = server_message(&e);
                let msg =
                    format!("the HPA controller was unable to get the target's current scale: {e}");
                self.recorder
                    .record(hpa.as_ref(), "Warning", "FailedGetScale", e);
                set_cond(
                    &mut conds,
                    "AbleToScale",
                    "False",
                    "FailedGetScale",
                    &msg,
                    now,
                );
                return self
                    .write_status(&hpa, None, None, Vec::new(), conds, false)
                    .await;
            }
        };
        let current = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0) as i32;
        let selector = scale
            .pointer("/status/selector")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        set_cond(
            &mut conds,
            "AbleToScale",
            "True",
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
            now,
        );
        let min = spec.min_replicas.unwrap_or(1);
        let max = spec.max_replicas;
        if current == 0 && min != 0 {
            set_cond(
                &mut conds,
                "ScalingActive",
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
                now,
            );
            return self
                .write_status(&hpa, Some(current), Some(0), Vec::new(), conds, false)
                .await;
        }
        // Metrics.
        let mut results: Vec<MetricResult> = Vec::new();
        let mut failure: Option<(String, String)> = None;
        for m in spec.metrics.clone().unwrap_or_default() {
            let r = match (m.type_.as_str(), &m.resource) {
                ("Resource", Some(rs)) => self.resource_replicas(ns, &selector, current, rs, now).await,
                (t, _) => Err((
                    "InvalidMetricSourceType".into(),
                    format!("the HPA was unable to compute the replica count: metric type {t} is not supported by this controller"),
                )),
            };
            match r {
                Ok(r) => results.push(r),
                Err(f) => {
                    if failure.is_none() {
                        failure = Some(f);
                    }
                }
            }
        }
        if let Some((reason, msg)) = &failure {
            self.recorder
                .record(hpa.as_ref(), "Warning", reason, msg.clone());
            if results.is_empty() {
                self.recorder.record(
                    hpa.as_ref(),
                    "Warning",
                    "FailedComputeMetricsReplicas",
                    format!(
                        "invalid metrics ({} invalid out of {}), first error is: {msg}",
                        spec.metrics.as_ref().map(Vec::len).unwrap_or(0),
                        spec.metrics.as_ref().map(Vec::len).unwrap_or(0)
                    ),
                );
                set_cond(&mut conds, "ScalingActive", "False", reason, msg, now);
                return self
                    .write_status(&hpa, Some(current), Some(current), Vec::new(), conds, false)
                    .await;
            }
        }
        let best = results.iter().max_by_key(|r| r.replicas);
        let Some(best) = best else {
            return self
                .write_status(&hpa, Some(current), Some(current), Vec::new(), conds, false)
                .await;
        };
        let proposal = best.replicas;
        let reason_metric = best.describe.clone();
        set_cond(
            &mut conds,
            "ScalingActive",
            "True",
            "ValidMetricFound",
            &format!(
                "the HPA was able to successfully calculate a replica count from {reason_metric}"
            ),
            now,
        );
        let desired = self.normalize(key, &hpa, current, proposal, min, max, now, &mut conds);
        let metric_statuses: Vec<MetricStatus> = results.iter().map(|r| r.status.clone()).collect();
        let mut rescaled = false;
        if desired != current {
            let body = json!({
                "apiVersion": "autoscaling/v1", "kind": "Scale",
                "metadata": {"name": target.name, "namespace": ns,
                             "resourceVersion": scale.pointer("/metadata/resourceVersion")},
                "spec": {"replicas": desired},
            });
            let req = http::Request::put(url)
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body).unwrap_or_default());
            let req = req.map_err(|e| Error::Invalid {
                what: what.clone(),
                message: e.to_string(),
            })?;
            match self.request(req, what.clone()).await {
                Ok(_) => {
                    rescaled = true;
                    let reason = if desired > current {
                        format!("{reason_metric} above target")
                    } else {
                        "All metrics below target".to_string()
                    };
                    self.recorder.record(
                        hpa.as_ref(),
                        "Normal",
                        "SuccessfulRescale",
                        format!("New size: {desired}; reason: {reason}"),
                    );
                    set_cond(
                        &mut conds,
                        "AbleToScale",
                        "True",
                        "SucceededRescale",
                        &format!(
                            "the HPA controller was able to update the target scale to {desired}"
                        ),
                        now,
                    );
                    let mut h = self.history.lock();
                    let h = h.entry(key.to_string()).or_default();
                    if desired > current {
                        h.scale_up_events.push((now, desired - current));
                    } else {
                        h.scale_down_events.push((now, current - desired));
                    }
                }
                Err(err) => {
                    let e = server_message(&err);
                    self.recorder.record(
                        hpa.as_ref(),
                        "Warning",
                        "FailedRescale",
                        format!("New size: {desired}; error: {e}"),
                    );
                    set_cond(
                        &mut conds,
                        "AbleToScale",
                        "False",
                        "FailedUpdateScale",
                        &format!("the HPA controller was unable to update the target scale: {e}"),
                        now,
                    );
                    self.write_status(
                        &hpa,
                        Some(current),
                        Some(desired),
                        metric_statuses,
                        conds,
                        false,
                    )
                    .await?;
                    return Err(err);
                }
            }
        } else {
            set_cond(
                &mut conds,
                "AbleToScale",
                "True",
                "ReadyForNewScale",
                "recommended size matches current size",
                now,
            );
        }
        self.write_status(
            &hpa,
            Some(current),
            Some(desired),
            metric_statuses,
            conds,
            rescaled,
        )
        .await
    }

    /// Upstream's `GetResourceReplicas` (and the AverageValue variant) for one metric.
    async fn resource_replicas(
        &self,
        ns: &str,
        selector: &str,
        current: i32,
        rs: &k8s_openapi::api::autoscaling::v2::ResourceMetricSource,
        now: DateTime<Utc>,
    ) -> std::result::Result<MetricResult, (String, String)> {
        let res = rs.name.as_str();
        let fail = |m: String| {
            (
                "FailedGetResourceMetric".to_string(),
                format!("the HPA was unable to compute the replica count: failed to get {res} utilization: {m}"),
            )
        };
        let sel = LabelSelector::parse(selector)
            .map_err(|e| fail(format!("invalid selector {selector:?}: {e}")))?;
        let usage = self
            .metrics
            .pod_usage(ns, selector)
            .await
            .map_err(|e| fail(format!("unable to get metrics for resource {res}: unable to fetch metrics from resource metrics API: {e}")))?;
        if usage.is_empty() {
            return Err(fail(format!("unable to get metrics for resource {res}: no metrics returned from resource metrics API")));
        }
        let metrics: HashMap<String, PodMetric> = usage
            .iter()
            .filter_map(|u| {
                let value = milli_ceil(u.usage.get(res)?);
                Some((
                    u.name.clone(),
                    PodMetric {
                        value,
                        timestamp: u.timestamp.unwrap_or(now),
                        window: u.window,
                    },
                ))
            })
            .collect();
        let pods: Vec<Arc<Pod>> = self
            .pods
            .list_namespace(ns)
            .into_iter()
            .filter(|p| sel.matches_labels(p.metadata.labels.as_ref()))
            .collect();
        if pods.is_empty() {
            return Err(fail(
                "no pods returned by selector while calculating replica count".into(),
            ));
        }
        let target = match rs.target.type_.as_str() {
            "AverageValue" => {
                let v = rs
                    .target
                    .average_value
                    .as_ref()
                    .and_then(|q| Quantity::from_api(q).ok())
                    .map(|q| milli(&q))
                    .unwrap_or(0.0);
                if v <= 0.0 {
                    return Err(fail("the target average value is not set".into()));
                }
                Target::AverageValue(v.ceil() as i64)
            }
            _ => Target::Utilization(rs.target.average_utilization.unwrap_or(80)),
        };
        let calc = Calculator {
            tolerance: self.cfg.tolerance,
            cpu_initialization_period: self.cfg.cpu_initialization_period,
            initial_readiness_delay: self.cfg.initial_readiness_delay,
            now,
        };
        let out = calc
            .replicas(current, &pods, metrics, res, target)
            .map_err(fail)?;
        let describe = match target {
            Target::AverageValue(_) => format!("{res} resource"),
            Target::Utilization(_) => {
                format!("{res} resource utilization (percentage of request)")
            }
        };
        let status = MetricStatus {
            type_: "Resource".into(),
            resource: Some(ResourceMetricStatus {
                name: res.to_string(),
                current: MetricValueStatus {
                    average_utilization: out.utilization,
                    average_value: Some(ApiQuantity(milli_string(out.average as f64, res))),
                    value: None,
                },
            }),
            ..Default::default()
        };
        Ok(MetricResult {
            replicas: out.replicas,
            status,
            describe,
        })
    }

    /// Stabilization, behaviour policies and min/max (upstream's
    /// `normalizeDesiredReplicasWithBehaviors`).
    #[allow(clippy::too_many_arguments)]
    fn normalize(
        &self,
        key: &str,
        hpa: &HorizontalPodAutoscaler,
        current: i32,
        proposal: i32,
        min: i32,
        max: i32,
        now: DateTime<Utc>,
        conds: &mut Vec<HorizontalPodAutoscalerCondition>,
    ) -> i32 {
        let behavior = hpa
            .spec
            .as_ref()
            .and_then(|s| s.behavior.clone())
            .unwrap_or_default();
        let up = behavior.scale_up.unwrap_or_else(|| default_rules(true, 0));
        let down = behavior.scale_down.unwrap_or_else(|| {
            default_rules(false, self.cfg.downscale_stabilization.as_secs() as i32)
        });
        let mut hist = self.history.lock();
        let h = hist.entry(key.to_string()).or_default();
        // Stabilization over the recommendations of the longer window.
        let up_window = up.stabilization_window_seconds.unwrap_or(0) as i64;
        let down_window = down.stabilization_window_seconds.unwrap_or(300) as i64;
        let keep = up_window.max(down_window);
        h.recommendations
            .retain(|(t, _)| (now - *t).num_milliseconds() <= keep * 1000);
        h.recommendations.push((now, proposal));
        let in_window = |w: i64| {
            h.recommendations
                .iter()
                .filter(move |(t, _)| (now - *t).num_milliseconds() <= w * 1000)
                .map(|(_, r)| *r)
        };
        let up_rec = in_window(up_window).min().unwrap_or(proposal);
        let down_rec = in_window(down_window).max().unwrap_or(proposal);
        let mut stabilized = current;
        if up_rec > current {
            stabilized = up_rec;
        }
        if down_rec < current {
            stabilized = down_rec;
        }
        let mut reason = ("ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest recent recommendation");
        if stabilized != proposal {
            if proposal < current {
                reason = ("ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation");
            }
            set_cond(conds, "AbleToScale", "True", reason.0, reason.1, now);
        }
        // Policies.
        let desired = if stabilized > current {
            let limit = policy_limit(&up, &h.scale_up_events, current, now, true);
            if stabilized > limit {
                set_cond(
                    conds,
                    "ScalingLimited",
                    "True",
                    "ScaleUpLimit",
                    "the desired replica count is increasing faster than the maximum scale rate",
                    now,
                );
                limit
            } else {
                stabilized
            }
        } else if stabilized < current {
            let limit = policy_limit(&down, &h.scale_down_events, current, now, false);
            if stabilized < limit {
                set_cond(
                    conds,
                    "ScalingLimited",
                    "True",
                    "ScaleDownLimit",
                    "the desired replica count is decreasing faster than the maximum scale rate",
                    now,
                );
                limit
            } else {
                stabilized
            }
        } else {
            stabilized
        };
        let clamped = desired.clamp(min.min(max), max);
        if clamped > desired {
            set_cond(
                conds,
                "ScalingLimited",
                "True",
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
                now,
            );
        } else if clamped < desired {
            set_cond(
                conds,
                "ScalingLimited",
                "True",
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
                now,
            );
        } else if !conds.iter().any(|c| c.type_ == "ScalingLimited") {
            set_cond(
                conds,
                "ScalingLimited",
                "False",
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
                now,
            );
        }
        // Old scale events fall out of every policy period.
        let longest = |r: &HPAScalingRules| {
            r.policies
                .iter()
                .flatten()
                .map(|p| p.period_seconds)
                .max()
                .unwrap_or(0) as i64
        };
        let (lu, ld) = (longest(&up), longest(&down));
        h.scale_up_events
            .retain(|(t, _)| (now - *t).num_seconds() <= lu);
        h.scale_down_events
            .retain(|(t, _)| (now - *t).num_seconds() <= ld);
        clamped
    }

    async fn write_status(
        &self,
        hpa: &HorizontalPodAutoscaler,
        current: Option<i32>,
        desired: Option<i32>,
        metrics: Vec<MetricStatus>,
        conds: Vec<HorizontalPodAutoscalerCondition>,
        rescaled: bool,
    ) -> Result<()> {
        let old = hpa.status.clone().unwrap_or_default();
        let merged: Vec<HorizontalPodAutoscalerCondition> = conds
            .into_iter()
            .map(|mut c| {
                if let Some(o) = old.conditions.iter().flatten().find(|o| o.type_ == c.type_) {
                    if o.status == c.status {
                        c.last_transition_time = o.last_transition_time.clone();
                    }
                }
                c
            })
            .collect();
        let status = HorizontalPodAutoscalerStatus {
            current_replicas: current.or(old.current_replicas),
            desired_replicas: desired.unwrap_or(old.desired_replicas),
            current_metrics: (!metrics.is_empty())
                .then_some(metrics)
                .or(old.current_metrics.clone()),
            last_scale_time: if rescaled {
                Some(time_of(Utc::now()))
            } else {
                old.last_scale_time.clone()
            },
            observed_generation: hpa.metadata.generation,
            conditions: Some(merged),
        };
        if hpa.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut new = hpa.clone();
        new.status = Some(status);
        let ns = hpa.namespace().unwrap_or_default();
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), &ns);
        match api
            .replace_status(&hpa.name_any(), &PostParams::default(), &new)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = Error::api(
                    "update status of",
                    format!("hpa {ns}/{}", hpa.name_any()),
                    e,
                );
                if e.is_not_found() || e.is_conflict() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// One pod's metric as the replica calculator uses it (upstream's `PodMetric`): the value
/// in milli-units (rounded up, as `MilliValue`), when it was sampled and over what window.
#[derive(Clone, Copy, Debug, PartialEq)]
struct PodMetric {
    value: i64,
    timestamp: DateTime<Utc>,
    window: Duration,
}

/// A Resource metric's target.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    /// Percent of the pods' requests.
    Utilization(i32),
    /// Milli-units per pod.
    AverageValue(i64),
}

/// How upstream's `groupPods` sorts the pods the target's selector matches.
#[derive(Debug, Default, PartialEq)]
struct Groups {
    /// Pods whose metric counts as is.
    ready: usize,
    /// Pending pods, and (cpu) pods not ready yet or whose sample predates readiness: left
    /// out, and counted at 0 % when scaling up.
    unready: BTreeSet<String>,
    /// Running pods without a metric: 100 % of their request when scaling down, 0 % up.
    missing: BTreeSet<String>,
    /// Pods being deleted and failed pods.
    ignored: BTreeSet<String>,
}

/// What the calculator proposes for one metric.
#[derive(Debug, PartialEq)]
struct Proposal {
    replicas: i32,
    /// Percent of the request (Utilization targets).
    utilization: Option<i32>,
    /// Milli-units per pod with a metric.
    average: i64,
}

/// Upstream's `ReplicaCalculator` for Resource metrics (`GetResourceReplicas`,
/// `GetRawResourceReplicas`), a pure function of the pods and their metrics.
struct Calculator {
    tolerance: f64,
    cpu_initialization_period: Duration,
    initial_readiness_delay: Duration,
    now: DateTime<Utc>,
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Calculator {
    fn within_tolerance(&self, ratio: f64) -> bool {
        (1.0 - ratio).abs() <= self.tolerance
    }

    /// `groupPods`.
    fn group(&self, pods: &[Arc<Pod>], metrics: &HashMap<String, PodMetric>, res: &str) -> Groups {
        let mut g = Groups::default();
        for pod in pods {
            let name = pod.name_any();
            let phase = util::pod_phase(pod);
            if pod.metadata.deletion_timestamp.is_some() || phase == "Failed" {
                g.ignored.insert(name);
                continue;
            }
            if phase == "Pending" {
                g.unready.insert(name);
                continue;
            }
            let Some(metric) = metrics.get(&name) else {
                g.missing.insert(name);
                continue;
            };
            if res == "cpu" && self.cpu_unready(pod, metric) {
                g.unready.insert(name);
                continue;
            }
            g.ready += 1;
        }
        g
    }

    /// Whether a running pod's cpu sample is left out: no Ready condition or start time;
    /// within the cpu initialization period, unready or sampled less than one window after
    /// it became ready; after it, unready and never ready since starting (a Ready=False
    /// transition within the initial readiness delay of the start).
    fn cpu_unready(&self, pod: &Pod, metric: &PodMetric) -> bool {
        let status = pod.status.as_ref();
        let cond = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
        let start = status
            .and_then(|s| s.start_time.as_ref())
            .map(util::chrono_of);
        let (Some(cond), Some(start)) = (cond, start) else {
            return true;
        };
        let transition = cond
            .last_transition_time
            .as_ref()
            .map(util::chrono_of)
            .unwrap_or_default();
        if start + chrono_duration(self.cpu_initialization_period) > self.now {
            cond.status == "False" || metric.timestamp < transition + chrono_duration(metric.window)
        } else {
            cond.status == "False"
                && start + chrono_duration(self.initial_readiness_delay) > transition
        }
    }

    /// The usage ratio against the target, the utilization (percent, Utilization targets)
    /// and the average per pod, over the pods in `metrics` (`GetResourceUtilizationRatio`,
    /// `GetMetricUsageRatio`).
    fn ratio(
        metrics: &HashMap<String, PodMetric>,
        requests: &HashMap<String, i64>,
        target: Target,
    ) -> std::result::Result<(f64, Option<i32>, i64), String> {
        match target {
            Target::Utilization(t) => {
                let (mut total, mut requested, mut n) = (0i64, 0i64, 0i64);
                for (name, m) in metrics {
                    let Some(r) = requests.get(name) else {
                        continue;
                    };
                    total += m.value;
                    requested += r;
                    n += 1;
                }
                if requested == 0 {
                    return Err("no metrics returned matched known pods".into());
                }
                let util = (total * 100 / requested) as i32;
                Ok((util as f64 / t as f64, Some(util), total / n))
            }
            Target::AverageValue(t) => {
                let total: i64 = metrics.values().map(|m| m.value).sum();
                let avg = total as f64 / metrics.len().max(1) as f64;
                Ok((avg / t as f64, None, avg as i64))
            }
        }
    }

    /// The replicas one Resource metric asks for.
    fn replicas(
        &self,
        current: i32,
        pods: &[Arc<Pod>],
        mut metrics: HashMap<String, PodMetric>,
        res: &str,
        target: Target,
    ) -> std::result::Result<Proposal, String> {
        let g = self.group(pods, &metrics, res);
        for name in g.ignored.iter().chain(&g.unready) {
            metrics.remove(name);
        }
        let requests = match target {
            Target::Utilization(_) => pod_requests(pods, res)?,
            Target::AverageValue(_) => HashMap::new(),
        };
        if metrics.is_empty() {
            return Err("did not receive metrics for targeted pods (pods might be unready)".into());
        }
        let (ratio, utilization, average) = Self::ratio(&metrics, &requests, target)?;
        let proposal = |replicas| Proposal {
            replicas,
            utilization,
            average,
        };
        let scale_up_with_unready = !g.unready.is_empty() && ratio > 1.0;
        if !scale_up_with_unready && g.missing.is_empty() {
            if self.within_tolerance(ratio) {
                return Ok(proposal(current));
            }
            return Ok(proposal((ratio * g.ready as f64).ceil() as i32));
        }
        let filler = |value| PodMetric {
            value,
            timestamp: self.now,
            window: Duration::ZERO,
        };
        if ratio < 1.0 {
            // Scaling down: a pod without a metric may be busy; count it at 100 % of its
            // request (or the target, when that is higher).
            for name in &g.missing {
                let value = match target {
                    Target::Utilization(t) => {
                        requests.get(name).copied().unwrap_or(0) * i64::from(t.max(100)) / 100
                    }
                    Target::AverageValue(t) => t,
                };
                metrics.insert(name.clone(), filler(value));
            }
        } else if ratio > 1.0 {
            for name in &g.missing {
                metrics.insert(name.clone(), filler(0));
            }
        }
        if scale_up_with_unready {
            for name in &g.unready {
                metrics.insert(name.clone(), filler(0));
            }
        }
        let (new_ratio, _, _) = Self::ratio(&metrics, &requests, target)?;
        if self.within_tolerance(new_ratio)
            || (ratio < 1.0 && new_ratio > 1.0)
            || (ratio > 1.0 && new_ratio < 1.0)
        {
            // Too small a change, or the pods without metrics would turn the direction.
            return Ok(proposal(current));
        }
        let replicas = (new_ratio * metrics.len() as f64).ceil() as i32;
        if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
            return Ok(proposal(current));
        }
        Ok(proposal(replicas))
    }
}

/// Each pod's summed request of `res` in milli-units (`calculatePodRequests`): every
/// container must have one.
fn pod_requests(pods: &[Arc<Pod>], res: &str) -> std::result::Result<HashMap<String, i64>, String> {
    let mut out = HashMap::new();
    for p in pods {
        let mut sum = 0i64;
        for c in p
            .spec
            .as_ref()
            .map(|s| s.containers.as_slice())
            .unwrap_or(&[])
        {
            let q = c
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get(res))
                .and_then(|q| Quantity::from_api(q).ok())
                .ok_or_else(|| {
                    format!(
                        "missing request for {res} in container {} of Pod {}",
                        c.name,
                        p.name_any()
                    )
                })?;
            sum += milli_ceil(&q);
        }
        out.insert(p.name_any(), sum);
    }
    Ok(out)
}

/// A quantity in milli-units, rounded up (`Quantity.MilliValue`).
fn milli_ceil(q: &Quantity) -> i64 {
    (milli(q) - 1e-9).ceil() as i64
}

/// What the server said (a Status's message, as upstream's `err.Error()` reads), else the
/// error itself: for the HPA's events and conditions.
fn server_message(e: &Error) -> String {
    match e {
        Error::Api {
            source: kube::Error::Api(s),
            ..
        } => s.message.clone(),
        e => e.to_string(),
    }
}

fn milli(q: &Quantity) -> f64 {
    q.as_approximate_f64() * 1000.0
}

/// A metric value in milli-units as a quantity (`250m`; memory in whole bytes).
fn milli_string(v: f64, res: &str) -> String {
    if res == "memory" {
        format!("{}", (v / 1000.0).round() as i64)
    } else {
        format!("{}m", v.round() as i64)
    }
}

/// Upstream's default behaviour: scale up by 100 % or 4 pods per 15 s (the larger),
/// scale down by 100 % per 15 s after the stabilization window.
fn default_rules(up: bool, window: i32) -> HPAScalingRules {
    let mut policies = vec![HPAScalingPolicy {
        type_: "Percent".into(),
        value: 100,
        period_seconds: 15,
    }];
    if up {
        policies.push(HPAScalingPolicy {
            type_: "Pods".into(),
            value: 4,
            period_seconds: 15,
        });
    }
    HPAScalingRules {
        policies: Some(policies),
        select_policy: Some("Max".into()),
        stabilization_window_seconds: Some(window),
        ..Default::default()
    }
}

/// The replica count the policies allow from `current` (upstream's
/// `calculateScaleUpLimitWithScalingRules` / `...ScaleDownLimit...`).
fn policy_limit(
    rules: &HPAScalingRules,
    events: &[(DateTime<Utc>, i32)],
    current: i32,
    now: DateTime<Utc>,
    up: bool,
) -> i32 {
    let select = rules.select_policy.as_deref().unwrap_or("Max");
    if select == "Disabled" {
        return current;
    }
    let mut limits: Vec<i32> = Vec::new();
    for p in rules.policies.iter().flatten() {
        let changed: i32 = events
            .iter()
            .filter(|(t, _)| (now - *t).num_seconds() < p.period_seconds as i64)
            .map(|(_, c)| *c)
            .sum();
        let start = if up {
            current - changed
        } else {
            current + changed
        };
        let limit = match (p.type_.as_str(), up) {
            ("Pods", true) => start + p.value,
            ("Pods", false) => start - p.value,
            ("Percent", true) => (start as f64 * (1.0 + p.value as f64 / 100.0)).ceil() as i32,
            (_, false) => (start as f64 * (1.0 - p.value as f64 / 100.0)).ceil() as i32,
            _ => start,
        };
        limits.push(limit);
    }
    if limits.is_empty() {
        return if up { i32::MAX } else { 0 };
    }
    let pick_max = (select == "Max") == up;
    if pick_max {
        limits.into_iter().max().unwrap_or(current)
    } else {
        limits.into_iter().min().unwrap_or(current)
    }
}

fn set_cond(
    conds: &mut Vec<HorizontalPodAutoscalerCondition>,
    ty: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) {
    conds.retain(|c| c.type_ != ty);
    conds.push(HorizontalPodAutoscalerCondition {
        type_: ty.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_transition_time: Some(time_of(now)),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    use k8s_openapi::api::core::v1::{
        Container, PodCondition, PodSpec, PodStatus, ResourceRequirements,
    };

    /// A pod requesting `req_m` milli-cpu: its phase, its Ready condition (status, seconds
    /// ago it changed) and how many seconds ago it started.
    fn pod(
        name: &str,
        phase: &str,
        ready: Option<(&str, i64)>,
        started: i64,
        req_m: i64,
    ) -> Arc<Pod> {
        let now = Utc::now();
        Arc::new(Pod {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    resources: Some(ResourceRequirements {
                        requests: Some(
                            [("cpu".to_string(), ApiQuantity(format!("{req_m}m")))].into(),
                        ),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                start_time: Some(time_of(now - chrono::Duration::seconds(started))),
                conditions: ready.map(|(st, ago)| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: st.into(),
                        last_transition_time: Some(time_of(now - chrono::Duration::seconds(ago))),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        })
    }

    /// A pod started 10 min ago, ready for 9.
    fn running(name: &str) -> Arc<Pod> {
        pod(name, "Running", Some(("True", 540)), 600, 100)
    }

    /// Samples of `value` milli-cpu taken now over 10 s.
    fn samples(values: &[(&str, i64)]) -> HashMap<String, PodMetric> {
        values
            .iter()
            .map(|(n, v)| {
                let m = PodMetric {
                    value: *v,
                    timestamp: Utc::now(),
                    window: Duration::from_secs(10),
                };
                (n.to_string(), m)
            })
            .collect()
    }

    fn calc() -> Calculator {
        let cfg = HpaConfig::default();
        Calculator {
            tolerance: cfg.tolerance,
            cpu_initialization_period: cfg.cpu_initialization_period,
            initial_readiness_delay: cfg.initial_readiness_delay,
            now: Utc::now(),
        }
    }

    fn replicas(current: i32, pods: &[Arc<Pod>], m: &[(&str, i64)], target: Target) -> i32 {
        calc()
            .replicas(current, pods, samples(m), "cpu", target)
            .map(|p| p.replicas)
            .unwrap_or(-1)
    }

    const HALF: Target = Target::Utilization(50);

    #[test]
    fn scales_on_the_ratio_within_tolerance() {
        let pods = [running("a"), running("b"), running("c")];
        // 150 % of a 50 % target: three times as many.
        let p = calc()
            .replicas(
                3,
                &pods,
                samples(&[("a", 150), ("b", 150), ("c", 150)]),
                "cpu",
                HALF,
            )
            .map_err(|e| e.to_string());
        assert_eq!(
            p,
            Ok(Proposal {
                replicas: 9,
                utilization: Some(150),
                average: 150
            })
        );
        // 52 % is within the 0.1 tolerance of 50 %.
        assert_eq!(
            replicas(3, &pods, &[("a", 52), ("b", 52), ("c", 52)], HALF),
            3
        );
        assert_eq!(
            replicas(3, &pods, &[("a", 10), ("b", 10), ("c", 10)], HALF),
            1
        );
    }

    /// A pending pod (not started, no metric) does not hold a scale-down: upstream leaves it
    /// out. Counted at 100 % of its request it held three idle replicas at three.
    #[test]
    fn pending_pods_do_not_hold_a_scale_down() {
        let pods = [
            running("a"),
            running("b"),
            running("c"),
            pod("new", "Pending", None, 0, 100),
        ];
        let m = [("a", 10), ("b", 10), ("c", 10)];
        assert_eq!(replicas(4, &pods, &m, HALF), 1);
        // On a scale-up it counts at 0 %: 3 x 150 m over 4 x 100 m is 112 % → 9.
        let m = [("a", 150), ("b", 150), ("c", 150)];
        assert_eq!(replicas(4, &pods, &m, HALF), 9);
    }

    /// A running pod without a metric counts at its whole request when scaling down (and
    /// 0 when scaling up): one such pod keeps two idle replicas at a 50 % target.
    #[test]
    fn running_pods_without_metrics() {
        let pods = [running("a"), running("b"), running("silent")];
        // 0 + 0 + 100 of 300 m: 33 % → ceil(0.66 × 3) = 2.
        assert_eq!(replicas(3, &pods, &[("a", 0), ("b", 0)], HALF), 2);
        let pods = [running("a"), running("silent")];
        // 0 + 100 of 200 m is 50 %: within tolerance, no change.
        assert_eq!(replicas(2, &pods, &[("a", 0)], HALF), 2);
        // Scaling up: 200 m on a's 100 m is 400 %; with silent at 0: 100 % → 2 × 2 = 4.
        assert_eq!(replicas(2, &pods, &[("a", 200)], HALF), 4);
        // The pods without metrics would turn a small scale-down into a scale-up: no change.
        let pods = [running("a"), running("b"), running("c"), running("silent")];
        assert_eq!(
            replicas(4, &pods, &[("a", 40), ("b", 40), ("c", 40)], HALF),
            4
        );
        // AverageValue: the missing pod counts at the target (50 m, not the others' 30 m):
        // 110 / 3 of 50 m → ceil(0.73 × 3) = 3.
        let pods = [running("a"), running("b"), running("silent")];
        assert_eq!(
            replicas(3, &pods, &[("a", 30), ("b", 30)], Target::AverageValue(50)),
            3
        );
    }

    #[test]
    fn unready_cpu_samples() {
        let c = calc();
        let m = |secs_ago: i64| PodMetric {
            value: 100,
            timestamp: Utc::now() - chrono::Duration::seconds(secs_ago),
            window: Duration::from_secs(10),
        };
        // Within the initialization period: unready, or sampled less than a window after
        // becoming ready.
        assert!(c.cpu_unready(&pod("p", "Running", Some(("False", 20)), 60, 100), &m(0)));
        assert!(c.cpu_unready(&pod("p", "Running", Some(("True", 5)), 60, 100), &m(0)));
        assert!(!c.cpu_unready(&pod("p", "Running", Some(("True", 30)), 60, 100), &m(0)));
        assert!(c.cpu_unready(&pod("p", "Running", None, 60, 100), &m(0)));
        // After it: unready only if never ready since starting.
        assert!(c.cpu_unready(&pod("p", "Running", Some(("False", 590)), 600, 100), &m(0)));
        assert!(!c.cpu_unready(&pod("p", "Running", Some(("False", 60)), 600, 100), &m(0)));
        // Unready pods are left out when scaling down and count at 0 % when scaling up.
        let pods = [
            running("a"),
            running("b"),
            pod("u", "Running", Some(("False", 10)), 20, 100),
        ];
        assert_eq!(
            c.group(&pods, &samples(&[("a", 0), ("b", 0), ("u", 500)]), "cpu"),
            Groups {
                ready: 2,
                unready: ["u".to_string()].into(),
                ..Default::default()
            }
        );
        // (0 replicas: min replicas applies later.)
        assert_eq!(
            replicas(3, &pods, &[("a", 0), ("b", 0), ("u", 500)], HALF),
            0
        );
        // 2 × 100 m at 200 %: with u at 0, 133 % → ceil(2.67 × 3) = 8.
        assert_eq!(
            replicas(3, &pods, &[("a", 200), ("b", 200), ("u", 500)], HALF),
            8
        );
        // Memory has no readiness rule.
        assert_eq!(
            c.group(&pods, &samples(&[("a", 0), ("b", 0), ("u", 500)]), "memory")
                .ready,
            3
        );
    }

    #[test]
    fn ignored_and_unrequested_pods() {
        let mut gone = (*running("gone")).clone();
        gone.metadata.deletion_timestamp = Some(time_of(Utc::now()));
        let failed = pod("failed", "Failed", None, 60, 100);
        let pods = [running("a"), Arc::new(gone), failed];
        assert_eq!(
            replicas(3, &pods, &[("a", 10), ("gone", 900), ("failed", 900)], HALF),
            1
        );
        let mut bare = (*running("bare")).clone();
        if let Some(s) = bare.spec.as_mut() {
            s.containers[0].resources = None;
        }
        let err = calc().replicas(1, &[Arc::new(bare)], samples(&[("bare", 1)]), "cpu", HALF);
        assert_eq!(
            err,
            Err("missing request for cpu in container c of Pod bare".to_string())
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(go_duration("10x"), None);
        assert_eq!(go_duration(""), None);
    }

    #[test]
    fn scale_up_policies_take_the_larger() {
        let now = Utc::now();
        let up = default_rules(true, 0);
        assert_eq!(
            policy_limit(&up, &[], 1, now, true),
            5,
            "4 pods beat 100 % of 1"
        );
        assert_eq!(policy_limit(&up, &[], 10, now, true), 20);
        // A recent scale-up counts against the period.
        assert_eq!(policy_limit(&up, &[(now, 5)], 10, now, true), 10);
        let down = default_rules(false, 300);
        assert_eq!(policy_limit(&down, &[], 10, now, false), 0);
        let disabled = HPAScalingRules {
            select_policy: Some("Disabled".into()),
            ..Default::default()
        };
        assert_eq!(policy_limit(&disabled, &[], 3, now, true), 3);
    }

    #[test]
    fn encodes_selectors() {
        assert_eq!(
            url_encode("app=web,tier in (a)"),
            "app%3Dweb%2Ctier%20in%20%28a%29"
        );
    }
}
