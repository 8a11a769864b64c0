//! The tokens surface's requests: one type per operation, the single
//! source of both the parsing and the OpenAPI schema. Each arrives as JSON,
//! a form or a query string alike (see [`crate::params`]), and converts
//! once into the domain's parsed values; a missing, blank or malformed
//! field is refused here, with its [`Rejection`].
//!
//! Fields are read as [`crate::params::text`] reads them, so every field is
//! an `Option<String>` in Rust; the schema attributes state what the edge
//! requires.

use phonegate_domain::{
    account::{Email, NewPassword},
    otp::{CodeLength, OtpCode},
    phone::{PhoneInputError, PhoneNumber, PhonePolicy},
    token_auth::{
        AppId, ApplicationToken, DeviceToken, DeviceTokenError, IntrospectedToken, MobileOs, PasswordReset,
        ProposedPassword, PushToken, ResetToken, SessionToken, SignInEmail, SignInPassword, SignInRequest as SignIn,
    },
};
use serde::Deserialize;
use utoipa::{
    ToSchema,
    openapi::{Object, ObjectBuilder, OneOfBuilder, Schema, Type},
};

use super::error::Rejection;

/// A session token, or a refusal answered as a refused token.
fn session_token(text: Option<&str>) -> Result<SessionToken, Rejection> {
    text.and_then(|text| SessionToken::parse(text).ok())
        .ok_or(Rejection::MissingAuthToken)
}

/// Optional text without the white space around it, absent when blank.
fn present(text: Option<&str>) -> Option<&str> {
    crate::params::present(text).map(str::trim)
}

/// `POST /api/v1/tokens`.
#[derive(Deserialize, ToSchema)]
#[schema(as = TokensSignInRequest, example = json!({
    "email": "admin@example.com", "password": "password", "device_token": "324628746283682634", "mobile_os": "ios"
}))]
pub(super) struct SignInRequest {
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(required = true, nullable = false, value_type = String, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    email: Option<String>,
    /// Any non-empty text (passwords set before today's rules still work).
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(required = true, nullable = false, value_type = String, min_length = 1)]
    password: Option<String>,
    /// The device's unique id, e.g. an iOS UDID: at most 255 bytes.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(nullable = false, value_type = String, max_length = 255)]
    device_token: Option<String>,
    /// `android` or `ios`, in any case.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(
        nullable = false,
        value_type = String,
        pattern = r"^\s*([Aa][Nn][Dd][Rr][Oo][Ii][Dd]|[Ii][Oo][Ss])?\s*$"
    )]
    mobile_os: Option<String>,
    /// The application the user signs in through.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(nullable = false, value_type = String)]
    app_id: Option<String>,
}

impl SignInRequest {
    /// In the order the Rails API checked them: both credentials, then the
    /// device. A malformed email or an over-long password is not refused
    /// here: sign-in answers it as a wrong password, after the same work.
    pub(super) fn into_domain(self) -> Result<SignIn, Rejection> {
        let email = self.email.as_deref().and_then(|email| SignInEmail::parse(email).ok());
        let password = self
            .password
            .as_deref()
            .and_then(|password| SignInPassword::parse(password).ok());
        let (Some(email), Some(password)) = (email, password) else {
            return Err(Rejection::MissingCredentials);
        };
        let mobile_os = present(self.mobile_os.as_deref())
            .map(MobileOs::parse)
            .transpose()
            .map_err(|_| Rejection::UnknownMobileOs)?;
        let device_token = match self.device_token.as_deref().map(DeviceToken::parse) {
            None | Some(Err(DeviceTokenError::Blank)) => None,
            Some(Ok(token)) => Some(token),
            Some(Err(DeviceTokenError::TooLong)) => return Err(Rejection::DeviceTokenTooLong),
        };
        Ok(SignIn {
            email,
            password,
            device_token,
            mobile_os,
            app_id: self.app_id.as_deref().and_then(|app_id| AppId::parse(app_id).ok()),
        })
    }
}

/// `DELETE /api/v1/tokens/{user_id}`.
#[derive(Deserialize, ToSchema)]
#[schema(as = TokensSignOutRequest)]
pub(super) struct SignOutRequest {
    /// The user's session token.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(required = true, nullable = false, value_type = String, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    auth_token: Option<String>,
    /// A push token to forget.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(nullable = false, value_type = String)]
    apn_token: Option<String>,
}

impl SignOutRequest {
    pub(super) fn session_token(&self) -> Result<SessionToken, Rejection> {
        session_token(self.auth_token.as_deref())
    }

    pub(super) fn push_token(&self) -> Option<PushToken> {
        self.apn_token.as_deref().and_then(|token| PushToken::parse(token).ok())
    }
}

