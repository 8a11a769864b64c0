//! The pin-auth surface (seed `001`): `send_pin`, `signup`, `verify`,
//! `current_user_profile` and `register_device` under `/api/v1/auth`.
//!
//! Errors have this API's shape, `{"errors": "<message>"}`: 422 for
//! validation and failed verification, 401 for a missing or bad bearer
//! token, 400 for an unusable body or device, 403 for a Host not allowed,
//! 429 with `Retry-After` when a rate limit or the SMS budget refuses a
//! send or check, 503 when the database or rate limiter is unavailable.

use std::{borrow::Cow, sync::Arc};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode, header::AUTHORIZATION},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use phonegate_domain::{
    abuse::Refusal,
    pin_auth::{AuthError, PinAuth, RegisterDeviceError, SendPinError, SignupRequest, VerifyError},
    ports::{DeliveryError, StoreError},
    user::{NewAddress, UserProfile},
};
use serde::Serialize;

use crate::{
    RefusalAnswer,
    client::RequestClient,
    hosts::{self, AllowedHosts},
    params::{Params, ParamsError},
};

pub fn router(pin_auth: Arc<PinAuth>, hosts: &AllowedHosts) -> Router {
    let router = Router::new()
        .route("/api/v1/auth/send_pin", post(send_pin))
        .route("/api/v1/auth/signup", post(signup))
        .route("/api/v1/auth/verify", post(verify))
        .route("/api/v1/auth/current_user_profile", get(current_user_profile))
        .route("/api/v1/auth/register_device", post(register_device))
        .with_state(pin_auth)
        .method_not_allowed_fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed") });
    hosts::guard(router, hosts, || {
        ApiError::new(StatusCode::FORBIDDEN, "Invalid host").into_response()
    })
}

/// This surface's error: a status and the message for `{"errors": …}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: Cow<'static, str>,
    retry_after: Option<std::time::Duration>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 429 with `Retry-After`, when the SMS provider or a limit says wait.
    fn too_many_requests(retry_after: Option<std::time::Duration>) -> Self {
        Self {
            retry_after,
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests. Please try again later.",
            )
        }
    }

    fn unprocessable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    fn unauthorized(reason: &'static str) -> Self {
        tracing::info!(reason, "bearer token refused");
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized")
    }

    /// A dependency is down. The details go to the log line (which carries
    /// the request id), never to the client.
    fn unavailable(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "dependency unavailable");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
    }

    fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body<'a> {
            errors: &'a str,
        }
        let response = (self.status, Json(Body { errors: &self.message })).into_response();
        crate::with_retry_after(response, self.retry_after)
    }
}

impl From<ParamsError> for ApiError {
    fn from(error: ParamsError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::unavailable(&error)
    }
}

impl From<DeliveryError> for ApiError {
    fn from(error: DeliveryError) -> Self {
        match error {
            DeliveryError::InvalidNumber => Self::unprocessable("Mobile is invalid"),
            DeliveryError::RateLimited { retry_after } => Self::too_many_requests(retry_after),
            error @ (DeliveryError::Unavailable(_) | DeliveryError::Misconfigured(_)) => Self::unavailable(&error),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match crate::refusal_answer(refusal) {
            RefusalAnswer::TooMany(retry_after) => Self::too_many_requests(retry_after),
            RefusalAnswer::BadNumber => Self::unprocessable("Mobile is not a mobile number we can send to"),
            RefusalAnswer::Unavailable(error) => error.into(),
        }
    }
}

impl From<SendPinError> for ApiError {
    fn from(error: SendPinError) -> Self {
        match error {
            SendPinError::InvalidMobile(error) => Self::unprocessable(error.to_string()),
            error @ SendPinError::TooLong(_) => Self::unprocessable(error.to_string()),
            SendPinError::Store(error) => error.into(),
            SendPinError::Refused(refusal) => refusal.into(),
        }
    }
}

impl From<VerifyError> for ApiError {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::Store(error) => error.into(),
            VerifyError::Refused(refusal) => refusal.into(),
            VerifyError::Provider(error) => error.into(),
            VerifyError::Token(error) => Self::internal(&error),
            VerifyError::MissingKey
            | VerifyError::MissingPin
            | VerifyError::InvalidPin
            | VerifyError::Expired
            | VerifyError::TooManyAttempts => Self::unprocessable(error.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unauthorized(reason) => Self::unauthorized(reason),
            AuthError::Store(error) => error.into(),
        }
    }
}

impl From<RegisterDeviceError> for ApiError {
    fn from(error: RegisterDeviceError) -> Self {
        match error {
            RegisterDeviceError::Auth(error) => error.into(),
            RegisterDeviceError::InvalidHandle(error) => Self::new(StatusCode::BAD_REQUEST, error.to_string()),
            RegisterDeviceError::InvalidPlatform(error) => Self::new(StatusCode::BAD_REQUEST, error.to_string()),
            RegisterDeviceError::Store(error) => error.into(),
        }
    }
}

/// The token from `Authorization: Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[derive(Serialize)]
struct OtpAuthKeyBody {
    otp_auth_key: String,
}

