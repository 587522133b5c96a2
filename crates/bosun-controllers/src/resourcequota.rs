//! ResourceQuota status, as upstream's `pkg/controller/resourcequota`: `status.hard`
//! mirrors `spec.hard` and `status.used` is recomputed from the namespace's objects
//! (pods, services, configmaps, secrets, claims, replication controllers, quotas from
//! the informers; other `count/<resource>.<group>` names by a metadata list), whenever
//! they change and every `resync` (upstream's `--resource-quota-sync-period`, 5 min).
//! Admission in the API server raises `used` as objects are created; this controller
//! brings it back down as they go.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bosun_api::quantity::{Format, Quantity};
use bosun_api::quota::{self, ResourceList};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;

use crate::discovery::Catalog;
use crate::informer::{key_of, Change, Informer, Informers};
use crate::queue::WorkQueue;
use crate::util;
use crate::{Error, Result};

const COMPONENT: &str = "resourcequota-controller";

/// Upstream's `--resource-quota-sync-period` default.
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(300);

pub(crate) struct ResourceQuotaController {
    client: Client,
    catalog: Arc<Catalog>,
    quotas: Informer<ResourceQuota>,
    pods: Informer<Pod>,
    services: Informer<Service>,
    configmaps: Informer<ConfigMap>,
    secrets: Informer<Secret>,
    claims: Informer<PersistentVolumeClaim>,
    rcs: Informer<ReplicationController>,
    queue: WorkQueue<String>,
    resync: Duration,
}

fn api_list(l: &ResourceList) -> BTreeMap<String, ApiQuantity> {
    l.iter().map(|(k, v)| (k.clone(), v.to_api())).collect()
}

fn parse(l: Option<&BTreeMap<String, ApiQuantity>>) -> ResourceList {
    l.map(|m| {
        m.iter()
            .filter_map(|(k, q)| Some((k.clone(), Quantity::from_api(q).ok()?)))
            .collect()
    })
    .unwrap_or_default()
}

