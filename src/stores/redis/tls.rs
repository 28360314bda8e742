//! TLS material for Redis connections: the certificate authority that signed the servers'
//! certificates, and clients that check a `rediss://` server against it.

use redis::{ErrorKind, RedisError, RedisResult, TlsCertificates};

/// The certificate authority in `ca_file` (PEM), or `None` for the system's roots.
///
/// # Errors
/// The file cannot be read.
pub(crate) fn certificates(ca_file: &str) -> RedisResult<Option<TlsCertificates>> {
    let path = ca_file.trim();
    if path.is_empty() {
        return Ok(None);
    }
    let pem = std::fs::read(path).map_err(|e| {
        RedisError::from((
            ErrorKind::InvalidClientConfig,
            "cannot read SECKILL_REDIS_CA_FILE",
            format!("{path}: {e}"),
        ))
    })?;
    Ok(Some(TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    }))
}

/// A client for one server, checking a `rediss://` server's certificate against `certs`.
///
/// # Errors
/// The URL is malformed or the certificates do not parse.
pub fn client(url: &str, certs: Option<&TlsCertificates>) -> RedisResult<redis::Client> {
    match certs {
        Some(certs) if url.starts_with("rediss://") => {
            redis::Client::build_with_tls(url, certs.clone())
        }
        _ => redis::Client::open(url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ca_file_is_named() {
        assert!(certificates("").unwrap().is_none());
        let err = certificates("/nonexistent/ca.pem").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
