//! phone-login's requests: one type per operation, whose derives are both
//! how the parameters are read (the query string as the seed documents it,
//! or a form or JSON body, through [`crate::params::Decoded`]) and their
//! OpenAPI parameters, and their conversion into the domain's validated
//! inputs.
//!
//! Parameters are checked in the order the API has always answered them:
//! the phone number (missing, then invalid), the device id, then the
//! operation's own parameter.

use phonegate_domain::{
    otp::{Channel, CodeLength, OtpCode},
    phone::{PhoneInputError, PhoneNumber, PhonePolicy},
    phone_login::{DeviceId, DeviceIdError, PinCheck, PinRequest, RequiredDevice, SubmittedAccessCode},
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// What the edge refuses before a use case runs. `error.rs` words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InvalidRequest {
    /// The named parameter is absent, blank, or not text.
    Missing(&'static str),
    /// The named parameter has a value this API does not take.
    Invalid(&'static str),
    Phone(PhoneInputError),
    /// The PIN does not have the deployment's number of digits: it cannot
    /// match, and is answered as a wrong PIN without spending an attempt.
    MalformedPin,
}

/// `phone_login`'s parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct PhoneLoginRequest {
    /// The phone number, in any format; national numbers are read in the
    /// default region.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[param(value_type = String, required = true, min_length = 1, pattern = r"^[^\u0000]*[0-9][^\u0000]*$")]
    phone_number: Option<String>,
    /// The device's unique id (at most 255 bytes of UTF-8, no control
    /// characters); `check_pin` must name the same one.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[param(value_type = String, required = true, max_length = 255, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$")]
    device_id: Option<String>,
    /// `T` to call instead of texting; `F` or absent to text.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[param(value_type = Option<CallVerify>, inline)]
    call_verify: Option<String>,
}

/// Whether to call (`T`) or text (`F`).
#[derive(ToSchema)]
#[expect(dead_code, reason = "it documents the values `PhoneLoginRequest` reads")]
enum CallVerify {
    T,
    F,
}

impl PhoneLoginRequest {
    pub(super) fn into_domain(self, phones: &PhonePolicy) -> Result<PinRequest, InvalidRequest> {
        let phone = phone(self.phone_number.as_deref(), phones)?;
        let device = device(self.device_id.as_deref())?;
        let channel = match self.call_verify.as_deref().map(str::trim) {
            None | Some("" | "F") => Channel::Sms,
            Some("T") => Channel::Call,
            Some(_) => return Err(InvalidRequest::Invalid("call_verify")),
        };
        Ok(PinRequest { phone, device, channel })
    }
}

/// `check_pin`'s parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct CheckPinRequest {
    /// The number the PIN was sent to, in any format.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[param(value_type = String, required = true, min_length = 1, pattern = r"^[^\u0000]*[0-9][^\u0000]*$")]
    phone_number: Option<String>,
    /// The device id of the `phone_login` request.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[param(value_type = String, required = true, max_length = 255, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$")]
    device_id: Option<String>,
    /// The PIN: as many digits as the deployment's PINs have (5 by
    /// default).
    #[serde(default, deserialize_with = "crate::params::text")]
    #[param(value_type = String, required = true, pattern = r"^\s*[0-9]{4,10}\s*$")]
    verify_pin: Option<String>,
}

/// Shows the code and token fields only as present or absent: they are
/// secrets, and `Debug` output may reach a log line.
impl std::fmt::Debug for CheckPinRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckPinRequest")
            .field("phone_number", &self.phone_number)
            .field("device_id", &self.device_id)
            .field("verify_pin", &self.verify_pin.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl CheckPinRequest {
    pub(super) fn into_domain(self, phones: &PhonePolicy, pin_length: CodeLength) -> Result<PinCheck, InvalidRequest> {
        let phone = phone(self.phone_number.as_deref(), phones)?;
        let device = device(self.device_id.as_deref())?;
        let pin = required(self.verify_pin.as_deref(), "verify_pin")?;
        let pin = OtpCode::parse(pin, pin_length).ok_or(InvalidRequest::MalformedPin)?;
        Ok(PinCheck { phone, device, pin })
    }
}

/// `check_access_code`'s parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct CheckAccessCodeRequest {
    /// The access code from `check_pin`: 32 hex digits.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[param(value_type = String, required = true, pattern = r"^\s*[0-9A-Fa-f]{32}\s*$")]
    access_code: Option<String>,
    /// If given, it must be the code's device.
    #[serde(default, deserialize_with = "crate::params::text")]
    #[param(value_type = Option<String>, pattern = r"^[^\u0000]*$")]
    device_id: Option<String>,
}

