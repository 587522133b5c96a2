//! Cluster DNS, in-process: answers the cluster domain from Services and EndpointSlices
//! (see `zone`) and forwards every other name to the node's upstream resolvers. Wire format
//! from `hickory-proto`; the UDP and TCP loops are ours (small, and no resolver state).
pub mod resolv;
pub mod wire;
pub mod zone;

use std::borrow::Borrow;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::Client;
use std::sync::RwLock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::error::{Error, Result};
pub use zone::{Lookup, QType, Rec, Zone};

/// Answers' TTL (CoreDNS's `kubernetes` plugin default).
pub const TTL: u32 = 5;

/// DNS server settings.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Where to listen (UDP and TCP). Production: the node-local address pods reach
    /// 10.96.0.10 on; tests: `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// The cluster domain.
    pub domain: String,
    /// Resolvers for names outside the cluster domain; empty answers SERVFAIL.
    pub upstreams: Vec<SocketAddr>,
    pub upstream_timeout: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 53)),
            domain: "cluster.local".into(),
            upstreams: Vec::new(),
            upstream_timeout: Duration::from_secs(2),
        }
    }
}

/// The nameservers of a resolv.conf text, on port 53.
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// What to do with a query.
#[derive(Debug)]
pub enum Action {
    Reply(Vec<u8>),
    Forward,
    Drop,
}

/// The DNS server: a zone swapped whole on every change, read lock-free per query (clone
/// of an `Arc`).
#[derive(Debug)]
pub struct DnsServer {
    cfg: DnsConfig,
    zone: RwLock<Arc<Zone>>,
}

fn to_name(s: &str) -> Option<Name> {
    Name::from_ascii(format!("{s}.")).ok()
}

fn to_record(r: &Rec) -> Option<Record> {
    Some(match r {
        Rec::A(n, ip) => Record::from_rdata(to_name(n)?, TTL, RData::A(A(*ip))),
        Rec::Srv { name, port, target } => Record::from_rdata(
            to_name(name)?,
            TTL,
            RData::SRV(SRV::new(0, 100, *port, to_name(target)?)),
        ),
        Rec::Cname(n, t) => Record::from_rdata(to_name(n)?, TTL, RData::CNAME(CNAME(to_name(t)?))),
    })
}

impl DnsServer {
    pub fn new(cfg: DnsConfig) -> Arc<Self> {
        Arc::new(Self {
            cfg,
            zone: RwLock::new(Arc::new(Zone::default())),
        })
    }

    pub fn config(&self) -> &DnsConfig {
        &self.cfg
    }

    /// Replaces the zone.
    pub fn set_zone(&self, zone: Zone) {
        let z = Arc::new(zone);
        match self.zone.write() {
            Ok(mut g) => *g = z,
            Err(p) => *p.into_inner() = z,
        }
    }

