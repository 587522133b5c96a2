//! The pod network, Services and DNS across two nodes, end to end: a real `bosun server`
//! process and two real `bosun agent` processes, each agent in a network namespace this test
//! creates ("nodes" on a test bridge in a namespace of its own, 192.168.250.0/24; the server
//! listens on the root namespace's end of one veth into it). Test traffic goes only to those
//! namespaces, to the pods inside them and to that veth; the nodes have no default route, so
//! nothing can leave the machine.
//!
//! Needs root, `ip`, `nft` and `nsenter`, and the busybox test image
//! (`scripts/build-test-images.sh`, run on demand); fails loudly otherwise.
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, LogParams, PostParams};
use serde_json::{json, Value};

const BUSYBOX: &str = "bosun.test/busybox:latest";
/// The test LAN; .254 is the root namespace's end (the server), .1/.2 the nodes. Each test
/// of this file has its own, so they can run at the same time.
const LAN_PREFIX: &str = "192.168.250";
/// The network policy test's LAN.
const NETPOL_LAN_PREFIX: &str = "192.168.249";

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn require_root_and_tools() {
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "the network end-to-end test needs root (network namespaces, nftables, containers)"
    );
    for (tool, arg) in [("ip", "-V"), ("nft", "--version"), ("nsenter", "--version")] {
        let ok = Command::new(tool)
            .arg(arg)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(ok, "`{tool}` is missing: run scripts/install-net.sh");
    }
}

/// A named network namespace, deleted on drop.
struct Netns {
    name: String,
    path: PathBuf,
}