impl ResourceQuotaController {
    pub(crate) fn new(informers: &Informers, catalog: Arc<Catalog>, resync: Duration) -> Arc<Self> {
        let c = Arc::new(ResourceQuotaController {
            client: informers.client().clone(),
            catalog,
            quotas: informers.get::<ResourceQuota>(),
            pods: informers.get::<Pod>(),
            services: informers.get::<Service>(),
            configmaps: informers.get::<ConfigMap>(),
            secrets: informers.get::<Secret>(),
            claims: informers.get::<PersistentVolumeClaim>(),
            rcs: informers.get::<ReplicationController>(),
            queue: WorkQueue::new(),
            resync,
        });
        let me = Arc::downgrade(&c);
        c.quotas.add_handler(move |ch| {
            let Some(c) = me.upgrade() else { return };
            match ch {
                Change::Added(q) => c.queue.add(key_of(q.as_ref())),
                Change::Updated { old, new } => {
                    // Our own status writes and admission's charges need no recount;
                    // a spec change or a status that no longer mirrors the spec does.
                    if old.spec != new.spec
                        || new.status.as_ref().and_then(|s| s.hard.as_ref())
                            != new.spec.as_ref().and_then(|s| s.hard.as_ref())
                    {
                        c.queue.add(key_of(new.as_ref()))
                    }
                }
                Change::Deleted(_) => {}
            }
        });
        macro_rules! replenish {
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
        replenish!(c.pods);
        replenish!(c.services);
        replenish!(c.configmaps);
        replenish!(c.secrets);
        replenish!(c.claims);
        replenish!(c.rcs);
        c
    }

    fn enqueue_namespace(&self, ns: &str) {
        for q in self.quotas.list_namespace(ns) {
            self.queue.add(key_of(q.as_ref()));
        }
    }

    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        self.quotas.wait_synced().await;
        self.pods.wait_synced().await;
        self.services.wait_synced().await;
        self.configmaps.wait_synced().await;
        self.secrets.wait_synced().await;
        self.claims.wait_synced().await;
        self.rcs.wait_synced().await;
        let me = self.clone();
        let resync = tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.resync);
            tick.tick().await;
            loop {
                tick.tick().await;
                for k in me.quotas.keys() {
                    me.queue.add(k);
                }
            }
        });
        let me = self.clone();
        util::run_workers(COMPONENT, self.queue.clone(), workers, move |key| {
            let me = me.clone();
            async move { me.sync(&key).await }
        })
        .await;
        resync.abort();
    }

    /// Sums the usage of one typed kind's objects in `ns` into `used`.
    fn add_usage<K>(
        &self,
        informer: &Informer<K>,
        rq: &ResourceQuota,
        hard: &ResourceList,
        ns: &str,
        used: &mut ResourceList,
    ) where
        K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Serialize + Send + Sync + 'static,
    {
        let group = K::group(&()).into_owned();
        let plural = K::plural(&()).into_owned();
        let restricted = quota::matching_resources(hard, &group, &plural);
        if restricted.is_empty() {
            return;
        }
        let scoped = rq.spec.as_ref().is_some_and(|s| {
            s.scopes.as_ref().is_some_and(|v| !v.is_empty()) || s.scope_selector.is_some()
        });
        let now = chrono::Utc::now();
        for obj in informer.list_namespace(ns) {
            let value = match serde_json::to_value(obj.as_ref()) {
                Ok(v) => v,
                Err(_) => continue,
            };
            if scoped && !quota::scopes_match(rq, &group, &plural, &value) {
                continue;
            }
            let u = quota::usage(&group, &plural, &value, now);
            let masked: ResourceList = u
                .into_iter()
                .filter(|(k, _)| restricted.contains(&k))
                .collect();
            quota::add(used, &masked);
        }
    }

    /// `count/<plural>.<group>` of a kind without an informer: a metadata list.
    async fn count_generic(&self, name: &str, ns: &str) -> Result<Option<i64>> {
        let Some(rest) = name.strip_prefix("count/") else {
            return Ok(None);
        };
        let (plural, group) = rest.split_once('.').unwrap_or((rest, ""));
        let served = self.catalog.resources().await?;
        let Some(s) = served
            .iter()
            .find(|s| s.namespaced && s.resource.plural == plural && s.resource.group == group)
        else {
            return Ok(None);
        };
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &s.resource);
        let list = api
            .list_metadata(&ListParams::default())
            .await
            .map_err(|e| Error::api("list", format!("{rest} in {ns}"), e))?;
        Ok(Some(list.items.len() as i64))
    }

    async fn sync(&self, key: &str) -> Result<()> {
        let Some(rq) = self.quotas.get_key(key) else {
            return Ok(());
        };
        if rq.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let ns = rq.namespace().unwrap_or_default();
        let hard = parse(rq.spec.as_ref().and_then(|s| s.hard.as_ref()));
        let mut used = ResourceList::new();
        self.add_usage(&self.pods, &rq, &hard, &ns, &mut used);
        self.add_usage(&self.services, &rq, &hard, &ns, &mut used);
        self.add_usage(&self.configmaps, &rq, &hard, &ns, &mut used);
        self.add_usage(&self.secrets, &rq, &hard, &ns, &mut used);
        self.add_usage(&self.claims, &rq, &hard, &ns, &mut used);
        self.add_usage(&self.rcs, &rq, &hard, &ns, &mut used);
        self.add_usage(&self.quotas, &rq, &hard, &ns, &mut used);
        for name in hard.keys() {
            if used.contains_key(name) || !name.starts_with("count/") {
                continue;
            }
            if let Some(n) = self.count_generic(name, &ns).await? {
                used.insert(name.clone(), Quantity::new(n, Format::DecimalSI));
            }
        }
        // Every hard resource has a usage, zero when nothing uses it (admission refuses
        // objects while a tracked resource has none).
        for (name, h) in &hard {
            used.entry(name.clone())
                .or_insert_with(|| Quantity::zero(h.format()));
        }
        used.retain(|k, _| hard.contains_key(k));
        let status = rq.status.clone().unwrap_or_default();
        if parse(status.hard.as_ref()) == hard && parse(status.used.as_ref()) == used {
            return Ok(());
        }
        let mut new = (*rq).clone();
        let st = new.status.get_or_insert_with(Default::default);
        st.hard = Some(api_list(&hard));
        st.used = Some(api_list(&used));
        let api: Api<ResourceQuota> = Api::namespaced(self.client.clone(), &ns);
        match api
            .replace_status(&rq.name_any(), &PostParams::default(), &new)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = Error::api("update status of", format!("resourcequota {key}"), e);
                if e.is_not_found() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}
