//! Outside validators. The manifests go through kubernetes-validate (pinned in
//! deploy/local/requirements-kubernetes-validate.txt, installed by `deploy/local/stack.sh
//! install` with the Kubernetes schemas it ships, so it runs offline). Docker checks the compose
//! file and builds the image where it runs; where it does not, the test output says so.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
};

use super::{deploy, k8s::k8s_objects, yaml_docs};

/// Prints past the test harness's capture, so the line shows even when the test passes.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

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
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The Kubernetes releases the manifests are checked against: the oldest we support (NetworkPolicy,
/// policy/v1 and autoscaling/v2 are older still) and the newest the validator knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

/// Panics with `what` and the command's stderr unless it exited 0.
fn succeeded(out: &std::process::Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what}: {stderr}");
}

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

fn docker() -> Command {
    Command::new(std::env::var("STACK_DOCKER").unwrap_or_else(|_| "docker".into()))
}

fn works(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|o| o.status.success())
}

/// Where Docker runs, `docker compose config` validates the compose file with a generated
/// deploy/.env, and (with STACK_DOCKER_BUILD=1, as it takes minutes) the image is built.
/// Where it does not, the test output says what was left unchecked.
#[test]
fn docker_checks_the_compose_file_and_the_dockerfile_where_it_runs() {
    if !works(docker().args(["compose", "version"])) {
        say(
            "docker: not available here; deploy/docker-compose.yml checked statically only (not by `docker compose config`), deploy/Dockerfile not built",
        );
        return;
    }
    let env_file = output_dir("docker").join("compose.env");
    let env: String = [
        "SECKILL_ADMIN_TOKEN",
        "SECKILL_JWT_SECRET",
        "SECKILL_PAYMENT_SECRET",
        "REDIS_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
    ]
    .iter()
    .map(|k| format!("{k}=0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071\n"))
    .collect();
    std::fs::write(&env_file, env).unwrap();
    let out = docker()
        .args(["compose", "--env-file"])
        .arg(&env_file)
        .arg("-f")
        .arg(deploy("docker-compose.yml"))
        .args(["config", "--quiet"])
        .output()
        .unwrap();
    succeeded(&out, "docker compose config");
    say("docker: `docker compose config` accepts deploy/docker-compose.yml");
    if std::env::var("STACK_DOCKER_BUILD").as_deref() != Ok("1") {
        say("docker: deploy/Dockerfile not built (set STACK_DOCKER_BUILD=1 to build it)");
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let out = docker()
        .args(["build", "-q", "-t", "seckill:test", "-f"])
        .arg(deploy("Dockerfile"))
        .arg(root)
        .output()
        .unwrap();
    succeeded(&out, "docker build");
    let out = docker()
        .args(["run", "--rm", "seckill:test", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success(), "the image's binary does not run");
    say("docker: deploy/Dockerfile built and its binary runs");
}
