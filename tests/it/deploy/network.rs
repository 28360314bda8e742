//! The NetworkPolicies, evaluated: a small model of Kubernetes' rules (pods and namespaces
//! chosen by `matchLabels`, ports by number or by the target container's port name) answers
//! who may reach each role on which port, and where each role may connect. A policy field the
//! model does not know fails the test rather than being ignored.

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::k8s::{Role, k8s_objects, role};

type Labels = BTreeMap<String, String>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Somewhere traffic comes from or goes to.
#[derive(Clone)]
enum Peer {
    /// A pod: its namespace's labels, its own labels, its named container ports.
    Pod {
        ns: Labels,
        pod: Labels,
        ports: Vec<(String, u16)>,
    },
    /// An address outside the cluster (a managed data store, the internet).
    Outside,
}

/// The namespace seckill runs in (the policies carry none: they apply where they are created).
fn home() -> Labels {
    labels(&[("kubernetes.io/metadata.name", "shop")])
}

fn pod_in(ns: &[(&str, &str)], pod: &[(&str, &str)]) -> Peer {
    Peer::Pod {
        ns: labels(ns),
        pod: labels(pod),
        ports: Vec::new(),
    }
}

fn role_pod(r: &Role) -> Peer {
    let pod = string_labels(&r.template["metadata"]["labels"]);
    let ports = r.container()["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|p| {
            let port = u16::try_from(p["containerPort"].as_u64().unwrap()).unwrap();
            (p["name"].as_str().unwrap().to_string(), port)
        })
        .collect();
    Peer::Pod {
        ns: home(),
        pod,
        ports,
    }
}

fn string_labels(v: &Value) -> Labels {
    v.as_mapping()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str().unwrap().into(), v.as_str().unwrap().into()))
        .collect()
}

fn only_keys(v: &Value, known: &[&str], what: &str) {
    for k in v.as_mapping().into_iter().flatten().map(|(k, _)| k) {
        let k = k.as_str().unwrap();
        assert!(
            known.contains(&k),
            "{what}: `{k}` is not modelled by this test"
        );
    }
}

fn selects(selector: &Value, target: &Labels) -> bool {
    only_keys(selector, &["matchLabels"], "label selector");
    string_labels(&selector["matchLabels"])
        .iter()
        .all(|(k, v)| target.get(k) == Some(v))
}

fn peer_matches(rule_peer: &Value, peer: &Peer) -> bool {
    only_keys(rule_peer, &["namespaceSelector", "podSelector"], "peer");
    let Peer::Pod { ns, pod, .. } = peer else {
        return false; // pod and namespace selectors choose pods only
    };
    let ns_ok = match rule_peer.get("namespaceSelector") {
        Some(sel) => selects(sel, ns),
        None => *ns == home(),
    };
    ns_ok && rule_peer.get("podSelector").is_none_or(|s| selects(s, pod))
}

