//! Telnyx: SMS through the Messages API (v2).
//!
//! A thin client on reqwest (rustls with ring): a message is one JSON POST
//! to `{base_url}/v2/messages` with `Authorization: Bearer <API key>`, one
//! attempt per call. What it relies on:
//!
//! - the request: "Send a message"
//!   (<https://developers.telnyx.com/api-reference/messages/send-a-message>):
//!   `from` (a number in +E.164, a short code or an alphanumeric sender
//!   ID), `to` (+E.164), `text`, and `messaging_profile_id`, which Telnyx
//!   requires with an alphanumeric sender ID: such a sender is refused here
//!   without one. The profile is sent with every message when configured;
//!   a number sender then must belong to it. The answer is 200 with
//!   `{"data": {"id", "record_type": "message", …}}`;
//! - the errors: `{"errors": [{"code": "10002", "title", "detail",
//!   "source": {"pointer": "/to"}}]}`
//!   (<https://developers.telnyx.com/development/api-fundamentals/api-errors>),
//!   with the messaging codes of "Telnyx Messaging Error Codes"
//!   (<https://support.telnyx.com/en/articles/6505121-telnyx-messaging-error-codes>):
//!   40310 "Invalid 'to' address" (HTTP 400,
//!   <https://developers.telnyx.com/api/errors/40310>), 40300 "Blocked due
//!   to STOP message", 40305 "Invalid 'from' address", and so on.
//!
//! Logs carry the status, Telnyx's error code and the field it points at;
//! never its `detail`, which may echo the number.

use std::{fmt, sync::Arc, time::Duration};

use async_trait::async_trait;
use phonegate_domain::ports::{DeliveryError, Metrics, NoMetrics, OutgoingSms, Sender, SmsSender};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use crate::vendor_http::{self, Answer};

/// Where Telnyx's API lives.
pub const DEFAULT_BASE_URL: &str = "https://api.telnyx.com";

/// The provider's name in logs, metrics and error texts.
const PROVIDER: &str = "telnyx";

/// Codes that say the destination cannot receive texts: "Invalid 'to'
/// address", "Invalid messaging destination number" and "Not routable"
/// (a landline). Any error pointing at `/to` means the same.
const INVALID_DESTINATION: &[&str] = &["40310", "40012", "40001"];

/// Codes that say our key, account, messaging profile or sender is wrong,
/// which no retry of this message cures but fixed settings do: auth failed,
/// authorization failed, resource not found (a wrong base URL), API key
/// revoked, invalid 'from' address, alpha sender not configured, invalid or
/// missing profile secret, profile disabled, messaging disabled on the
/// account, no usable numbers on the profile.
const MISCONFIGURED: &[&str] = &[
    "10009", "10010", "10005", "20002", "40305", "40306", "40311", "40312", "40313", "40314", "40321",
];

/// Too many requests: Telnyx's own code for a 429.
const TOO_MANY_REQUESTS: &str = "10011";

/// How to reach Telnyx. `Debug` redacts the API key.
#[derive(Clone)]
pub struct TelnyxSettings {
    /// The API key (`KEY…`), sent as a bearer token.
    pub api_key: SecretString,
    /// The messaging profile to send through; required for an alphanumeric
    /// sender, optional for a number (which belongs to a profile anyway).
    pub messaging_profile_id: Option<String>,
    /// The default sender: a Telnyx number or an alphanumeric sender ID.
    /// `None` when every route brings its own ([`TelnyxClient::with_sender`]).
    pub from: Option<Sender>,
    /// Defaults to [`DEFAULT_BASE_URL`]; tests point it at a local server.
    pub base_url: String,
    /// The limit for the one attempt, from connecting to reading the whole
    /// answer.
    pub timeout: Duration,
}

