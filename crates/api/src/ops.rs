//! Operational endpoints: liveness, readiness, and the JSON Web Key Set that
//! lets other services verify phonegate's tokens.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use phonegate_domain::{
    ports::{Readiness, TokenIssuer},
    token::{PublicJwk, PublicKeyParams},
};
use serde_json::json;

/// How long clients may cache the key set. Short enough that a rotated-in
/// key is picked up well before tokens signed with it are common, as long
/// as the new key is published (added as a previous key) ahead of use.
const JWKS_CACHE_CONTROL: &str = "public, max-age=300";

pub fn router(readiness: Arc<dyn Readiness>, tokens: Arc<dyn TokenIssuer>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(readiness)
        .merge(
            Router::new()
                .route("/.well-known/jwks.json", get(jwks))
                .with_state(tokens),
        )
}

/// The process is up and serving HTTP.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers; 503 while it does not.
async fn readyz(State(readiness): State<Arc<dyn Readiness>>) -> (StatusCode, Json<serde_json::Value>) {
    match readiness.check().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err(error) => {
            tracing::warn!(%error, "not ready: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable"})))
        }
    }
}

/// RFC 7517's JWK Set of the public keys that verify phonegate's tokens
/// (the current key and the previous keys still accepted). Empty when every
/// key is an HS256 secret, which is never published.
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
