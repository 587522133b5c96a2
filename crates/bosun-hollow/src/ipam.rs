//! Addresses of hollow nodes and their pods: a host IP per node, a pod CIDR per node
//! carved from one large range, and a small allocator of pod IPs inside each node's CIDR.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::Error;

/// An IPv4 CIDR such as `10.64.0.0/10`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, Error> {
        let bad = || Error::InvalidOption {
            field: "pod_cidr",
            value: s.to_string(),
        };
        let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        let mask = mask(prefix);
        Ok(Cidr {
            base: Ipv4Addr::from(u32::from(ip) & mask),
            prefix,
        })
    }

    /// The `index`-th subnet of length `sub_prefix` inside this range, if it exists.
    pub fn subnet(&self, index: u32, sub_prefix: u8) -> Option<Cidr> {
        if sub_prefix < self.prefix || sub_prefix > 32 {
            return None;
        }
        let bits = u32::from(sub_prefix - self.prefix);
        if bits < 32 && index >= (1u32 << bits) {
            return None;
        }
        let step = if sub_prefix == 32 {
            1
        } else {
            1u32 << (32 - sub_prefix)
        };
        Some(Cidr {
            base: Ipv4Addr::from(u32::from(self.base).checked_add(index.checked_mul(step)?)?),
            prefix: sub_prefix,
        })
    }

    /// The number of addresses usable by hosts (network and broadcast excluded).
    pub fn host_count(&self) -> u32 {
        if self.prefix >= 31 {
            return 0;
        }
        (1u32 << (32 - self.prefix)) - 2
    }

    /// The `n`-th host address (0 is the first after the network address).
    pub fn host(&self, n: u32) -> Option<Ipv4Addr> {
        (n < self.host_count()).then(|| Ipv4Addr::from(u32::from(self.base) + 1 + n))
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

/// The host IP of the node with `index`: 172.16.0.0/12 is private and never routed to,
/// so a simulated address can never reach a real machine.
pub fn host_ip(index: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 0, 0)) + 2 + (index % ((1 << 20) - 4)))
}

/// Pod IPs of one node. The first host address is left for the node's bridge, as a
/// real node would keep it.
#[derive(Debug)]
pub struct PodIps {
    cidr: Cidr,
    used: BTreeSet<u32>,
    next: u32,
}

impl PodIps {
    pub fn new(cidr: Cidr) -> PodIps {
        PodIps {
            cidr,
            used: BTreeSet::new(),
            next: 1,
        }
    }

    pub fn cidr(&self) -> Cidr {
        self.cidr
    }

    /// A free address, round robin so a freed address is not reused at once (a stale
    /// endpoint would otherwise point to the next pod).
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let n = self.cidr.host_count();
        if n < 2 {
            return None;
        }
        for _ in 0..n {
            let i = self.next;
            self.next = if self.next + 1 >= n { 1 } else { self.next + 1 };
            if self.used.insert(i) {
                return self.cidr.host(i);
            }
        }
        None
    }

    /// Marks an address already in use (a pod that got it before a restart).
    pub fn mark_used(&mut self, ip: Ipv4Addr) -> bool {
        match self.offset(ip) {
            Some(i) => self.used.insert(i),
            None => false,
        }
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        if let Some(i) = self.offset(ip) {
            self.used.remove(&i);
        }
    }

    fn offset(&self, ip: Ipv4Addr) -> Option<u32> {
        let ip = u32::from(ip);
        let base = u32::from(self.cidr.base) + 1;
        (ip >= base && ip - base < self.cidr.host_count()).then(|| ip - base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_masks() {
        let c = Cidr::parse("10.64.1.7/10").unwrap();
        assert_eq!(c.to_string(), "10.64.0.0/10");
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("10.0.0.0").is_err());
        assert!(Cidr::parse("x/8").is_err());
    }

    #[test]
    fn subnets_per_node() {
        let c = Cidr::parse("10.64.0.0/10").unwrap();
        assert_eq!(c.subnet(0, 24).unwrap().to_string(), "10.64.0.0/24");
        assert_eq!(c.subnet(257, 24).unwrap().to_string(), "10.65.1.0/24");
        assert_eq!(c.subnet(16383, 24).unwrap().to_string(), "10.127.255.0/24");
        assert!(c.subnet(16384, 24).is_none());
        assert!(c.subnet(0, 8).is_none());
    }

    #[test]
    fn allocates_without_reuse_until_wrap() {
        let mut p = PodIps::new(Cidr::parse("10.0.0.0/29").unwrap());
        // 6 hosts, the first kept for the bridge: 5 for pods.
        let ips: Vec<_> = (0..5).map(|_| p.allocate().unwrap()).collect();
        assert_eq!(ips[0], Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(ips[4], Ipv4Addr::new(10, 0, 0, 6));
        assert!(p.allocate().is_none());
        p.release(ips[2]);
        assert_eq!(p.allocate(), Some(ips[2]));
        assert!(!p.mark_used(ips[0]));
        assert!(!p.mark_used(Ipv4Addr::new(192, 168, 0, 1)));
    }

    #[test]
    fn host_ips_are_distinct() {
        assert_eq!(host_ip(0), Ipv4Addr::new(172, 16, 0, 2));
        assert_ne!(host_ip(1), host_ip(2));
    }
}
