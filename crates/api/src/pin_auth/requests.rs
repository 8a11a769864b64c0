//! pin-auth's requests: one type per operation, which both reads the
//! parameters and is their schema in the OpenAPI spec, and converts once
//! into the validated inputs of the use case.
//!
//! The parameters come from a JSON body, a form body with Rails keys
//! (`user_auth[mobile]`) or the query string alike ([`Params`](crate::params::Params) merges
//! them). Each field reads as the original service read it: text fields
//! take a string, or a number or boolean as its text, and treat any other
//! value (null, a list, an object) as absent; a missing field is the same
//! as a blank one, so that each gets the seed's "can't be blank".

use axum::http::{HeaderMap, header::AUTHORIZATION};
use phonegate_domain::{
    device::{PushHandle, PushHandleError, PushPlatform, PushPlatformError},
    otp::OtpCode,
    phone::{MobileError, MobileRule, PhoneNumber},
    pin_auth::{
        BearerToken, OtpAuthKey, OtpAuthKeyError, PinAuthSettings, PinError, ProfileText, Signup, SignupAddress,
    },
};
use serde::{Deserialize, Deserializer, de::DeserializeOwned};
use serde_json::Value;
use utoipa::{
    ToSchema,
    openapi::{ObjectBuilder, OneOfBuilder, Schema, Type},
};

/// Why a request's parameters are not the use case's input. The wording
/// is in [`super::error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RequestError {
    MissingUserAuth,
    MissingAddress,
    DistrictNotANumber,
    Mobile(MobileError),
    TooLong(Field),
    BlankKey,
    BlankPin,
    /// A key that is not 16 bytes of base64, or a pin of the wrong shape:
    /// neither can match a challenge.
    MalformedKeyOrPin,
    NoBearerToken,
    Handle(PushHandleError),
    Platform(PushPlatformError),
}

/// A bounded free-text field of a signup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    FirstName,
    LastName,
    Street,
    Flat,
    Building,
    AddressType,
}

/// `send_pin`'s parameters.
#[derive(Deserialize, ToSchema)]
#[schema(as = PinAuthSendPinRequest, example = json!({"mobile": "+85261677528"}))]
pub(super) struct SendPinRequest {
    /// The mobile with its country code, e.g. `+85262345678`. It must match
    /// the deployment's mobile rule (by default `+852`, then 5, 6 or 9, then
    /// 7 digits); a blank or missing one is answered 422.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(required = true, nullable = false)]
    mobile: Option<String>,
}

impl SendPinRequest {
    pub(super) fn into_mobile(self, rule: &MobileRule) -> Result<PhoneNumber, RequestError> {
        mobile(rule, self.mobile)
    }
}

fn mobile(rule: &MobileRule, mobile: Option<String>) -> Result<PhoneNumber, RequestError> {
    rule.parse(mobile.as_deref().unwrap_or_default())
        .map_err(RequestError::Mobile)
}

/// `signup`'s parameters.
#[derive(Deserialize, ToSchema)]
#[schema(as = PinAuthSignupRequest)]
pub(super) struct SignupRequest {
    #[serde(default, deserialize_with = "object")]
    #[schema(required = true, nullable = false)]
    user_auth: Option<SignupUser>,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = PinAuthSignupUser)]
struct SignupUser {
    /// The mobile with its country code, e.g. `+85212345678`, as for `send_pin`.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(required = true, nullable = false)]
    mobile: Option<String>,
    /// Given name.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(max_length = 255)]
    first_name: Option<String>,
    /// Family name.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(max_length = 255)]
    last_name: Option<String>,
    #[serde(default, deserialize_with = "object")]
    #[schema(required = true, nullable = false)]
    address_attributes: Option<SignupAddressParams>,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = PinAuthSignupAddress)]
struct SignupAddressParams {
    /// The district, as a number or numeric text; blank is none.
    #[serde(default, deserialize_with = "district")]
    #[schema(schema_with = district_schema)]
    district_id: District,
    /// e.g. `Profile` or `Collection`.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(max_length = 255)]
    address_type: Option<String>,
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(max_length = 255)]
    street: Option<String>,
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(max_length = 255)]
    flat: Option<String>,
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(max_length = 255)]
    building: Option<String>,
}

impl SignupRequest {
    /// The signup, its checks in the order the original made them.
    pub(super) fn into_signup(self, rule: &MobileRule) -> Result<Signup, RequestError> {
        let user = self.user_auth.ok_or(RequestError::MissingUserAuth)?;
        let address = user.address_attributes.ok_or(RequestError::MissingAddress)?;
        let district_id = match address.district_id {
            District::None => None,
            District::Id(id) => Some(id),
            District::NotANumber => return Err(RequestError::DistrictNotANumber),
        };
        let phone = mobile(rule, user.mobile)?;
        let text = |field: Field, value: Option<String>| {
            value
                .map(ProfileText::parse)
                .transpose()
                .map_err(|_| RequestError::TooLong(field))
        };
        Ok(Signup {
            phone,
            first_name: text(Field::FirstName, user.first_name)?,
            last_name: text(Field::LastName, user.last_name)?,
            address: Some(SignupAddress {
                street: text(Field::Street, address.street)?,
                flat: text(Field::Flat, address.flat)?,
                building: text(Field::Building, address.building)?,
                district_id,
                address_type: text(Field::AddressType, address.address_type)?,
            }),
        })
    }
}

