//! Vonage's delivery receipts (DLRs) from the SMS API: sent to the
//! `callback` of each text (or the account's receipt webhook) as a GET
//! query, a POST form or a POST of JSON, as the dashboard says.
//!
//! Only signed receipts are believed. Vonage signs webhooks only once its
//! support has turned signed webhooks on for the account, and an unsigned
//! receipt could come from anyone: a forged `failed` would make phonegate
//! send the code again through another provider, at the owner's cost. So
//! without a signature secret every receipt is refused, and a receipt's
//! `timestamp` (which Vonage adds to signed requests against replays) must
//! be within five minutes of our clock.

use std::{fmt, sync::Arc, time::Duration};

use phonegate_domain::ports::{
    Clock, ProviderMessageId, Receipt, ReceiptReader, ReceiptRejected, ReceiptRequest, ReceiptStatus,
};
use secrecy::SecretString;

use super::{VonageSettings, signature, signature::VonageSignatureMethod};
use crate::clock::SystemClock;

/// How far a signed receipt's `timestamp` may be from our clock, either
/// way: the window Standard Webhooks uses too, wide enough for Vonage's
/// retries of one request and clock skew, short enough against replays.
const TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Reads Vonage's delivery receipts. `Debug` redacts the secret.
#[derive(Clone)]
pub struct VonageReceiptReader {
    provider: &'static str,
    secret: Option<SecretString>,
    method: VonageSignatureMethod,
    clock: Arc<dyn Clock>,
}

impl VonageReceiptReader {
    /// A reader for the provider configured as `provider`, verifying with
    /// the account's signature secret (not its API secret) by `method`.
    /// Without a secret it refuses every receipt.
    pub fn new(provider: &'static str, signature_secret: Option<SecretString>, method: VonageSignatureMethod) -> Self {
        Self {
            provider,
            secret: signature_secret,
            method,
            clock: Arc::new(SystemClock),
        }
    }

    /// The reader for `settings`' `signature_secret` and `signature_method`.
    pub fn from_settings(provider: &'static str, settings: &VonageSettings) -> Self {
        Self::new(provider, settings.signature_secret.clone(), settings.signature_method)
    }

    /// The same reader, judging timestamps by `clock`.
    #[must_use]
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        Self { clock, ..self }
    }
}

impl fmt::Debug for VonageReceiptReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VonageReceiptReader")
            .field("provider", &self.provider)
            .field("signature_secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// A JSON value as Vonage signs it: strings as they are, numbers as
/// written. Anything else has no agreed text form, so it cannot be
/// verified.
fn json_text(value: serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The receipt's parameters: the JSON object of a POST of JSON, the form of
/// any other POST with a body, else the query. `None` when they cannot be
/// read unambiguously (bad JSON, a name given twice), which makes the
/// signature unverifiable.
fn parameters(request: &ReceiptRequest<'_>) -> Option<Vec<(String, String)>> {
    let is_post = request.method.eq_ignore_ascii_case("POST");
    let is_json = request
        .header("content-type")
        .is_some_and(|value| value.trim_start().to_ascii_lowercase().starts_with("application/json"));
    let params: Vec<(String, String)> = if is_post && is_json {
        let serde_json::Value::Object(object) = serde_json::from_slice(request.body).ok()? else {
            return None;
        };
        object
            .into_iter()
            .map(|(name, value)| json_text(value).map(|text| (name, text)))
            .collect::<Option<_>>()?
    } else if is_post && !request.body.is_empty() {
        form_urlencoded::parse(request.body).into_owned().collect()
    } else {
        form_urlencoded::parse(request.query.as_bytes()).into_owned().collect()
    };
    let mut names: Vec<&str> = params.iter().map(|(name, _)| name.as_str()).collect();
    names.sort_unstable();
    let unique = names.windows(2).all(|pair| pair[0] != pair[1]);
    unique.then_some(params)
}

/// What a DLR `status` says, in the domain's words; `None` for a value
/// Vonage does not document.
///
/// `accepted` and `buffered` mean the carrier holds the text (the handset
/// may be off), so it is sent and not final. Vonage's own `unknown` (the
/// carrier's receipt said nothing clear) is not final either and counts as
/// sent: refusing it would only make Vonage retry a receipt that never
/// reads better. `expired` means the carrier tried until the validity
/// period ran out (another route may reach the handset); `failed` and
/// `rejected` mean the message could not be sent at all.
fn status(value: &str) -> Option<ReceiptStatus> {
    Some(match value {
        "delivered" => ReceiptStatus::Delivered,
        "accepted" | "buffered" | "unknown" => ReceiptStatus::Sent,
        "expired" => ReceiptStatus::Undelivered,
        "failed" | "rejected" => ReceiptStatus::Failed,
        _ => return None,
    })
}

/// Vonage's `err-code`: a number, `0` meaning none; anything else is not
/// stored.
fn error_code(value: &str) -> Option<String> {
    let value = value.trim();
    let numeric = !value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit());
    (numeric && value.bytes().any(|b| b != b'0')).then(|| value.to_owned())
}

impl ReceiptReader for VonageReceiptReader {
    fn read(&self, request: &ReceiptRequest<'_>) -> Result<Receipt, ReceiptRejected> {
        let secret = self.secret.as_ref().ok_or(ReceiptRejected::BadSignature)?;
        let params = parameters(request).ok_or(ReceiptRejected::BadSignature)?;
        let field = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        let sig = field("sig").ok_or(ReceiptRejected::BadSignature)?;
        if !signature::is_valid(self.method, secret, &params, sig) {
            return Err(ReceiptRejected::BadSignature);
        }
        // A signed request without a timestamp could be replayed forever.
        let timestamp = field("timestamp")
            .and_then(|text| text.trim().parse::<i64>().ok())
            .ok_or(ReceiptRejected::BadSignature)?;
        let distance = self.clock.now().unix_millis().abs_diff(timestamp.saturating_mul(1000));
        if u128::from(distance) > TOLERANCE.as_millis() {
            return Err(ReceiptRejected::BadSignature);
        }
        let message_id = field("messageId")
            .and_then(ProviderMessageId::new)
            .ok_or_else(|| ReceiptRejected::Malformed("messageId is missing or empty".to_owned()))?;
        let status = field("status")
            .ok_or_else(|| ReceiptRejected::Malformed("status is missing".to_owned()))
            .and_then(|value| {
                status(value).ok_or_else(|| ReceiptRejected::Malformed("status is not one Vonage documents".to_owned()))
            })?;
        Ok(Receipt {
            provider: self.provider,
            message_id,
            status,
            error_code: field("err-code").and_then(error_code),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_status_maps_and_others_do_not() {
        for (value, expected) in [
            ("delivered", ReceiptStatus::Delivered),
            ("accepted", ReceiptStatus::Sent),
            ("buffered", ReceiptStatus::Sent),
            ("unknown", ReceiptStatus::Sent),
            ("expired", ReceiptStatus::Undelivered),
            ("failed", ReceiptStatus::Failed),
            ("rejected", ReceiptStatus::Failed),
        ] {
            assert_eq!(status(value), Some(expected), "{value}");
        }
        for value in ["", "DELIVRD", "Delivered", "submitted"] {
            assert_eq!(status(value), None, "{value}");
        }
    }

    #[test]
    fn zero_and_non_numeric_error_codes_are_dropped() {
        assert_eq!(error_code("1").as_deref(), Some("1"));
        assert_eq!(error_code("0052").as_deref(), Some("0052"));
        for value in ["", "0", "00", "x1", "12345678901"] {
            assert_eq!(error_code(value), None, "{value}");
        }
    }
}
