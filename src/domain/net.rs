//! Which peers are trusted proxies (`SECKILL_TRUSTED_PROXIES`), and the client address a
//! request stands for: only a trusted proxy's `X-Forwarded-For` is believed, and only up to the
//! first address it did not add itself.

use std::net::IpAddr;

use super::FieldError;

/// One `address/prefix` network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `2001:db8::/32`, or a lone address (a /32 or /128).
    ///
    /// # Errors
    /// Not an address, or a prefix longer than the address.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let bad = || {
            FieldError::new(
                "SECKILL_TRUSTED_PROXIES",
                format!("'{raw}' is not an address or address/prefix"),
            )
        };
        let (addr, prefix) = match raw.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (raw.trim(), None),
        };
        let net: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { net, prefix })
    }

    /// True when `ip` is inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The configured trusted proxies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Parses a comma-separated list (empty: trust nobody).
    ///
    /// # Errors
    /// An entry that is not an address or network.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        raw.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(Cidr::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// True when no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `peer` is one of them.
    pub(crate) fn trusts(&self, peer: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(peer))
    }

    /// The address a request stands for: the peer, unless the peer is a trusted proxy that sent
    /// `X-Forwarded-For`, in which case the rightmost address of that list that is not itself a
    /// trusted proxy (addresses to its left could be made up by the client).
    pub fn client(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let Some(list) = forwarded_for else {
            return peer;
        };
        let mut client = peer;
        for hop in list.rsplit(',') {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains(ip("10.1.200.3")));
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(!c.contains(ip("::1")));
        assert!(Cidr::parse("::1").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope").is_err());
    }

    #[test]
    fn only_a_trusted_proxys_forwarded_for_is_believed() {
        let t = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1").unwrap();
        // An untrusted peer: its header is ignored.
        assert_eq!(
            t.client(ip("203.0.113.9"), Some("1.2.3.4")),
            ip("203.0.113.9")
        );
        // A trusted balancer: the client it saw.
        assert_eq!(
            t.client(ip("10.0.0.5"), Some("198.51.100.7")),
            ip("198.51.100.7")
        );
        // A client that sends its own header gets the address the proxy added, not its lie.
        assert_eq!(
            t.client(ip("10.0.0.5"), Some("1.1.1.1, 198.51.100.7, 10.0.0.9")),
            ip("198.51.100.7")
        );
        assert_eq!(t.client(ip("10.0.0.5"), None), ip("10.0.0.5"));
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.5"), Some("1.1.1.1")),
            ip("10.0.0.5")
        );
    }
}
