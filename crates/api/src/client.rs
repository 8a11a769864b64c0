//! Who the client is: its IP address, for the per-IP limits.
//!
//! The address comes from the TCP socket unless the deployment says which
//! proxies to believe:
//!
//! - `security.trusted_proxies` (CIDR blocks): a request whose socket peer
//!   is in one of them is read through the forwarded header
//!   (`security.client_ip_header`, `X-Forwarded-For` when that is unset),
//!   right to left, and the first address that is not a trusted proxy is
//!   the client ([`TrustedProxies::client`]). A peer outside the blocks is
//!   the client, whatever header it sends.
//! - `security.client_ip_header` alone (the older setting, kept as it
//!   was): the header's right-most entry, from any peer. That is right
//!   only when clients cannot reach phonegate except through exactly one
//!   proxy; `config check` warns about it.
//!
//! A header is never trusted by default: any client can send one, and
//! trusting it would let an attacker pick a fresh IP per request.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts, Request},
    http::{HeaderName, request::Parts},
    middleware::Next,
    response::Response,
};
use phonegate_domain::abuse::Client;

pub use crate::proxies::TrustedProxies;

/// Where the client's address comes from.
#[derive(Debug, Clone, Default)]
pub struct ClientIpSource {
    /// The proxy's header. Without trusted proxies its last (right-most)
    /// address is used: the one the proxy itself saw. With them it
    /// defaults to `X-Forwarded-For`.
    pub header: Option<HeaderName>,
    /// The proxies allowed to name the client; empty trusts the header
    /// (if any) from every peer, as before this setting existed.
    pub trusted_proxies: TrustedProxies,
}

impl ClientIpSource {
    fn client(&self, parts: &Parts) -> Client {
        let socket = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip().to_canonical());
        if !self.trusted_proxies.is_empty() {
            let header = self
                .header
                .clone()
                .unwrap_or(HeaderName::from_static("x-forwarded-for"));
            return Client::new(socket.map(|peer| self.trusted_proxies.client(peer, &forwarded_chain(parts, &header))));
        }
        let Some(header) = &self.header else {
            return Client::new(socket);
        };
        // The right-most entry or nothing: an unreadable last entry must not
        // fall back to an earlier one, which the client wrote.
        let forwarded = forwarded_chain(parts, header).last().copied().flatten();
        Client::new(forwarded.or(socket))
    }
}

/// Every entry of every `header` line, left to right; `None` for an entry
/// that is not an address.
fn forwarded_chain(parts: &Parts, header: &HeaderName) -> Vec<Option<IpAddr>> {
    parts
        .headers
        .get_all(header)
        .iter()
        .flat_map(|value| match value.to_str() {
            Ok(text) => text.split(',').map(|entry| parse_ip(entry.trim())).collect::<Vec<_>>(),
            Err(_) => vec![None],
        })
        .collect()
}

/// An address as proxies write them: `203.0.113.7`, `2001:db8::1`,
/// `[2001:db8::1]:443` or `203.0.113.7:443`.
fn parse_ip(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|address| address.ip()))
}

/// Middleware that works out the [`Client`] once per request.
pub(crate) async fn identify(source: axum::extract::State<ClientIpSource>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let client = source.client(&parts);
    parts.extensions.insert(client);
    next.run(Request::from_parts(parts, body)).await
}

/// The client of this request, for handlers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestClient(pub Client);

impl<S: Send + Sync> FromRequestParts<S> for RequestClient {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<Client>().copied().unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use axum::http::Request;

    use super::*;

    fn parts(forwarded: &[&str]) -> Parts {
        let mut request = Request::builder();
        for value in forwarded {
            request = request.header("x-forwarded-for", *value);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 2], 40_000))));
        parts
    }

    #[test]
    fn the_socket_address_unless_a_header_is_configured() {
        let source = ClientIpSource::default();
        let client = source.client(&parts(&["203.0.113.7"]));
        assert_eq!(
            client.ip(),
            Some(IpAddr::from([10, 0, 0, 2])),
            "a header is not trusted by default"
        );
    }

    #[test]
    fn the_right_most_address_of_the_configured_header() {
        let source = ClientIpSource {
            header: Some(HeaderName::from_static("x-forwarded-for")),
            ..ClientIpSource::default()
        };
        let client = source.client(&parts(&["1.2.3.4, 203.0.113.7"]));
        assert_eq!(client.ip(), Some(IpAddr::from([203, 0, 113, 7])));
        let client = source.client(&parts(&["1.2.3.4", "[2001:db8::1]:443"]));
        assert_eq!(client.ip(), "2001:db8::1".parse().ok());
        // Garbage in the header falls back to the socket.
        let client = source.client(&parts(&["unknown"]));
        assert_eq!(client.ip(), Some(IpAddr::from([10, 0, 0, 2])));
        // Never an earlier entry, which the client wrote.
        let client = source.client(&parts(&["203.0.113.7, unknown"]));
        assert_eq!(client.ip(), Some(IpAddr::from([10, 0, 0, 2])));
    }

    #[test]
    fn trusted_proxies_name_the_right_most_untrusted_address() {
        let source = ClientIpSource {
            header: None,
            trusted_proxies: TrustedProxies::parse(&["10.0.0.0/8", "198.51.100.0/24"]).unwrap(),
        };
        // The socket peer of `parts` is 10.0.0.2, a trusted load balancer;
        // X-Forwarded-For is read by default, over all its lines.
        let client = source.client(&parts(&["1.2.3.4, 203.0.113.7", "198.51.100.9"]));
        assert_eq!(client.ip(), Some(IpAddr::from([203, 0, 113, 7])));
        // Another header when one is configured.
        let source = ClientIpSource {
            header: Some(HeaderName::from_static("x-real-ip")),
            ..source
        };
        assert_eq!(
            source.client(&parts(&["203.0.113.7"])).ip(),
            Some(IpAddr::from([10, 0, 0, 2])),
            "X-Forwarded-For is not the configured header"
        );
        // An untrusted peer is the client whatever it sends.
        let (mut untrusted, ()) = Request::builder()
            .header("x-real-ip", "203.0.113.7")
            .body(())
            .unwrap()
            .into_parts();
        untrusted
            .extensions
            .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40_000))));
        assert_eq!(source.client(&untrusted).ip(), Some(IpAddr::from([192, 0, 2, 1])));
    }
}
