//! The pod-level cgroup's limits, as upstream's pod container manager computes them
//! (`ResourceConfigForPod` in pkg/kubelet/cm/helpers_linux.go): CPU shares from the pod's
//! CPU request; CFS quota from the pod's CPU limit and a memory limit, each only when every
//! container declares that limit; BestEffort pods get the minimum shares.
//!
//! The pod's requests and limits are upstream's `PodRequests`/`PodLimits`: the sum over the
//! app containers and restartable (sidecar) init containers, raised to the largest regular
//! init container's value (init containers run one at a time), plus `spec.overhead`.
use std::collections::BTreeMap;

use bosun_runtime::cgroup::{milli_to_quota, milli_to_shares, Resources, DEFAULT_CPU_PERIOD_US};
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Milli-CPU and bytes of one resource list.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Amounts {
    cpu_milli: i64,
    memory: i64,
}

impl Amounts {
    fn of(list: Option<&BTreeMap<String, Quantity>>) -> Self {
        let parse = |k: &str| {
            list.and_then(|m| m.get(k))
                .and_then(|q| bosun_api::quantity::Quantity::parse(&q.0).ok())
        };
        Amounts {
            cpu_milli: parse("cpu").map(|q| q.milli_value()).unwrap_or(0).max(0),
            memory: parse("memory").map(|q| q.value()).unwrap_or(0).max(0),
        }
    }

    fn add(self, o: Amounts) -> Self {
        Amounts {
            cpu_milli: self.cpu_milli.saturating_add(o.cpu_milli),
            memory: self.memory.saturating_add(o.memory),
        }
    }

    fn max(self, o: Amounts) -> Self {
        Amounts {
            cpu_milli: self.cpu_milli.max(o.cpu_milli),
            memory: self.memory.max(o.memory),
        }
    }
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// Upstream's `PodRequests` (`requests == true`) or `PodLimits`.
fn pod_amounts(spec: &PodSpec, requests: bool) -> Amounts {
    let of = |c: &Container| {
        let r = c.resources.as_ref();
        let limits = Amounts::of(r.and_then(|r| r.limits.as_ref()));
        if !requests {
            return limits;
        }
        // A request left out defaults to the limit (the API server's defaulting; a pod read
        // back from the API already has it).
        let req = r.and_then(|r| r.requests.as_ref());
        let has = |k: &str| req.is_some_and(|m| m.contains_key(k));
        let asked = Amounts::of(req);
        Amounts {
            cpu_milli: if has("cpu") {
                asked.cpu_milli
            } else {
                limits.cpu_milli
            },
            memory: if has("memory") {
                asked.memory
            } else {
                limits.memory
            },
        }
    };
    let inits = spec.init_containers.as_deref().unwrap_or_default();
    let mut sum = spec
        .containers
        .iter()
        .map(of)
        .fold(Amounts::default(), Amounts::add);
    // Sidecars started before a regular init container run beside it.
    let mut sidecars = Amounts::default();
    let mut init_max = Amounts::default();
    for c in inits {
        if is_sidecar(c) {
            sidecars = sidecars.add(of(c));
            sum = sum.add(of(c));
        } else {
            init_max = init_max.max(sidecars.add(of(c)));
        }
    }
    let mut total = sum.max(init_max);
    let overhead = Amounts::of(spec.overhead.as_ref());
    if requests {
        total = total.add(overhead);
    } else {
        // Overhead is added only to limits that are set (upstream's addResourceList on
        // non-zero limits).
        if total.cpu_milli > 0 {
            total.cpu_milli = total.cpu_milli.saturating_add(overhead.cpu_milli);
        }
        if total.memory > 0 {
            total.memory = total.memory.saturating_add(overhead.memory);
        }
    }
    total
}

/// The limits of the pod's cgroup (`kubepods[/burstable|/besteffort]/pod<uid>`).
pub(crate) fn pod_resources(spec: &PodSpec, qos: &str) -> Resources {
    let all = || {
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
    };
    let limit = |c: &Container, k: &str| {
        c.resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get(k))
            .and_then(|q| bosun_api::quantity::Quantity::parse(&q.0).ok())
            .is_some_and(|q| q.milli_value() > 0)
    };
    let cpu_declared = all().all(|c| limit(c, "cpu"));
    let memory_declared = all().all(|c| limit(c, "memory"));
    let req = pod_amounts(spec, true);
    let lim = pod_amounts(spec, false);
    let shares = milli_to_shares(req.cpu_milli as u64);
    let quota = milli_to_quota(lim.cpu_milli as u64, DEFAULT_CPU_PERIOD_US);
    match qos {
        "Guaranteed" => Resources {
            cpu_shares: Some(shares),
            cpu_quota_us: Some(quota),
            cpu_period_us: Some(DEFAULT_CPU_PERIOD_US),
            memory_limit_bytes: Some(lim.memory),
            pids_limit: None,
        },
        "Burstable" => Resources {
            cpu_shares: Some(shares),
            cpu_quota_us: cpu_declared.then_some(quota),
            cpu_period_us: cpu_declared.then_some(DEFAULT_CPU_PERIOD_US),
            memory_limit_bytes: memory_declared.then_some(lim.memory),
            pids_limit: None,
        },
        // BestEffort: MinShares, nothing else.
        _ => Resources {
            cpu_shares: Some(milli_to_shares(0)),
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).expect("pod spec")
    }

