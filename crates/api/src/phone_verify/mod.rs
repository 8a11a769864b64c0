//! The phone-verify surface (seed `000`): `POST /api/phone/register` and
//! `POST /api/phone/verify`.
//!
//! Errors have the shape its Django REST Framework clients parse: 400 with
//! `{"<field>": ["…"]}` for a field's problem, `{"non_field_errors": ["…"]}`
//! for a failed verification, and `{"detail": "…"}` for anything about the
//! request as a whole (unreadable body, disallowed host, outage).

use std::{collections::BTreeMap, sync::Arc};

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse};
use phonegate_domain::phone_verify::PhoneVerify;
use serde::Serialize;
use serde_json::json;
use utoipa::{OpenApi, ToSchema};

use crate::{
    client::RequestClient,
    hosts::{self, AllowedHosts},
    params::Decoded,
    routes::{MountedRoute, Routes},
};

mod error;
mod requests;

use error::ApiError;
use requests::{RegisterRequest, VerifyRequest};

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
        ApiError::Detail(StatusCode::BAD_REQUEST, error::INVALID_HOST).into_response()
    })
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
        (RegisterRequest = "application/json"),
        (RegisterRequest = "application/x-www-form-urlencoded"),
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
    Decoded(request, ..): Decoded<RegisterRequest, ApiError>,
) -> Result<Json<SessionTokenBody>, ApiError> {
    let phone = request.into_phone(phone_verify.phones())?;
    let token = phone_verify.register(&phone, &client).await?;
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
        phone number (in any format). A code is single use, expires, and allows at most 5 wrong tries. \
        A code without the deployment's number of digits, or a session token that is not a JWT, is \
        answered as a wrong code.",
    request_body(content(
        (VerifyRequest = "application/json"),
        (VerifyRequest = "application/x-www-form-urlencoded"),
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
    Decoded(request, ..): Decoded<VerifyRequest, ApiError>,
) -> Result<Json<ValidBody>, ApiError> {
    let verification = request.into_domain(phone_verify.phones(), phone_verify.code_length())?;
    phone_verify.verify(verification, &client).await?;
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