impl Netns {
    fn new(tag: &str, suffix: &str) -> Self {
        let name = format!("bosun-e2e-{tag}-{suffix}");
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run("ip", &["netns", "add", &name]);
        let ns = Self {
            path: PathBuf::from(format!("/var/run/netns/{name}")),
            name,
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    fn ip(&self, args: &[&str]) -> String {
        let mut a = vec!["-n", &self.name];
        a.extend_from_slice(args);
        run("ip", &a)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A child process killed (SIGKILL) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct AgentNode {
    name: String,
    ip: Ipv4Addr,
    ns: Netns,
    data: PathBuf,
    log: PathBuf,
    proc: Option<Proc>,
}

struct Cluster {
    dir: tempfile::TempDir,
    /// Held for its lifetime: dropping it deletes the LAN (and the root namespace's veth).
    _lan: Netns,
    server: Option<Proc>,
    server_url: String,
    nodes: Vec<AgentNode>,
    client: kube::Client,
}

fn bosun() -> &'static str {
    env!("CARGO_BIN_EXE_bosun")
}

fn tail(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

impl Cluster {
    async fn start(suffix: &str) -> Cluster {
        Self::start_on(suffix, LAN_PREFIX).await
    }

    /// A cluster on the LAN `lan_prefix`.0/24.
    async fn start_on(suffix: &str, lan_prefix: &str) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        // The LAN: a bridge in a namespace of its own, the root namespace plugged into it.
        let lan = Netns::new("lan", suffix);
        lan.ip(&["link", "add", "br0", "type", "bridge"]);
        lan.ip(&["link", "set", "br0", "up"]);
        let host_if = format!("bse2e{suffix}");
        run(
            "ip",
            &[
                "link", "add", &host_if, "type", "veth", "peer", "name", "up0", "netns", &lan.name,
            ],
        );
        lan.ip(&["link", "set", "up0", "master", "br0", "up"]);
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{lan_prefix}.254/24"),
                "dev",
                &host_if,
            ],
        );
        run("ip", &["link", "set", &host_if, "up"]);

        // The server, in the root namespace, on the LAN address.
        let sdata = dir.path().join("server");
        let slog = dir.path().join("server.log");
        let server = Proc(
            Command::new(bosun())
                .args(["server", "--data-dir"])
                .arg(&sdata)
                .args([
                    "--bind-address",
                    &format!("{lan_prefix}.254"),
                    "--secure-port",
                    "0",
                    "--tls-san",
                    &format!("{lan_prefix}.254"),
                ])
                .env("BOSUN_LOG", "info")
                .stdout(Stdio::from(std::fs::File::create(&slog).unwrap()))
                .stderr(Stdio::from(
                    std::fs::File::options().append(true).open(&slog).unwrap(),
                ))
                .spawn()
                .expect("spawn bosun server"),
        );
        let kubeconfig = sdata.join("kubeconfig.yaml");
        let deadline = Instant::now() + Duration::from_secs(60);
        let server_url = loop {
            let log = std::fs::read_to_string(&slog).unwrap_or_default();
            if let Some(l) = log
                .lines()
                .find(|l| l.starts_with("bosun API server listening on "))
            {
                break l
                    .trim_start_matches("bosun API server listening on ")
                    .trim()
                    .to_string();
            }
            assert!(
                Instant::now() < deadline,
                "server did not start:\n{}",
                tail(&slog)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("client config");
        let client = kube::Client::try_from(config).expect("client");

        let archive = bosun_testkit::busybox_archive();
        let mut nodes = Vec::new();
        for (i, name) in ["node-a", "node-b"].iter().enumerate() {
            let ip: Ipv4Addr = format!("{lan_prefix}.{}", i + 1).parse().unwrap();
            let ns = Netns::new(name, suffix);
            ns.ip(&[
                "link", "add", "eth0", "type", "veth", "peer", "name", "lanport", "netns",
                &lan.name,
            ]);
            lan.ip(&["link", "set", "lanport", "name", &format!("p{i}")]);
            lan.ip(&["link", "set", &format!("p{i}"), "master", "br0", "up"]);
            ns.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
            ns.ip(&["link", "set", "eth0", "up"]);
            let data = dir.path().join(name);
            std::fs::create_dir_all(&data).unwrap();
            run(
                bosun(),
                &[
                    "image",
                    "import",
                    "--data-dir",
                    data.to_str().unwrap(),
                    archive.to_str().unwrap(),
                ],
            );
            nodes.push(AgentNode {
                name: name.to_string(),
                ip,
                ns,
                log: dir.path().join(format!("{name}.log")),
                data,
                proc: None,
            });
        }
        let mut c = Cluster {
            dir,
            _lan: lan,
            server: Some(server),
            server_url,
            nodes,
            client,
        };
        for i in 0..c.nodes.len() {
            c.start_agent(i);
        }
        c
    }

    fn start_agent(&mut self, i: usize) {
        let sdata = self.dir.path().join("server");
        let token = std::fs::read_to_string(sdata.join("node-token")).expect("node token");
        let n = &mut self.nodes[i];
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&n.log)
            .unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net={}", n.ns.path.display()))
            .arg("--")
            .arg(bosun())
            .args([
                "agent",
                "--server",
                &self.server_url,
                "--token",
                token.trim(),
            ])
            .arg("--server-ca")
            .arg(sdata.join("tls/ca.crt"))
            .arg("--data-dir")
            .arg(&n.data)
            .args([
                "--node-name",
                &n.name,
                "--node-ip",
                &n.ip.to_string(),
                "--disable-image-pull",
                // The shared disk is often nearly full: keep DiskPressure from tainting
                // the nodes (upstream's nodefs.available<10%).
                "--eviction-hard",
                "memory.available<1Mi,nodefs.available<1%",
                // Nor image GC remove the imported test images between pods.
                "--image-gc-high-threshold",
                "100",
            ])
            .env("BOSUN_LOG", "info,bosun_net=debug")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn bosun agent");
        n.proc = Some(Proc(child));
    }

    /// SIGKILL, as a crash: containers keep running under their shims.
    fn kill_agent(&mut self, i: usize) {
        self.nodes[i].proc = None;
    }

    fn logs(&self) -> String {
        let mut s = format!(
            "--- server\n{}\n",
            tail(&self.dir.path().join("server.log"))
        );
        for n in &self.nodes {
            s.push_str(&format!("--- {}\n{}\n", n.name, tail(&n.log)));
        }
        s
    }

    async fn node(&self, name: &str) -> Node {
        Api::<Node>::all(self.client.clone())
            .get(name)
            .await
            .expect("get node")
    }

    /// Polls `f` every 200 ms until it gives a value, or panics after `secs`.
    async fn eventually<T, F, Fut>(&self, what: &str, secs: u64, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f().await {
                return v;
            }
            if Instant::now() > deadline {
                panic!("{what}: not within {secs}s\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn create(&self, obj: Value) {
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
        match kind.as_str() {
            "Pod" => {
                let p: Pod = serde_json::from_value(obj.clone()).unwrap();
                Api::<Pod>::namespaced(self.client.clone(), ns)
                    .create(&PostParams::default(), &p)
                    .await
                    .expect("create pod");
            }
            "Service" => {
                let s: Service = serde_json::from_value(obj.clone()).unwrap();
                Api::<Service>::namespaced(self.client.clone(), ns)
                    .create(&PostParams::default(), &s)
                    .await
                    .expect("create service");
            }
            "Namespace" => {
                let n: Namespace = serde_json::from_value(obj.clone()).unwrap();
                Api::<Namespace>::all(self.client.clone())
                    .create(&PostParams::default(), &n)
                    .await
                    .expect("create namespace");
            }
            "NetworkPolicy" => {
                let n: NetworkPolicy = serde_json::from_value(obj.clone()).unwrap();
                Api::<NetworkPolicy>::namespaced(self.client.clone(), ns)
                    .create(&PostParams::default(), &n)
                    .await
                    .expect("create network policy");
            }
            k => panic!("create {k}"),
        }
    }

    /// Waits until the pod is Running and Ready and returns it.
    async fn ready_pod(&self, name: &str) -> Pod {
        self.ready_pod_in("default", name).await
    }

    /// [`Self::ready_pod`] in namespace `ns`.
    async fn ready_pod_in(&self, ns: &str, name: &str) -> Pod {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut last = None;
        while Instant::now() < deadline {
            if let Ok(Some(p)) = api.get_opt(name).await {
                let st = p.status.clone().unwrap_or_default();
                let ready = st
                    .conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                if ready && st.pod_ip.is_some() {
                    return p;
                }
                last = Some(st);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "pod {name} not ready in 90s; last status:\n{}\n{}",
            serde_json::to_string_pretty(&last).unwrap_or_default(),
            self.logs()
        );
    }

    fn sandbox_netns(&self, node: usize, pod: &Pod) -> PathBuf {
        self.nodes[node]
            .data
            .join("sandboxes")
            .join(pod.metadata.uid.as_deref().unwrap())
            .join("net")
    }
}

impl Drop for Cluster {
    /// Stops the agents and removes every container and sandbox they made (also when the
    /// test fails), then the server and the namespaces go with the fields.
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.proc = None;
        }
        for n in &self.nodes {
            let Ok(rt) = bosun_runtime::Runtime::new(bosun_runtime::RuntimeConfig::new(&n.data))
            else {
                continue;
            };
            for c in rt.list().unwrap_or_default() {
                let _ = rt.delete(&c.id, true);
            }
            if let Ok(rd) = std::fs::read_dir(n.data.join("sandboxes")) {
                for e in rd.flatten() {
                    let _ = rt.remove_sandbox(&e.file_name().to_string_lossy());
                }
            }
        }
        self.server = None;
    }
}

fn pod_ip(p: &Pod) -> Ipv4Addr {
    p.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|s| s.parse().ok())
        .expect("pod IP")
}

/// `GET /` over HTTP/1.0 from a thread inside `netns` (None: this namespace); the body.
fn http_get(netns: Option<&Path>, addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let netns = netns.map(Path::to_path_buf);
    let path = path.to_string();
    std::thread::spawn(move || {
        if let Some(ns) = &netns {
            bosun_net::netns::enter(ns).map_err(std::io::Error::other)?;
        }
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.trim().to_string())
            .unwrap_or_default())
    })
    .join()
    .map_err(|_| std::io::Error::other("http thread panicked"))?
}

