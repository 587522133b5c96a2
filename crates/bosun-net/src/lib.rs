//! bosun's node network: pod CIDR allocation for nodes, the pod network on a node (bridge,
//! veth pairs, host-gw routes), the service proxy (nftables) and cluster DNS.
//!
//! Everything that touches the kernel can be pointed at a network namespace other than the
//! caller's (`node_netns`), which is how the integration tests run whole "nodes" inside
//! namespaces they create, never touching the host's own routes or rules.
#![deny(unsafe_code)]

pub mod cleanup;
pub mod dns;
pub mod error;
pub mod hostipam;
pub mod hostports;
pub mod netns;
pub mod netpol;
pub mod nft;
pub mod nodeipam;
pub mod podnet;
pub mod proxy;

pub use dns::{run_dns, DnsConfig, DnsServer};
pub use error::{Error, Result};
pub use ipnet;
pub use netpol::{run_network_policy, NetpolConfig};
pub use nodeipam::run_node_ipam;
pub use podnet::{NetConfig, PodIps, PodNetwork};
pub use proxy::{run_proxy, ProxyConfig};
