//! HorizontalPodAutoscaler (autoscaling/v2; v1 objects are stored as v2 by the server),
//! as upstream's `pkg/controller/podautoscaler`, for Resource metrics (cpu, memory) with
//! Utilization or AverageValue targets:
//!
//! - Usage comes from a [`MetricsSource`]: by default the `metrics.k8s.io/v1beta1`
//!   PodMetrics API; tests inject a synthetic one. When it fails the HPA says so
//!   (ScalingActive=False, FailedGetResourceMetric) and keeps the scale.
//! - Replicas as upstream's `GetResourceReplicas`: usage ratio against the target with
//!   the 0.1 tolerance, pods without metrics assumed at 100 % when scaling down and 0 %
//!   when scaling up, unready pods ignored when scaling up on cpu.
//! - Behaviour: stabilization windows (scale-down 300 s by default) over recent
//!   recommendations, then the Pods/Percent policies per period with selectPolicy,
//!   then min/max replicas, with AbleToScale, ScalingActive and ScalingLimited conditions.
//! - Scaling through the target's `scale` subresource; `SuccessfulRescale` events.

use std::collections::{BTreeMap, HashMap};
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
                    }
                })
                .collect())
        })
    }
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
    /// Where usage comes from; `None` reads the `metrics.k8s.io` API.
    pub metrics: Option<Arc<dyn MetricsSource>>,
}

impl fmt::Debug for HpaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HpaConfig")
            .field("sync_period", &self.sync_period)
            .field("tolerance", &self.tolerance)
            .field("downscale_stabilization", &self.downscale_stabilization)
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

/// Usage ratio against the target from (usage, requests, pods), all in milli-units.
type RatioFn = Box<dyn Fn(f64, f64, usize) -> f64>;

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
                let msg =
                    format!("the HPA controller was unable to get the target's current scale: {e}");
                self.recorder
                    .record(hpa.as_ref(), "Warning", "FailedGetScale", e.to_string());
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
                ("Resource", Some(rs)) => self.resource_replicas(ns, &selector, current, rs).await,
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
                Err(e) => {
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
                    return Err(e);
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
        let metrics: HashMap<&str, f64> = usage
            .iter()
            .filter_map(|u| Some((u.name.as_str(), milli(u.usage.get(res)?))))
            .collect();
        let pods: Vec<Arc<Pod>> = self
            .pods
            .list_namespace(ns)
            .into_iter()
            .filter(|p| sel.matches_labels(p.metadata.labels.as_ref()))
            .filter(|p| p.metadata.deletion_timestamp.is_none() && util::pod_phase(p) != "Failed")
            .collect();
        if pods.is_empty() {
            return Err(fail("no pods match the target's selector".into()));
        }
        let mut ready_usage = 0.0;
        let mut ready_requests = 0.0;
        let mut ready_count = 0usize;
        let mut missing: Vec<Arc<Pod>> = Vec::new();
        let mut unready = 0usize;
        let mut requests: HashMap<String, f64> = HashMap::new();
        for p in &pods {
            let mut req = 0.0;
            for c in p
                .spec
                .as_ref()
                .map(|s| s.containers.as_slice())
                .unwrap_or(&[])
            {
                match c
                    .resources
                    .as_ref()
                    .and_then(|r| r.requests.as_ref())
                    .and_then(|r| r.get(res))
                {
                    Some(q) => req += Quantity::from_api(q).map(|q| milli(&q)).unwrap_or(0.0),
                    None if rs.target.type_ == "Utilization" => {
                        return Err(fail(format!(
                            "missing request for {res} in container {} of Pod {}",
                            c.name,
                            p.name_any()
                        )))
                    }
                    None => {}
                }
            }
            requests.insert(p.name_any(), req);
            match metrics.get(p.name_any().as_str()) {
                None => missing.push(p.clone()),
                Some(_) if res == "cpu" && !util::is_pod_ready(p) => unready += 1,
                Some(u) => {
                    ready_usage += u;
                    ready_requests += req;
                    ready_count += 1;
                }
            }
        }
        if ready_count == 0 {
            return Err(fail(
                "did not receive metrics for targeted pods (pods might be unready)".into(),
            ));
        }
        let tol = self.cfg.tolerance;
        let (ratio_of, describe): (RatioFn, String) = match rs.target.type_.as_str() {
            "AverageValue" => {
                let target = rs
                    .target
                    .average_value
                    .as_ref()
                    .and_then(|q| Quantity::from_api(q).ok())
                    .map(|q| milli(&q))
                    .unwrap_or(0.0);
                if target <= 0.0 {
                    return Err(fail("the target average value is not set".into()));
                }
                (
                    Box::new(move |u, _r, n| u / (target * n as f64)),
                    format!("{res} resource"),
                )
            }
            _ => {
                let target = rs.target.average_utilization.unwrap_or(80) as f64;
                (
                    Box::new(move |u, r, _n| if r > 0.0 { u * 100.0 / r / target } else { 0.0 }),
                    format!("{res} resource utilization (percentage of request)"),
                )
            }
        };
        let ratio = ratio_of(ready_usage, ready_requests, ready_count);
        let utilization = if ready_requests > 0.0 {
            (ready_usage * 100.0 / ready_requests) as i32
        } else {
            0
        };
        let average = ready_usage / ready_count as f64;
        let status = MetricStatus {
            type_: "Resource".into(),
            resource: Some(ResourceMetricStatus {
                name: res.to_string(),
                current: MetricValueStatus {
                    average_utilization: (rs.target.type_ == "Utilization").then_some(utilization),
                    average_value: Some(ApiQuantity(milli_string(average, res))),
                    value: None,
                },
            }),
            ..Default::default()
        };
        let replicas = if missing.is_empty() && unready == 0 {
            if (ratio - 1.0).abs() <= tol {
                current
            } else {
                (ratio * ready_count as f64).ceil() as i32
            }
        } else {
            if (ratio - 1.0).abs() <= tol && missing.is_empty() {
                // Unready pods only matter when scaling up.
                return Ok(MetricResult {
                    replicas: current,
                    status,
                    describe,
                });
            }
            let mut u = ready_usage;
            let mut r = ready_requests;
            let mut n = ready_count;
            for p in &missing {
                let req = requests.get(&p.name_any()).copied().unwrap_or(0.0);
                // Missing pods use 100 % of their request when scaling down, 0 when up.
                if ratio < 1.0 {
                    u += if rs.target.type_ == "AverageValue" {
                        ready_usage / ready_count as f64
                    } else {
                        req
                    };
                }
                r += req;
                n += 1;
            }
            if ratio > 1.0 {
                for p in pods.iter().filter(|p| {
                    res == "cpu"
                        && !util::is_pod_ready(p)
                        && metrics.contains_key(p.name_any().as_str())
                }) {
                    r += requests.get(&p.name_any()).copied().unwrap_or(0.0);
                    n += 1;
                }
            }
            let new_ratio = ratio_of(u, r, n);
            if (new_ratio - 1.0).abs() <= tol || (ratio > 1.0) != (new_ratio > 1.0) {
                current
            } else {
                (new_ratio * n as f64).ceil() as i32
            }
        };
        Ok(MetricResult {
            replicas,
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
