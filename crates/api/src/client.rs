//! Who the client is: its IP address, for the per-IP limits.
//!
//! The address comes from the TCP socket, or, only when the deployment
//! names one, from a header its reverse proxy sets (`X-Forwarded-For`,
//! `X-Real-IP`, …). A header is never trusted by default: any client can
//! send one, and trusting it would let an attacker pick a fresh IP per
//! request. With a header configured, the service must be reachable only
//! through the proxy.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts, Request},
    http::{HeaderName, request::Parts},
    middleware::Next,
    response::Response,
};
use phonegate_domain::abuse::Client;

/// Where the client's address comes from.
#[derive(Debug, Clone, Default)]
pub struct ClientIpSource {
    /// The proxy's header. Its last (right-most) address is used: that is
    /// the one the proxy itself saw, which a client cannot forge.
    pub header: Option<HeaderName>,
}

impl ClientIpSource {
    fn client(&self, parts: &Parts) -> Client {
        let socket = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip());
        let Some(header) = &self.header else {
            return Client::new(socket);
        };
        // The right-most entry or nothing: an unreadable last entry must not
        // fall back to an earlier one, which the client wrote.
        let forwarded = parts
            .headers
            .get_all(header)
            .iter()
            .next_back()
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit(',').next())
            .and_then(|entry| parse_ip(entry.trim()));
        Client::new(forwarded.or(socket))
    }
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
}
