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
