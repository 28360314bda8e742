//! The secrets a serving process needs (admin token, buyer-token key, payment key) are real:
//! not a built-in default, not a placeholder copied from an example, at least 32 bytes.
//! Checked by the commands that use them (`serve`, `all`), so a consumer or a migration job does
//! not need them.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Settings};

/// A string that must never reach a log line (tokens, passwords).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself; call only where it is used, never to print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A connection URL with its password replaced, safe for logs and error lines.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Shortest secret accepted, in bytes: 256 bits of key for HMAC-SHA256.
pub const MIN_SECRET_LEN: usize = 32;

/// Words that mark a value copied from an example rather than generated.
const PLACEHOLDER_MARKS: &[&str] = &[
    "change-me",
    "changeme",
    "replace",
    "placeholder",
    "example",
    "secret-here",
    "your-",
];

fn check(key: &str, secret: &Secret) -> Result<(), ConfigError> {
    let value = secret.expose();
    let lower = value.to_ascii_lowercase();
    if let Some(mark) = PLACEHOLDER_MARKS.iter().find(|m| lower.contains(*m)) {
        return Err(ConfigError::new(
            key,
            format!(
                "looks like a placeholder (it contains '{mark}'); generate one, e.g. `openssl rand -hex 32`"
            ),
        ));
    }
    if value.len() < MIN_SECRET_LEN {
        return Err(ConfigError::new(
            key,
            format!(
                "must be at least {MIN_SECRET_LEN} bytes (got {}); generate one, e.g. `openssl rand -hex 32`",
                value.len()
            ),
        ));
    }
    Ok(())
}

impl Settings {
    /// Checks the admin token, the buyer-token secret and the payment secret.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first secret that is a default, a placeholder or short.
    pub fn validate_secrets(&self) -> Result<(), ConfigError> {
        check("SECKILL_ADMIN_TOKEN", &self.admin_token)?;
        check("SECKILL_JWT_SECRET", &self.jwt_secret)?;
        check("SECKILL_PAYMENT_SECRET", &self.payment_secret)
    }

    /// Checks the buyer-token secret alone (what `seckill token` signs with).
    ///
    /// # Errors
    /// A [`ConfigError`] when it is a default, a placeholder or short.
    pub(crate) fn validate_jwt_secret(&self) -> Result<(), ConfigError> {
        check("SECKILL_JWT_SECRET", &self.jwt_secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(admin: &str) -> Settings {
        let strong = "0123456789abcdef0123456789abcdef";
        Settings {
            admin_token: Secret::new(admin),
            jwt_secret: Secret::new(strong),
            payment_secret: Secret::new(strong),
            ..Settings::default()
        }
    }

    #[test]
    fn defaults_placeholders_and_short_secrets_are_refused() {
        assert!(
            Settings::default().validate_secrets().is_err(),
            "built-in defaults"
        );
        for bad in [
            "change-me-admin",
            "replace-with-a-long-random-admin-token",
            "short",
            "an-example-token-that-is-long-enough-0001",
        ] {
            let err = with(bad).validate_secrets().unwrap_err();
            assert_eq!(err.key, "SECKILL_ADMIN_TOKEN", "{bad}");
            assert!(
                !err.to_string().contains(bad),
                "the value never prints: {err}"
            );
        }
        assert!(
            with("3f9a7c21d0b84e6aa1f25c7e9d03b6f4")
                .validate_secrets()
                .is_ok()
        );
    }
}
