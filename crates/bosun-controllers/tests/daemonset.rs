//! The DaemonSet controller against a real API server, the scheduler and hollow nodes:
//! one pod per eligible node, a pod on a node that joins, node selectors and taints, a
//! rolling update, status and ControllerRevisions.

mod cluster;

use std::collections::BTreeMap;

use bosun_hollow::NodeTemplate;
use cluster::*;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

fn daemonset(name: &str, extra_spec: serde_json::Value) -> anyhow::Result<DaemonSet> {
    let mut pod_spec = json!({"containers": [{"name": "agent", "image": "agent:v1"}]});
    if let (Some(dst), Some(src)) = (pod_spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in src {
            dst.insert(k.clone(), v.clone());
        }
    }
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
    }))?)
}

/// Running pods of the DaemonSet `app`, by node.
async fn running_by_node(client: &Client, app: &str) -> anyhow::Result<BTreeMap<String, Pod>> {
    Ok(pods(client, "default", &format!("app={app}"))
        .await?
        .into_iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        })
        .filter_map(|p| Some((p.spec.as_ref()?.node_name.clone()?, p)))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pod_per_node_and_a_joining_node_gets_one() -> anyhow::Result<()> {
    let c = cluster(2, &["daemonset"]).await?;
    let dss: Api<DaemonSet> = Api::namespaced(c.client.clone(), "default");
    let ds = dss
        .create(&PostParams::default(), &daemonset("agent", json!({}))?)
        .await?;
    let uid = ds.uid().unwrap_or_default();
    let placed = wait_for(60, "a running pod on each node", || async {
        let m = running_by_node(&c.client, "agent").await?;
        Ok((m.len() == 2).then_some(m))
    })
    .await?;
    assert_eq!(
        placed.keys().cloned().collect::<Vec<_>>(),
        ["hollow-node-0", "hollow-node-1"]
    );
    for (node, p) in &placed {
        // Pinned by node affinity (the scheduler bound it), with the daemon tolerations.
        let term = p
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|r| r.node_selector_terms.clone())
            .unwrap_or_default();
        let fields = term[0].match_fields.clone().unwrap_or_default();
        assert_eq!(fields[0].values.as_deref(), Some(&[node.clone()][..]));
        let tols = p
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        assert!(tols
            .iter()
            .any(|t| t.key.as_deref() == Some("node.kubernetes.io/unschedulable")));
        assert!(p.owner_references().iter().any(|r| r.uid == uid));
        assert!(p.labels().contains_key("controller-revision-hash"));
    }
    wait_for(30, "status 2/2", || async {
        let st = dss.get("agent").await?.status.unwrap_or_default();
        Ok((st.desired_number_scheduled == 2
            && st.current_number_scheduled == 2
            && st.number_ready == 2
            && st.number_available == Some(2)
            && st.updated_number_scheduled == Some(2)
            && st.number_misscheduled == 0
            && st.observed_generation == Some(1))
        .then_some(()))
    })
    .await?;

    // A machine joins: it gets its daemon pod.
    c.hollow.add_node("joiner", NodeTemplate::default()).await?;
    wait_for(60, "a pod on the joining node", || async {
        let m = running_by_node(&c.client, "agent").await?;
        Ok((m.len() == 3 && m.contains_key("joiner")).then_some(()))
    })
    .await?;
    wait_for(30, "status 3/3", || async {
        let st = dss.get("agent").await?.status.unwrap_or_default();
        Ok((st.desired_number_scheduled == 3 && st.number_ready == 3).then_some(()))
    })
    .await?;

    // Rolling update: every pod replaced by one of the new template, one node at a time.
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "agent", "image": "agent:v2"}]}}}});
    dss.patch("agent", &PatchParams::default(), &Patch::Strategic(&patch))
        .await?;
    wait_for(90, "all pods at v2", || async {
        let m = running_by_node(&c.client, "agent").await?;
        let all = pods(&c.client, "default", "app=agent").await?;
        let v2 = m
            .values()
            .filter(|p| {
                p.spec
                    .as_ref()
                    .and_then(|s| s.containers[0].image.as_deref())
                    == Some("agent:v2")
            })
            .count();
        Ok((v2 == 3 && all.len() == 3).then_some(()))
    })
    .await?;
    wait_for(30, "status updated 3", || async {
        let st = dss.get("agent").await?.status.unwrap_or_default();
        Ok((st.updated_number_scheduled == Some(3)
            && st.number_available == Some(3)
            && st.observed_generation == Some(2))
        .then_some(()))
    })
    .await?;
    let out = c
        .server
        .kubectl_ok(&["rollout", "status", "daemonset/agent", "--timeout=30s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    // Revisions, where the server serves them (the controller works without).
    let revs: Api<ControllerRevision> = Api::namespaced(c.client.clone(), "default");
    if let Ok(list) = revs.list(&ListParams::default().labels("app=agent")).await {
        let mut numbers: Vec<i64> = list.items.iter().map(|r| r.revision).collect();
        numbers.sort();
        assert_eq!(numbers, [1, 2]);
        let history = c
            .server
            .kubectl_ok(&["rollout", "history", "daemonset/agent"]);
        assert!(history.contains('1') && history.contains('2'), "{history}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_selector_and_taints_choose_the_nodes() -> anyhow::Result<()> {
    let c = cluster(3, &["daemonset"]).await?;
    let nodes: Api<Node> = Api::all(c.client.clone());
    let label = json!({"metadata": {"labels": {"role": "edge"}}});
    for n in ["hollow-node-0", "hollow-node-1"] {
        nodes
            .patch(n, &PatchParams::default(), &Patch::Merge(&label))
            .await?;
    }
    // hollow-node-1 is tainted: no daemon pod without a toleration.
    let taint =
        json!({"spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}});
    nodes
        .patch(
            "hollow-node-1",
            &PatchParams::default(),
            &Patch::Merge(&taint),
        )
        .await?;
    let dss: Api<DaemonSet> = Api::namespaced(c.client.clone(), "default");
    dss.create(
        &PostParams::default(),
        &daemonset("edge", json!({"nodeSelector": {"role": "edge"}}))?,
    )
    .await?;
    wait_for(60, "one edge pod on hollow-node-0", || async {
        let m = running_by_node(&c.client, "edge").await?;
        Ok((m.keys().cloned().collect::<Vec<_>>() == ["hollow-node-0"]).then_some(()))
    })
    .await?;
    let st = wait_for(30, "status", || async {
        let st = dss.get("edge").await?.status.unwrap_or_default();
        Ok((st.number_ready == 1).then_some(st))
    })
    .await?;
    assert_eq!(st.desired_number_scheduled, 1);
    // Labelling the third node brings a pod there; unlabelling the first removes its pod.
    nodes
        .patch(
            "hollow-node-2",
            &PatchParams::default(),
            &Patch::Merge(&label),
        )
        .await?;
    let unlabel = json!({"metadata": {"labels": {"role": null}}});
    nodes
        .patch(
            "hollow-node-0",
            &PatchParams::default(),
            &Patch::Merge(&unlabel),
        )
        .await?;
    wait_for(60, "the edge pod moved to hollow-node-2", || async {
        let all = pods(&c.client, "default", "app=edge").await?;
        let m = running_by_node(&c.client, "edge").await?;
        Ok(
            (m.keys().cloned().collect::<Vec<_>>() == ["hollow-node-2"] && all.len() == 1)
                .then_some(()),
        )
    })
    .await?;
    // A toleration admits the tainted node.
    let tolerate = json!({"spec": {"template": {"spec": {"tolerations": [{"key": "dedicated", "operator": "Exists"}]}}}});
    dss.patch("edge", &PatchParams::default(), &Patch::Merge(&tolerate))
        .await?;
    wait_for(60, "pods on hollow-node-1 and hollow-node-2", || async {
        let m = running_by_node(&c.client, "edge").await?;
        Ok(
            (m.keys().cloned().collect::<Vec<_>>() == ["hollow-node-1", "hollow-node-2"])
                .then_some(()),
        )
    })
    .await?;
    Ok(())
}
