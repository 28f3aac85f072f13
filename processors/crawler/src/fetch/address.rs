//! Which addresses the crawler may connect to: refusing private, loopback and metadata
//! addresses keeps a link on a public page from making the crawler reach into our own network
//! (server-side request forgery).
//!
//! Two places check: [`PublicResolver`], the client's DNS resolver, for host names (so the
//! check applies to the addresses actually connected to, with no gap between check and use);
//! and [`AddressRule::refuses_host`] for URLs whose host is an IP literal, which hyper connects
//! to without asking the resolver.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Whether `ip` is a globally reachable unicast address: not loopback, private (RFC 1918),
/// shared (CGNAT, RFC 6598), link-local (which holds the cloud metadata address
/// 169.254.169.254), unique-local, unspecified, multicast, broadcast, reserved, benchmarking
/// or documentation. IPv6 addresses that embed an IPv4 address (IPv4-mapped, NAT64, 6to4)
/// are judged by the IPv4 address they reach.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = a == 0 // "this network", with 0.0.0.0
        || ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || ip.is_documentation()
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || ip.is_multicast()
        || a >= 240; // reserved, with the broadcast address
    !special
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let special = ip.is_unspecified()
        || ip.is_loopback()
        || segments[..6] == [0; 6] // IPv4-compatible (deprecated)
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || ip.is_multicast()
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || segments[..4] == [0x0100, 0, 0, 0]; // discard-only
    !special
}

/// The IPv4 address an IPv6 address leads to: IPv4-mapped `::ffff:a.b.c.d`, NAT64
/// `64:ff9b::a.b.c.d`, or 6to4 `2002:AABB:CCDD::`.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(mapped) = ip.to_ipv4_mapped() {
        Some(mapped)
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(tail)
    } else if s[0] == 0x2002 {
        Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ))
    } else {
        None
    }
}

/// The addresses a fetcher may connect to.
#[derive(Debug, Clone)]
pub(crate) struct AddressRule {
    /// Connect anywhere (tests, and crawls of a private network on purpose).
    pub(crate) allow_private: bool,
    /// Non-public addresses allowed anyway.
    pub(crate) allowed: Vec<IpAddr>,
}

impl AddressRule {
    /// Whether the fetcher may connect to `ip`.
    pub(crate) fn permits(&self, ip: IpAddr) -> bool {
        self.allow_private
            || is_public(ip)
            || self.allowed.contains(&ip)
            || self.allowed.contains(&ip.to_canonical())
    }

    /// The IP literal host of `url` if it is one the fetcher may not connect to.
    pub(crate) fn refuses_host(&self, url: &Url) -> Option<IpAddr> {
        let ip = match url.host()? {
            Host::Ipv4(ip) => IpAddr::V4(ip),
            Host::Ipv6(ip) => IpAddr::V6(ip),
            Host::Domain(_) => return None,
        };
        (!self.permits(ip)).then_some(ip)
    }
}

/// A host that resolves, or an IP literal that is, only to addresses the fetcher may not
/// connect to. Found in a request error's source chain, it means [`super::Outcome::BlockedAddress`].
#[derive(Debug, thiserror::Error)]
#[error("{host} has no address the crawler may connect to (refused: {refused:?})")]
pub(crate) struct BlockedAddress {
    pub(crate) host: String,
    pub(crate) refused: Vec<IpAddr>,
}

/// The system resolver (`getaddrinfo` through tokio), minus the addresses [`AddressRule`]
/// refuses.
pub(crate) struct PublicResolver {
    pub(crate) rule: Arc<AddressRule>,
}

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let rule = Arc::clone(&self.rule);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts in the URL's port.
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if resolved.is_empty() {
                return Err(format!("{host} resolved to no address").into());
            }
            let (kept, refused): (Vec<_>, Vec<_>) = resolved
                .into_iter()
                .partition(|addr| rule.permits(addr.ip()));
            if kept.is_empty() {
                let refused = refused.iter().map(SocketAddr::ip).collect();
                return Err(BlockedAddress { host, refused }.into());
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_addresses() {
        let table = [
            // IPv4
            ("93.184.216.34", true),
            ("8.8.8.8", true),
            ("1.1.1.1", true),
            ("0.0.0.0", false),
            ("0.1.2.3", false),
            ("10.1.2.3", false),
            ("100.63.255.255", true),
            ("100.64.0.1", false),
            ("100.127.255.255", false),
            ("100.128.0.0", true),
            ("127.0.0.1", false),
            ("127.255.0.9", false),
            ("169.254.169.254", false),
            ("169.254.1.1", false),
            ("172.15.255.255", true),
            ("172.16.0.1", false),
            ("172.31.255.255", false),
            ("172.32.0.0", true),
            ("192.0.0.8", false),
            ("192.0.2.1", false),
            ("192.168.1.1", false),
            ("198.18.0.1", false),
            ("198.51.100.7", false),
            ("203.0.113.9", false),
            ("224.0.0.1", false),
            ("240.0.0.1", false),
            ("255.255.255.255", false),
            // IPv6
            ("2606:4700::1111", true),
            ("2001:4860:4860::8888", true),
            ("::", false),
            ("::1", false),
            ("::10.0.0.1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:169.254.169.254", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:8.8.8.8", true),
            ("64:ff9b::192.168.0.1", false),
            ("64:ff9b::8.8.8.8", true),
            ("2002:c0a8:0101::1", false),
            ("2002:0808:0808::1", true),
            ("fc00::1", false),
            ("fd12:3456::1", false),
            ("fe80::1", false),
            ("febf::1", false),
            ("fec0::1", false),
            ("ff02::1", false),
            ("2001:db8::1", false),
            ("100::1", false),
        ];
        for (ip, public) in table {
            let parsed: IpAddr = ip.parse().unwrap();
            assert_eq!(is_public(parsed), public, "{ip}");
        }
    }

    #[test]
    fn rule_allows_listed_and_all_when_told() {
        let rule = AddressRule {
            allow_private: false,
            allowed: vec!["10.0.0.5".parse().unwrap()],
        };
        assert!(rule.permits("10.0.0.5".parse().unwrap()));
        assert!(rule.permits("::ffff:10.0.0.5".parse().unwrap()));
        assert!(!rule.permits("10.0.0.6".parse().unwrap()));
        let open = AddressRule {
            allow_private: true,
            allowed: Vec::new(),
        };
        assert!(open.permits("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn refuses_ip_literal_hosts_only() {
        let rule = AddressRule {
            allow_private: false,
            allowed: Vec::new(),
        };
        let refused = |url: &str| rule.refuses_host(&Url::parse(url).unwrap());
        assert_eq!(
            refused("http://10.1.2.3/"),
            Some("10.1.2.3".parse().unwrap())
        );
        // The URL parser reads these spellings as IPv4 addresses too.
        assert_eq!(
            refused("http://0x7f.1/"),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(
            refused("http://2130706433/"),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(refused("http://[::1]:8080/"), Some("::1".parse().unwrap()));
        assert_eq!(refused("http://8.8.8.8/"), None);
        assert_eq!(refused("http://localhost/"), None);
    }
}
