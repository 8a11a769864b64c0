//! phone-login's answers to failure, each an envelope with one of this
//! API's codes, and every error text of this surface.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use phonegate_domain::{
    StoreError,
    abuse::Refusal,
    phone_login::{AccessCodeError, CheckPinError, PhoneLoginError},
    ports::DeliveryError,
};

use super::{
    envelope::{Code, Envelope},
    requests::InvalidRequest,
};
use crate::{failure::Failure, params::ParamsError};

const INVALID_PHONE: &str = "phone_number is not a valid phone number";
pub(super) const INVALID_HOST: &str = "invalid host";
pub(super) const METHOD_NOT_ALLOWED: &str = "method not allowed";

/// This surface's errors.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// 400 with `MISSING_PARAMETER`, `INVALID_PARAMETER` or `INVALID_PHONE`,
    /// or 401 `INVALID_PIN` for a PIN of the wrong shape.
    InvalidRequest(InvalidRequest),
    /// 400 `INVALID_PARAMETER` for unreadable parameters.
    Unreadable(ParamsError),
    /// 401: a PIN or an access code that does not pass.
    Rejected(Rejection),
    /// The causes every surface shares, in this API's envelope.
    Failure(Failure),
}

/// The 401 answers, each with its code and text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    InvalidPin,
    PinExpired,
    InvalidAccessCode,
    ExpiredAccessCode,
}

impl Rejection {
    fn code(self) -> Code {
        match self {
            Self::InvalidPin => Code::InvalidPin,
            Self::PinExpired => Code::PinExpired,
            Self::InvalidAccessCode => Code::InvalidAccessCode,
            Self::ExpiredAccessCode => Code::ExpiredAccessCode,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::InvalidPin => "invalid PIN",
            Self::PinExpired => "the PIN has expired; request a new one",
            Self::InvalidAccessCode => "invalid access code",
            Self::ExpiredAccessCode => "expired access code",
        }
    }

    /// What the log says of it (no PIN or code, only the check).
    fn reason(self) -> &'static str {
        match self {
            Self::InvalidPin => "phone-login PIN not accepted",
            Self::PinExpired => "phone-login PIN expired",
            Self::InvalidAccessCode => "access code not accepted",
            Self::ExpiredAccessCode => "access code expired",
        }
    }
}

/// A [`Failure`] in this API's envelope: `RATE_LIMITED` (-429) and
/// `SERVICE_UNAVAILABLE` (-500) are phonegate's extensions of the code
/// table; an undeliverable number is `INVALID_PHONE`.
fn render_failure(failure: Failure) -> Response {
    let envelope = match &failure {
        Failure::Unauthorized { .. } => Envelope::error(
            StatusCode::UNAUTHORIZED,
            Code::InvalidAccessCode,
            Rejection::InvalidAccessCode.message(),
        ),
        Failure::TooManyRequests { .. } => Envelope::error(
            StatusCode::TOO_MANY_REQUESTS,
            Code::RateLimited,
            "too many requests, try again later",
        ),
        Failure::UndeliverableNumber => Envelope::error(StatusCode::BAD_REQUEST, Code::InvalidPhone, INVALID_PHONE),
        Failure::Unavailable { .. } => Envelope::error(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::ServiceUnavailable,
            "service unavailable, try again later",
        ),
        Failure::Internal(_) => Envelope::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::ServiceUnavailable,
            "internal error, try again later",
        ),
    };
    failure.finish(envelope.into_response())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::InvalidRequest(InvalidRequest::Missing(name)) => Envelope::error(
                StatusCode::BAD_REQUEST,
                Code::MissingParameter,
                format!("{name} is required"),
            )
            .into_response(),
            Self::InvalidRequest(InvalidRequest::Invalid(name)) => Envelope::error(
                StatusCode::BAD_REQUEST,
                Code::InvalidParameter,
                format!("{name} is not valid"),
            )
            .into_response(),
            Self::InvalidRequest(InvalidRequest::Phone(_)) => {
                Envelope::error(StatusCode::BAD_REQUEST, Code::InvalidPhone, INVALID_PHONE).into_response()
            }
            Self::InvalidRequest(InvalidRequest::MalformedPin) => Self::Rejected(Rejection::InvalidPin).into_response(),
            Self::Unreadable(error) => {
                Envelope::error(StatusCode::BAD_REQUEST, Code::InvalidParameter, error.to_string()).into_response()
            }
            Self::Rejected(rejection) => {
                let envelope = Envelope::error(StatusCode::UNAUTHORIZED, rejection.code(), rejection.message());
                Failure::Unauthorized {
                    reason: rejection.reason(),
                }
                .finish(envelope.into_response())
            }
            Self::Failure(failure) => render_failure(failure),
        }
    }
}

