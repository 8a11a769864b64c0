//! Operational endpoints: liveness and readiness.

use std::sync::Arc;

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use phonegate_domain::ports::Readiness;
use serde_json::json;

pub fn router(readiness: Arc<dyn Readiness>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(readiness)
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
