//! The tokens surface's error: each cause, from the edge or the domain,
//! and the `{"error": "<message>"}` answer its clients parse. Every wire
//! text of the surface is written here, exactly as the Rails API it
//! replaces answered.

use std::{borrow::Cow, time::Duration};

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use phonegate_domain::{
    StoreError,
    abuse::Refusal,
    account::{EmailError, PasswordError},
    ports::DeliveryError,
    token_auth::{
        CompleteResetError, ConfirmPhoneError, IntrospectError, ResetRequestError, SendPhoneCodeError, SignInError,
        Unauthorized,
    },
};
use serde_json::json;

use crate::{failure::Failure, params::ParamsError};

/// `Retry-After` of a 503 for saturated password hashing: the queue holds
/// under about a second of hashes.
const HASHER_BUSY_RETRY: Duration = Duration::from_secs(1);

const INVALID_AUTH_TOKEN: &str = "Invalid or missing auth_token.";
const INVALID_APP_TOKEN: &str = "Invalid or missing application auth_token.";
const INVALID_CREDENTIALS: &str = "Invalid email or password.";
const TOO_MANY_REQUESTS: &str = "Too many requests. Please try again later.";
const UNAVAILABLE: &str = "Service temporarily unavailable. Please try again later.";
const INVALID_PHONE: &str = "Phone is invalid.";

/// A value the edge refused before any use case ran, named by cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rejection {
    /// Sign-in without an email or a password.
    MissingCredentials,
    UnknownMobileOs,
    DeviceTokenTooLong,
    /// No session `auth_token` (answered as a refused one).
    MissingAuthToken,
    /// Sign-out's user id is not a number (answered as a refused token).
    UnreadableUserId,
    /// The `user_id` path segment could not be read at all.
    UnreadablePath,
    InvalidEmail(EmailError),
    MissingResetToken,
    MissingPhone,
    InvalidPhone,
    MissingCode,
    /// The code is not a code of the configured length.
    MalformedCode,
    /// Introspection without the `token` to introspect.
    MissingToken,
    /// The method is not routed at this path.
    MethodNotAllowed,
    /// The Host is not in `security.allowed_hosts`.
    ForbiddenHost,
}

/// This surface's error: a refusal with its status and text, or a shared
/// [`Failure`] with the text this surface gives it.
#[derive(Debug)]
pub(crate) enum ApiError {
    Refused {
        status: StatusCode,
        message: Cow<'static, str>,
    },
    Failed {
        failure: Failure,
        message: &'static str,
    },
}

impl ApiError {
    fn unprocessable(message: &'static str) -> Self {
        Self::Refused {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: Cow::Borrowed(message),
        }
    }

    /// A refused token; `reason` names the check for the log.
    fn unauthorized(message: &'static str, reason: &'static str) -> Self {
        Self::Failed {
            failure: Failure::Unauthorized { reason },
            message,
        }
    }

    /// Every password-hashing thread is busy and the queue is full: a
    /// moment later there is room again.
    fn hasher_busy(source: impl Into<crate::failure::Source>) -> Self {
        Failure::Unavailable {
            source: source.into(),
            retry_after: Some(HASHER_BUSY_RETRY),
        }
        .into()
    }
}

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        let message = match &failure {
            // Every 401 is built with its own text; this one is not reached.
            Failure::Unauthorized { .. } => INVALID_AUTH_TOKEN,
            Failure::TooManyRequests { .. } => TOO_MANY_REQUESTS,
            Failure::UndeliverableNumber => INVALID_PHONE,
            Failure::Unavailable { .. } | Failure::Internal(_) => UNAVAILABLE,
        };
        Self::Failed { failure, message }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Refused { status, message } => (status, Json(json!({"error": message}))).into_response(),
            Self::Failed { failure, message } => {
                let response = (failure.status(), Json(json!({"error": message}))).into_response();
                failure.finish(response)
            }
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::MissingCredentials => Self::unprocessable("Email and password are required."),
            Rejection::UnknownMobileOs => Self::unprocessable("mobile_os must be android or ios."),
            Rejection::DeviceTokenTooLong => Self::unprocessable("device_token is too long."),
            Rejection::MissingAuthToken => Self::unauthorized(INVALID_AUTH_TOKEN, "no session token"),
            Rejection::UnreadableUserId => Self::unauthorized(INVALID_AUTH_TOKEN, "sign-out user id is not a number"),
            Rejection::UnreadablePath => Self::Refused {
                status: StatusCode::BAD_REQUEST,
                message: Cow::Borrowed("Invalid user id."),
            },
            Rejection::InvalidEmail(EmailError::Blank) => Self::unprocessable("Email can't be blank"),
            Rejection::InvalidEmail(EmailError::Invalid) => Self::unprocessable("Email is invalid"),
            Rejection::MissingResetToken => Self::unprocessable("reset_token is required."),
            Rejection::MissingPhone => Self::unprocessable("Phone can't be blank."),
            Rejection::InvalidPhone => Self::unprocessable(INVALID_PHONE),
            Rejection::MissingCode => Self::unprocessable("Token can't be blank."),
            Rejection::MalformedCode => Self::unprocessable(VERIFICATION_CODE_INVALID),
            Rejection::MissingToken => Self::unprocessable("token is required."),
            Rejection::MethodNotAllowed => Self::Refused {
                status: StatusCode::METHOD_NOT_ALLOWED,
                message: Cow::Borrowed("Method not allowed"),
            },
            Rejection::ForbiddenHost => Self::Refused {
                status: StatusCode::FORBIDDEN,
                message: Cow::Borrowed("Invalid host"),
            },
        }
    }
}

