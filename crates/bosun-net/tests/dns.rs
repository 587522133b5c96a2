//! Cluster DNS over real sockets on loopback: cluster names answered, NXDOMAIN inside the
//! cluster domain, everything else forwarded to a fake upstream on loopback (never off the
//! machine), over UDP and TCP.
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bosun_net::dns::{DnsConfig, DnsServer, Zone};
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

fn query(name: &str, t: RecordType) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(rand::random())
        .set_message_type(MessageType::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    m.to_vec().unwrap()
}

async fn udp(server: SocketAddr, name: &str, t: RecordType) -> Message {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.send_to(&query(name, t), server).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.recv(&mut buf))
        .await
        .expect("dns answer in time")
        .unwrap();
    Message::from_vec(&buf[..n]).unwrap()
}

fn a_records(m: &Message) -> Vec<Ipv4Addr> {
    m.answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

/// A fake upstream on loopback answering every A query with 192.0.2.1.
async fn fake_upstream() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = s.recv_from(&mut buf).await else {
                return;
            };
            let req = Message::from_vec(&buf[..n]).unwrap();
            let mut resp = Message::new();
            resp.set_id(req.id())
                .set_message_type(MessageType::Response);
            for q in req.queries() {
                resp.add_query(q.clone());
                resp.add_answer(Record::from_rdata(
                    q.name().clone(),
                    60,
                    RData::A(A::new(192, 0, 2, 1)),
                ));
            }
            let _ = s.send_to(&resp.to_vec().unwrap(), peer).await;
        }
    });
    addr
}

#[tokio::test]
async fn answers_cluster_names_and_forwards_the_rest() {
    let upstream = fake_upstream().await;
    let server = DnsServer::new(DnsConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstreams: vec![upstream],
        ..DnsConfig::default()
    });
    let svcs: Vec<Service> = vec![
        serde_json::from_value(json!({"metadata": {"namespace": "default", "name": "web"},
            "spec": {"clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80}]}}))
        .unwrap(),
        serde_json::from_value(json!({"metadata": {"namespace": "default", "name": "db"},
            "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}}))
        .unwrap(),
    ];
    let slices: Vec<EndpointSlice> = vec![serde_json::from_value(json!({
        "metadata": {"namespace": "default", "name": "db-x", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["10.244.1.7"], "hostname": "db-0"}, {"addresses": ["10.244.2.8"], "hostname": "db-1"}]
    }))
    .unwrap()];
    server.set_zone(Zone::build(&svcs, &slices));
    let (addr, _task) = server.bind().await.unwrap();

    let m = udp(addr, "web.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.response_code(), ResponseCode::NoError);
    assert_eq!(a_records(&m), vec![Ipv4Addr::new(10, 96, 0, 20)]);
    let m = udp(addr, "WEB.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(a_records(&m), vec![Ipv4Addr::new(10, 96, 0, 20)]);
    let m = udp(addr, "db.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(
        a_records(&m),
        vec![Ipv4Addr::new(10, 244, 1, 7), Ipv4Addr::new(10, 244, 2, 8)]
    );
    let m = udp(addr, "db-1.db.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(a_records(&m), vec![Ipv4Addr::new(10, 244, 2, 8)]);
    let m = udp(
        addr,
        "_pg._tcp.db.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    assert_eq!(m.answers().len(), 2);
    assert_eq!(m.additionals().len(), 2);
    let m = udp(addr, "10-244-9-9.default.pod.cluster.local.", RecordType::A).await;
    assert_eq!(a_records(&m), vec![Ipv4Addr::new(10, 244, 9, 9)]);
    let m = udp(addr, "nope.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.response_code(), ResponseCode::NXDomain);
    // Outside the cluster domain: the fake upstream's answer.
    let m = udp(addr, "example.org.", RecordType::A).await;
    assert_eq!(a_records(&m), vec![Ipv4Addr::new(192, 0, 2, 1)]);

    // TCP, two queries on one connection.
    let mut s = TcpStream::connect(addr).await.unwrap();
    for (name, want) in [
        (
            "web.default.svc.cluster.local.",
            Ipv4Addr::new(10, 96, 0, 20),
        ),
        ("example.org.", Ipv4Addr::new(192, 0, 2, 1)),
    ] {
        let q = query(name, RecordType::A);
        s.write_u16(q.len() as u16).await.unwrap();
        s.write_all(&q).await.unwrap();
        let n = s.read_u16().await.unwrap() as usize;
        let mut buf = vec![0u8; n];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(a_records(&Message::from_vec(&buf).unwrap()), vec![want]);
    }

    // The zone follows changes.
    server.set_zone(Zone::default());
    let m = udp(addr, "web.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.response_code(), ResponseCode::NXDomain);
}

#[tokio::test]
async fn no_upstream_is_servfail() {
    let server = DnsServer::new(DnsConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..DnsConfig::default()
    });
    let (addr, _task) = server.bind().await.unwrap();
    let m = udp(addr, "example.org.", RecordType::A).await;
    assert_eq!(m.response_code(), ResponseCode::ServFail);
}
