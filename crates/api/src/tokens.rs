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
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use phonegate_domain::{
    abuse::Refusal,
    ports::{DeliveryError, StoreError},
    token_auth::{
        CompleteResetError, IntrospectError, Introspection, PhoneVerificationError, ResetRequestError, SignInError,
        SignInRequest, TokenAuth, Unauthorized,
    },
};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::{OpenApi, ToSchema};

use crate::{
    RefusalAnswer,
    client::RequestClient,
    hosts::{self, AllowedHosts},
    params::{Params, ParamsError},
    routes::{MountedRoute, Routes},
};

/// `Retry-After` of a 503 for saturated password hashing: the queue holds
/// under about a second of hashes.
const HASHER_BUSY_RETRY: Duration = Duration::from_secs(1);

/// This surface's error: a status and the message for `{"error": …}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<Duration>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    fn unavailable(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "dependency unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service temporarily unavailable. Please try again later.",
        )
    }

    /// Every password-hashing thread is busy and the queue is full: a
    /// moment later there is room again.
    fn hasher_busy() -> Self {
        tracing::warn!("password hashing saturated; request refused");
        Self {
            retry_after: Some(HASHER_BUSY_RETRY),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service temporarily unavailable. Please try again later.",
            )
        }
    }

    fn refused(refusal: Refusal) -> Self {
        match crate::refusal_answer(refusal) {
            RefusalAnswer::TooMany(retry_after) => Self {
                retry_after,
                ..Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many requests. Please try again later.",
                )
            },
            RefusalAnswer::BadNumber => Self::unprocessable("Phone is invalid."),
            RefusalAnswer::Unavailable(error) => Self::unavailable(&error),
        }
    }

    fn delivery(error: DeliveryError) -> Self {
        match error {
            DeliveryError::RateLimited { retry_after } => Self {
                retry_after,
                ..Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many requests. Please try again later.",
                )
            },
            DeliveryError::InvalidNumber => Self::unprocessable("Phone is invalid."),
            error @ (DeliveryError::Unavailable(_) | DeliveryError::Misconfigured(_) | DeliveryError::Rejected(_)) => {
                Self::unavailable(&error)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let response = (self.status, Json(json!({"error": self.message}))).into_response();
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

impl From<Unauthorized> for ApiError {
    fn from(error: Unauthorized) -> Self {
        match error {
            Unauthorized::Token => Self::new(StatusCode::UNAUTHORIZED, error.to_string()),
            Unauthorized::Store(error) => error.into(),
        }
    }
}

impl From<SignInError> for ApiError {
    fn from(error: SignInError) -> Self {
        match error {
            SignInError::InvalidCredentials => Self::new(StatusCode::UNAUTHORIZED, error.to_string()),
            SignInError::Refused(refusal) => Self::refused(refusal),
            SignInError::HasherBusy => Self::hasher_busy(),
            SignInError::Store(error) => error.into(),
            SignInError::MissingCredentials
            | SignInError::UnknownApplication
            | SignInError::InvalidMobileOs
            | SignInError::InvalidDeviceToken => Self::unprocessable(error.to_string()),
        }
    }
}

impl From<ResetRequestError> for ApiError {
    fn from(error: ResetRequestError) -> Self {
        match error {
            ResetRequestError::InvalidEmail(error) => Self::unprocessable(error.to_string()),
            ResetRequestError::Store(error) => error.into(),
            ResetRequestError::Refused(refusal) => Self::refused(refusal),
        }
    }
}

impl From<CompleteResetError> for ApiError {
    fn from(error: CompleteResetError) -> Self {
        match error {
            CompleteResetError::Store(error) => error.into(),
            CompleteResetError::Refused(refusal) => Self::refused(refusal),
            CompleteResetError::HasherBusy => Self::hasher_busy(),
            other => Self::unprocessable(other.to_string()),
        }
    }
}

impl From<PhoneVerificationError> for ApiError {
    fn from(error: PhoneVerificationError) -> Self {
        match error {
            PhoneVerificationError::Unauthorized(error) => error.into(),
            PhoneVerificationError::Delivery(error) => Self::delivery(error),
            PhoneVerificationError::Refused(refusal) => Self::refused(refusal),
            PhoneVerificationError::Store(error) => error.into(),
            other => Self::unprocessable(other.to_string()),
        }
    }
}

impl From<IntrospectError> for ApiError {
    fn from(error: IntrospectError) -> Self {
        match error {
            IntrospectError::Unauthorized => Self::new(StatusCode::UNAUTHORIZED, error.to_string()),
            IntrospectError::MissingToken => Self::unprocessable(error.to_string()),
            IntrospectError::Refused(refusal) => Self::refused(refusal),
            IntrospectError::Store(error) => error.into(),
        }
    }
}

/// Holds a response back until `floor` has passed since the request came.
async fn pad(
    axum::extract::State(floor): axum::extract::State<std::time::Duration>,
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
pub fn router(token_auth: Arc<TokenAuth>, hosts: &AllowedHosts, reset_floor: std::time::Duration) -> Router {
    let router = routes(reset_floor)
        .into_router()
        .with_state(token_auth)
        .method_not_allowed_fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed") });
    hosts::guard(router, hosts, || {
        ApiError::new(StatusCode::FORBIDDEN, "Invalid host").into_response()
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    operation_id = "tokens_sign_in",
    tag = TAG,
    summary = "Sign in with email and password",
    description = "Signs in and issues an opaque token for the device. With `app_id`, the token is the named \
        application's. Also at `/api/v1/tokens.json`.",
    request_body(content(
        (SignInParams = "application/x-www-form-urlencoded"),
        (SignInParams = "application/json"),
    )),
    responses(
        (status = 200, description = "Signed in", body = SignInBody),
        (status = 400, description = "The parameters cannot be read", body = ErrorBody),
        (status = 403, description = "The Host is not in `security.allowed_hosts`", body = ErrorBody),
        (status = 401, description = "A wrong email or password", body = ErrorBody,
            example = json!({"error": "Invalid email or password."})),
        (status = 422, description = "A missing email or password, an unknown `app_id`, or an invalid \
            `mobile_os` or `device_token`", body = ErrorBody),
        (status = 429, description = "Too many sign-in tries from this client or for this email", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "A dependency is unavailable, or password checks are saturated (then with \
            `Retry-After`)", body = ErrorBody),
    )
)]
async fn sign_in(
    State(token_auth): State<Arc<TokenAuth>>,
    RequestClient(client): RequestClient,
    params: Result<Params, ParamsError>,
) -> Result<Json<SignInBody>, ApiError> {
    let params = params?;
    let (email, password, device_token, mobile_os, app_id) = (
        params.text("email"),
        params.text("password"),
        params.text("device_token"),
        params.text("mobile_os"),
        params.text("app_id"),
    );
    let signed_in = token_auth
        .sign_in(
            SignInRequest {
                email: email.as_deref(),
                password: password.as_deref(),
                device_token: device_token.as_deref(),
                mobile_os: mobile_os.as_deref(),
                app_id: app_id.as_deref(),
            },
            &client,
        )
        .await?;
    Ok(Json(SignInBody {
        token: signed_in.token.expose().to_owned(),
        user_info: UserInfo {
            id: signed_in.user.id.get(),
            first_name: signed_in.user.first_name,
            last_name: signed_in.user.last_name,
        },
    }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{user_id}",
    operation_id = "tokens_sign_out",
    tag = TAG,
    summary = "Sign out",
    description = "Revokes the session token of the given user (and forgets the push token if `apn_token` is given).",
    params(("user_id" = String, Path, description = "The user's id, optionally with `.json` (`/api/v1/tokens/1.json`).")),
    request_body(content(
        (SignOutParams = "application/x-www-form-urlencoded"),
        (SignOutParams = "application/json"),
    )),
    responses(
        (status = 200, description = "Signed out", body = MessageBody,
            example = json!({"message": "User signed out."})),
        (status = 400, description = "The parameters cannot be read", body = ErrorBody),
        (status = 403, description = "The Host is not in `security.allowed_hosts`", body = ErrorBody),
        (status = 401, description = "A missing or revoked `auth_token`, or another user's", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable", body = ErrorBody),
    )
)]
async fn sign_out(
    State(token_auth): State<Arc<TokenAuth>>,
    user_id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    params: Result<Params, ParamsError>,
) -> Result<Json<MessageBody>, ApiError> {
    let params = params?;
    let Path(user_id) = user_id.map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "Invalid user id."))?;
    let user_id = user_id.strip_suffix(".json").unwrap_or(&user_id);
    let (auth_token, apn_token) = (params.text("auth_token"), params.text("apn_token"));
    token_auth
        .sign_out(user_id, auth_token.as_deref(), apn_token.as_deref())
        .await?;
    Ok(Json(MessageBody {
        message: "User signed out.",
    }))
}

/// The seed's message, typo included: existing clients may compare it.
const RESET_MESSAGE: &str =
    "Please check the email associated with this account for instructions on how to reset you password";

#[utoipa::path(
    post,
    path = "/api/v1/tokens/reset",
    operation_id = "tokens_request_reset",
    tag = TAG,
    summary = "Email password-reset instructions",
    description = "Emails a reset link if the email has an account; the answer is the same, and no sooner than a \
        configured floor, either way.",
    request_body(content(
        (ResetParams = "application/x-www-form-urlencoded"),
        (ResetParams = "application/json"),
    )),
    responses(
        (status = 200, description = "Sent, or an unknown email", body = MessageBody),
        (status = 400, description = "The parameters cannot be read", body = ErrorBody),
        (status = 403, description = "The Host is not in `security.allowed_hosts`", body = ErrorBody),
        (status = 422, description = "An invalid email", body = ErrorBody),
        (status = 429, description = "A rate limit refuses it", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "A dependency is unavailable", body = ErrorBody),
    )
)]
async fn request_reset(
    State(token_auth): State<Arc<TokenAuth>>,
    RequestClient(client): RequestClient,
    params: Result<Params, ParamsError>,
) -> Result<Json<MessageBody>, ApiError> {
    let params = params?;
    let email = params.text("email");
    token_auth.request_password_reset(email.as_deref(), &client).await?;
    Ok(Json(MessageBody { message: RESET_MESSAGE }))
}

#[utoipa::path(
    put,
    path = "/api/v1/tokens/reset",
    operation_id = "tokens_complete_reset",
    tag = TAG,
    summary = "Set a new password with a reset token",
    description = "Completes a reset: the token from the email, the new password and its confirmation. The token is \
        single use; existing sessions end.",
    request_body(content(
        (CompleteResetParams = "application/x-www-form-urlencoded"),
        (CompleteResetParams = "application/json"),
    )),
    responses(
        (status = 200, description = "Changed", body = MessageBody,
            example = json!({"message": "Your password has been changed."})),
        (status = 400, description = "The parameters cannot be read", body = ErrorBody),
        (status = 403, description = "The Host is not in `security.allowed_hosts`", body = ErrorBody),
        (status = 422, description = "A missing, invalid, used or expired token, or a password that is too \
            short, too common, or does not match its confirmation", body = ErrorBody,
            example = json!({"error": "Password is too common. Please choose a less common password."})),
        (status = 429, description = "Too many token checks from this client", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "A dependency is unavailable, or password hashing is saturated (then \
            with `Retry-After`)", body = ErrorBody),
    )
)]
async fn complete_reset(
    State(token_auth): State<Arc<TokenAuth>>,
    RequestClient(client): RequestClient,
    params: Result<Params, ParamsError>,
) -> Result<Json<MessageBody>, ApiError> {
    let params = params?;
    let (token, password, confirmation) = (
        params.text("reset_token"),
        params.text("password"),
        params.text("password_confirmation"),
    );
    token_auth
        .complete_password_reset(token.as_deref(), password.as_deref(), confirmation.as_deref(), &client)
        .await?;
    Ok(Json(MessageBody {
        message: "Your password has been changed.",
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/settings/send_phone_verification",
    operation_id = "tokens_send_phone_verification",
    tag = TAG,
    summary = "Text a code to verify the user's phone",
    description = "For a signed-in user: texts a verification code to the phone, e.g. `(123)456-7890` (national numbers \
        are read in the default region).",
    request_body(content(
        (SendPhoneVerificationParams = "application/x-www-form-urlencoded"),
        (SendPhoneVerificationParams = "application/json"),
    )),
    responses(
        (status = 200, description = "Sent", body = MessageBody, example = json!({"message": "Verification code sent."})),
        (status = 400, description = "The parameters cannot be read", body = ErrorBody),
        (status = 403, description = "The Host is not in `security.allowed_hosts`", body = ErrorBody),
        (status = 401, description = "A missing or revoked `auth_token`", body = ErrorBody),
        (status = 422, description = "A blank, invalid or taken phone, or one phonegate does not send to",
            body = ErrorBody),
        (status = 429, description = "A rate limit refuses it", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "A dependency is unavailable", body = ErrorBody),
    )
)]
async fn send_phone_verification(
    State(token_auth): State<Arc<TokenAuth>>,
    RequestClient(client): RequestClient,
    params: Result<Params, ParamsError>,
) -> Result<Json<MessageBody>, ApiError> {
    let params = params?;
    let (auth_token, phone) = (params.text("auth_token"), params.text("phone"));
    token_auth
        .send_phone_verification(auth_token.as_deref(), phone.as_deref(), &client)
        .await?;
    Ok(Json(MessageBody {
        message: "Verification code sent.",
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/settings/verify_phone",
    operation_id = "tokens_verify_phone",
    tag = TAG,
    summary = "Confirm the user's phone with the code",
    description = "For a signed-in user: checks the code texted by `send_phone_verification` (single use, at most 5 \
        wrong tries) and confirms the phone.",
    request_body(content(
        (VerifyPhoneParams = "application/x-www-form-urlencoded"),
        (VerifyPhoneParams = "application/json"),
    )),
    responses(
        (status = 200, description = "Confirmed", body = MessageBody,
            example = json!({"message": "Your number was successfully confirmed."})),
        (status = 400, description = "The parameters cannot be read", body = ErrorBody),
        (status = 403, description = "The Host is not in `security.allowed_hosts`", body = ErrorBody),
        (status = 401, description = "A missing or revoked `auth_token`", body = ErrorBody),
        (status = 422, description = "A blank, wrong or expired code, too many tries, or a taken phone",
            body = ErrorBody),
        (status = 429, description = "A rate limit refuses it", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "A dependency is unavailable", body = ErrorBody),
    )
)]
async fn verify_phone(
    State(token_auth): State<Arc<TokenAuth>>,
    RequestClient(client): RequestClient,
    params: Result<Params, ParamsError>,
) -> Result<Json<MessageBody>, ApiError> {
    let params = params?;
    let (auth_token, token) = (params.text("auth_token"), params.text("token"));
    token_auth
        .verify_phone(auth_token.as_deref(), token.as_deref(), &client)
        .await?;
    Ok(Json(MessageBody {
        message: "Your number was successfully confirmed.",
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/tokens/introspect",
    operation_id = "tokens_introspect",
    tag = TAG,
    summary = "Introspect a token (for servers)",
    description = "RFC 7662 introspection of a user's token (opaque, JWT or access code), authenticated by an \
        application's `auth_token`.",
    request_body(content(
        (IntrospectParams = "application/x-www-form-urlencoded"),
        (IntrospectParams = "application/json"),
    )),
    responses(
        (status = 200, description = "Whether the token is active, and whose", body = IntrospectionBody),
        (status = 400, description = "The parameters cannot be read", body = ErrorBody),
        (status = 403, description = "The Host is not in `security.allowed_hosts`", body = ErrorBody),
        (status = 401, description = "A missing or unknown application `auth_token`", body = ErrorBody),
        (status = 422, description = "A missing `token`", body = ErrorBody),
        (status = 429, description = "Too many token checks from this client", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "A dependency is unavailable", body = ErrorBody),
    )
)]
/// RFC 7662 token introspection, authenticated by an application's auth_token.
async fn introspect(
    State(token_auth): State<Arc<TokenAuth>>,
    RequestClient(client): RequestClient,
    params: Result<Params, ParamsError>,
) -> Result<Json<Value>, ApiError> {
    let params = params?;
    let (auth_token, token) = (params.text("auth_token"), params.text("token"));
    let body = match token_auth
        .introspect(auth_token.as_deref(), token.as_deref(), &client)
        .await?
    {
        Introspection::Inactive => json!({"active": false}),
        Introspection::Active {
            user_id,
            token_type,
            issued_at,
            expires_at,
            client_id,
        } => {
            let mut body = json!({
                "active": true,
                "sub": user_id.get().to_string(),
                "user_id": user_id.get(),
                "exp": expires_at.unix_seconds(),
                "token_type": token_type,
            });
            if let Some(issued_at) = issued_at {
                body["iat"] = json!(issued_at.unix_seconds());
            }
            if let Some(client_id) = client_id {
                body["client_id"] = json!(client_id);
            }
            body
        }
    };
    Ok(Json(body))
}

/// The tag of this surface's operations in the OpenAPI spec.
pub(crate) const TAG: &str = "tokens";

/// This surface's part of the OpenAPI spec, without the `.json` twins
/// (`crate::openapi` adds them).
#[derive(OpenApi)]
#[openapi(paths(
    sign_in,
    sign_out,
    request_reset,
    complete_reset,
    introspect,
    send_phone_verification,
    verify_phone
))]
pub(crate) struct Doc;

/// This surface's error body.
#[derive(Serialize, ToSchema)]
#[schema(as = TokensError, example = json!({"error": "Invalid or missing auth_token."}))]
struct ErrorBody {
    error: String,
}

/// A success message.
#[derive(Serialize, ToSchema)]
#[schema(as = TokensMessage)]
struct MessageBody {
    message: &'static str,
}

#[derive(Serialize, ToSchema)]
#[schema(as = TokensSignIn)]
struct SignInBody {
    /// The session token: `auth_token` in later requests.
    token: String,
    user_info: UserInfo,
}

#[derive(Serialize, ToSchema)]
#[schema(as = TokensUserInfo)]
struct UserInfo {
    id: i64,
    first_name: Option<String>,
    last_name: Option<String>,
}

/// RFC 7662's answer; only `active` when the token is not.
#[derive(Serialize, ToSchema)]
#[schema(as = TokensIntrospection, example = json!({
    "active": true, "sub": "1", "user_id": 1, "exp": 1_800_000_000, "iat": 1_790_000_000,
    "token_type": "opaque", "client_id": "ios-app"
}))]
struct IntrospectionBody {
    active: bool,
    /// The user id as text.
    #[schema(nullable = false)]
    sub: Option<String>,
    #[schema(nullable = false)]
    user_id: Option<i64>,
    /// Expiry, Unix seconds.
    #[schema(nullable = false)]
    exp: Option<i64>,
    /// Issue time, Unix seconds.
    #[schema(nullable = false)]
    iat: Option<i64>,
    /// `opaque`, `jwt` or `access_code`.
    #[schema(nullable = false)]
    token_type: Option<String>,
    /// The application the token was issued through.
    #[schema(nullable = false)]
    client_id: Option<String>,
}

