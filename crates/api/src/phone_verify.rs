//! The phone-verify surface (seed `000`): `POST /api/phone/register` and
//! `POST /api/phone/verify`.
//!
//! Errors have the shape its Django REST Framework clients parse: 400 with
//! `{"<field>": ["…"]}` for a field's problem, `{"non_field_errors": ["…"]}`
//! for a failed verification, and `{"detail": "…"}` for anything about the
//! request as a whole (unreadable body, disallowed host, outage).

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
};
use phonegate_domain::{
    abuse::Refusal,
    phone::PhoneInputError,
    phone_verify::{PhoneVerify, PhoneVerifyError, RegisterError, VerifyRequest},
    ports::{DeliveryError, StoreError},
};
use serde::Serialize;
use serde_json::json;

use crate::{
    RefusalAnswer,
    client::RequestClient,
    hosts::{self, AllowedHosts},
    params::{Params, ParamsError},
};

pub fn router(phone_verify: Arc<PhoneVerify>, hosts: &AllowedHosts) -> Router {
    let router = Router::new()
        .route("/api/phone/register", post(register))
        .route("/api/phone/verify", post(verify))
        .with_state(phone_verify)
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            // DRF's wording, which these clients already show.
            let detail = format!("Method \"{method}\" not allowed.");
            (StatusCode::METHOD_NOT_ALLOWED, Json(json!({"detail": detail})))
        });
    hosts::guard(router, hosts, || {
        ApiError::Detail(StatusCode::BAD_REQUEST, "Invalid host header.").into_response()
    })
}

/// This surface's errors, in DRF's shapes.
#[derive(Debug)]
pub enum ApiError {
    /// 400 `{"<field>": ["<message>"], …}`.
    Fields(BTreeMap<&'static str, &'static str>),
    /// 400 `{"non_field_errors": ["<message>"]}`.
    NonField(&'static str),
    /// `{"detail": "<message>"}` with the given status.
    Detail(StatusCode, &'static str),
    /// 400 `{"detail": "<message>"}` for an unreadable request.
    Malformed(String),
    /// 429 `{"detail": "Request was throttled. …"}` with `Retry-After`, as DRF throttles.
    Throttled(Option<std::time::Duration>),
}

impl ApiError {
    fn field(name: &'static str, message: &'static str) -> Self {
        Self::Fields(BTreeMap::from([(name, message)]))
    }

    fn unavailable(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "dependency unavailable");
        Self::Detail(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service temporarily unavailable, try again later.",
        )
    }

    fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Self::Detail(StatusCode::INTERNAL_SERVER_ERROR, "A server error occurred.")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Fields(fields) => {
                let body: BTreeMap<_, _> = fields.into_iter().map(|(name, message)| (name, [message])).collect();
                (StatusCode::BAD_REQUEST, Json(json!(body))).into_response()
            }
            Self::NonField(message) => {
                (StatusCode::BAD_REQUEST, Json(json!({"non_field_errors": [message]}))).into_response()
            }
            Self::Detail(status, message) => (status, Json(json!({"detail": message}))).into_response(),
            Self::Malformed(message) => (StatusCode::BAD_REQUEST, Json(json!({"detail": message}))).into_response(),
            Self::Throttled(retry_after) => {
                let detail = match retry_after {
                    Some(wait) => format!(
                        "Request was throttled. Expected available in {} seconds.",
                        wait.as_secs().max(1)
                    ),
                    None => "Request was throttled.".to_owned(),
                };
                let response = (StatusCode::TOO_MANY_REQUESTS, Json(json!({"detail": detail}))).into_response();
                crate::with_retry_after(response, retry_after)
            }
        }
    }
}

impl From<ParamsError> for ApiError {
    fn from(error: ParamsError) -> Self {
        Self::Malformed(error.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::unavailable(&error)
    }
}

fn phone_error(error: PhoneInputError) -> ApiError {
    match error {
        PhoneInputError::Blank => ApiError::field("phone_number", "This field is required."),
        PhoneInputError::Invalid => ApiError::field("phone_number", "Enter a valid phone number."),
        PhoneInputError::NotAllowed => {
            ApiError::field("phone_number", "Phone numbers from this region are not supported.")
        }
    }
}

impl From<DeliveryError> for ApiError {
    fn from(error: DeliveryError) -> Self {
        match error {
            DeliveryError::InvalidNumber => phone_error(PhoneInputError::Invalid),
            DeliveryError::RateLimited { retry_after } => Self::Throttled(retry_after),
            error @ (DeliveryError::Unavailable(_) | DeliveryError::Misconfigured(_)) => Self::unavailable(&error),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match crate::refusal_answer(refusal) {
            RefusalAnswer::TooMany(retry_after) => Self::Throttled(retry_after),
            RefusalAnswer::BadNumber => phone_error(PhoneInputError::NotAllowed),
            RefusalAnswer::Unavailable(error) => error.into(),
        }
    }
}

impl From<RegisterError> for ApiError {
    fn from(error: RegisterError) -> Self {
        match error {
            RegisterError::MissingPhone => Self::field("phone_number", "This field is required."),
            RegisterError::InvalidPhone(error) => phone_error(error),
            RegisterError::Refused(refusal) => refusal.into(),
            RegisterError::Store(error) => error.into(),
            RegisterError::Token(error) => Self::internal(&error),
        }
    }
}

impl From<PhoneVerifyError> for ApiError {
    fn from(error: PhoneVerifyError) -> Self {
        match error {
            PhoneVerifyError::MissingFields(fields) => Self::Fields(
                fields
                    .into_iter()
                    .map(|name| (name, "This field is required."))
                    .collect(),
            ),
            PhoneVerifyError::InvalidPhone(error) => phone_error(error),
            PhoneVerifyError::InvalidCode => Self::NonField("Security code is not valid"),
            PhoneVerifyError::Expired => Self::NonField("Security code has expired"),
            PhoneVerifyError::TooManyAttempts => {
                Self::NonField("Too many failed verification attempts. Please request a new code.")
            }
            PhoneVerifyError::Store(error) => error.into(),
            PhoneVerifyError::Refused(refusal) => refusal.into(),
            PhoneVerifyError::Provider(error) => error.into(),
        }
    }
}

#[derive(Serialize)]
struct SessionTokenBody {
    session_token: String,
}

async fn register(
    State(phone_verify): State<Arc<PhoneVerify>>,
    RequestClient(client): RequestClient,
    params: Result<Params, ParamsError>,
) -> Result<Json<SessionTokenBody>, ApiError> {
    let params = params?;
    let phone = params.text("phone_number");
    let token = phone_verify.register(phone.as_deref(), &client).await?;
    Ok(Json(SessionTokenBody {
        session_token: token.expose().to_owned(),
    }))
}

async fn verify(
    State(phone_verify): State<Arc<PhoneVerify>>,
    RequestClient(client): RequestClient,
    params: Result<Params, ParamsError>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let params = params?;
    let (phone, code, token) = (
        params.text("phone_number"),
        params.text("security_code"),
        params.text("session_token"),
    );
    let request = VerifyRequest {
        phone_number: phone.as_deref(),
        security_code: code.as_deref(),
        session_token: token.as_deref(),
    };
    phone_verify.verify(request, &client).await?;
    Ok(Json(json!({"message": "Security code is valid."})))
}
