//! Operational endpoints: liveness, readiness, the abuse and delivery
//! metrics, and the JSON Web Key Set that lets other services verify
//! phonegate's tokens.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use phonegate_domain::{
    abuse::AbuseCounters,
    outbox::Dispatcher,
    ports::{Readiness, TokenIssuer},
    token::{PublicJwk, PublicKeyParams},
};
use serde::Serialize;
use serde_json::json;
use utoipa::{OpenApi, ToSchema};

use crate::{
    metrics::{Exposition, Scrape},
    routes::{MountedRoute, Routes},
};

/// How long clients may cache the key set. Short enough that a rotated-in
/// key is picked up well before tokens signed with it are common, as long
/// as the new key is published (added as a previous key) ahead of use.
const JWKS_CACHE_CONTROL: &str = "public, max-age=300";

/// What `/metrics` reads.
#[derive(Clone)]
pub struct MetricSources {
    pub abuse: Arc<AbuseCounters>,
    pub outbox: Dispatcher,
    /// Deliveries, verifications, provider calls and HTTP requests.
    pub registry: Arc<crate::metrics::Registry>,
}

impl std::fmt::Debug for MetricSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricSources").finish_non_exhaustive()
    }
}

fn health_routes() -> Routes<Arc<dyn Readiness>> {
    Routes::new().get("/healthz", healthz).get("/readyz", readyz)
}

fn jwks_routes() -> Routes<Arc<dyn TokenIssuer>> {
    Routes::new().get("/.well-known/jwks.json", jwks)
}

fn metrics_routes() -> Routes<MetricSources> {
    Routes::new().get("/metrics", metrics_text)
}

/// The routes [`router`] mounts.
pub fn mounted() -> Vec<MountedRoute> {
    [health_routes().table(), jwks_routes().table(), metrics_routes().table()].concat()
}

/// `/healthz`, `/readyz` and the JWKS: served on the public listener
/// always (load balancers probe the first two, other services fetch keys).
pub fn router(readiness: Arc<dyn Readiness>, tokens: Arc<dyn TokenIssuer>) -> Router {
    health_routes()
        .into_router()
        .with_state(readiness)
        .merge(jwks_routes().into_router().with_state(tokens))
}

/// `/metrics`: on the public listener, or only on the admin listener when
/// the deployment has one (`server.admin_bind`).
pub fn metrics_router(metrics: MetricSources) -> Router {
    metrics_routes().into_router().with_state(metrics)
}

/// Everything phonegate counts, in Prometheus' text format: the refusals of
/// the rate limits and the SMS-pumping guard, the outbox's backlog, and the
/// registry's deliveries, verifications, provider calls and HTTP requests.
/// docs/operations.md says what to alert on.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "ops_metrics",
    tag = TAG,
    summary = "Prometheus metrics",
    description = "Codes sent, verifications, provider calls and errors, rate-limit refusals, the outbox backlog \
        and HTTP requests by route: in OpenMetrics 1.0 when the `Accept` header asks for it (as Prometheus \
        does), in Prometheus' text format 0.0.4 otherwise.",
    responses((status = 200, description = "The metrics", content(
        (String = "text/plain; version=0.0.4; charset=utf-8"),
        (String = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
    )))
)]
async fn metrics_text(State(metrics): State<MetricSources>, headers: HeaderMap) -> Exposition {
    use std::sync::atomic::Ordering::Relaxed;
    let abuse = &metrics.abuse;
    let mut scrape = Scrape::default();
    // The abuse counters live with the limits that count them; they are
    // read here, once per scrape.
    for (name, help, counter) in [
        (
            "rate_limited",
            "Sends and checks refused by a per-phone or per-IP limit or a cooldown.",
            &abuse.rate_limited,
        ),
        (
            "sms_budget_exhausted",
            "Sends refused because an hourly SMS budget was spent (alert on any increase).",
            &abuse.budget_exhausted,
        ),
        (
            "destination_refused",
            "Sends refused because the destination country or prefix is not allowed.",
            &abuse.destination_refused,
        ),
        (
            "not_mobile_refused",
            "Texts refused because the number is not a mobile.",
            &abuse.not_mobile,
        ),
    ] {
        scrape.counter(name, help, counter.load(Relaxed));
    }
    match metrics.outbox.backlog().await {
        Ok(backlog) => {
            // The client cannot write a gauge over i64::MAX; no outbox
            // holds that many, and the cap keeps the page whole if one did.
            let pending = i64::try_from(backlog.pending).unwrap_or(i64::MAX);
            scrape.gauge("outbox_pending", "Messages waiting for delivery.", pending);
            scrape.gauge(
                "outbox_oldest_age_seconds",
                "How long the oldest waiting message has waited.",
                backlog.oldest_age.map_or(0.0, |age| age.as_secs_f64()),
            );
        }
        Err(error) => tracing::warn!(error = %error.report(), "metrics: the outbox backlog is unavailable"),
    }
    match metrics.outbox.backlog_by_kind().await {
        Ok(kinds) => {
            let pending: Vec<(&str, i64)> = kinds
                .iter()
                .map(|(entry, _)| {
                    (
                        entry.kind.as_str(),
                        i64::try_from(entry.backlog.pending).unwrap_or(i64::MAX),
                    )
                })
                .collect();
            let undeliverable: Vec<(&str, i64)> = kinds
                .iter()
                .map(|(entry, ours)| (entry.kind.as_str(), i64::from(!ours)))
                .collect();
            scrape.labelled_gauges(
                "outbox_pending_by_kind",
                "Messages waiting for delivery, by kind (sms, call, hosted_sms, hosted_call, mail).",
                "kind",
                &pending,
            );
            scrape.labelled_gauges(
                "outbox_kind_undeliverable",
                "1 for a kind of waiting message this instance has no provider for (another instance must send it).",
                "kind",
                &undeliverable,
            );
        }
        Err(error) => tracing::warn!(error = %error.report(), "metrics: the outbox backlog by kind is unavailable"),
    }
    Exposition::negotiate(&headers, &metrics.registry, scrape)
}

