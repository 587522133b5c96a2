//! The pod network of one node: a bridge holding the gateway address (`.1`) of the node's
//! pod CIDR, a veth pair per pod (one end on the bridge, the other moved into the pod's
//! network namespace as `eth0` with an address from the node's range and a default route via
//! the bridge), host-gw routes to other nodes' pod CIDRs through their node IPs, and
//! masquerading of pod traffic that leaves the cluster CIDR.
//!
//! All kernel work is netlink, from a dedicated thread per operation that enters the node's
//! namespace (the agent's own unless `node_netns` says otherwise) and, for a pod, the pod's.
//! `hostNetwork` pods need none of this: they use the node's namespace as it is.
use std::collections::BTreeMap;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Node;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute};
use rtnetlink::{
    Handle, IpVersion, LinkBridge, LinkBridgePort, LinkDummy, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

use crate::error::{netlink_errno, Error, Result};
use crate::hostipam::HostIpam;
use crate::netns::{self, run_async_in};
use crate::nft::Nft;
use crate::nodeipam::node_pod_cidr;

/// Routes we own carry this protocol number, so stale ones can be found and removed.
pub const ROUTE_PROTO: u8 = 181;
/// Routing table for the node's own traffic to the service CIDR (see `ensure_node`).
pub const SERVICE_TABLE: u32 = 181;
/// Priority of the rule sending the node's own service traffic to [`SERVICE_TABLE`].
pub const SERVICE_RULE_PRIORITY: u32 = 181;
/// The nftables table of the pod network (masquerading); the proxy has its own.
pub const NFT_TABLE: &str = "bosun-net";

/// Configuration of the pod network on a node.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// IPAM state goes to `data_dir/net/ipam`.
    pub data_dir: PathBuf,
    /// Bridge name (upstream's bridge CNI says `cni0`; ours is `bosun0`).
    pub bridge: String,
    /// MTU of the bridge and veths; 1500 as on a plain Ethernet node network.
    pub mtu: u32,
    /// The cluster's pod CIDR (kube-controller-manager's `--cluster-cidr` default).
    pub cluster_cidr: Ipv4Net,
    /// The service CIDR (kube-apiserver's default `10.96.0.0/12`).
    pub service_cidr: Ipv4Net,
    /// Network namespace playing the node; `None` is the agent's own (production).
    pub node_netns: Option<PathBuf>,
    /// Masquerade pod traffic leaving the cluster CIDR (off only for routed setups).
    pub masquerade: bool,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("/var/lib/bosun"),
            bridge: "bosun0".into(),
            mtu: 1500,
            cluster_cidr: Ipv4Net::new(Ipv4Addr::new(10, 244, 0, 0), 16).unwrap_or_default(),
            service_cidr: Ipv4Net::new(Ipv4Addr::new(10, 96, 0, 0), 12).unwrap_or_default(),
            node_netns: None,
            masquerade: true,
        }
    }
}

/// What a pod got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodIps {
    /// The pod's address (`status.podIP`).
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    /// The host end of the pod's veth pair.
    pub host_veth: String,
}

/// The pod network of one node.
#[derive(Debug, Clone)]
pub struct PodNetwork {
    cfg: NetConfig,
    ipam: HostIpam,
}

/// Names of a pod's veth ends in the node namespace: `bv` (host end) and `bp` (the peer,
/// until it is renamed `eth0` in the pod) + 12 hex digits of a hash of the pod uid.
pub fn veth_names(pod_uid: &str) -> (String, String) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in pod_uid.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let hex = format!("{:012x}", h & 0xffff_ffff_ffff);
    (format!("bv{hex}"), format!("bp{hex}"))
}

impl PodNetwork {
    /// Sets up the node side (bridge, gateway address, forwarding, service CIDR routes,
    /// masquerading) for the node's `pod_cidr`; idempotent, so an agent restart calls it
    /// again and finds everything in place.
    pub async fn new(cfg: NetConfig, pod_cidr: Ipv4Net) -> Result<Self> {
        let ipam = HostIpam::new(&cfg.data_dir.join("net").join("ipam"), pod_cidr.trunc())?;
        let net = Self { cfg, ipam };
        net.ensure_node().await?;
        Ok(net)
    }

    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// The node's pod CIDR.
    pub fn pod_cidr(&self) -> Ipv4Net {
        self.ipam.subnet()
    }