    fn qos_of(s: &PodSpec) -> &'static str {
        bosun_api::strategy::pod_qos_class(s)
    }

    #[test]
    fn guaranteed_pod_gets_the_sum_of_its_containers() {
        let s = spec(json!({"containers": [
            {"name": "a", "resources": {"limits": {"cpu": "500m", "memory": "100Mi"}}},
            {"name": "b", "resources": {"limits": {"cpu": "250m", "memory": "28Mi"}}},
        ]}));
        assert_eq!(qos_of(&s), "Guaranteed");
        let r = pod_resources(&s, qos_of(&s));
        // Requests default to the limits: 750m → 768 shares.
        assert_eq!(r.cpu_shares, Some(768));
        assert_eq!(r.cpu_quota_us, Some(75_000));
        assert_eq!(r.cpu_period_us, Some(100_000));
        assert_eq!(r.memory_limit_bytes, Some(128 * 1024 * 1024));
    }

    #[test]
    fn burstable_pod_gets_limits_only_when_every_container_has_them() {
        let s = spec(json!({"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1", "memory": "64Mi"}}},
            {"name": "b", "resources": {"requests": {"cpu": "200m"}, "limits": {"memory": "64Mi"}}},
        ]}));
        assert_eq!(qos_of(&s), "Burstable");
        let r = pod_resources(&s, qos_of(&s));
        assert_eq!(r.cpu_shares, Some(307), "300m of requests");
        assert_eq!(r.cpu_quota_us, None, "b has no cpu limit");
        assert_eq!(r.cpu_period_us, None);
        assert_eq!(r.memory_limit_bytes, Some(128 * 1024 * 1024));
    }

    #[test]
    fn an_init_container_without_limits_leaves_the_pod_unlimited() {
        let s = spec(json!({
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1"}}}],
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "200m", "memory": "32Mi"}}}],
        }));
        let r = pod_resources(&s, qos_of(&s));
        assert_eq!(
            r.cpu_shares,
            Some(1024),
            "the init container's 1 cpu is the larger"
        );
        assert_eq!(r.cpu_quota_us, None);
        assert_eq!(r.memory_limit_bytes, None);
    }

    #[test]
    fn init_containers_raise_the_pod_to_their_largest_and_sidecars_add() {
        let s = spec(json!({
            "initContainers": [
                {"name": "sidecar", "restartPolicy": "Always", "resources": {"limits": {"cpu": "100m", "memory": "10Mi"}}},
                {"name": "big", "resources": {"limits": {"cpu": "2", "memory": "10Mi"}}},
            ],
            "containers": [{"name": "a", "resources": {"limits": {"cpu": "300m", "memory": "50Mi"}}}],
        }));
        assert_eq!(qos_of(&s), "Guaranteed");
        let r = pod_resources(&s, qos_of(&s));
        // cpu: max(300m + 100m, 100m + 2) = 2100m; memory: max(60Mi, 20Mi) = 60Mi.
        assert_eq!(r.cpu_quota_us, Some(210_000));
        assert_eq!(r.cpu_shares, Some(2150));
        assert_eq!(r.memory_limit_bytes, Some(60 * 1024 * 1024));
    }

    #[test]
    fn overhead_is_added() {
        let s = spec(json!({
            "overhead": {"cpu": "250m", "memory": "120Mi"},
            "containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "8Mi"}}}],
        }));
        let r = pod_resources(&s, qos_of(&s));
        assert_eq!(r.cpu_quota_us, Some(125_000));
        assert_eq!(r.memory_limit_bytes, Some(128 * 1024 * 1024));
    }

    #[test]
    fn best_effort_pod_gets_minimum_shares_only() {
        let s = spec(json!({"containers": [{"name": "a"}]}));
        assert_eq!(qos_of(&s), "BestEffort");
        let r = pod_resources(&s, qos_of(&s));
        assert_eq!(
            r,
            Resources {
                cpu_shares: Some(2),
                ..Default::default()
            }
        );
    }
}
