//! Twilio's error responses and how they map onto the domain's
//! [`DeliveryError`].

use std::{fmt, time::Duration};

use phonegate_domain::ports::DeliveryError;
use serde::Deserialize;

/// Twilio: the `To` number is not a valid phone number.
const INVALID_TO_NUMBER: u32 = 21211;
/// Twilio: the `To` number is not a mobile number (cannot receive texts).
const NOT_A_MOBILE_NUMBER: u32 = 21614;
/// Twilio: the account may not send to the `To` number's region.
const REGION_NOT_ENABLED: u32 = 21408;
/// Twilio: the recipient replied STOP and has opted out of our messages.
const UNSUBSCRIBED_RECIPIENT: u32 = 21610;
/// Verify: the `To` number is invalid for the channel.
const VERIFY_INVALID_PARAMETER: u32 = 60200;
/// Messages: the channel could not find the `To` address, i.e. the
/// number is not a WhatsApp user (WhatsApp's 1006, 1013, 1021).
const CHANNEL_TO_NOT_FOUND: u32 = 63003;
/// Messages: an invalid message recipient for the channel (WhatsApp's
/// 1002, 1026: the receiver cannot get WhatsApp messages).
const CHANNEL_INVALID_RECIPIENT: u32 = 63024;
/// Messages: no channel has the `From` address (the WhatsApp sender is
/// wrong or not approved).
const CHANNEL_FROM_NOT_FOUND: u32 = 63007;
/// Verify: the WhatsApp channel of the Verify service is not set up.
const VERIFY_WHATSAPP_NOT_CONFIGURED: u32 = 68008;
/// Too many requests for the account.
const TOO_MANY_REQUESTS: u32 = 20429;
/// Verify: too many verifications sent to this number.
const VERIFY_MAX_SEND_ATTEMPTS: u32 = 60203;
/// Verify: too many concurrent requests for this number.
const VERIFY_TOO_MANY_CONCURRENT: u32 = 60212;
/// The account SID and auth token do not authenticate.
const AUTHENTICATE: u32 = 20003;
/// The resource was not found (for Verify checks: no pending verification).
const NOT_FOUND: u32 = 20404;

/// An error response from Twilio: the HTTP status and, when the body is
/// Twilio's JSON error document, its `code`, `message` and `more_info`.
///
/// The message is Twilio's text with the auth token (and the request's
/// secrets, see [`TwilioError::redacted`]) removed, so it can be logged and
/// carried in a [`DeliveryError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioError {
    /// The HTTP status of the response.
    pub status: u16,
    /// Twilio's error code (`21211`, `20003`, …), if the body had one.
    pub code: Option<u32>,
    /// Twilio's human-readable message, or a short description of the body
    /// when it was not Twilio's JSON.
    pub message: String,
    /// The documentation link Twilio gives for the code.
    pub more_info: Option<String>,
    /// The delay from a `Retry-After` header, if the response had one.
    pub retry_after: Option<Duration>,
}

/// Twilio's JSON error document. Every field is optional because proxies in
/// front of Twilio may answer with something else.
#[derive(Deserialize)]
struct ErrorBody {
    code: Option<u32>,
    message: Option<String>,
    more_info: Option<String>,
}

impl TwilioError {
    /// Reads an error response. A body that is not Twilio's JSON error
    /// document still gives an error with the HTTP status; the body itself
    /// is not kept, since it could be anything.
    pub fn from_response(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Self {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(parsed) => Self {
                status,
                code: parsed.code,
                message: parsed.message.unwrap_or_default(),
                more_info: parsed.more_info,
                retry_after,
            },
            Err(_) => Self {
                status,
                code: None,
                message: "the response body is not a Twilio error document".to_owned(),
                more_info: None,
                retry_after,
            },
        }
    }

