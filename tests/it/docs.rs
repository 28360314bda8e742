//! The pages a user reads: a short README that links the pages it promises, and docs that
//! name only script versions and settings that exist.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// README.md and every page under docs/: (name, text).
fn pages() -> Vec<(String, String)> {
    let mut pages = vec![("README.md".to_string(), read(&root().join("README.md")))];
    let mut dir: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    dir.sort();
    for p in dir {
        let name = format!("docs/{}", p.file_name().unwrap().to_string_lossy());
        pages.push((name, read(&p)));
    }
    pages
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The scripts in lua/ by name, with their versions (`deduct` → {4, 5}).
fn scripts() -> BTreeMap<String, BTreeSet<u32>> {
    let mut found: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("lua")).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        let Some((name, version)) = file.strip_suffix(".lua").and_then(|f| f.split_once(".v"))
        else {
            continue;
        };
        found
            .entry(name.to_string())
            .or_default()
            .insert(version.parse().unwrap());
    }
    found
}

/// Each `v<N>` of `text` standing alone (not `/v1/`, `v1=` or part of a word), with the text
/// around it: (N, the `reach` bytes before, the `reach` after).
fn version_mentions(text: &str, reach: usize) -> Vec<(u32, &str, &str)> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    for (i, _) in text.match_indices('v') {
        let before = i.checked_sub(1).map(|j| b[j]);
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || b"/=._-".contains(&c)) {
            continue;
        }
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        let after = b.get(i + 1 + digits).copied();
        if digits == 0 || after.is_some_and(|c| c.is_ascii_alphanumeric() || b"=/._".contains(&c)) {
            continue;
        }
        let n = text[i + 1..i + 1 + digits].parse().unwrap();
        let lo = text.floor_char_boundary(i.saturating_sub(reach));
        let hi = text.ceil_char_boundary((i + 1 + digits + reach).min(text.len()));
        found.push((n, &text[lo..i], &text[i + 1 + digits..hi]));
    }
    found
}

#[test]
fn the_readme_is_a_short_guide_that_links_the_docs() {
    let readme = read(&root().join("README.md"));
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; the guide keeps to about 250"
    );
    for page in [
        "docs/OPERATIONS.md",
        "docs/CONFIGURATION.md",
        "docs/BENCHMARKS.md",
        "docs/ARCHITECTURE.md",
    ] {
        assert!(
            readme.contains(&format!("]({page})")),
            "README.md links {page}"
        );
        assert!(root().join(page).exists(), "{page} exists");
    }
    for command in ["deploy/local/quickstart.sh", "deploy/local/test.sh"] {
        assert!(readme.contains(command), "README.md gives {command}");
    }
}

#[test]
fn the_docs_name_only_script_files_and_versions_that_exist() {
    let scripts = scripts();
    // A version that runs the files of the version before (v6 runs v5's) has none of its own.
    let served = seckill::domain::script_version::KNOWN_VERSIONS
        .iter()
        .filter_map(|v| seckill::domain::script_version::number(v));
    let deduct: BTreeSet<u32> = scripts["deduct"].iter().copied().chain(served).collect();
    let every: BTreeSet<u32> = scripts.values().flatten().chain(&deduct).copied().collect();
    let mut wrong = Vec::new();
    for (page, text) in pages() {
        // File names: `<name>.v<N>.lua`.
        for (i, _) in text.match_indices(".lua") {
            let start = text[..i]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .map_or(0, |j| j + 1);
            let file = &text[start..i];
            let Some((name, v)) = file.split_once(".v") else {
                continue;
            };
            let Ok(v) = v.parse::<u32>() else {
                continue; // a placeholder, as in `deduct.vN.lua`
            };
            if !scripts.get(name).is_some_and(|vs| vs.contains(&v)) {
                wrong.push(format!("{page}: {file}.lua is not in lua/"));
            }
        }
        // Versions: a sale's script version is a deduct version; any other `v<N>` must be
        // some script's version, unless it is another thing's (mimalloc's, named nearby).
        let near = version_mentions(&text, 24);
        let around = version_mentions(&text, 160);
        for ((n, before, after), (_, wide_before, wide_after)) in near.into_iter().zip(around) {
            let about_scripts = before.contains("script") || after.contains("script");
            let elsewhere = wide_before.contains("mimalloc") || wide_after.contains("mimalloc");
            if !elsewhere && (about_scripts && !deduct.contains(&n) || !every.contains(&n)) {
                wrong.push(format!("{page}: v{n} in \"{before}v{n}{after}\""));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the docs name script versions that do not exist:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_docs_name_only_settings_that_exist() {
    let settings: BTreeSet<String> = seckill::config::env_names().into_iter().collect();
    let stack = read(&root().join("deploy/local/stack.sh"));
    let mut wrong = BTreeSet::new();
    for (page, text) in pages() {
        for (i, _) in text.match_indices("SECKILL_") {
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            let known = name.ends_with('_') // a family, as in `SECKILL_*`
                || settings.contains(&name)
                || name == "SECKILL_CONFIG" // the --config flag's variable
                || name.starts_with("SECKILL_STACK_") && stack.contains(&name);
            if !known {
                wrong.insert(format!("{page}: {name}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the docs name settings that do not exist:\n{}",
        wrong.into_iter().collect::<Vec<_>>().join("\n")
    );
}
