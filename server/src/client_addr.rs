//! Who is calling, by network source: the client address that throttles count (log-in
//! failures, sign-ups), seen through the reverse proxies the operator trusts.
//!
//! Behind a reverse proxy every request comes from the proxy's address, so counting by the TCP
//! peer would make all users one source. With `--trusted-proxy CIDR` (repeatable), a request
//! whose peer is inside a trusted range is attributed to the right-most `X-Forwarded-For` entry
//! that is not itself trusted (the proxies append, so entries left of that one are whatever the
//! client claimed and are ignored). From an untrusted peer the header is ignored: anyone can send
//! it.
//!
//! IPv6 sources count by their /64, since one subscriber usually holds a whole /64 and could
//! otherwise rotate through it.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::context::Context;

/// The header reverse proxies append the client address to.
pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// An address range, `192.0.2.0/24` or `2001:db8::/32` (a bare address is a range of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(_), IpAddr::V4(ip)) => self.contains(IpAddr::V6(ip.to_ipv6_mapped())),
            (IpAddr::V4(_), IpAddr::V6(ip)) => ip.to_ipv4_mapped().is_some_and(|v4| self.contains(IpAddr::V4(v4))),
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let whole = usize::from(prefix / 8);
    let rest = prefix % 8;
    a[..whole] == b[..whole] && (rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0)
}

/// Why a `--trusted-proxy` value is not a range.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an address range (like 10.0.0.0/8, 192.0.2.7 or fd00::/8)")]
pub struct BadCidr(String);

impl FromStr for Cidr {
    type Err = BadCidr;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadCidr(s.to_owned());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let network: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { network, prefix })
    }
}

/// The client's address as far as the server can tell (`None` in handler tests, which have no
/// connection).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    /// What throttles count this source under: the address, or an IPv6 address's /64.
    pub fn source(&self) -> Option<String> {
        self.0.map(|ip| match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        })
    }
}

/// The client behind `peer`, given the `X-Forwarded-For` values and the trusted ranges.
pub fn resolve<'a>(peer: IpAddr, forwarded: impl Iterator<Item = &'a str>, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).map(str::trim).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // A malformed entry ends the walk: what lies left of it cannot be trusted either.
        let Ok(ip) = hop.parse::<IpAddr>() else { break };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

impl FromRequestParts<Arc<Context>> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, ctx: &Arc<Context>) -> Result<Self, Self::Rejection> {
        let Some(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()) else {
            return Ok(Self(None));
        };
        let forwarded = parts
            .headers
            .get_all(FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok());
        Ok(Self(Some(resolve(peer, forwarded, &ctx.trusted_proxies))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_contain_what_they_say() {
        let lan: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(lan.contains(ip("10.1.255.3")));
        assert!(!lan.contains(ip("10.2.0.1")));
        assert!(lan.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped IPv6");
        let odd: Cidr = "192.0.2.128/25".parse().unwrap();
        assert!(odd.contains(ip("192.0.2.200")) && !odd.contains(ip("192.0.2.127")));
        let one: Cidr = "2001:db8::7".parse().unwrap();
        assert!(one.contains(ip("2001:db8::7")) && !one.contains(ip("2001:db8::8")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        for bad in ["10.0.0.0/33", "fd00::/129", "nonsense", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let proxies: Vec<Cidr> = vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
        // Tried: a client claiming an address in the header it sends, through two trusted
        // proxies. Must hold: the address the outer proxy saw, not the claim.
        let chain = ["6.6.6.6, 198.51.100.4", "10.0.0.2"];
        assert_eq!(
            resolve(ip("127.0.0.1"), chain.into_iter(), &proxies),
            ip("198.51.100.4")
        );
        // Tried: the header from an untrusted peer. Must hold: ignored.
        assert_eq!(
            resolve(ip("203.0.113.5"), ["198.51.100.4"].into_iter(), &proxies),
            ip("203.0.113.5")
        );
        // No header, or garbage in it: the proxy itself (or the last good hop).
        assert_eq!(resolve(ip("127.0.0.1"), std::iter::empty(), &proxies), ip("127.0.0.1"));
        assert_eq!(
            resolve(ip("127.0.0.1"), ["junk, 10.0.0.3"].into_iter(), &proxies),
            ip("10.0.0.3")
        );
        // Nothing trusted (the default): the peer, whatever the header says.
        assert_eq!(resolve(ip("127.0.0.1"), ["1.2.3.4"].into_iter(), &[]), ip("127.0.0.1"));
    }

    #[test]
    fn an_ipv6_source_is_its_64() {
        let a = ClientAddr(Some(ip("2001:db8:1:2:aaaa::1"))).source();
        let b = ClientAddr(Some(ip("2001:db8:1:2:bbbb::9"))).source();
        assert_eq!(a, b);
        assert_eq!(a.as_deref(), Some("2001:db8:1:2::/64"));
        assert_ne!(a, ClientAddr(Some(ip("2001:db8:1:3::1"))).source());
        assert_eq!(
            ClientAddr(Some(ip("::ffff:192.0.2.1"))).source().as_deref(),
            Some("192.0.2.1")
        );
    }
}
