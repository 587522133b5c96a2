//! A pod's `/etc/resolv.conf` per `dnsPolicy`, as the kubelet writes it.
use std::net::IpAddr;

use k8s_openapi::api::core::v1::PodSpec;

/// glibc reads at most 3 nameservers; upstream caps searches at 32.
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;

/// The parts of a resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<String>,
    pub searches: Vec<String>,
    /// (name, value) in order.
    pub options: Vec<(String, Option<String>)>,
}

impl ResolvConf {
    /// Parses the node's resolv.conf.
    pub fn parse(text: &str) -> Self {
        let mut r = Self::default();
        for line in text.lines() {
            let mut w = line.split_whitespace();
            match w.next() {
                Some("nameserver") => r.nameservers.extend(w.next().map(str::to_string)),
                Some("search") | Some("domain") => {
                    r.searches = w.map(str::to_string).collect();
                }
                Some("options") => {
                    for o in w {
                        let (n, v) = match o.split_once(':') {
                            Some((n, v)) => (n.to_string(), Some(v.to_string())),
                            None => (o.to_string(), None),
                        };
                        set_option(&mut r.options, n, v);
                    }
                }
                _ => {}
            }
        }
        r
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if !self.searches.is_empty() {
            s.push_str(&format!("search {}\n", self.searches.join(" ")));
        }
        for n in &self.nameservers {
            s.push_str(&format!("nameserver {n}\n"));
        }
        if !self.options.is_empty() {
            let o: Vec<String> = self
                .options
                .iter()
                .map(|(n, v)| match v {
                    Some(v) => format!("{n}:{v}"),
                    None => n.clone(),
                })
                .collect();
            s.push_str(&format!("options {}\n", o.join(" ")));
        }
        s
    }
}

fn set_option(opts: &mut Vec<(String, Option<String>)>, name: String, value: Option<String>) {
    match opts.iter_mut().find(|(n, _)| *n == name) {
        Some(o) => o.1 = value,
        None => opts.push((name, value)),
    }
}

/// The resolv.conf text for a pod of `namespace` (every policy yields one; `Default`
/// copies the node's).
///
/// `cluster_dns` is the DNS Service address (10.96.0.10), `host` the node's resolv.conf.
pub fn pod_resolv_conf(
    spec: &PodSpec,
    namespace: &str,
    cluster_dns: &[IpAddr],
    domain: &str,
    host: &str,
) -> String {
    let host = ResolvConf::parse(host);
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let host_network = spec.host_network.unwrap_or(false);
    let cluster = || {
        let mut searches = vec![
            format!("{namespace}.svc.{domain}"),
            format!("svc.{domain}"),
            domain.to_string(),
        ];
        searches.extend(host.searches.iter().cloned());
        ResolvConf {
            nameservers: cluster_dns.iter().map(|a| a.to_string()).collect(),
            searches,
            options: vec![("ndots".into(), Some("5".into()))],
        }
    };
    let mut r = match policy {
        "None" => ResolvConf::default(),
        "Default" => host.clone(),
        "ClusterFirstWithHostNet" => cluster(),
        // ClusterFirst: hostNetwork pods fall back to the node's settings (upstream).
        _ if host_network || cluster_dns.is_empty() => host.clone(),
        _ => cluster(),
    };
    if let Some(c) = &spec.dns_config {
        for n in c.nameservers.iter().flatten() {
            if !r.nameservers.contains(n) {
                r.nameservers.push(n.clone());
            }
        }
        for s in c.searches.iter().flatten() {
            if !r.searches.contains(s) {
                r.searches.push(s.clone());
            }
        }
        for o in c.options.iter().flatten() {
            if let Some(n) = &o.name {
                set_option(&mut r.options, n.clone(), o.value.clone());
            }
        }
    }
    r.nameservers.truncate(MAX_NAMESERVERS);
    r.searches.truncate(MAX_SEARCHES);
    r.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HOST: &str = "# host\nnameserver 192.0.2.53\nsearch corp.example\noptions edns0\n";

    fn spec(v: serde_json::Value) -> PodSpec {
        let mut v = v;
        v["containers"] = json!([]);
        serde_json::from_value(v).unwrap()
    }

    fn dns() -> Vec<IpAddr> {
        vec!["10.96.0.10".parse().unwrap()]
    }

    #[test]
    fn cluster_first() {
        let s = pod_resolv_conf(&spec(json!({})), "team", &dns(), "cluster.local", HOST);
        assert_eq!(
            s,
            "search team.svc.cluster.local svc.cluster.local cluster.local corp.example\n\
             nameserver 10.96.0.10\noptions ndots:5\n"
        );
    }

    #[test]
    fn host_network_cluster_first_uses_host_but_with_host_net_uses_cluster() {
        let s = pod_resolv_conf(
            &spec(json!({"hostNetwork": true})),
            "a",
            &dns(),
            "cluster.local",
            HOST,
        );
        assert_eq!(
            s,
            "search corp.example\nnameserver 192.0.2.53\noptions edns0\n"
        );
        let s = pod_resolv_conf(
            &spec(json!({"hostNetwork": true, "dnsPolicy": "ClusterFirstWithHostNet"})),
            "a",
            &dns(),
            "cluster.local",
            HOST,
        );
        assert!(s.starts_with("search a.svc.cluster.local svc.cluster.local cluster.local"));
        assert!(s.contains("nameserver 10.96.0.10\n"));
    }

    #[test]
    fn default_and_none_with_dns_config() {
        let s = pod_resolv_conf(
            &spec(json!({"dnsPolicy": "Default"})),
            "a",
            &dns(),
            "cluster.local",
            HOST,
        );
        assert_eq!(
            s,
            "search corp.example\nnameserver 192.0.2.53\noptions edns0\n"
        );
        let s = pod_resolv_conf(
            &spec(json!({"dnsPolicy": "None", "dnsConfig": {
                "nameservers": ["1.2.3.4"], "searches": ["x.example"],
                "options": [{"name": "ndots", "value": "2"}, {"name": "rotate"}]}})),
            "a",
            &dns(),
            "cluster.local",
            HOST,
        );
        assert_eq!(
            s,
            "search x.example\nnameserver 1.2.3.4\noptions ndots:2 rotate\n"
        );
        let s = pod_resolv_conf(
            &spec(json!({"dnsConfig": {"options": [{"name": "ndots", "value": "1"}]}})),
            "a",
            &dns(),
            "cluster.local",
            HOST,
        );
        assert!(s.ends_with("options ndots:1\n"));
    }
}