/// `verify`'s parameters.
#[derive(Deserialize, ToSchema)]
#[schema(as = PinAuthVerifyRequest, example = json!({"otp_auth_key": "/JqONEgEjrZefDV3ZIQsNA==", "pin": "1234"}))]
pub(super) struct VerifyRequest {
    /// The newest key from `send_pin` or `signup`: 16 bytes in base64.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(required = true, nullable = false, pattern = r"^\s*[A-Za-z0-9+/]{21}[AQgw]==\s*$")]
    otp_auth_key: Option<String>,
    /// The pin from the SMS: as many digits as the deployment's pins have
    /// (`otp.pin_auth.length`, 4 by default), as text or a number.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(required = true, schema_with = pin_schema)]
    pin: Option<String>,
}

impl VerifyRequest {
    pub(super) fn into_key_and_pin(self, settings: &PinAuthSettings) -> Result<(OtpAuthKey, OtpCode), RequestError> {
        let key = OtpAuthKey::parse(self.otp_auth_key.as_deref().unwrap_or_default());
        let pin = settings.parse_pin(self.pin.as_deref().unwrap_or_default());
        match (key, pin) {
            (Ok(key), Ok(pin)) => Ok((key, pin)),
            (Err(OtpAuthKeyError::Blank), _) => Err(RequestError::BlankKey),
            (_, Err(PinError::Blank)) => Err(RequestError::BlankPin),
            (Err(OtpAuthKeyError::Malformed), _) | (_, Err(PinError::Malformed)) => {
                Err(RequestError::MalformedKeyOrPin)
            }
        }
    }
}

/// `register_device`'s parameters.
#[derive(Deserialize, ToSchema)]
#[schema(as = PinAuthRegisterDeviceRequest, example = json!({"handle": "fcm-registration-id", "platform": "fcm"}))]
pub(super) struct RegisterDeviceRequest {
    /// The push service's registration id: not blank, at most 4096 bytes.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(
        required = true,
        nullable = false,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$",
        max_length = 4096
    )]
    handle: Option<String>,
    /// The push platform.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[schema(required = true, schema_with = platform_schema)]
    platform: Option<String>,
}

impl RegisterDeviceRequest {
    pub(super) fn into_registration(self) -> Result<(PushHandle, PushPlatform), RequestError> {
        let handle = PushHandle::parse(self.handle.as_deref().unwrap_or_default()).map_err(RequestError::Handle)?;
        let platform =
            PushPlatform::parse(self.platform.as_deref().unwrap_or_default()).map_err(RequestError::Platform)?;
        Ok((handle, platform))
    }
}

/// The token from `Authorization: Bearer <token>`.
pub(super) fn bearer(headers: &HeaderMap) -> Result<BearerToken, RequestError> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .and_then(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer").then_some(token));
    token.and_then(BearerToken::parse).ok_or(RequestError::NoBearerToken)
}

/// A nested object parameter; any other value counts as absent.
fn object<'de, D: Deserializer<'de>, T: DeserializeOwned>(deserializer: D) -> Result<Option<T>, D::Error> {
    match Value::deserialize(deserializer)? {
        object @ Value::Object(_) => serde_json::from_value(object)
            .map(Some)
            .map_err(serde::de::Error::custom),
        _ => Ok(None),
    }
}

/// `district_id` as sent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum District {
    /// Absent, null or blank.
    #[default]
    None,
    Id(i64),
    /// Anything but an integer or its text.
    NotANumber,
}

fn district<'de, D: Deserializer<'de>>(deserializer: D) -> Result<District, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Null => District::None,
        Value::Number(number) => number.as_i64().map_or(District::NotANumber, District::Id),
        Value::String(text) if text.trim().is_empty() => District::None,
        Value::String(text) => text.trim().parse().map_or(District::NotANumber, District::Id),
        Value::Bool(_) | Value::Array(_) | Value::Object(_) => District::NotANumber,
    })
}

/// An integer, or its text (blank text is none).
fn district_schema() -> Schema {
    Schema::OneOf(
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^\s*([+-]?[0-9]+)?\s*$"))
                    .build(),
            )
            .item(ObjectBuilder::new().schema_type(Type::Integer).build())
            .item(ObjectBuilder::new().schema_type(Type::Null).build())
            .build(),
    )
}

/// The pin's digits as text, or as a number.
fn pin_schema() -> Schema {
    Schema::OneOf(
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^\s*[0-9]{4,10}\s*$"))
                    .examples(["1234"])
                    .build(),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1000))
                    .maximum(Some(9_999_999_999_i64))
                    .build(),
            )
            .build(),
    )
}