/// Who answers `n` requests to `addr` from `netns`.
fn answers(netns: Option<&Path>, addr: SocketAddr, n: usize) -> BTreeSet<String> {
    (0..n)
        .map(|_| http_get(netns, addr, "/").unwrap_or_else(|e| format!("error: {e}")))
        .collect()
}

/// A web pod on `node` answering its name on :8080, Ready while `/www/ready` exists; a GET
/// of `/cgi-bin/unready` removes it.
fn web_pod(name: &str, node: &str, labels: Value) -> Value {
    let script = "mkdir -p /www/cgi-bin && hostname > /www/index.html && touch /www/ready && \
        printf '#!/bin/sh\\nrm -f /www/ready\\nprintf \"Content-Type: text/plain\\\\r\\\\n\\\\r\\\\nunready\\\\n\"\\n' > /www/cgi-bin/unready && \
        chmod +x /www/cgi-bin/unready && exec httpd -f -p 8080 -h /www";
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "web", "image": BUSYBOX, "imagePullPolicy": "Never",
                "command": ["sh", "-c", script],
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080},
                                   "periodSeconds": 1, "failureThreshold": 1}
            }]
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_pods_services_dns() {
    require_root_and_tools();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let suffix = format!("{:04x}", rand_u16());
    let mut c = Cluster::start(&suffix).await;

    // Both nodes registered and got distinct pod CIDRs from the server's node IPAM.
    let mut cidrs = Vec::new();
    for n in ["node-a", "node-b"] {
        let cidr = c
            .eventually(&format!("{n} podCIDR"), 60, || async {
                let node = Api::<Node>::all(c.client.clone())
                    .get_opt(n)
                    .await
                    .ok()
                    .flatten()?;
                node.spec?.pod_cidr
            })
            .await;
        let net: bosun_net::ipnet::Ipv4Net = cidr.parse().unwrap();
        assert_eq!(net.prefix_len(), 24);
        assert!("10.244.0.0/16"
            .parse::<bosun_net::ipnet::Ipv4Net>()
            .unwrap()
            .contains(&net));
        cidrs.push(net);
    }
    assert_ne!(cidrs[0], cidrs[1]);
    assert_eq!(
        c.node("node-a")
            .await
            .spec
            .unwrap()
            .pod_cidrs
            .unwrap()
            .len(),
        1
    );

    // kube-system/kube-dns exists at 10.96.0.10 (bootstrapped by the server).
    let dns_svc = Api::<Service>::namespaced(c.client.clone(), "kube-system")
        .get("kube-dns")
        .await
        .expect("kube-dns service");
    assert_eq!(
        dns_svc.spec.as_ref().unwrap().cluster_ip.as_deref(),
        Some("10.96.0.10")
    );

    // Two web pods (one per node) behind a NodePort Service, a client pod on node-a.
    c.create(web_pod("web-1", "node-a", json!({"app": "web"})))
        .await;
    c.create(web_pod("web-2", "node-b", json!({"app": "web"})))
        .await;
    c.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "client", "namespace": "default"},
        "spec": {"nodeName": "node-a", "terminationGracePeriodSeconds": 1, "containers": [{
            "name": "c", "image": BUSYBOX, "imagePullPolicy": "Never",
            "command": ["sleep", "3600"]}]}
    }))
    .await;
    c.create(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "NodePort", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
    }))
    .await;
    let web1 = c.ready_pod("web-1").await;
    let web2 = c.ready_pod("web-2").await;
    let client = c.ready_pod("client").await;
    let (ip1, ip2, ipc) = (pod_ip(&web1), pod_ip(&web2), pod_ip(&client));
    assert!(cidrs[0].contains(&ip1), "{ip1} not in {}", cidrs[0]);
    assert!(cidrs[1].contains(&ip2), "{ip2} not in {}", cidrs[1]);
    assert!(cidrs[0].contains(&ipc));
    assert_ne!(ip1, ipc);
    let st = web1.status.as_ref().unwrap();
    assert_eq!(st.pod_ips.as_ref().unwrap()[0].ip, ip1.to_string());
    assert_eq!(st.host_ip.as_deref(), Some("192.168.250.1"));
    let client_ns = c.sandbox_netns(0, &client);

    // Pod to pod: on one node and across nodes.
    assert_eq!(
        http_get(Some(&client_ns), (ip1, 8080).into(), "/").unwrap(),
        "web-1"
    );
    assert_eq!(
        http_get(Some(&client_ns), (ip2, 8080).into(), "/").unwrap(),
        "web-2"
    );

    // The ClusterIP from a pod and from both nodes reaches every endpoint.
    let svc = Api::<Service>::namespaced(c.client.clone(), "default")
        .get("web")
        .await
        .unwrap();
    let spec = svc.spec.unwrap();
    let vip: Ipv4Addr = spec.cluster_ip.unwrap().parse().unwrap();
    let node_port = spec.ports.unwrap()[0].node_port.unwrap() as u16;
    let both: BTreeSet<String> = ["web-1", "web-2"].iter().map(|s| s.to_string()).collect();
    let vip_addr: SocketAddr = (vip, 80).into();
    let got = c
        .eventually("ClusterIP from a pod reaches both endpoints", 30, || {
            let ns = client_ns.clone();
            let both = both.clone();
            async move {
                let a = answers(Some(&ns), vip_addr, 30);
                (a == both).then_some(a)
            }
        })
        .await;
    assert_eq!(got, both);
    for n in &c.nodes {
        let a = answers(Some(&n.ns.path), vip_addr, 30);
        assert_eq!(a, both, "ClusterIP from {}", n.name);
    }
    // A NodePort on every node, from outside the nodes (the root namespace's LAN end).
    for n in &c.nodes {
        let a = answers(None, (n.ip, node_port).into(), 30);
        assert_eq!(a, both, "NodePort {node_port} on {}", n.name);
    }

    // DNS inside a pod: the Service's name resolves to its ClusterIP (fully qualified, and
    // short through the search path), its named port has an SRV record, and the address
    // resolved reaches the Service; the pod's resolv.conf points at 10.96.0.10. (The test
    // image's busybox wget crashes in static glibc's getaddrinfo, so nc does the request.)
    c.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "dns-check", "namespace": "default"},
        "spec": {"nodeName": "node-b", "restartPolicy": "Never", "containers": [{
            "name": "c", "image": BUSYBOX, "imagePullPolicy": "Never",
            "command": ["sh", "-c", "cat /etc/resolv.conf; \
                nslookup web.default.svc.cluster.local 10.96.0.10 && \
                nslookup kube-dns.kube-system.svc.cluster.local && \
                nslookup -type=SRV _http._tcp.web.default.svc.cluster.local && \
                ip=$(nslookup web | sed -n 's/^Address: *//p' | tail -n1) && \
                echo \"short name: $ip\" && \
                printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 $ip 80 | grep web- && echo DNS-OK"]}]}
    }))
    .await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let phase = c
        .eventually("dns-check pod finished", 90, || {
            let pods = pods.clone();
            async move {
                let p = pods.get_opt("dns-check").await.ok().flatten()?;
                let ph = p.status?.phase?;
                (ph == "Succeeded" || ph == "Failed").then_some(ph)
            }
        })
        .await;
    let log = pods
        .logs("dns-check", &LogParams::default())
        .await
        .unwrap_or_else(|e| format!("(no logs: {e})"));
    assert_eq!(
        phase,
        "Succeeded",
        "dns-check failed; its output:\n{log}\n{}",
        c.logs()
    );
    assert!(log.contains("nameserver 10.96.0.10"), "{log}");
    assert!(
        log.contains("search default.svc.cluster.local svc.cluster.local cluster.local"),
        "{log}"
    );
    assert!(log.contains(&format!("short name: {vip}")), "{log}");
    assert!(log.contains("web.default.svc.cluster.local"), "{log}");
    assert!(
        log.contains("service = 0 100 80 web.default.svc.cluster.local"),
        "{log}"
    );
    assert!(log.contains("10.96.0.10"), "{log}");
    assert!(log.contains("DNS-OK"), "{log}");

    // hostNetwork: podIP is the node's address and it serves on the node's address;
    // hostPort: a pod-network pod published on the node's addresses.
    c.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "hostnet", "namespace": "default"},
        "spec": {"nodeName": "node-b", "hostNetwork": true, "terminationGracePeriodSeconds": 1,
                 "containers": [{
            "name": "c", "image": BUSYBOX, "imagePullPolicy": "Never",
            "command": ["sh", "-c", "mkdir -p /www && echo hostnet > /www/index.html && exec httpd -f -p 18080 -h /www"]}]}
    }))
    .await;
    let mut hp = web_pod("hostport", "node-a", json!({"app": "hp"}));
    hp["spec"]["containers"][0]["ports"][0]["hostPort"] = json!(28080);
    c.create(hp).await;
    let hostnet = c.ready_pod("hostnet").await;
    assert_eq!(pod_ip(&hostnet), c.nodes[1].ip);
    c.ready_pod("hostport").await;
    let hn_addr: SocketAddr = (c.nodes[1].ip, 18080).into();
    c.eventually(
        "hostNetwork pod serves on the node address",
        20,
        || async move { (http_get(None, hn_addr, "/").ok()? == "hostnet").then_some(()) },
    )
    .await;
    let hp_addr: SocketAddr = (c.nodes[0].ip, 28080).into();
    c.eventually("hostPort 28080 on node-a", 20, || async move {
        (http_get(None, hp_addr, "/").ok()? == "hostport").then_some(())
    })
    .await;
    // ...also from another node.
    assert_eq!(
        http_get(Some(&c.nodes[1].ns.path), hp_addr, "/").unwrap(),
        "hostport"
    );

    // A pod that stops being Ready leaves the Service, and comes back when it is again
    // (here it does not: the marker is gone for good). Timed in steps: the marker removed →
    // the kubelet's Ready=False seen on a pod watch (its 1 s probe period) → web-2 not
    // ready in the EndpointSlice (controller) → out of rotation on node-a (proxy).
    let (pod_seen, slice_seen) = watch_unready(&c.client, ip2);
    let removed = Instant::now();
    assert_eq!(
        http_get(Some(&client_ns), (ip2, 8080).into(), "/cgi-bin/unready").unwrap(),
        "unready"
    );
    let only1: BTreeSet<String> = ["web-1".to_string()].into();
    let out = c
        .eventually("unready web-2 leaves the ClusterIP rotation", 20, || {
            let ns = client_ns.clone();
            let only1 = only1.clone();
            async move {
                // The time is that of the start of the first round seeing only web-1.
                let round = Instant::now();
                (answers(Some(&ns), vip_addr, 20) == only1).then_some(round)
            }
        })
        .await;
    let pod_at = pod_seen
        .await
        .expect("web-2's Ready=False seen on the watch");
    let slice_at = slice_seen
        .await
        .expect("web-2 not ready in the EndpointSlice");
    eprintln!(
        "unready endpoint left the rotation: marker removed → Ready=False on the pod {:?}, \
         → EndpointSlice {:?}, → out of rotation {:?} (from Ready=False: {:?}; total {:?})",
        pod_at.saturating_duration_since(removed),
        slice_at.saturating_duration_since(pod_at),
        out.saturating_duration_since(slice_at),
        out.saturating_duration_since(pod_at),
        out.saturating_duration_since(removed),
    );
    for n in &c.nodes {
        assert_eq!(
            answers(None, (n.ip, node_port).into(), 20),
            only1,
            "NodePort on {} after web-2 went unready",
            n.name
        );
    }

    // An agent restart keeps the pods' addresses and their connectivity.
    let web1_uid = web1.metadata.uid.clone().unwrap();
    c.kill_agent(0);
    // Still connected while the agent is down (the kernel does the work).
    assert_eq!(
        http_get(Some(&client_ns), (ip1, 8080).into(), "/").unwrap(),
        "web-1"
    );
    c.start_agent(0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let web1b = c.ready_pod("web-1").await;
    assert_eq!(web1b.metadata.uid.as_deref(), Some(web1_uid.as_str()));
    assert_eq!(
        pod_ip(&web1b),
        ip1,
        "pod IP changed across an agent restart"
    );
    for _ in 0..10 {
        assert_eq!(
            http_get(Some(&client_ns), (ip1, 8080).into(), "/").unwrap(),
            "web-1"
        );
        assert_eq!(
            http_get(Some(&client_ns), (ip2, 8080).into(), "/").unwrap(),
            "web-2"
        );
    }
    assert_eq!(answers(Some(&client_ns), vip_addr, 20), only1);
    c.eventually("hostPort after the agent restart", 20, || async move {
        (http_get(None, hp_addr, "/").ok()? == "hostport").then_some(())
    })
    .await;

    // A deleted pod leaves the Service and gives its address back.
    pods.delete("web-1", &DeleteParams::default())
        .await
        .expect("delete web-1");
    c.eventually("web-1 deleted", 60, || {
        let pods = pods.clone();
        async move { pods.get_opt("web-1").await.ok()?.is_none().then_some(()) }
    })
    .await;
    let ipam = c.nodes[0]
        .data
        .join("net/ipam")
        .join(cidrs[0].to_string().replace('/', "_"))
        .join(ip1.to_string());
    c.eventually("web-1's address released", 20, || {
        let ipam = ipam.clone();
        async move { (!ipam.exists()).then_some(()) }
    })
    .await;
    // No endpoint ready: the ClusterIP refuses at once instead of timing out.
    let refused = http_get(Some(&client_ns), vip_addr, "/");
    assert!(refused.is_err(), "{refused:?}");

    drop(c);
}