/// Sign-in parameters.
#[derive(ToSchema)]
#[schema(as = TokensSignInRequest, example = json!({
    "email": "admin@example.com", "password": "password", "device_token": "324628746283682634", "mobile_os": "ios"
}))]
#[expect(dead_code, reason = "it documents parameters that `Params` reads")]
struct SignInParams {
    email: String,
    password: String,
    /// The device's unique id, e.g. an iOS UDID.
    #[schema(nullable = false)]
    device_token: Option<String>,
    /// `android` or `ios`.
    #[schema(nullable = false)]
    mobile_os: Option<String>,
    /// The application the user signs in through.
    #[schema(nullable = false)]
    app_id: Option<String>,
}

/// Sign-out parameters.
#[derive(ToSchema)]
#[schema(as = TokensSignOutRequest)]
#[expect(dead_code, reason = "it documents parameters that `Params` reads")]
struct SignOutParams {
    auth_token: String,
    /// A push token to forget.
    #[schema(nullable = false)]
    apn_token: Option<String>,
}

#[derive(ToSchema)]
#[schema(as = TokensResetRequest, example = json!({"email": "admin@example.com"}))]
#[expect(dead_code, reason = "it documents parameters that `Params` reads")]
struct ResetParams {
    email: String,
}

#[derive(ToSchema)]
#[schema(as = TokensCompleteResetRequest)]
#[expect(dead_code, reason = "it documents parameters that `Params` reads")]
struct CompleteResetParams {
    /// The token from the reset email.
    reset_token: String,
    password: String,
    password_confirmation: String,
}

#[derive(ToSchema)]
#[schema(as = TokensIntrospectRequest)]
#[expect(dead_code, reason = "it documents parameters that `Params` reads")]
struct IntrospectParams {
    /// The application's auth_token.
    auth_token: String,
    /// The user's token to introspect.
    token: String,
}

#[derive(ToSchema)]
#[schema(as = TokensSendPhoneVerificationRequest, example = json!({"auth_token": "2zLJaxqVzKJgQ0XfYIg8Wg", "phone": "(123)456-7890"}))]
#[expect(dead_code, reason = "it documents parameters that `Params` reads")]
struct SendPhoneVerificationParams {
    /// The user's session token.
    auth_token: String,
    phone: String,
}

#[derive(ToSchema)]
#[schema(as = TokensVerifyPhoneRequest, example = json!({"auth_token": "2zLJaxqVzKJgQ0XfYIg8Wg", "token": "1988"}))]
#[expect(dead_code, reason = "it documents parameters that `Params` reads")]
struct VerifyPhoneParams {
    /// The user's session token.
    auth_token: String,
    /// The code texted to the phone.
    #[schema(schema_with = crate::openapi::integer_or_text)]
    token: String,
}