/// The platforms [`PushPlatform`] knows.
fn platform_schema() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["fcm", "gcm", "aps"]))
            .description(Some("`fcm`, `gcm` or `aps`."))
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use phonegate_domain::{
        otp::{CodeLength, OtpPolicy},
        phone::MobileRule,
    };
    use serde_json::json;

    use super::*;

    fn decode<T: DeserializeOwned>(value: Value) -> T {
        serde_json::from_value(value).expect("every field reads any value")
    }

    fn signup(value: Value) -> Result<Signup, RequestError> {
        decode::<SignupRequest>(value).into_signup(&MobileRule::hong_kong())
    }

    #[test]
    fn text_fields_read_numbers_and_ignore_other_values() {
        let request: RegisterDeviceRequest = decode(json!({"handle": 12, "platform": ["fcm"]}));
        assert_eq!(request.handle.as_deref(), Some("12"));
        assert_eq!(request.platform, None);
        let request: SendPinRequest = decode(json!({"mobile": true}));
        assert_eq!(request.mobile.as_deref(), Some("true"));
    }

    #[test]
    fn signup_checks_run_in_the_original_order() {
        assert_eq!(signup(json!({})).err(), Some(RequestError::MissingUserAuth));
        assert_eq!(
            signup(json!({"user_auth": "x"})).err(),
            Some(RequestError::MissingUserAuth)
        );
        assert_eq!(
            signup(json!({"user_auth": {"first_name": "a".repeat(300)}})).err(),
            Some(RequestError::MissingAddress)
        );
        assert_eq!(
            signup(json!({"user_auth": {"address_attributes": {"district_id": "north"}}})).err(),
            Some(RequestError::DistrictNotANumber)
        );
        assert_eq!(
            signup(json!({"user_auth": {"first_name": "a".repeat(300), "address_attributes": {}}})).err(),
            Some(RequestError::Mobile(MobileError::Blank))
        );
        let long = "a".repeat(256);
        assert_eq!(
            signup(json!({"user_auth": {"mobile": "+85251224538", "last_name": long,
                "address_attributes": {"building": long}}}))
            .err(),
            Some(RequestError::TooLong(Field::LastName))
        );
    }

    #[test]
    fn districts_read_as_numbers_numeric_text_or_nothing() {
        for (value, district) in [
            (json!(5), Some(5)),
            (json!(" 7 "), Some(7)),
            (json!(""), None),
            (Value::Null, None),
        ] {
            let signup = signup(json!({"user_auth": {"mobile": "+85251224538",
                "address_attributes": {"district_id": value}}}))
            .expect("a signup");
            assert_eq!(signup.address.and_then(|address| address.district_id), district);
        }
        for value in [json!("x"), json!(1.5), json!(true), json!([1])] {
            let error = signup(json!({"user_auth": {"mobile": "+85251224538",
                "address_attributes": {"district_id": value}}}));
            assert_eq!(error.err(), Some(RequestError::DistrictNotANumber));
        }
    }

    #[test]
    fn blank_key_then_blank_pin_then_malformed_either() {
        let settings = PinAuthSettings {
            mobile_rule: MobileRule::hong_kong(),
            policy: OtpPolicy {
                length: CodeLength::new(4).expect("a valid length"),
                ttl: Duration::from_secs(600),
                max_attempts: 5,
            },
        };
        let verify = |value: Value| decode::<VerifyRequest>(value).into_key_and_pin(&settings).err();
        assert_eq!(verify(json!({"pin": "x"})), Some(RequestError::BlankKey));
        assert_eq!(verify(json!({"otp_auth_key": "garbage"})), Some(RequestError::BlankPin));
        assert_eq!(
            verify(json!({"otp_auth_key": "garbage", "pin": "1234"})),
            Some(RequestError::MalformedKeyOrPin)
        );
        assert_eq!(
            verify(json!({"otp_auth_key": "/JqONEgEjrZefDV3ZIQsNA==", "pin": "12"})),
            Some(RequestError::MalformedKeyOrPin)
        );
        assert_eq!(
            verify(json!({"otp_auth_key": "/JqONEgEjrZefDV3ZIQsNA==", "pin": 1234})),
            None
        );
    }

    #[test]
    fn bearer_tokens_come_from_the_bearer_scheme_only() {
        let headers = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, value.parse().expect("a header value"));
            headers
        };
        assert!(bearer(&headers("Bearer abc")).is_ok());
        assert!(bearer(&headers("bearer  abc ")).is_ok());
        for refused in ["Basic abc", "Bearer", "Bearer   ", "abc"] {
            assert_eq!(
                bearer(&headers(refused)).err(),
                Some(RequestError::NoBearerToken),
                "{refused}"
            );
        }
        assert_eq!(bearer(&HeaderMap::new()).err(), Some(RequestError::NoBearerToken));
    }
}