    fn zone(&self) -> Arc<Zone> {
        match self.zone.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Answers one query message (wire format), or says to forward it. The common query
    /// (one question of class IN, no compression, at most an EDNS OPT record) is answered
    /// straight from the bytes ([`wire`]); anything else goes through hickory's parser.
    pub fn answer(&self, query: &[u8]) -> Action {
        let mut out = Vec::with_capacity(128);
        match wire::answer(query, &mut out, &self.cfg.domain, |name, qtype| {
            self.zone().lookup(name, qtype, &self.cfg.domain)
        }) {
            Some(wire::Outcome::Reply) => Action::Reply(out),
            Some(wire::Outcome::Forward) => Action::Forward,
            None => self.answer_parsed(query),
        }
    }

    /// [`DnsServer::answer`] through hickory's message model: every query it accepts.
    pub fn answer_parsed(&self, query: &[u8]) -> Action {
        let Ok(req) = Message::from_vec(query) else {
            return Action::Drop;
        };
        if req.message_type() != MessageType::Query {
            return Action::Drop;
        }
        let mut resp = Message::new();
        resp.set_id(req.id())
            .set_message_type(MessageType::Response)
            .set_op_code(req.op_code())
            .set_recursion_desired(req.recursion_desired())
            .set_recursion_available(true);
        for q in req.queries() {
            resp.add_query(q.clone());
        }
        let (Some(q), true) = (req.queries().first(), req.op_code() == OpCode::Query) else {
            resp.set_response_code(ResponseCode::NotImp);
            return resp.to_vec().map_or(Action::Drop, Action::Reply);
        };
        let mut name = q.name().to_ascii().to_ascii_lowercase();
        if name.ends_with('.') {
            name.pop();
        }
        let qtype = match q.query_type() {
            RecordType::A => QType::A,
            RecordType::SRV => QType::Srv,
            RecordType::ANY => QType::Any,
            _ => QType::Other,
        };
        match self.zone().lookup(&name, qtype, &self.cfg.domain) {
            Lookup::Forward => return Action::Forward,
            Lookup::NxDomain => {
                resp.set_authoritative(true)
                    .set_response_code(ResponseCode::NXDomain);
            }
            Lookup::Answer {
                answers,
                additional,
            } => {
                resp.set_authoritative(true);
                for r in answers.iter().filter_map(to_record) {
                    resp.add_answer(r);
                }
                for r in additional.iter().filter_map(to_record) {
                    resp.add_additional(r);
                }
            }
        }
        resp.to_vec().map_or(Action::Drop, Action::Reply)
    }

    fn servfail(query: &[u8]) -> Option<Vec<u8>> {
        let req = Message::from_vec(query).ok()?;
        let mut resp = Message::new();
        resp.set_id(req.id())
            .set_message_type(MessageType::Response)
            .set_op_code(req.op_code())
            .set_recursion_desired(req.recursion_desired())
            .set_response_code(ResponseCode::ServFail);
        for q in req.queries() {
            resp.add_query(q.clone());
        }
        resp.to_vec().ok()
    }

    /// Asks the upstreams in turn (UDP); SERVFAIL if none answers.
    pub async fn forward(&self, query: &[u8]) -> Option<Vec<u8>> {
        for up in &self.cfg.upstreams {
            let bind: SocketAddr = if up.is_ipv4() {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let Ok(sock) = UdpSocket::bind(bind).await else {
                continue;
            };
            if sock.send_to(query, up).await.is_err() {
                continue;
            }
            let mut buf = vec![0u8; 4096];
            match tokio::time::timeout(self.cfg.upstream_timeout, sock.recv_from(&mut buf)).await {
                Ok(Ok((n, from))) if from == *up => {
                    buf.truncate(n);
                    return Some(buf);
                }
                _ => continue,
            }
        }
        Self::servfail(query)
    }

    /// Binds UDP and TCP on `cfg.listen` (the same port for both) and serves until dropped.
    /// Returns the bound address (useful with port 0).
    pub async fn bind(self: &Arc<Self>) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let udp = UdpSocket::bind(self.cfg.listen)
            .await
            .map_err(Error::io("bind dns udp", self.cfg.listen.to_string()))?;
        let addr = udp
            .local_addr()
            .map_err(Error::io("local address of", "dns udp"))?;
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(Error::io("bind dns tcp", addr.to_string()))?;
        let me = self.clone();
        let task = tokio::spawn(async move {
            let udp = Arc::new(udp);
            let t = tokio::spawn(me.clone().serve_tcp(tcp));
            me.serve_udp(udp).await;
            t.abort();
        });
        Ok((addr, task))
    }

    async fn serve_udp(self: Arc<Self>, sock: Arc<UdpSocket>) {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, peer) = match sock.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "dns: udp receive");
                    continue;
                }
            };
            match self.answer(&buf[..n]) {
                Action::Reply(r) => {
                    let _ = sock.send_to(&r, peer).await;
                }
                Action::Forward => {
                    let q = buf[..n].to_vec();
                    let me = self.clone();
                    let sock = sock.clone();
                    tokio::spawn(async move {
                        if let Some(r) = me.forward(&q).await {
                            let _ = sock.send_to(&r, peer).await;
                        }
                    });
                }
                Action::Drop => {}
            }
        }
    }

    async fn serve_tcp(self: Arc<Self>, l: TcpListener) {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let me = self.clone();
            tokio::spawn(async move {
                let _ = me.tcp_conn(s).await;
            });
        }
    }

    async fn tcp_conn(&self, mut s: TcpStream) -> std::io::Result<()> {
        loop {
            let len = s.read_u16().await? as usize;
            let mut q = vec![0u8; len];
            s.read_exact(&mut q).await?;
            let r = match self.answer(&q) {
                Action::Reply(r) => r,
                Action::Forward => match self.forward(&q).await {
                    Some(r) => r,
                    None => continue,
                },
                Action::Drop => return Ok(()),
            };
            let Ok(n) = u16::try_from(r.len()) else {
                continue;
            };
            s.write_u16(n).await?;
            s.write_all(&r).await?;
        }
    }

    /// Rebuilds the zone from these objects.
    pub fn update(&self, services: &[impl Borrow<Service>], slices: &[impl Borrow<EndpointSlice>]) {
        self.set_zone(Zone::build(services, slices));
    }
}

/// Runs cluster DNS: binds `cfg.listen`, keeps the zone in step with Services and
/// EndpointSlices through watches, until the task is dropped.
pub async fn run_dns(client: Client, cfg: DnsConfig) -> Result<()> {
    let server = DnsServer::new(cfg);
    let (addr, serve) = server.bind().await?;
    tracing::info!(%addr, "dns: serving");
    let notify = Arc::new(tokio::sync::Notify::new());
    let (svc_store, svc_writer) = reflector::store::<Service>();
    let (eps_store, eps_writer) = reflector::store::<EndpointSlice>();
    let n1 = notify.clone();
    let n2 = notify.clone();
    let watches = futures::future::join(
        reflector(
            svc_writer,
            watcher(
                Api::<Service>::all(client.clone()),
                watcher::Config::default(),
            )
            .default_backoff(),
        )
        .for_each(move |_| {
            n1.notify_one();
            futures::future::ready(())
        }),
        reflector(
            eps_writer,
            watcher(
                Api::<EndpointSlice>::all(client),
                watcher::Config::default(),
            )
            .default_backoff(),
        )
        .for_each(move |_| {
            n2.notify_one();
            futures::future::ready(())
        }),
    );
    let updater = async {
        loop {
            notify.notified().await;
            // Coalesce bursts: at most one rebuild per 50 ms.
            tokio::time::sleep(Duration::from_millis(50)).await;
            server.update(&svc_store.state(), &eps_store.state());
        }
    };
    tokio::select! {
        _ = watches => {}
        _ = updater => {}
    }
    serve.abort();
    Ok(())
}

#[cfg(test)]
mod tests;
