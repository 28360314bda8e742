//! What a Redis URL selects, and TLS for each kind.
//!
//! | URL | servers |
//! |---|---|
//! | `redis://[:pw@]host:port/db`, `rediss://…` | one server (`rediss`: TLS) |
//! | `redis+cluster://[:pw@]h1:p1,h2:p2`, `rediss+cluster://…` | a cluster; the credentials of the first node apply to every node |
//! | `redis+sentinel://[:pw@]s1:p1,s2:p2/<master>`, `rediss+sentinel://…` | the master the Sentinels name; the credentials are the master's, TLS applies to Sentinels and master alike |
//!
//! Parsing only; `redis_pool` connects (and checks certificates against
//! `SECKILL_REDIS_CA_FILE` or the system's roots).

use redis::{ConnectionAddr, ErrorKind, RedisError, RedisResult};

/// The servers a URL selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// One server; the URL as given.
    Standalone(String),
    /// A cluster: one URL per seed node (`redis://` or `rediss://`).
    Cluster(Vec<String>),
    /// Sentinels and the name of the master they watch.
    Sentinel(SentinelTarget),
}

/// Where the Sentinels are and what to ask them for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelTarget {
    /// Sentinel addresses.
    pub sentinels: Vec<(String, u16)>,
    /// The master's name in the Sentinels' configuration.
    pub master: String,
    /// TLS to Sentinels and master.
    pub tls: bool,
    /// The master's user name, if any.
    pub username: Option<String>,
    /// The master's password, if any.
    pub password: Option<String>,
}

impl SentinelTarget {
    /// The Sentinels as connection addresses (TLS ones when `tls`).
    pub(crate) fn addrs(&self) -> Vec<ConnectionAddr> {
        self.sentinels
            .iter()
            .map(|(host, port)| {
                if self.tls {
                    ConnectionAddr::TcpTls {
                        host: host.clone(),
                        port: *port,
                        insecure: false,
                        tls_params: None,
                    }
                } else {
                    ConnectionAddr::Tcp(host.clone(), *port)
                }
            })
            .collect()
    }
}

fn invalid(detail: impl Into<String>) -> RedisError {
    RedisError::from((
        ErrorKind::InvalidClientConfig,
        "bad Redis URL",
        detail.into(),
    ))
}

/// Splits an optional `user:password@` off the front of `rest`.
fn credentials(rest: &str) -> (Option<String>, Option<String>, &str) {
    let Some((creds, after)) = rest.split_once('@') else {
        return (None, None, rest);
    };
    let (user, password) = creds.split_once(':').unwrap_or((creds, ""));
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    (some(user), some(password), after)
}

fn host_port(node: &str) -> RedisResult<(String, u16)> {
    let (host, port) = node
        .rsplit_once(':')
        .ok_or_else(|| invalid(format!("'{node}' is not host:port")))?;
    let port = port
        .parse()
        .map_err(|_| invalid(format!("'{node}' has no port number")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(invalid(format!("'{node}' has no host")));
    }
    Ok((host.to_string(), port))
}

/// Reads the URL's kind, nodes, TLS and credentials.
///
/// # Errors
/// The URL is none of the forms above.
pub fn parse(url: &str) -> RedisResult<Topology> {
    let url = url.trim();
    for (scheme, tls) in [("redis+cluster://", false), ("rediss+cluster://", true)] {
        if let Some(rest) = url.strip_prefix(scheme) {
            let node_scheme = if tls { "rediss" } else { "redis" };
            let nodes: Vec<String> = rest
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| format!("{node_scheme}://{n}"))
                .collect();
            if nodes.is_empty() {
                return Err(invalid("a cluster URL names at least one node"));
            }
            return Ok(Topology::Cluster(nodes));
        }
    }
    for (scheme, tls) in [("redis+sentinel://", false), ("rediss+sentinel://", true)] {
        if let Some(rest) = url.strip_prefix(scheme) {
            let bad = || {
                invalid(
                    "a Sentinel URL is redis+sentinel://[:password@]host:port[,host:port...]/<master name>",
                )
            };
            let (username, password, rest) = credentials(rest);
            let (hosts, master) = rest.split_once('/').ok_or_else(bad)?;
            let master = master.trim_end_matches('/').trim();
            let sentinels = hosts
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(host_port)
                .collect::<RedisResult<Vec<_>>>()?;
            if sentinels.is_empty() || master.is_empty() {
                return Err(bad());
            }
            return Ok(Topology::Sentinel(SentinelTarget {
                sentinels,
                master: master.to_string(),
                tls,
                username,
                password,
            }));
        }
    }
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        return Ok(Topology::Standalone(url.to_string()));
    }
    Err(invalid(
        "expected redis://, rediss://, redis+cluster://, rediss+cluster://, redis+sentinel:// or rediss+sentinel://",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scheme_selects_its_topology_and_tls() {
        assert_eq!(
            parse("rediss://:pw@localhost:6380/0").unwrap(),
            Topology::Standalone("rediss://:pw@localhost:6380/0".into())
        );
        assert_eq!(
            parse("rediss+cluster://:pw@h1:7000, h2:7001").unwrap(),
            Topology::Cluster(vec![
                "rediss://:pw@h1:7000".into(),
                "rediss://h2:7001".into()
            ])
        );
        assert_eq!(
            parse("redis+cluster://h1:7000").unwrap(),
            Topology::Cluster(vec!["redis://h1:7000".into()])
        );
        let Topology::Sentinel(t) =
            parse("rediss+sentinel://:s3cret@127.0.0.1:26379, 127.0.0.1:26380/seckill").unwrap()
        else {
            panic!("not a sentinel URL")
        };
        assert_eq!(
            t.sentinels,
            [
                ("127.0.0.1".to_string(), 26379),
                ("127.0.0.1".to_string(), 26380)
            ]
        );
        assert_eq!(
            (t.master.as_str(), t.tls, t.password.as_deref()),
            ("seckill", true, Some("s3cret"))
        );
        assert!(matches!(
            t.addrs()[0],
            ConnectionAddr::TcpTls {
                insecure: false,
                ..
            }
        ));
        let Topology::Sentinel(plain) = parse("redis+sentinel://h:1/m").unwrap() else {
            panic!("not a sentinel URL")
        };
        assert!(matches!(plain.addrs()[0], ConnectionAddr::Tcp(..)));
        assert_eq!(plain.password, None);
    }

    #[test]
    fn malformed_urls_are_refused() {
        for url in [
            "http://x",
            "redis+cluster://",
            "redis+sentinel://127.0.0.1:26379",
            "redis+sentinel:///seckill",
            "redis+sentinel://127.0.0.1/seckill",
        ] {
            assert!(parse(url).is_err(), "{url}");
        }
    }
}
