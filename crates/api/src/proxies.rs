//! `security.trusted_proxies`: the networks whose hosts may tell phonegate
//! who the client is.
//!
//! A request that arrives through a CDN and then a load balancer carries
//! `X-Forwarded-For: <client>, <cdn>` and comes from the load balancer's
//! address. Taking the right-most entry alone would put every user of the
//! CDN in one per-IP bucket; taking the left-most would let any client pick
//! its own address. The rule here walks the chain from the right and stops
//! at the first address that is not a trusted proxy: everything to its
//! right was written by proxies the deployment runs or chose, so that
//! address is the one the outermost trusted proxy saw connect.

use std::net::IpAddr;

use ipnet::IpNet;

/// A list of networks (`10.0.0.0/8`, `2001:db8::/32`, or a single address).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses CIDR blocks or single addresses; the error names the entry
    /// that is neither.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                entry
                    .parse::<IpNet>()
                    .map(|net| net.trunc())
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{entry:?} is neither a CIDR block (10.0.0.0/8) nor an IP address"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `address` is in one of the networks. An IPv4 address seen
    /// as IPv4-mapped IPv6 (`::ffff:10.0.0.1`, as a socket bound to `[::]`
    /// reports it) is compared as the IPv4 address it is.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client behind `peer` (the socket's address), given the
    /// forwarded chain (`entries`, left to right, each an address as
    /// proxies write them or `None` when unreadable): the right-most entry
    /// that is not a trusted proxy. A peer that is not itself trusted is
    /// the client, whatever the header says; a chain made only of trusted
    /// proxies yields its left-most entry. An unreadable entry stops the
    /// walk at the last trusted hop, which is then the client: what lies
    /// to its left was written by someone no trusted proxy vouches for.
    pub fn client(&self, peer: IpAddr, entries: &[Option<IpAddr>]) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        for entry in entries.iter().rev() {
            let Some(address) = entry else {
                return client;
            };
            client = address.to_canonical();
            if !self.contains(client) {
                return client;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn chain(text: &[&str]) -> Vec<Option<IpAddr>> {
        text.iter().map(|entry| entry.parse().ok()).collect()
    }

    fn proxies() -> TrustedProxies {
        // A load balancer's subnet and a CDN's range.
        TrustedProxies::parse(&["10.0.0.0/8", "198.51.100.0/24", "2001:db8:cd::/48"]).unwrap()
    }

    #[test]
    fn parses_blocks_and_single_addresses_and_names_a_bad_entry() {
        let parsed = TrustedProxies::parse(&["10.1.2.3/8", " 192.0.2.7 ", "::1", "fd00::/8"]).unwrap();
        assert!(parsed.contains(ip("10.200.0.1")), "host bits of a block are ignored");
        assert!(parsed.contains(ip("192.0.2.7")));
        assert!(!parsed.contains(ip("192.0.2.8")), "a single address is a /32");
        assert!(parsed.contains(ip("::1")));
        assert!(
            parsed.contains(ip("::ffff:10.0.0.1")),
            "IPv4-mapped addresses count as IPv4"
        );
        let error = TrustedProxies::parse(&["10.0.0.0/8", "proxy.internal"]).unwrap_err();
        assert!(error.contains("proxy.internal"), "{error}");
        assert!(TrustedProxies::parse(&["10.0.0.0/33"]).is_err());
    }

    #[test]
    fn the_right_most_untrusted_entry_is_the_client() {
        let proxies = proxies();
        let balancer = ip("10.0.0.2");
        // Client → CDN → load balancer → phonegate.
        assert_eq!(
            proxies.client(balancer, &chain(&["203.0.113.7", "198.51.100.9"])),
            ip("203.0.113.7")
        );
        // Whatever a client writes to the left of its own address is ignored.
        assert_eq!(
            proxies.client(balancer, &chain(&["1.1.1.1", "203.0.113.7", "198.51.100.9"])),
            ip("203.0.113.7")
        );
        // A client that claims to be a trusted proxy is passed over only if
        // a trusted proxy wrote it; the next untrusted entry is the client.
        assert_eq!(
            proxies.client(balancer, &chain(&["203.0.113.7", "10.9.9.9", "198.51.100.9"])),
            ip("203.0.113.7")
        );
        assert_eq!(
            proxies.client(balancer, &chain(&["2001:db8::7", "2001:db8:cd::1"])),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        assert_eq!(
            proxies().client(ip("203.0.113.50"), &chain(&["192.0.2.1"])),
            ip("203.0.113.50")
        );
    }

    #[test]
    fn edge_cases_of_the_chain() {
        let proxies = proxies();
        let balancer = ip("10.0.0.2");
        // No header: the balancer itself is all that is known.
        assert_eq!(proxies.client(balancer, &[]), balancer);
        // Only trusted hops: the left-most of them.
        assert_eq!(
            proxies.client(balancer, &chain(&["10.3.3.3", "10.4.4.4"])),
            ip("10.3.3.3")
        );
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(
            proxies.client(balancer, &chain(&["203.0.113.7", "unknown", "198.51.100.9"])),
            ip("198.51.100.9")
        );
        assert_eq!(proxies.client(balancer, &chain(&["unknown"])), balancer);
        // An IPv4-mapped peer is trusted as its IPv4 address.
        assert_eq!(
            proxies.client(ip("::ffff:10.0.0.2"), &chain(&["203.0.113.7"])),
            ip("203.0.113.7")
        );
    }
}