/// Watches pod web-2 and the `web` EndpointSlices from now on; the first resolves when the
/// pod's Ready condition turns False, the second when its address `ip` is in a slice as not
/// ready: each with the Instant it was seen.
fn watch_unready(
    client: &kube::Client,
    ip: Ipv4Addr,
) -> (
    tokio::task::JoinHandle<Instant>,
    tokio::task::JoinHandle<Instant>,
) {
    use futures::TryStreamExt;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use kube::runtime::{watcher, WatchStreamExt};
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = tokio::spawn(async move {
        let cfg = watcher::Config::default().fields("metadata.name=web-2");
        let mut s = std::pin::pin!(watcher::watcher(pods, cfg).default_backoff());
        while let Ok(Some(ev)) = s.try_next().await {
            let (watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = ev else {
                continue;
            };
            let ready = p
                .status
                .and_then(|s| s.conditions)
                .into_iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            if !ready {
                return Instant::now();
            }
        }
        panic!("pod watch ended");
    });
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let slice = tokio::spawn(async move {
        let cfg = watcher::Config::default().labels("kubernetes.io/service-name=web");
        let mut s = std::pin::pin!(watcher::watcher(slices, cfg).default_backoff());
        let ip = ip.to_string();
        while let Ok(Some(ev)) = s.try_next().await {
            let (watcher::Event::Apply(sl) | watcher::Event::InitApply(sl)) = ev else {
                continue;
            };
            let unready = sl.endpoints.iter().any(|e| {
                e.addresses.contains(&ip)
                    && e.conditions.as_ref().and_then(|c| c.ready) == Some(false)
            });
            if unready {
                return Instant::now();
            }
        }
        panic!("endpoint slice watch ended");
    });
    (pod, slice)
}

/// A pod on `node` that only sleeps (a client), labelled `labels`, in `ns`.
fn sleeper(ns: &str, name: &str, node: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "containers": [{
            "name": "c", "image": BUSYBOX, "imagePullPolicy": "Never",
            "command": ["sleep", "3600"]}]}
    })
}

