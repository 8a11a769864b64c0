//! The envelope every phone-login answer has: `{"res_info": {"code",
//! "code_info"}, "res_content"?}`, with this API's published code table.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

/// This API's result codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    MissingParameter,
    InvalidAccessCode,
    ExpiredAccessCode,
    InvalidParameter,
    NewPhone,
    ReturningPhone,
    InvalidPin,
    InvalidPhone,
    NewAccessCode,
    PinExpired,
    AuthEndpointFunctionSuccess,
    ValidAccessCode,
    /// phonegate's extension: a dependency (database, SMS provider) is down.
    ServiceUnavailable,
    /// phonegate's extension: too many requests; see `Retry-After`.
    RateLimited,
}

impl Code {
    /// Every code, in the published table's order.
    pub const ALL: [Code; 14] = [
        Self::MissingParameter,
        Self::InvalidAccessCode,
        Self::ExpiredAccessCode,
        Self::InvalidParameter,
        Self::NewPhone,
        Self::ReturningPhone,
        Self::InvalidPin,
        Self::InvalidPhone,
        Self::NewAccessCode,
        Self::PinExpired,
        Self::AuthEndpointFunctionSuccess,
        Self::ValidAccessCode,
        Self::ServiceUnavailable,
        Self::RateLimited,
    ];

    pub const fn number(self) -> i32 {
        match self {
            Self::MissingParameter => -1,
            Self::InvalidAccessCode => -2,
            Self::ExpiredAccessCode => -3,
            Self::InvalidParameter => -6,
            Self::NewPhone => 1,
            Self::ReturningPhone => 2,
            Self::InvalidPin => 4,
            Self::InvalidPhone => 12,
            Self::NewAccessCode => 22,
            Self::PinExpired => 23,
            Self::AuthEndpointFunctionSuccess => 33,
            Self::ValidAccessCode => 40,
            Self::ServiceUnavailable => -500,
            Self::RateLimited => -429,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::MissingParameter => "MISSING_PARAMETER",
            Self::InvalidAccessCode => "INVALID_ACCESS_CODE",
            Self::ExpiredAccessCode => "EXPIRED_ACCESS_CODE",
            Self::InvalidParameter => "INVALID_PARAMETER",
            Self::NewPhone => "NEW_PHONE",
            Self::ReturningPhone => "RETURNING_PHONE",
            Self::InvalidPin => "INVALID_PIN",
            Self::InvalidPhone => "INVALID_PHONE",
            Self::NewAccessCode => "NEW_ACCESS_CODE",
            Self::PinExpired => "PIN_EXPIRED",
            Self::AuthEndpointFunctionSuccess => "AUTH_ENDPOINT_FUNCTION_SUCCESS",
            Self::ValidAccessCode => "VALID_ACCESS_CODE",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::RateLimited => "RATE_LIMITED",
        }
    }
}

/// An envelope answer: status, code and optional content.
#[derive(Debug)]
pub struct Envelope {
    status: StatusCode,
    code: Code,
    content: Option<Value>,
}

impl Envelope {
    /// A success: 200 with `code` and, for some, content.
    pub(super) fn ok(code: Code, content: Option<Value>) -> Self {
        Self {
            status: StatusCode::OK,
            code,
            content,
        }
    }

    /// A refusal: `status` with `code` and a message for people.
    pub(super) fn error(status: StatusCode, code: Code, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            content: Some(Value::String(message.into())),
        }
    }
}

impl IntoResponse for Envelope {
    fn into_response(self) -> Response {
        let mut body = json!({"res_info": {"code": self.code.number(), "code_info": self.code.name()}});
        if let Some(content) = self.content {
            body["res_content"] = content;
        }
        (self.status, Json(body)).into_response()
    }
}