/// `POST /api/v1/tokens/reset`.
#[derive(Deserialize, ToSchema)]
#[schema(as = TokensResetRequest, example = json!({"email": "admin@example.com"}))]
pub(super) struct ResetRequest {
    /// An email address: one `@`, at most 64 bytes before it and a dotted
    /// domain after it, at most 254 bytes in all, without white space or
    /// control characters (white space around it is ignored). The pattern
    /// counts characters where [`Email::parse`] counts bytes.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(
        required = true,
        nullable = false,
        value_type = String,
        max_length = 254,
        pattern = r"^\s*[^@\s\u0000-\u001F\u007F-\u009F]{1,64}@[^@\s.\u0000-\u001F\u007F-\u009F][^@\s\u0000-\u001F\u007F-\u009F]*\.[^@\s\u0000-\u001F\u007F-\u009F]*[^@\s.\u0000-\u001F\u007F-\u009F]\s*$"
    )]
    email: Option<String>,
}

impl ResetRequest {
    pub(super) fn email(&self) -> Result<Email, Rejection> {
        Email::parse(self.email.as_deref().unwrap_or_default()).map_err(Rejection::InvalidEmail)
    }
}

/// `PUT /api/v1/tokens/reset`.
#[derive(Deserialize, ToSchema)]
#[schema(as = TokensCompleteResetRequest)]
pub(super) struct CompleteResetRequest {
    /// The token from the reset email.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(required = true, nullable = false, value_type = String, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    reset_token: Option<String>,
    /// At least 8 characters and at most 1024 bytes, and not a common
    /// password.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(required = true, nullable = false, value_type = String, min_length = 8)]
    password: Option<String>,
    /// When given, it must equal `password`.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(nullable = false, value_type = String)]
    password_confirmation: Option<String>,
}

impl CompleteResetRequest {
    /// The token, which must be there; then the new password and its
    /// confirmation, whose flaws the use case reports only once the per-IP
    /// limit has admitted the attempt (see [`ProposedPassword`]).
    pub(super) fn into_domain(self) -> Result<PasswordReset, Rejection> {
        let token = self
            .reset_token
            .as_deref()
            .and_then(|token| ResetToken::parse(token).ok())
            .ok_or(Rejection::MissingResetToken)?;
        let password = self.password.unwrap_or_default();
        let password = match NewPassword::parse(&password) {
            Err(error) => ProposedPassword::Invalid(error),
            Ok(_)
                if self
                    .password_confirmation
                    .is_some_and(|confirmation| confirmation != password) =>
            {
                ProposedPassword::Unconfirmed
            }
            Ok(password) => ProposedPassword::Acceptable(password),
        };
        Ok(PasswordReset { token, password })
    }
}

/// `POST /api/v1/settings/send_phone_verification`.
#[derive(Deserialize, ToSchema)]
#[schema(as = TokensSendPhoneVerificationRequest, example = json!({"auth_token": "2zLJaxqVzKJgQ0XfYIg8Wg", "phone": "(123)456-7890"}))]
pub(super) struct SendPhoneVerificationRequest {
    /// The user's session token.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(required = true, nullable = false, value_type = String, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    auth_token: Option<String>,
    /// A phone number in any human format; national numbers are read in
    /// the default region.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(required = true, nullable = false, value_type = String, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    phone: Option<String>,
}

impl SendPhoneVerificationRequest {
    pub(super) fn session_token(&self) -> Result<SessionToken, Rejection> {
        session_token(self.auth_token.as_deref())
    }

    pub(super) fn phone(&self, phones: &PhonePolicy) -> Result<PhoneNumber, Rejection> {
        phones
            .parse(self.phone.as_deref().unwrap_or_default())
            .map_err(|error| match error {
                PhoneInputError::Blank => Rejection::MissingPhone,
                PhoneInputError::Invalid | PhoneInputError::NotAllowed => Rejection::InvalidPhone,
            })
    }
}

/// `POST /api/v1/settings/verify_phone`.
#[derive(Deserialize, ToSchema)]
#[schema(as = TokensVerifyPhoneRequest, example = json!({"auth_token": "2zLJaxqVzKJgQ0XfYIg8Wg", "token": "1988"}))]
pub(super) struct VerifyPhoneRequest {
    /// The user's session token.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(required = true, nullable = false, value_type = String, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    auth_token: Option<String>,
    /// The code texted to the phone.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(required = true, schema_with = code_schema)]
    token: Option<String>,
}

impl VerifyPhoneRequest {
    pub(super) fn session_token(&self) -> Result<SessionToken, Rejection> {
        session_token(self.auth_token.as_deref())
    }

    pub(super) fn code(&self, length: CodeLength) -> Result<OtpCode, Rejection> {
        let code = present(self.token.as_deref()).ok_or(Rejection::MissingCode)?;
        OtpCode::parse(code, length).ok_or(Rejection::MalformedCode)
    }
}

/// A code given as text (digits, white space around them ignored) or as a
/// number. Its length is the deployment's (4 to 10 digits).
fn code_schema() -> Schema {
    Schema::OneOf(
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^\s*[0-9]{4,10}\s*$"))
                    .build(),
            )
            .item(Object::with_type(Type::Integer))
            .build(),
    )
}

/// `POST /api/v1/tokens/introspect`.
#[derive(Deserialize, ToSchema)]
#[schema(as = TokensIntrospectRequest)]
pub(super) struct IntrospectRequest {
    /// The application's auth_token.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(required = true, nullable = false, value_type = String, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    auth_token: Option<String>,
    /// The user's token to introspect.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(required = true, nullable = false, value_type = String, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    token: Option<String>,
}

