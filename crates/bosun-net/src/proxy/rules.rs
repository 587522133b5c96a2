//! The nftables ruleset of the service proxy, generated as text from the service ports
//! (names, chains and maps follow upstream kube-proxy's nftables mode).
//!
//! The body is a list of `add` commands so the same text serves both a full sync (the table
//! deleted and recreated in one transaction) and an incremental one (`flush table`, which
//! keeps the session-affinity sets' elements, then stale chains and sets deleted).
//!
//! Each service port's chains, sets and map elements are also kept apart ([`Unit`]), so a
//! sync after the first writes only what changed ([`Ruleset::partial`], as upstream's
//! nftables proxier): the chains of changed service ports rewritten, map elements added and
//! deleted by difference, chains that went away flushed (and deleted a sync later), sets
//! deleted. With 10,000 Services an endpoint change is then a few lines for `nft` instead
//! of the whole table, and [`generate_reusing`] formats only the changed service ports
//! (the others' units are shared with the previous ruleset); the body is assembled from
//! the units only for a full sync.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::Arc;

use ipnet::Ipv4Net;

use super::model::{Endpoint, ServicePort};

/// The proxy's nftables table (`ip` family).
pub const TABLE: &str = "bosun";
/// Packet mark asking for masquerade in postrouting (upstream's 0x4000).
pub const MASQ_MARK: &str = "0x4000";

const MAPS: [(&str, &str); 4] = [
    (
        "service-ips",
        "ipv4_addr . inet_proto . inet_service : verdict",
    ),
    ("service-nodeports", "inet_proto . inet_service : verdict"),
    (
        "no-endpoint-services",
        "ipv4_addr . inet_proto . inet_service : verdict",
    ),
    (
        "no-endpoint-nodeports",
        "inet_proto . inet_service : verdict",
    ),
];

/// A generated ruleset: the command text and the chains and sets it declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub chains: BTreeSet<String>,
    pub sets: BTreeSet<String>,
    /// What does not depend on the services (table, maps, base and shared chains with their
    /// rules): a partial sync needs it unchanged.
    pub base: String,
    /// The base's declarations (table, maps, base and shared chains) and its rules: the
    /// body puts every unit's declarations between them.
    base_decls: String,
    base_rules: String,
    /// Per service port (by its id), what it adds to the table; shared with the ruleset
    /// it was reused from when its service port did not change.
    pub units: BTreeMap<String, Arc<Unit>>,
    /// The cluster CIDR the units' rules were written for.
    pub cluster_cidr: Ipv4Net,
}

/// What one service port adds to the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The service port it was generated from.
    pub port: ServicePort,
    /// `add chain` and `add set` commands.
    pub decl: String,
    /// `add rule` commands.
    pub rules: String,
    /// `add element` commands, in the order they were generated.
    pub elems: String,
    pub chains: BTreeSet<String>,
    pub sets: BTreeSet<String>,
    /// (map, key) → value.
    pub elements: Elements,
}

impl Unit {
    fn new(port: &ServicePort) -> Self {
        Self {
            port: port.clone(),
            decl: String::new(),
            rules: String::new(),
            elems: String::new(),
            chains: BTreeSet::new(),
            sets: BTreeSet::new(),
            elements: Elements::new(),
        }
    }
}

impl Ruleset {
    /// Every command of the ruleset: declarations first (so that rules may jump to any
    /// chain), then rules, then map elements. Assembled on demand: only a full sync needs
    /// it.
    pub fn body(&self) -> String {
        let units = self.units.values();
        let len = self.base.len()
            + units
                .clone()
                .map(|u| u.decl.len() + u.rules.len() + u.elems.len())
                .sum::<usize>();
        let mut s = String::with_capacity(len);
        s.push_str(&self.base_decls);
        units.clone().for_each(|u| s.push_str(&u.decl));
        s.push_str(&self.base_rules);
        units.clone().for_each(|u| s.push_str(&u.rules));
        units.for_each(|u| s.push_str(&u.elems));
        s
    }

    /// Replaces whatever the table held, in one transaction.
    pub fn full(&self) -> String {
        format!(
            "add table ip {TABLE}\ndelete table ip {TABLE}\n{}",
            self.body()
        )
    }