    /// The bridge's address, every pod's default gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        self.ipam.gateway()
    }

    async fn ensure_node(&self) -> Result<()> {
        let cfg = self.cfg.clone();
        let gw = self.gateway();
        let cidr = self.pod_cidr();
        run_async_in(cfg.node_netns.clone(), "node-setup", move || async move {
            let h = netns::netlink()?;
            let br = match link_index(&h, &cfg.bridge).await? {
                Some(i) => i,
                None => {
                    h.link()
                        .add(LinkBridge::new(&cfg.bridge).mtu(cfg.mtu).build())
                        .execute()
                        .await
                        .map_err(Error::netlink(format!("add bridge {}", cfg.bridge)))?;
                    link_index(&h, &cfg.bridge)
                        .await?
                        .ok_or_else(|| Error::Dns(format!("bridge {} vanished", cfg.bridge)))?
                }
            };
            // A fixed MAC (derived from the gateway address like the pods' own): left
            // unset, a bridge takes the lowest MAC among its ports, so a new pod's veth
            // could change the gateway's MAC under every other pod's ARP cache and cut
            // their traffic off the node until the entries expired.
            h.link()
                .set(
                    LinkUnspec::new_with_index(br)
                        .address(pod_mac(gw).to_vec())
                        .up()
                        .build(),
                )
                .execute()
                .await
                .map_err(Error::netlink(format!("set {} up", cfg.bridge)))?;
            ignore_exists(
                h.address()
                    .add(br, IpAddr::V4(gw), cidr.prefix_len())
                    .execute()
                    .await,
                format!("add {gw}/{} to {}", cidr.prefix_len(), cfg.bridge),
            )?;
            // Written from this thread, /proc/sys/net is the node namespace's.
            let fwd = "/proc/sys/net/ipv4/ip_forward";
            std::fs::write(fwd, "1").map_err(Error::io("write", fwd))?;
            // Pod traffic to a service address not (or no longer) programmed must never
            // leave the machine: an unreachable route for the whole service CIDR. The node's
            // own traffic to a ClusterIP needs a usable route before the output hook can
            // DNAT it, so locally generated packets (`iif lo`) look the service CIDR up in a
            // table of their own that points at the bridge (which only reaches local pods).
            let svc = cfg.service_cidr.trunc();
            h.route()
                .add(
                    RouteMessageBuilder::<Ipv4Addr>::new()
                        .destination_prefix(svc.network(), svc.prefix_len())
                        .kind(RouteType::Unreachable)
                        .protocol(RouteProtocol::Other(ROUTE_PROTO))
                        .build(),
                )
                .replace()
                .execute()
                .await
                .map_err(Error::netlink(format!("add unreachable route {svc}")))?;
            h.route()
                .add(
                    RouteMessageBuilder::<Ipv4Addr>::new()
                        .destination_prefix(svc.network(), svc.prefix_len())
                        .output_interface(br)
                        .pref_source(gw)
                        .scope(RouteScope::Link)
                        .table_id(SERVICE_TABLE)
                        .protocol(RouteProtocol::Other(ROUTE_PROTO))
                        .build(),
                )
                .replace()
                .execute()
                .await
                .map_err(Error::netlink(format!(
                    "add {svc} to table {SERVICE_TABLE}"
                )))?;
            let rules: Vec<_> = h
                .rule()
                .get(IpVersion::V4)
                .execute()
                .try_collect()
                .await
                .map_err(Error::netlink("list rules"))?;
            let have = rules.iter().any(|r| {
                r.attributes
                    .contains(&RuleAttribute::Priority(SERVICE_RULE_PRIORITY))
            });
            if !have {
                h.rule()
                    .add()
                    .input_interface("lo")
                    .table_id(SERVICE_TABLE)
                    .priority(SERVICE_RULE_PRIORITY)
                    .action(RuleAction::ToTable)
                    .v4()
                    .destination_prefix(svc.network(), svc.prefix_len())
                    .execute()
                    .await
                    .map_err(Error::netlink("add service rule"))?;
            }
            Ok(())
        })
        .await?;
        Nft::new(self.cfg.node_netns.clone())
            .apply(&masquerade_ruleset(&self.cfg))
            .await
    }

    /// Connects the pod whose network namespace is pinned at `netns` (the runtime sandbox's
    /// `netns()`), idempotently: a second call for the same pod recreates its veth and keeps
    /// its address.
    pub async fn setup(&self, pod_uid: &str, netns: &Path) -> Result<PodIps> {
        let ip = self.ipam.allocate(pod_uid)?;
        let (host, peer) = veth_names(pod_uid);
        let cfg = self.cfg.clone();
        let gw = self.gateway();
        let prefix = self.pod_cidr().prefix_len();
        let pod_ns = netns.to_path_buf();
        let host_name = host.clone();
        let r = run_async_in(cfg.node_netns.clone(), "pod-setup", move || async move {
            let h = netns::netlink()?;
            let br = link_index(&h, &cfg.bridge)
                .await?
                .ok_or_else(|| Error::Nft(format!("bridge {} missing", cfg.bridge)))?;
            if let Some(old) = link_index(&h, &host).await? {
                h.link()
                    .del(old)
                    .execute()
                    .await
                    .map_err(Error::netlink(format!("delete old {host}")))?;
            }
            h.link()
                .add(LinkVeth::new(&host, &peer).mtu(cfg.mtu).build())
                .execute()
                .await
                .map_err(Error::netlink(format!("add veth {host}")))?;
            let hi = link_index(&h, &host)
                .await?
                .ok_or_else(|| Error::Nft(format!("veth {host} vanished")))?;
            let pi = link_index(&h, &peer)
                .await?
                .ok_or_else(|| Error::Nft(format!("veth {peer} vanished")))?;
            let nsf = File::open(&pod_ns).map_err(Error::io("open netns", &pod_ns))?;
            h.link()
                .set(
                    LinkUnspec::new_with_index(pi)
                        .mtu(cfg.mtu)
                        .setns_by_fd(nsf.as_raw_fd())
                        .build(),
                )
                .execute()
                .await
                .map_err(Error::netlink(format!("move {peer} into pod")))?;
            h.link()
                .set(LinkUnspec::new_with_index(hi).controller(br).up().build())
                .execute()
                .await
                .map_err(Error::netlink(format!("attach {host} to {}", cfg.bridge)))?;
            // Hairpin: a pod reaching itself through a Service comes back out the same port.
            h.link()
                .set_port(LinkBridgePort::new(hi).hairpin(true).build())
                .execute()
                .await
                .map_err(Error::netlink(format!("hairpin on {host}")))?;

            // Now the pod side: this thread is dedicated, so it may move for good.
            netns::enter(&pod_ns)?;
            let p = netns::netlink()?;
            if let Some(lo) = link_index(&p, "lo").await? {
                p.link()
                    .set(LinkUnspec::new_with_index(lo).up().build())
                    .execute()
                    .await
                    .map_err(Error::netlink("set lo up in pod"))?;
            }
            let ei = link_index(&p, &peer)
                .await?
                .ok_or_else(|| Error::Nft(format!("{peer} not in pod namespace")))?;
            p.link()
                .set(
                    LinkUnspec::new_with_index(ei)
                        .name("eth0")
                        .address(pod_mac(ip).to_vec())
                        .up()
                        .build(),
                )
                .execute()
                .await
                .map_err(Error::netlink("rename eth0 in pod"))?;
            ignore_exists(
                p.address().add(ei, IpAddr::V4(ip), prefix).execute().await,
                format!("add {ip}/{prefix} to pod eth0"),
            )?;
            p.route()
                .add(RouteMessageBuilder::<Ipv4Addr>::new().gateway(gw).build())
                .replace()
                .execute()
                .await
                .map_err(Error::netlink("add default route in pod"))?;
            Ok(())
        })
        .await;
        if let Err(e) = r {
            // Leave nothing half-done: no veth, no address held.
            let _ = self.teardown(pod_uid).await;
            return Err(e);
        }
        Ok(PodIps {
            ip,
            prefix_len: prefix,
            gateway: gw,
            host_veth: host_name,
        })
    }

    /// Like [`setup`](Self::setup), but leaves a pod that is already connected alone (its
    /// address recorded and its host veth present): a restarted agent adopting running pods
    /// keeps their connectivity without recreating anything.
    pub async fn ensure(&self, pod_uid: &str, netns: &Path) -> Result<PodIps> {
        let existing = self
            .ipam
            .list()?
            .into_iter()
            .find(|(_, owner)| owner == pod_uid)
            .map(|(ip, _)| ip);
        if let Some(ip) = existing {
            let (host, _) = veth_names(pod_uid);
            let h2 = host.clone();
            let present = run_async_in(
                self.cfg.node_netns.clone(),
                "pod-check",
                move || async move {
                    let h = netns::netlink()?;
                    Ok(link_index(&h, &h2).await?.is_some())
                },
            )
            .await?;
            if present {
                return Ok(PodIps {
                    ip,
                    prefix_len: self.pod_cidr().prefix_len(),
                    gateway: self.gateway(),
                    host_veth: host,
                });
            }
        }
        self.setup(pod_uid, netns).await
    }

    /// Every (address, pod uid) the node's IPAM holds.
    pub fn allocated(&self) -> Result<Vec<(Ipv4Addr, String)>> {
        self.ipam.list()
    }

    /// Disconnects a pod and releases its address (idempotent; the pod's namespace may be
    /// gone already, which takes the veth with it).
    pub async fn teardown(&self, pod_uid: &str) -> Result<()> {
        let (host, _) = veth_names(pod_uid);
        run_async_in(
            self.cfg.node_netns.clone(),
            "pod-teardown",
            move || async move {
                let h = netns::netlink()?;
                if let Some(i) = link_index(&h, &host).await? {
                    match h.link().del(i).execute().await {
                        Ok(()) => {}
                        Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => {}
                        Err(e) => return Err(Error::netlink(format!("delete {host}"))(e)),
                    }
                }
                Ok(())
            },
        )
        .await?;
        self.ipam.release(pod_uid)?;
        Ok(())
    }

    /// Makes the host-gw routes exactly one per other node: its pod CIDR via its
    /// `InternalIP` (else first address). Routes to nodes that are gone are removed.
    pub async fn sync_routes(&self, nodes: &[Node]) -> Result<()> {
        let own = self.pod_cidr();
        let mut want: BTreeMap<Ipv4Net, Ipv4Addr> = BTreeMap::new();
        for n in nodes {
            let (Some(cidr), Some(ip)) = (node_pod_cidr(n), node_ip(n)) else {
                continue;
            };
            if cidr.trunc() != own {
                want.insert(cidr.trunc(), ip);
            }
        }
        let svc = self.cfg.service_cidr.trunc();
        run_async_in(
            self.cfg.node_netns.clone(),
            "sync-routes",
            move || async move {
                let h = netns::netlink()?;
                let routes: Vec<_> = h
                    .route()
                    .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
                    .execute()
                    .try_collect()
                    .await
                    .map_err(Error::netlink("list routes"))?;
                for r in routes {
                    if r.header.protocol != RouteProtocol::Other(ROUTE_PROTO)
                        || r.header.table != RouteHeaderMain::MAIN
                        || r.header.kind != RouteType::Unicast
                    {
                        continue;
                    }
                    let dst = r.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Destination(RouteAddress::Inet(d)) => Some(*d),
                        _ => None,
                    });
                    let gw = r.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Gateway(RouteAddress::Inet(d)) => Some(*d),
                        _ => None,
                    });
                    let Some(dst) = dst else { continue };
                    let Ok(net) = Ipv4Net::new(dst, r.header.destination_prefix_length) else {
                        continue;
                    };
                    if net == svc {
                        continue;
                    }
                    if want.get(&net) == gw.as_ref() {
                        want.remove(&net);
                        continue;
                    }
                    if !want.contains_key(&net) {
                        match h.route().del(r).execute().await {
                            Ok(()) => {}
                            Err(e) if netlink_errno(&e) == Some(libc::ESRCH) => {}
                            Err(e) => return Err(Error::netlink(format!("delete route {net}"))(e)),
                        }
                    }
                }
                for (net, via) in want {
                    h.route()
                        .add(
                            RouteMessageBuilder::<Ipv4Addr>::new()
                                .destination_prefix(net.network(), net.prefix_len())
                                .gateway(via)
                                .protocol(RouteProtocol::Other(ROUTE_PROTO))
                                .build(),
                        )
                        .replace()
                        .execute()
                        .await
                        .map_err(Error::netlink(format!("route {net} via {via}")))?;
                }
                Ok(())
            },
        )
        .await
    }
}

