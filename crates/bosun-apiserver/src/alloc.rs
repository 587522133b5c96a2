//! Service ClusterIP and NodePort allocation. Each allocated IP or port is one key in the
//! store (`/bosun/allocations/...`), created with create-if-absent, so two servers
//! sharing a store can never hand out the same one, and allocations survive restarts.

use std::net::Ipv4Addr;
use std::sync::Arc;

use bosun_store::{Error as StoreError, Store};
use bytes::Bytes;
use rand::Rng;

const IP_PREFIX: &str = "/bosun/allocations/serviceips/";
const PORT_PREFIX: &str = "/bosun/allocations/nodeports/";

/// An IPv4 CIDR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (ip, len) = s
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR {s:?}: no prefix length"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("invalid CIDR {s:?}: bad address"))?;
        let prefix: u8 = len
            .parse()
            .map_err(|_| format!("invalid CIDR {s:?}: bad prefix length"))?;
        if !(8..=30).contains(&prefix) {
            return Err(format!(
                "invalid CIDR {s:?}: prefix length must be between 8 and 30"
            ));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Cidr {
            base: Ipv4Addr::from(u32::from(ip) & mask),
            prefix,
        })
    }
    pub fn size(&self) -> u32 {
        1u32 << (32 - self.prefix)
    }
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix);
        u32::from(ip) & mask == u32::from(self.base)
    }
    /// The n-th address of the range.
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + n)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// Why an allocation failed; the caller words it as a field error.
#[derive(Debug, thiserror::Error)]
pub enum AllocError {
    #[error("provided IP is already allocated")]
    IpTaken,
    #[error("the provided IP ({ip}) is not in the valid range. The range of valid IPs is {cidr}")]
    IpOutOfRange { ip: String, cidr: Cidr },
    #[error("provided port is already allocated")]
    PortTaken,
    #[error("provided port is not in the valid range. The range of valid ports is {lo}-{hi}")]
    PortOutOfRange { lo: u16, hi: u16 },
    #[error("range is full")]
    Full,
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Hands out service IPs and node ports.
pub struct Allocator {
    store: Arc<dyn Store>,
    pub service_cidr: Cidr,
    pub node_ports: (u16, u16),
}

impl Allocator {
    pub fn new(store: Arc<dyn Store>, service_cidr: Cidr, node_ports: (u16, u16)) -> Self {
        Allocator {
            store,
            service_cidr,
            node_ports,
        }
    }

    /// Allocates `ip` (when given) or a free one, for the service `owner` (its store key).
    pub async fn allocate_ip(&self, ip: Option<&str>, owner: &str) -> Result<Ipv4Addr, AllocError> {
        if let Some(ip) = ip {
            let parsed: Ipv4Addr = ip.parse().map_err(|_| AllocError::IpOutOfRange {
                ip: ip.to_string(),
                cidr: self.service_cidr,
            })?;
            let n = u32::from(parsed).wrapping_sub(u32::from(self.service_cidr.base));
            if !self.service_cidr.contains(parsed) || n == 0 || n == self.service_cidr.size() - 1 {
                return Err(AllocError::IpOutOfRange {
                    ip: ip.to_string(),
                    cidr: self.service_cidr,
                });
            }
            return match self
                .store
                .create(
                    &format!("{IP_PREFIX}{parsed}"),
                    Bytes::from(owner.to_string()),
                )
                .await
            {
                Ok(_) => Ok(parsed),
                Err(StoreError::AlreadyExists { .. }) => Err(AllocError::IpTaken),
                Err(e) => Err(e.into()),
            };
        }
        // Random start, then linear probing; skip the network and broadcast addresses and
        // the first address (reserved for the `kubernetes` Service).
        let size = self.service_cidr.size();
        let start = rand::rng().random_range(2..size - 1);
        for i in 0..size {
            let n = 2 + (start - 2 + i) % (size - 3);
            let candidate = self.service_cidr.nth(n);
            match self
                .store
                .create(
                    &format!("{IP_PREFIX}{candidate}"),
                    Bytes::from(owner.to_string()),
                )
                .await
            {
                Ok(_) => return Ok(candidate),
                Err(StoreError::AlreadyExists { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AllocError::Full)
    }

    pub async fn release_ip(&self, ip: &str) {
        if let Err(e) = self.store.delete(&format!("{IP_PREFIX}{ip}"), None).await {
            if !matches!(e, StoreError::NotFound { .. }) {
                tracing::warn!(ip, error = %e, "releasing service IP");
            }
        }
    }

    /// Allocates `port` (when given) or a free node port.
    pub async fn allocate_port(&self, port: Option<i32>, owner: &str) -> Result<i32, AllocError> {
        let (lo, hi) = self.node_ports;
        if let Some(p) = port {
            if p < lo as i32 || p > hi as i32 {
                return Err(AllocError::PortOutOfRange { lo, hi });
            }
            return match self
                .store
                .create(&format!("{PORT_PREFIX}{p}"), Bytes::from(owner.to_string()))
                .await
            {
                Ok(_) => Ok(p),
                Err(StoreError::AlreadyExists { .. }) => Err(AllocError::PortTaken),
                Err(e) => Err(e.into()),
            };
        }
        let span = (hi - lo) as i32 + 1;
        let start = rand::rng().random_range(0..span);
        for i in 0..span {
            let p = lo as i32 + (start + i) % span;
            match self
                .store
                .create(&format!("{PORT_PREFIX}{p}"), Bytes::from(owner.to_string()))
                .await
            {
                Ok(_) => return Ok(p),
                Err(StoreError::AlreadyExists { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AllocError::Full)
    }

    pub async fn release_port(&self, port: i32) {
        if let Err(e) = self
            .store
            .delete(&format!("{PORT_PREFIX}{port}"), None)
            .await
        {
            if !matches!(e, StoreError::NotFound { .. }) {
                tracing::warn!(port, error = %e, "releasing node port");
            }
        }
    }

    /// Every allocation with its owner key: (is_ip, value, owner).
    pub async fn all(&self) -> Result<Vec<(bool, String, String)>, StoreError> {
        let mut out = Vec::new();
        for (is_ip, prefix) in [(true, IP_PREFIX), (false, PORT_PREFIX)] {
            let res = self.store.list(prefix, Default::default()).await?;
            for kv in res.kvs {
                let v = kv.key.trim_start_matches(prefix).to_string();
                out.push((is_ip, v, String::from_utf8_lossy(&kv.value).into_owned()));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.96.0.0/12").expect("valid");
        assert_eq!(c.nth(1), Ipv4Addr::new(10, 96, 0, 1));
        assert!(c.contains(Ipv4Addr::new(10, 111, 255, 254)));
        assert!(!c.contains(Ipv4Addr::new(10, 112, 0, 1)));
        assert!(Cidr::parse("10.96.0.0").is_err());
        assert!(Cidr::parse("nonsense/12").is_err());
    }
}
