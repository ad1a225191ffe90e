//! The client's address behind trusted reverse proxies (`server.trusted_proxies`).
//!
//! By default the client is the TCP peer: `X-Forwarded-For` is the client's to forge, and
//! the per-address login brake must not be dodged by sending a new one with each guess.
//! Behind nginx every peer is the proxy, so all clients would share one address; naming the
//! proxy here makes the server read the header, from the right (the proxy's own entry is
//! the last one), skipping the entries of further trusted proxies; the first address that
//! is not trusted is the client.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// One trusted address or network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    fn parse(text: &str) -> Result<Network, String> {
        let bad = || {
            format!(
                "server.trusted_proxies: {text:?} is not an IP address or network (such as \
                 10.0.0.5, 10.0.0.0/8 or fd00::/8)"
            )
        };
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Network { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 address a dual-stack socket reports as `::ffff:a.b.c.d` is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The configured proxies (empty: trust no header).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Network>);

impl TrustedProxies {
    pub fn parse(list: &[String]) -> Result<TrustedProxies, String> {
        list.iter()
            .map(|s| Network::parse(s))
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client address of a request from `peer` with these headers.
    pub fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer.map(canonical)?;
        if !self.trusts(peer) {
            return Some(peer);
        }
        // Every X-Forwarded-For line, in order, is one list.
        let mut hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        while let Some(hop) = hops.pop() {
            // An entry that is no address ends the walk: what lies left of it is unknown.
            let Ok(ip) = hop.parse::<IpAddr>().map(canonical) else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        Some(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_header_counts_only_from_trusted_peers() {
        let none = TrustedProxies::default();
        let h = headers(&["198.51.100.7"]);
        assert_eq!(none.client(ip("10.0.0.5"), &h), ip("10.0.0.5"));

        let t = TrustedProxies::parse(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
        assert_eq!(t.client(ip("10.0.0.5"), &h), ip("198.51.100.7"));
        assert_eq!(t.client(ip("192.0.2.1"), &h), ip("192.0.2.1"));
        assert_eq!(t.client(ip("::1"), &h), ip("198.51.100.7"));
        assert_eq!(t.client(ip("::ffff:10.1.2.3"), &h), ip("198.51.100.7"));
        // A forged entry left of the real client is never reached.
        let h = headers(&["1.2.3.4, 198.51.100.7", "10.9.9.9"]);
        assert_eq!(t.client(ip("10.0.0.5"), &h), ip("198.51.100.7"));
        // No header, or garbage: the peer.
        assert_eq!(t.client(ip("10.0.0.5"), &HeaderMap::new()), ip("10.0.0.5"));
        assert_eq!(
            t.client(ip("10.0.0.5"), &headers(&["junk"])),
            ip("10.0.0.5")
        );
        // Every hop trusted: the leftmost.
        assert_eq!(
            t.client(ip("10.0.0.5"), &headers(&["10.1.1.1"])),
            ip("10.1.1.1")
        );
        assert_eq!(t.client(None, &h), None);
    }

    #[test]
    fn networks_parse_or_name_the_bad_entry() {
        assert!(TrustedProxies::parse(&[
            "10.0.0.0/8".into(),
            "fd00::/8".into(),
            "0.0.0.0/0".into()
        ])
        .is_ok());
        let err = TrustedProxies::parse(&["10.0.0.0/33".into()]).unwrap_err();
        assert!(err.contains("\"10.0.0.0/33\""), "{err}");
        assert!(TrustedProxies::parse(&["nginx".into()]).is_err());
        let all = Network::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        let one = Network::parse("10.0.0.5").unwrap();
        assert!(!one.contains("10.0.0.6".parse().unwrap()));
    }
}
