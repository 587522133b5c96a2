//! kubectl's Pod describer and the parts other describers borrow from it: containers,
//! volumes, probes, the pod template, the QoS class.

use serde_json::Value;

use super::fmt::{
    annotations_multiline, arr, controlled_by, go_bool, go_list, i, int_or_string,
    labels_multiline, parse_qty, qty, resource_list, rfc1123z, s, since, string_map,
    tolerations_multiline, w, Out,
};

/// `describePod` (events appended by the caller).
pub(crate) fn describe_pod(o: &mut Out, pod: &Value) {
    w!(o, 0, "Name:\t{}\n", s(pod, "/metadata/name"));
    w!(o, 0, "Namespace:\t{}\n", s(pod, "/metadata/namespace"));
    if let Some(p) = pod.pointer("/spec/priority").and_then(Value::as_i64) {
        w!(o, 0, "Priority:\t{p}\n");
    }
    let pcn = s(pod, "/spec/priorityClassName");
    if !pcn.is_empty() {
        w!(o, 0, "Priority Class Name:\t{pcn}\n");
    }
    let rcn = s(pod, "/spec/runtimeClassName");
    if !rcn.is_empty() {
        w!(o, 0, "Runtime Class Name:\t{rcn}\n");
    }
    let sa = s(pod, "/spec/serviceAccountName");
    if !sa.is_empty() {
        w!(o, 0, "Service Account:\t{sa}\n");
    }
    let node = s(pod, "/spec/nodeName");
    if node.is_empty() {
        o.w(0, "Node:\t<none>\n");
    } else {
        w!(o, 0, "Node:\t{node}/{}\n", s(pod, "/status/hostIP"));
    }
    if pod.pointer("/status/startTime").is_some() {
        w!(
            o,
            0,
            "Start Time:\t{}\n",
            rfc1123z(s(pod, "/status/startTime"))
        );
    }
    labels_multiline(o, "Labels", &string_map(pod, "/metadata/labels"));
    annotations_multiline(o, "Annotations", &string_map(pod, "/metadata/annotations"));
    let phase = s(pod, "/status/phase");
    let deleting = s(pod, "/metadata/deletionTimestamp");
    if !deleting.is_empty() && phase != "Failed" && phase != "Succeeded" {
        w!(o, 0, "Status:\tTerminating (lasts {})\n", since(deleting));
        w!(
            o,
            0,
            "Termination Grace Period:\t{}s\n",
            i(pod, "/metadata/deletionGracePeriodSeconds")
        );
    } else {
        w!(o, 0, "Status:\t{phase}\n");
    }
    for (key, label) in [("/status/reason", "Reason"), ("/status/message", "Message")] {
        let v = s(pod, key);
        if !v.is_empty() {
            w!(o, 0, "{label}:\t{v}\n");
        }
    }
    if let Some(sp) = pod.pointer("/spec/securityContext/seccompProfile") {
        w!(o, 0, "SeccompProfile:\t{}\n", s(sp, "/type"));
        if s(sp, "/type") == "Localhost" {
            w!(o, 0, "LocalhostProfile:\t{}\n", s(sp, "/localhostProfile"));
        }
    }
    w!(o, 0, "IP:\t{}\n", s(pod, "/status/podIP"));
    let ips = arr(pod, "/status/podIPs");
    if ips.is_empty() {
        o.w(0, "IPs:\t<none>\n");
    } else {
        o.w(0, "IPs:\n");
        for ip in ips {
            w!(o, 1, "IP:\t{}\n", s(ip, "/ip"));
        }
    }
    if let Some(c) = controlled_by(pod) {
        w!(o, 0, "Controlled By:\t{c}\n");
    }
    let nominated = s(pod, "/status/nominatedNodeName");
    if !nominated.is_empty() {
        w!(o, 0, "NominatedNodeName:\t{nominated}\n");
    }
    if let Some(r) = pod.pointer("/spec/resources") {
        o.w(0, "Resources:\n");
        describe_resources(o, r, 1);
    }
    let init = arr(pod, "/spec/initContainers");
    if !init.is_empty() {
        describe_containers(
            o,
            "Init Containers",
            init,
            arr(pod, "/status/initContainerStatuses"),
            Some(pod),
            "",
        );
    }
    describe_containers(
        o,
        "Containers",
        arr(pod, "/spec/containers"),
        arr(pod, "/status/containerStatuses"),
        Some(pod),
        "",
    );
    let eph = arr(pod, "/spec/ephemeralContainers");
    if !eph.is_empty() {
        describe_containers(
            o,
            "Ephemeral Containers",
            eph,
            arr(pod, "/status/ephemeralContainerStatuses"),
            Some(pod),
            "",
        );
    }
    let conditions = arr(pod, "/status/conditions");
    let gates = arr(pod, "/spec/readinessGates");
    if !gates.is_empty() {
        o.w(0, "Readiness Gates:\n  Type\tStatus\n");
        for g in gates {
            let t = s(g, "/conditionType");
            let status = conditions
                .iter()
                .find(|c| s(c, "/type") == t)
                .map(|c| s(c, "/status").to_string())
                .unwrap_or_else(|| "<none>".into());
            w!(o, 1, "{t} \t{status} \n");
        }
    }
    if !conditions.is_empty() {
        o.w(0, "Conditions:\n  Type\tStatus\n");
        for c in conditions {
            w!(o, 1, "{} \t{} \n", s(c, "/type"), s(c, "/status"));
        }
    }
    describe_volumes(o, arr(pod, "/spec/volumes"), "");
    w!(o, 0, "QoS Class:\t{}\n", qos_class(pod));
    labels_multiline(o, "Node-Selectors", &string_map(pod, "/spec/nodeSelector"));
    tolerations_multiline(o, "Tolerations", arr(pod, "/spec/tolerations"));
    describe_topology_spread(o, arr(pod, "/spec/topologySpreadConstraints"), "");
}

