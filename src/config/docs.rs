//! The settings reference (docs/CONFIGURATION.md), written from the settings' own doc comments
//! and defaults, so that it cannot drift from the code: `seckill config --reference` prints it,
//! and a test compares it with the file.

use std::collections::HashMap;

use super::{Settings, env_name};

/// The settings an operator sets in nearly every deployment: where the servers are, the
/// secrets, who the buyer is, the limits, what a 202 means, and how long sales are kept. The
/// README's table lists exactly these; the reference has the rest as well.
pub const CORE: &[&str] = &[
    "SECKILL_HTTP_ADDR",
    "SECKILL_ADMIN_ADDR",
    "SECKILL_ADMIN_TOKEN",
    "SECKILL_JWT_SECRET",
    "SECKILL_PAYMENT_SECRET",
    "SECKILL_JWT_ISSUER",
    "SECKILL_JWT_AUDIENCE",
    "SECKILL_USER_IDENTITY",
    "SECKILL_TRUSTED_PROXIES",
    "SECKILL_REDIS_URL",
    "SECKILL_REDIS_CA_FILE",
    "SECKILL_MYSQL_URL",
    "SECKILL_KAFKA_BROKERS",
    "SECKILL_KAFKA_SECURITY_PROTOCOL",
    "SECKILL_KAFKA_SASL_MECHANISM",
    "SECKILL_KAFKA_SASL_USERNAME",
    "SECKILL_KAFKA_SASL_PASSWORD",
    "SECKILL_KAFKA_SSL_CA_LOCATION",
    "SECKILL_BUY_CONFIRM",
    "SECKILL_LIMITS_GLOBAL_PER_SEC",
    "SECKILL_LIMITS_PER_USER_PER_SEC",
    "SECKILL_LIMITS_PER_IP",
    "SECKILL_SALE_GRACE_SECS",
    "SECKILL_LOG_FORMAT",
    "SECKILL_LOG_FILTER",
];

/// The source files whose doc comments describe the settings.
const SOURCES: &[&str] = &[
    include_str!("settings.rs"),
    include_str!("sections.rs"),
    include_str!("servers.rs"),
];

/// One setting: its environment name, default and description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Described {
    /// `SECKILL_…`.
    pub env: String,
    /// The default as the TOML file would write it (empty for a secret).
    pub default: String,
    /// The field's doc comment, on one line.
    pub doc: String,
}

/// Every struct's fields in the sources: struct name -> (field, type, doc).
fn fields() -> HashMap<String, Vec<(String, String, String)>> {
    let mut out: HashMap<String, Vec<(String, String, String)>> = HashMap::new();
    for source in SOURCES {
        let mut current: Option<String> = None;
        let mut doc: Vec<String> = Vec::new();
        for line in source.lines() {
            let t = line.trim();
            if let Some(name) = t.strip_prefix("pub struct ") {
                current = name.strip_suffix(" {").map(str::to_string);
                doc.clear();
            } else if t == "}" {
                current = None;
            } else if let Some(text) = t.strip_prefix("///") {
                doc.push(text.trim().to_string());
            } else if let (Some(s), Some(field)) = (&current, t.strip_prefix("pub ")) {
                if let Some((name, ty)) = field.split_once(": ") {
                    let ty = ty.trim_end_matches(',').to_string();
                    let entry = (name.to_string(), ty, doc.join(" "));
                    out.entry(s.clone()).or_default().push(entry);
                }
                doc.clear();
            } else if !t.starts_with("#[") {
                doc.clear();
            }
        }
    }
    out
}

/// Every setting, in the order of the settings' types, with its default and description.
pub(crate) fn described() -> Vec<Described> {
    let fields = fields();
    let defaults = toml::Value::try_from(Settings::default()).expect("defaults serialise");
    let mut out = Vec::new();
    walk(&fields, "Settings", &defaults, &mut Vec::new(), &mut out);
    out
}

fn walk(
    fields: &HashMap<String, Vec<(String, String, String)>>,
    ty: &str,
    defaults: &toml::Value,
    path: &mut Vec<String>,
    out: &mut Vec<Described>,
) {
    for (name, field_ty, doc) in fields.get(ty).into_iter().flatten() {
        let Some(value) = defaults.get(name) else {
            continue; // not a setting (skipped in serialisation)
        };
        path.push(name.clone());
        if fields.contains_key(field_ty) {
            walk(fields, field_ty, value, path, out);
        } else {
            out.push(Described {
                env: env_name(path),
                default: shown(field_ty, value),
                doc: doc.clone(),
            });
        }
        path.pop();
    }
}

/// A default as an operator writes it; a secret is shown as required, or with its password
/// masked.
fn shown(ty: &str, value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) if s.is_empty() => "(empty)".to_string(),
        toml::Value::String(s) if ty == "Secret" && s.contains("change-me") => {
            "(set it)".to_string()
        }
        toml::Value::String(s) if ty == "Secret" => super::redacted(s),
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A table of `settings` in Markdown.
pub fn table(settings: &[Described]) -> String {
    let mut out = String::from("| variable | default | meaning |\n|---|---|---|\n");
    for s in settings {
        let default = format!("`{}`", s.default);
        out.push_str(&format!("| `{}` | {default} | {} |\n", s.env, s.doc));
    }
    out
}

/// docs/CONFIGURATION.md.
pub fn reference() -> String {
    let all = described();
    let (core, advanced): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|s| CORE.contains(&s.env.as_str()));
    format!(
        "# Configuration\n\n\
         Every setting of `seckill`, written from the settings' own doc comments by \
         `seckill config --reference` (a test keeps this file current). A setting comes from, \
         in order: its default, the TOML file given with `--config` (the same path in \
         lowercase, as `[http] addr = …`), then the `SECKILL_*` variable. `seckill config` \
         prints every effective value, with passwords masked. A bad value stops the process \
         with one line naming the variable.\n\n\
         ## The settings of every deployment\n\n{}\n\
         ## Tuning\n\n\
         Defaults that suit a sale of any size; change one when a measurement says so.\n\n{}",
        table(&core),
        table(&advanced)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_described_and_the_core_ones_exist() {
        let all = described();
        let names: Vec<String> = super::super::env_names();
        assert_eq!(all.len(), names.len(), "every setting has its row");
        for s in &all {
            assert!(!s.doc.is_empty(), "{} has no doc comment", s.env);
        }
        for core in CORE {
            assert!(names.iter().any(|n| n == core), "{core} is not a setting");
        }
        assert!(CORE.len() <= 25);
    }
}
