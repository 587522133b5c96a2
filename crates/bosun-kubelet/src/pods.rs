//! The pod manager: watches the pods bound to this node and keeps one worker per pod uid,
//! handing each worker the containers a previous agent left for it; containers and sandboxes
//! of pods that no longer exist are removed once the first list is complete.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::worker::{self, Adopted, Update, LABEL_POD_UID};
use crate::Ctx;

/// Containers on disk grouped by the uid of their pod.
fn containers_by_pod(rt: &bosun_runtime::Runtime) -> Result<HashMap<String, Vec<Adopted>>> {
    let mut out: HashMap<String, Vec<Adopted>> = HashMap::new();
    for st in rt.list()? {
        let Ok(cfg) = rt.config(&st.id) else { continue };
        if let Some(uid) = cfg.labels.get(LABEL_POD_UID).cloned() {
            out.entry(uid).or_default().push((st, cfg));
        }
    }
    Ok(out)
}

pub(crate) async fn run(ctx: Arc<Ctx>) -> Result<()> {
    let rt = ctx.runtime.clone();
    let mut adopted = tokio::task::spawn_blocking(move || containers_by_pod(&rt))
        .await
        .map_err(|e| Error::Config(format!("listing containers: {e}")))??;
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let wc = watcher::Config::default().fields(&format!("spec.nodeName={}", ctx.cfg.node_name));
    let mut stream = watcher::watcher(api, wc).default_backoff().boxed();
    let mut workers: HashMap<String, watch::Sender<Update>> = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut listed: HashSet<String> = HashSet::new();
    let mut first_list_done = false;
    let (initial, mut static_rx) = crate::static_pods::start(ctx.clone());
    let mut statics: HashSet<String> = HashSet::new();
    crate::static_pods::reconcile(
        &ctx,
        initial,
        &mut statics,
        &mut workers,
        &mut adopted,
        &mut tasks,
    );
    loop {
        let next = tokio::select! {
            n = stream.try_next() => n,
            Some(set) = static_rx.recv() => {
                crate::static_pods::reconcile(
                    &ctx,
                    set,
                    &mut statics,
                    &mut workers,
                    &mut adopted,
                    &mut tasks,
                );
                continue;
            }
        };
        let seen = worker::Seen::now();
        let ev = match next {
            Ok(Some(ev)) => ev,
            Ok(None) => return Err(Error::Config("the pod watch ended".into())),
            Err(e) => {
                tracing::warn!(error = %e, "pod watch");
                continue;
            }
        };
        while tasks.try_join_next().is_some() {}
        match ev {
            Event::Init => listed.clear(),
            Event::InitApply(pod) | Event::Apply(pod) => {
                if crate::static_pods::is_mirror(&pod) {
                    continue;
                }
                let Some(uid) = pod.metadata.uid.clone() else {
                    continue;
                };
                listed.insert(uid.clone());
                let pod = Arc::new(pod);
                match workers.get(&uid) {
                    Some(tx) => {
                        let _ = tx.send(Update::Pod(pod));
                    }
                    None => {
                        let (tx, rx) = watch::channel(Update::Pod(pod.clone()));
                        let mine = adopted.remove(&uid).unwrap_or_default();
                        tasks.spawn(worker::run(ctx.clone(), pod, mine, rx, seen));
                        workers.insert(uid, tx);
                    }
                }
            }
            Event::InitDone => {
                let gone: Vec<String> = workers
                    .keys()
                    .filter(|u| !listed.contains(*u) && !statics.contains(*u))
                    .cloned()
                    .collect();
                for uid in gone {
                    if let Some(tx) = workers.remove(&uid) {
                        let _ = tx.send(Update::Gone);
                    }
                }
                if !first_list_done {
                    first_list_done = true;
                    let orphans: Vec<(String, Vec<Adopted>)> = adopted.drain().collect();
                    let rt = ctx.runtime.clone();
                    let net = ctx.net.clone();
                    let uids: Vec<String> = orphans.iter().map(|(u, _)| u.clone()).collect();
                    tasks.spawn(async move {
                        if let Some(net) = net {
                            for uid in &uids {
                                net.teardown_pod(uid).await;
                            }
                        }
                        let _ = tokio::task::spawn_blocking(move || {
                            for (uid, cs) in orphans {
                                tracing::info!(pod_uid = %uid, "removing containers of a pod that no longer exists");
                                for (st, _) in cs {
                                    let _ = rt.delete(&st.id, true);
                                }
                                let _ = rt.remove_sandbox(&uid);
                            }
                        })
                        .await;
                    });
                }
            }
            Event::Delete(pod) => {
                if let Some(uid) = pod.metadata.uid.as_deref() {
                    if let Some(tx) = workers.remove(uid) {
                        let _ = tx.send(Update::Gone);
                    }
                }
            }
        }
    }
}