impl TelnyxSettings {
    /// Settings with Telnyx's URL, no messaging profile, no default sender
    /// and a 10-second timeout.
    pub fn new(api_key: SecretString) -> Self {
        Self {
            api_key,
            messaging_profile_id: None,
            from: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for TelnyxSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelnyxSettings")
            .field("api_key", &"[redacted]")
            .field("messaging_profile_id", &self.messaging_profile_id)
            .field("from", &self.from)
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The settings cannot work; the text names the field and why (never the
/// API key).
#[derive(Debug, thiserror::Error)]
#[error("invalid Telnyx settings: {0}")]
pub struct TelnyxSettingsError(String);

/// The Telnyx adapter: [`SmsSender`]. Cheap to clone (the connection pool
/// is shared).
#[derive(Debug, Clone)]
pub struct TelnyxClient {
    inner: Arc<Inner>,
    /// Who messages come from: the settings' `from` unless
    /// [`TelnyxClient::with_sender`] chose another.
    sender: Option<Sender>,
    /// Counts Telnyx's error codes.
    metrics: Arc<dyn Metrics>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    settings: TelnyxSettings,
    messages_url: String,
}

impl TelnyxClient {
    /// Checks `settings` and builds the HTTP client. A missing sender is
    /// allowed (routes may bring theirs) and reported when a message needs
    /// it.
    pub fn new(settings: TelnyxSettings) -> Result<Self, TelnyxSettingsError> {
        let invalid = |why: &str| TelnyxSettingsError(why.to_owned());
        if settings.api_key.expose_secret().is_empty() {
            return Err(invalid("api_key must not be empty"));
        }
        // A profile ID is a UUID; anything else is a typo to refuse now.
        let profile = settings.messaging_profile_id.as_deref();
        if profile.is_some_and(|id| id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')) {
            return Err(invalid(
                "messaging_profile_id must be a messaging profile's ID (a UUID)",
            ));
        }
        match &settings.from {
            Some(Sender::MessagingService(_)) => {
                return Err(invalid(
                    "from must be a number or an alphanumeric sender ID (Messaging Services are Twilio's)",
                ));
            }
            Some(Sender::Alphanumeric(_)) if profile.is_none() => {
                return Err(invalid("an alphanumeric from needs messaging_profile_id"));
            }
            _ => {}
        }
        if settings.timeout.is_zero() {
            return Err(invalid("timeout must be positive"));
        }
        let base = vendor_http::base_url("base_url", &settings.base_url).map_err(TelnyxSettingsError)?;
        let messages_url = format!("{base}/v2/messages");
        let http = vendor_http::http_client(settings.timeout).map_err(TelnyxSettingsError)?;
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

    /// Whether Telnyx can send from `sender`: a number or an alphanumeric
    /// sender ID, not a Twilio Messaging Service. An alphanumeric sender
    /// also needs `messaging_profile_id` in the settings.
    pub fn supports(sender: &Sender) -> bool {
        matches!(sender, Sender::Number(_) | Sender::Alphanumeric(_))
    }

    /// The same client (sharing its connection pool), sending from `sender`
    /// instead of the settings' `from`. A sender Telnyx cannot use fails
    /// each message with [`DeliveryError::Misconfigured`]; see
    /// [`TelnyxClient::supports`].
    #[must_use]
    pub fn with_sender(self, sender: Sender) -> Self {
        Self {
            sender: Some(sender),
            ..self
        }
    }

    /// The same client, counting every error Telnyx answers by its code in
    /// `metrics` (`http_<status>` when the answer had none).
    #[must_use]
    pub fn with_metrics(self, metrics: Arc<dyn Metrics>) -> Self {
        Self { metrics, ..self }
    }

    /// The settings this client was built with.
    pub fn settings(&self) -> &TelnyxSettings {
        &self.inner.settings
    }

    /// The sender as Telnyx's `from` takes it.
    fn sender_field(&self) -> Result<&str, DeliveryError> {
        let profile = self.inner.settings.messaging_profile_id.as_deref();
        match &self.sender {
            Some(Sender::Number(number)) => Ok(number),
            Some(Sender::Alphanumeric(id)) if profile.is_some() => Ok(id),
            Some(Sender::Alphanumeric(_)) => Err(vendor_http::unusable_sender(
                PROVIDER,
                "messaging_profile_id",
                "is not set, and Telnyx sends from an alphanumeric sender ID only through a messaging profile",
            )),
            Some(Sender::MessagingService(_)) => Err(vendor_http::unusable_sender(
                PROVIDER,
                "from",
                "is a Twilio Messaging Service, which Telnyx cannot send from",
            )),
            None => Err(vendor_http::unusable_sender(PROVIDER, "from", "is not set")),
        }
    }
}

#[async_trait]
impl SmsSender for TelnyxClient {
    async fn send_sms(&self, message: &OutgoingSms) -> Result<(), DeliveryError> {
        let from = self.sender_field()?;
        let mut body = serde_json::json!({
            "from": from,
            "to": message.to.as_str(),
            "text": message.body.expose_secret(),
        });
        if let Some(profile) = &self.inner.settings.messaging_profile_id {
            body["messaging_profile_id"] = serde_json::Value::from(profile.as_str());
        }
        let request = self
            .inner
            .http
            .post(&self.inner.messages_url)
            .bearer_auth(self.inner.settings.api_key.expose_secret())
            .json(&body);
        let answer = vendor_http::send_once(PROVIDER, self.metrics.as_ref(), request).await?;
        let Some(refusal) = Refusal::of(&answer) else {
            tracing::debug!(
                provider = PROVIDER,
                operation = vendor_http::SEND_SMS,
                "Telnyx accepted the message"
            );
            return Ok(());
        };
        let metrics_code = refusal
            .code
            .clone()
            .unwrap_or_else(|| format!("http_{}", answer.status));
        if let Some(pointer) = &refusal.pointer {
            tracing::debug!(
                provider = PROVIDER,
                code = metrics_code,
                pointer,
                "Telnyx's error points at a field"
            );
        }
        vendor_http::record_refusal(
            PROVIDER,
            self.metrics.as_ref(),
            answer.status,
            &metrics_code,
            None,
            &refusal.error,
        );
        Err(refusal.error)
    }
}

/// Telnyx's error document. Every field is optional: proxies in front of
/// Telnyx may answer anything. `title` and `detail` are not read at all.
#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    /// A string in the documents; a number is taken as well.
    code: Option<serde_json::Value>,
    source: Option<ErrorSource>,
}

#[derive(Deserialize)]
struct ErrorSource {
    pointer: Option<String>,
}

impl ErrorItem {
    /// The code, if it looks like one: a few ASCII digits and letters, so
    /// that nothing else reaches a log line or a metric label.
    fn code(&self) -> Option<String> {
        let code = match self.code.as_ref()? {
            serde_json::Value::String(code) => code.clone(),
            serde_json::Value::Number(code) => code.to_string(),
            _ => return None,
        };
        let plain = !code.is_empty() && code.len() <= 16 && code.bytes().all(|b| b.is_ascii_alphanumeric());
        plain.then_some(code)
    }

    /// The field the error points at, if it is a short JSON pointer.
    fn pointer(&self) -> Option<&str> {
        let pointer = self.source.as_ref()?.pointer.as_deref()?;
        let plain = pointer.len() <= 64
            && pointer
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b));
        plain.then_some(pointer)
    }
}

/// What a non-2xx answer means.
#[derive(Debug)]
struct Refusal {
    error: DeliveryError,
    /// The code of the error that decided (or the first one).
    code: Option<String>,
    pointer: Option<String>,
}

impl Refusal {
    /// `None` for a 2xx. Otherwise the status decides first for server
    /// errors, rate limits and bad credentials, then the errors' codes and
    /// pointers: any error about the destination makes an invalid number,
    /// any about our settings a misconfiguration; the first error's code
    /// names any other refusal.
    fn of(answer: &Answer) -> Option<Self> {
        let status = answer.status;
        if (200..300).contains(&status) {
            return None;
        }
        let body: ErrorBody = serde_json::from_slice(&answer.body).unwrap_or_default();
        let errors = &body.errors;
        let first_code = errors.first().and_then(ErrorItem::code);
        let first_pointer = errors.first().and_then(|e| e.pointer().map(str::to_owned));
        let summary = |code: Option<&str>| match code {
            Some(code) => format!("{PROVIDER} {code}"),
            None => format!("{PROVIDER} HTTP {status}"),
        };
        let has = |codes: &[&str]| {
            errors
                .iter()
                .find(|e| e.code().is_some_and(|c| codes.contains(&c.as_str())))
        };
        let refusal = |error, item: Option<&ErrorItem>| Self {
            error,
            code: item.and_then(ErrorItem::code).or_else(|| first_code.clone()),
            pointer: item
                .and_then(|e| e.pointer().map(str::to_owned))
                .or_else(|| first_pointer.clone()),
        };
        if status >= 500 {
            return Some(refusal(
                DeliveryError::Unavailable(summary(first_code.as_deref())),
                None,
            ));
        }
        if status == 429 || has(&[TOO_MANY_REQUESTS]).is_some() {
            let retry_after = answer.retry_after;
            return Some(refusal(DeliveryError::RateLimited { retry_after }, None));
        }
        if status == 401 {
            return Some(refusal(
                DeliveryError::Misconfigured(summary(first_code.as_deref())),
                None,
            ));
        }
        let about_to = errors.iter().find(|e| {
            e.pointer() == Some("/to") || e.code().is_some_and(|c| INVALID_DESTINATION.contains(&c.as_str()))
        });
        if let Some(item) = about_to {
            return Some(refusal(DeliveryError::InvalidNumber, Some(item)));
        }
        if let Some(item) = has(MISCONFIGURED) {
            let code = item.code();
            return Some(refusal(
                DeliveryError::Misconfigured(summary(code.as_deref())),
                Some(item),
            ));
        }
        let error = match (&first_code, status) {
            (Some(code), _) => DeliveryError::Rejected(summary(Some(code))),
            // Without a code, a refused key or a missing resource (a wrong
            // base URL) is ours to fix, and so is a redirect.
            (None, 300..=399 | 403 | 404) => DeliveryError::Misconfigured(summary(None)),
            (None, _) => DeliveryError::Rejected(summary(None)),
        };
        Some(refusal(error, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(status: u16, body: &str) -> Refusal {
        let answer = Answer {
            status,
            retry_after: Some(Duration::from_secs(2)),
            body: body.as_bytes().to_vec(),
        };
        Refusal::of(&answer).unwrap()
    }

    fn error(code: &str, pointer: Option<&str>) -> String {
        let source = pointer.map_or(String::new(), |p| format!(r#", "source": {{"pointer": "{p}"}}"#));
        format!(r#"{{"errors": [{{"code": "{code}", "title": "t", "detail": "d"{source}}}]}}"#)
    }

    #[test]
    fn a_2xx_is_no_refusal() {
        let answer = Answer {
            status: 200,
            retry_after: None,
            body: br#"{"data": {"id": "x", "record_type": "message"}}"#.to_vec(),
        };
        assert!(Refusal::of(&answer).is_none());
    }

    #[test]
    fn destination_errors_are_invalid_numbers() {
        for body in [
            error("40310", None),
            error("40012", None),
            error("10002", Some("/to")),
            error("10016", Some("/to")),
        ] {
            assert!(
                matches!(refusal(400, &body).error, DeliveryError::InvalidNumber),
                "{body}"
            );
            assert!(
                matches!(refusal(422, &body).error, DeliveryError::InvalidNumber),
                "{body}"
            );
        }
        let from = refusal(422, &error("10002", Some("/from")));
        assert!(matches!(&from.error, DeliveryError::Rejected(text) if text == "telnyx 10002"));
        assert_eq!(from.pointer.as_deref(), Some("/from"));
    }

    #[test]
    fn statuses_decide_before_codes_for_5xx_429_and_401() {
        assert!(matches!(
            refusal(500, &error("40310", None)).error,
            DeliveryError::Unavailable(_)
        ));
        assert!(matches!(
            refusal(429, "").error,
            DeliveryError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(2)
        ));
        assert!(matches!(refusal(401, "").error, DeliveryError::Misconfigured(_)));
        assert!(matches!(
            refusal(400, &error("10011", None)).error,
            DeliveryError::RateLimited { .. }
        ));
    }

    #[test]
    fn settings_codes_are_misconfigurations_and_others_rejections() {
        for code in MISCONFIGURED {
            let refused = refusal(400, &error(code, None));
            assert!(matches!(refused.error, DeliveryError::Misconfigured(_)), "{code}");
            assert_eq!(refused.code.as_deref(), Some(*code));
        }
        // STOP comes as a 403 or a 400: its code wins over the status.
        for status in [400, 403] {
            let stop = refusal(status, &error("40300", None));
            assert!(matches!(&stop.error, DeliveryError::Rejected(text) if text == "telnyx 40300"));
        }
        assert!(matches!(refusal(403, "").error, DeliveryError::Misconfigured(_)));
        assert!(matches!(&refusal(418, "<html/>").error, DeliveryError::Rejected(t) if t == "telnyx HTTP 418"));
    }

    #[test]
    fn only_plain_codes_and_pointers_are_kept() {
        let odd = refusal(
            400,
            r#"{"errors": [{"code": "+14155550100 bad", "source": {"pointer": "/to is +14155550100"}}]}"#,
        );
        assert_eq!(odd.code, None);
        assert_eq!(odd.pointer, None);
        let numeric = refusal(400, r#"{"errors": [{"code": 40300}]}"#);
        assert_eq!(numeric.code.as_deref(), Some("40300"));
    }
}
