//! The Host header allow-list (`security.allowed_hosts`).

use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderMap, Uri, header::HOST},
    middleware::{self, Next},
    response::Response,
};

/// Hosts a request may be addressed to. An entry `example.com` matches that
/// host exactly; `.example.com` matches it and every subdomain. Ports are
/// ignored on both sides. Empty allows any host.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    pub fn new(hosts: impl IntoIterator<Item = String>) -> Self {
        Self(
            hosts
                .into_iter()
                .map(|host| strip_port(host.trim()).to_ascii_lowercase())
                .filter(|host| !host.is_empty())
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a request with these headers and URI may be served.
    pub fn permits(&self, headers: &HeaderMap, uri: &Uri) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let Some(host) = request_host(headers, uri) else {
            return false;
        };
        self.0.iter().any(|allowed| match allowed.strip_prefix('.') {
            Some(domain) => host == domain || host.strip_suffix(domain).is_some_and(|sub| sub.ends_with('.')),
            None => host == *allowed,
        })
    }

    /// Like [`Self::permits`], except that an empty list permits only
    /// loopback names (`localhost` and its subdomains, `127.0.0.0/8`,
    /// `[::1]`): for the developer console, which shows codes.
    pub fn permits_or_loopback(&self, headers: &HeaderMap, uri: &Uri) -> bool {
        if !self.0.is_empty() {
            return self.permits(headers, uri);
        }
        request_host(headers, uri).is_some_and(|host| {
            host == "localhost"
                || host.ends_with(".localhost")
                || host == "[::1]"
                || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
        })
    }
}

/// The request's host name, lowercase and without its port.
fn request_host(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let host = headers
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| uri.authority().map(|authority| authority.as_str()))?;
    Some(strip_port(host.trim()).to_ascii_lowercase())
}

/// Refuses requests whose Host is not allowed with `refusal()`, the
/// surface's own error response.
pub fn guard(router: Router, hosts: &AllowedHosts, refusal: fn() -> Response) -> Router {
    router.layer(middleware::from_fn_with_state((hosts.clone(), refusal), check_host))
}

async fn check_host(
    State((hosts, refusal)): State<(AllowedHosts, fn() -> Response)>,
    request: Request,
    next: Next,
) -> Response {
    if hosts.permits(request.headers(), request.uri()) {
        next.run(request).await
    } else {
        tracing::info!("request refused: Host not in security.allowed_hosts");
        refusal()
    }
}

/// `example.com:8080` → `example.com`; `[::1]:8080` → `[::1]`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn permits(allowed: &[&str], host: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(host).unwrap());
        AllowedHosts::new(allowed.iter().map(|h| h.to_string())).permits(&headers, &Uri::from_static("/"))
    }

    #[test]
    fn exact_hosts_match_with_or_without_port() {
        assert!(permits(&["api.example.com"], "api.example.com"));
        assert!(permits(&["api.example.com"], "API.example.com:8443"));
        assert!(permits(&["api.example.com:443"], "api.example.com"));
        assert!(!permits(&["api.example.com"], "evil.com"));
        assert!(!permits(&["api.example.com"], "api.example.com.evil.com"));
        assert!(permits(&["[::1]"], "[::1]:8080"));
    }

    #[test]
    fn dotted_entries_match_subdomains() {
        assert!(permits(&[".example.com"], "example.com"));
        assert!(permits(&[".example.com"], "a.b.example.com"));
        assert!(!permits(&[".example.com"], "badexample.com"));
    }

    #[test]
    fn empty_list_permits_anything_and_a_missing_host_is_refused_otherwise() {
        assert!(permits(&[], "anything"));
        let list = AllowedHosts::new(["a.com".to_owned()]);
        assert!(!list.permits(&HeaderMap::new(), &Uri::from_static("/")));
    }
}