    /// Rewrites the rules while keeping dynamic set contents (session affinity), then deletes
    /// chains and sets of `previous` that this ruleset no longer has.
    pub fn incremental(&self, previous: &Ruleset) -> String {
        let mut s = format!(
            "add table ip {TABLE}\nflush table ip {TABLE}\n{}",
            self.body()
        );
        for c in previous.chains.difference(&self.chains) {
            let _ = writeln!(s, "delete chain ip {TABLE} {c}");
        }
        for c in previous.sets.difference(&self.sets) {
            let _ = writeln!(s, "delete set ip {TABLE} {c}");
        }
        s
    }

    /// Only what changed since `previous` (which must be what the table holds, with the same
    /// [`Ruleset::base`]), as upstream's partial syncs: new and changed service ports' chains
    /// declared, flushed and rewritten; their map elements deleted and added by difference
    /// (every delete before any add, so a key may move between service ports); chains that
    /// went away flushed, stale affinity sets deleted. Empty when nothing changed.
    ///
    /// Stale chains are only flushed: the caller deletes them in a later transaction
    /// ([`Ruleset::delete_chains`]), as upstream does, because kernels before 6.2 may
    /// still count a reference from a map element deleted in the same transaction and
    /// refuse the whole transaction.
    pub fn partial(&self, previous: &Ruleset) -> String {
        let mut s = String::new();
        let mut deletes = String::new();
        let mut adds = String::new();
        let none = BTreeMap::new();
        for (id, u) in &self.units {
            let old = previous.units.get(id);
            if old == Some(u) {
                continue;
            }
            s.push_str(&u.decl);
            for c in &u.chains {
                let _ = writeln!(s, "flush chain ip {TABLE} {c}");
            }
            s.push_str(&u.rules);
            element_diff(
                old.map_or(&none, |o| &o.elements),
                &u.elements,
                &mut deletes,
                &mut adds,
            );
        }
        for (id, u) in &previous.units {
            if !self.units.contains_key(id) {
                element_diff(&u.elements, &none, &mut deletes, &mut adds);
            }
        }
        s.push_str(&deletes);
        s.push_str(&adds);
        for c in previous.chains.difference(&self.chains) {
            let _ = writeln!(s, "flush chain ip {TABLE} {c}");
        }
        for c in previous.sets.difference(&self.sets) {
            let _ = writeln!(s, "delete set ip {TABLE} {c}");
        }
        s
    }

    /// Deletes `chains` (flushed, unreferenced ones left by an earlier partial sync).
    pub fn delete_chains<'a>(chains: impl IntoIterator<Item = &'a String>) -> String {
        let mut s = String::new();
        for c in chains {
            let _ = writeln!(s, "delete chain ip {TABLE} {c}");
        }
        s
    }
}

