//! The `default` ServiceAccount in every active namespace, as upstream's serviceaccounts
//! controller: created when a namespace appears and again whenever it is deleted.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

use crate::informer::{Change, Informer, Informers};
use crate::queue::WorkQueue;
use crate::util;
use crate::{Error, Result};

/// The ServiceAccounts every namespace gets (`--service-account-names`, upstream: default).
pub const DEFAULT_ACCOUNTS: &[&str] = &["default"];

pub(crate) struct ServiceAccountController {
    client: Client,
    namespaces: Informer<Namespace>,
    accounts: Informer<ServiceAccount>,
    queue: WorkQueue<String>,
}

impl ServiceAccountController {
    pub(crate) fn new(informers: &Informers) -> Arc<Self> {
        let c = Arc::new(ServiceAccountController {
            client: informers.client().clone(),
            namespaces: informers.get::<Namespace>(),
            accounts: informers.get::<ServiceAccount>(),
            queue: WorkQueue::new(),
        });
        let me = Arc::downgrade(&c);
        c.namespaces.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            match ch {
                Change::Added(n) => c.queue.add(n.name_any()),
                Change::Updated { new, .. } => c.queue.add(new.name_any()),
                Change::Deleted(_) => {}
            }
        });
        let me = Arc::downgrade(&c);
        c.accounts.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            if let Change::Deleted(sa) = ch {
                if DEFAULT_ACCOUNTS.contains(&sa.name_any().as_str()) {
                    c.queue.add(sa.namespace().unwrap_or_default());
                }
            }
        });
        c
    }

    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        self.namespaces.wait_synced().await;
        self.accounts.wait_synced().await;
        let me = self.clone();
        util::run_workers(
            "serviceaccount-controller",
            self.queue.clone(),
            workers,
            move |key| {
                let me = me.clone();
                async move { me.sync(&key).await }
            },
        )
        .await
    }

    async fn sync(&self, ns: &str) -> Result<()> {
        let Some(namespace) = self.namespaces.get("", ns) else {
            return Ok(());
        };
        let terminating = namespace.metadata.deletion_timestamp.is_some()
            || namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
        if terminating {
            return Ok(());
        }
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), ns);
        for name in DEFAULT_ACCOUNTS {
            if self.accounts.get(ns, name).is_some() {
                continue;
            }
            let sa = ServiceAccount {
                metadata: ObjectMeta {
                    name: Some((*name).to_string()),
                    namespace: Some(ns.to_string()),
                    ..Default::default()
                },
                ..Default::default()
            };
            match api.create(&PostParams::default(), &sa).await {
                Ok(_) => {}
                Err(e) => {
                    let e = Error::api("create", format!("serviceaccount {ns}/{name}"), e);
                    if !(e.is_already_exists() || e.is_namespace_terminating() || e.is_not_found())
                    {
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }
}
