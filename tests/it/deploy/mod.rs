//! The deploy files parse and agree with the code: every SECKILL_* variable they set exists and
//! validates, probes point at real routes, and the dashboard only plots metrics we export.
//! (No Docker engine or cluster runs here: `tools` says so in the test output and validates the
//! manifests with an offline schema validator instead.)

mod k8s;
mod network;
mod tools;

use std::{collections::BTreeSet, path::PathBuf};

use seckill::{config, observe::metrics::Metrics};
use serde_yaml::Value;

fn deploy(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

fn yaml_docs(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(deploy(path)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{path}: {e}")))
        .collect()
}

use serde::Deserialize;

/// The settings these variables make, checked by the service's own validation.
fn validate_env(vars: &[(String, String)], context: &str) {
    let known: BTreeSet<String> = config::env_names().into_iter().collect();
    for (k, _) in vars {
        assert!(known.contains(k), "{context}: {k} is not a seckill setting");
    }
    config::Settings::load_from(None, vars.to_vec()).unwrap_or_else(|e| panic!("{context}: {e}"));
}

/// Compose's `${NAME:?message}` interpolation, with `vars` as the `.env` file.
fn interpolate(text: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find('}').expect("closed interpolation") + at;
        let inner = &rest[at + 2..end];
        let name = inner.split(":?").next().unwrap();
        assert!(
            inner.contains(":?"),
            "${{{inner}}} must refuse to start when unset"
        );
        let value = vars
            .iter()
            .find(|(k, _)| *k == name)
            .unwrap_or_else(|| panic!("{name} not in the test's .env"))
            .1;
        out.push_str(value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn string_map(v: &Value) -> Vec<(String, String)> {
    v.as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other).unwrap().trim().to_string(),
            };
            (k.as_str().unwrap().to_string(), value)
        })
        .collect()
}

/// The compose file names every part: the stores, both roles, Prometheus and Grafana.
fn compose_names_every_part(services: &serde_yaml::Mapping) {
    let names: BTreeSet<&str> = services.keys().map(|k| k.as_str().unwrap()).collect();
    for s in [
        "redis",
        "kafka",
        "mysql",
        "seckill-api",
        "seckill-consumer",
        "prometheus",
        "grafana",
    ] {
        assert!(names.contains(s), "compose lacks {s}");
    }
    let redis_cmd = serde_yaml::to_string(&services["redis"]["command"]).unwrap();
    assert!(redis_cmd.contains("appendonly") && redis_cmd.contains("noeviction"));
    assert_eq!(
        services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"],
        "broker,controller"
    );
    assert_eq!(services["seckill-api"]["command"][0], "serve");
    assert_eq!(services["seckill-consumer"]["command"][0], "consume");
}

/// The file holds no secret: each comes from deploy/.env, and compose refuses to start without
/// it. With generated ones, the settings validate and the secrets pass; the compose file as
/// compose resolves it is returned.
fn secrets_come_from_the_env_file() -> Value {
    let text = std::fs::read_to_string(deploy("docker-compose.yml")).unwrap();
    assert!(
        !text.contains("change-me"),
        "a default secret in the compose file"
    );
    let dotenv = [
        (
            "SECKILL_ADMIN_TOKEN",
            "5e0f2c7a9b1d4e6f8a0b2c4d6e8f0a1b3c5d7e9f",
        ),
        (
            "SECKILL_JWT_SECRET",
            "a1b3c5d7e9f10213243546576879808a9b0c1d2e",
        ),
        (
            "SECKILL_PAYMENT_SECRET",
            "9f8e7d6c5b4a39281706f5e4d3c2b1a0fedcba98",
        ),
        ("REDIS_PASSWORD", "0a1b2c3d4e5f60718293a4b5c6d7e8f9"),
        ("GRAFANA_ADMIN_PASSWORD", "7c6b5a49382716f5e4d3c2b1a0f9e8d7"),
    ];
    let resolved: Value = serde_yaml::from_str(&interpolate(&text, &dotenv)).unwrap();
    let services = resolved["services"].as_mapping().unwrap();
    let env = string_map(&services["seckill-api"]["environment"]);
    validate_env(&env, "compose seckill-api");
    config::Settings::load_from(None, env.clone())
        .unwrap()
        .validate_secrets()
        .expect("the generated secrets pass");
    let redis_url = &env
        .iter()
        .find(|(k, _)| k == "SECKILL_REDIS_URL")
        .unwrap()
        .1;
    assert!(
        redis_url.contains(":0a1b2c3d4e5f60718293a4b5c6d7e8f9@redis"),
        "{redis_url}"
    );
    let redis_cmd = serde_yaml::to_string(&services["redis"]["command"]).unwrap();
    assert!(redis_cmd.contains("--requirepass"), "Redis has a password");
    resolved
}

/// Every service restarts, has a health check, and starts after what it needs is healthy.
fn every_service_restarts_probes_and_waits(services: &serde_yaml::Mapping) {
    for (name, service) in services {
        let name = name.as_str().unwrap();
        assert!(
            service["restart"].as_str().is_some(),
            "{name} has no restart policy"
        );
        if name != "grafana" && name != "prometheus" {
            assert!(
                service["healthcheck"]["test"].is_sequence(),
                "{name} has no health check"
            );
        }
        if let Some(deps) = service["depends_on"].as_mapping() {
            for (dep, cond) in deps {
                assert_eq!(
                    cond["condition"], "service_healthy",
                    "{name} starts before {dep:?} is healthy"
                );
            }
        }
    }
}

