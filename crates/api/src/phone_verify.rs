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
};
use phonegate_domain::{
    abuse::Refusal,
    phone::PhoneInputError,
    phone_verify::{PhoneVerify, PhoneVerifyError, RegisterError, VerifyRequest},
    ports::{DeliveryError, StoreError},
};
use serde::Serialize;
use serde_json::json;
use utoipa::{OpenApi, ToSchema};

use crate::{
    RefusalAnswer,
    client::RequestClient,
    hosts::{self, AllowedHosts},
    params::{Params, ParamsError},
    routes::{MountedRoute, Routes},
};

fn routes() -> Routes<Arc<PhoneVerify>> {
    Routes::new()
        .post("/api/phone/register", register)
        .post("/api/phone/verify", verify)
}

/// The routes [`router`] mounts.
pub fn mounted() -> Vec<MountedRoute> {
    routes().table().to_vec()
}

pub fn router(phone_verify: Arc<PhoneVerify>, hosts: &AllowedHosts) -> Router {
    let router = routes()
        .into_router()
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
            error @ (DeliveryError::Unavailable(_) | DeliveryError::Misconfigured(_) | DeliveryError::Rejected(_)) => {
                Self::unavailable(&error)
            }
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

#[derive(Serialize, ToSchema)]
#[schema(as = PhoneVerifySessionToken)]
struct SessionTokenBody {
    /// A signed JWT naming the phone number and this code's challenge;
    /// send it back to `verify`. It expires with the code.
    #[schema(example = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJ…")]
    session_token: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = PhoneVerifyValid)]
struct ValidBody {
    /// Always `Security code is valid.`
    #[schema(example = "Security code is valid.")]
    message: &'static str,
}

#[utoipa::path(
    post,
    path = "/api/phone/register",
    operation_id = "phone_verify_register",
    tag = TAG,
    summary = "Send a security code to a phone number",
    description = "Texts a new security code (6 digits by default) to the number and answers with a \
        session token. Call it again to resend: the new code replaces the old one.",
    request_body(content(
        (RegisterParams = "application/json"),
        (RegisterParams = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The code was sent", body = SessionTokenBody),
        (status = 400, description = "A missing or invalid phone number (`{\"phone_number\": [\"…\"]}`), \
            unreadable parameters or a Host not in `security.allowed_hosts` (`{\"detail\": \"…\"}`)",
            body = BadRequestBody, example = json!({"phone_number": ["This field is required."]})),
        (status = 429, description = "A rate limit or the SMS budget refuses the send", body = DetailBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "The session token could not be signed", body = DetailBody),
        (status = 503, description = "The database or the rate limiter is unavailable", body = DetailBody),
    )
)]
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

#[utoipa::path(
    post,
    path = "/api/phone/verify",
    operation_id = "phone_verify_verify",
    tag = TAG,
    summary = "Check a security code",
    description = "Checks the code against the challenge named by the session token, for the same \
        phone number (in any format). A code is single use, expires, and allows at most 5 wrong tries.",
    request_body(content(
        (VerifyParams = "application/json"),
        (VerifyParams = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The code is right", body = ValidBody),
        (status = 400, description = "A wrong or expired code or too many tries \
            (`{\"non_field_errors\": [\"…\"]}`), missing or invalid fields (`{\"<field>\": [\"…\"]}`), \
            unreadable parameters or a Host not allowed (`{\"detail\": \"…\"}`)",
            body = BadRequestBody, example = json!({"non_field_errors": ["Security code is not valid"]})),
        (status = 429, description = "A rate limit refuses the check", body = DetailBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The database, the rate limiter or the code provider is unavailable",
            body = DetailBody),
    )
)]
async fn verify(
    State(phone_verify): State<Arc<PhoneVerify>>,
    RequestClient(client): RequestClient,
    params: Result<Params, ParamsError>,
) -> Result<Json<ValidBody>, ApiError> {
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
    Ok(Json(ValidBody {
        message: "Security code is valid.",
    }))
}

/// The tag of this surface's operations in the OpenAPI spec.
const TAG: &str = "phone-verify";

/// This surface's part of the OpenAPI spec.
#[derive(OpenApi)]
#[openapi(paths(register, verify))]
pub(crate) struct Doc;

/// A 400's body: field errors, or a detail about the request as a whole.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[schema(as = PhoneVerifyBadRequest)]
#[expect(dead_code, reason = "it documents the bodies `ApiError` writes")]
enum BadRequestBody {
    Fields(FieldErrors),
    Detail(DetailBody),
}

/// Messages per field (`non_field_errors` for a failed verification).
#[derive(Serialize, ToSchema)]
#[schema(as = PhoneVerifyFieldErrors, example = json!({"non_field_errors": ["Security code is not valid"]}))]
struct FieldErrors(BTreeMap<String, Vec<String>>);

/// A message about the request as a whole.
#[derive(Serialize, ToSchema)]
#[schema(as = PhoneVerifyDetail, example = json!({"detail": "Service temporarily unavailable, try again later."}))]
struct DetailBody {
    detail: String,
}

/// `register`'s parameters.
#[derive(ToSchema)]
#[schema(as = PhoneVerifyRegisterRequest, example = json!({"phone_number": "+12063721234"}))]
#[expect(dead_code, reason = "it documents parameters that `Params` reads")]
struct RegisterParams {
    /// The phone number, best with its country code; national numbers are
    /// read in the configured default region.
    phone_number: String,
}

/// `verify`'s parameters.
#[derive(ToSchema)]
#[schema(as = PhoneVerifyVerifyRequest)]
#[expect(dead_code, reason = "it documents parameters that `Params` reads")]
struct VerifyParams {
    /// The number the code was sent to, in any format.
    phone_number: String,
    /// The code from the SMS.
    #[schema(schema_with = crate::openapi::integer_or_text)]
    security_code: String,
    /// The session token from `register`.
    session_token: String,
}
