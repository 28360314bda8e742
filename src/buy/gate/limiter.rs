//! Token buckets (governor): one global bucket per instance, one per user and, when switched
//! on, one per client address (an IPv6 client counts per /64 network, the block one customer
//! gets, so cycling through its addresses gains nothing). Keyed buckets are pruned
//! periodically, so a flood of distinct users or addresses cannot grow memory without bound.

use std::{
    net::{IpAddr, Ipv6Addr},
    num::NonZeroU32,
    time::Duration,
};

use governor::{
    DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock,
};

use crate::config::{LimitSettings, PerIpMode};

/// Which gate turned a request away (the metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// The instance-wide bucket.
    Global,
    /// The buyer's bucket.
    User,
    /// The client address's bucket.
    Ip,
    /// The payment notifications' bucket.
    Payments,
}

impl Gate {
    /// Metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Gate::Global => "global",
            Gate::User => "user",
            Gate::Ip => "ip",
            Gate::Payments => "payments",
        }
    }
}

/// A request a bucket refused, and when the bucket will have a token again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// Which gate.
    pub gate: Gate,
    /// How long until a token is available.
    pub retry_after: Duration,
}

/// The buy endpoint's token buckets; a bucket with rate 0 is switched off.
pub struct Gates {
    global: Option<DefaultDirectRateLimiter>,
    per_user: Option<DefaultKeyedRateLimiter<String>>,
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    payments: Option<DefaultDirectRateLimiter>,
}

fn quota(per_sec: u64, burst: u64) -> Option<Quota> {
    let rate = NonZeroU32::new(u32::try_from(per_sec).ok()?)?;
    let burst = NonZeroU32::new(u32::try_from(burst).ok()?).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

/// The bucket an address counts in: IPv4 (and IPv4-mapped IPv6) addresses alone, other
/// IPv6 addresses by their /64 network.
pub(crate) fn ip_bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(
                u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            )),
        },
    }
}

/// Takes a token from an instance-wide bucket (none configured: always passes).
fn take(limiter: Option<&DefaultDirectRateLimiter>, gate: Gate) -> Result<(), Rejected> {
    let Some(limiter) = limiter else {
        return Ok(());
    };
    limiter.check().map_err(|not_until| Rejected {
        gate,
        retry_after: not_until.wait_time_from(limiter.clock().now()),
    })
}

impl Gates {
    /// Buckets per the settings; `proxies_trusted` says whether trusted proxies are configured
    /// (the per-IP bucket's `auto` mode follows it).
    pub fn new(limits: &LimitSettings, proxies_trusted: bool) -> Self {
        let per_ip = match limits.per_ip {
            PerIpMode::On => true,
            PerIpMode::Auto => proxies_trusted,
            PerIpMode::Off => false,
        };
        Self {
            global: quota(limits.global_per_sec, limits.global_burst).map(RateLimiter::direct),
            per_user: quota(limits.per_user_per_sec, limits.per_user_burst).map(RateLimiter::keyed),
            per_ip: quota(limits.per_ip_per_sec, limits.per_ip_burst)
                .filter(|_| per_ip)
                .map(RateLimiter::keyed),
            payments: quota(limits.payments_per_sec, limits.payments_per_sec)
                .map(RateLimiter::direct),
        }
    }

    /// True when the per-IP bucket applies.
    #[cfg(test)]
    pub(crate) fn limits_ips(&self) -> bool {
        self.per_ip.is_some()
    }

    /// Takes a token from the global bucket.
    ///
    /// # Errors
    /// The bucket is empty.
    pub(crate) fn check_global(&self) -> Result<(), Rejected> {
        take(self.global.as_ref(), Gate::Global)
    }

    /// Takes a token from the payment notifications' bucket.
    ///
    /// # Errors
    /// The bucket is empty.
    pub(crate) fn check_payments(&self) -> Result<(), Rejected> {
        take(self.payments.as_ref(), Gate::Payments)
    }

    /// Takes a token from `user`'s bucket.
    ///
    /// # Errors
    /// The bucket is empty.
    pub(crate) fn check_user(&self, user: &str) -> Result<(), Rejected> {
        let Some(limiter) = &self.per_user else {
            return Ok(());
        };
        limiter
            .check_key(&user.to_string())
            .map_err(|not_until| Rejected {
                gate: Gate::User,
                retry_after: not_until.wait_time_from(limiter.clock().now()),
            })
    }

