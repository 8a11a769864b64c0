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
};
use phonegate_domain::{
    abuse::Refusal,
    pin_auth::{AuthError, PinAuth, RegisterDeviceError, SendPinError, SignupRequest, VerifyError},
    ports::{DeliveryError, StoreError},
    user::{NewAddress, UserProfile},
};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::{
    RefusalAnswer,
    client::RequestClient,
    hosts::{self, AllowedHosts},
    params::{Params, ParamsError},
    routes::{MountedRoute, Routes},
};

fn routes() -> Routes<Arc<PinAuth>> {
    Routes::new()
        .post("/api/v1/auth/send_pin", send_pin)
        .post("/api/v1/auth/signup", signup)
        .post("/api/v1/auth/verify", verify)
        .get("/api/v1/auth/current_user_profile", current_user_profile)
        .post("/api/v1/auth/register_device", register_device)
}

/// The routes [`router`] mounts.
pub fn mounted() -> Vec<MountedRoute> {
    routes().table().to_vec()
}

pub fn router(pin_auth: Arc<PinAuth>, hosts: &AllowedHosts) -> Router {
    let router = routes()
        .into_router()
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

/// This surface's error body.
#[derive(Serialize, ToSchema)]
#[schema(as = PinAuthError, example = json!({"errors": "Mobile must begin with +852"}))]
struct ErrorBody<'a> {
    /// What went wrong, for people.
    errors: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let response = (self.status, Json(ErrorBody { errors: &self.message })).into_response();
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
            error @ (DeliveryError::Unavailable(_) | DeliveryError::Misconfigured(_) | DeliveryError::Rejected(_)) => {
                Self::unavailable(&error)
            }
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

#[derive(Serialize, ToSchema)]
#[schema(as = PinAuthOtpAuthKey)]
struct OtpAuthKeyBody {
    /// The key to send back with the pin to `verify`; it changes with every new pin.
    #[schema(example = "/JqONEgEjrZefDV3ZIQsNA==")]
    otp_auth_key: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/send_pin",
    operation_id = "pin_auth_send_pin",
    tag = TAG,
    summary = "Send a pin to a known mobile",
    description = "Texts a new 4-digit pin to the mobile if it has an account, and answers with the \
        `otp_auth_key` to send back with it. An unknown mobile gets a random key and no SMS, \
        with the same body and timing. Each new pin cycles the key.",
    request_body(content(
        (SendPinParams = "application/json"),
        (SendPinParams = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Sent, or an unknown mobile", body = OtpAuthKeyBody),
        (status = 400, description = "The parameters cannot be read", body = ErrorBody),
        (status = 403, description = "The Host is not in `security.allowed_hosts`", body = ErrorBody,
            example = json!({"errors": "Invalid host"})),
        (status = 422, description = "The mobile is blank, does not match the mobile rule, or is a number \
            phonegate does not send to", body = ErrorBody, example = json!({"errors": "Mobile can't be blank"})),
        (status = 429, description = "A rate limit or the SMS budget refuses the send", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The database or the rate limiter is unavailable", body = ErrorBody),
    )
)]
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

#[utoipa::path(
    post,
    path = "/api/v1/auth/signup",
    operation_id = "pin_auth_signup",
    tag = TAG,
    summary = "Create a user and send a pin",
    description = "Creates the user with its profile address and texts it a pin. If the mobile already \
        has an account, no user is created: the pin goes to the existing user and the other \
        parameters are ignored. Form clients use Rails keys, e.g. `user_auth[mobile]`.",
    request_body(content(
        (SignupParams = "application/json"),
        (SignupParams = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The pin was sent", body = OtpAuthKeyBody),
        (status = 400, description = "The parameters cannot be read", body = ErrorBody),
        (status = 403, description = "The Host is not in `security.allowed_hosts`", body = ErrorBody),
        (status = 422, description = "A missing `user_auth` or `address_attributes`, an invalid mobile, \
            a district that is not a number, or a name too long", body = ErrorBody),
        (status = 429, description = "A rate limit or the SMS budget refuses the send", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The database or the rate limiter is unavailable", body = ErrorBody),
    )
)]
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

#[derive(Serialize, ToSchema)]
#[schema(as = PinAuthAddress)]
struct AddressBody {
    id: i64,
    street: Option<String>,
    flat: Option<String>,
    building: Option<String>,
    district_id: Option<i64>,
    addressable_id: i64,
    /// Always `User`.
    addressable_type: &'static str,
}

#[derive(Serialize, ToSchema)]
#[schema(as = PinAuthPermission)]
struct PermissionBody {
    id: i64,
    name: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = PinAuthUserProfile)]
struct UserProfileBody {
    id: i64,
    first_name: Option<String>,
    last_name: Option<String>,
    /// The mobile without its country code, e.g. `98353103`.
    mobile: Option<String>,
    address_id: Option<i64>,
    permission_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = PinAuthProfile)]
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

#[derive(Serialize, ToSchema)]
#[schema(as = PinAuthSession)]
struct VerifyBody {
    /// Send it as `Authorization: Bearer <jwt_token>`.
    jwt_token: String,
    user: ProfileBody,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/verify",
    operation_id = "pin_auth_verify",
    tag = TAG,
    summary = "Exchange the key and pin for a JWT",
    description = "Checks the pin against the newest `otp_auth_key`. A pin is single use, valid for a \
        limited time, and allows at most 5 wrong tries.",
    request_body(content(
        (VerifyParams = "application/json"),
        (VerifyParams = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The pin is right: a JWT and the user", body = VerifyBody),
        (status = 400, description = "The parameters cannot be read", body = ErrorBody),
        (status = 403, description = "The Host is not in `security.allowed_hosts`", body = ErrorBody),
        (status = 422, description = "A missing key or pin, a wrong or expired pin, or too many tries",
            body = ErrorBody),
        (status = 429, description = "A rate limit refuses the check", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "The token could not be signed", body = ErrorBody),
        (status = 503, description = "The database, the rate limiter or the code provider is unavailable",
            body = ErrorBody),
    )
)]
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

#[utoipa::path(
    get,
    path = "/api/v1/auth/current_user_profile",
    operation_id = "pin_auth_current_user_profile",
    tag = TAG,
    summary = "The signed-in user",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user's addresses, permissions and profile", body = ProfileBody),
        (status = 401, description = "No, an invalid or an expired bearer token", body = ErrorBody,
            example = json!({"errors": "Unauthorized"})),
        (status = 403, description = "The Host is not in `security.allowed_hosts`", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
async fn current_user_profile(
    State(pin_auth): State<Arc<PinAuth>>,
    headers: HeaderMap,
) -> Result<Json<ProfileBody>, ApiError> {
    let profile = pin_auth.current_user_profile(bearer(&headers)).await?;
    Ok(Json(ProfileBody::new(profile, &pin_auth)))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/register_device",
    operation_id = "pin_auth_register_device",
    tag = TAG,
    summary = "Register the device's push handle",
    description = "Keeps the push registration (handle and platform) of the signed-in user's device; \
        registering the same handle again updates it.",
    security(("bearer" = [])),
    request_body(content(
        (RegisterDeviceParams = "application/json"),
        (RegisterDeviceParams = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 204, description = "Registered"),
        (status = 400, description = "The parameters cannot be read, or the handle or platform is invalid",
            body = ErrorBody),
        (status = 401, description = "No, an invalid or an expired bearer token", body = ErrorBody),
        (status = 403, description = "The Host is not in `security.allowed_hosts`", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
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

/// The tag of this surface's operations in the OpenAPI spec.
const TAG: &str = "pin-auth";

/// This surface's part of the OpenAPI spec.
#[derive(OpenApi)]
#[openapi(paths(send_pin, signup, verify, current_user_profile, register_device))]
pub(crate) struct Doc;

/// `send_pin`'s parameters.
#[derive(ToSchema)]
#[schema(as = PinAuthSendPinRequest, example = json!({"mobile": "+85261677528"}))]
#[expect(dead_code, reason = "it documents parameters that `Params` reads")]
struct SendPinParams {
    /// The mobile with its country code, e.g. `+85262345678`.
    mobile: String,
}

/// `signup`'s parameters.
#[derive(ToSchema)]
#[schema(as = PinAuthSignupRequest)]
#[expect(dead_code, reason = "it documents parameters that `Params` reads")]
struct SignupParams {
    user_auth: SignupUser,
}

#[derive(ToSchema)]
#[schema(as = PinAuthSignupUser)]
#[expect(dead_code, reason = "it documents parameters that `Params` reads")]
struct SignupUser {
    /// The mobile with its country code, e.g. `+85212345678`.
    mobile: String,
    /// Given name.
    #[schema(nullable = false)]
    first_name: Option<String>,
    /// Family name.
    #[schema(nullable = false)]
    last_name: Option<String>,
    address_attributes: SignupAddress,
}

#[derive(ToSchema)]
#[schema(as = PinAuthSignupAddress)]
#[expect(dead_code, reason = "it documents parameters that `Params` reads")]
struct SignupAddress {
    /// The district, as a number or numeric text.
    #[schema(schema_with = crate::openapi::integer_or_text)]
    district_id: Option<String>,
    /// e.g. `Profile` or `Collection`.
    #[schema(nullable = false)]
    address_type: Option<String>,
    #[schema(nullable = false)]
    street: Option<String>,
    #[schema(nullable = false)]
    flat: Option<String>,
    #[schema(nullable = false)]
    building: Option<String>,
}

/// `verify`'s parameters.
#[derive(ToSchema)]
#[schema(as = PinAuthVerifyRequest, example = json!({"otp_auth_key": "/JqONEgEjrZefDV3ZIQsNA==", "pin": "1234"}))]
#[expect(dead_code, reason = "it documents parameters that `Params` reads")]
struct VerifyParams {
    /// The newest key from `send_pin` or `signup`.
    otp_auth_key: String,
    /// The pin from the SMS.
    #[schema(schema_with = crate::openapi::integer_or_text)]
    pin: String,
}

/// `register_device`'s parameters.
#[derive(ToSchema)]
#[schema(as = PinAuthRegisterDeviceRequest, example = json!({"handle": "fcm-registration-id", "platform": "fcm"}))]
#[expect(dead_code, reason = "it documents parameters that `Params` reads")]
struct RegisterDeviceParams {
    /// The push service's registration id.
    handle: String,
    /// `fcm`, `gcm` or `aps`.
    platform: String,
}
