//! phonegate's HTTP surfaces.
//!
//! One module per API its existing clients speak, each with its own request
//! and response types and its own error shape ([`pin_auth`] answers
//! `{"errors": "…"}`, [`phone_verify`] DRF's `{"field": ["…"]}`,
//! [`phone_login`] its `res_info` envelope), plus the operational endpoints
//! in [`ops`] (with the JWKS at `/.well-known/jwks.json`), described by
//! the OpenAPI spec of [`openapi`] (`/openapi.json`, Swagger UI at `/docs`). This is
//! the only crate that knows HTTP or JSON; it turns requests into calls of
//! the domain's use cases and their results into responses.
//!
//! Logging: every request gets an `x-request-id` (the client's own if it
//! is at most 64 characters of `[A-Za-z0-9._-]`; module `request_id`) that
//! is on every log line of the request. Only the path is logged,
//! never the query string or a body, because some clients put codes and
//! tokens there.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    http::{Request, StatusCode},
};
use phonegate_domain::{
    phone_login::PhoneLogin,
    phone_verify::PhoneVerify,
    pin_auth::PinAuth,
    ports::{Readiness, TokenIssuer},
    token_auth::TokenAuth,
};
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::{DefaultOnFailure, TraceLayer},
};
use tracing::Level;

mod client;
pub mod console;
mod failure;
mod hosts;
pub mod metrics;
pub mod openapi;
pub mod ops;
mod params;
pub mod phone_login;
pub mod phone_verify;
pub mod pin_auth;
mod proxies;
pub mod receipts;
mod request_id;
mod routes;
pub mod server;
pub mod tokens;

pub use client::{ClientIpSource, TrustedProxies};
pub use hosts::AllowedHosts;
pub use routes::MountedRoute;

/// Every route [`router`] mounts, from the same tables that mount them
/// (Swagger UI's pages under `/docs` aside). The spec test checks that the
/// OpenAPI spec names exactly these.
pub fn mounted_routes() -> Vec<MountedRoute> {
    [
        pin_auth::mounted(),
        phone_verify::mounted(),
        phone_login::mounted(),
        tokens::mounted(),
        ops::mounted(),
        receipts::mounted(),
        openapi::mounted(),
        // Mounted only with the console SMS provider, but part of the API
        // that a development setup serves, so the spec names it too.
        console::mounted(),
    ]
    .concat()
}

/// Adds `Retry-After` (whole seconds, at least 1) to a 429 response.
fn with_retry_after(mut response: axum::response::Response, retry_after: Option<Duration>) -> axum::response::Response {
    if let Some(wait) = retry_after {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        if let Ok(value) = axum::http::HeaderValue::from_str(&seconds.max(1).to_string()) {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, value);
        }
    }
    response
}

/// The use cases the routers call.
#[derive(Clone)]
pub struct Services {
    pub pin_auth: Arc<PinAuth>,
    pub phone_verify: Arc<PhoneVerify>,
    pub phone_login: Arc<PhoneLogin>,
    pub token_auth: Arc<TokenAuth>,
    pub readiness: Arc<dyn Readiness>,
    /// The token issuer, whose public keys `/.well-known/jwks.json` serves.
    pub tokens: Arc<dyn TokenIssuer>,
    /// What `/metrics` reports.
    pub metrics: ops::MetricSources,
    /// The console providers' messages, with `sms.provider = "console"`
    /// only: then `GET /` serves the developer console ([`console`]).
    pub dev_outbox: Option<Arc<dyn console::DevOutbox>>,
    /// Delivery receipts, when `server.public_url` is set and a provider
    /// sends them; otherwise `/receipts/…` answers 404.
    pub receipts: Option<Arc<receipts::ReceiptEndpoint>>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

/// HTTP-level settings.
#[derive(Debug, Clone, Default)]
pub struct HttpSettings {
    /// The Host header allow-list; empty allows any host.
    pub allowed_hosts: AllowedHosts,
    /// Where the client's IP address comes from.
    pub client_ip: ClientIpSource,
    /// The least time a password-reset request takes to answer.
    pub reset_response_floor: Duration,
    /// How long a request may take, reading its body included, before it
    /// is answered 408 (`server.request_timeout_seconds`); `None`: no limit.
    pub request_timeout: Option<Duration>,
    /// Whether the deployment has an admin listener (`server.admin_bind`):
    /// then `/metrics` is served by [`admin_router`] only, not by [`router`].
    pub admin_listener: bool,
}

/// The whole HTTP application: every surface, the ops endpoints (without
/// `/metrics` when there is an admin listener) and, with the console SMS
/// provider, the developer console, with request ids and request logging.
pub fn router(services: Services, settings: HttpSettings) -> Router {
    let console = services
        .dev_outbox
        .clone()
        .map(|outbox| console::router(outbox, &settings.allowed_hosts));
    let router = Router::new()
        .merge(pin_auth::router(services.pin_auth.clone(), &settings.allowed_hosts))
        .merge(phone_verify::router(
            services.phone_verify.clone(),
            &settings.allowed_hosts,
        ))
        .merge(phone_login::router(
            services.phone_login.clone(),
            &settings.allowed_hosts,
        ))
        .merge(tokens::router(
            services.token_auth.clone(),
            &settings.allowed_hosts,
            settings.reset_response_floor,
        ))
        .merge(ops::router(services.readiness.clone(), services.tokens.clone()))
        .merge(receipts::router(services.receipts.clone()));
    let router = if settings.admin_listener {
        router
    } else {
        router.merge(ops::metrics_router(services.metrics.clone()))
    };
    let router = router.merge(openapi::router()).merge(console.unwrap_or_default());
    with_http_layers(router, &services, &settings)
}

/// The admin listener's application (`server.admin_bind`): the operator
/// routes that must not face the public, today `/metrics`, with the same
/// request ids, logging and timeout as [`router`].
pub fn admin_router(services: Services, settings: HttpSettings) -> Router {
    with_http_layers(ops::metrics_router(services.metrics.clone()), &services, &settings)
}

/// The middleware every route gets: request counting, the client's
/// address, the request timeout, request ids and request logging.
fn with_http_layers(router: Router, services: &Services, settings: &HttpSettings) -> Router {
    // Added with `layer`, which wraps each route, so the middleware sees
    // the matched route template.
    let router = router
        .layer(axum::middleware::from_fn(failure::log_failures))
        .layer(axum::middleware::from_fn_with_state(
            services.metrics.registry.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn_with_state(
            settings.client_ip.clone(),
            client::identify,
        ));
    // Inside the request-id and logging layers, so that a timed-out
    // request is logged with its id and its 408 like any other answer.
    let router = match settings.request_timeout {
        Some(timeout) => router.layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout)),
        None => router,
    };
    router.layer(
        ServiceBuilder::new()
            .map_request(request_id::drop_unacceptable)
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|request: &Request<_>| {
                        let request_id = request
                            .extensions()
                            .get::<RequestId>()
                            .and_then(|id| id.header_value().to_str().ok())
                            .unwrap_or("-");
                        // The path only: query strings may carry codes.
                        tracing::info_span!(
                            "request",
                            request_id = %request_id,
                            method = %request.method(),
                            path = %request.uri().path(),
                        )
                    })
                    .on_request(())
                    .on_response(
                        |response: &axum::response::Response, latency: Duration, _span: &tracing::Span| {
                            tracing::info!(
                                status = response.status().as_u16(),
                                latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
                                "request finished"
                            );
                        },
                    )
                    .on_failure(DefaultOnFailure::new().level(Level::WARN)),
            )
            .layer(PropagateRequestIdLayer::x_request_id()),
    )
}
