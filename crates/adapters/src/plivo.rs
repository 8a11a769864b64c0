//! Plivo: SMS through the Message API (v1).
//!
//! A thin client on reqwest (rustls with ring): a message is one JSON POST
//! to `{base_url}/v1/Account/{auth_id}/Message/` with HTTP basic auth (the
//! auth ID and the auth token), one attempt per call. What it relies on:
//!
//! - the request: "Send a message"
//!   (<https://docs.plivo.com/docs/messaging/api/message/send-a-message>):
//!   `src`, `dst` and `text`; Plivo strips `+` and punctuation from both
//!   numbers and documents them as digits starting with the country code
//!   (`14152828726`), which is what is sent. Alphanumeric sender IDs go in
//!   `src` too (Plivo strips their spaces), once Plivo has enabled them for
//!   the account. The official SDKs send the same JSON (`plivo-python`'s
//!   `rest/base_client.py` and `resources/messages.py`);
//! - the answers: "API response"
//!   (<https://docs.plivo.com/docs/messaging/api/response>): 202 with
//!   `{"api_id", "message": "message(s) queued", "message_uuid": [...]}`;
//!   errors are `{"api_id", "error": "<text>"}` with 400 (a parameter is
//!   missing or invalid), 401 (authentication failed), 404, 405, 429 (rate
//!   limited) and 500;
//! - an invalid or non-SMS destination: "Destination number validation"
//!   (<https://plivo.com/docs/messaging/concepts/destination-number-validation>):
//!   a synchronous 400 whose error reads `19332631167 is not a valid phone
//!   number`; and "Bulk messaging"
//!   (<https://docs.plivo.com/docs/messaging/api/message/bulk-messaging>):
//!   a 202 may list refused destinations in `invalid_number`.
//!
//! Plivo's errors carry no code, only a text that echoes the number: the
//! text is read to tell an invalid destination from other 400s and is never
//! logged or kept. Logs carry the status and Plivo's `api_id`.

use std::{fmt, sync::Arc, time::Duration};

use async_trait::async_trait;
use phonegate_domain::ports::{DeliveryError, Metrics, NoMetrics, OutgoingSms, Sender, SmsSender};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use crate::vendor_http::{self, Answer};

/// Where Plivo's API lives.
pub const DEFAULT_BASE_URL: &str = "https://api.plivo.com";

/// The provider's name in logs, metrics and error texts.
const PROVIDER: &str = "plivo";

/// How to reach Plivo. `Debug` redacts the auth token.
#[derive(Clone)]
pub struct PlivoSettings {
    /// The account's (or subaccount's) auth ID (`MA…`, `SA…`): the
    /// basic-auth user and part of the request path.
    pub auth_id: String,
    /// The auth token: the basic-auth password.
    pub auth_token: SecretString,
    /// The default sender: a Plivo number or an alphanumeric sender ID.
    /// `None` when every route brings its own ([`PlivoClient::with_sender`]).
    pub from: Option<Sender>,
    /// Defaults to [`DEFAULT_BASE_URL`]; tests point it at a local server.
    pub base_url: String,
    /// The limit for the one attempt, from connecting to reading the whole
    /// answer.
    pub timeout: Duration,
}

