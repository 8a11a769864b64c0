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
    routing::{delete, post},
};
use phonegate_domain::{
    abuse::Refusal,
    ports::{DeliveryError, StoreError},
    token_auth::{
        CompleteResetError, IntrospectError, Introspection, PhoneVerificationError, ResetRequestError, SignInError,
        SignInRequest, TokenAuth, Unauthorized,
    },
};
use serde_json::{Value, json};

use crate::{
    RefusalAnswer,
    client::RequestClient,
    hosts::{self, AllowedHosts},
    params::{Params, ParamsError},
};

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
            error @ (DeliveryError::Unavailable(_) | DeliveryError::Misconfigured(_)) => Self::unavailable(&error),
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
            IntrospectError::Store(error) => error.into(),
        }
    }
}

/// `path` and `path.json`, as Rails routes `(.:format)`.
fn both<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    path: &str,
    method: axum::routing::MethodRouter<S>,
) -> Router<S> {
    router
        .route(path, method.clone())
        .route(&format!("{path}.json"), method)
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

/// `reset_floor`: the least time a reset request takes to answer. The
/// work for known and unknown emails is the same, but not to the
/// microsecond (a known email also writes the reset row); answering no
/// sooner than this hides what is left.
pub fn router(token_auth: Arc<TokenAuth>, hosts: &AllowedHosts, reset_floor: std::time::Duration) -> Router {
    let mut router = Router::new();
    router = both(router, "/api/v1/tokens", post(sign_in));
    let request_reset = post(request_reset).layer(axum::middleware::from_fn_with_state(reset_floor, pad));
    router = both(router, "/api/v1/tokens/reset", request_reset.put(complete_reset));
    router = both(router, "/api/v1/tokens/introspect", post(introspect));
    router = both(
        router,
        "/api/v1/settings/send_phone_verification",
        post(send_phone_verification),
    );
    router = both(router, "/api/v1/settings/verify_phone", post(verify_phone));
    // `:user_id(.:format)`: the handler strips a `.json` suffix itself.
    let router = router
        .route("/api/v1/tokens/{user_id}", delete(sign_out))
        .with_state(token_auth)
        .method_not_allowed_fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed") });
    hosts::guard(router, hosts, || {
        ApiError::new(StatusCode::FORBIDDEN, "Invalid host").into_response()
    })
}

async fn sign_in(
    State(token_auth): State<Arc<TokenAuth>>,
    params: Result<Params, ParamsError>,
) -> Result<Json<Value>, ApiError> {
    let params = params?;
    let (email, password, device_token, mobile_os, app_id) = (
        params.text("email"),
        params.text("password"),
        params.text("device_token"),
        params.text("mobile_os"),
        params.text("app_id"),
    );
    let signed_in = token_auth
        .sign_in(SignInRequest {
            email: email.as_deref(),
            password: password.as_deref(),
            device_token: device_token.as_deref(),
            mobile_os: mobile_os.as_deref(),
            app_id: app_id.as_deref(),
        })
        .await?;
    Ok(Json(json!({
        "token": signed_in.token.expose(),
        "user_info": {
            "id": signed_in.user.id.get(),
            "first_name": signed_in.user.first_name,
            "last_name": signed_in.user.last_name,
        }
    })))
}

async fn sign_out(
    State(token_auth): State<Arc<TokenAuth>>,
    user_id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    params: Result<Params, ParamsError>,
) -> Result<Json<Value>, ApiError> {
    let params = params?;
    let Path(user_id) = user_id.map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "Invalid user id."))?;
    let user_id = user_id.strip_suffix(".json").unwrap_or(&user_id);
    let (auth_token, apn_token) = (params.text("auth_token"), params.text("apn_token"));
    token_auth
        .sign_out(user_id, auth_token.as_deref(), apn_token.as_deref())
        .await?;
    Ok(Json(json!({"message": "User signed out."})))
}

/// The seed's message, typo included: existing clients may compare it.
const RESET_MESSAGE: &str =
    "Please check the email associated with this account for instructions on how to reset you password";

async fn request_reset(
    State(token_auth): State<Arc<TokenAuth>>,
    RequestClient(client): RequestClient,
    params: Result<Params, ParamsError>,
) -> Result<Json<Value>, ApiError> {
    let params = params?;
    let email = params.text("email");
    token_auth.request_password_reset(email.as_deref(), &client).await?;
    Ok(Json(json!({"message": RESET_MESSAGE})))
}

async fn complete_reset(
    State(token_auth): State<Arc<TokenAuth>>,
    params: Result<Params, ParamsError>,
) -> Result<Json<Value>, ApiError> {
    let params = params?;
    let (token, password, confirmation) = (
        params.text("reset_token"),
        params.text("password"),
        params.text("password_confirmation"),
    );
    token_auth
        .complete_password_reset(token.as_deref(), password.as_deref(), confirmation.as_deref())
        .await?;
    Ok(Json(json!({"message": "Your password has been changed."})))
}

async fn send_phone_verification(
    State(token_auth): State<Arc<TokenAuth>>,
    RequestClient(client): RequestClient,
    params: Result<Params, ParamsError>,
) -> Result<Json<Value>, ApiError> {
    let params = params?;
    let (auth_token, phone) = (params.text("auth_token"), params.text("phone"));
    token_auth
        .send_phone_verification(auth_token.as_deref(), phone.as_deref(), &client)
        .await?;
    Ok(Json(json!({"message": "Verification code sent."})))
}

async fn verify_phone(
    State(token_auth): State<Arc<TokenAuth>>,
    RequestClient(client): RequestClient,
    params: Result<Params, ParamsError>,
) -> Result<Json<Value>, ApiError> {
    let params = params?;
    let (auth_token, token) = (params.text("auth_token"), params.text("token"));
    token_auth
        .verify_phone(auth_token.as_deref(), token.as_deref(), &client)
        .await?;
    Ok(Json(json!({"message": "Your number was successfully confirmed."})))
}

/// RFC 7662 token introspection, authenticated by an application's auth_token.
async fn introspect(
    State(token_auth): State<Arc<TokenAuth>>,
    params: Result<Params, ParamsError>,
) -> Result<Json<Value>, ApiError> {
    let params = params?;
    let (auth_token, token) = (params.text("auth_token"), params.text("token"));
    let body = match token_auth.introspect(auth_token.as_deref(), token.as_deref()).await? {
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
