//! pin-auth's error answers, `{"errors": "<message>"}`, and every message
//! this surface's clients see: the domain's errors name causes, and this
//! module words them as the seed does.

use std::borrow::Cow;

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use phonegate_domain::{
    abuse::Refusal,
    device::{MAX_HANDLE_BYTES, PushHandleError, PushPlatform, PushPlatformError},
    phone::MobileError,
    pin_auth::{AuthError, MAX_TEXT_CHARS, RegisterDeviceError, SendPinError, VerifyError},
    ports::{DeliveryError, StoreError},
    token::TokenError,
};
use serde::Serialize;
use utoipa::ToSchema;

use super::requests::{Field, RequestError};
use crate::{failure::Failure, params::ParamsError};

/// This surface's error: a message it words itself, or a failure that
/// every surface shares, rendered in this surface's shape.
#[derive(Debug)]
pub struct ApiError(Answer);

#[derive(Debug)]
enum Answer {
    /// A 4xx with its message.
    Refused {
        status: StatusCode,
        message: Cow<'static, str>,
    },
    Failed(Failure),
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self(Answer::Refused {
            status,
            message: message.into(),
        })
    }

    fn unprocessable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn unauthorized(reason: &'static str) -> Self {
        Failure::Unauthorized { reason }.into()
    }
}

/// This surface's error body.
#[derive(Serialize, ToSchema)]
#[schema(as = PinAuthError, example = json!({"errors": "Mobile must begin with +852"}))]
pub(super) struct ErrorBody<'a> {
    /// What went wrong, for people.
    errors: &'a str,
}

fn body(status: StatusCode, message: &str) -> Response {
    (status, Json(ErrorBody { errors: message })).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self.0 {
            Answer::Refused { status, message } => body(status, &message),
            Answer::Failed(failure) => {
                let message = match &failure {
                    Failure::Unauthorized { .. } => "Unauthorized",
                    Failure::TooManyRequests { .. } => "Too many requests. Please try again later.",
                    Failure::UndeliverableNumber => "Mobile is not a mobile number we can send to",
                    Failure::Unavailable { .. } => "Service Unavailable",
                    Failure::Internal(_) => "Internal Server Error",
                };
                let response = body(failure.status(), message);
                failure.finish(response)
            }
        }
    }
}

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        Self(Answer::Failed(failure))
    }
}

impl From<ParamsError> for ApiError {
    fn from(error: ParamsError) -> Self {
        // Pin-auth has always answered parameters of the wrong types as
        // malformed, and its clients may match on the text.
        let error = match error {
            ParamsError::WrongTypes => ParamsError::MalformedForm,
            other => other,
        };
        Self::bad_request(error.to_string())
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
        match error {
            // The provider refused the number a pin was checked for; a
            // refused send is worded apart (`UndeliverableNumber` above).
            DeliveryError::InvalidNumber => Self::unprocessable("Mobile is invalid"),
            error => Failure::from(error).into(),
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> Self {
        match error {
            RequestError::MissingUserAuth => Self::unprocessable("Missing parameter user_auth"),
            RequestError::MissingAddress => Self::unprocessable("Missing parameter user_auth[address_attributes]"),
            RequestError::DistrictNotANumber => Self::unprocessable("District is not a number"),
            RequestError::Mobile(error) => Self::unprocessable(mobile_message(&error)),
            RequestError::TooLong(field) => Self::unprocessable(format!(
                "{} is too long (maximum is {MAX_TEXT_CHARS} characters)",
                field_name(field)
            )),
            RequestError::BlankKey => Self::unprocessable("Otp auth key can't be blank"),
            RequestError::BlankPin => Self::unprocessable("Pin can't be blank"),
            // A key or pin that cannot be ours gets the answer of a wrong
            // pin: a guesser learns nothing from the difference.
            RequestError::MalformedKeyOrPin => Self::unprocessable("Invalid pin"),
            RequestError::NoBearerToken => Self::unauthorized("no bearer token"),
            RequestError::Handle(PushHandleError::Blank) => Self::bad_request("Handle can't be blank"),
            RequestError::Handle(PushHandleError::TooLong) => {
                Self::bad_request(format!("Handle is too long (maximum is {MAX_HANDLE_BYTES} characters)"))
            }
            RequestError::Platform(PushPlatformError::Blank) => Self::bad_request("Platform can't be blank"),
            RequestError::Platform(PushPlatformError::Unknown) => {
                let names: Vec<&str> = PushPlatform::ALL.iter().map(|platform| platform.as_str()).collect();
                Self::bad_request(format!("Platform must be one of {}", names.join(", ")))
            }
        }
    }
}

/// The seed's words for a mobile the rule refuses.
fn mobile_message(error: &MobileError) -> Cow<'static, str> {
    match error {
        MobileError::Blank => "Mobile can't be blank".into(),
        MobileError::WrongCountry(prefix) => format!("Mobile must begin with {prefix}").into(),
        MobileError::WrongPrefix(prefixes) => format!("Mobile must begin with {}", alternatives(prefixes)).into(),
        MobileError::WrongLength(digits) => format!("Mobile must contain a further {digits} digits").into(),
        MobileError::Malformed => "Mobile is invalid".into(),
    }
}

/// `a, b, or c`, as in the seed's "must begin with +8525, +8526, or +8529".
fn alternatives(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        [init @ .., last] => format!("{}, or {last}", init.join(", ")),
    }
}

