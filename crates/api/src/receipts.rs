//! Delivery receipts: the endpoint each SMS provider calls back with the
//! status of a message it accepted, `/receipts/{provider}`.
//!
//! The provider's own reader ([`ReceiptReader`], in the adapters) verifies
//! the vendor's signature over the URL the vendor called (the configured
//! public URL, `server.public_url`, with the request's path and query),
//! the headers and the raw body, then reads the receipt. Unsigned or
//! wrongly signed requests get 403 and change nothing; a receipt for a
//! message nobody sent gets the same 200 as any other, so the endpoint
//! tells a forger nothing about which ids exist.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use phonegate_domain::{
    delivery::Receipts,
    ports::{Metrics, ReceiptReader, ReceiptRejected, ReceiptRequest},
};
use serde_json::json;

use crate::{
    failure::Failure,
    routes::{MountedRoute, Routes},
};

/// The ops tag: receipts are for providers, not for clients.
const TAG: &str = "ops";

/// What the receipt endpoint needs.
#[derive(Clone)]
pub struct ReceiptEndpoint {
    /// Records receipts and resends what did not arrive.
    pub receipts: Receipts,
    /// Each provider's reader, by its configured name (the path's
    /// `{provider}`).
    pub readers: HashMap<&'static str, Arc<dyn ReceiptReader>>,
    /// The public base URL providers call (`server.public_url`), without a
    /// trailing slash.
    pub public_url: String,
    pub metrics: Arc<dyn Metrics>,
}

impl std::fmt::Debug for ReceiptEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiptEndpoint")
            .field("providers", &self.readers.keys().collect::<Vec<_>>())
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// The endpoint, when receipts are configured; without them every
/// receipt path answers 404.
type EndpointState = Option<Arc<ReceiptEndpoint>>;

fn routes() -> Routes<EndpointState> {
    Routes::new()
        .post("/receipts/{provider}", receive)
        .get("/receipts/{provider}", receive_by_get)
}

/// The routes [`router`] mounts.
pub fn mounted() -> Vec<MountedRoute> {
    routes().table().to_vec()
}

/// `/receipts/{provider}`, answering for `endpoint`'s providers.
pub fn router(endpoint: Option<Arc<ReceiptEndpoint>>) -> Router {
    routes().into_router().with_state(endpoint)
}

/// A provider's delivery receipt.
#[utoipa::path(
    post,
    path = "/receipts/{provider}",
    operation_id = "ops_receipt",
    tag = TAG,
    summary = "A provider's delivery receipt",
    description = "Called by an SMS provider with the status of a message it accepted: Twilio's `StatusCallback` \
        (form, `X-Twilio-Signature`), Vonage's delivery receipts (signed with the account's signature secret) \
        or the generic provider's JSON `{id, status, error?}` (Standard Webhooks headers). The body is the \
        vendor's own; it is verified by the vendor's signature over `server.public_url` plus this path.",
    params(("provider" = String, Path, description = "The provider's configured name: `twilio`, `vonage`, `http`")),
    request_body(content = String, description = "The vendor's receipt, as the vendor sends it",
        content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Received (also for a message id nobody sent)"),
        (status = 400, description = "Signed, but not a receipt", body = serde_json::Value,
            example = json!({"error": "malformed receipt"})),
        (status = 403, description = "Missing or wrong signature", body = serde_json::Value,
            example = json!({"error": "bad signature"})),
        (status = 404, description = "No such provider takes receipts here", body = serde_json::Value,
            example = json!({"error": "not found"})),
    )
)]
async fn receive(
    State(endpoint): State<EndpointState>,
    Path(provider): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(endpoint, &provider, &method, &uri, &headers, &body).await
}

/// A provider's delivery receipt sent as a GET (Vonage's default).
#[utoipa::path(
    get,
    path = "/receipts/{provider}",
    operation_id = "ops_receipt_get",
    tag = TAG,
    summary = "A provider's delivery receipt, by GET",
    description = "Vonage sends delivery receipts as a GET with the fields in the query string unless told \
        otherwise; the signature covers them the same way.",
    params(("provider" = String, Path, description = "The provider's configured name: `vonage`")),
    responses(
        (status = 200, description = "Received (also for a message id nobody sent)"),
        (status = 403, description = "Missing or wrong signature", body = serde_json::Value,
            example = json!({"error": "bad signature"})),
        (status = 404, description = "No such provider takes receipts here", body = serde_json::Value,
            example = json!({"error": "not found"})),
    )
)]
async fn receive_by_get(
    State(endpoint): State<EndpointState>,
    Path(provider): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    handle(endpoint, &provider, &method, &uri, &headers, &[]).await
}

fn error(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "error": text }))).into_response()
}

async fn handle(
    endpoint: EndpointState,
    provider: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let Some(endpoint) = endpoint else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let Some((&name, reader)) = endpoint.readers.get_key_value(provider) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let path_and_query = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let url = format!("{}{path_and_query}", endpoint.public_url);
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(key, value)| Some((key.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect();
    let request = ReceiptRequest {
        method: method.as_str(),
        url: &url,
        query: uri.query().unwrap_or(""),
        headers: &headers,
        body,
    };
    let receipt = match reader.read(&request) {
        Ok(receipt) => receipt,
        Err(ReceiptRejected::BadSignature) => {
            endpoint.metrics.receipt(name, "bad_signature");
            tracing::warn!(
                provider = name,
                "a delivery receipt with a missing or wrong signature was refused"
            );
            return error(StatusCode::FORBIDDEN, "bad signature");
        }
        Err(ReceiptRejected::Malformed(why)) => {
            endpoint.metrics.receipt(name, "malformed");
            tracing::warn!(provider = name, why, "a signed delivery receipt could not be read");
            return error(StatusCode::BAD_REQUEST, "malformed receipt");
        }
    };
    match endpoint.receipts.record(&receipt).await {
        Ok(outcome) => {
            endpoint.metrics.receipt(name, outcome.as_str());
            StatusCode::OK.into_response()
        }
        // The provider retries a failed callback: nothing is lost.
        Err(store) => {
            let failure = Failure::from(store);
            let status = failure.status();
            failure.finish(error(status, "unavailable"))
        }
    }
}

/// The receipt operations, for the spec.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(paths(receive, receive_by_get))]
pub struct Doc;