fn port_matches(rule_ports: Option<&Value>, target: &Peer, port: u16, protocol: &str) -> bool {
    let Some(list) = rule_ports.and_then(Value::as_sequence) else {
        return true; // no ports: every port
    };
    list.iter().any(|p| {
        only_keys(p, &["protocol", "port"], "port");
        let proto = p["protocol"].as_str().unwrap_or("TCP");
        let number = match &p["port"] {
            Value::Null => Some(port),
            Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            Value::String(name) => match target {
                Peer::Pod { ports, .. } => ports.iter().find(|(n, _)| n == name).map(|p| p.1),
                Peer::Outside => None,
            },
            other => panic!("port {other:?}"),
        };
        proto == protocol && number == Some(port)
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Ingress,
    Egress,
}

/// Whether traffic between `subject` (a seckill pod) and `peer` on `port` is allowed, inbound
/// to the subject (`Ingress`) or outbound from it (`Egress`).
fn allowed(dir: Direction, subject: &Peer, peer: &Peer, port: u16, protocol: &str) -> bool {
    let Peer::Pod { pod, .. } = subject else {
        unreachable!()
    };
    let (kind, list, peers_key) = match dir {
        Direction::Ingress => ("Ingress", "ingress", "from"),
        Direction::Egress => ("Egress", "egress", "to"),
    };
    let policies: Vec<Value> = k8s_objects()
        .into_iter()
        .filter(|o| o["kind"] == "NetworkPolicy")
        // Without a namespace a policy applies where it is applied, with seckill's objects.
        .filter(|p| p["metadata"]["namespace"].is_null())
        .filter(|p| selects(&p["spec"]["podSelector"], pod))
        .collect();
    let isolating: Vec<&Value> = policies
        .iter()
        .filter(|p| {
            only_keys(
                &p["spec"],
                &["podSelector", "policyTypes", "ingress", "egress"],
                "spec",
            );
            let types = p["spec"]["policyTypes"].as_sequence().expect("policyTypes");
            types.iter().any(|t| t == kind)
        })
        .collect();
    if isolating.is_empty() {
        return true;
    }
    // Ports are the target's: a subject's own port names for ingress, the peer's for egress.
    let target = if dir == Direction::Ingress {
        subject
    } else {
        peer
    };
    isolating.iter().any(|p| {
        p["spec"][list]
            .as_sequence()
            .into_iter()
            .flatten()
            .any(|rule| {
                only_keys(rule, &[peers_key, "ports"], "rule");
                let from_ok = match rule.get(peers_key).and_then(Value::as_sequence) {
                    None => true,
                    Some(peers) => peers.iter().any(|rp| peer_matches(rp, peer)),
                };
                from_ok && port_matches(rule.get("ports"), target, port, protocol)
            })
    })
}

fn monitoring() -> Peer {
    pod_in(
        &[
            ("kubernetes.io/metadata.name", "monitoring"),
            ("seckill.io/monitoring", "true"),
        ],
        &[("app.kubernetes.io/name", "prometheus")],
    )
}

fn ingress_controller() -> Peer {
    pod_in(
        &[
            ("kubernetes.io/metadata.name", "ingress-nginx"),
            ("seckill.io/ingress", "true"),
        ],
        &[("app.kubernetes.io/name", "ingress-nginx")],
    )
}

fn dns() -> Peer {
    pod_in(
        &[("kubernetes.io/metadata.name", "kube-system")],
        &[("k8s-app", "kube-dns")],
    )
}

/// Peers that must reach nothing of seckill's: another namespace, a neighbour pod in seckill's
/// own namespace, the outside.
fn strangers() -> Vec<(&'static str, Peer)> {
    vec![
        (
            "a pod in namespace default",
            pod_in(
                &[("kubernetes.io/metadata.name", "default")],
                &[("app", "x")],
            ),
        ),
        (
            "a neighbour pod in seckill's namespace",
            pod_in(&[("kubernetes.io/metadata.name", "shop")], &[("app", "x")]),
        ),
        ("an outside address", Peer::Outside),
    ]
}

#[test]
fn the_admin_listener_and_metrics_answer_only_prometheus_and_the_ingress() {
    use Direction::Ingress;
    let (api, consumer, migrate) = (
        role_pod(&role("api")),
        role_pod(&role("consumer")),
        role_pod(&role("migrate")),
    );
    // (pod, port, peers that may reach it)
    let cases = [
        (
            "API http",
            &api,
            8080,
            vec![("ingress", ingress_controller())],
        ),
        (
            "API admin and /metrics",
            &api,
            8081,
            vec![
                ("Prometheus", monitoring()),
                ("ingress", ingress_controller()),
            ],
        ),
        (
            "consumer /metrics",
            &consumer,
            8080,
            vec![("Prometheus", monitoring())],
        ),
        ("migration", &migrate, 8080, vec![]),
    ];
    for (what, pod, port, welcome) in &cases {
        for (who, peer) in welcome {
            assert!(
                allowed(Ingress, pod, peer, *port, "TCP"),
                "{who} cannot reach {what}"
            );
        }
        let mut unwelcome = strangers();
        unwelcome.push(("the consumer", consumer.clone()));
        for (name, peer) in [
            ("Prometheus", monitoring()),
            ("ingress", ingress_controller()),
        ] {
            if !welcome.iter().any(|(w, _)| *w == name) {
                unwelcome.push((name, peer));
            }
        }
        for (who, peer) in unwelcome {
            assert!(
                !allowed(Ingress, pod, &peer, *port, "TCP"),
                "{who} reaches {what}"
            );
        }
    }
    // A seckill pod that no role policy names (a future one) is shut by the default deny.
    let new_role = pod_in(
        &[("kubernetes.io/metadata.name", "shop")],
        &[
            ("app.kubernetes.io/name", "seckill"),
            ("app.kubernetes.io/component", "new"),
        ],
    );
    for peer in [monitoring(), ingress_controller(), Peer::Outside] {
        assert!(
            !allowed(Ingress, &new_role, &peer, 8080, "TCP"),
            "a seckill pod without a policy of its own is open"
        );
        assert!(!allowed(Direction::Egress, &new_role, &peer, 443, "TCP"));
    }
}

/// The ports of the servers a role is configured to reach.
fn configured_ports(r: &Role) -> Vec<(&'static str, u16)> {
    let mut out = Vec::new();
    if let Some(url) = r.var("SECKILL_REDIS_URL") {
        let hosts = url.rsplit('@').next().unwrap().split('/').next().unwrap();
        for host in hosts.split(',') {
            out.push(("Redis", host.rsplit(':').next().unwrap().parse().unwrap()));
        }
    }
    let options = seckill::stores::mysql::connect_options(&r.settings().mysql).unwrap();
    out.push(("MySQL", options.get_port()));
    if let Some(brokers) = r.var("SECKILL_KAFKA_BROKERS") {
        for b in brokers.split(',') {
            out.push(("Kafka", b.rsplit(':').next().unwrap().parse().unwrap()));
        }
    }
    out
}

#[test]
fn each_role_connects_only_to_its_data_stores_and_dns() {
    use Direction::Egress;
    let stores = |r: &str| -> Vec<&str> {
        match r {
            "api" => vec!["Redis", "MySQL", "Kafka"],
            "consumer" => vec!["MySQL", "Kafka"],
            _ => vec!["MySQL"],
        }
    };
    for name in ["api", "consumer", "migrate"] {
        let r = role(name);
        let pod = role_pod(&r);
        let ports = configured_ports(&r);
        let kinds: Vec<&str> = ports.iter().map(|p| p.0).collect();
        assert!(
            kinds.iter().all(|k| stores(name).contains(k)),
            "{name}: {kinds:?}"
        );
        for (store, port) in &ports {
            assert!(
                allowed(Egress, &pod, &Peer::Outside, *port, "TCP"),
                "{name} cannot reach {store} on port {port}"
            );
        }
        for proto in ["UDP", "TCP"] {
            assert!(
                allowed(Egress, &pod, &dns(), 53, proto),
                "{name}: DNS over {proto}"
            );
        }
        let (_, stranger) = &strangers()[0];
        assert!(
            !allowed(Egress, &pod, stranger, 53, "UDP"),
            "{name}: DNS elsewhere"
        );
        for port in [80, 443, 6379, 3306, 9092, 9093, 8080, 8081, 26379, 16379] {
            if ports.iter().any(|(_, p)| *p == port) {
                continue;
            }
            for (who, peer) in strangers().into_iter().chain([("DNS", dns())]) {
                assert!(
                    !allowed(Egress, &pod, &peer, port, "TCP"),
                    "{name} may connect to {who} on port {port}"
                );
            }
        }
    }
}
