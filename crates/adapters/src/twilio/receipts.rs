//! Twilio's delivery receipts: the form POSTs Twilio sends to a message's
//! `StatusCallback` each time its status changes, signed in
//! `X-Twilio-Signature` with the account's auth token (see
//! [`super::signature`]).
//!
//! A receipt names the message (`MessageSid`), its status
//! (`MessageStatus`) and, for a failure, Twilio's error code (`ErrorCode`).
//! Nothing else of it is read: `To`, `From` and the body are not needed and
//! never logged.

use std::fmt;

use phonegate_domain::ports::{
    ProviderMessageId, Receipt, ReceiptReader, ReceiptRejected, ReceiptRequest, ReceiptStatus,
};
use secrecy::SecretString;

use super::signature;

/// Reads Twilio's delivery receipts. `Debug` redacts the auth token.
#[derive(Clone)]
pub struct TwilioReceiptReader {
    provider: &'static str,
    auth_token: SecretString,
}

impl TwilioReceiptReader {
    /// A reader for the provider configured as `provider`, verifying with
    /// that account's `auth_token` (the one its requests use).
    pub fn new(provider: &'static str, auth_token: SecretString) -> Self {
        Self { provider, auth_token }
    }
}

impl fmt::Debug for TwilioReceiptReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioReceiptReader")
            .field("provider", &self.provider)
            .field("auth_token", &"[redacted]")
            .finish()
    }
}

/// What a `MessageStatus` says, in the domain's words; `None` for a value
/// Twilio does not document for outgoing messages.
///
/// `accepted` and `scheduled` (a Messaging Service still holds the text)
/// are queued; `sending` and `sent` have reached the carrier; `read`
/// (WhatsApp and RCS) implies delivery; `canceled` (a scheduled text
/// cancelled) was never sent, like `failed`.
fn status(value: &str) -> Option<ReceiptStatus> {
    Some(match value {
        "queued" | "accepted" | "scheduled" => ReceiptStatus::Queued,
        "sending" | "sent" => ReceiptStatus::Sent,
        "delivered" | "read" => ReceiptStatus::Delivered,
        "undelivered" => ReceiptStatus::Undelivered,
        "failed" | "canceled" => ReceiptStatus::Failed,
        _ => return None,
    })
}

/// Twilio's error codes are numbers (`30003`); anything else is not one
/// and is dropped rather than stored.
fn error_code(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit())).then(|| value.to_owned())
}

impl ReceiptReader for TwilioReceiptReader {
    fn read(&self, request: &ReceiptRequest<'_>) -> Result<Receipt, ReceiptRejected> {
        // Twilio signs a POST's form parameters; any other request is signed
        // over its URL (query included) alone.
        let params: Vec<(String, String)> = if request.method.eq_ignore_ascii_case("POST") {
            form_urlencoded::parse(request.body).into_owned().collect()
        } else {
            Vec::new()
        };
        let signature = request
            .header("x-twilio-signature")
            .ok_or(ReceiptRejected::BadSignature)?;
        if !signature::is_valid(&self.auth_token, request.url, &params, signature) {
            return Err(ReceiptRejected::BadSignature);
        }
        let fields: Vec<(String, String)> = if params.is_empty() {
            form_urlencoded::parse(request.query.as_bytes()).into_owned().collect()
        } else {
            params
        };
        let field = |name: &str| {
            fields
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        let message_id = field("MessageSid")
            .and_then(ProviderMessageId::new)
            .ok_or_else(|| ReceiptRejected::Malformed("MessageSid is missing or empty".to_owned()))?;
        let status = field("MessageStatus")
            .ok_or_else(|| ReceiptRejected::Malformed("MessageStatus is missing".to_owned()))
            .and_then(|value| {
                status(value)
                    .ok_or_else(|| ReceiptRejected::Malformed("MessageStatus is not one Twilio documents".to_owned()))
            })?;
        Ok(Receipt {
            provider: self.provider,
            message_id,
            status,
            error_code: field("ErrorCode").and_then(error_code),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_status_maps_and_others_do_not() {
        for (value, expected) in [
            ("queued", ReceiptStatus::Queued),
            ("accepted", ReceiptStatus::Queued),
            ("scheduled", ReceiptStatus::Queued),
            ("sending", ReceiptStatus::Sent),
            ("sent", ReceiptStatus::Sent),
            ("delivered", ReceiptStatus::Delivered),
            ("read", ReceiptStatus::Delivered),
            ("undelivered", ReceiptStatus::Undelivered),
            ("failed", ReceiptStatus::Failed),
            ("canceled", ReceiptStatus::Failed),
        ] {
            assert_eq!(status(value), Some(expected), "{value}");
        }
        for value in ["", "Delivered", "receiving", "received", "partially_delivered", "lost"] {
            assert_eq!(status(value), None, "{value}");
        }
    }

    #[test]
    fn only_numeric_error_codes_are_kept() {
        assert_eq!(error_code("30003").as_deref(), Some("30003"));
        assert_eq!(error_code(" 30007 ").as_deref(), Some("30007"));
        for value in ["", "abc", "30003; drop", "12345678901", "-1"] {
            assert_eq!(error_code(value), None, "{value}");
        }
    }
}
