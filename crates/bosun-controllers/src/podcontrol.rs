//! Creating and deleting an owner's pods, as upstream's `RealPodControl` with the
//! controllers' expectations around it: shared by the ReplicaSet/ReplicationController,
//! Job and DaemonSet controllers.
//!
//! - Creations are expected before the first request is sent (the informer may see a pod
//!   before its create call returns), sent in slow-start batches, and the ones never made
//!   are marked observed so the owner is not blocked waiting for them.
//! - Deletions are expected by pod key; a deletion that failed is marked observed (the
//!   informer will not see it). A pod already gone counts as deleted.
//! - `SuccessfulCreate`, `FailedCreate`, `SuccessfulDelete` and `FailedDelete` events on
//!   the owner, as upstream records them.

use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, Resource, ResourceExt};

use crate::events::Recorder;
use crate::expectations::Expectations;
use crate::{Error, Result};

/// What a controller needs to act on its pods.
pub(crate) struct PodControl<'a> {
    pub client: &'a Client,
    pub expectations: &'a Expectations,
    pub recorder: &'a Recorder,
}

impl PodControl<'_> {
    /// Creates `pods` in `ns` for `owner` (expectations under `key`). Returns how many
    /// were created and the first error. Creation refused because the namespace is being
    /// deleted is no error (it fails until the namespace is gone).
    pub async fn create<O: Resource<DynamicType = ()>>(
        &self,
        owner: &O,
        key: &str,
        ns: &str,
        pods: Vec<Pod>,
    ) -> (usize, Option<Error>) {
        let n = pods.len();
        if n == 0 {
            return (0, None);
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        self.expectations.expect_creations(key, n);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let (created, err) = slow_start_batch(n, 1, || {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let pod = pods.get(i).cloned().unwrap_or_default();
            let api = api.clone();
            async move {
                match api.create(&PostParams::default(), &pod).await {
                    Ok(p) => Ok(Some(p)),
                    Err(e) => {
                        let e = Error::api("create", format!("pod in {ns}"), e);
                        if e.is_namespace_terminating() {
                            Ok(None)
                        } else {
                            Err(e)
                        }
                    }
                }
            }
        })
        .await;
        for p in created.iter().flatten() {
            self.recorder.record(
                owner,
                "Normal",
                "SuccessfulCreate",
                format!("Created pod: {}", p.name_any()),
            );
        }
        let made = created.iter().filter(|p| p.is_some()).count();
        for _ in made..n {
            self.expectations.creation_observed(key);
        }
        if let Some(e) = &err {
            self.recorder.record(
                owner,
                "Warning",
                "FailedCreate",
                format!("Error creating: {e}"),
            );
        }
        (made, err)
    }

    /// Deletes the pods `names` in `ns` of `owner` (expectations under `key`), all at
    /// once. Returns how many are gone (a pod already gone counts) and the errors.
    pub async fn delete<O: Resource<DynamicType = ()>>(
        &self,
        owner: &O,
        key: &str,
        ns: &str,
        names: &[String],
    ) -> (usize, Vec<Error>) {
        if names.is_empty() {
            return (0, Vec::new());
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        self.expectations
            .expect_deletions(key, names.iter().map(|n| format!("{ns}/{n}")));
        let results = join_all(names.iter().map(|name| {
            let api = api.clone();
            async move { (name, api.delete(name, &DeleteParams::default()).await) }
        }))
        .await;
        let mut deleted = 0;
        let mut errs = Vec::new();
        for (name, r) in results {
            match r {
                Ok(_) => {
                    deleted += 1;
                    self.recorder.record(
                        owner,
                        "Normal",
                        "SuccessfulDelete",
                        format!("Deleted pod: {name}"),
                    );
                }
                Err(e) => {
                    // The informer will not see a deletion that did not happen.
                    self.expectations
                        .deletion_observed(key, &format!("{ns}/{name}"));
                    let e = Error::api("delete", format!("pod {ns}/{name}"), e);
                    if e.is_not_found() {
                        deleted += 1;
                    } else {
                        self.recorder.record(
                            owner,
                            "Warning",
                            "FailedDelete",
                            format!("Error deleting: {e}"),
                        );
                        errs.push(e);
                    }
                }
            }
        }
        (deleted, errs)
    }
}

/// Runs `count` calls of `f` in batches of 1, 2, 4, … (from `initial`), all of a batch
/// at once, stopping after the first batch with a failure: a request that fails for all
/// (quota, admission) fails once instead of `count` times. Returns the successes' values
/// and the first error.
pub(crate) async fn slow_start_batch<T, F, Fut>(
    count: usize,
    initial: usize,
    f: F,
) -> (Vec<T>, Option<Error>)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut remaining = count;
    let mut batch = remaining.min(initial.max(1));
    let mut done = Vec::with_capacity(count);
    while batch > 0 {
        let results = join_all((0..batch).map(|_| f())).await;
        let mut first_err = None;
        for r in results {
            match r {
                Ok(v) => done.push(v),
                Err(e) => {
                    if first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
        }
        if first_err.is_some() {
            return (done, first_err);
        }
        remaining -= batch;
        batch = remaining.min(2 * batch);
    }
    (done, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slow_start_stops_at_first_failing_batch() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = AtomicUsize::new(0);
        let (ok, err) = slow_start_batch(100, 1, || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n >= 5 {
                    Err(Error::Invalid {
                        what: "x".into(),
                        message: "quota".into(),
                    })
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        // Batches 1, 2, 4: the third batch fails after 2 of its calls succeed.
        assert_eq!(calls.load(Ordering::SeqCst), 7);
        assert_eq!(ok.len(), 5);
        assert!(err.is_some());
        let (ok, err) = slow_start_batch(10, 1, || async { Ok(()) }).await;
        assert_eq!(ok.len(), 10);
        assert!(err.is_none());
    }
}
