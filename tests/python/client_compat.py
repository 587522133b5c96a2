#!/usr/bin/env python3
"""The official Python client (`kubernetes` on PyPI) against a bosun API server.

Usage: client_compat.py KUBECONFIG

Runs CRUD, patches (strategic, merge, JSON), optimistic-concurrency replaces, error Status
bodies, label/field selectors and a watch through the generated client exactly as an
application would, and exits non-zero with a message naming the step and the mismatch on
the first difference from upstream Kubernetes. Crates/bosun-testkit/tests/python_client.rs
runs it against an in-process server.
"""

import json
import os
import sys
import threading
import traceback

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

NS = os.environ.get("BOSUN_PY_NS", "pyclient")
STEP = "start"
# Failures of steps that later steps do not depend on: reported together at the end.
SOFT_FAILURES = []


class Mismatch(Exception):
    pass


def step(name):
    global STEP
    STEP = name
    print(f"--- {name}", flush=True)


def check(cond, msg):
    if not cond:
        raise Mismatch(msg)


def expect_api_error(fn, status, reason):
    """Calls fn, which must raise ApiException with `status`; returns the decoded Status."""
    try:
        fn()
    except ApiException as e:
        check(e.status == status, f"expected HTTP {status}, got {e.status}: {e.body}")
        try:
            body = json.loads(e.body)
        except (TypeError, ValueError):
            raise Mismatch(f"error body is not JSON: {e.body!r}")
        check(body.get("kind") == "Status", f"error body is not a Status: {body}")
        check(body.get("apiVersion") == "v1", f"Status without apiVersion v1: {body}")
        check(body.get("status") == "Failure", f"Status.status is not Failure: {body}")
        check(body.get("code") == status, f"Status.code is not {status}: {body}")
        check(body.get("reason") == reason, f"Status.reason is not {reason}: {body}")
        return body
    raise Mismatch(f"expected ApiException {status} {reason}, the call succeeded")


def soft(name, fn):
    """Runs an independent step, recording its failure instead of stopping the run."""
    step(name)
    try:
        fn()
    except Mismatch as e:
        SOFT_FAILURES.append(f"MISMATCH in step '{name}': {e}")
    except ApiException as e:
        SOFT_FAILURES.append(f"UNEXPECTED API ERROR in step '{name}': HTTP {e.status} {e.reason}\n{e.body}")


def create_without_type_meta(v1):
    # Python code commonly builds models without api_version/kind; upstream's decoder takes
    # both from the URL (the JSON serializer's defaulting to the handler's GVK).
    obj = v1.create_namespaced_pod(
        NS,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="nokind"),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
        ),
    )
    check(obj.kind == "Pod" and obj.api_version == "v1", f"created without kind: {obj.kind} {obj.api_version}")
    v1.delete_namespaced_pod("nokind", NS)


def pod_body(name, labels=None, image="busybox"):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": "c", "image": image, "command": ["sleep", "3600"]}]},
    }


