//! The tokens surface (seed `002`): email + password sign-in, sign-out,
//! password reset, phone verification for a signed-in user, and token
//! introspection for servers.
//!
//! As in the Rails API it replaces, every path also answers with a `.json`
//! suffix, and parameters come as form fields, query string or JSON alike.
//! Errors are `{"error": "<message>"}`: 401 for bad credentials or a
//! missing/revoked `auth_token`, 422 for invalid input, 429 with
//! `Retry-After` when throttled, 503 when a dependency is down.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    response::{IntoResponse, Response},
};
use phonegate_domain::token_auth::TokenAuth;
use utoipa::OpenApi;

use crate::{
    hosts::{self, AllowedHosts},
    routes::{MountedRoute, Routes},
};

mod error;
mod handlers;
mod requests;
mod responses;

use error::{ApiError, Rejection};
use handlers::{complete_reset, introspect, request_reset, send_phone_verification, sign_in, sign_out, verify_phone};

/// Holds a response back until `floor` has passed since the request came.
async fn pad(
    axum::extract::State(floor): axum::extract::State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let deadline = tokio::time::Instant::now() + floor;
    let response = next.run(request).await;
    tokio::time::sleep_until(deadline).await;
    response
}

/// Every path and its `.json` twin, as Rails routes `(.:format)`.
fn routes(reset_floor: Duration) -> Routes<Arc<TokenAuth>> {
    let padded = Routes::new()
        .post("/api/v1/tokens/reset", request_reset)
        .post("/api/v1/tokens/reset.json", request_reset)
        .route_layer(axum::middleware::from_fn_with_state(reset_floor, pad));
    Routes::new()
        .post("/api/v1/tokens", sign_in)
        .post("/api/v1/tokens.json", sign_in)
        .merge(padded)
        .put("/api/v1/tokens/reset", complete_reset)
        .put("/api/v1/tokens/reset.json", complete_reset)
        .post("/api/v1/tokens/introspect", introspect)
        .post("/api/v1/tokens/introspect.json", introspect)
        .post("/api/v1/settings/send_phone_verification", send_phone_verification)
        .post("/api/v1/settings/send_phone_verification.json", send_phone_verification)
        .post("/api/v1/settings/verify_phone", verify_phone)
        .post("/api/v1/settings/verify_phone.json", verify_phone)
        // `:user_id(.:format)`: the handler strips a `.json` suffix itself.
        .delete("/api/v1/tokens/{user_id}", sign_out)
}

/// The routes [`router`] mounts.
pub fn mounted() -> Vec<MountedRoute> {
    routes(Duration::ZERO).table().to_vec()
}

/// `reset_floor`: the least time a reset request takes to answer. The
/// work for known and unknown emails is the same, but not to the
/// microsecond (a known email also writes the reset row); answering no
/// sooner than this hides what is left.
pub fn router(token_auth: Arc<TokenAuth>, hosts: &AllowedHosts, reset_floor: Duration) -> Router {
    let router = routes(reset_floor)
        .into_router()
        .with_state(token_auth)
        .method_not_allowed_fallback(|| async { ApiError::from(Rejection::MethodNotAllowed) });
    hosts::guard(router, hosts, || {
        ApiError::from(Rejection::ForbiddenHost).into_response()
    })
}

/// The tag of this surface's operations in the OpenAPI spec.
pub(crate) const TAG: &str = "tokens";

/// This surface's part of the OpenAPI spec, without the `.json` twins
/// (`crate::openapi` adds them).
#[derive(OpenApi)]
#[openapi(paths(
    handlers::sign_in,
    handlers::sign_out,
    handlers::request_reset,
    handlers::complete_reset,
    handlers::introspect,
    handlers::send_phone_verification,
    handlers::verify_phone
))]
pub(crate) struct Doc;
