//! The tokens surface's handlers: each decodes its request type, converts
//! it into the domain's values, runs the use case and words the answer.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
};
use phonegate_domain::{
    token_auth::{Introspection, TokenAuth},
    user::UserId,
};
use serde_json::{Value, json};

use super::{
    TAG,
    error::{ApiError, Rejection},
    requests::{
        CompleteResetRequest, IntrospectRequest, ResetRequest, SendPhoneVerificationRequest, SignInRequest,
        SignOutRequest, VerifyPhoneRequest,
    },
    responses::{ErrorBody, IntrospectionBody, MessageBody, SignInBody, UserInfo},
};
use crate::{client::RequestClient, params::Decoded};

#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    operation_id = "tokens_sign_in",
    tag = TAG,
    summary = "Sign in with email and password",
    description = "Signs in and issues an opaque token for the device. With `app_id`, the token is the named \
        application's. Also at `/api/v1/tokens.json`.",
    request_body(content(
        (SignInRequest = "application/x-www-form-urlencoded"),
        (SignInRequest = "application/json"),
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
pub(super) async fn sign_in(
    State(token_auth): State<Arc<TokenAuth>>,
    RequestClient(client): RequestClient,
    Decoded(request, ..): Decoded<SignInRequest, ApiError>,
) -> Result<Json<SignInBody>, ApiError> {
    let request = request.into_domain()?;
    let signed_in = token_auth.sign_in(request, &client).await?;
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
        (SignOutRequest = "application/x-www-form-urlencoded"),
        (SignOutRequest = "application/json"),
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
pub(super) async fn sign_out(
    State(token_auth): State<Arc<TokenAuth>>,
    user_id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    Decoded(request, ..): Decoded<SignOutRequest, ApiError>,
) -> Result<Json<MessageBody>, ApiError> {
    let Path(user_id) = user_id.map_err(|_| Rejection::UnreadablePath)?;
    let session = token_auth.authenticate(&request.session_token()?).await?;
    // Checked after the token, as the Rails API did: an unreadable id is
    // answered as a refused token.
    let user_id: i64 = user_id
        .strip_suffix(".json")
        .unwrap_or(&user_id)
        .trim()
        .parse()
        .map_err(|_| Rejection::UnreadableUserId)?;
    token_auth
        .sign_out(&session, UserId::new(user_id), request.push_token())
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
        (ResetRequest = "application/x-www-form-urlencoded"),
        (ResetRequest = "application/json"),
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
pub(super) async fn request_reset(
    State(token_auth): State<Arc<TokenAuth>>,
    RequestClient(client): RequestClient,
    Decoded(request, ..): Decoded<ResetRequest, ApiError>,
) -> Result<Json<MessageBody>, ApiError> {
    let email = request.email()?;
    token_auth.request_password_reset(&email, &client).await?;
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
        (CompleteResetRequest = "application/x-www-form-urlencoded"),
        (CompleteResetRequest = "application/json"),
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
pub(super) async fn complete_reset(
    State(token_auth): State<Arc<TokenAuth>>,
    RequestClient(client): RequestClient,
    Decoded(request, ..): Decoded<CompleteResetRequest, ApiError>,
) -> Result<Json<MessageBody>, ApiError> {
    let reset = request.into_domain()?;
    token_auth.complete_password_reset(&reset, &client).await?;
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
        (SendPhoneVerificationRequest = "application/x-www-form-urlencoded"),
        (SendPhoneVerificationRequest = "application/json"),
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
pub(super) async fn send_phone_verification(
    State(token_auth): State<Arc<TokenAuth>>,
    RequestClient(client): RequestClient,
    Decoded(request, ..): Decoded<SendPhoneVerificationRequest, ApiError>,
) -> Result<Json<MessageBody>, ApiError> {
    let session = token_auth.authenticate(&request.session_token()?).await?;
    let phone = request.phone(token_auth.phones())?;
    token_auth.send_phone_verification(&session, &phone, &client).await?;
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
        (VerifyPhoneRequest = "application/x-www-form-urlencoded"),
        (VerifyPhoneRequest = "application/json"),
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
pub(super) async fn verify_phone(
    State(token_auth): State<Arc<TokenAuth>>,
    RequestClient(client): RequestClient,
    Decoded(request, ..): Decoded<VerifyPhoneRequest, ApiError>,
) -> Result<Json<MessageBody>, ApiError> {
    let session = token_auth.authenticate(&request.session_token()?).await?;
    let code = request.code(token_auth.phone_code_length())?;
    token_auth.verify_phone(&session, &code, &client).await?;
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
        (IntrospectRequest = "application/x-www-form-urlencoded"),
        (IntrospectRequest = "application/json"),
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
pub(super) async fn introspect(
    State(token_auth): State<Arc<TokenAuth>>,
    RequestClient(client): RequestClient,
    Decoded(request, ..): Decoded<IntrospectRequest, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let application = token_auth
        .authorize_application(request.application_token().as_ref(), &client)
        .await?;
    let token = request.token()?;
    let body = match token_auth.introspect(&application, &token).await? {
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