async fn send_pin(
    State(pin_auth): State<Arc<PinAuth>>,
    RequestClient(client): RequestClient,
    params: Result<Params, ParamsError>,
) -> Result<Json<OtpAuthKeyBody>, ApiError> {
    let params = params?;
    let mobile = params.text("mobile").unwrap_or_default();
    let key = pin_auth.send_pin(&mobile, &client).await?;
    Ok(Json(OtpAuthKeyBody {
        otp_auth_key: key.expose().to_owned(),
    }))
}

async fn signup(
    State(pin_auth): State<Arc<PinAuth>>,
    RequestClient(client): RequestClient,
    params: Result<Params, ParamsError>,
) -> Result<Json<OtpAuthKeyBody>, ApiError> {
    let params = params?;
    let user_auth = params
        .object("user_auth")
        .ok_or_else(|| ApiError::unprocessable("Missing parameter user_auth"))?;
    let address = user_auth
        .object("address_attributes")
        .ok_or_else(|| ApiError::unprocessable("Missing parameter user_auth[address_attributes]"))?;
    let district_id = address
        .integer("district_id")
        .map_err(|()| ApiError::unprocessable("District is not a number"))?;
    let request = SignupRequest {
        mobile: user_auth.text("mobile").unwrap_or_default(),
        first_name: user_auth.text("first_name"),
        last_name: user_auth.text("last_name"),
        address: Some(NewAddress {
            street: address.text("street"),
            flat: address.text("flat"),
            building: address.text("building"),
            district_id,
            address_type: address.text("address_type"),
        }),
    };
    let key = pin_auth.signup(request, &client).await?;
    Ok(Json(OtpAuthKeyBody {
        otp_auth_key: key.expose().to_owned(),
    }))
}

#[derive(Serialize)]
struct AddressBody {
    id: i64,
    street: Option<String>,
    flat: Option<String>,
    building: Option<String>,
    district_id: Option<i64>,
    addressable_id: i64,
    addressable_type: &'static str,
}

#[derive(Serialize)]
struct PermissionBody {
    id: i64,
    name: String,
}

#[derive(Serialize)]
struct UserProfileBody {
    id: i64,
    first_name: Option<String>,
    last_name: Option<String>,
    mobile: Option<String>,
    address_id: Option<i64>,
    permission_id: Option<i64>,
}

#[derive(Serialize)]
struct ProfileBody {
    addresses: Vec<AddressBody>,
    permissions: Vec<PermissionBody>,
    user_profile: UserProfileBody,
}

impl ProfileBody {
    fn new(profile: UserProfile, pin_auth: &PinAuth) -> Self {
        let rule = &pin_auth.settings().mobile_rule;
        let user_profile = UserProfileBody {
            id: profile.user.id.get(),
            first_name: profile.user.first_name.clone(),
            last_name: profile.user.last_name.clone(),
            mobile: profile
                .user
                .phone
                .as_ref()
                .map(|phone| rule.local_part(phone).to_owned()),
            address_id: profile.primary_address().map(|address| address.id),
            permission_id: profile.permissions.first().map(|permission| permission.id),
        };
        Self {
            addresses: profile
                .addresses
                .into_iter()
                .map(|address| AddressBody {
                    id: address.id,
                    street: address.street,
                    flat: address.flat,
                    building: address.building,
                    district_id: address.district_id,
                    addressable_id: address.user_id.get(),
                    addressable_type: "User",
                })
                .collect(),
            permissions: profile
                .permissions
                .into_iter()
                .map(|permission| PermissionBody {
                    id: permission.id,
                    name: permission.name,
                })
                .collect(),
            user_profile,
        }
    }
}

#[derive(Serialize)]
struct VerifyBody {
    jwt_token: String,
    user: ProfileBody,
}

async fn verify(
    State(pin_auth): State<Arc<PinAuth>>,
    RequestClient(client): RequestClient,
    params: Result<Params, ParamsError>,
) -> Result<Json<VerifyBody>, ApiError> {
    let params = params?;
    let key = params.text("otp_auth_key").unwrap_or_default();
    let pin = params.text("pin").unwrap_or_default();
    let session = pin_auth.verify(&key, &pin, &client).await?;
    Ok(Json(VerifyBody {
        jwt_token: session.token.expose().to_owned(),
        user: ProfileBody::new(session.profile, &pin_auth),
    }))
}

async fn current_user_profile(
    State(pin_auth): State<Arc<PinAuth>>,
    headers: HeaderMap,
) -> Result<Json<ProfileBody>, ApiError> {
    let profile = pin_auth.current_user_profile(bearer(&headers)).await?;
    Ok(Json(ProfileBody::new(profile, &pin_auth)))
}

async fn register_device(
    State(pin_auth): State<Arc<PinAuth>>,
    headers: HeaderMap,
    params: Result<Params, ParamsError>,
) -> Result<StatusCode, ApiError> {
    let params = params?;
    let handle = params.text("handle").unwrap_or_default();
    let platform = params.text("platform").unwrap_or_default();
    pin_auth.register_device(bearer(&headers), &handle, &platform).await?;
    Ok(StatusCode::NO_CONTENT)
}