/// Gives the node the local address `ip` (/32) on the interface `ifname` (`lo`, or a dummy
/// interface created if missing), idempotently: how a node answers a ClusterIP itself, as
/// the cluster DNS address, without any proxy rule (NodeLocal DNSCache does the same).
pub async fn ensure_local_address(
    node_netns: Option<PathBuf>,
    ifname: &str,
    ip: Ipv4Addr,
) -> Result<()> {
    let ifname = ifname.to_string();
    run_async_in(node_netns, "local-address", move || async move {
        let h = netns::netlink()?;
        let idx = match link_index(&h, &ifname).await? {
            Some(i) => i,
            None => {
                ignore_exists(
                    h.link()
                        .add(LinkDummy::new(&ifname).build())
                        .execute()
                        .await,
                    format!("add dummy link {ifname}"),
                )?;
                link_index(&h, &ifname)
                    .await?
                    .ok_or_else(|| Error::Nft(format!("link {ifname} vanished")))?
            }
        };
        h.link()
            .set(LinkUnspec::new_with_index(idx).up().build())
            .execute()
            .await
            .map_err(Error::netlink(format!("set {ifname} up")))?;
        ignore_exists(
            h.address().add(idx, IpAddr::V4(ip), 32).execute().await,
            format!("add {ip}/32 to {ifname}"),
        )
    })
    .await
}

