//! phone-verify's requests: one type per operation, whose derives are both
//! how the parameters are read (from a JSON body, a form or the query
//! string, through [`crate::params::Decoded`]) and their OpenAPI schema,
//! and their conversion into the domain's validated inputs.
//!
//! Fields are read as text the way DRF's `CharField` clients expect (a
//! number is its text; a list or an object counts as missing), then
//! checked here in DRF's order: every missing field at once, then the phone
//! number, then the session token's shape.

use phonegate_domain::{
    otp::CodeLength,
    phone::{PhoneInputError, PhoneNumber, PhonePolicy},
    phone_verify::{SessionToken, SessionTokenError, SubmittedCode, VerifyRequest as Verification},
};
use serde::Deserialize;
use utoipa::{
    ToSchema,
    openapi::{ObjectBuilder, OneOfBuilder, Schema, Type},
};

use crate::params::present;

/// What the edge refuses before a use case runs. `error.rs` words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InvalidRequest {
    /// These fields are absent, blank, or not text.
    Missing(Vec<&'static str>),
    Phone(PhoneInputError),
    /// The session token cannot be one `register` signed. The use case
    /// would refuse it as the first thing it checks, so it is answered
    /// here, as the use case's refusal is.
    MalformedSessionToken,
}

/// `register`'s parameters.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PhoneVerifyRegisterRequest, example = json!({"phone_number": "+12063721234"}))]
pub(super) struct RegisterRequest {
    /// The phone number, best with its country code; national numbers are
    /// read in the configured default region. One that does not parse, or
    /// is not a real number, is answered 400.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(value_type = String, required = true, min_length = 1, pattern = r"^[^\u0000]*[0-9][^\u0000]*$")]
    phone_number: Option<String>,
}

impl RegisterRequest {
    /// The phone number to send a code to.
    pub(super) fn into_phone(self, phones: &PhonePolicy) -> Result<PhoneNumber, InvalidRequest> {
        let phone = present(self.phone_number.as_deref()).ok_or(InvalidRequest::Missing(vec!["phone_number"]))?;
        phones.parse(phone).map_err(InvalidRequest::Phone)
    }
}

/// `verify`'s parameters.
#[derive(Deserialize, ToSchema)]
#[schema(as = PhoneVerifyVerifyRequest, example = json!({
    "phone_number": "+12063721234",
    "security_code": "711146",
    "session_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJwaG9uZV9udW1iZXIiOiIrMTIwNjM3MjEyMzQifQ.c2lnbmF0dXJl"
}))]
pub(super) struct VerifyRequest {
    /// The number the code was sent to, in any format.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(value_type = String, required = true, min_length = 1, pattern = r"^[^\u0000]*[0-9][^\u0000]*$")]
    phone_number: Option<String>,
    /// The code from the SMS: as many digits as the deployment's codes have
    /// (6 by default), as text or as a number.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(schema_with = security_code_schema, required = true)]
    security_code: Option<String>,
    /// The session token from `register`, a JWT.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(
        value_type = String,
        required = true,
        pattern = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
    )]
    session_token: Option<String>,
}

/// Shows the code and token fields only as present or absent: they are
/// secrets, and `Debug` output may reach a log line.
impl std::fmt::Debug for VerifyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyRequest")
            .field("phone_number", &self.phone_number)
            .field("security_code", &self.security_code.as_ref().map(|_| "[redacted]"))
            .field("session_token", &self.session_token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl VerifyRequest {
    /// The use case's input. A security code of the wrong shape is passed
    /// on as [`SubmittedCode::Malformed`]: the use case judges the session
    /// first (see there).
    pub(super) fn into_domain(
        self,
        phones: &PhonePolicy,
        code_length: CodeLength,
    ) -> Result<Verification, InvalidRequest> {
        let fields = [
            ("phone_number", present(self.phone_number.as_deref())),
            ("security_code", present(self.security_code.as_deref())),
            ("session_token", present(self.session_token.as_deref())),
        ];
        let [(_, Some(phone)), (_, Some(code)), (_, Some(token))] = fields else {
            let missing = fields
                .iter()
                .filter(|(_, value)| value.is_none())
                .map(|(name, _)| *name);
            return Err(InvalidRequest::Missing(missing.collect()));
        };
        let phone = phones.parse(phone).map_err(InvalidRequest::Phone)?;
        let session_token = SessionToken::parse(token).map_err(|error| match error {
            SessionTokenError::Blank => InvalidRequest::Missing(vec!["session_token"]),
            SessionTokenError::Malformed => InvalidRequest::MalformedSessionToken,
        })?;
        Ok(Verification {
            phone,
            code: SubmittedCode::parse(code, code_length),
            session_token,
        })
    }
}

/// A security code: 4 to 10 digits (the deployment's length; white space
/// around them is ignored), as text or as a JSON number.
fn security_code_schema() -> Schema {
    Schema::OneOf(
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^\s*[0-9]{4,10}\s*$"))
                    .build(),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1_000))
                    .maximum(Some(9_999_999_999_u64))
                    .build(),
            )
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn phones() -> PhonePolicy {
        PhonePolicy::new("US", &[], vec![]).expect("US is a region")
    }

    fn verify(body: serde_json::Value) -> Result<Verification, InvalidRequest> {
        let request: VerifyRequest = serde_json::from_value(body).expect("any object decodes");
        request.into_domain(&phones(), CodeLength::new(6).expect("6 is a length"))
    }

    #[test]
    fn every_missing_field_is_named_at_once() {
        let error = verify(json!({"phone_number": "+12063721234", "security_code": " "})).unwrap_err();
        assert_eq!(error, InvalidRequest::Missing(vec!["security_code", "session_token"]));
        let error = verify(json!({"security_code": ["711146"], "session_token": {}})).unwrap_err();
        assert_eq!(
            error,
            InvalidRequest::Missing(vec!["phone_number", "security_code", "session_token"])
        );
        let request: RegisterRequest = serde_json::from_value(json!({"phone_number": null})).expect("decodes");
        assert_eq!(
            request.into_phone(&phones()).unwrap_err(),
            InvalidRequest::Missing(vec!["phone_number"])
        );
    }

    #[test]
    fn the_phone_is_checked_before_the_token_and_the_code_is_passed_on() {
        let error = verify(json!({"phone_number": "+9180765XXX10", "security_code": "1", "session_token": "x"}));
        assert_eq!(error.unwrap_err(), InvalidRequest::Phone(PhoneInputError::Invalid));
        let error = verify(json!({"phone_number": "(206)372-1234", "security_code": "1", "session_token": "forged"}));
        assert_eq!(error.unwrap_err(), InvalidRequest::MalformedSessionToken);
        let request = verify(json!({"phone_number": "(206)372-1234", "security_code": 12, "session_token": "a.b.c"}))
            .expect("well-formed");
        assert_eq!(request.phone.as_str(), "+12063721234");
        assert_eq!(request.code, SubmittedCode::Malformed);
        let request =
            verify(json!({"phone_number": "+12063721234", "security_code": 711146, "session_token": "a.b.c"}))
                .expect("well-formed");
        assert!(matches!(request.code, SubmittedCode::WellFormed(_)));
    }
}