/// Runs `nc` to `addr` from a busybox pod on `node` labelled `labels` and returns whether
/// the server answered (the pod prints `NC-OK` then).
async fn nc_from_pod(c: &Cluster, name: &str, node: &str, labels: Value, addr: SocketAddr) -> bool {
    let script = format!(
        "if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {} {} | grep -q db; then echo NC-OK; else echo NC-FAIL; fi",
        addr.ip(),
        addr.port()
    );
    c.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"nodeName": node, "restartPolicy": "Never", "containers": [{
            "name": "c", "image": BUSYBOX, "imagePullPolicy": "Never",
            "command": ["sh", "-c", script]}]}
    }))
    .await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    c.eventually(&format!("{name} finished"), 90, || {
        let pods = pods.clone();
        async move {
            let p = pods.get_opt(name).await.ok().flatten()?;
            let ph = p.status?.phase?;
            (ph == "Succeeded" || ph == "Failed").then_some(())
        }
    })
    .await;
    let log = pods
        .logs(name, &LogParams::default())
        .await
        .unwrap_or_else(|e| format!("(no logs: {e})"));
    assert!(
        log.contains("NC-OK") || log.contains("NC-FAIL"),
        "{name}: unexpected output {log:?}"
    );
    log.contains("NC-OK")
}

