//! Leader election on a coordination.k8s.io Lease, as client-go's `leaderelection`: acquire
//! when the holder has not renewed for a lease duration (measured on our clock, from when we
//! last saw the record change, so clock skew between servers does not matter), renew every
//! retry period, and give up leadership when no renewal succeeded within the renew deadline.

use std::time::{Duration, Instant};

use chrono::Utc;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::Client;

use crate::{Error, Result};

/// Leader election settings; defaults are kube-controller-manager's.
#[derive(Clone, Debug)]
pub struct LeaderElectionConfig {
    /// `--leader-elect` (default true).
    pub enabled: bool,
    /// `--leader-elect-lease-duration` (15 s): how long a lease lasts unrenewed.
    pub lease_duration: Duration,
    /// `--leader-elect-renew-deadline` (10 s): a leader that could not renew for this long
    /// stops acting.
    pub renew_deadline: Duration,
    /// `--leader-elect-retry-period` (2 s): between attempts to acquire or renew.
    pub retry_period: Duration,
    /// `--leader-elect-resource-namespace` (`kube-system`).
    pub namespace: String,
    /// `--leader-elect-resource-name` (`kube-controller-manager`).
    pub name: String,
    /// This candidate's identity; `None` = `<hostname>_<random uuid>` as upstream.
    pub identity: Option<String>,
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        LeaderElectionConfig {
            enabled: true,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            namespace: "kube-system".into(),
            name: "kube-controller-manager".into(),
            identity: None,
        }
    }
}

/// One candidate for the lease.
pub struct LeaderElector {
    api: Api<Lease>,
    cfg: LeaderElectionConfig,
    identity: String,
    /// The last record seen and when (our clock) it was first seen.
    observed: Option<(LeaseSpec, Instant)>,
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let suffix: String = (0..16)
        .map(|_| format!("{:x}", rand::random::<u8>() & 0xf))
        .collect();
    format!("{host}_{suffix}")
}

impl LeaderElector {
    pub fn new(client: Client, cfg: LeaderElectionConfig) -> LeaderElector {
        let identity = cfg.identity.clone().unwrap_or_else(default_identity);
        LeaderElector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            identity,
            observed: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn what(&self) -> String {
        format!("lease {}/{}", self.cfg.namespace, self.cfg.name)
    }

    /// Waits until this candidate holds the lease.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    tracing::info!(lease = %self.what(), identity = %self.identity, "acquired leadership");
                    return;
                }
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, "leader election attempt failed"),
            }
            tokio::time::sleep(jitter(self.cfg.retry_period)).await;
        }
    }

    /// Renews the lease until a renewal deadline passes without success; returns why
    /// leadership ended.
    pub async fn hold(&mut self) -> Error {
        let mut last_renew = Instant::now();
        loop {
            tokio::time::sleep(self.cfg.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renew = Instant::now(),
                Ok(false) => return Error::LeaderLost { lease: self.what() },
                Err(e) => {
                    tracing::warn!(error = %e, "renewing the leader lease failed");
                }
            }
            if last_renew.elapsed() > self.cfg.renew_deadline {
                return Error::LeaderLost { lease: self.what() };
            }
        }
    }

    /// Gives the lease up so another candidate need not wait for it to expire.
    pub async fn release(&mut self) {
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.cfg.name).await {
            let spec = lease.spec.get_or_insert_with(Default::default);
            if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
                return;
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            let _ = self
                .api
                .replace(&self.cfg.name, &PostParams::default(), &lease)
                .await;
        }
    }

    /// One attempt: true when we hold the lease afterwards.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool> {
        let now = crate::util::micro_time_of(Utc::now());
        let secs = self.cfg.lease_duration.as_secs() as i32;
        let mine = LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(secs),
            acquire_time: Some(now.clone()),
            renew_time: Some(now.clone()),
            lease_transitions: Some(0),
            ..Default::default()
        };
        let existing = self
            .api
            .get_opt(&self.cfg.name)
            .await
            .map_err(|e| Error::api("get", self.what(), e))?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.cfg.name.clone()),
                    namespace: Some(self.cfg.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(mine.clone()),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    self.observed = Some((mine, Instant::now()));
                    Ok(true)
                }
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(Error::api("create", self.what(), e)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let changed = self.observed.as_ref().is_none_or(|(o, _)| *o != spec);
        if changed {
            self.observed = Some((spec.clone(), Instant::now()));
        }
        let held_by_other = spec
            .holder_identity
            .as_deref()
            .is_some_and(|h| !h.is_empty() && h != self.identity);
        let duration =
            Duration::from_secs(spec.lease_duration_seconds.unwrap_or(secs).max(0) as u64);
        let seen_at = self
            .observed
            .as_ref()
            .map(|(_, t)| *t)
            .unwrap_or_else(Instant::now);
        if held_by_other && seen_at.elapsed() < duration {
            return Ok(false);
        }
        let mut next = mine;
        if spec.holder_identity.as_deref() == Some(self.identity.as_str()) {
            next.acquire_time = spec.acquire_time.clone();
            next.lease_transitions = spec.lease_transitions;
        } else {
            next.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        lease.spec = Some(next.clone());
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                self.observed = Some((next, Instant::now()));
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(Error::api("update", self.what(), e)),
        }
    }
}

/// Upstream waits `retryPeriod * (1 + rand[0, 1.2))` between acquire attempts.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(1.0 + rand::random::<f64>() * 1.2)
}
