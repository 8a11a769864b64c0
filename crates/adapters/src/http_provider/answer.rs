//! What the receiver's answers mean: the mapping of a non-2xx answer onto
//! the domain's [`DeliveryError`].

use std::time::Duration;

use phonegate_domain::ports::DeliveryError;
use serde::Deserialize;

/// How much of an error answer is read, to find `{"error":"invalid_number"}`
/// or `{"error":"not_on_channel"}`;
/// the rest is not needed and is not waited for.
const MAX_ERROR_BODY: usize = 4096;

/// The one error answer the receiver can give a meaning to.
#[derive(Deserialize)]
struct ErrorAnswer {
    error: Option<String>,
}

/// The error for a non-2xx answer, with its `Retry-After` and, for a 4xx,
/// the start of its body.
pub(super) async fn refusal(response: reqwest::Response) -> DeliveryError {
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let answer = if status.is_client_error() {
        read_prefix(response).await
    } else {
        Vec::new()
    };
    classify(status.as_u16(), retry_after, &answer)
}

/// The error for a non-2xx answer. `answer` is (the start of) its body, read
/// only for 4xx answers.
fn classify(status: u16, retry_after: Option<Duration>, answer: &[u8]) -> DeliveryError {
    let summary = format!("http {status}");
    match status {
        429 => DeliveryError::RateLimited { retry_after },
        400..=499 => match error_code(answer).as_deref() {
            Some("invalid_number") => DeliveryError::InvalidNumber,
            // The number has no account on the channel (not on WhatsApp):
            // the dispatcher sends the same code by SMS instead.
            Some("not_on_channel") => DeliveryError::NotOnChannel,
            _ => other_refusal(status, summary),
        },
        _ => other_refusal(status, summary),
    }
}

/// A refusal whose body named no error this contract defines.
fn other_refusal(status: u16, summary: String) -> DeliveryError {
    match status {
        // The receiver does not accept our signature (a wrong or rotated
        // secret) or our request at all: every message would fail the same
        // way, and the messages should survive until the settings are
        // fixed rather than fail for good.
        401 | 403 => DeliveryError::Misconfigured(summary),
        400..=499 => DeliveryError::Rejected(summary),
        500..=599 => DeliveryError::Unavailable(summary),
        // Redirects are not followed (and 1xx never ends a request): the
        // URL in the settings is not where the receiver is.
        _ => DeliveryError::Misconfigured(summary),
    }
}

/// The `error` of a JSON error answer, if it has one.
fn error_code(answer: &[u8]) -> Option<String> {
    serde_json::from_slice::<ErrorAnswer>(answer).ok()?.error
}

/// The first [`MAX_ERROR_BODY`] bytes of an answer (fewer if it cannot be
/// read to that point: an unreadable error body means no error code).
async fn read_prefix(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(MAX_ERROR_BODY - body.len())]),
            Ok(None) | Err(_) => break,
        }
    }
    body
}

/// A `Retry-After` header given in seconds. The HTTP-date form is ignored:
/// the dispatcher's backoff applies instead.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_onto_delivery_errors() {
        let seven = Some(Duration::from_secs(7));
        assert!(matches!(
            classify(429, seven, b""),
            DeliveryError::RateLimited { retry_after } if retry_after == seven
        ));
        assert!(matches!(
            classify(422, None, br#"{"error":"invalid_number"}"#),
            DeliveryError::InvalidNumber
        ));
        assert!(matches!(
            classify(422, None, br#"{"error":"not_on_channel"}"#),
            DeliveryError::NotOnChannel
        ));
        assert!(
            matches!(classify(400, None, br#"{"error":"other"}"#), DeliveryError::Rejected(text) if text == "http 400")
        );
        assert!(matches!(classify(410, None, b"<html>"), DeliveryError::Rejected(text) if text == "http 410"));
        assert!(matches!(classify(401, None, b""), DeliveryError::Misconfigured(text) if text == "http 401"));
        assert!(matches!(classify(403, None, b""), DeliveryError::Misconfigured(_)));
        assert!(matches!(classify(302, None, b""), DeliveryError::Misconfigured(text) if text == "http 302"));
        assert!(matches!(classify(503, None, b""), DeliveryError::Unavailable(text) if text == "http 503"));
    }
}