/// The network policy table of node `i`, for failure messages.
fn netpol_table(c: &Cluster, i: usize) -> String {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &c.nodes[i].ns.name,
            "nft",
            "list",
            "table",
            "ip",
            "bosun-netpol",
        ])
        .output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => format!("(nft: {e})"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_network_policy() {
    require_root_and_tools();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let suffix = format!("{:04x}", rand_u16());
    let c = Cluster::start_on(&suffix, NETPOL_LAN_PREFIX).await;

    c.create(json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "blue", "labels": {"team": "blue"}}}))
        .await;
    // db on node-a serves "db" on 8080 and 9090 and is Ready through an HTTP probe (the
    // node reaching its pod, which policies never block).
    let script = "mkdir -p /www && echo db > /www/index.html && httpd -p 9090 -h /www && exec httpd -f -p 8080 -h /www";
    c.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "db", "namespace": "default", "labels": {"app": "db"}},
        "spec": {"nodeName": "node-a", "terminationGracePeriodSeconds": 1, "containers": [{
            "name": "db", "image": BUSYBOX, "imagePullPolicy": "Never",
            "command": ["sh", "-c", script],
            "ports": [{"name": "http", "containerPort": 8080}, {"name": "admin", "containerPort": 9090}],
            "readinessProbe": {"httpGet": {"path": "/", "port": 8080},
                               "periodSeconds": 1, "failureThreshold": 1}}]}
    }))
    .await;
    c.create(sleeper(
        "default",
        "client-a",
        "node-a",
        json!({"app": "client"}),
    ))
    .await;
    c.create(sleeper(
        "default",
        "client-b",
        "node-b",
        json!({"app": "client"}),
    ))
    .await;
    c.create(sleeper(
        "default",
        "stranger",
        "node-b",
        json!({"app": "stranger"}),
    ))
    .await;
    c.create(sleeper("blue", "tool", "node-b", json!({"app": "tool"})))
        .await;
    let db = c.ready_pod("db").await;
    let db_ip = pod_ip(&db);
    let ns_of = |node: usize, p: &Pod| c.sandbox_netns(node, p);
    let client_a = ns_of(0, &c.ready_pod("client-a").await);
    let client_b = ns_of(1, &c.ready_pod("client-b").await);
    let stranger = ns_of(1, &c.ready_pod("stranger").await);
    let tool = ns_of(1, &c.ready_pod_in("blue", "tool").await);
    let db_http: SocketAddr = (db_ip, 8080).into();
    let db_admin: SocketAddr = (db_ip, 9090).into();
    let ok = |ns: &Path, a: SocketAddr| http_get(Some(ns), a, "/").is_ok_and(|b| b == "db");

    // No policy: everyone reaches both ports, on either node.
    for (who, ns) in [
        ("client-a", &client_a),
        ("client-b", &client_b),
        ("stranger", &stranger),
        ("tool", &tool),
    ] {
        assert!(ok(ns, db_http), "{who} → db:8080 without policy");
        assert!(ok(ns, db_admin), "{who} → db:9090 without policy");
    }

    // Default deny for db's ingress.
    c.create(
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "db-deny", "namespace": "default"},
        "spec": {"podSelector": {"matchLabels": {"app": "db"}}}}),
    )
    .await;
    c.eventually("deny-all shuts db off from both nodes", 20, || {
        let (a, b) = (client_a.clone(), client_b.clone());
        async move { (!ok(&a, db_http) && !ok(&b, db_http)).then_some(()) }
    })
    .await;
    assert!(!ok(&tool, db_admin));
    // The node itself still reaches the pod (kubelet probes): from node-a's namespace, and
    // db stays Ready under its 1 s probe.
    assert!(ok(&c.nodes[0].ns.path, db_http), "node-a → its own pod");
    tokio::time::sleep(Duration::from_secs(3)).await;
    c.ready_pod("db").await;

    // Allow app=client, on the named port http only.
    c.create(
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "db-from-clients", "namespace": "default"},
        "spec": {"podSelector": {"matchLabels": {"app": "db"}},
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                              "ports": [{"port": "http"}]}]}}),
    )
    .await;
    c.eventually("clients on both nodes reach db:8080", 20, || {
        let (a, b) = (client_a.clone(), client_b.clone());
        async move { (ok(&a, db_http) && ok(&b, db_http)).then_some(()) }
    })
    .await;
    assert!(
        !ok(&client_b, db_admin),
        "9090 is not allowed; node-a's table:\n{}",
        netpol_table(&c, 0)
    );
    assert!(!ok(&stranger, db_http), "stranger lacks the label");
    assert!(
        !ok(&tool, db_http),
        "a podSelector alone means the policy's namespace"
    );

    // Allow the blue namespace (namespaceSelector), any port.
    c.create(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "db-from-blue", "namespace": "default"},
        "spec": {"podSelector": {"matchLabels": {"app": "db"}},
                 "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}]}}))
        .await;
    c.eventually("blue's tool reaches db on both ports", 20, || {
        let t = tool.clone();
        async move { (ok(&t, db_http) && ok(&t, db_admin)).then_some(()) }
    })
    .await;
    assert!(!ok(&stranger, db_http));

    // The same verdicts from busybox's nc inside pods on node-b.
    assert!(
        nc_from_pod(&c, "nc-client", "node-b", json!({"app": "client"}), db_http).await,
        "nc from a client pod was refused"
    );
    assert!(
        !nc_from_pod(
            &c,
            "nc-stranger",
            "node-b",
            json!({"app": "stranger"}),
            db_http
        )
        .await,
        "nc from an unlabelled pod got through"
    );

    // Egress deny for the clients: client-b no longer gets out, even where db lets it in.
    c.create(
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "clients-no-egress", "namespace": "default"},
        "spec": {"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"]}}),
    )
    .await;
    c.eventually("client-b's egress is denied", 20, || {
        let b = client_b.clone();
        async move { (!ok(&b, db_http)).then_some(()) }
    })
    .await;
    assert!(!ok(&client_a, db_http));
    // (Polled: node-a may still be applying its own change of this step.)
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok(&tool, db_http) {
        if Instant::now() > deadline {
            let pods = Api::<Pod>::all(c.client.clone())
                .list(&Default::default())
                .await
                .map(|l| {
                    l.items
                        .iter()
                        .map(|p| {
                            format!(
                                "{}/{} {:?} {:?}",
                                p.metadata.namespace.as_deref().unwrap_or(""),
                                p.metadata.name.as_deref().unwrap_or(""),
                                p.status.as_ref().and_then(|s| s.pod_ip.clone()),
                                p.status.as_ref().and_then(|s| s.phase.clone())
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            let probe = |ns: &Path, a: SocketAddr| format!("{:?}", http_get(Some(ns), a, "/"));
            panic!(
                "tool (not a client) no longer reaches db\npods:\n{pods}\nnode-a:\n{}\nnode-b:\n{}\n\
                 node-a → db:8080 {}\nnode-b → db:8080 {}\ntool → db:9090 {}\ntool → db:8080 {}",
                netpol_table(&c, 0),
                netpol_table(&c, 1),
                probe(&c.nodes[0].ns.path, db_http),
                probe(&c.nodes[1].ns.path, db_http),
                probe(&tool, db_admin),
                probe(&tool, db_http),
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Policies deleted: everything open again.
    let nps: Api<NetworkPolicy> = Api::namespaced(c.client.clone(), "default");
    for n in [
        "db-deny",
        "db-from-clients",
        "db-from-blue",
        "clients-no-egress",
    ] {
        nps.delete(n, &DeleteParams::default())
            .await
            .expect("delete policy");
    }
    c.eventually("open again without policies", 20, || {
        let (b, s) = (client_b.clone(), stranger.clone());
        async move { (ok(&b, db_admin) && ok(&s, db_http)).then_some(()) }
    })
    .await;
    drop(c);
}

fn rand_u16() -> u16 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    (t ^ std::process::id()) as u16
}