impl IntrospectRequest {
    /// `None` when absent or blank: introspection counts the request
    /// against its limit before it refuses a missing application token.
    pub(super) fn application_token(&self) -> Option<ApplicationToken> {
        self.auth_token
            .as_deref()
            .and_then(|token| ApplicationToken::parse(token).ok())
    }

    pub(super) fn token(&self) -> Result<IntrospectedToken, Rejection> {
        self.token
            .as_deref()
            .and_then(|token| IntrospectedToken::parse(token).ok())
            .ok_or(Rejection::MissingToken)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::params::Params;

    fn decode<T: serde::de::DeserializeOwned>(value: Value) -> T {
        Params::from_json(value).decode().unwrap()
    }

    /// The spec's pattern for a reset email accepts what the edge reads.
    #[test]
    fn the_spec_states_which_emails_the_edge_reads() {
        let local = |n: usize| format!("{}@example.com", "l".repeat(n));
        let cases = [
            ("admin@example.com".to_owned(), true),
            ("  Ada@Example.COM ".to_owned(), true),
            ("a@b..c".to_owned(), true),
            (local(64), true),
            (local(65), false),
            ("0".to_owned(), false),
            ("a@b".to_owned(), false),
            ("a@.b.c".to_owned(), false),
            ("a@b.c.".to_owned(), false),
            ("a b@c.d".to_owned(), false),
            ("a@b@c.d".to_owned(), false),
            ("a\u{1}@c.d".to_owned(), false),
            (" ".to_owned(), false),
        ];
        for (email, valid) in cases {
            let request = json!({ "email": email });
            assert_eq!(
                crate::openapi::spec_accepts("TokensResetRequest", &request),
                valid,
                "spec: {email:?}"
            );
            assert_eq!(
                decode::<ResetRequest>(request).email().is_ok(),
                valid,
                "edge: {email:?}"
            );
        }
    }

    #[test]
    fn sign_in_needs_both_credentials_and_checks_the_device_first() {
        let request: SignInRequest = decode(json!({"email": " ", "password": "x"}));
        assert_eq!(request.into_domain().err(), Some(Rejection::MissingCredentials));
        let request: SignInRequest = decode(json!({"email": "a@b.com", "password": ""}));
        assert_eq!(request.into_domain().err(), Some(Rejection::MissingCredentials));
        let request: SignInRequest = decode(json!({"email": "a@b.com", "password": "x", "mobile_os": "windows"}));
        assert_eq!(request.into_domain().err(), Some(Rejection::UnknownMobileOs));
        let long = "d".repeat(256);
        let request: SignInRequest = decode(json!({"email": "a@b.com", "password": "x", "device_token": long}));
        assert_eq!(request.into_domain().err(), Some(Rejection::DeviceTokenTooLong));
        // A malformed email reaches the use case, to cost what a wrong
        // password costs.
        let request: SignInRequest = decode(json!({"email": "nope", "password": "x", "mobile_os": " "}));
        let sign_in = request.into_domain().unwrap();
        assert_eq!(sign_in.email, SignInEmail::Malformed("nope".into()));
        assert_eq!(sign_in.mobile_os, None);
    }

    #[test]
    fn completing_a_reset_needs_the_token_and_reads_the_password_and_its_confirmation() {
        let request: CompleteResetRequest = decode(json!({"password": "short"}));
        assert_eq!(request.into_domain().err(), Some(Rejection::MissingResetToken));
        let proposed = |body| decode::<CompleteResetRequest>(body).into_domain().unwrap().password;
        assert!(matches!(
            proposed(json!({"reset_token": "tok", "password": "short"})),
            ProposedPassword::Invalid(phonegate_domain::account::PasswordError::TooShort)
        ));
        assert!(matches!(
            proposed(json!({"reset_token": "tok", "password": "long enough", "password_confirmation": "different"})),
            ProposedPassword::Unconfirmed
        ));
        assert!(matches!(
            proposed(json!({"reset_token": "tok", "password": "long enough"})),
            ProposedPassword::Acceptable(_)
        ));
        assert!(matches!(
            proposed(json!({"reset_token": "tok", "password": "long enough", "password_confirmation": "long enough"})),
            ProposedPassword::Acceptable(_)
        ));
    }

    #[test]
    fn codes_may_come_as_numbers() {
        let request: VerifyPhoneRequest = decode(json!({"auth_token": "t", "token": 1988}));
        let length = CodeLength::new(4).unwrap();
        assert_eq!(request.code(length).unwrap().expose(), "1988");
        let request: VerifyPhoneRequest = decode(json!({"auth_token": "t", "token": " "}));
        assert_eq!(request.code(length).err(), Some(Rejection::MissingCode));
        let request: VerifyPhoneRequest = decode(json!({"auth_token": "t", "token": "12"}));
        assert_eq!(request.code(length).err(), Some(Rejection::MalformedCode));
    }
}