impl From<InvalidRequest> for ApiError {
    fn from(error: InvalidRequest) -> Self {
        Self::InvalidRequest(error)
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

impl From<PhoneLoginError> for ApiError {
    fn from(error: PhoneLoginError) -> Self {
        match error {
            PhoneLoginError::Refused(refusal) => refusal.into(),
            PhoneLoginError::Store(error) => error.into(),
        }
    }
}

impl From<CheckPinError> for ApiError {
    fn from(error: CheckPinError) -> Self {
        match error {
            // One answer for every cause a guesser could tell apart.
            CheckPinError::WrongPin | CheckPinError::NoLivePin | CheckPinError::Locked => {
                Self::Rejected(Rejection::InvalidPin)
            }
            // Either way a new PIN is needed.
            CheckPinError::PinExpired | CheckPinError::AttemptsExhausted => Self::Rejected(Rejection::PinExpired),
            CheckPinError::Refused(refusal) => refusal.into(),
            CheckPinError::Store(error) => error.into(),
            CheckPinError::Provider(error) => error.into(),
        }
    }
}

impl From<AccessCodeError> for ApiError {
    fn from(error: AccessCodeError) -> Self {
        match error {
            AccessCodeError::Malformed
            | AccessCodeError::Unknown
            | AccessCodeError::Revoked
            | AccessCodeError::OtherDevice => Self::Rejected(Rejection::InvalidAccessCode),
            AccessCodeError::Expired => Self::Rejected(Rejection::ExpiredAccessCode),
            AccessCodeError::Refused(refusal) => refusal.into(),
            AccessCodeError::Store(error) => error.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;

    async fn answer(error: ApiError) -> (StatusCode, Value, Option<String>) {
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

    fn envelope(code: i32, info: &str, content: &str) -> Value {
        json!({"res_info": {"code": code, "code_info": info}, "res_content": content})
    }

    #[tokio::test]
    async fn every_error_has_its_code_and_text() {
        let cases = [
            (
                ApiError::from(InvalidRequest::Missing("device_id")),
                StatusCode::BAD_REQUEST,
                envelope(-1, "MISSING_PARAMETER", "device_id is required"),
            ),
            (
                InvalidRequest::Invalid("call_verify").into(),
                StatusCode::BAD_REQUEST,
                envelope(-6, "INVALID_PARAMETER", "call_verify is not valid"),
            ),
            (
                InvalidRequest::MalformedPin.into(),
                StatusCode::UNAUTHORIZED,
                envelope(4, "INVALID_PIN", "invalid PIN"),
            ),
            (
                CheckPinError::AttemptsExhausted.into(),
                StatusCode::UNAUTHORIZED,
                envelope(23, "PIN_EXPIRED", "the PIN has expired; request a new one"),
            ),
            (
                AccessCodeError::OtherDevice.into(),
                StatusCode::UNAUTHORIZED,
                envelope(-2, "INVALID_ACCESS_CODE", "invalid access code"),
            ),
            (
                AccessCodeError::Expired.into(),
                StatusCode::UNAUTHORIZED,
                envelope(-3, "EXPIRED_ACCESS_CODE", "expired access code"),
            ),
            (
                DeliveryError::InvalidNumber.into(),
                StatusCode::BAD_REQUEST,
                envelope(12, "INVALID_PHONE", "phone_number is not a valid phone number"),
            ),
            (
                StoreError::new("test", "down").into(),
                StatusCode::SERVICE_UNAVAILABLE,
                envelope(-500, "SERVICE_UNAVAILABLE", "service unavailable, try again later"),
            ),
        ];
        for (error, status, body) in cases {
            assert_eq!(answer(error).await, (status, body, None));
        }
        let limited = ApiError::from(Refusal::BudgetExhausted {
            retry_after: Duration::from_secs(30),
        });
        assert_eq!(
            answer(limited).await,
            (
                StatusCode::TOO_MANY_REQUESTS,
                envelope(-429, "RATE_LIMITED", "too many requests, try again later"),
                Some("30".to_owned())
            )
        );
    }
}