fn describe_topology_spread(o: &mut Out, tscs: &[Value], space: &str) {
    if tscs.is_empty() {
        return;
    }
    let mut t: Vec<&Value> = tscs.iter().collect();
    t.sort_by(|a, b| s(a, "/topologyKey").cmp(s(b, "/topologyKey")));
    w!(o, 0, "{space}Topology Spread Constraints:\t");
    for (n, c) in t.iter().enumerate() {
        if n != 0 {
            w!(o, 0, "{space}\t");
        }
        w!(
            o,
            0,
            "{}:{} when max skew {} is exceeded",
            s(c, "/topologyKey"),
            s(c, "/whenUnsatisfiable"),
            i(c, "/maxSkew")
        );
        if let Some(sel) = c.get("labelSelector") {
            w!(
                o,
                0,
                " for selector {}",
                super::fmt::format_label_selector(sel)
            );
        }
        o.w(0, "\n");
    }
}

/// `DescribePodTemplate`.
pub(crate) fn describe_pod_template(o: &mut Out, t: &Value) {
    o.w(0, "Pod Template:\n");
    if t.is_null() {
        o.w(1, "<unset>");
        return;
    }
    labels_multiline(o, "  Labels", &string_map(t, "/metadata/labels"));
    let ann = string_map(t, "/metadata/annotations");
    if !ann.is_empty() {
        annotations_multiline(o, "  Annotations", &ann);
    }
    let sa = s(t, "/spec/serviceAccountName");
    if !sa.is_empty() {
        w!(o, 1, "Service Account:\t{sa}\n");
    }
    let init = arr(t, "/spec/initContainers");
    if !init.is_empty() {
        describe_containers(o, "Init Containers", init, &[], None, "  ");
    }
    describe_containers(o, "Containers", arr(t, "/spec/containers"), &[], None, "  ");
    describe_volumes(o, arr(t, "/spec/volumes"), "  ");
    describe_topology_spread(o, arr(t, "/spec/topologySpreadConstraints"), "  ");
    let pcn = s(t, "/spec/priorityClassName");
    if !pcn.is_empty() {
        w!(o, 1, "Priority Class Name:\t{pcn}\n");
    }
    labels_multiline(o, "  Node-Selectors", &string_map(t, "/spec/nodeSelector"));
    tolerations_multiline(o, "  Tolerations", arr(t, "/spec/tolerations"));
}