/// Shows the code and token fields only as present or absent: they are
/// secrets, and `Debug` output may reach a log line.
impl std::fmt::Debug for CheckAccessCodeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckAccessCodeRequest")
            .field("device_id", &self.device_id)
            .field("access_code", &self.access_code.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl CheckAccessCodeRequest {
    /// The use case's inputs. A malformed code or device id is passed on
    /// for the use case to refuse: the per-IP limit applies first.
    pub(super) fn into_domain(self) -> Result<(SubmittedAccessCode, RequiredDevice), InvalidRequest> {
        let code = required(self.access_code.as_deref(), "access_code")?;
        Ok((
            SubmittedAccessCode::parse(code),
            RequiredDevice::parse(self.device_id.as_deref()),
        ))
    }
}

/// A parameter that was sent and is not blank.
fn required<'a>(value: Option<&'a str>, name: &'static str) -> Result<&'a str, InvalidRequest> {
    crate::params::present(value).ok_or(InvalidRequest::Missing(name))
}

fn phone(value: Option<&str>, phones: &PhonePolicy) -> Result<PhoneNumber, InvalidRequest> {
    let input = required(value, "phone_number")?;
    phones.parse(input).map_err(InvalidRequest::Phone)
}

fn device(value: Option<&str>) -> Result<DeviceId, InvalidRequest> {
    DeviceId::parse(value.unwrap_or_default()).map_err(|error| match error {
        DeviceIdError::Blank => InvalidRequest::Missing("device_id"),
        DeviceIdError::TooLong | DeviceIdError::ControlCharacter => InvalidRequest::Invalid("device_id"),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn phones() -> PhonePolicy {
        PhonePolicy::new("US", &[], vec![]).expect("US is a region")
    }

    fn login(body: serde_json::Value) -> Result<PinRequest, InvalidRequest> {
        let request: PhoneLoginRequest = serde_json::from_value(body).expect("any object decodes");
        request.into_domain(&phones())
    }

    #[test]
    fn parameters_are_checked_in_order() {
        assert_eq!(
            login(json!({"device_id": "d"})).unwrap_err(),
            InvalidRequest::Missing("phone_number")
        );
        assert_eq!(
            login(json!({"phone_number": "12", "call_verify": "yes"})).unwrap_err(),
            InvalidRequest::Phone(PhoneInputError::Invalid)
        );
        assert_eq!(
            login(json!({"phone_number": "+12063721234", "device_id": [" d "]})).unwrap_err(),
            InvalidRequest::Missing("device_id")
        );
        assert_eq!(
            login(json!({"phone_number": "+12063721234", "device_id": "d".repeat(300)})).unwrap_err(),
            InvalidRequest::Invalid("device_id")
        );
        assert_eq!(
            login(json!({"phone_number": "+12063721234", "device_id": "d", "call_verify": "yes"})).unwrap_err(),
            InvalidRequest::Invalid("call_verify")
        );
        let request =
            login(json!({"phone_number": "(206)372-1234", "device_id": " d ", "call_verify": " T "})).expect("valid");
        assert_eq!(
            (request.phone.as_str(), request.device.as_str(), request.channel),
            ("+12063721234", "d", Channel::Call)
        );
        let request =
            login(json!({"phone_number": 12063721234_u64, "device_id": 7, "call_verify": ""})).expect("valid");
        assert_eq!((request.device.as_str(), request.channel), ("7", Channel::Sms));
    }

    #[test]
    fn a_pin_is_required_and_must_have_the_deployment_s_length() {
        let check = |pin: serde_json::Value| {
            let request: CheckPinRequest =
                serde_json::from_value(json!({"phone_number": "+12063721234", "device_id": "d", "verify_pin": pin}))
                    .expect("any object decodes");
            request.into_domain(&phones(), CodeLength::new(5).expect("5 is a length"))
        };
        assert_eq!(check(json!(null)).unwrap_err(), InvalidRequest::Missing("verify_pin"));
        assert_eq!(check(json!("1234")).unwrap_err(), InvalidRequest::MalformedPin);
        assert!(check(json!(12345)).is_ok());
        assert!(check(json!(" 12345 ")).is_ok());
    }

    #[test]
    fn an_access_code_is_required_and_passed_on_as_sent() {
        let check = |body: serde_json::Value| {
            let request: CheckAccessCodeRequest = serde_json::from_value(body).expect("any object decodes");
            request.into_domain()
        };
        assert_eq!(
            check(json!({"device_id": "d"})).unwrap_err(),
            InvalidRequest::Missing("access_code")
        );
        assert_eq!(
            check(json!({"access_code": "short", "device_id": "\u{7}"})).expect("passed on"),
            (SubmittedAccessCode::Malformed, RequiredDevice::Unmatchable)
        );
    }
}
