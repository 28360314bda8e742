//! The Kubernetes manifests, parsed: each role's environment as the kubelet would assemble it
//! from its ConfigMaps, Secrets and `env`, checked by the service's own validation; the pod
//! security fields; and the secrets, users and TLS of each role.

use std::collections::BTreeSet;

use seckill::config;
use serde_yaml::Value;

use super::{deploy, string_map, validate_env, yaml_docs};

/// Every object of the kustomization, plus the migration Job (created on its own).
pub(super) fn k8s_objects() -> Vec<Value> {
    let kustomization = &yaml_docs("k8s/kustomization.yaml")[0];
    let mut docs = Vec::new();
    for file in kustomization["resources"].as_sequence().unwrap() {
        docs.extend(yaml_docs(&format!("k8s/{}", file.as_str().unwrap())));
    }
    docs.extend(yaml_docs("k8s/migrate-job.yaml"));
    docs
}

/// A pod template of the manifests (a Deployment's or the Job's) and what its container gets.
pub(super) struct Role {
    /// The `app.kubernetes.io/component` label: api, consumer or migrate.
    pub(super) name: String,
    /// The pod template (`spec.template`).
    pub(super) template: Value,
    /// The container's environment; a later source replaces an earlier one, as in Kubernetes.
    pub(super) env: Vec<(String, String)>,
    /// The variables that come from a Secret.
    pub(super) from_secrets: BTreeSet<String>,
    /// The Secrets the pod reads.
    pub(super) secrets: BTreeSet<String>,
}