def main(kubeconfig):
    config.load_kube_config(config_file=kubeconfig)
    v1 = client.CoreV1Api()
    apps = client.AppsV1Api()

    step("list namespaces")
    nss = v1.list_namespace()
    names = {n.metadata.name for n in nss.items}
    check({"default", "kube-system"} <= names, f"namespaces listed: {sorted(names)}")
    check(nss.metadata.resource_version, "namespace list has no resourceVersion")

    step("create namespace")
    ns = v1.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    check(ns.metadata.name == NS, f"created namespace name {ns.metadata.name}")
    check(ns.metadata.uid, "created namespace has no uid")
    check(ns.status.phase == "Active", f"new namespace phase {ns.status.phase}")

    step("create pod (typed model)")
    typed = client.V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=client.V1ObjectMeta(name="db", labels={"app": "mysql", "tier": "db"}),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="db",
                    image="mysql",
                    resources=client.V1ResourceRequirements(
                        requests={"memory": "64Mi", "cpu": "250m"},
                        limits={"memory": "128Mi", "cpu": "500m"},
                    ),
                )
            ]
        ),
    )
    pod = v1.create_namespaced_pod(NS, typed)
    check(pod.metadata.namespace == NS, f"pod namespace {pod.metadata.namespace}")
    check(pod.metadata.resource_version, "created pod has no resourceVersion")
    check(pod.metadata.creation_timestamp is not None, "created pod has no creationTimestamp")
    check(pod.status.phase == "Pending", f"new pod phase {pod.status.phase}")
    c = pod.spec.containers[0]
    check(c.resources.requests["cpu"] == "250m", f"requests {c.resources.requests}")
    check(c.termination_message_path == "/dev/termination-log", "container defaults not applied")
    check(pod.spec.restart_policy == "Always", f"restartPolicy {pod.spec.restart_policy}")

    soft("create pod without apiVersion/kind (defaulted from the URL)", lambda: create_without_type_meta(v1))

    step("create pod (dict)")
    v1.create_namespaced_pod(NS, pod_body("web", {"app": "myweb", "tier": "frontend"}))

    step("create service (NodePort)")
    svc = v1.create_namespaced_service(
        NS,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "myweb"},
            "spec": {
                "type": "NodePort",
                "ports": [{"port": 8080, "nodePort": 30001}],
                "selector": {"app": "myweb"},
            },
        },
    )
    check(svc.spec.type == "NodePort", f"service type {svc.spec.type}")
    check(svc.spec.ports[0].node_port == 30001, f"nodePort {svc.spec.ports[0].node_port}")
    check(svc.spec.ports[0].protocol == "TCP", f"port protocol {svc.spec.ports[0].protocol}")
    check(str(svc.spec.ports[0].target_port) == "8080", f"targetPort {svc.spec.ports[0].target_port}")
    check(svc.spec.cluster_ip and svc.spec.cluster_ip != "None", f"clusterIP {svc.spec.cluster_ip}")
    check(svc.spec.cluster_ips == [svc.spec.cluster_ip], f"clusterIPs {svc.spec.cluster_ips}")

    step("create replication controller")
    rc = v1.create_namespaced_replication_controller(
        NS,
        {
            "apiVersion": "v1",
            "kind": "ReplicationController",
            "metadata": {"name": "myweb"},
            "spec": {
                "replicas": 5,
                "selector": {"app": "myweb"},
                "template": {
                    "metadata": {"labels": {"app": "myweb"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "myweb",
                                "image": "kubeguide/tomcat-app:v1",
                                "ports": [{"containerPort": 8080}],
                                "env": [
                                    {"name": "MYSQL_SERVICE_HOST", "value": "mysql"},
                                    {"name": "MYSQL_SERVICE_PORT", "value": "3306"},
                                ],
                            }
                        ]
                    },
                },
            },
        },
    )
    check(rc.spec.replicas == 5, f"rc replicas {rc.spec.replicas}")
    check(rc.metadata.labels == {"app": "myweb"}, f"rc labels defaulted from template: {rc.metadata.labels}")

    step("create deployment (AppsV1Api)")
    dep = apps.create_namespaced_deployment(
        NS,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "frontend"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"tier": "frontend"}},
                "template": {
                    "metadata": {"labels": {"app": "app-demo", "tier": "frontend"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "tomcat-demo",
                                "image": "tomcat",
                                "imagePullPolicy": "IfNotPresent",
                                "ports": [{"containerPort": 8080}],
                            }
                        ]
                    },
                },
            },
        },
    )
    check(dep.metadata.generation == 1, f"deployment generation {dep.metadata.generation}")
    check(dep.spec.strategy.type == "RollingUpdate", f"deployment strategy {dep.spec.strategy}")
    check(dep.spec.revision_history_limit == 10, f"revisionHistoryLimit {dep.spec.revision_history_limit}")

    step("read")
    got = v1.read_namespaced_pod("db", NS)
    check(got.metadata.uid == pod.metadata.uid, "read pod has another uid")
    check(got.metadata.resource_version == pod.metadata.resource_version, "read rv differs from create rv")
    got_dep = apps.read_namespaced_deployment("frontend", NS)
    check(got_dep.metadata.uid == dep.metadata.uid, "read deployment has another uid")

    step("patch pod (strategic merge: containers merged by name)")
    patched = v1.patch_namespaced_pod(
        "db",
        NS,
        {"metadata": {"labels": {"patched": "strategic"}}, "spec": {"containers": [{"name": "db", "image": "mysql:8"}]}},
    )
    check(patched.metadata.labels.get("patched") == "strategic", f"labels {patched.metadata.labels}")
    check(patched.metadata.labels.get("app") == "mysql", "strategic patch dropped an existing label")
    check(len(patched.spec.containers) == 1, f"containers {len(patched.spec.containers)}")
    check(patched.spec.containers[0].image == "mysql:8", f"image {patched.spec.containers[0].image}")
    check(
        patched.spec.containers[0].resources.limits == {"memory": "128Mi", "cpu": "500m"},
        f"strategic patch lost the container's other fields: {patched.spec.containers[0].resources}",
    )
    check(int(patched.metadata.resource_version) > int(pod.metadata.resource_version), "rv did not advance")

    step("patch deployment (strategic adds a container by name)")
    sp = apps.patch_namespaced_deployment(
        "frontend", NS, {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}}}}
    )
    names = [c.name for c in sp.spec.template.spec.containers]
    check(sorted(names) == ["sidecar", "tomcat-demo"], f"containers after strategic patch: {names}")
    check(sp.metadata.generation == 2, f"generation after a spec change {sp.metadata.generation}")

    step("patch deployment (merge patch replaces the list)")
    mp = apps.patch_namespaced_deployment(
        "frontend",
        NS,
        {"metadata": {"labels": {"merged": "yes"}}, "spec": {"template": {"spec": {"containers": [{"name": "only", "image": "nginx"}]}}}},
        _content_type="application/merge-patch+json",
    )
    names = [c.name for c in mp.spec.template.spec.containers]
    check(names == ["only"], f"containers after merge patch: {names}")
    check(mp.metadata.labels == {"merged": "yes"}, f"labels after merge patch {mp.metadata.labels}")
    check(mp.spec.template.spec.containers[0].termination_message_policy == "File", "defaults not applied after patch")

    step("patch pod (merge patch removes a label with null)")
    mpod = v1.patch_namespaced_pod(
        "db", NS, {"metadata": {"labels": {"patched": None, "merge": "1"}}}, _content_type="application/merge-patch+json"
    )
    check(mpod.metadata.labels == {"app": "mysql", "tier": "db", "merge": "1"}, f"labels {mpod.metadata.labels}")

    step("patch pod (JSON patch)")
    jp = v1.patch_namespaced_pod(
        "db", NS, [{"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}}, {"op": "test", "path": "/spec/containers/0/name", "value": "db"}]
    )
    check(jp.metadata.annotations == {"a": "b"}, f"annotations {jp.metadata.annotations}")
    expect_api_error(
        lambda: v1.patch_namespaced_pod("db", NS, [{"op": "test", "path": "/spec/containers/0/name", "value": "nope"}]),
        422,
        "Invalid",
    )

    step("replace with the read resourceVersion")
    cur = v1.read_namespaced_pod("db", NS)
    stale_rv = cur.metadata.resource_version
    cur.metadata.labels["replaced"] = "1"
    rep = v1.replace_namespaced_pod("db", NS, cur)
    check(rep.metadata.labels.get("replaced") == "1", f"labels after replace {rep.metadata.labels}")
    check(rep.metadata.resource_version != stale_rv, "replace did not change the resourceVersion")

    step("replace with a stale resourceVersion -> 409")
    cur.metadata.resource_version = stale_rv
    cur.metadata.labels["replaced"] = "2"
    st = expect_api_error(lambda: v1.replace_namespaced_pod("db", NS, cur), 409, "Conflict")
    check("the object has been modified" in st.get("message", ""), f"conflict message: {st.get('message')}")
    check(st.get("details", {}).get("name") == "db", f"conflict details {st.get('details')}")
    check(st.get("details", {}).get("kind") == "pods", f"conflict details kind {st.get('details')}")

    step("deployment replace with stale resourceVersion -> 409")
    d = apps.read_namespaced_deployment("frontend", NS)
    d.metadata.resource_version = dep.metadata.resource_version
    expect_api_error(lambda: apps.replace_namespaced_deployment("frontend", NS, d), 409, "Conflict")

    step("get a missing object -> 404 NotFound")
    st = expect_api_error(lambda: v1.read_namespaced_pod("missing", NS), 404, "NotFound")
    check(st.get("message") == 'pods "missing" not found', f"not-found message: {st.get('message')}")
    check(st.get("details") == {"name": "missing", "kind": "pods"}, f"details {st.get('details')}")
    st = expect_api_error(lambda: apps.read_namespaced_deployment("missing", NS), 404, "NotFound")
    check(st.get("details", {}).get("group") == "apps", f"deployment not-found details {st.get('details')}")

    step("already exists -> 409 AlreadyExists")
    st = expect_api_error(lambda: v1.create_namespaced_pod(NS, pod_body("web")), 409, "AlreadyExists")
    check(st.get("message") == 'pods "web" already exists', f"already-exists message {st.get('message')}")

    step("invalid object -> 422 Invalid with causes")
    bad = pod_body("bad")
    del bad["spec"]["containers"][0]["image"]
    st = expect_api_error(lambda: v1.create_namespaced_pod(NS, bad), 422, "Invalid")
    causes = st.get("details", {}).get("causes", [])
    fields = [c.get("field") for c in causes]
    check("spec.containers[0].image" in fields, f"causes do not name spec.containers[0].image: {causes}")
    cause = causes[fields.index("spec.containers[0].image")]
    check(cause.get("reason") == "FieldValueRequired", f"cause reason {cause}")
    check(
        st.get("message", "").startswith('Pod "bad" is invalid: spec.containers[0].image: Required value'),
        f"invalid message: {st.get('message')}",
    )
    bad_dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "bad"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "c"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
        },
    }
    st = expect_api_error(lambda: apps.create_namespaced_deployment(NS, bad_dep), 422, "Invalid")
    fields = [c.get("field") for c in st.get("details", {}).get("causes", [])]
    check("spec.template.metadata.labels" in fields, f"deployment selector mismatch causes: {fields}")

    step("list with label_selector")
    for i, (app, tier) in enumerate([("a", "x"), ("a", "y"), ("b", "x")]):
        v1.create_namespaced_pod(NS, pod_body(f"sel{i}", {"app": app, "tier": tier, "sel": "1"}))

    def names_of(lst):
        return sorted(p.metadata.name for p in lst.items)

    got = names_of(v1.list_namespaced_pod(NS, label_selector="sel=1,app=a"))
    check(got == ["sel0", "sel1"], f"app=a: {got}")
    got = names_of(v1.list_namespaced_pod(NS, label_selector="sel,app in (a,b),tier!=y"))
    check(got == ["sel0", "sel2"], f"set-based selector: {got}")
    got = names_of(v1.list_namespaced_pod(NS, label_selector="!sel"))
    check(got == ["db", "web"], f"!sel: {got}")
    expect_api_error(lambda: v1.list_namespaced_pod(NS, label_selector="app in (a"), 400, "BadRequest")

    step("list with field_selector")
    got = names_of(v1.list_namespaced_pod(NS, field_selector="metadata.name=sel1"))
    check(got == ["sel1"], f"metadata.name=sel1: {got}")
    got = names_of(v1.list_pod_for_all_namespaces(field_selector=f"metadata.namespace={NS},metadata.name!=web", label_selector="sel"))
    check(got == ["sel0", "sel1", "sel2"], f"all namespaces with field+label selector: {got}")
    got = names_of(v1.list_namespaced_pod(NS, field_selector="status.phase=Pending,spec.nodeName="))
    check("sel0" in got and "db" in got, f"status.phase=Pending,spec.nodeName=: {got}")
    expect_api_error(lambda: v1.list_namespaced_pod(NS, field_selector="spec.bogus=1"), 400, "BadRequest")

    step("list with limit and continue")
    first = v1.list_namespaced_pod(NS, limit=2)
    check(len(first.items) == 2, f"limit=2 returned {len(first.items)}")
    token = first.metadata.var_continue
    check(token, "limit=2 of 5 pods gave no continue token")
    rest = v1.list_namespaced_pod(NS, limit=10, _continue=token)
    check(not rest.metadata.var_continue, f"last page has a continue token: {rest.metadata}")
    all_names = sorted([p.metadata.name for p in first.items] + [p.metadata.name for p in rest.items])
    check(all_names == ["db", "sel0", "sel1", "sel2", "web"], f"paged list {all_names}")

    step("watch sees ADDED, MODIFIED, DELETED")
    start_rv = v1.list_namespaced_pod(NS).metadata.resource_version
    seen = []
    errors = []
    w = watch.Watch()

    def run_watch():
        try:
            for ev in w.stream(v1.list_namespaced_pod, NS, resource_version=start_rv, timeout_seconds=60):
                obj = ev["object"]
                if obj.metadata.name != "watched":
                    continue
                seen.append((ev["type"], obj.metadata.labels.get("n"), obj.metadata.resource_version))
                if ev["type"] == "DELETED":
                    w.stop()
                    return
        except Exception as e:  # surfaced by the main thread
            errors.append(repr(e))

    t = threading.Thread(target=run_watch, daemon=True)
    t.start()
    v1.create_namespaced_pod(NS, pod_body("watched", {"n": "0"}))
    v1.patch_namespaced_pod("watched", NS, {"metadata": {"labels": {"n": "1"}}})
    v1.patch_namespaced_pod("watched", NS, {"metadata": {"labels": {"n": "2"}}})
    v1.delete_namespaced_pod("watched", NS)
    t.join(90)
    check(not t.is_alive(), f"watch still running after the pod was deleted; saw {seen}")
    check(not errors, f"watch raised: {errors}")
    types = [s[0] for s in seen]
    check(types == ["ADDED", "MODIFIED", "MODIFIED", "DELETED"], f"watch events {seen}")
    check([s[1] for s in seen[:3]] == ["0", "1", "2"], f"watch object states {seen}")
    rvs = [int(s[2]) for s in seen]
    check(rvs == sorted(rvs) and len(set(rvs[:3])) == 3, f"watch resourceVersions not increasing: {rvs}")

    step("watch with timeout_seconds ends by itself")
    done = []

    def quiet_watch():
        try:
            for ev in watch.Watch().stream(v1.list_namespaced_service, NS, timeout_seconds=2):
                done.append(ev["type"])
            done.append("END")
        except Exception as e:
            done.append(repr(e))

    t = threading.Thread(target=quiet_watch, daemon=True)
    t.start()
    t.join(60)
    check(not t.is_alive(), "a watch with timeout_seconds=2 was still open after 60s")
    check(done == ["ADDED", "END"], f"quiet watch: {done}")

    step("delete")
    v1.delete_namespaced_pod("web", NS)
    expect_api_error(lambda: v1.read_namespaced_pod("web", NS), 404, "NotFound")
    v1.delete_namespaced_service("myweb", NS)
    expect_api_error(lambda: v1.read_namespaced_service("myweb", NS), 404, "NotFound")
    v1.delete_namespaced_replication_controller("myweb", NS)
    apps.delete_namespaced_deployment("frontend", NS, propagation_policy="Background")
    expect_api_error(lambda: apps.read_namespaced_deployment("frontend", NS), 404, "NotFound")
    st = expect_api_error(lambda: v1.delete_namespaced_pod("web", NS), 404, "NotFound")
    v1.delete_collection_namespaced_pod(NS, label_selector="sel=1")
    got = names_of(v1.list_namespaced_pod(NS))
    check(got == ["db"], f"after deletecollection sel=1: {got}")
    v1.delete_namespace(NS)
    try:
        ns = v1.read_namespace(NS)
        check(ns.status.phase == "Terminating", f"deleted namespace phase {ns.status.phase}")
        check(ns.metadata.deletion_timestamp is not None, "deleted namespace has no deletionTimestamp")
    except ApiException as e:
        check(e.status == 404, f"reading a deleted namespace: {e.status} {e.body}")
    if SOFT_FAILURES:
        step("summary of independent steps")
        raise Mismatch("\n".join(SOFT_FAILURES))
    print("python client: all checks passed", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: client_compat.py KUBECONFIG")
    try:
        main(sys.argv[1])
    except Mismatch as e:
        print(f"MISMATCH in step '{STEP}': {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    except ApiException as e:
        print(f"UNEXPECTED API ERROR in step '{STEP}': HTTP {e.status} {e.reason}\n{e.body}", file=sys.stderr, flush=True)
        sys.exit(1)
    except Exception:
        print(f"UNEXPECTED EXCEPTION in step '{STEP}':", file=sys.stderr, flush=True)
        traceback.print_exc()
        sys.exit(1)
