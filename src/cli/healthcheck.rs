//! `seckill healthcheck`: one HTTP GET against this host's own listener, for container
//! health checks in images that carry no curl.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// The address to call for a listener bound to `bind`: an unspecified address (`0.0.0.0`,
/// `::`) is reached through loopback.
pub(crate) fn local_target(bind: SocketAddr) -> SocketAddr {
    match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), bind.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), bind.port())
        }
        _ => bind,
    }
}

/// Sends `GET path` to `addr` and returns the status code of the answer.
///
/// # Errors
/// No connection, no answer within `timeout`, or an answer that is not HTTP.
pub(crate) async fn get_status(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> anyhow::Result<u16> {
    if !path.starts_with('/') || path.bytes().any(|b| b.is_ascii_whitespace()) {
        bail!("the path must start with / and hold no spaces (got {path:?})");
    }
    tokio::time::timeout(timeout, async {
        let mut stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut head = Vec::with_capacity(64);
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n") && head.len() < 256 {
            if stream.read(&mut byte).await? == 0 {
                break;
            }
            head.push(byte[0]);
        }
        let line = String::from_utf8_lossy(&head);
        let mut words = line.split_whitespace();
        match (
            words.next(),
            words.next().and_then(|c| c.parse::<u16>().ok()),
        ) {
            (Some(v), Some(code)) if v.starts_with("HTTP/") => Ok(code),
            _ => bail!("{addr} did not answer HTTP (got {:?})", line.trim_end()),
        }
    })
    .await
    .with_context(|| format!("{addr} did not answer within {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_binds_are_reached_through_loopback() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(local_target(any), "127.0.0.1:8080".parse().unwrap());
        let any6: SocketAddr = "[::]:8081".parse().unwrap();
        assert_eq!(local_target(any6), "[::1]:8081".parse().unwrap());
        let one: SocketAddr = "10.1.2.3:80".parse().unwrap();
        assert_eq!(local_target(one), one);
    }

    #[tokio::test]
    async fn a_closed_port_and_a_bad_path_are_errors() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        assert!(
            get_status(addr, "/healthz", Duration::from_secs(2))
                .await
                .is_err()
        );
        assert!(
            get_status(addr, "healthz", Duration::from_secs(2))
                .await
                .is_err()
        );
    }
}
