//! The generic HTTP provider's delivery receipts: a JSON POST
//! `{"id", "status", "error"}` from the receiver, signed with Standard
//! Webhooks headers under the same secret as the requests phonegate sends
//! it (see `docs/providers.md`, "Delivery receipts").

use std::{fmt, sync::Arc};

use phonegate_domain::ports::{
    Clock, ProviderMessageId, Receipt, ReceiptReader, ReceiptRejected, ReceiptRequest, ReceiptStatus,
};
use serde::Deserialize;

use crate::{
    clock::SystemClock,
    webhook_signature::{DEFAULT_TOLERANCE, SignatureHeaders, WebhookSecret, verify},
};

/// The longest `error` code kept.
const MAX_ERROR_LEN: usize = 32;

/// Reads the generic provider's receipts. `Debug` redacts the secret.
#[derive(Clone)]
pub struct HttpReceiptReader {
    provider: &'static str,
    secret: WebhookSecret,
    clock: Arc<dyn Clock>,
}

impl HttpReceiptReader {
    /// A reader for the provider configured as `provider`, verifying with
    /// its `secret` (the one its outgoing requests are signed with) and a
    /// 5-minute tolerance on `webhook-timestamp`.
    pub fn new(provider: &'static str, secret: WebhookSecret) -> Self {
        Self {
            provider,
            secret,
            clock: Arc::new(SystemClock),
        }
    }

    /// The same reader, judging timestamps by `clock`.
    #[must_use]
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        Self { clock, ..self }
    }
}

impl fmt::Debug for HttpReceiptReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpReceiptReader")
            .field("provider", &self.provider)
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

/// The receipt's JSON body.
#[derive(Deserialize)]
struct Body {
    id: String,
    status: String,
    /// A string, though a number is taken as its digits; anything else is
    /// dropped with the rest of a bad `error`.
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// The status words of the contract, which are the domain's own.
fn status(value: &str) -> Option<ReceiptStatus> {
    Some(match value {
        "queued" => ReceiptStatus::Queued,
        "sent" => ReceiptStatus::Sent,
        "delivered" => ReceiptStatus::Delivered,
        "undelivered" => ReceiptStatus::Undelivered,
        "failed" => ReceiptStatus::Failed,
        _ => return None,
    })
}

/// `error` when it is a short code (letters, digits, `_`, `-`, `.`, at
/// most 32 of them). Anything else, free text above all (which may name
/// the number), is dropped: the receipt still counts.
fn error_code(value: &str) -> Option<String> {
    let short = !value.is_empty() && value.len() <= MAX_ERROR_LEN;
    let code_like = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    (short && code_like).then(|| value.to_owned())
}

impl ReceiptReader for HttpReceiptReader {
    fn read(&self, request: &ReceiptRequest<'_>) -> Result<Receipt, ReceiptRejected> {
        let headers = SignatureHeaders {
            id: request.header("webhook-id").unwrap_or(""),
            timestamp: request.header("webhook-timestamp").unwrap_or(""),
            signature: request.header("webhook-signature").unwrap_or(""),
        };
        verify(&self.secret, headers, request.body, self.clock.now(), DEFAULT_TOLERANCE)
            .map_err(|_| ReceiptRejected::BadSignature)?;
        // Read as an object first: serde would also take a bare array for
        // the struct, which the contract does not allow.
        let body: Body = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(request.body)
            .and_then(|object| serde_json::from_value(serde_json::Value::Object(object)))
            .map_err(|_| {
                ReceiptRejected::Malformed("the body is not a JSON object with string id and status".to_owned())
            })?;
        let message_id = ProviderMessageId::new(body.id)
            .ok_or_else(|| ReceiptRejected::Malformed("id is empty or longer than 128 bytes".to_owned()))?;
        let status = status(&body.status).ok_or_else(|| {
            ReceiptRejected::Malformed("status is not queued, sent, delivered, undelivered or failed".to_owned())
        })?;
        Ok(Receipt {
            provider: self.provider,
            message_id,
            status,
            error_code: match body.error {
                Some(serde_json::Value::String(text)) => error_code(&text),
                Some(serde_json::Value::Number(number)) => error_code(&number.to_string()),
                _ => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_codes_are_kept_as_errors() {
        for code in ["30003", "absent_subscriber", "E-12.4"] {
            assert_eq!(error_code(code).as_deref(), Some(code));
        }
        for text in ["", "number +14155550100 is off", "a/b", &"x".repeat(33)] {
            assert_eq!(error_code(text), None, "{text}");
        }
    }

    #[test]
    fn the_status_words_are_the_contracts() {
        assert_eq!(status("undelivered"), Some(ReceiptStatus::Undelivered));
        assert_eq!(status("Delivered"), None);
        assert_eq!(status("read"), None);
    }
}