fn field_name(field: Field) -> &'static str {
    match field {
        Field::FirstName => "First name",
        Field::LastName => "Last name",
        Field::Street => "Street",
        Field::Flat => "Flat",
        Field::Building => "Building",
        Field::AddressType => "Address type",
    }
}

impl From<SendPinError> for ApiError {
    fn from(error: SendPinError) -> Self {
        match error {
            SendPinError::Refused(refusal) => refusal.into(),
            SendPinError::Store(error) => error.into(),
        }
    }
}

impl From<VerifyError> for ApiError {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::WrongPin => Self::unprocessable("Invalid pin"),
            VerifyError::Expired => Self::unprocessable("Pin has expired"),
            VerifyError::AttemptsExhausted => {
                Self::unprocessable("Too many failed attempts. Please request a new pin.")
            }
            VerifyError::Refused(refusal) => refusal.into(),
            VerifyError::Store(error) => error.into(),
            VerifyError::Provider(error) => error.into(),
            VerifyError::Token(error) => Failure::internal(error).into(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::TokenRefused(TokenError::Expired) => Self::unauthorized("token expired"),
            AuthError::TokenRefused(TokenError::NotYetValid) => Self::unauthorized("token not yet valid"),
            AuthError::TokenRefused(TokenError::Invalid | TokenError::Signing(_)) => {
                Self::unauthorized("token invalid")
            }
            AuthError::UnknownUser => Self::unauthorized("user no longer exists"),
            AuthError::Store(error) => error.into(),
        }
    }
}

impl From<RegisterDeviceError> for ApiError {
    fn from(error: RegisterDeviceError) -> Self {
        match error {
            RegisterDeviceError::Auth(error) => error.into(),
            RegisterDeviceError::Store(error) => error.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(error: impl Into<ApiError>) -> (StatusCode, String) {
        let error: ApiError = error.into();
        match error.0 {
            Answer::Refused { status, message } => (status, message.into_owned()),
            Answer::Failed(failure) => panic!("not a refusal: {failure:?}"),
        }
    }

    #[test]
    fn mobile_errors_read_as_the_seed_words_them() {
        let unprocessable = |text: &str| (StatusCode::UNPROCESSABLE_ENTITY, text.to_owned());
        let hong_kong = ["+8525", "+8526", "+8529"].map(str::to_owned).to_vec();
        for (error, text) in [
            (MobileError::Blank, "Mobile can't be blank"),
            (MobileError::WrongCountry("+852".into()), "Mobile must begin with +852"),
            (
                MobileError::WrongPrefix(hong_kong),
                "Mobile must begin with +8525, +8526, or +8529",
            ),
            (
                MobileError::WrongPrefix(vec!["é".into(), "ê".into()]),
                "Mobile must begin with é or ê",
            ),
            (MobileError::WrongLength(7), "Mobile must contain a further 7 digits"),
            (MobileError::Malformed, "Mobile is invalid"),
        ] {
            assert_eq!(message(RequestError::Mobile(error)), unprocessable(text));
        }
    }

    #[test]
    fn device_errors_are_400_with_the_field_named() {
        let bad = |text: &str| (StatusCode::BAD_REQUEST, text.to_owned());
        assert_eq!(
            message(RequestError::Platform(PushPlatformError::Unknown)),
            bad("Platform must be one of fcm, gcm, aps")
        );
        assert_eq!(
            message(RequestError::Platform(PushPlatformError::Blank)),
            bad("Platform can't be blank")
        );
        assert_eq!(
            message(RequestError::Handle(PushHandleError::Blank)),
            bad("Handle can't be blank")
        );
        assert_eq!(
            message(RequestError::Handle(PushHandleError::TooLong)),
            bad("Handle is too long (maximum is 4096 characters)")
        );
    }

    #[test]
    fn verify_errors_say_no_more_than_needed() {
        let unprocessable = |text: &str| (StatusCode::UNPROCESSABLE_ENTITY, text.to_owned());
        assert_eq!(message(VerifyError::WrongPin), unprocessable("Invalid pin"));
        assert_eq!(message(RequestError::MalformedKeyOrPin), unprocessable("Invalid pin"));
        assert_eq!(message(VerifyError::Expired), unprocessable("Pin has expired"));
        assert_eq!(
            message(VerifyError::AttemptsExhausted),
            unprocessable("Too many failed attempts. Please request a new pin.")
        );
        assert_eq!(
            message(RequestError::BlankKey),
            unprocessable("Otp auth key can't be blank")
        );
        assert_eq!(message(RequestError::BlankPin), unprocessable("Pin can't be blank"));
        assert_eq!(
            message(RequestError::TooLong(Field::FirstName)),
            unprocessable("First name is too long (maximum is 255 characters)")
        );
    }

    #[test]
    fn shared_failures_render_in_this_shape_with_their_report() {
        let response = ApiError::from(Refusal::RateLimited {
            retry_after: std::time::Duration::from_secs(3),
        })
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "3");
        let response = ApiError::from(StoreError::new("test", "database down")).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            response.extensions().get::<crate::failure::FailureReport>().is_some(),
            "the middleware logs the source"
        );
        let response = ApiError::from(AuthError::UnknownUser).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let response = ApiError::from(DeliveryError::InvalidNumber).into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
