//! The series the HTTP middleware keeps: requests by route template,
//! method and status, and their latency by route template.
//!
//! They are recorded on every request, so their label sets are built from
//! what the request already holds (the matched route is shared, the method
//! and status are plain values) rather than from strings allocated per
//! request, as the other families' rarer label sets are.

use std::{
    hash::{Hash, Hasher},
    sync::Arc,
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::Method,
    middleware::Next,
    response::Response,
};
use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, EncodeLabelValue, LabelSetEncoder, LabelValueEncoder};

use super::{Registry, escape};

/// The route template a request matched, or `unmatched`.
#[derive(Debug, Clone)]
pub(super) struct Route(Option<MatchedPath>);

impl Route {
    fn as_str(&self) -> &str {
        self.0.as_ref().map_or("unmatched", MatchedPath::as_str)
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl Hash for Route {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        escape(self.as_str(), encoder)
    }
}

/// The labels of `phonegate_http_requests_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct RequestLabels {
    route: Route,
    method: &'static str,
    status: u16,
}

impl EncodeLabelSet for RequestLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        ("route", self.route.clone()).encode(encoder.encode_label())?;
        ("method", self.method).encode(encoder.encode_label())?;
        ("status", self.status).encode(encoder.encode_label())
    }
}

/// The labels of `phonegate_http_request_duration_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct LatencyLabels {
    route: Route,
}

impl EncodeLabelSet for LatencyLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        ("route", self.route.clone()).encode(encoder.encode_label())
    }
}

/// One answered request, as the two families count it.
#[derive(Debug)]
pub(super) struct Answered {
    pub(super) requests: RequestLabels,
    pub(super) latency: LatencyLabels,
    pub(super) seconds: f64,
}

impl Answered {
    /// A request to `route` (as matched; `None` when nothing matched).
    pub(super) fn new(route: Option<MatchedPath>, method: &Method, status: u16, seconds: f64) -> Self {
        let route = Route(route);
        Self {
            requests: RequestLabels {
                route: route.clone(),
                method: method_label(method),
                status,
            },
            latency: LatencyLabels { route },
            seconds,
        }
    }
}

/// The method as a label: the standard ones by name, anything else as
/// `other`, so that made-up methods cannot add series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware counting every request by its matched route template (or
/// `unmatched`), method and status, and timing it. It must be added with
/// `Router::layer`, which wraps each route, so that the route is known.
pub(crate) async fn track(State(registry): State<Arc<Registry>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    registry.http_request(Answered::new(route, &method, response.status().as_u16(), elapsed));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{DeliveryProviders, Exposition, Scrape};

    #[test]
    fn requests_are_counted_by_route_method_and_status_and_timed_by_route() {
        let registry = Registry::new(DeliveryProviders {
            sms: "console",
            mail: "console",
        });
        for _ in 0..2 {
            registry.http_request(Answered::new(None, &Method::GET, 404, 0.002));
        }
        let brew = Method::from_bytes(b"BREW").unwrap();
        registry.http_request(Answered::new(None, &brew, 404, 0.2));
        let body = Exposition::open_metrics(&registry, Scrape::default()).into_body();
        for line in [
            "phonegate_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 2",
            "phonegate_http_requests_total{route=\"unmatched\",method=\"other\",status=\"404\"} 1",
            "phonegate_http_request_duration_seconds_count{route=\"unmatched\"} 3",
            "phonegate_http_request_duration_seconds_bucket{le=\"0.005\",route=\"unmatched\"} 2",
        ] {
            assert!(body.lines().any(|sample| sample == line), "{line} in\n{body}");
        }
    }
}
