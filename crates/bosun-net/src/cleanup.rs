//! Removing what an agent's network leaves on its node once the agent has stopped (`bosun
//! down`, like k3s's `k3s-killall.sh`): the bridge and any pod veths still on the node, the
//! routes bosun owns (protocol [`ROUTE_PROTO`]: the service CIDR's unreachable route, its
//! table [`SERVICE_TABLE`] route, host-gw routes), the rule at priority
//! [`SERVICE_RULE_PRIORITY`], the cluster DNS address on its link, and the nftables tables of
//! the pod network, the proxy, hostPorts and network policies.
//!
//! Everything is idempotent: what is already gone is skipped, so a second run removes
//! nothing and succeeds.
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use futures::TryStreamExt;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::route::RouteProtocol;
use netlink_packet_route::rule::RuleAttribute;
use rtnetlink::{Handle, IpVersion, RouteMessageBuilder};

use crate::error::{netlink_errno, Error, Result};
use crate::netns::{self, run_async_in};
use crate::nft::Nft;
use crate::podnet::{ROUTE_PROTO, SERVICE_RULE_PRIORITY, SERVICE_TABLE};

/// What to remove; the defaults are what `bosun agent` sets up by default.
#[derive(Debug, Clone)]
pub struct CleanupConfig {
    /// The node's network namespace; `None` is the caller's own (production).
    pub node_netns: Option<PathBuf>,
    /// The pod bridge (`NetConfig::bridge`, `bosun0`).
    pub bridge: String,
    /// The cluster DNS address the agent put on `dns_link` (10.96.0.10: the tenth address
    /// of the default service CIDR, as the agent computes it).
    pub dns_ip: Ipv4Addr,
    /// The link holding `dns_ip` (`lo`).
    pub dns_link: String,
}

impl Default for CleanupConfig {
    fn default() -> Self {
        Self {
            node_netns: None,
            bridge: "bosun0".into(),
            dns_ip: Ipv4Addr::new(10, 96, 0, 10),
            dns_link: "lo".into(),
        }
    }
}

/// The nftables tables (family `ip`) bosun's agent creates.
pub const NFT_TABLES: [&str; 4] = [
    crate::proxy::rules::TABLE,
    crate::podnet::NFT_TABLE,
    crate::hostports::TABLE,
    crate::netpol::rules::TABLE,
];

/// Removes the node's bosun network state; returns one line per thing removed.
pub async fn remove_node_network(cfg: &CleanupConfig) -> Result<Vec<String>> {
    let c = cfg.clone();
    let mut removed = run_async_in(cfg.node_netns.clone(), "cleanup", move || async move {
        let h = netns::netlink()?;
        let mut removed = Vec::new();
        remove_links(&h, &c.bridge, &mut removed).await?;
        remove_routes(&h, &mut removed).await?;
        remove_rule(&h, &mut removed).await?;
        remove_address(&h, &c.dns_link, c.dns_ip, &mut removed).await?;
        Ok(removed)
    })
    .await?;
    let nft = Nft::new(cfg.node_netns.clone());
    for table in NFT_TABLES {
        if nft.list_table(table).await?.is_some() {
            // `add` first makes the delete succeed even if the table went meanwhile.
            nft.apply(&format!("add table ip {table}\ndelete table ip {table}\n"))
                .await?;
            removed.push(format!("nftables table ip {table}"));
        }
    }
    Ok(removed)
}

/// A pod's host veth end: `bv` and 12 hex digits (`podnet::veth_names`).
fn is_pod_veth(name: &str) -> bool {
    name.len() == 14 && name.starts_with("bv") && name[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

async fn remove_links(h: &Handle, bridge: &str, removed: &mut Vec<String>) -> Result<()> {
    let links: Vec<_> = h
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(Error::netlink("list links"))?;
    for l in links {
        let Some(name) = l.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        }) else {
            continue;
        };
        if name != bridge && !is_pod_veth(&name) {
            continue;
        }
        match h.link().del(l.header.index).execute().await {
            Ok(()) => removed.push(format!("link {name}")),
            // A veth goes with its peer's namespace; it may have gone meanwhile.
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => {}
            Err(e) => return Err(Error::netlink(format!("delete link {name}"))(e)),
        }
    }
    Ok(())
}