#[test]
fn the_compose_file_runs_every_part_with_valid_settings() {
    let docs = yaml_docs("docker-compose.yml");
    let compose = &docs[0];
    compose_names_every_part(compose["services"].as_mapping().unwrap());
    let resolved = secrets_come_from_the_env_file();
    let services = resolved["services"].as_mapping().unwrap();
    every_service_restarts_probes_and_waits(services);
    for role in ["seckill-api", "seckill-consumer"] {
        let probe = &services[role]["healthcheck"]["test"];
        assert_eq!(probe[1], "seckill", "{role} probes with the binary itself");
        assert_eq!(probe[2], "healthcheck");
    }
    assert_eq!(
        services["seckill-consumer"]["depends_on"]["seckill-api"]["condition"], "service_healthy",
        "the consumer waits for the API's migrations"
    );
    // The admin port is published on the host's loopback only.
    let ports = serde_yaml::to_string(&services["seckill-api"]["ports"]).unwrap();
    assert!(ports.contains("127.0.0.1:8081:8081"), "{ports}");
    grafana_asks_for_a_password_on_loopback(&services["grafana"]);
    // Files the compose file mounts exist.
    for mount in [
        "prometheus/prometheus.yml",
        "prometheus/alerts.yml",
        "grafana/provisioning",
        "grafana/dashboards",
        "Dockerfile",
    ] {
        assert!(deploy(mount).exists(), "{mount} missing");
    }
}

/// Grafana: no anonymous access, the admin password from deploy/.env, the port on loopback.
fn grafana_asks_for_a_password_on_loopback(grafana: &Value) {
    let env: std::collections::BTreeMap<String, String> =
        string_map(&grafana["environment"]).into_iter().collect();
    assert_ne!(
        env.get("GF_AUTH_ANONYMOUS_ENABLED").map(String::as_str),
        Some("true"),
        "Grafana lets anonymous visitors in"
    );
    assert_eq!(
        env.get("GF_AUTH_ANONYMOUS_ENABLED").map(String::as_str),
        Some("false"),
        "say anonymous access is off (Grafana images have changed defaults before)"
    );
    assert!(
        !env.keys().any(|k| k.starts_with("GF_AUTH_ANONYMOUS_ORG")),
        "{env:?}"
    );
    assert_eq!(
        env.get("GF_SECURITY_ADMIN_PASSWORD").map(String::as_str),
        Some("7c6b5a49382716f5e4d3c2b1a0f9e8d7"),
        "Grafana's admin password comes from GRAFANA_ADMIN_PASSWORD in deploy/.env"
    );
    let ports = grafana["ports"]
        .as_sequence()
        .expect("Grafana publishes a port");
    for port in ports {
        let port = port.as_str().unwrap();
        assert!(
            port.starts_with("127.0.0.1:"),
            "Grafana's port {port} is published beyond the host's loopback"
        );
    }
}

#[test]
fn the_alert_rules_use_exported_metrics_and_match_the_prometheus_rule() {
    let alerts = &yaml_docs("prometheus/alerts.yml")[0];
    let rule = &yaml_docs("k8s/prometheus-rule.yaml")[0];
    assert_eq!(rule["kind"], "PrometheusRule");
    assert_eq!(
        rule["spec"]["groups"], alerts["groups"],
        "alerts.yml and the PrometheusRule differ"
    );
    let exported: BTreeSet<String> = Metrics::new().names().into_iter().collect();
    let mut names = Vec::new();
    for r in alerts["groups"][0]["rules"].as_sequence().unwrap() {
        names.push(r["alert"].as_str().unwrap().to_string());
        for metric in metrics_in(r["expr"].as_str().unwrap()) {
            assert!(
                exported.contains(&metric),
                "{}: {metric} is not exported",
                names.last().unwrap()
            );
        }
    }
    assert_eq!(names.len(), 7, "{names:?}");
    let prom = &yaml_docs("prometheus/prometheus.yml")[0];
    assert_eq!(prom["rule_files"][0], "alerts.yml");
}

/// The `seckill_*` metrics a PromQL expression reads, by their exported names (a histogram's
/// `_bucket`, `_count` and `_sum` series are its own name).
fn metrics_in(expr: &str) -> Vec<String> {
    let tokens = expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
    let names = tokens.filter_map(|token| token.strip_prefix("seckill_"));
    names
        .map(|name| {
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            format!("seckill_{base}")
        })
        .collect()
}

#[test]
fn the_dashboard_plots_only_exported_metrics() {
    let text = std::fs::read_to_string(deploy("grafana/dashboards/seckill.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let exported: BTreeSet<String> = Metrics::new().names().into_iter().collect();
    let mut plotted = BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            plotted.extend(metrics_in(target["expr"].as_str().unwrap()));
        }
    }
    assert!(plotted.len() >= 15, "{plotted:?}");
    let unknown: Vec<_> = plotted.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "dashboard plots metrics we do not export: {unknown:?}"
    );
    let unplotted: Vec<_> = exported.difference(&plotted).collect();
    assert!(
        unplotted.is_empty(),
        "exported but not on the dashboard: {unplotted:?}"
    );
}

#[test]
fn prometheus_scrapes_both_roles() {
    let prom = &yaml_docs("prometheus/prometheus.yml")[0];
    let configs = prom["scrape_configs"].as_sequence().unwrap();
    let jobs: Vec<&str> = configs
        .iter()
        .map(|j| j["job_name"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["seckill-api", "seckill-consumer"]);
    for file in [
        "grafana/provisioning/datasources/prometheus.yml",
        "grafana/provisioning/dashboards/seckill.yml",
    ] {
        assert_eq!(yaml_docs(file)[0]["apiVersion"], 1, "{file}");
    }
}
