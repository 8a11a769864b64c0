//! One HTTP request to Vonage, sent once, and what can go wrong with it.

use std::time::Duration;

use phonegate_domain::ports::DeliveryError;

/// What a Vonage call is, for logs, metrics and error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Operation {
    SendSms,
    Call,
}

impl Operation {
    pub(super) const fn as_str(self) -> &'static str {
        match self {
            Self::SendSms => "send_sms",
            Self::Call => "call",
        }
    }
}

/// Vonage's answer to a request: its status, its `Retry-After` delay and its
/// body (empty when it could not be read).
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) retry_after: Option<Duration>,
    pub(super) body: Vec<u8>,
}

/// Vonage answered and refused the request (or one of its messages).
///
/// It holds only what may be logged and counted: the HTTP status, the SMS
/// API's per-message status, the code of a Voice API problem document and
/// its trace id. Vonage's free text (`error-text`, `detail`) is never kept,
/// since it may echo the recipient's number.
#[derive(Debug)]
pub(super) struct Refusal {
    pub(super) http_status: u16,
    /// The SMS API's `messages[].status` (`"7"`), when that decided.
    pub(super) vonage_status: Option<String>,
    /// The code of a problem document's `type` (`unauthorized`, `low-balance`).
    pub(super) problem: Option<String>,
    /// The problem document's `instance`: Vonage's trace id, for support.
    pub(super) instance: Option<String>,
    pub(super) error: DeliveryError,
}

impl Refusal {
    /// The code counted in metrics: the SMS status, else `http_<status>`.
    pub(super) fn metric_code(&self) -> String {
        self.vonage_status
            .clone()
            .unwrap_or_else(|| format!("http_{}", self.http_status))
    }
}

/// Why a request did not succeed.
#[derive(Debug)]
pub(super) enum Failure {
    /// Vonage answered with a refusal.
    Refused(Refusal),
    /// No usable answer came (connection error, timeout, unreadable body).
    Unavailable(String),
    /// The request could not even be built (for example a bad URL).
    Misconfigured(String),
}

/// Sends `request` once and reads the whole answer.
///
/// There is no retry here on purpose: the dispatcher fails over to the next
/// provider of the route at once on a retryable error and otherwise retries
/// with its own backoff, so a retry inside the client would only delay the
/// failover.
pub(super) async fn send(request: reqwest::RequestBuilder) -> Result<Answer, Failure> {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = crate::vendor_http::retry_after(response.headers());
            // A body that cannot be read is treated as empty: the status is
            // kept, and an empty SMS answer is read as no answer.
            let body = response.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            Ok(Answer {
                status,
                retry_after,
                body,
            })
        }
        Err(error) if error.is_builder() => Err(Failure::Misconfigured(describe(&error))),
        Err(error) => Err(Failure::Unavailable(describe(&error))),
    }
}

/// A transport error in a few words, named for Vonage.
fn describe(error: &reqwest::Error) -> String {
    format!("vonage: {}", crate::vendor_http::describe(error))
}
