//! Outside validators. The manifests go through kubernetes-validate (pinned in
//! deploy/local/requirements-kubernetes-validate.txt, installed by `deploy/local/stack.sh
//! install` with the Kubernetes schemas it ships, so it runs offline).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use super::{k8s::k8s_objects, yaml_docs};

/// The stack's state folder, as deploy/local/stack.sh finds it.
fn stack_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("SECKILL_STACK_DIR") {
        return dir.into();
    }
    let state = std::env::var("XDG_STATE_HOME")
        .unwrap_or_else(|_| format!("{}/.local/state", std::env::var("HOME").unwrap_or_default()));
    Path::new(&state).join("seckill/stack")
}

fn output_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-output")
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The Kubernetes releases the manifests are checked against: the oldest we support (NetworkPolicy,
/// policy/v1 and autoscaling/v2 are older still) and the newest the validator knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

#[test]
fn kubernetes_validate_accepts_every_manifest_against_the_schemas() {
    let runner = std::env::var("STACK_KUBERNETES_VALIDATE").map_or_else(
        |_| stack_dir().join("venv-k8s/bin/kubernetes-validate"),
        PathBuf::from,
    );
    assert!(
        runner.exists(),
        "kubernetes-validate is not installed at {}: run deploy/local/stack.sh install",
        runner.display()
    );
    // Every object of the kustomization and the Job, one per file. The Job gets a name: the
    // validator reads `metadata.name` (a generateName alone stops it with "'name'").
    let dir = output_dir("kubernetes-validate");
    let mut files = Vec::new();
    for (i, mut doc) in k8s_objects().into_iter().enumerate() {
        if doc["metadata"]["name"].is_null() {
            let generated = format!("{}x", doc["metadata"]["generateName"].as_str().unwrap());
            doc["metadata"]["name"] = generated.into();
        }
        let file = dir.join(format!("{i:02}-{}.yaml", doc["kind"].as_str().unwrap()));
        std::fs::write(&file, serde_yaml::to_string(&doc).unwrap()).unwrap();
        files.push(file);
    }
    for version in KUBERNETES_VERSIONS {
        let out = Command::new(&runner)
            .args(["--strict", "--kubernetes-version", version])
            .args(&files)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "Kubernetes {version}:\n{text}");
        let passed = text
            .lines()
            .filter(|l| l.contains(" passed for resource "))
            .count();
        assert_eq!(
            passed,
            files.len(),
            "Kubernetes {version}: not all validated:\n{text}"
        );
    }
    // The PrometheusRule is a custom resource the validator has no schema for; its rule groups
    // are compared with alerts.yml (which promtool tests) in the alerting test.
    assert_eq!(
        yaml_docs("k8s/prometheus-rule.yaml")[0]["kind"],
        "PrometheusRule"
    );
}