const VERIFICATION_CODE_INVALID: &str = "Verification code is invalid.";
const TOO_COMMON: &str = "Password is too common. Please choose a less common password.";

impl From<ParamsError> for ApiError {
    fn from(error: ParamsError) -> Self {
        Self::Refused {
            status: StatusCode::BAD_REQUEST,
            message: Cow::Owned(error.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Failure::from(error).into()
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        Failure::from(refusal).into()
    }
}

impl From<DeliveryError> for ApiError {
    fn from(error: DeliveryError) -> Self {
        Failure::from(error).into()
    }
}

impl From<Unauthorized> for ApiError {
    fn from(error: Unauthorized) -> Self {
        match error {
            Unauthorized::UnknownToken => Self::unauthorized(INVALID_AUTH_TOKEN, "unknown session token"),
            Unauthorized::Revoked => Self::unauthorized(INVALID_AUTH_TOKEN, "revoked session token"),
            Unauthorized::Expired => Self::unauthorized(INVALID_AUTH_TOKEN, "expired session token"),
            Unauthorized::OtherUser => Self::unauthorized(INVALID_AUTH_TOKEN, "another user's session token"),
            Unauthorized::Store(error) => error.into(),
        }
    }
}

impl From<SignInError> for ApiError {
    fn from(error: SignInError) -> Self {
        match error {
            SignInError::InvalidCredentials => Self::unauthorized(INVALID_CREDENTIALS, "email or password"),
            SignInError::UnknownApplication => Self::unprocessable("Unknown app_id."),
            SignInError::Refused(refusal) => refusal.into(),
            error @ SignInError::HasherBusy => Self::hasher_busy(error),
            SignInError::Store(error) => error.into(),
        }
    }
}

impl From<ResetRequestError> for ApiError {
    fn from(error: ResetRequestError) -> Self {
        match error {
            ResetRequestError::Refused(refusal) => refusal.into(),
            ResetRequestError::Store(error) => error.into(),
        }
    }
}

impl From<CompleteResetError> for ApiError {
    fn from(error: CompleteResetError) -> Self {
        match error {
            CompleteResetError::UnknownToken => Self::unprocessable("Reset token is invalid or has already been used."),
            CompleteResetError::Expired => Self::unprocessable("Reset token has expired."),
            CompleteResetError::InvalidPassword(PasswordError::Blank) => Self::unprocessable("Password can't be blank"),
            CompleteResetError::InvalidPassword(PasswordError::TooShort) => {
                Self::unprocessable("Password is too short (minimum is 8 characters)")
            }
            CompleteResetError::InvalidPassword(PasswordError::TooLong) => {
                Self::unprocessable("Password is too long (maximum is 1024 bytes)")
            }
            CompleteResetError::ConfirmationMismatch => {
                Self::unprocessable("Password confirmation doesn't match Password.")
            }
            CompleteResetError::CommonPassword => Self::unprocessable(TOO_COMMON),
            CompleteResetError::Refused(refusal) => refusal.into(),
            error @ CompleteResetError::HasherBusy => Self::hasher_busy(error),
            CompleteResetError::Store(error) => error.into(),
        }
    }
}

const PHONE_TAKEN: &str = "Phone number is already taken.";

impl From<SendPhoneCodeError> for ApiError {
    fn from(error: SendPhoneCodeError) -> Self {
        match error {
            SendPhoneCodeError::PhoneTaken => Self::unprocessable(PHONE_TAKEN),
            SendPhoneCodeError::Refused(refusal) => refusal.into(),
            SendPhoneCodeError::Store(error) => error.into(),
        }
    }
}

impl From<ConfirmPhoneError> for ApiError {
    fn from(error: ConfirmPhoneError) -> Self {
        match error {
            ConfirmPhoneError::WrongCode => Self::unprocessable(VERIFICATION_CODE_INVALID),
            ConfirmPhoneError::Expired => Self::unprocessable("Verification code has expired."),
            ConfirmPhoneError::Exhausted => Self::unprocessable("Too many failed attempts. Please request a new code."),
            ConfirmPhoneError::PhoneTaken => Self::unprocessable(PHONE_TAKEN),
            ConfirmPhoneError::Refused(refusal) => refusal.into(),
            ConfirmPhoneError::Provider(error) => error.into(),
            ConfirmPhoneError::Store(error) => error.into(),
        }
    }
}

impl From<IntrospectError> for ApiError {
    fn from(error: IntrospectError) -> Self {
        match error {
            IntrospectError::MissingApplicationToken => Self::unauthorized(INVALID_APP_TOKEN, "no application token"),
            IntrospectError::UnknownApplicationToken => {
                Self::unauthorized(INVALID_APP_TOKEN, "unknown application token")
            }
            IntrospectError::Refused(refusal) => refusal.into(),
            IntrospectError::Store(error) => error.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use axum::body::to_bytes;

    use super::*;

    /// Every wire text of this surface, for the check that the domain
    /// holds none of them.
    const WIRE_TEXTS: &[&str] = &[
        INVALID_AUTH_TOKEN,
        INVALID_APP_TOKEN,
        INVALID_CREDENTIALS,
        TOO_MANY_REQUESTS,
        UNAVAILABLE,
        INVALID_PHONE,
        VERIFICATION_CODE_INVALID,
        TOO_COMMON,
        PHONE_TAKEN,
        "Email and password are required.",
        "mobile_os must be android or ios.",
        "device_token is too long.",
        "Email can't be blank",
        "Email is invalid",
        "reset_token is required.",
        "Password can't be blank",
        "Password is too short",
        "Password is too long",
        "Password confirmation doesn't match Password.",
        "Phone can't be blank.",
        "Token can't be blank.",
        "token is required.",
        "Unknown app_id.",
        "Reset token is invalid or has already been used.",
        "Reset token has expired.",
        "Verification code has expired.",
        "Too many failed attempts. Please request a new code.",
    ];

    fn sources(dir: &Path, found: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("the domain's sources") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                sources(&path, found);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                found.push((path.display().to_string(), text));
            }
        }
    }

    #[test]
    fn the_domain_holds_none_of_this_surface_s_wire_texts() {
        let mut files = vec![];
        sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../domain/src"), &mut files);
        assert!(files.len() > 10, "the domain's sources were not found");
        for (path, text) in &files {
            for wire in WIRE_TEXTS {
                assert!(!text.contains(wire), "{path} holds the client text {wire:?}");
            }
        }
    }

    async fn render(error: impl Into<ApiError>) -> (StatusCode, Option<String>, String) {
        let response = error.into().into_response();
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|value| value.to_str().unwrap().to_owned());
        let body = to_bytes(response.into_body(), 1024).await.unwrap();
        (status, retry_after, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn each_cause_answers_its_status_and_text() {
        assert_eq!(
            render(SignInError::InvalidCredentials).await,
            (
                StatusCode::UNAUTHORIZED,
                None,
                r#"{"error":"Invalid email or password."}"#.into()
            )
        );
        assert_eq!(
            render(SignInError::HasherBusy).await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Some("1".into()),
                r#"{"error":"Service temporarily unavailable. Please try again later."}"#.into()
            )
        );
        assert_eq!(
            render(CompleteResetError::Refused(Refusal::RateLimited {
                retry_after: Duration::from_secs(7)
            }))
            .await,
            (
                StatusCode::TOO_MANY_REQUESTS,
                Some("7".into()),
                r#"{"error":"Too many requests. Please try again later."}"#.into()
            )
        );
        assert_eq!(
            render(SendPhoneCodeError::Refused(Refusal::NotMobile)).await,
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                r#"{"error":"Phone is invalid."}"#.into()
            )
        );
        assert_eq!(
            render(Unauthorized::Revoked).await,
            (
                StatusCode::UNAUTHORIZED,
                None,
                r#"{"error":"Invalid or missing auth_token."}"#.into()
            )
        );
        assert_eq!(
            render(IntrospectError::MissingApplicationToken).await,
            (
                StatusCode::UNAUTHORIZED,
                None,
                r#"{"error":"Invalid or missing application auth_token."}"#.into()
            )
        );
        assert_eq!(
            render(CompleteResetError::InvalidPassword(PasswordError::TooShort)).await,
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                r#"{"error":"Password is too short (minimum is 8 characters)"}"#.into()
            )
        );
        assert_eq!(
            render(CompleteResetError::ConfirmationMismatch).await,
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                r#"{"error":"Password confirmation doesn't match Password."}"#.into()
            )
        );
        assert_eq!(
            render(CompleteResetError::CommonPassword).await.2,
            r#"{"error":"Password is too common. Please choose a less common password."}"#
        );
        assert_eq!(
            render(ConfirmPhoneError::Exhausted).await.2,
            r#"{"error":"Too many failed attempts. Please request a new code."}"#
        );
    }
}
