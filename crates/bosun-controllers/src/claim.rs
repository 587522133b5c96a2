//! Claiming children for an owner through controller references, as upstream's
//! `ControllerRefManager`: used by ReplicaSets for pods and by Deployments for ReplicaSets.

use std::fmt::Debug;
use std::sync::Arc;

use bosun_api::selector::LabelSelector;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::util::{self, controller_ref};
use crate::{Error, Result};

/// Claims children for an owner as upstream's `PodControllerRefManager`: keeps owned children
/// that match, releases owned ones that no longer match, adopts matching orphans (after checking
/// once, against the server, that the owner is not being deleted).
pub(crate) struct Claim<'a, O> {
    client: &'a Client,
    owner: &'a O,
    selector: &'a LabelSelector,
    can_adopt: Option<bool>,
}

impl<'a, O> Claim<'a, O>
where
    O: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    pub(crate) fn new(client: &'a Client, owner: &'a O, selector: &'a LabelSelector) -> Self {
        Claim {
            client,
            owner,
            selector,
            can_adopt: None,
        }
    }

    async fn can_adopt(&mut self) -> Result<bool> {
        if let Some(ok) = self.can_adopt {
            return Ok(ok);
        }
        let ns = self.owner.meta().namespace.clone().unwrap_or_default();
        let api: Api<O> = Api::namespaced(self.client.clone(), &ns);
        let name = self.owner.meta().name.clone().unwrap_or_default();
        let fresh = api
            .get_opt(&name)
            .await
            .map_err(|e| Error::api("get", format!("{} {ns}/{name}", O::kind(&())), e))?;
        let ok = fresh.is_some_and(|f| {
            f.meta().uid == self.owner.meta().uid && f.meta().deletion_timestamp.is_none()
        });
        self.can_adopt = Some(ok);
        Ok(ok)
    }

    pub(crate) async fn claim<C>(&mut self, children: Vec<Arc<C>>) -> Result<Vec<Arc<C>>>
    where
        C: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + Debug
            + DeserializeOwned,
    {
        let uid = self.owner.meta().uid.clone().unwrap_or_default();
        let deleting = self.owner.meta().deletion_timestamp.is_some();
        let mut claimed = Vec::with_capacity(children.len());
        let mut errs = Vec::new();
        for pod in children {
            let matches = self.selector.matches_labels(pod.meta().labels.as_ref());
            match controller_ref(pod.meta()) {
                Some(r) if r.uid != uid => {}
                Some(_) if matches => claimed.push(pod),
                Some(_) => {
                    if !deleting {
                        if let Err(e) = self.release(pod.as_ref()).await {
                            errs.push(e);
                        }
                    }
                }
                None => {
                    if deleting || !matches || pod.meta().deletion_timestamp.is_some() {
                        continue;
                    }
                    if pod.meta().namespace != self.owner.meta().namespace {
                        continue;
                    }
                    match self.can_adopt().await {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            errs.push(e);
                            continue;
                        }
                    }
                    match self.adopt(pod.as_ref()).await {
                        Ok(Some(p)) => claimed.push(Arc::new(p)),
                        Ok(None) => {}
                        Err(e) => errs.push(e),
                    }
                }
            }
        }
        Error::aggregate(errs).map(|()| claimed)
    }

    async fn adopt<C>(&self, pod: &C) -> Result<Option<C>>
    where
        C: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + Debug
            + DeserializeOwned,
    {
        let r = util::new_controller_ref(self.owner);
        let patch = json!({"metadata": {
            "ownerReferences": [r],
            "uid": pod.meta().uid,
        }});
        self.patch_child(pod, patch, "adopt").await
    }

    async fn release<C>(&self, pod: &C) -> Result<Option<C>>
    where
        C: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + Debug
            + DeserializeOwned,
    {
        let patch = json!({"metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": self.owner.meta().uid}],
            "uid": pod.meta().uid,
        }});
        self.patch_child(pod, patch, "release").await
    }

    async fn patch_child<C>(&self, pod: &C, patch: Value, verb: &'static str) -> Result<Option<C>>
    where
        C: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + Debug
            + DeserializeOwned,
    {
        let ns = pod.meta().namespace.clone().unwrap_or_default();
        let name = pod.meta().name.clone().unwrap_or_default();
        let api: Api<C> = Api::namespaced(self.client.clone(), &ns);
        match api
            .patch(&name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            Ok(p) => Ok(Some(p)),
            Err(e) => {
                let e = Error::api(
                    verb,
                    format!("{} {ns}/{name}", C::kind(&()).to_lowercase()),
                    e,
                );
                // Gone, or replaced by another pod of that name (uid precondition): nothing
                // to claim.
                if e.is_not_found() || e.code() == Some(422) || e.is_conflict() {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }
}