    /// Takes a token from `ip`'s bucket.
    ///
    /// # Errors
    /// The bucket is empty.
    pub(crate) fn check_ip(&self, ip: IpAddr) -> Result<(), Rejected> {
        let Some(limiter) = &self.per_ip else {
            return Ok(());
        };
        limiter
            .check_key(&ip_bucket(ip))
            .map_err(|not_until| Rejected {
                gate: Gate::Ip,
                retry_after: not_until.wait_time_from(limiter.clock().now()),
            })
    }

    /// Forgets keys whose buckets are full again (they behave exactly like new ones).
    pub(crate) fn prune(&self) {
        if let Some(l) = &self.per_user {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Keys currently tracked (users + addresses); bounded by pruning.
    #[cfg(test)]
    pub(crate) fn tracked_keys(&self) -> usize {
        self.per_user.as_ref().map_or(0, |l| l.len()) + self.per_ip.as_ref().map_or(0, |l| l.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(global: u64, user: u64, ip: u64) -> LimitSettings {
        LimitSettings {
            global_per_sec: global,
            global_burst: global,
            per_user_per_sec: user,
            per_user_burst: user,
            per_ip: PerIpMode::On,
            per_ip_per_sec: ip,
            per_ip_burst: ip,
            payments_per_sec: 0,
        }
    }

    #[test]
    fn an_ipv6_client_counts_per_64_network_and_ipv4_alone() {
        let g = Gates::new(&limits(0, 0, 2), false);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        g.check_ip(a).unwrap();
        g.check_ip(b).unwrap();
        assert_eq!(g.check_ip(a).unwrap_err().gate, Gate::Ip, "the same /64");
        g.check_ip("2001:db8:1:3::1".parse().unwrap())
            .expect("the next /64 has its own bucket");
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        g.check_ip(v4).unwrap();
        g.check_ip("::ffff:203.0.113.7".parse().unwrap()).unwrap();
        assert!(g.check_ip(v4).is_err(), "IPv4-mapped is the IPv4 address");
        g.check_ip("203.0.113.8".parse().unwrap())
            .expect("each IPv4 address alone");
    }

    #[test]
    fn the_per_ip_bucket_in_auto_mode_follows_the_trusted_proxies() {
        let mut l = limits(0, 0, 1);
        l.per_ip = PerIpMode::Auto;
        assert!(Gates::new(&l, true).limits_ips());
        assert!(!Gates::new(&l, false).limits_ips());
        l.per_ip = PerIpMode::Off;
        assert!(!Gates::new(&l, true).limits_ips());
        l.per_ip = PerIpMode::On;
        assert!(Gates::new(&l, false).limits_ips());
    }

    #[test]
    fn a_user_bucket_empties_and_other_users_are_unaffected() {
        let g = Gates::new(&limits(0, 2, 0), false);
        assert!(g.check_user("a").is_ok());
        assert!(g.check_user("a").is_ok());
        let r = g.check_user("a").unwrap_err();
        assert_eq!(r.gate, Gate::User);
        assert!(r.retry_after > Duration::ZERO);
        assert!(g.check_user("b").is_ok());
    }

    #[test]
    fn the_global_bucket_limits_everyone() {
        let g = Gates::new(&limits(3, 0, 0), false);
        for _ in 0..3 {
            g.check_global().unwrap();
        }
        assert_eq!(g.check_global().unwrap_err().gate, Gate::Global);
    }

    #[test]
    fn a_zero_rate_switches_a_bucket_off() {
        let g = Gates::new(&limits(0, 0, 0), false);
        for _ in 0..10_000 {
            g.check_global().unwrap();
            g.check_user("a").unwrap();
            g.check_ip(IpAddr::from([1, 2, 3, 4])).unwrap();
        }
        assert_eq!(g.tracked_keys(), 0);
    }

    #[test]
    fn pruning_bounds_memory_under_a_flood_of_users() {
        let g = Gates::new(&limits(0, 1_000_000, 0), false);
        for i in 0..10_000 {
            g.check_user(&format!("u{i}")).unwrap();
        }
        assert_eq!(g.tracked_keys(), 10_000);
        std::thread::sleep(Duration::from_millis(20));
        g.prune();
        assert_eq!(g.tracked_keys(), 0);
    }
}