    /// This error with every occurrence of each of `secrets` in the message
    /// replaced. Twilio has no reason to echo a credential or a message
    /// body, but the message ends up in logs, so it is scrubbed anyway.
    #[must_use]
    pub fn redacted(mut self, secrets: &[&str]) -> Self {
        for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
            if self.message.contains(secret) {
                self.message = self.message.replace(secret, "[redacted]");
            }
        }
        self
    }

    /// Whether Twilio says the resource does not exist (HTTP 404 or code
    /// 20404). For a Verify check this means no verification is pending.
    pub fn is_not_found(&self) -> bool {
        self.status == 404 || self.code == Some(NOT_FOUND)
    }

    /// The status and code alone, without Twilio's text, which may echo the
    /// recipient's number: what a [`DeliveryError`] carries (and the
    /// outbox's `last_error` keeps). The text is logged where the error is
    /// received.
    pub fn summary(&self) -> String {
        match self.code {
            Some(code) => format!("twilio {code} (HTTP {})", self.status),
            None => format!("twilio (HTTP {})", self.status),
        }
    }

    /// The domain's view of this error. Codes decide first, the HTTP status
    /// second: a 400 with code 21211 is an invalid number, a bare 429 is a
    /// rate limit. Errors that no retry can cure for this message (the
    /// number, its region or its owner's opt-out) are final.
    pub fn to_delivery_error(&self) -> DeliveryError {
        match self.code {
            Some(INVALID_TO_NUMBER | NOT_A_MOBILE_NUMBER | VERIFY_INVALID_PARAMETER) => DeliveryError::InvalidNumber,
            Some(code @ (REGION_NOT_ENABLED | UNSUBSCRIBED_RECIPIENT)) => {
                DeliveryError::Rejected(format!("twilio {code}"))
            }
            Some(TOO_MANY_REQUESTS | VERIFY_MAX_SEND_ATTEMPTS | VERIFY_TOO_MANY_CONCURRENT) => {
                DeliveryError::RateLimited {
                    retry_after: self.retry_after,
                }
            }
            // Verify passes the channel's errors on as Messages does.
            Some(CHANNEL_TO_NOT_FOUND | CHANNEL_INVALID_RECIPIENT) => DeliveryError::NotOnChannel,
            Some(AUTHENTICATE | CHANNEL_FROM_NOT_FOUND | VERIFY_WHATSAPP_NOT_CONFIGURED) => {
                DeliveryError::Misconfigured(self.summary())
            }
            _ => match self.status {
                429 => DeliveryError::RateLimited {
                    retry_after: self.retry_after,
                },
                // Outside a Verify check (which handles 404 itself), a
                // missing resource means a wrong account or service SID.
                401 | 403 | 404 => DeliveryError::Misconfigured(self.summary()),
                _ => DeliveryError::Unavailable(self.summary()),
            },
        }
    }
}

impl fmt::Display for TwilioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "Twilio error {code} (HTTP {})", self.status)?,
            None => write!(f, "Twilio error (HTTP {})", self.status)?,
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(more_info) = &self.more_info {
            write!(f, " ({more_info})")?;
        }
        Ok(())
    }
}

impl std::error::Error for TwilioError {}

impl From<TwilioError> for DeliveryError {
    fn from(error: TwilioError) -> Self {
        error.to_delivery_error()
    }
}

/// Reads a `Retry-After` header given in seconds, as Twilio sends it. The
/// HTTP-date form is not used by Twilio and is ignored.
pub(super) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_misconfiguration(error: &TwilioError) -> bool {
        matches!(error.to_delivery_error(), DeliveryError::Misconfigured(_))
    }

    fn error(status: u16, code: Option<u32>) -> TwilioError {
        TwilioError {
            status,
            code,
            message: "m".to_owned(),
            more_info: None,
            retry_after: Some(Duration::from_secs(7)),
        }
    }

    #[test]
    fn codes_decide_before_statuses() {
        assert!(matches!(
            error(400, Some(21211)).to_delivery_error(),
            DeliveryError::InvalidNumber
        ));
        assert!(matches!(
            error(400, Some(60200)).to_delivery_error(),
            DeliveryError::InvalidNumber
        ));
        for code in [20429, 60203, 60212] {
            assert!(matches!(
                error(400, Some(code)).to_delivery_error(),
                DeliveryError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(7)
            ));
        }
        assert!(matches!(
            error(429, None).to_delivery_error(),
            DeliveryError::RateLimited { .. }
        ));
        assert!(is_misconfiguration(&error(400, Some(20003))));
        assert!(is_misconfiguration(&error(401, None)));
        assert!(is_misconfiguration(&error(403, Some(1))));
        assert!(matches!(
            error(400, Some(21602)).to_delivery_error(),
            DeliveryError::Unavailable(_)
        ));
    }

    #[test]
    fn a_number_without_whatsapp_is_told_apart() {
        for code in [63003, 63024] {
            assert!(matches!(
                error(400, Some(code)).to_delivery_error(),
                DeliveryError::NotOnChannel
            ));
        }
        assert!(is_misconfiguration(&error(400, Some(63007))));
        assert!(is_misconfiguration(&error(400, Some(68008))));
    }

    #[test]
    fn reads_twilio_documents_and_anything_else() {
        let parsed = TwilioError::from_response(
            400,
            None,
            br#"{"code": 21211, "message": "The 'To' number is not valid.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#,
        );
        assert_eq!(parsed.code, Some(21211));
        assert_eq!(parsed.message, "The 'To' number is not valid.");
        assert_eq!(
            parsed.to_string(),
            "Twilio error 21211 (HTTP 400): The 'To' number is not valid. (https://www.twilio.com/docs/errors/21211)"
        );
        let html = TwilioError::from_response(502, None, b"<html>Bad gateway</html>");
        assert_eq!(html.code, None);
        assert!(!html.to_string().contains("html"));
    }

    #[test]
    fn redaction_removes_secrets_from_the_message() {
        let parsed = TwilioError::from_response(400, None, br#"{"code": 1, "message": "token s3cr3t here"}"#);
        assert_eq!(parsed.redacted(&["s3cr3t", ""]).message, "token [redacted] here");
    }
}
