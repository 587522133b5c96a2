//! Container lifecycle hooks (upstream `pkg/kubelet/lifecycle/handlers.go` and
//! `kuberuntime_container.go`): `postStart` runs right after the container starts and, if
//! it fails, the container is killed (`FailedPostStartHook` event, then `Killing`) and
//! restarted under the restart policy; `preStop` runs before the SIGTERM of a kill, inside
//! the grace period, which the hook's time is taken from (`FailedPreStopHook` on failure).
//!
//! exec, httpGet and sleep handlers are supported; exec and httpGet run exactly as probes
//! do (`nsenter` into the container; a connection from inside the pod's network namespace).
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bosun_runtime::Status;
use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod, Probe};

use crate::events::{self, NORMAL, WARNING};
use crate::probe::{self, Target};
use crate::worker::LABEL_CONTAINER_NAME;
use crate::Ctx;

/// How long a postStart hook may run (upstream waits for it without limit; a hook that
/// never returns would wedge the pod worker, so we stop waiting after this).
const POST_START_TIMEOUT: Duration = Duration::from_secs(120);
/// Upstream's minimum grace left for SIGTERM after a preStop hook.
const MIN_GRACE_AFTER_HOOK: Duration = Duration::from_secs(2);

/// `name_namespace(uid)`, upstream's `format.Pod`.
fn pod_desc(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.uid.as_deref().unwrap_or_default()
    )
}

/// The probe-shaped form of a handler, so probes' exec and HTTP code runs it.
fn as_probe(h: &LifecycleHandler) -> Probe {
    Probe {
        exec: h.exec.clone(),
        http_get: h.http_get.clone(),
        tcp_socket: h.tcp_socket.clone(),
        ..Default::default()
    }
}

/// Runs one handler; the error is upstream's message for the failed hook.
pub(crate) async fn run(
    pod: &Pod,
    c: &Container,
    h: &LifecycleHandler,
    t: &Target,
    timeout: Duration,
) -> Result<(), String> {
    if let Some(s) = &h.sleep {
        tokio::time::sleep(Duration::from_secs(s.seconds.max(0) as u64).min(timeout)).await;
        return Ok(());
    }
    let r = probe::run(&as_probe(h), t, timeout).await;
    r.map_err(|err| {
        if let Some(e) = &h.exec {
            format!(
                "Exec lifecycle hook ([{}]) for Container {:?} in Pod {:?} failed - error: {err}",
                e.command.clone().unwrap_or_default().join(" "),
                c.name,
                pod_desc(pod)
            )
        } else if let Some(g) = &h.http_get {
            format!(
                "HTTP lifecycle hook ({}) for Container {:?} in Pod {:?} failed - error: {err}",
                g.path.as_deref().unwrap_or(""),
                c.name,
                pod_desc(pod)
            )
        } else {
            format!(
                "Lifecycle hook for Container {:?} in Pod {:?} failed - error: {err}",
                c.name,
                pod_desc(pod)
            )
        }
    })
}

/// What a hook of container `id` runs against, if the container is running.
fn target(ctx: &Ctx, c: &Container, id: &str, netns: Option<PathBuf>) -> Option<Target> {
    let st = ctx.runtime.state(id).ok()?;
    if st.status != Status::Running {
        return None;
    }
    let env = ctx.runtime.config(id).map(|c| c.env).unwrap_or_default();
    Some(Target {
        pid: st.pid,
        env,
        netns,
        container: c.clone(),
    })
}

/// Runs the postStart hook of the container just started as `id`. On failure: a
/// `FailedPostStartHook` event, the container killed (its preStop hook first, as
/// upstream's `killContainer`), and `false`.
pub(crate) async fn post_start(
    ctx: &Arc<Ctx>,
    pod: &Arc<Pod>,
    c: &Container,
    id: &str,
    netns: Option<PathBuf>,
    grace: Duration,
) -> bool {
    let Some(h) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) else {
        return true;
    };
    let Some(t) = target(ctx, c, id, netns.clone()) else {
        return true;
    };
    let Err(msg) = run(pod, c, h, &t, POST_START_TIMEOUT).await else {
        return true;
    };
    tracing::info!(pod = %pod_desc(pod), container = %c.name, error = %msg, "postStart hook failed");
    events::record(ctx, pod, Some(&c.name), WARNING, "FailedPostStartHook", msg);
    events::record(
        ctx,
        pod,
        Some(&c.name),
        NORMAL,
        "Killing",
        "FailedPostStartHook".into(),
    );
    let ids = vec![id.to_string()];
    let grace = pre_stop(ctx, pod, netns, &ids, grace).await;
    crate::worker::kill_gracefully(ctx.runtime.clone(), ids, grace).await;
    false
}

/// Runs the preStop hooks of the running containers among `ids` at once, for at most
/// `grace`; returns the grace left for SIGTERM (at least 2 s, as upstream).
pub(crate) async fn pre_stop(
    ctx: &Arc<Ctx>,
    pod: &Arc<Pod>,
    netns: Option<PathBuf>,
    ids: &[String],
    grace: Duration,
) -> Duration {
    let spec = pod.spec.clone().unwrap_or_default();
    let mut hooks = Vec::new();
    for id in ids {
        let Ok(cfg) = ctx.runtime.config(id) else {
            continue;
        };
        let Some(name) = cfg.labels.get(LABEL_CONTAINER_NAME) else {
            continue;
        };
        let Some(c) = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|c| &c.name == name)
        else {
            continue;
        };
        let Some(h) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.clone()) else {
            continue;
        };
        if let Some(t) = target(ctx, c, id, netns.clone()) {
            hooks.push((c.clone(), h, t));
        }
    }
    if hooks.is_empty() {
        return grace;
    }
    let started = Instant::now();
    let runs = hooks.iter().map(|(c, h, t)| async move {
        let r = tokio::time::timeout(grace, run(pod, c, h, t, grace)).await;
        (c, r)
    });
    for (c, r) in futures::future::join_all(runs).await {
        let msg = match r {
            Ok(Ok(())) => continue,
            Ok(Err(msg)) => msg,
            Err(_) => format!(
                "PreStopHook for Container {:?} in Pod {:?} did not complete within the grace period of {}s",
                c.name,
                pod_desc(pod),
                grace.as_secs()
            ),
        };
        events::record(ctx, pod, Some(&c.name), WARNING, "FailedPreStopHook", msg);
    }
    grace
        .saturating_sub(started.elapsed())
        .max(MIN_GRACE_AFTER_HOOK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_desc_is_upstreams_format() {
        let mut p = Pod::default();
        p.metadata.name = Some("web".into());
        p.metadata.namespace = Some("prod".into());
        p.metadata.uid = Some("u1".into());
        assert_eq!(pod_desc(&p), "web_prod(u1)");
    }
}
