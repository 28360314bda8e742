//! The shape of the code, as docs/ARCHITECTURE.md's module map describes it: at most fourteen
//! top-level modules in the order data flows, and no module below the edges reaching up into
//! the HTTP layer.

use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    out
}

/// The top-level modules `lib.rs` declares, in order.
pub(crate) fn top_level_modules() -> Vec<String> {
    std::fs::read_to_string(src().join("lib.rs"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect()
}

#[test]
fn the_crate_has_at_most_fourteen_modules_in_the_order_data_flows() {
    let modules = top_level_modules();
    assert!(
        modules.len() <= 14,
        "{} modules: {modules:?}",
        modules.len()
    );
    let position = |m: &str| modules.iter().position(|x| x == m).unwrap();
    // Each module only uses the ones above it; the edges come last.
    for (before, after) in [
        ("config", "domain"),
        ("stores", "stock"),
        ("stock", "sales"),
        ("sales", "buy"),
        ("buy", "outbox"),
        ("consumer", "orders"),
        ("reconcile", "api"),
        ("api", "app"),
        ("app", "cli"),
    ] {
        assert!(
            position(before) < position(after),
            "{before} before {after}"
        );
    }
}

#[test]
fn nothing_below_the_edges_imports_the_http_layer() {
    let edges = ["api", "app", "cli"].map(|e| src().join(e));
    let mut offenders = Vec::new();
    for file in rust_files(&src()) {
        if edges.iter().any(|e| file.starts_with(e)) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.lines().filter(|l| !l.trim_start().starts_with("//"));
        if code
            .into_iter()
            .any(|l| l.contains("crate::api") || l.trim_start().starts_with("api::"))
        {
            offenders.push(file.strip_prefix(src()).unwrap().display().to_string());
        }
    }
    assert!(
        offenders.is_empty(),
        "below api/, app/ and cli/, these import the HTTP layer: {offenders:?}"
    );
}

#[test]
fn the_settings_reference_is_written_from_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/CONFIGURATION.md");
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    let current = seckill::config::reference();
    if std::env::var("UPDATE_DOCS").is_ok() {
        std::fs::write(&path, &current).unwrap();
        return;
    }
    assert!(
        written == current,
        "docs/CONFIGURATION.md is stale: run `cargo run -- config --reference > docs/CONFIGURATION.md` (or the test with UPDATE_DOCS=1)"
    );
}

/// The module map in docs/ARCHITECTURE.md: one row per top-level module, in lib.rs's order,
/// and every file or folder a row names exists inside that module.
#[test]
fn the_architecture_module_map_matches_the_tree() {
    let doc = std::fs::read_to_string(src().join("../docs/ARCHITECTURE.md")).unwrap();
    let map = doc
        .split("\n## Module map\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/ARCHITECTURE.md has a ## Module map section");
    let rows: Vec<(String, Vec<String>)> = map
        .lines()
        .filter_map(|l| l.strip_prefix("| `src/"))
        .map(|l| {
            let (module, rest) = l
                .split_once("/` |")
                .expect("a row starts with `src/<module>/`");
            let named = rest
                .split('`')
                .skip(1)
                .step_by(2)
                .filter(|t| t.ends_with(".rs") || t.ends_with('/'))
                .map(str::to_string)
                .collect();
            (module.to_string(), named)
        })
        .collect();
    let modules: Vec<&String> = rows.iter().map(|(m, _)| m).collect();
    assert_eq!(modules, top_level_modules().iter().collect::<Vec<_>>());
    for (module, named) in &rows {
        let dir = src().join(module);
        let found = rust_files(&dir);
        for name in named {
            let exists = found.iter().any(|f| {
                let rel = f.strip_prefix(&dir).unwrap().to_string_lossy().into_owned();
                match name.strip_suffix('/') {
                    Some(folder) => {
                        rel.starts_with(&format!("{folder}/"))
                            || rel.contains(&format!("/{folder}/"))
                    }
                    None => rel == *name || rel.ends_with(&format!("/{name}")),
                }
            });
            assert!(
                exists,
                "the module map names {name} in src/{module}/, which has no such file or folder"
            );
        }
    }
}