impl Role {
    pub(super) fn var(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn settings(&self) -> config::Settings {
        config::Settings::load_from(None, self.env.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }

    pub(super) fn container(&self) -> &Value {
        &self.template["spec"]["containers"][0]
    }

    /// Whether the container sees the file `path`: a read-only mount of a ConfigMap volume whose
    /// items project that file.
    fn mounts_file(&self, path: &str) -> bool {
        let (dir, file) = path.rsplit_once('/').unwrap();
        let volumes = self.template["spec"]["volumes"].as_sequence();
        let mounts = self.container()["volumeMounts"].as_sequence();
        let (Some(volumes), Some(mounts)) = (volumes, mounts) else {
            return false;
        };
        mounts.iter().any(|m| {
            m["mountPath"] == dir
                && m["readOnly"] == true
                && volumes.iter().any(|v| {
                    v["name"] == m["name"]
                        && v["configMap"]["items"]
                            .as_sequence()
                            .is_some_and(|items| items.iter().any(|i| i["path"] == file))
                })
        })
    }
}

fn object<'a>(objects: &'a [Value], kind: &str, name: &str, role: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{role} reads the {kind} {name}, which deploy/k8s lacks"))
}

fn set(env: &mut Vec<(String, String)>, key: String, value: String) {
    env.retain(|(k, _)| *k != key);
    env.push((key, value));
}

/// The roles of the manifests, with their environments.
pub(super) fn roles() -> Vec<Role> {
    let objects = k8s_objects();
    let mut roles = Vec::new();
    for doc in objects
        .iter()
        .filter(|d| d["spec"]["template"].is_mapping())
    {
        let template = doc["spec"]["template"].clone();
        let name = template["metadata"]["labels"]["app.kubernetes.io/component"]
            .as_str()
            .unwrap()
            .to_string();
        let c = &template["spec"]["containers"][0];
        let (mut env, mut from_secrets, mut secrets) =
            (Vec::new(), BTreeSet::new(), BTreeSet::new());
        for source in c["envFrom"].as_sequence().into_iter().flatten() {
            if let Some(map) = source["configMapRef"]["name"].as_str() {
                for (k, v) in string_map(&object(&objects, "ConfigMap", map, &name)["data"]) {
                    set(&mut env, k, v);
                }
            }
            if let Some(secret) = source["secretRef"]["name"].as_str() {
                let obj = object(&objects, "Secret", secret, &name);
                for (k, v) in string_map(&obj["stringData"]) {
                    from_secrets.insert(k.clone());
                    set(&mut env, k, v);
                }
                secrets.insert(secret.to_string());
            }
        }
        for var in c["env"].as_sequence().into_iter().flatten() {
            let key = var["name"].as_str().unwrap().to_string();
            let from = &var["valueFrom"]["secretKeyRef"];
            if let Some(secret) = from["name"].as_str() {
                let obj = object(&objects, "Secret", secret, &name);
                let value = obj["stringData"][from["key"].as_str().unwrap()].clone();
                from_secrets.insert(key.clone());
                secrets.insert(secret.to_string());
                set(&mut env, key, value.as_str().unwrap().to_string());
            } else {
                let value = var["value"].as_str();
                set(&mut env, key, value.expect("a literal or a Secret").into());
            }
        }
        roles.push(Role {
            name,
            template,
            env,
            from_secrets,
            secrets,
        });
    }
    roles
}

pub(super) fn role(name: &str) -> Role {
    roles()
        .into_iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no pod with component {name}"))
}

/// The keys only the serving role uses.
const SERVING_SECRETS: [&str; 3] = [
    "SECKILL_ADMIN_TOKEN",
    "SECKILL_JWT_SECRET",
    "SECKILL_PAYMENT_SECRET",
];

#[test]
fn the_kubernetes_manifests_parse_and_probe_real_routes() {
    let objects = k8s_objects();
    let mut kinds = Vec::new();
    for doc in &objects {
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
        // Connection URLs and passwords live in Secrets, not in ConfigMaps.
        if kind == "ConfigMap" {
            for (k, _) in string_map(&doc["data"]) {
                assert!(
                    !["_URL", "_PASSWORD", "_TOKEN", "_SECRET"]
                        .iter()
                        .any(|s| k.ends_with(s)),
                    "{k} is in a ConfigMap"
                );
            }
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
        "NetworkPolicy",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no {k} in deploy/k8s");
    }
    let roles = roles();
    let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["api", "consumer", "migrate"]);
    for role in &roles {
        validate_env(&role.env, &format!("k8s {}", role.name));
        let c = role.container();
        let cmd = c["args"][0].as_str().unwrap();
        let expected = match role.name.as_str() {
            "api" => "serve",
            "consumer" => "consume",
            _ => "migrate",
        };
        assert_eq!(cmd, expected, "{}", role.name);
        for probe in ["readinessProbe", "livenessProbe"] {
            let path = c[probe]["httpGet"]["path"].as_str();
            if role.name == "migrate" {
                assert!(path.is_none(), "a Job is not probed");
                continue;
            }
            let path = path.unwrap_or_else(|| panic!("{}: no {probe}", role.name));
            assert!(path == "/readyz" || path == "/healthz", "{path}");
        }
    }
    let api = role("api");
    assert!(
        api.var("SECKILL_REDIS_URL")
            .unwrap()
            .starts_with("redis+cluster://"),
        "written for Redis Cluster"
    );
}

/// The API's Secret ships placeholders, and the service refuses each without repeating it.
#[test]
fn the_api_secret_ships_placeholders_the_service_refuses() {
    let api = role("api");
    let refused = api
        .settings()
        .validate_secrets()
        .expect_err("placeholders must not pass");
    assert!(refused.key.starts_with("SECKILL_"), "{refused}");
    for key in SERVING_SECRETS {
        let value = api.var(key).unwrap();
        let mut one: Vec<(String, String)> = api.env.clone();
        for k in SERVING_SECRETS.iter().filter(|k| **k != key) {
            set(
                &mut one,
                k.to_string(),
                "0123456789abcdef0123456789abcdef".into(),
            );
        }
        let err = config::Settings::load_from(None, one)
            .unwrap()
            .validate_secrets()
            .expect_err("placeholder");
        assert_eq!(err.key, key);
        assert!(!err.to_string().contains(value), "the error repeats {key}");
    }
}

/// The user of the runtime image: Kubernetes can check `runAsNonRoot` only against a numeric one.
fn dockerfile_user() -> u32 {
    let text = std::fs::read_to_string(deploy("Dockerfile")).unwrap();
    let last_stage = text.rsplit("\nFROM ").next().unwrap();
    let user = last_stage
        .lines()
        .filter_map(|l| l.trim().strip_prefix("USER "))
        .next_back()
        .expect("the runtime stage sets USER");
    user.trim()
        .parse()
        .unwrap_or_else(|_| panic!("USER {user}: runAsNonRoot needs a numeric user in the image"))
}

#[test]
fn the_pods_meet_pod_security_restricted_and_shut_down_cleanly() {
    assert_ne!(dockerfile_user(), 0, "the image runs as root");
    let roles = roles();
    for role in &roles {
        let name = &role.name;
        let pod = &role.template["spec"];
        assert_eq!(pod["enableServiceLinks"], false, "{name}: service links");
        assert_eq!(
            pod["automountServiceAccountToken"], false,
            "{name}: the pod gets a Kubernetes API token it never uses"
        );
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
            if name != "migrate" {
                assert_eq!(
                    c["lifecycle"]["preStop"]["exec"]["command"][0], "sleep",
                    "{name}: no preStop sleep"
                );
            }
        }
    }
    assert_eq!(roles.len(), 3);
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
    let api = role("api");
    let annotations = &api.template["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/port"], "8081");
    let service = objects.iter().find(|d| d["kind"] == "Service").unwrap();
    let exposed = serde_yaml::to_string(&service["spec"]["ports"]).unwrap();
    assert!(
        !exposed.contains("admin") && !exposed.contains("8081"),
        "{exposed}"
    );
}

mod roles;