/// The process is up and serving HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "ops_healthz",
    tag = TAG,
    summary = "Liveness",
    responses((status = 200, description = "The process serves HTTP", body = StatusBody,
        example = json!({"status": "ok"})))
)]
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers; 503 while it does not.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "ops_readyz",
    tag = TAG,
    summary = "Readiness",
    responses(
        (status = 200, description = "The database answers", body = StatusBody, example = json!({"status": "ready"})),
        (status = 503, description = "The database does not answer", body = StatusBody,
            example = json!({"status": "unavailable"})),
    )
)]
async fn readyz(State(readiness): State<Arc<dyn Readiness>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match readiness.check().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))).into_response(),
        // The failure middleware logs the cause with the request id.
        Err(error) => crate::failure::Failure::unavailable(error)
            .finish((StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable"}))).into_response()),
    }
}

/// RFC 7517's JWK Set of the public keys that verify phonegate's tokens
/// (the current key and the previous keys still accepted). Empty when every
/// key is an HS256 secret, which is never published.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    operation_id = "ops_jwks",
    tag = TAG,
    summary = "The JSON Web Key Set",
    description = "The public keys that verify phonegate's JWTs: the current key and the previous keys still \
        accepted. Empty when every key is an HS256 secret, which is never published.",
    responses((status = 200, description = "RFC 7517's JWK Set", body = JwksBody,
        headers(("Cache-Control" = String, description = "`public, max-age=300`"))))
)]
async fn jwks(State(tokens): State<Arc<dyn TokenIssuer>>) -> Response {
    let keys: Vec<serde_json::Value> = tokens.public_keys().iter().map(jwk_json).collect();
    let mut response = Json(json!({ "keys": keys })).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(JWKS_CACHE_CONTROL));
    response
}

/// One key in RFC 7517/7518/8037 form.
fn jwk_json(key: &PublicJwk) -> serde_json::Value {
    let mut jwk = json!({
        "kty": key.kty(),
        "use": "sig",
        "alg": key.alg,
        "kid": key.kid,
    });
    match &key.params {
        PublicKeyParams::Rsa { n, e } => {
            jwk["n"] = json!(n);
            jwk["e"] = json!(e);
        }
        PublicKeyParams::Okp { crv, x } => {
            jwk["crv"] = json!(crv);
            jwk["x"] = json!(x);
        }
    }
    jwk
}

/// The tag of these operations in the OpenAPI spec.
const TAG: &str = "ops";

/// The operational endpoints' part of the OpenAPI spec.
#[derive(OpenApi)]
#[openapi(paths(healthz, readyz, jwks, metrics_text))]
pub(crate) struct Doc;

/// `/healthz`'s and `/readyz`'s body.
#[derive(Serialize, ToSchema)]
#[schema(as = OpsStatus)]
struct StatusBody {
    /// `ok`; `ready` or `unavailable`.
    status: String,
}

/// A JWK Set.
#[derive(Serialize, ToSchema)]
#[schema(as = Jwks)]
struct JwksBody {
    keys: Vec<JwkBody>,
}

/// One public key (RFC 7517, 7518 and 8037).
#[derive(Serialize, ToSchema)]
#[schema(as = Jwk, example = json!({"kty": "OKP", "use": "sig", "alg": "EdDSA", "kid": "2026-01", "crv": "Ed25519",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}))]
struct JwkBody {
    /// `RSA` or `OKP`.
    kty: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    use_: String,
    /// `RS256` or `EdDSA`.
    alg: String,
    kid: String,
    /// RSA modulus (base64url).
    #[schema(nullable = false)]
    n: Option<String>,
    /// RSA exponent (base64url).
    #[schema(nullable = false)]
    e: Option<String>,
    /// OKP curve, `Ed25519`.
    #[schema(nullable = false)]
    crv: Option<String>,
    /// OKP public key (base64url).
    #[schema(nullable = false)]
    x: Option<String>,
}