fn describe_containers(
    o: &mut Out,
    label: &str,
    containers: &[Value],
    statuses: &[Value],
    pod: Option<&Value>,
    space: &str,
) {
    let none = if containers.is_empty() { " <none>" } else { "" };
    w!(o, 0, "{space}{label}:{none}\n");
    for c in containers {
        let name = s(c, "/name");
        let status = statuses.iter().find(|st| s(st, "/name") == name);
        let indent = if space.is_empty() { "" } else { " " };
        w!(o, 1, "{indent}{name}:\n");
        if let Some(st) = status {
            w!(o, 2, "Container ID:\t{}\n", s(st, "/containerID"));
        }
        w!(o, 2, "Image:\t{}\n", s(c, "/image"));
        if let Some(st) = status {
            w!(o, 2, "Image ID:\t{}\n", s(st, "/imageID"));
        }
        let ports = arr(c, "/ports");
        let port_list = |host: bool| -> String {
            ports
                .iter()
                .map(|p| {
                    let n = if host {
                        i(p, "/hostPort")
                    } else {
                        i(p, "/containerPort")
                    };
                    let mut t = format!("{n}/{}", s(p, "/protocol"));
                    if !s(p, "/name").is_empty() {
                        t.push_str(&format!(" ({})", s(p, "/name")));
                    }
                    t
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let or_none = |x: String| if x.is_empty() { "<none>".into() } else { x };
        let (p, hp) = (port_list(false), port_list(true));
        if p.contains(',') {
            w!(o, 2, "Ports:\t{p}\n");
        } else {
            w!(o, 2, "Port:\t{}\n", or_none(p));
        }
        if hp.contains(',') {
            w!(o, 2, "Host Ports:\t{hp}\n");
        } else {
            w!(o, 2, "Host Port:\t{}\n", or_none(hp));
        }
        if let Some(sp) = c.pointer("/securityContext/seccompProfile") {
            w!(o, 2, "SeccompProfile:\t{}\n", s(sp, "/type"));
            if s(sp, "/type") == "Localhost" {
                w!(o, 3, "LocalhostProfile:\t{}\n", s(sp, "/localhostProfile"));
            }
        }
        for (key, title) in [("/command", "Command"), ("/args", "Args")] {
            let items = arr(c, key);
            if !items.is_empty() {
                w!(o, 2, "{title}:\n");
                for x in items {
                    for line in x.as_str().unwrap_or("").split('\n') {
                        w!(o, 3, "{line}\n");
                    }
                }
            }
        }
        if let Some(st) = status {
            describe_state(o, "State", st.get("state").unwrap_or(&Value::Null));
            if st.pointer("/lastState/terminated").is_some() {
                describe_state(o, "Last State", &st["lastState"]);
            }
            w!(
                o,
                2,
                "Ready:\t{}\n",
                go_bool(st["ready"].as_bool().unwrap_or(false))
            );
            w!(o, 2, "Restart Count:\t{}\n", i(st, "/restartCount"));
        }
        if let Some(r) = c.get("resources") {
            describe_resources(o, r, 2);
        }
        for (key, title) in [
            ("livenessProbe", "Liveness"),
            ("readinessProbe", "Readiness"),
            ("startupProbe", "Startup"),
        ] {
            if let Some(p) = c.get(key) {
                w!(o, 2, "{title}:\t{}\n", describe_probe(p));
            }
        }
        let env_from = arr(c, "/envFrom");
        if !env_from.is_empty() {
            o.w(2, "Environment Variables from:\n");
            for e in env_from {
                let (from, r) = if let Some(r) = e.get("configMapRef") {
                    ("ConfigMap", r)
                } else if let Some(r) = e.get("secretRef") {
                    ("Secret", r)
                } else {
                    ("", &Value::Null)
                };
                let optional = r["optional"].as_bool().unwrap_or(false);
                let prefix = s(e, "/prefix");
                if prefix.is_empty() {
                    w!(o, 3, "{}\t{from}\tOptional: {optional}\n", s(r, "/name"));
                } else {
                    w!(
                        o,
                        3,
                        "{}\t{from} with prefix '{prefix}'\tOptional: {optional}\n",
                        s(r, "/name")
                    );
                }
            }
        }
        describe_env(o, c, pod);
        let mounts = arr(c, "/volumeMounts");
        let none = if mounts.is_empty() { "\t<none>" } else { "" };
        w!(o, 2, "Mounts:{none}\n");
        let mut m: Vec<&Value> = mounts.iter().collect();
        m.sort_by(|a, b| s(a, "/mountPath").cmp(s(b, "/mountPath")));
        for v in m {
            let mut flags = vec![if v["readOnly"].as_bool().unwrap_or(false) {
                "ro".to_string()
            } else {
                "rw".to_string()
            }];
            if !s(v, "/subPath").is_empty() {
                flags.push(format!("path={:?}", s(v, "/subPath")));
            }
            w!(
                o,
                3,
                "{} from {} ({})\n",
                s(v, "/mountPath"),
                s(v, "/name"),
                flags.join(",")
            );
        }
        let devices = arr(c, "/volumeDevices");
        if !devices.is_empty() {
            w!(o, 2, "Devices:{none}\n");
            let mut d: Vec<&Value> = devices.iter().collect();
            d.sort_by(|a, b| s(a, "/devicePath").cmp(s(b, "/devicePath")));
            for v in d {
                w!(o, 3, "{} from {}\n", s(v, "/devicePath"), s(v, "/name"));
            }
        }
    }
}

fn describe_env(o: &mut Out, c: &Value, pod: Option<&Value>) {
    let env = arr(c, "/env");
    let none = if env.is_empty() { "\t<none>" } else { "" };
    w!(o, 2, "Environment:{none}\n");
    for e in env {
        let name = s(e, "/name");
        let Some(from) = e.get("valueFrom") else {
            for (n, line) in s(e, "/value").split('\n').enumerate() {
                if n == 0 {
                    w!(o, 3, "{name}:\t{line}\n");
                } else {
                    w!(o, 3, "\t{line}\n");
                }
            }
            continue;
        };
        if let Some(f) = from.get("fieldRef") {
            let value = pod
                .map(|p| field_value(p, s(f, "/fieldPath")))
                .unwrap_or_default();
            w!(
                o,
                3,
                "{name}:\t{value} ({}:{})\n",
                s(f, "/apiVersion"),
                s(f, "/fieldPath")
            );
        } else if let Some(r) = from.get("resourceFieldRef") {
            let resource = s(r, "/resource");
            let mut value = resource_field_value(c, r);
            if value == "0" && (resource == "limits.cpu" || resource == "limits.memory") {
                value = "node allocatable".into();
            }
            w!(o, 3, "{name}:\t{value} ({resource})\n");
        } else if let Some(r) = from.get("secretKeyRef") {
            w!(
                o,
                3,
                "{name}:\t<set to the key '{}' in secret '{}'>\tOptional: {}\n",
                s(r, "/key"),
                s(r, "/name"),
                r["optional"].as_bool().unwrap_or(false)
            );
        } else if let Some(r) = from.get("configMapKeyRef") {
            w!(
                o,
                3,
                "{name}:\t<set to the key '{}' of config map '{}'>\tOptional: {}\n",
                s(r, "/key"),
                s(r, "/name"),
                r["optional"].as_bool().unwrap_or(false)
            );
        }
    }
}

/// `fieldpath.ExtractFieldPathAsString` for the paths the downward API allows.
fn field_value(pod: &Value, path: &str) -> String {
    let sub = |prefix: &str, map: &str| -> Option<String> {
        let key = path
            .strip_prefix(prefix)?
            .strip_prefix("['")?
            .strip_suffix("']")?;
        Some(
            pod.pointer(map)
                .and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        )
    };
    if let Some(v) = sub("metadata.labels", "/metadata/labels") {
        return v;
    }
    if let Some(v) = sub("metadata.annotations", "/metadata/annotations") {
        return v;
    }
    let p = match path {
        "metadata.name" => "/metadata/name",
        "metadata.namespace" => "/metadata/namespace",
        "metadata.uid" => "/metadata/uid",
        "spec.nodeName" => "/spec/nodeName",
        "spec.serviceAccountName" => "/spec/serviceAccountName",
        "status.hostIP" => "/status/hostIP",
        "status.podIP" => "/status/podIP",
        "metadata.labels" | "metadata.annotations" => {
            let m = string_map(pod, &format!("/{}", path.replace('.', "/")));
            return m
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join("\n");
        }
        "status.podIPs" | "status.hostIPs" => {
            let key = if path == "status.podIPs" {
                "/status/podIPs"
            } else {
                "/status/hostIPs"
            };
            return arr(pod, key)
                .iter()
                .map(|x| s(x, "/ip").to_string())
                .collect::<Vec<_>>()
                .join(",");
        }
        _ => return String::new(),
    };
    s(pod, p).to_string()
}

/// `ExtractContainerResourceValue`: the container's request or limit over the divisor,
/// rounded up.
fn resource_field_value(c: &Value, r: &Value) -> String {
    let resource = s(r, "/resource");
    let Some((kind, name)) = resource.split_once('.') else {
        return String::new();
    };
    let q = parse_qty(c.pointer(&format!("/resources/{kind}/{name}")));
    let divisor = match r.get("divisor") {
        Some(d) => parse_qty(Some(d)),
        None => bosun_api::quantity::Quantity::parse("1").unwrap_or_default(),
    };
    if name == "cpu" {
        let d = divisor.milli_value().max(1);
        let m = q.milli_value();
        return ((m + d - 1) / d).to_string();
    }
    let d = divisor.value().max(1);
    let v = q.value();
    ((v + d - 1) / d).to_string()
}

fn describe_state(o: &mut Out, name: &str, st: &Value) {
    if let Some(r) = st.get("running") {
        w!(o, 2, "{name}:\tRunning\n");
        w!(o, 3, "Started:\t{}\n", rfc1123z(s(r, "/startedAt")));
    } else if let Some(wt) = st.get("waiting") {
        w!(o, 2, "{name}:\tWaiting\n");
        if !s(wt, "/reason").is_empty() {
            w!(o, 3, "Reason:\t{}\n", s(wt, "/reason"));
        }
    } else if let Some(t) = st.get("terminated") {
        w!(o, 2, "{name}:\tTerminated\n");
        if !s(t, "/reason").is_empty() {
            w!(o, 3, "Reason:\t{}\n", s(t, "/reason"));
        }
        if !s(t, "/message").is_empty() {
            w!(o, 3, "Message:\t{}\n", s(t, "/message"));
        }
        w!(o, 3, "Exit Code:\t{}\n", i(t, "/exitCode"));
        if i(t, "/signal") > 0 {
            w!(o, 3, "Signal:\t{}\n", i(t, "/signal"));
        }
        w!(o, 3, "Started:\t{}\n", rfc1123z(s(t, "/startedAt")));
        w!(o, 3, "Finished:\t{}\n", rfc1123z(s(t, "/finishedAt")));
    } else {
        w!(o, 2, "{name}:\tWaiting\n");
    }
}

fn describe_resources(o: &mut Out, r: &Value, level: usize) {
    for (key, title) in [("/limits", "Limits"), ("/requests", "Requests")] {
        let list = resource_list(r, key);
        if !list.is_empty() {
            w!(o, level, "{title}:\n");
        }
        for (name, q) in list {
            w!(o, level + 1, "{name}:\t{q}\n");
        }
    }
}

/// `DescribeProbe`.
pub(crate) fn describe_probe(p: &Value) -> String {
    let attrs = format!(
        "delay={}s timeout={}s period={}s #success={} #failure={}",
        i(p, "/initialDelaySeconds"),
        i(p, "/timeoutSeconds"),
        i(p, "/periodSeconds"),
        i(p, "/successThreshold"),
        i(p, "/failureThreshold")
    );
    if let Some(e) = p.get("exec") {
        return format!("exec {} {attrs}", go_list(arr(e, "/command")));
    }
    if let Some(h) = p.get("httpGet") {
        let port = int_or_string(h.get("port"));
        let host = s(h, "/host");
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let mut url = String::new();
        let scheme = s(h, "/scheme").to_lowercase();
        if !scheme.is_empty() {
            url.push_str(&scheme);
            url.push(':');
        }
        let authority = if port.is_empty() {
            host
        } else {
            format!("{host}:{port}")
        };
        if !authority.is_empty() || !scheme.is_empty() {
            url.push_str("//");
            url.push_str(&authority);
        }
        let path = s(h, "/path");
        if !path.is_empty() && !path.starts_with('/') && !authority.is_empty() {
            url.push('/');
        }
        url.push_str(path);
        return format!("http-get {url} {attrs}");
    }
    if let Some(t) = p.get("tcpSocket") {
        return format!(
            "tcp-socket {}:{} {attrs}",
            s(t, "/host"),
            int_or_string(t.get("port"))
        );
    }
    if let Some(g) = p.get("grpc") {
        return format!("grpc <pod>:{} {} {attrs}", i(g, "/port"), s(g, "/service"));
    }
    format!("unknown {attrs}")
}

/// `describeVolumes` for the volume kinds bosun runs (and the common cloud-free ones).
pub(crate) fn describe_volumes(o: &mut Out, volumes: &[Value], space: &str) {
    if volumes.is_empty() {
        w!(o, 0, "{space}Volumes:\t<none>\n");
        return;
    }
    w!(o, 0, "{space}Volumes:\n");
    let indent = if space.is_empty() { "" } else { " " };
    for v in volumes {
        w!(o, 1, "{indent}{}:\n", s(v, "/name"));
        describe_volume_source(o, v, false);
    }
}

/// One volume source's lines at level 2 (shared by pod volumes and PV sources).
pub(crate) fn describe_volume_source(o: &mut Out, v: &Value, pv: bool) {
    let b = |x: &Value, k: &str| x[k].as_bool().unwrap_or(false);
    if let Some(h) = v.get("hostPath") {
        let t = match s(h, "/type") {
            "" if h.get("type").is_none() => "<none>",
            t => t,
        };
        w!(
            o,
            2,
            "Type:\tHostPath (bare host directory volume)\n    Path:\t{}\n    HostPathType:\t{t}\n",
            s(h, "/path")
        );
    } else if let Some(e) = v.get("emptyDir") {
        let size = e
            .get("sizeLimit")
            .filter(|q| parse_qty(Some(q)).sign() > 0)
            .map(qty)
            .unwrap_or_else(|| "<unset>".into());
        w!(
            o,
            2,
            "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n    Medium:\t{}\n    SizeLimit:\t{size}\n",
            s(e, "/medium")
        );
    } else if let Some(x) = v.get("secret") {
        w!(
            o,
            2,
            "Type:\tSecret (a volume populated by a Secret)\n    SecretName:\t{}\n    Optional:\t{}\n",
            s(x, "/secretName"),
            b(x, "optional")
        );
    } else if let Some(x) = v.get("configMap") {
        w!(
            o,
            2,
            "Type:\tConfigMap (a volume populated by a ConfigMap)\n    Name:\t{}\n    Optional:\t{}\n",
            s(x, "/name"),
            b(x, "optional")
        );
    } else if let Some(x) = v.get("nfs") {
        w!(
            o,
            2,
            "Type:\tNFS (an NFS mount that lasts the lifetime of a pod)\n    Server:\t{}\n    Path:\t{}\n    ReadOnly:\t{}\n",
            s(x, "/server"),
            s(x, "/path"),
            b(x, "readOnly")
        );
    } else if let Some(x) = v.get("persistentVolumeClaim") {
        w!(
            o,
            2,
            "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n    ClaimName:\t{}\n    ReadOnly:\t{}\n",
            s(x, "/claimName"),
            b(x, "readOnly")
        );
    } else if let Some(x) = v.get("downwardAPI") {
        o.w(
            2,
            "Type:\tDownwardAPI (a volume populated by information about the pod)\n    Items:\n",
        );
        for m in arr(x, "/items") {
            if let Some(f) = m.get("fieldRef") {
                w!(o, 3, "{} -> {}\n", s(f, "/fieldPath"), s(m, "/path"));
            }
            if let Some(r) = m.get("resourceFieldRef") {
                w!(o, 3, "{} -> {}\n", s(r, "/resource"), s(m, "/path"));
            }
        }
    } else if let Some(x) = v.get("projected") {
        o.w(
            2,
            "Type:\tProjected (a volume that contains injected data from multiple sources)\n",
        );
        for src in arr(x, "/sources") {
            if let Some(sec) = src.get("secret") {
                w!(
                    o,
                    2,
                    "SecretName:\t{}\n    Optional:\t{}\n",
                    s(sec, "/name"),
                    b(sec, "optional")
                );
            } else if src.get("downwardAPI").is_some() {
                o.w(2, "DownwardAPI:\ttrue\n");
            } else if let Some(cm) = src.get("configMap") {
                w!(
                    o,
                    2,
                    "ConfigMapName:\t{}\n    Optional:\t{}\n",
                    s(cm, "/name"),
                    b(cm, "optional")
                );
            } else if let Some(t) = src.get("serviceAccountToken") {
                w!(
                    o,
                    2,
                    "TokenExpirationSeconds:\t{}\n",
                    i(t, "/expirationSeconds")
                );
            }
        }
    } else if let Some(x) = v.get("local").filter(|_| pv) {
        w!(
            o,
            2,
            "Type:\tLocalVolume (a persistent volume backed by local storage on a node)\n    Path:\t{}\n",
            s(x, "/path")
        );
    } else if let Some(x) = v.get("csi") {
        if pv {
            w!(
                o,
                2,
                "Type:\tCSI (a Container Storage Interface (CSI) volume source)\n    Driver:\t{}\n    FSType:\t{}\n    VolumeHandle:\t{}\n    ReadOnly:\t{}\n",
                s(x, "/driver"),
                s(x, "/fsType"),
                s(x, "/volumeHandle"),
                b(x, "readOnly")
            );
        } else {
            w!(
                o,
                2,
                "Type:\tCSI (a Container Storage Interface (CSI) volume source)\n    Driver:\t{}\n    FSType:\t{}\n    ReadOnly:\t{}\n",
                s(x, "/driver"),
                s(x, "/fsType"),
                b(x, "readOnly")
            );
        }
        let attrs = string_map(x, "/volumeAttributes");
        o.w(2, "VolumeAttributes:\t");
        if attrs.is_empty() {
            o.w(0, "<none>\n");
        }
        for (n, (k, v)) in attrs.iter().enumerate() {
            if n != 0 {
                o.w(2, "\t");
            }
            w!(o, 2, "{k}={v}\n");
        }
    } else if let Some(x) = v.get("ephemeral").filter(|_| !pv) {
        o.w(2, "Type:\tEphemeralVolume (an inline specification for a volume that gets created and deleted with the pod)\n");
        if let Some(t) = x.get("volumeClaimTemplate") {
            let spec = &t["spec"];
            w!(o, 2, "StorageClass:\t{}\n", s(spec, "/storageClassName"));
            w!(o, 2, "Volume:\t{}\n", s(spec, "/volumeName"));
            super::kinds::claim_tail(o, t, spec, 2);
        }
    } else if let Some(x) = v.get("image").filter(|_| !pv) {
        w!(
            o,
            2,
            "Type:\tImage (a container image or OCI artifact)\n    Reference:\t{}\n    PullPolicy:\t{}\n",
            s(x, "/reference"),
            s(x, "/pullPolicy")
        );
    } else {
        o.w(1, "<unknown>\n");
    }
}

/// `qos.GetPodQOS`: the status's class, else computed from requests and limits.
pub(crate) fn qos_class(pod: &Value) -> String {
    let cls = s(pod, "/status/qosClass");
    if !cls.is_empty() {
        return cls.to_string();
    }
    use bosun_api::quantity::Quantity;
    use std::collections::BTreeMap;
    let mut requests: BTreeMap<String, Quantity> = BTreeMap::new();
    let mut limits: BTreeMap<String, Quantity> = BTreeMap::new();
    let mut guaranteed = true;
    let all = arr(pod, "/spec/containers")
        .iter()
        .chain(arr(pod, "/spec/initContainers"));
    for c in all {
        for (kind, into) in [("requests", &mut requests), ("limits", &mut limits)] {
            let mut found = Vec::new();
            for (name, q) in c
                .pointer(&format!("/resources/{kind}"))
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if name != "cpu" && name != "memory" {
                    continue;
                }
                let q = parse_qty(Some(q));
                if q.sign() > 0 {
                    found.push(name.clone());
                    let sum = match into.get(name) {
                        Some(prev) => q.add(prev),
                        None => q,
                    };
                    into.insert(name.clone(), sum);
                }
            }
            if kind == "limits"
                && !(found.iter().any(|n| n == "cpu") && found.iter().any(|n| n == "memory"))
            {
                guaranteed = false;
            }
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort".into();
    }
    if guaranteed {
        for (name, req) in &requests {
            if limits.get(name).is_none_or(|l| l != req) {
                guaranteed = false;
                break;
            }
        }
    }
    if guaranteed && requests.len() == limits.len() {
        "Guaranteed".into()
    } else {
        "Burstable".into()
    }
}
