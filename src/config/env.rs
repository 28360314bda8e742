//! Layering: defaults, then a TOML file, then `SECKILL_*` variables typed after the default at
//! the same path.

use std::path::Path;

use super::{ConfigError, ENV_PREFIX, Settings};

impl Settings {
    /// Loads defaults, then `file` (if given), then `SECKILL_*` variables from the process
    /// environment, and validates the result.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad key.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Settings::load`] with an explicit environment, so tests never touch the real one.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad key.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut tree = toml::Value::try_from(Settings::default())
            .map_err(|e| ConfigError::new("defaults", e.to_string()))?;
        if let Some(path) = file {
            let key = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::new(&key, format!("cannot read: {e}")))?;
            let overlay: toml::Value = toml::from_str(&text)
                .map_err(|e| ConfigError::new(&key, e.message().to_string()))?;
            merge(&mut tree, overlay, &mut Vec::new())?;
        }
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k != "SECKILL_CONFIG")
            .collect();
        let ignored = apply_env(&mut tree, &env)?;
        let settings: Settings = serde_path_to_error::deserialize(tree.clone()).map_err(|e| {
            let path: Vec<String> = e.path().iter().map(|seg| seg.to_string()).collect();
            let mut shown = &tree;
            for part in &path {
                shown = shown.get(part.as_str()).unwrap_or(shown);
            }
            ConfigError::new(
                env_name(&path),
                format!("{} (got {shown})", e.inner().message()),
            )
        })?;
        settings.validate()?;
        Ok(Settings {
            ignored_env: ignored,
            ..settings
        })
    }
}

/// The environment name of a settings path: `http.addr` -> `SECKILL_HTTP_ADDR`.
pub fn env_name(path: &[String]) -> String {
    let mut name = String::from(ENV_PREFIX);
    name.push_str(&path.join("_").to_ascii_uppercase());
    name
}

/// Every settings path with its environment name, for `--help`-style listings and the README.
pub fn env_names() -> Vec<String> {
    let tree = toml::Value::try_from(Settings::default()).expect("defaults serialise");
    let mut out = Vec::new();
    collect_leaves(&tree, &mut Vec::new(), &mut |path, _| {
        out.push(env_name(path))
    });
    out
}

fn collect_leaves(
    v: &toml::Value,
    path: &mut Vec<String>,
    f: &mut dyn FnMut(&[String], &toml::Value),
) {
    match v {
        toml::Value::Table(t) => {
            for (k, child) in t {
                path.push(k.clone());
                collect_leaves(child, path, f);
                path.pop();
            }
        }
        leaf => f(path, leaf),
    }
}

/// Overlays `from` onto `into`, refusing keys the defaults do not know.
fn merge(
    into: &mut toml::Value,
    from: toml::Value,
    path: &mut Vec<String>,
) -> Result<(), ConfigError> {
    match (into, from) {
        (toml::Value::Table(base), toml::Value::Table(over)) => {
            for (k, v) in over {
                path.push(k.clone());
                let Some(slot) = base.get_mut(&k) else {
                    return Err(ConfigError::new(
                        path.join("."),
                        "unknown setting in the config file",
                    ));
                };
                merge(slot, v, path)?;
                path.pop();
            }
            Ok(())
        }
        (slot, v) => {
            if std::mem::discriminant(slot) != std::mem::discriminant(&v) {
                return Err(ConfigError::new(
                    path.join("."),
                    format!("expected a {}, got a {}", slot.type_str(), v.type_str()),
                ));
            }
            *slot = v;
            Ok(())
        }
    }
}

/// Whether `name` has the shape of a variable Kubernetes injects for a Service (docker-links
/// style): `<SVC>_SERVICE_HOST`, `<SVC>_SERVICE_PORT[_<NAME>]`, `<SVC>_PORT`,
/// `<SVC>_PORT_<n>_<PROTO>[_PROTO|_PORT|_ADDR]`. A Service called `seckill-api` makes
/// `SECKILL_API_SERVICE_HOST` and friends appear in every pod of its namespace.
pub fn is_service_link(name: &str) -> bool {
    if name.ends_with("_SERVICE_HOST")
        || name.ends_with("_SERVICE_PORT")
        || name.contains("_SERVICE_PORT_")
        || name.ends_with("_PORT")
    {
        return true;
    }
    let Some((_, tail)) = name.rsplit_once("_PORT_").or_else(|| {
        // `_PORT_8080_TCP_PORT`: the last `_PORT_` is the field, the one before it the marker.
        let cut = name.strip_suffix("_PORT")?;
        cut.rsplit_once("_PORT_")
    }) else {
        return false;
    };
    let mut parts = tail.split('_');
    let number = parts.next().unwrap_or("");
    let proto = parts.next().unwrap_or("");
    let field = parts.next();
    !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && ["TCP", "UDP", "SCTP"].contains(&proto)
        && field.is_none_or(|f| ["PROTO", "PORT", "ADDR"].contains(&f))
        && parts.next().is_none()
}

/// Applies `SECKILL_*` variables, typed after the default at the same path. Returns the unknown
/// names it skipped because they are Kubernetes service links; any other unknown name is an
/// error.
fn apply_env(tree: &mut toml::Value, env: &[(String, String)]) -> Result<Vec<String>, ConfigError> {
    let mut ignored = Vec::new();
    let mut known = Vec::new();
    collect_leaves(tree, &mut Vec::new(), &mut |path, leaf| {
        known.push((env_name(path), path.to_vec(), leaf.type_str()));
    });
    for (key, raw) in env {
        let Some((_, path, kind)) = known.iter().find(|(name, _, _)| name == key) else {
            if is_service_link(key) {
                ignored.push(key.clone());
                continue;
            }
            return Err(ConfigError::new(key, "unknown setting"));
        };
        let value = match *kind {
            "integer" => raw
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|v| *v >= 0)
                .map(toml::Value::Integer)
                .ok_or_else(|| {
                    ConfigError::new(key, format!("expected a whole number >= 0, got '{raw}'"))
                })?,
            "boolean" => match raw.trim() {
                "true" | "1" | "yes" => toml::Value::Boolean(true),
                "false" | "0" | "no" => toml::Value::Boolean(false),
                _ => {
                    return Err(ConfigError::new(
                        key,
                        format!("expected true or false, got '{raw}'"),
                    ));
                }
            },
            _ => toml::Value::String(raw.clone()),
        };
        let mut slot = &mut *tree;
        for part in path {
            slot = slot
                .get_mut(part.as_str())
                .expect("path came from the same tree");
        }
        *slot = value;
    }
    Ok(ignored)
}