type Elements = BTreeMap<(&'static str, String), String>;

/// `delete element` for what `old` has and `new` has not (or with another value), `add
/// element` for what `new` has and `old` has not (or with another value).
fn element_diff(old: &Elements, new: &Elements, deletes: &mut String, adds: &mut String) {
    for ((map, key), v) in old {
        if new.get(&(*map, key.clone())) != Some(v) {
            let _ = writeln!(deletes, "delete element ip {TABLE} {map} {{ {key} }}");
        }
    }
    for ((map, key), v) in new {
        if old.get(&(*map, key.clone())) != Some(v) {
            let _ = writeln!(adds, "add element ip {TABLE} {map} {{ {key} : {v} }}");
        }
    }
}

/// Settings the rules depend on besides the services.
#[derive(Debug, Clone)]
pub struct RulesConfig {
    /// Traffic to a ClusterIP from outside this CIDR is masqueraded (upstream's
    /// `--cluster-cidr` behaviour), so replies come back through this node.
    pub cluster_cidr: Ipv4Net,
}

/// A short stable hash (8 base32 characters) making chain names unique whatever the
/// readable part looks like, as upstream's `servicePortChainNameBase`.
pub fn hash8(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    const ALPHA: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    (0..8)
        .map(|i| ALPHA[((h >> (i * 5)) & 31) as usize] as char)
        .collect()
}

fn named(prefix: &str, id: &str) -> String {
    format!("{prefix}-{}-{id}", hash8(id))
}

fn endpoint_id(sp: &ServicePort, ep: &Endpoint) -> String {
    format!("{}__{}/{}", sp.id(), ep.ip, ep.port)
}

struct Gen {
    /// The base's declarations (table, maps, chains): before any rule jumps to them.
    out: String,
    /// The base's rules.
    rules: String,
    /// Every chain and set, the base's and the units'.
    chains: BTreeSet<String>,
    sets: BTreeSet<String>,
    /// The service port being generated: its commands go there instead of the base's.
    unit: Option<Unit>,
}

impl Gen {
    fn chain(&mut self, name: &str) {
        let line = format!("add chain ip {TABLE} {name}\n");
        self.chains.insert(name.to_string());
        match &mut self.unit {
            Some(u) => {
                u.decl.push_str(&line);
                u.chains.insert(name.to_string());
            }
            None => self.out.push_str(&line),
        }
    }
    fn base(&mut self, name: &str, spec: &str) {
        let _ = writeln!(self.out, "add chain ip {TABLE} {name} {{ {spec}; }}");
        self.chains.insert(name.to_string());
    }
    fn set(&mut self, name: &str, spec: &str) {
        let line = format!("add set ip {TABLE} {name} {{ {spec}; }}\n");
        self.sets.insert(name.to_string());
        match &mut self.unit {
            Some(u) => {
                u.decl.push_str(&line);
                u.sets.insert(name.to_string());
            }
            None => self.out.push_str(&line),
        }
    }
    fn rule(&mut self, chain: &str, rule: &str) {
        let line = format!("add rule ip {TABLE} {chain} {rule}\n");
        match &mut self.unit {
            Some(u) => u.rules.push_str(&line),
            None => self.rules.push_str(&line),
        }
    }
    /// A map element of the service port being generated (the base has none).
    fn element(&mut self, map: &'static str, key: &str, value: &str) {
        if let Some(u) = &mut self.unit {
            let _ = writeln!(
                u.elems,
                "add element ip {TABLE} {map} {{ {key} : {value} }}"
            );
            u.elements.insert((map, key.to_string()), value.to_string());
        }
    }
    /// Takes in a unit generated earlier, as it was.
    fn reuse(&mut self, u: &Unit) {
        self.chains.extend(u.chains.iter().cloned());
        self.sets.extend(u.sets.iter().cloned());
    }
}

/// Up to this many endpoints a service chain picks one with a cascade of plain rules; above
/// it, with one `numgen random mod N vmap { … }`.
///
/// The anonymous map of a `vmap { … }` costs the kernel a walk of the whole transaction
/// when it is bound to its rule (`__nft_set_trans_bind` scans the commit list for the
/// set's NEWSET), so a full sync with one such map per Service is quadratic: 168 s for
/// 10,000 Services of two endpoints (40,000 chain/rule/element commands). The cascade
/// binds no set. It costs a new connection one `numgen` per endpoint skipped, which stays
/// small up to this count; Services with more endpoints are rare enough for the map's
/// bind cost not to add up.
pub const CASCADE_MAX_ENDPOINTS: usize = 16;

/// The rules spreading over `targets` uniformly: a plain goto for one target; for a few,
/// rule i jumps to target i with probability 1/(N−i) (iptables' `statistic` cascade, so
/// each target gets 1/N), the last one takes the rest; for many, one `numgen` vmap.
pub(crate) fn spread(targets: &[String]) -> Vec<String> {
    let n = targets.len();
    if n > CASCADE_MAX_ENDPOINTS {
        let arms: Vec<String> = targets
            .iter()
            .enumerate()
            .map(|(i, t)| format!("{i} : goto {t}"))
            .collect();
        return vec![format!(
            "numgen random mod {n} vmap {{ {} }}",
            arms.join(", ")
        )];
    }
    targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if i + 1 == n {
                format!("goto {t}")
            } else {
                format!("numgen random mod {} == 0 goto {t}", n - i)
            }
        })
        .collect()
}

