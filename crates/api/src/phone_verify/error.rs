//! phone-verify's answers to failure, in the shapes its Django REST
//! Framework clients parse, and every wire text of this surface.

use std::collections::BTreeMap;

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use phonegate_domain::{
    StoreError,
    abuse::Refusal,
    phone::PhoneInputError,
    phone_verify::{RegisterError, VerifyError},
    ports::DeliveryError,
};
use serde_json::json;

use super::requests::InvalidRequest;
use crate::{failure::Failure, params::ParamsError};

/// DRF's message for a missing field.
const REQUIRED: &str = "This field is required.";
const INVALID_PHONE: &str = "Enter a valid phone number.";
const UNSUPPORTED_PHONE: &str = "Phone numbers from this region are not supported.";
const CODE_NOT_VALID: &str = "Security code is not valid";
const CODE_EXPIRED: &str = "Security code has expired";
const TOO_MANY_ATTEMPTS: &str = "Too many failed verification attempts. Please request a new code.";
pub(super) const INVALID_HOST: &str = "Invalid host header.";
const UNAVAILABLE: &str = "Service temporarily unavailable, try again later.";
const SERVER_ERROR: &str = "A server error occurred.";
const UNAUTHENTICATED: &str = "Incorrect authentication credentials.";

/// This surface's errors, in DRF's shapes.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// 400 `{"<field>": ["<message>"], …}`.
    Fields(BTreeMap<&'static str, &'static str>),
    /// 400 `{"non_field_errors": ["<message>"]}`.
    NonField(&'static str),
    /// `{"detail": "<message>"}` with the given status.
    Detail(StatusCode, &'static str),
    /// 400 `{"detail": "<message>"}` for unreadable parameters.
    Unreadable(ParamsError),
    /// The causes every surface shares, in DRF's shapes.
    Failure(Failure),
}

impl ApiError {
    fn field(name: &'static str, message: &'static str) -> Self {
        Self::Fields(BTreeMap::from([(name, message)]))
    }
}

/// `{"detail": "<message>"}` with `status`.
fn detail(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"detail": message.into()}))).into_response()
}

/// A [`Failure`] in DRF's shapes: throttling as DRF words it, an
/// undeliverable number as a `phone_number` field error.
fn render_failure(failure: Failure) -> Response {
    let response = match &failure {
        Failure::Unauthorized { .. } => detail(StatusCode::UNAUTHORIZED, UNAUTHENTICATED),
        Failure::TooManyRequests { retry_after } => {
            let message = match retry_after {
                Some(wait) => format!(
                    "Request was throttled. Expected available in {} seconds.",
                    wait.as_secs().max(1)
                ),
                None => "Request was throttled.".to_owned(),
            };
            detail(StatusCode::TOO_MANY_REQUESTS, message)
        }
        Failure::UndeliverableNumber => ApiError::field("phone_number", UNSUPPORTED_PHONE).into_response(),
        Failure::Unavailable { .. } => detail(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE),
        Failure::Internal(_) => detail(StatusCode::INTERNAL_SERVER_ERROR, SERVER_ERROR),
    };
    failure.finish(response)
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
            Self::Detail(status, message) => detail(status, message),
            Self::Unreadable(error) => detail(StatusCode::BAD_REQUEST, error.to_string()),
            Self::Failure(failure) => render_failure(failure),
        }
    }
}

impl From<ParamsError> for ApiError {
    fn from(error: ParamsError) -> Self {
        Self::Unreadable(error)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::Failure(error.into())
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        Self::Failure(refusal.into())
    }
}

impl From<DeliveryError> for ApiError {
    fn from(error: DeliveryError) -> Self {
        Self::Failure(error.into())
    }
}

fn phone_error(error: PhoneInputError) -> ApiError {
    match error {
        PhoneInputError::Blank => ApiError::field("phone_number", REQUIRED),
        PhoneInputError::Invalid => ApiError::field("phone_number", INVALID_PHONE),
        PhoneInputError::NotAllowed => ApiError::field("phone_number", UNSUPPORTED_PHONE),
    }
}

impl From<InvalidRequest> for ApiError {
    fn from(error: InvalidRequest) -> Self {
        match error {
            InvalidRequest::Missing(fields) => Self::Fields(fields.into_iter().map(|name| (name, REQUIRED)).collect()),
            InvalidRequest::Phone(error) => phone_error(error),
            InvalidRequest::MalformedSessionToken => Self::NonField(CODE_NOT_VALID),
        }
    }
}

impl From<RegisterError> for ApiError {
    fn from(error: RegisterError) -> Self {
        match error {
            RegisterError::Refused(refusal) => refusal.into(),
            RegisterError::Store(error) => error.into(),
            RegisterError::SessionToken(error) => Self::Failure(Failure::internal(error)),
        }
    }
}

impl From<VerifyError> for ApiError {
    fn from(error: VerifyError) -> Self {
        match error {
            // One answer for every cause a guesser could tell apart.
            VerifyError::SessionRefused
            | VerifyError::SessionForAnotherPhone
            | VerifyError::MalformedCode
            | VerifyError::WrongCode
            | VerifyError::NoLiveChallenge
            | VerifyError::Locked => Self::NonField(CODE_NOT_VALID),
            VerifyError::SessionExpired | VerifyError::CodeExpired => Self::NonField(CODE_EXPIRED),
            VerifyError::AttemptsExhausted => Self::NonField(TOO_MANY_ATTEMPTS),
            VerifyError::Refused(refusal) => refusal.into(),
            VerifyError::Store(error) => error.into(),
            // The provider's "not a valid number" is this surface's field
            // error, not the undeliverable-number answer.
            VerifyError::Provider(DeliveryError::InvalidNumber) => phone_error(PhoneInputError::Invalid),
            VerifyError::Provider(error) => error.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn body(error: ApiError) -> (StatusCode, serde_json::Value, Option<String>) {
        let response = error.into_response();
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|value| value.to_str().unwrap_or_default().to_owned());
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap_or_default();
        (status, serde_json::from_slice(&bytes).unwrap_or_default(), retry_after)
    }

    #[tokio::test]
    async fn failures_keep_drf_s_shapes() {
        let throttled = ApiError::from(Refusal::RateLimited {
            retry_after: Duration::from_millis(2500),
        });
        assert_eq!(
            body(throttled).await,
            (
                StatusCode::TOO_MANY_REQUESTS,
                json!({"detail": "Request was throttled. Expected available in 2 seconds."}),
                Some("3".to_owned())
            )
        );
        assert_eq!(
            body(ApiError::from(Refusal::NotMobile)).await,
            (
                StatusCode::BAD_REQUEST,
                json!({"phone_number": ["Phone numbers from this region are not supported."]}),
                None
            )
        );
        assert_eq!(
            body(VerifyError::Provider(DeliveryError::InvalidNumber).into()).await,
            (
                StatusCode::BAD_REQUEST,
                json!({"phone_number": ["Enter a valid phone number."]}),
                None
            )
        );
        assert_eq!(
            body(ApiError::from(StoreError::new("test", "down"))).await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"detail": "Service temporarily unavailable, try again later."}),
                None
            )
        );
    }
}
