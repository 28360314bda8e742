//! The deploy files parse and agree with the code: every SECKILL_* variable they set exists and
//! validates, probes point at real routes, and the dashboard only plots metrics we export.
//! (No Docker engine or cluster runs here; this is what can be checked without one.)

use std::{collections::BTreeSet, path::PathBuf};

use seckill::{config, metrics::Metrics};
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

#[test]
fn the_compose_file_runs_every_part_with_valid_settings() {
    let docs = yaml_docs("docker-compose.yml");
    let compose = &docs[0];
    let services = compose["services"].as_mapping().unwrap();
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
    validate_env(
        &string_map(&services["seckill-api"]["environment"]),
        "compose seckill-api",
    );
    // Files the compose file mounts exist.
    for mount in [
        "prometheus/prometheus.yml",
        "grafana/provisioning",
        "grafana/dashboards",
        "Dockerfile",
    ] {
        assert!(deploy(mount).exists(), "{mount} missing");
    }
}

#[test]
fn the_kubernetes_manifests_parse_and_probe_real_routes() {
    let kustomization = &yaml_docs("k8s/kustomization.yaml")[0];
    let mut kinds = Vec::new();
    let mut env = Vec::new();
    let mut probes = Vec::new();
    for file in kustomization["resources"].as_sequence().unwrap() {
        for doc in yaml_docs(&format!("k8s/{}", file.as_str().unwrap())) {
            let kind = doc["kind"].as_str().unwrap().to_string();
            assert!(
                doc["apiVersion"].as_str().is_some(),
                "{kind} lacks apiVersion"
            );
            assert!(
                doc["metadata"]["name"].as_str().is_some(),
                "{kind} lacks a name"
            );
            match kind.as_str() {
                "ConfigMap" => env.extend(string_map(&doc["data"])),
                "Secret" => env.extend(string_map(&doc["stringData"])),
                "Deployment" => {
                    let c = &doc["spec"]["template"]["spec"]["containers"][0];
                    let cmd = c["args"][0].as_str().unwrap();
                    assert!(["serve", "consume"].contains(&cmd), "{cmd}");
                    probes.push(
                        c["readinessProbe"]["httpGet"]["path"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    );
                    probes.push(
                        c["livenessProbe"]["httpGet"]["path"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    );
                }
                _ => {}
            }
            kinds.push(kind);
        }
    }
    for k in [
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
        "Secret",
        "Job",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no {k} in deploy/k8s");
    }
    assert_eq!(
        kinds.iter().filter(|k| *k == "Deployment").count(),
        2,
        "API and consumer"
    );
    assert!(
        probes.iter().all(|p| p == "/readyz" || p == "/healthz"),
        "{probes:?}"
    );
    validate_env(&env, "k8s ConfigMap + Secret");
    let redis = env.iter().find(|(k, _)| k == "SECKILL_REDIS_URL").unwrap();
    assert!(
        redis.1.starts_with("redis+cluster://"),
        "written for Redis Cluster"
    );
}

#[test]
fn the_dashboard_plots_only_exported_metrics() {
    let text = std::fs::read_to_string(deploy("grafana/dashboards/seckill.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let exported: BTreeSet<String> = Metrics::new().names().into_iter().collect();
    let mut plotted = BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for token in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if let Some(name) = token.strip_prefix("seckill_") {
                    let base = ["_bucket", "_count", "_sum"]
                        .iter()
                        .find_map(|s| name.strip_suffix(s))
                        .unwrap_or(name);
                    plotted.insert(format!("seckill_{base}"));
                }
            }
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
    let jobs: Vec<&str> = prom["scrape_configs"]
        .as_sequence()
        .unwrap()
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
