//! Zone resolution tests.
use super::*;
use serde_json::json;

pub(crate) fn fixture_zone() -> Zone {
    let services: Vec<Service> = vec![
        serde_json::from_value(json!({"metadata": {"namespace": "default", "name": "web"},
            "spec": {"clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}))
        .unwrap(),
        serde_json::from_value(json!({"metadata": {"namespace": "default", "name": "db"},
            "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}}))
        .unwrap(),
        serde_json::from_value(json!({"metadata": {"namespace": "default", "name": "ext"},
            "spec": {"type": "ExternalName", "externalName": "example.org"}}))
        .unwrap(),
    ];
    let slices: Vec<EndpointSlice> = vec![serde_json::from_value(json!({
        "metadata": {"namespace": "default", "name": "db-1", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.244.1.7"], "hostname": "db-0", "conditions": {"ready": true}},
            {"addresses": ["10.244.2.8"], "hostname": "db-1"},
            {"addresses": ["10.244.2.9"], "hostname": "db-2", "conditions": {"ready": false}}
        ]
    }))
    .unwrap()];
    Zone::build(&services, &slices)
}

const D: &str = "cluster.local";

fn a(n: &str, ip: &str) -> Rec {
    Rec::A(n.into(), ip.parse().unwrap())
}

#[test]
fn cluster_ip_and_headless_a_records() {
    let z = fixture_zone();
    assert_eq!(
        z.lookup("web.default.svc.cluster.local", QType::A, D),
        Lookup::Answer {
            answers: vec![a("web.default.svc.cluster.local", "10.96.0.20")],
            additional: vec![]
        }
    );
    let Lookup::Answer { answers, .. } = z.lookup("db.default.svc.cluster.local", QType::A, D)
    else {
        panic!()
    };
    assert_eq!(
        answers,
        vec![
            a("db.default.svc.cluster.local", "10.244.1.7"),
            a("db.default.svc.cluster.local", "10.244.2.8")
        ]
    );
}

#[test]
fn statefulset_hostnames_pods_and_srv() {
    let z = fixture_zone();
    assert_eq!(
        z.lookup("db-1.db.default.svc.cluster.local", QType::A, D),
        Lookup::Answer {
            answers: vec![a("db-1.db.default.svc.cluster.local", "10.244.2.8")],
            additional: vec![]
        }
    );
    assert_eq!(
        z.lookup("db-2.db.default.svc.cluster.local", QType::A, D),
        Lookup::NxDomain
    );
    assert_eq!(
        z.lookup("10-244-3-4.default.pod.cluster.local", QType::A, D),
        Lookup::Answer {
            answers: vec![a("10-244-3-4.default.pod.cluster.local", "10.244.3.4")],
            additional: vec![]
        }
    );
    let Lookup::Answer {
        answers,
        additional,
    } = z.lookup("_http._tcp.web.default.svc.cluster.local", QType::Srv, D)
    else {
        panic!()
    };
    assert_eq!(
        answers,
        vec![Rec::Srv {
            name: "_http._tcp.web.default.svc.cluster.local".into(),
            port: 80,
            target: "web.default.svc.cluster.local".into()
        }]
    );
    assert_eq!(
        additional,
        vec![a("web.default.svc.cluster.local", "10.96.0.20")]
    );
    let Lookup::Answer { answers, .. } =
        z.lookup("_pg._tcp.db.default.svc.cluster.local", QType::Srv, D)
    else {
        panic!()
    };
    assert_eq!(answers.len(), 2);
    assert!(
        matches!(&answers[0], Rec::Srv { target, port: 5432, .. } if target == "db-0.db.default.svc.cluster.local")
    );
    assert_eq!(
        z.lookup("_nope._tcp.web.default.svc.cluster.local", QType::Srv, D),
        Lookup::NxDomain
    );
}

#[test]
fn nxdomain_inside_forward_outside() {
    let z = fixture_zone();
    assert_eq!(
        z.lookup("nope.default.svc.cluster.local", QType::A, D),
        Lookup::NxDomain
    );
    assert_eq!(
        z.lookup("a.b.c.d.e.f.cluster.local", QType::A, D),
        Lookup::NxDomain
    );
    assert_eq!(z.lookup("example.org", QType::A, D), Lookup::Forward);
    assert_eq!(z.lookup("notcluster.local", QType::A, D), Lookup::Forward);
    assert!(
        matches!(z.lookup("ext.default.svc.cluster.local", QType::A, D),
        Lookup::Answer { answers, .. } if answers == vec![Rec::Cname("ext.default.svc.cluster.local".into(), "example.org".into())])
    );
}

#[test]
fn parses_upstreams() {
    let u = upstreams_from_resolv_conf("nameserver 127.0.0.53\n# x\nnameserver ::1\nsearch a\n");
    assert_eq!(
        u,
        vec![
            "127.0.0.53:53".parse().unwrap(),
            "[::1]:53".parse().unwrap()
        ]
    );
}

/// The reply as text through hickory's parser: header fields, question, answers and
/// additional records (names lowercased, as DNS compares them).
fn reply_text(b: &[u8]) -> String {
    let m = Message::from_vec(b).expect("reply parses");
    let mut s = format!(
        "id={} qr={:?} op={:?} aa={} rd={} ra={} rcode={:?}\n",
        m.id(),
        m.message_type(),
        m.op_code(),
        m.authoritative(),
        m.recursion_desired(),
        m.recursion_available(),
        m.response_code()
    );
    for q in m.queries() {
        s.push_str(&format!("Q {}\n", q.to_string().to_lowercase()));
    }
    for r in m.answers() {
        s.push_str(&format!("AN {}\n", r.to_string().to_lowercase()));
    }
    for r in m.additionals() {
        s.push_str(&format!("AR {}\n", r.to_string().to_lowercase()));
    }
    s
}

fn server_with_fixture() -> Arc<DnsServer> {
    let s = DnsServer::new(DnsConfig::default());
    s.set_zone(fixture_zone());
    s
}

#[test]
fn wire_path_answers_as_the_parsed_path() {
    let s = server_with_fixture();
    let cases: &[(&str, u16)] = &[
        ("web.default.svc.cluster.local", 1),
        ("WEB.Default.svc.cluster.local", 1),
        ("web.default.svc.cluster.local", 28),
        ("web.default.svc.cluster.local", 255),
        ("_http._tcp.web.default.svc.cluster.local", 33),
        ("web.default.svc.cluster.local", 33),
        ("db.default.svc.cluster.local", 1),
        ("db.default.svc.cluster.local", 33),
        ("db-0.db.default.svc.cluster.local", 1),
        ("ext.default.svc.cluster.local", 1),
        ("nope.default.svc.cluster.local", 1),
        ("default.svc.cluster.local", 1),
        ("nons.svc.cluster.local", 1),
        ("10-244-1-7.default.pod.cluster.local", 1),
        ("cluster.local", 1),
        ("a.b.c.d.e.f.svc.cluster.local", 1),
    ];
    for (i, (name, qtype)) in cases.iter().enumerate() {
        let q = wire::query(i as u16 + 7, name, *qtype);
        let mut out = Vec::new();
        let fast = wire::answer(&q, &mut out, "cluster.local", |n, t| {
            s.zone().lookup(n, t, "cluster.local")
        });
        assert_eq!(fast, Some(wire::Outcome::Reply), "{name} {qtype}");
        let Action::Reply(general) = s.answer_parsed(&q) else {
            panic!("{name}: the parsed path did not reply");
        };
        assert_eq!(
            reply_text(&out),
            reply_text(&general),
            "{name} type {qtype}"
        );
        // And `answer` takes the wire path for it.
        let Action::Reply(via) = s.answer(&q) else {
            panic!("{name}: no reply");
        };
        assert_eq!(via, out);
    }
}

#[test]
fn wire_path_forwards_and_falls_back() {
    let s = server_with_fixture();
    let lookup = |n: &str, t| s.zone().lookup(n, t, "cluster.local");
    let mut out = Vec::new();
    let q = wire::query(1, "example.org", 1);
    assert_eq!(
        wire::answer(&q, &mut out, "cluster.local", lookup),
        Some(wire::Outcome::Forward)
    );
    assert!(matches!(s.answer(&q), Action::Forward));
    // "evilcluster.local" is not inside "cluster.local".
    let q = wire::query(1, "evilcluster.local", 1);
    assert_eq!(
        wire::answer(&q, &mut out, "cluster.local", lookup),
        Some(wire::Outcome::Forward)
    );
    // With an EDNS OPT record (what dig sends): answered, no OPT in the reply.
    let mut q = wire::query(2, "web.default.svc.cluster.local", 1);
    q[11] = 1;
    q.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        wire::answer(&q, &mut out, "cluster.local", lookup),
        Some(wire::Outcome::Reply)
    );
    assert!(
        reply_text(&out).contains("AN web.default.svc.cluster.local. 5 in a 10.96.0.20"),
        "{}",
        reply_text(&out)
    );
    // Not the common case: the general path decides.
    let mut two = wire::query(3, "web.default.svc.cluster.local", 1);
    two[5] = 2;
    assert_eq!(wire::answer(&two, &mut out, "cluster.local", lookup), None);
    let mut pointer = wire::query(4, "web.default.svc.cluster.local", 1);
    pointer[12] = 0xc0;
    assert_eq!(
        wire::answer(&pointer, &mut out, "cluster.local", lookup),
        None
    );
    let mut response = wire::query(5, "web.default.svc.cluster.local", 1);
    response[2] |= 0x80;
    assert_eq!(
        wire::answer(&response, &mut out, "cluster.local", lookup),
        None
    );
    assert!(matches!(s.answer(&response), Action::Drop));
    let mut chaos = wire::query(6, "web.default.svc.cluster.local", 1);
    let n = chaos.len();
    chaos[n - 1] = 3;
    assert_eq!(
        wire::answer(&chaos, &mut out, "cluster.local", lookup),
        None
    );
    for cut in 0..q.len() {
        // Truncated input never panics and never answers wrongly.
        let _ = wire::answer(&q[..cut], &mut out, "cluster.local", lookup);
        let _ = s.answer(&q[..cut]);
    }
}