/// Generates the ruleset for `ports` (as sorted by `service_ports`).
pub fn generate(ports: &[ServicePort], cfg: &RulesConfig) -> Ruleset {
    generate_reusing(ports, cfg, None)
}

/// [`generate`], taking each unit whose service port is unchanged from `previous` as it
/// is instead of writing it again: with 10,000 Services a sync after one endpoint change
/// formats one service port, not all of them.
pub fn generate_reusing(
    ports: &[ServicePort],
    cfg: &RulesConfig,
    previous: Option<&Ruleset>,
) -> Ruleset {
    let previous = previous.filter(|p| p.cluster_cidr == cfg.cluster_cidr);
    let mut g = Gen {
        out: String::new(),
        rules: String::new(),
        chains: BTreeSet::new(),
        sets: BTreeSet::new(),
        unit: None,
    };
    let cidr = cfg.cluster_cidr.trunc();
    let _ = writeln!(
        g.out,
        "add table ip {TABLE} {{ comment \"bosun service proxy\"; }}"
    );
    for (name, ty) in MAPS {
        let _ = writeln!(g.out, "add map ip {TABLE} {name} {{ type {ty}; }}");
        let _ = writeln!(g.out, "flush map ip {TABLE} {name}");
    }
    // Base chains, at upstream's priorities.
    g.base(
        "filter-input",
        "type filter hook input priority -110; policy accept",
    );
    g.rule("filter-input", "ct state new jump service-endpoints-check");
    g.base(
        "filter-forward",
        "type filter hook forward priority -110; policy accept",
    );
    g.rule(
        "filter-forward",
        "ct state new jump service-endpoints-check",
    );
    g.base(
        "filter-output",
        "type filter hook output priority -110; policy accept",
    );
    g.rule("filter-output", "ct state new jump service-endpoints-check");
    g.base(
        "nat-prerouting",
        "type nat hook prerouting priority dstnat; policy accept",
    );
    g.rule("nat-prerouting", "jump services");
    g.base(
        "nat-output",
        "type nat hook output priority -100; policy accept",
    );
    g.rule("nat-output", "jump services");
    g.base(
        "nat-postrouting",
        "type nat hook postrouting priority srcnat; policy accept",
    );
    g.rule("nat-postrouting", "jump masquerading");

    g.chain("masquerading");
    g.rule(
        "masquerading",
        &format!("meta mark & {MASQ_MARK} == 0 return"),
    );
    g.rule(
        "masquerading",
        &format!("meta mark set meta mark ^ {MASQ_MARK}"),
    );
    g.rule("masquerading", "masquerade fully-random");
    g.chain("mark-for-masquerade");
    g.rule(
        "mark-for-masquerade",
        &format!("meta mark set meta mark | {MASQ_MARK}"),
    );
    g.chain("reject-chain");
    g.rule("reject-chain", "reject");
    g.chain("service-endpoints-check");
    g.rule(
        "service-endpoints-check",
        "ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
    );
    g.rule(
        "service-endpoints-check",
        "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports",
    );
    g.chain("services");
    g.rule(
        "services",
        "ip daddr . meta l4proto . th dport vmap @service-ips",
    );
    g.rule(
        "services",
        "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports",
    );

    let base = format!("{}{}", g.out, g.rules);
    let mut units = BTreeMap::new();
    let mut unit_id: Option<String> = None;
    for sp in ports {
        let id = sp.id();
        // The previous service port's unit is complete (its loop body may `continue`).
        if let (Some(prev), Some(u)) = (unit_id.take(), g.unit.take()) {
            units.insert(prev, Arc::new(u));
        }
        if let Some(old) = previous
            .and_then(|p| p.units.get(&id))
            .filter(|u| u.port == *sp)
        {
            g.reuse(old);
            units.insert(id, Arc::clone(old));
            continue;
        }
        unit_id = Some(id.clone());
        g.unit = Some(Unit::new(sp));
        let proto = sp.protocol.nft();
        // Endpoint chains, one per endpoint (all of them: the local-only lists pick a subset).
        let mut ep_chain = Vec::with_capacity(sp.endpoints.len());
        for ep in &sp.endpoints {
            let eid = endpoint_id(sp, ep);
            let chain = named("endpoint", &eid);
            g.chain(&chain);
            g.rule(
                &chain,
                &format!("ip saddr {} jump mark-for-masquerade", ep.ip),
            );
            if let Some(t) = sp.affinity_timeout {
                let set = named("affinity", &eid);
                g.set(
                    &set,
                    &format!("type ipv4_addr; flags dynamic,timeout; timeout {t}s"),
                );
                g.rule(&chain, &format!("update @{set} {{ ip saddr }}"));
            }
            g.rule(
                &chain,
                &format!("meta l4proto {proto} dnat to {}:{}", ep.ip, ep.port),
            );
            ep_chain.push((ep, chain));
        }
        let pick = |local_only: bool| -> Vec<(&Endpoint, String)> {
            ep_chain
                .iter()
                .filter(|(e, _)| !local_only || e.local)
                .map(|(e, c)| (*e, c.clone()))
                .collect()
        };
        let affinity_rules = |g: &mut Gen, chain: &str, eps: &[(&Endpoint, String)]| {
            if sp.affinity_timeout.is_some() {
                for (e, c) in eps {
                    let set = named("affinity", &endpoint_id(sp, e));
                    g.rule(chain, &format!("ip saddr @{set} goto {c}"));
                }
            }
        };

        // The ClusterIP ("cluster") side.
        let cluster_eps = pick(sp.internal_local);
        let svc_chain = named("service", &id);
        let key = format!("{} . {proto} . {}", sp.cluster_ip, sp.port);
        if cluster_eps.is_empty() {
            g.element("no-endpoint-services", &key, "goto reject-chain");
        } else {
            g.chain(&svc_chain);
            g.rule(
                &svc_chain,
                &format!(
                    "ip daddr {} {proto} dport {} ip saddr != {cidr} jump mark-for-masquerade",
                    sp.cluster_ip, sp.port
                ),
            );
            affinity_rules(&mut g, &svc_chain, &cluster_eps);
            let targets: Vec<String> = cluster_eps.iter().map(|(_, c)| c.clone()).collect();
            for r in spread(&targets) {
                g.rule(&svc_chain, &r);
            }
            g.element("service-ips", &key, &format!("goto {svc_chain}"));
        }

        // The NodePort ("external") side.
        let Some(np) = sp.node_port else { continue };
        let nkey = format!("{proto} . {np}");
        let has_cluster = !cluster_eps.is_empty();
        if !sp.external_local {
            if !has_cluster {
                g.element("no-endpoint-nodeports", &nkey, "goto reject-chain");
                continue;
            }
            let ext = named("external", &id);
            g.chain(&ext);
            g.rule(&ext, "jump mark-for-masquerade");
            g.rule(&ext, &format!("goto {svc_chain}"));
            g.element("service-nodeports", &nkey, &format!("goto {ext}"));
            continue;
        }
        // externalTrafficPolicy: Local keeps the client's address and only uses endpoints on
        // this node; pods and the node itself may still use any endpoint.
        let ext = named("external", &id);
        g.chain(&ext);
        if has_cluster {
            g.rule(&ext, &format!("ip saddr {cidr} goto {svc_chain}"));
            g.rule(&ext, "fib saddr type local jump mark-for-masquerade");
            g.rule(&ext, &format!("fib saddr type local goto {svc_chain}"));
        }
        let local = pick(true);
        if local.is_empty() {
            g.rule(&ext, "drop");
        } else {
            affinity_rules(&mut g, &ext, &local);
            let targets: Vec<String> = local.iter().map(|(_, c)| c.clone()).collect();
            for r in spread(&targets) {
                g.rule(&ext, &r);
            }
        }
        g.element("service-nodeports", &nkey, &format!("goto {ext}"));
    }
    if let (Some(id), Some(u)) = (unit_id, g.unit.take()) {
        units.insert(id, Arc::new(u));
    }
    Ruleset {
        chains: g.chains,
        sets: g.sets,
        base,
        base_decls: g.out,
        base_rules: g.rules,
        units,
        cluster_cidr: cfg.cluster_cidr,
    }
}
