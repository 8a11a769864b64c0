//! One form POST to Twilio, with bounded retries of transient failures.

use std::time::Duration;

use secrecy::ExposeSecret as _;

use super::{TwilioClient, error::TwilioError};

/// What a Twilio call is, for logs and error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Operation {
    SendSms,
    SendWhatsApp,
    Call,
    VerifyStart,
    VerifyCheck,
}

impl Operation {
    pub(super) const fn as_str(self) -> &'static str {
        match self {
            Self::SendSms => "send_sms",
            Self::SendWhatsApp => "send_whatsapp",
            Self::Call => "call",
            Self::VerifyStart => "verify_start",
            Self::VerifyCheck => "verify_check",
        }
    }
}

/// Why a POST did not succeed.
#[derive(Debug)]
pub(super) enum Failure {
    /// Twilio answered with an error that no retry changes (any status but
    /// 2xx and 5xx).
    Refused(TwilioError),
    /// Every attempt failed with a transient error; the text is the last one.
    Unavailable(String),
    /// The request could not even be built (for example a bad URL).
    Misconfigured(String),
}

/// The backoff never grows beyond this, whatever the settings say.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl TwilioClient {
    /// POSTs `form` to `url` with basic auth, and returns the body of a 2xx
    /// answer.
    ///
    /// Transient failures are retried, up to `max_attempts` attempts in all,
    /// with exponential backoff (`retry_base_delay`, twice that, …): an
    /// error before any response (connection refused or reset, DNS), a
    /// timeout, and a 5xx. Anything else Twilio answers is final: a 4xx
    /// means the request itself is wrong (or rate-limited) and the same
    /// request would fail again. A 2xx is never retried, even if its body
    /// cannot be read, because Twilio has then accepted the request.
    ///
    /// Retrying a timed-out or 5xx message or call creation is not strictly
    /// idempotent: in rare cases Twilio has accepted a request whose answer
    /// never reached us, and the user gets the SMS (or call) twice. The
    /// product prefers a duplicate code to a lost one. A retried Verify
    /// check may likewise spend one more of Twilio's attempts, or find an
    /// approved verification already gone (then `NotFound`); both only make
    /// the user ask for a new code.
    ///
    /// `secrets` are scrubbed from Twilio's error messages before they are
    /// logged or returned (the auth token always is).
    pub(super) async fn post_form(
        &self,
        operation: Operation,
        url: &str,
        form: &[(&str, &str)],
        secrets: &[&str],
    ) -> Result<Vec<u8>, Failure> {
        let settings = &self.inner.settings;
        let max_attempts = settings.max_attempts.max(1);
        let mut last_error = String::new();
        for attempt in 1..=max_attempts {
            let sent = self
                .inner
                .http
                .post(url)
                .basic_auth(&settings.account_sid, Some(settings.auth_token.expose_secret()))
                .form(form)
                .send()
                .await;
            match sent {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = super::error::retry_after(response.headers());
                    // A body that cannot be read is treated as empty: a 2xx
                    // stays a success, an error keeps its status.
                    let body = response.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
                    if status.is_success() {
                        return Ok(body);
                    }
                    let mut scrubbed = vec![settings.auth_token.expose_secret()];
                    scrubbed.extend_from_slice(secrets);
                    let error = TwilioError::from_response(status.as_u16(), retry_after, &body).redacted(&scrubbed);
                    if !status.is_server_error() {
                        return Err(Failure::Refused(error));
                    }
                    // The outcome keeps the status and code only; Twilio's
                    // text (which may echo the number) is logged here.
                    tracing::debug!(
                        operation = operation.as_str(),
                        http_status = error.status,
                        twilio_code = error.code,
                        twilio_message = error.message.as_str(),
                        "Twilio answered a server error"
                    );
                    last_error = error.summary();
                }
                Err(error) if error.is_builder() => {
                    return Err(Failure::Misconfigured(describe(&error)));
                }
                Err(error) => last_error = describe(&error),
            }
            if attempt < max_attempts {
                let delay = backoff(settings.retry_base_delay, attempt);
                tracing::warn!(
                    operation = operation.as_str(),
                    attempt,
                    max_attempts,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    error = %last_error,
                    "Twilio request failed; retrying"
                );
                tokio::time::sleep(delay).await;
            }
        }
        Err(Failure::Unavailable(format!(
            "{last_error} (gave up after {max_attempts} attempts)"
        )))
    }
}

/// The delay after failed attempt number `attempt` (1-based): `base`,
/// `2 × base`, `4 × base`, …, at most [`MAX_BACKOFF`].
fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 1_u32 << attempt.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(MAX_BACKOFF)
}

/// A transport error in a few words, with its causes ("connection refused")
/// but without the URL: the URL holds only SIDs, but a message without it
/// reads better in logs and carries nothing that could ever be secret.
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "the request timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_builder() {
        "could not build the request"
    } else if error.is_body() || error.is_decode() {
        "could not read the response"
    } else {
        "the request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_bounded() {
        let base = Duration::from_millis(200);
        assert_eq!(backoff(base, 1), Duration::from_millis(200));
        assert_eq!(backoff(base, 2), Duration::from_millis(400));
        assert_eq!(backoff(base, 3), Duration::from_millis(800));
        assert_eq!(backoff(base, 40), MAX_BACKOFF);
    }
}