struct RouteHeaderMain;
impl RouteHeaderMain {
    const MAIN: u8 = 254;
}

/// The pod's MAC, derived from its address (`0a:58` + the IPv4 bytes, as OVN-Kubernetes
/// does): a re-created veth keeps it, so neighbours' ARP caches stay right.
pub fn pod_mac(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x0a, 0x58, o[0], o[1], o[2], o[3]]
}

/// A Node's address for host-gw routes: `InternalIP`, else the first IPv4 address.
pub fn node_ip(node: &Node) -> Option<Ipv4Addr> {
    let addrs = node.status.as_ref()?.addresses.as_ref()?;
    addrs
        .iter()
        .find(|a| a.type_ == "InternalIP" && a.address.parse::<Ipv4Addr>().is_ok())
        .or_else(|| addrs.iter().find(|a| a.address.parse::<Ipv4Addr>().is_ok()))
        .and_then(|a| a.address.parse().ok())
}

/// The pod network's own nftables table: masquerade pod traffic leaving the cluster CIDR
/// (not to service addresses: those are DNATed to pods before postrouting anyway).
pub fn masquerade_ruleset(cfg: &NetConfig) -> String {
    let mut s =
        format!("add table ip {NFT_TABLE}\ndelete table ip {NFT_TABLE}\ntable ip {NFT_TABLE} {{\n");
    s.push_str(
        "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
    );
    if cfg.masquerade {
        let c = cfg.cluster_cidr.trunc();
        s.push_str(&format!(
            "\t\tip saddr {c} ip daddr != {c} oifname != \"{}\" masquerade\n",
            cfg.bridge
        ));
    }
    s.push_str("\t}\n}\n");
    s
}

async fn link_index(h: &Handle, name: &str) -> Result<Option<u32>> {
    let mut s = h.link().get().match_name(name.to_string()).execute();
    match s.try_next().await {
        Ok(Some(m)) => Ok(Some(m.header.index)),
        Ok(None) => Ok(None),
        Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(Error::netlink(format!("get link {name}"))(e)),
    }
}

fn ignore_exists(r: std::result::Result<(), rtnetlink::Error>, op: String) -> Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => Ok(()),
        Err(e) => Err(Error::netlink(op)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_fit_ifnamsiz_and_differ() {
        let (h, p) = veth_names("0a1b2c3d-0000-4000-8000-000000000001");
        assert!(h.len() <= 15 && p.len() <= 15);
        assert_ne!(h, p);
        assert_ne!(veth_names("a").0, veth_names("b").0);
    }

    #[test]
    fn masquerade_rules() {
        let s = masquerade_ruleset(&NetConfig::default());
        assert!(s.contains(
            "ip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16 oifname != \"bosun0\" masquerade"
        ));
    }
}
