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
    // The file holds no secret: each comes from deploy/.env, and compose refuses to start
    // without it. With generated ones, the settings validate and the secrets pass.
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
    // Every service restarts, has a health check, and starts after what it needs is healthy.
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

/// Every object of the kustomization, plus the migration Job (created on its own).
fn k8s_objects() -> Vec<Value> {
    let kustomization = &yaml_docs("k8s/kustomization.yaml")[0];
    let mut docs = Vec::new();
    for file in kustomization["resources"].as_sequence().unwrap() {
        docs.extend(yaml_docs(&format!("k8s/{}", file.as_str().unwrap())));
    }
    docs.extend(yaml_docs("k8s/migrate-job.yaml"));
    docs
}

#[test]
fn the_kubernetes_manifests_parse_and_probe_real_routes() {
    let mut kinds = Vec::new();
    let mut env = Vec::new();
    let mut secret_env = Vec::new();
    let mut probes = Vec::new();
    for doc in k8s_objects() {
        let kind = doc["kind"].as_str().unwrap().to_string();
        assert!(
            doc["apiVersion"].as_str().is_some(),
            "{kind} lacks apiVersion"
        );
        assert!(
            doc["metadata"]["name"].as_str().is_some()
                || doc["metadata"]["generateName"].as_str().is_some(),
            "{kind} lacks a name"
        );
        match kind.as_str() {
            "ConfigMap" => env.extend(string_map(&doc["data"])),
            "Secret" => secret_env.extend(string_map(&doc["stringData"])),
            "Deployment" => {
                let c = &doc["spec"]["template"]["spec"]["containers"][0];
                let cmd = c["args"][0].as_str().unwrap();
                assert!(["serve", "consume"].contains(&cmd), "{cmd}");
                for probe in ["readinessProbe", "livenessProbe"] {
                    probes.push(c[probe]["httpGet"]["path"].as_str().unwrap().to_string());
                }
            }
            _ => {}
        }
        kinds.push(kind);
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
    env.extend(secret_env.iter().cloned());
    validate_env(&env, "k8s ConfigMap + Secret");
    // Connection URLs with their passwords live in the Secret, not the ConfigMap.
    for key in ["SECKILL_REDIS_URL", "SECKILL_MYSQL_URL"] {
        assert!(
            secret_env.iter().any(|(k, _)| k == key),
            "{key} is not in the Secret"
        );
    }
    let redis = secret_env
        .iter()
        .find(|(k, _)| k == "SECKILL_REDIS_URL")
        .unwrap();
    assert!(
        redis.1.starts_with("redis+cluster://"),
        "written for Redis Cluster"
    );
    // The Secret ships placeholders, and the service refuses to start with them.
    let shipped = config::Settings::load_from(None, env.clone()).unwrap();
    let refused = shipped
        .validate_secrets()
        .expect_err("placeholders must not pass");
    assert!(refused.key.starts_with("SECKILL_"), "{refused}");
    for (key, value) in &secret_env {
        if key.ends_with("_TOKEN") || key.ends_with("_SECRET") {
            let mut one = env.clone();
            one.retain(|(k, _)| k != key);
            one.push((key.clone(), value.clone()));
            let err = config::Settings::load_from(None, one)
                .unwrap()
                .validate_secrets()
                .expect_err("placeholder");
            assert!(
                !err.to_string().contains(value.as_str()),
                "the error repeats the secret"
            );
        }
    }
}

#[test]
fn the_pods_meet_pod_security_restricted_and_shut_down_cleanly() {
    let mut pods = 0;
    for doc in k8s_objects() {
        let kind = doc["kind"].as_str().unwrap();
        if kind != "Deployment" && kind != "Job" {
            continue;
        }
        pods += 1;
        let name = doc["metadata"]["name"]
            .as_str()
            .or(doc["metadata"]["generateName"].as_str())
            .unwrap()
            .to_string();
        let pod = &doc["spec"]["template"]["spec"];
        assert_eq!(pod["enableServiceLinks"], false, "{name}: service links");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{name}"
        );
        for c in pod["containers"].as_sequence().unwrap() {
            let sc = &c["securityContext"];
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
            assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{name}");
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
            assert!(
                c["resources"]["limits"]["memory"].is_string(),
                "{name}: no memory limit"
            );
            if kind == "Deployment" {
                assert_eq!(
                    c["lifecycle"]["preStop"]["exec"]["command"][0], "sleep",
                    "{name}: no preStop sleep"
                );
            }
        }
    }
    assert_eq!(pods, 3);
}

#[test]
fn the_migration_job_is_created_afresh_each_release_and_the_hpa_owns_api_replicas() {
    let job = &yaml_docs("k8s/migrate-job.yaml")[0];
    assert!(
        job["metadata"]["name"].is_null(),
        "a fixed name cannot be created twice"
    );
    assert_eq!(job["metadata"]["generateName"], "seckill-migrate-");
    assert!(job["spec"]["ttlSecondsAfterFinished"].is_u64());
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    assert!(
        c["resources"]["limits"]["cpu"].is_string()
            && c["resources"]["requests"]["memory"].is_string()
    );
    let kustomization = &yaml_docs("k8s/kustomization.yaml")[0];
    let resources = serde_yaml::to_string(&kustomization["resources"]).unwrap();
    assert!(
        !resources.contains("migrate-job"),
        "`kubectl apply -k` cannot create a generateName object"
    );
    assert_eq!(kustomization["images"][0]["name"], "seckill");
    // Where an HPA scales a Deployment, the Deployment does not set replicas.
    let objects = k8s_objects();
    for hpa in objects
        .iter()
        .filter(|d| d["kind"] == "HorizontalPodAutoscaler")
    {
        let target = hpa["spec"]["scaleTargetRef"]["name"].as_str().unwrap();
        let deployment = objects
            .iter()
            .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == target)
            .unwrap();
        assert!(
            deployment["spec"]["replicas"].is_null(),
            "{target} sets replicas under an HPA"
        );
    }
    // The API's metrics are scraped from the admin port, which the Service does not expose.
    let api = objects
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "seckill-api")
        .unwrap();
    let annotations = &api["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/port"], "8081");
    let service = objects.iter().find(|d| d["kind"] == "Service").unwrap();
    let exposed = serde_yaml::to_string(&service["spec"]["ports"]).unwrap();
    assert!(
        !exposed.contains("admin") && !exposed.contains("8081"),
        "{exposed}"
    );
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
        let expr = r["expr"].as_str().unwrap();
        for token in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if let Some(name) = token.strip_prefix("seckill_") {
                let base = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(name);
                assert!(
                    exported.contains(&format!("seckill_{base}")),
                    "{}: seckill_{base} is not exported",
                    names.last().unwrap()
                );
            }
        }
    }
    assert_eq!(names.len(), 7, "{names:?}");
    let prom = &yaml_docs("prometheus/prometheus.yml")[0];
    assert_eq!(prom["rule_files"][0], "alerts.yml");
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