impl PlivoSettings {
    /// Settings with Plivo's URL, no default sender and a 10-second timeout.
    pub fn new(auth_id: impl Into<String>, auth_token: SecretString) -> Self {
        Self {
            auth_id: auth_id.into(),
            auth_token,
            from: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for PlivoSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlivoSettings")
            .field("auth_id", &self.auth_id)
            .field("auth_token", &"[redacted]")
            .field("from", &self.from)
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The settings cannot work; the text names the field and why (never the
/// auth token).
#[derive(Debug, thiserror::Error)]
#[error("invalid Plivo settings: {0}")]
pub struct PlivoSettingsError(String);

/// The Plivo adapter: [`SmsSender`]. Cheap to clone (the connection pool is
/// shared).
#[derive(Debug, Clone)]
pub struct PlivoClient {
    inner: Arc<Inner>,
    /// Who messages come from: the settings' `from` unless
    /// [`PlivoClient::with_sender`] chose another.
    sender: Option<Sender>,
    /// Counts Plivo's refusals by status.
    metrics: Arc<dyn Metrics>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    settings: PlivoSettings,
    messages_url: String,
}

impl PlivoClient {
    /// Checks `settings` and builds the HTTP client. A missing sender is
    /// allowed (routes may bring theirs) and reported when a message needs
    /// it.
    pub fn new(settings: PlivoSettings) -> Result<Self, PlivoSettingsError> {
        let invalid = |why: &str| PlivoSettingsError(why.to_owned());
        // The auth ID goes into the URL path, so it must be a plain
        // identifier.
        if settings.auth_id.is_empty() || !settings.auth_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(invalid("auth_id must be a non-empty alphanumeric ID"));
        }
        if settings.auth_token.expose_secret().is_empty() {
            return Err(invalid("auth_token must not be empty"));
        }
        if settings.from.as_ref().is_some_and(|from| !Self::supports(from)) {
            return Err(invalid(
                "from must be a number or an alphanumeric sender ID (Messaging Services are Twilio's)",
            ));
        }
        if settings.timeout.is_zero() {
            return Err(invalid("timeout must be positive"));
        }
        let base = vendor_http::base_url("base_url", &settings.base_url).map_err(PlivoSettingsError)?;
        let messages_url = format!("{base}/v1/Account/{}/Message/", settings.auth_id);
        let http = vendor_http::http_client(settings.timeout).map_err(PlivoSettingsError)?;
        Ok(Self {
            sender: settings.from.clone(),
            inner: Arc::new(Inner {
                http,
                settings,
                messages_url,
            }),
            metrics: Arc::new(NoMetrics),
        })
    }

    /// Whether Plivo can send from `sender`: a number or an alphanumeric
    /// sender ID (which Plivo must have enabled for the account), not a
    /// Twilio Messaging Service.
    pub fn supports(sender: &Sender) -> bool {
        matches!(sender, Sender::Number(_) | Sender::Alphanumeric(_))
    }

    /// The same client (sharing its connection pool), sending from `sender`
    /// instead of the settings' `from`. A sender Plivo cannot use fails
    /// each message with [`DeliveryError::Misconfigured`]; see
    /// [`PlivoClient::supports`].
    #[must_use]
    pub fn with_sender(self, sender: Sender) -> Self {
        Self {
            sender: Some(sender),
            ..self
        }
    }

    /// The same client, counting every refusal Plivo answers in `metrics`
    /// (by `invalid_destination` or `http_<status>`, Plivo having no error
    /// codes).
    #[must_use]
    pub fn with_metrics(self, metrics: Arc<dyn Metrics>) -> Self {
        Self { metrics, ..self }
    }

    /// The settings this client was built with.
    pub fn settings(&self) -> &PlivoSettings {
        &self.inner.settings
    }

    /// The sender as Plivo's `src` takes it.
    fn src(&self) -> Result<&str, DeliveryError> {
        match &self.sender {
            Some(Sender::Number(number)) => Ok(digits(number)),
            Some(Sender::Alphanumeric(id)) => Ok(id),
            Some(Sender::MessagingService(_)) => Err(vendor_http::unusable_sender(
                PROVIDER,
                "from",
                "is a Twilio Messaging Service, which Plivo cannot send from",
            )),
            None => Err(vendor_http::unusable_sender(PROVIDER, "from", "is not set")),
        }
    }
}

/// A number in E.164 as Plivo documents it: without the `+`.
fn digits(number: &str) -> &str {
    number.strip_prefix('+').unwrap_or(number)
}

#[async_trait]
impl SmsSender for PlivoClient {
    async fn send_sms(&self, message: &OutgoingSms) -> Result<(), DeliveryError> {
        let src = self.src()?;
        let dst = digits(message.to.as_str());
        let body = serde_json::json!({
            "src": src,
            "dst": dst,
            "text": message.body.expose_secret(),
        });
        let settings = &self.inner.settings;
        let request = self
            .inner
            .http
            .post(&self.inner.messages_url)
            .basic_auth(&settings.auth_id, Some(settings.auth_token.expose_secret()))
            .json(&body);
        let answer = vendor_http::send_once(PROVIDER, self.metrics.as_ref(), request).await?;
        let outcome = Outcome::of(&answer, dst);
        match outcome.error {
            None => {
                tracing::debug!(
                    provider = PROVIDER,
                    operation = vendor_http::SEND_SMS,
                    request_id = outcome.api_id.as_deref().unwrap_or(""),
                    "Plivo queued the message"
                );
                Ok(())
            }
            Some(error) => {
                vendor_http::record_refusal(
                    PROVIDER,
                    self.metrics.as_ref(),
                    answer.status,
                    &outcome.code,
                    outcome.api_id.as_deref(),
                    &error,
                );
                Err(error)
            }
        }
    }
}

/// The parts of Plivo's answers that are read. Every field is optional:
/// proxies in front of Plivo may answer anything.
#[derive(Deserialize, Default)]
struct Body {
    api_id: Option<String>,
    /// An error's text; it may echo the number, so it is only matched.
    error: Option<String>,
    /// The destinations a 202 refused.
    #[serde(default)]
    invalid_number: Vec<String>,
}

/// What an answer means for the message.
#[derive(Debug)]
struct Outcome {
    /// `None` when Plivo queued the message.
    error: Option<DeliveryError>,
    /// The metrics code: `invalid_destination` or `http_<status>`.
    code: String,
    /// Plivo's request ID, for its support (not secret).
    api_id: Option<String>,
}

impl Outcome {
    /// Decides from the status first; among 400s, from whether the error
    /// text says that `dst` is not a valid (or not an SMS-enabled) number.
    /// The number must appear in the text, so that a refused `src`, which
    /// Plivo words the same way, stays a plain rejection.
    fn of(answer: &Answer, dst: &str) -> Self {
        let body: Body = serde_json::from_slice(&answer.body).unwrap_or_default();
        let status = answer.status;
        let summary = format!("{PROVIDER} HTTP {status}");
        let invalid_destination = || Self {
            error: Some(DeliveryError::InvalidNumber),
            code: "invalid_destination".to_owned(),
            api_id: body.api_id.clone(),
        };
        let error = match status {
            200..=299 if body.invalid_number.iter().any(|number| digits(number) == dst) => {
                return invalid_destination();
            }
            200..=299 => None,
            400 if body.error.as_deref().is_some_and(|text| names_invalid(text, dst)) => {
                return invalid_destination();
            }
            429 => Some(DeliveryError::RateLimited {
                retry_after: answer.retry_after,
            }),
            // Wrong credentials, a wrong auth ID (no such account) or a
            // wrong base URL (Plivo does not redirect): every message fails
            // until the settings change.
            300..=399 | 401 | 403 | 404 | 405 => Some(DeliveryError::Misconfigured(summary)),
            500.. => Some(DeliveryError::Unavailable(summary)),
            _ => Some(DeliveryError::Rejected(summary)),
        };
        Self {
            error,
            code: format!("http_{status}"),
            api_id: body.api_id,
        }
    }
}

/// Whether Plivo's error `text` says that `dst` cannot receive texts. The
/// docs word it `19332631167 is not a valid phone number`; answers seen in
/// the wild quote the number and end with a period (plivo-node issue #222,
/// `'1111111' is not a valid phone number.`). Non-SMS numbers are refused
/// the same way, worded like the documented MMS case (`… is not an MMS
/// enabled phone number`).
fn names_invalid(text: &str, dst: &str) -> bool {
    let text = text.to_ascii_lowercase();
    let says_invalid = text.contains("not a valid phone number") || text.contains("sms enabled");
    says_invalid && text.contains(dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: u16, body: &str) -> Outcome {
        let answer = Answer {
            status,
            retry_after: Some(Duration::from_secs(3)),
            body: body.as_bytes().to_vec(),
        };
        Outcome::of(&answer, "14155550100")
    }

    #[test]
    fn the_status_decides_then_the_text_of_a_400() {
        let invalid = outcome(
            400,
            r#"{"api_id": "a", "error": "14155550100 is not a valid phone number"}"#,
        );
        assert!(
            matches!(invalid.error, Some(DeliveryError::InvalidNumber)),
            "{invalid:?}"
        );
        assert_eq!(invalid.code, "invalid_destination");
        assert_eq!(invalid.api_id.as_deref(), Some("a"));
        let quoted = outcome(400, r#"{"error": "'14155550100' is not a valid phone number."}"#);
        assert!(matches!(quoted.error, Some(DeliveryError::InvalidNumber)));
        let not_sms = outcome(400, r#"{"error": "14155550100 is not an SMS enabled phone number"}"#);
        assert!(matches!(not_sms.error, Some(DeliveryError::InvalidNumber)));
        let src = outcome(400, r#"{"error": "15005550006 is not a valid phone number"}"#);
        assert!(matches!(&src.error, Some(DeliveryError::Rejected(text)) if text == "plivo HTTP 400"));
        assert_eq!(src.code, "http_400");
        assert!(matches!(
            outcome(429, "").error,
            Some(DeliveryError::RateLimited { retry_after: Some(d) }) if d == Duration::from_secs(3)
        ));
        for status in [301, 401, 403, 404, 405] {
            assert!(matches!(
                outcome(status, "").error,
                Some(DeliveryError::Misconfigured(_))
            ));
        }
        assert!(matches!(
            outcome(503, "<html/>").error,
            Some(DeliveryError::Unavailable(_))
        ));
        assert!(matches!(outcome(418, "").error, Some(DeliveryError::Rejected(_))));
    }

    #[test]
    fn a_202_is_queued_unless_it_lists_the_destination_as_invalid() {
        let queued = outcome(
            202,
            r#"{"api_id": "a", "message": "message(s) queued", "message_uuid": ["u"]}"#,
        );
        assert!(queued.error.is_none());
        assert!(outcome(202, "not json").error.is_none());
        let refused = outcome(202, r#"{"invalid_number": ["+14155550100"], "message_uuid": []}"#);
        assert!(matches!(refused.error, Some(DeliveryError::InvalidNumber)));
    }
}