async fn remove_routes(h: &Handle, removed: &mut Vec<String>) -> Result<()> {
    let routes: Vec<_> = h
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute()
        .try_collect()
        .await
        .map_err(Error::netlink("list routes"))?;
    for r in routes {
        if r.header.protocol != RouteProtocol::Other(ROUTE_PROTO) {
            continue;
        }
        let what = format!(
            "route {} ({:?}, table {})",
            route_destination(&r),
            r.header.kind,
            r.header.table
        );
        match h.route().del(r).execute().await {
            Ok(()) => removed.push(what),
            Err(e) if netlink_errno(&e) == Some(libc::ESRCH) => {}
            Err(e) => return Err(Error::netlink(format!("delete {what}"))(e)),
        }
    }
    Ok(())
}

fn route_destination(r: &netlink_packet_route::route::RouteMessage) -> String {
    use netlink_packet_route::route::{RouteAddress, RouteAttribute};
    let dst = r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(d)) => Some(*d),
        _ => None,
    });
    match dst {
        Some(d) => format!("{d}/{}", r.header.destination_prefix_length),
        None => "default".into(),
    }
}

async fn remove_rule(h: &Handle, removed: &mut Vec<String>) -> Result<()> {
    let rules: Vec<_> = h
        .rule()
        .get(IpVersion::V4)
        .execute()
        .try_collect()
        .await
        .map_err(Error::netlink("list rules"))?;
    for r in rules {
        let ours = r
            .attributes
            .contains(&RuleAttribute::Priority(SERVICE_RULE_PRIORITY))
            && (u32::from(r.header.table) == SERVICE_TABLE
                || r.attributes.contains(&RuleAttribute::Table(SERVICE_TABLE)));
        if !ours {
            continue;
        }
        match h.rule().del(r).execute().await {
            Ok(()) => removed.push(format!(
                "rule priority {SERVICE_RULE_PRIORITY} (table {SERVICE_TABLE})"
            )),
            Err(e) if netlink_errno(&e) == Some(libc::ENOENT) => {}
            Err(e) => return Err(Error::netlink("delete the service rule")(e)),
        }
    }
    Ok(())
}

async fn remove_address(
    h: &Handle,
    link: &str,
    ip: Ipv4Addr,
    removed: &mut Vec<String>,
) -> Result<()> {
    let mut links = h.link().get().match_name(link.to_string()).execute();
    let index = match links.try_next().await {
        Ok(Some(m)) => m.header.index,
        Ok(None) => return Ok(()),
        Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => return Ok(()),
        Err(e) => return Err(Error::netlink(format!("get link {link}"))(e)),
    };
    let addrs: Vec<_> = h
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect()
        .await
        .map_err(Error::netlink(format!("list addresses of {link}")))?;
    for a in addrs {
        let matches = a.header.prefix_len == 32
            && a.attributes.iter().any(|x| {
                matches!(x, AddressAttribute::Address(IpAddr::V4(v)) | AddressAttribute::Local(IpAddr::V4(v)) if *v == ip)
            });
        if !matches {
            continue;
        }
        match h.address().del(a).execute().await {
            Ok(()) => removed.push(format!("address {ip}/32 on {link}")),
            Err(e) if netlink_errno(&e) == Some(libc::EADDRNOTAVAIL) => {}
            Err(e) => return Err(Error::netlink(format!("delete {ip}/32 from {link}"))(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_veths_are_recognised_by_name() {
        let (host, peer) = crate::podnet::veth_names("0a1b2c3d-0000-4000-8000-000000000001");
        assert!(is_pod_veth(&host));
        // The peer end lives in the pod; on the node only the host end is ours.
        assert!(!is_pod_veth(&peer));
        assert!(!is_pod_veth("bosun0"));
        assert!(!is_pod_veth("bvzzzzzzzzzzzz"));
        assert!(!is_pod_veth("eth0"));
    }

    #[test]
    fn the_tables_are_the_agents() {
        assert_eq!(
            NFT_TABLES,
            ["bosun", "bosun-net", "bosun-hostports", "bosun-netpol"]
        );
    }
}
