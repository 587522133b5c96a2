//! Leader election through a coordination.k8s.io Lease, as client-go's leaderelection:
//! acquire when the holder has not renewed for a lease duration (judged by our own clock
//! since we last saw the record change, never by comparing clocks), renew every retry
//! period, and step down when renewals fail for the renew deadline.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Where and how to hold the lease; defaults are kube-scheduler's.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub namespace: String,
    pub name: String,
    /// This instance's identity (upstream: `{hostname}_{uuid}`).
    pub identity: String,
    /// `--leader-elect-lease-duration`: 15 s.
    pub lease_duration: Duration,
    /// `--leader-elect-renew-deadline`: 10 s.
    pub renew_deadline: Duration,
    /// `--leader-elect-retry-period`: 2 s.
    pub retry_period: Duration,
}

impl LeaderElection {
    /// kube-scheduler's lease (`kube-system/kube-scheduler`) for `identity`.
    pub fn scheduler(identity: impl Into<String>) -> LeaderElection {
        LeaderElection {
            namespace: "kube-system".into(),
            name: "kube-scheduler".into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

fn micro(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

struct Elector {
    api: Api<Lease>,
    cfg: LeaderElection,
    /// The last record seen and when it changed, by our clock.
    observed: Option<(serde_json::Value, Instant)>,
}

impl Elector {
    /// One attempt; Ok(true) when we hold the lease afterwards.
    async fn try_acquire_or_renew(&mut self) -> kube::Result<bool> {
        let now = Utc::now();
        let secs = i32::try_from(self.cfg.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let current = match self.api.get_opt(&self.cfg.name).await? {
            Some(l) => l,
            None => {
                let lease: Lease = serde_json::from_value(json!({
                    "metadata": {"name": self.cfg.name, "namespace": self.cfg.namespace},
                    "spec": {
                        "holderIdentity": self.cfg.identity,
                        "leaseDurationSeconds": secs,
                        "acquireTime": micro(now),
                        "renewTime": micro(now),
                        "leaseTransitions": 0,
                    },
                }))
                .map_err(kube::Error::SerdeError)?;
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(e),
                };
            }
        };
        let spec = current.spec.clone().unwrap_or_default();
        let record = serde_json::to_value(&spec).unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let mine = holder == self.cfg.identity;
        match &self.observed {
            Some((r, _)) if *r == record => {}
            _ => self.observed = Some((record, Instant::now())),
        }
        let observed_at = self
            .observed
            .as_ref()
            .map(|(_, t)| *t)
            .unwrap_or_else(Instant::now);
        let held_by_other = !holder.is_empty()
            && !mine
            && observed_at
                + Duration::from_secs(spec.lease_duration_seconds.unwrap_or(secs).max(0) as u64)
                > Instant::now();
        if held_by_other {
            return Ok(false);
        }
        let mut lease = current;
        let transitions = spec.lease_transitions.unwrap_or(0);
        let new_spec = if mine {
            json!({
                "holderIdentity": self.cfg.identity,
                "leaseDurationSeconds": secs,
                "acquireTime": spec.acquire_time,
                "renewTime": micro(now),
                "leaseTransitions": transitions,
            })
        } else {
            json!({
                "holderIdentity": self.cfg.identity,
                "leaseDurationSeconds": secs,
                "acquireTime": micro(now),
                "renewTime": micro(now),
                "leaseTransitions": transitions + 1,
            })
        };
        lease.spec = Some(serde_json::from_value(new_spec).map_err(kube::Error::SerdeError)?);
        // The resourceVersion from our read makes this a compare-and-swap.
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Runs the election; the receiver says whether we lead right now.
pub fn spawn(client: kube::Client, cfg: LeaderElection) -> (watch::Receiver<bool>, JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut el = Elector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg: cfg.clone(),
            observed: None,
        };
        let mut last_renew: Option<Instant> = None;
        loop {
            match el.try_acquire_or_renew().await {
                Ok(true) => {
                    if last_renew.is_none() {
                        tracing::info!(lease = %cfg.name, identity = %cfg.identity, "became leader");
                    }
                    last_renew = Some(Instant::now());
                    let _ = tx.send_replace(true);
                }
                Ok(false) => {
                    if last_renew.take().is_some() {
                        tracing::warn!(lease = %cfg.name, "lost the lease to another holder");
                    }
                    let _ = tx.send_replace(false);
                }
                Err(e) => {
                    tracing::warn!(lease = %cfg.name, error = %e, "leader election attempt failed");
                    if last_renew.is_some_and(|t| t.elapsed() > cfg.renew_deadline) {
                        tracing::warn!(lease = %cfg.name, "renew deadline passed; stepping down");
                        last_renew = None;
                        let _ = tx.send_replace(false);
                    }
                }
            }
            tokio::time::sleep(cfg.retry_period).await;
        }
    });
    (rx, task)
}
