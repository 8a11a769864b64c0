//! The generic HTTP provider: texts and calls handed to any HTTP endpoint
//! (an in-house gateway, a vendor phonegate has no client for) as one
//! signed JSON POST each.
//!
//! The request is `{"id", "to", "channel", "body", "purpose", "locale",
//! "from"}`, signed with Standard Webhooks headers (see
//! [`crate::webhook_signature`]); `id` is `msg_<outbox id>`, the same on
//! every attempt and every provider of a route, so the receiver can drop
//! duplicates. The receiver's side of the contract is in
//! `docs/providers.md` ("Generic HTTP provider"). Its delivery receipts,
//! signed the same way, are read by [`HttpReceiptReader`].
//!
//! Each call is one attempt: the dispatcher decides about retries and
//! fail-over. Nothing here logs or returns the message, the spoken text,
//! the recipient, the secret or the URL (which may carry a token): logs
//! and errors carry the operation and the HTTP status only.

mod answer;
mod queued;
mod receipts;
mod whatsapp;

use std::{fmt, sync::Arc, time::Duration};

use async_trait::async_trait;
use phonegate_domain::ports::{
    Clock as _, DeliveryError, MessageRef, Metrics, NoMetrics, OutgoingCall, OutgoingSms, ProviderMessageId,
    RandomSource as _, Sender, SmsSender, VoiceCaller,
};
use secrecy::ExposeSecret as _;
use serde::Serialize;

pub use self::receipts::HttpReceiptReader;
use crate::{
    clock::SystemClock,
    random::OsRandom,
    webhook_signature::{WebhookSecret, sign},
};

/// The provider's name in metrics.
const PROVIDER: &str = "http";
/// The purpose sent with messages that do not come from the outbox.
const OTHER_PURPOSE: &str = "other";

/// Where and how to send. `Debug` redacts the secret and shows the URL
/// without its credentials or query.
#[derive(Clone)]
pub struct HttpProviderSettings {
    /// The endpoint every request is POSTed to: an absolute http(s) URL.
    pub url: String,
    /// The key the requests are signed with.
    pub secret: WebhookSecret,
    /// The sender passed on in `from`; omitted from the request when `None`.
    pub from: Option<Sender>,
    /// The `locale` of every request (default `en`).
    pub locale: String,
    /// The limit for one request, from connecting to reading the answer
    /// (default 5 seconds).
    pub timeout: Duration,
}

impl HttpProviderSettings {
    /// Settings for `url` signed with `secret`: no sender, locale `en`, a
    /// 5-second timeout.
    pub fn new(url: impl Into<String>, secret: WebhookSecret) -> Self {
        Self {
            url: url.into(),
            secret,
            from: None,
            locale: "en".to_owned(),
            timeout: Duration::from_secs(5),
        }
    }
}

impl fmt::Debug for HttpProviderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpProviderSettings")
            .field("url", &redacted_url(&self.url))
            .field("secret", &self.secret)
            .field("from", &self.from)
            .field("locale", &self.locale)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The URL as far as it is safe to show: scheme, host, port and path. A URL
/// that does not parse is not shown at all.
fn redacted_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => {
            let mut shown = format!("{}://{}", parsed.scheme(), parsed.host_str().unwrap_or(""));
            if let Some(port) = parsed.port() {
                shown.push_str(&format!(":{port}"));
            }
            shown.push_str(parsed.path());
            if parsed.query().is_some() {
                shown.push_str("?[redacted]");
            }
            shown
        }
        Err(_) => "[unparsable]".to_owned(),
    }
}

/// Whether `url` names this machine, where plain http exposes nothing.
fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    // IPv6 hosts are written in brackets.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// A setting that cannot work: which one and why, never its value (the URL
/// may carry a token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid HTTP provider settings: {field} {why}")]
pub struct HttpProviderSettingsError {
    field: &'static str,
    why: &'static str,
}

impl HttpProviderSettingsError {
    /// The name of the bad setting (`url`, `locale`, `timeout`, …).
    pub fn field(&self) -> &'static str {
        self.field
    }
}

/// The generic HTTP provider: [`SmsSender`] and [`VoiceCaller`]. Cheap to
/// clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct HttpProvider {
    inner: Arc<Inner>,
    /// The sender of this handle: the settings' by default, another one
    /// after [`HttpProvider::with_sender`].
    from: Option<Sender>,
    /// Counts failures by HTTP status (`http_503`), `timeout` or
    /// `unavailable`.
    metrics: Arc<dyn Metrics>,
}

struct Inner {
    http: reqwest::Client,
    /// The parsed `settings.url`, which may hold credentials or a token.
    url: reqwest::Url,
    settings: HttpProviderSettings,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The settings show the URL redacted; the parsed URL would not be.
        f.debug_struct("Inner")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What a request is, for logs and metrics.
#[derive(Debug, Clone, Copy)]
enum Operation {
    SendSms,
    SendWhatsApp,
    Call,
}

impl Operation {
    const fn as_str(self) -> &'static str {
        match self {
            Self::SendSms => "send_sms",
            Self::SendWhatsApp => "send_whatsapp",
            Self::Call => "call",
        }
    }

    /// The request's `channel`.
    const fn channel(self) -> &'static str {
        match self {
            Self::SendSms => "sms",
            Self::SendWhatsApp => "whatsapp",
            Self::Call => "call",
        }
    }
}

/// The JSON body of a request, in the order the fields are documented.
#[derive(Serialize)]
struct Request<'a> {
    id: &'a str,
    to: &'a str,
    channel: &'static str,
    body: &'a str,
    purpose: &'a str,
    locale: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
}

impl HttpProvider {
    /// Checks `settings` and builds the HTTP client.
    pub fn new(settings: HttpProviderSettings) -> Result<Self, HttpProviderSettingsError> {
        let invalid = |field, why| HttpProviderSettingsError { field, why };
        let url = reqwest::Url::parse(&settings.url).map_err(|_| invalid("url", "is not an absolute URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("url", "must be an http(s) URL with a host"));
        }
        if settings.locale.trim().is_empty() {
            return Err(invalid("locale", "must not be empty"));
        }
        if settings.timeout.is_zero() {
            return Err(invalid("timeout", "must be positive"));
        }
        if settings.from.as_ref().is_some_and(|from| from.as_str().is_empty()) {
            return Err(invalid("from", "must not be empty when set"));
        }
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            // A redirect would carry a signed message somewhere the
            // settings do not name, so it is an answer like any other.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("phonegate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| invalid("http_client", "cannot be built (TLS initialisation failed)"))?;
        if url.scheme() == "http" && !is_loopback(&url) {
            // Allowed for gateways on a private network, but every request
            // carries a code, so the choice should be visible.
            tracing::warn!("the HTTP provider's URL is not https: codes travel in clear text");
        }
        let from = settings.from.clone();
        Ok(Self {
            inner: Arc::new(Inner { http, url, settings }),
            from,
            metrics: Arc::new(NoMetrics),
        })
    }

    /// The same client (the same connection pool), sending from `sender`
    /// instead of the settings' sender. Any kind of sender is passed on as
    /// its text.
    #[must_use]
    pub fn with_sender(self, sender: Sender) -> Self {
        Self {
            from: Some(sender),
            ..self
        }
    }

    /// The same client, counting its failures in `metrics`.
    #[must_use]
    pub fn with_metrics(self, metrics: Arc<dyn Metrics>) -> Self {
        Self { metrics, ..self }
    }

    /// The settings this client was built with.
    pub fn settings(&self) -> &HttpProviderSettings {
        &self.inner.settings
    }

    /// POSTs one message and maps the answer.
    async fn deliver(
        &self,
        operation: Operation,
        to: &str,
        text: &str,
        id: &str,
        purpose: &str,
    ) -> Result<(), DeliveryError> {
        let settings = &self.inner.settings;
        let body = serde_json::to_vec(&Request {
            id,
            to,
            channel: operation.channel(),
            body: text,
            purpose,
            locale: &settings.locale,
            from: self.from.as_ref().map(Sender::as_str),
        })
        .map_err(|_| DeliveryError::Misconfigured("the request cannot be encoded".to_owned()))?;
        let timestamp = SystemClock.now().unix_seconds();
        let signature = sign(&settings.secret, id, timestamp, &body);
        let sent = self
            .inner
            .http
            .post(self.inner.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return Err(self.transport_error(operation, &error)),
        };
        let status = response.status().as_u16();
        if response.status().is_success() {
            tracing::debug!(
                operation = operation.as_str(),
                http_status = status,
                "the HTTP provider accepted the message"
            );
            return Ok(());
        }
        let error = answer::refusal(response).await;
        self.metrics
            .provider_error_code(PROVIDER, operation.as_str(), &format!("http_{status}"));
        let op = operation.as_str();
        match &error {
            DeliveryError::InvalidNumber => tracing::info!(
                operation = op,
                http_status = status,
                "the HTTP provider rejected the number"
            ),
            DeliveryError::NotOnChannel => tracing::info!(
                operation = op,
                http_status = status,
                "the HTTP provider cannot reach the number on this channel"
            ),
            DeliveryError::Rejected(_) => tracing::info!(
                operation = op,
                http_status = status,
                "the HTTP provider refused the message for good"
            ),
            DeliveryError::RateLimited { retry_after } => tracing::warn!(
                operation = op,
                http_status = status,
                retry_after_secs = retry_after.map(|delay| delay.as_secs()),
                "the HTTP provider is rate-limiting requests"
            ),
            DeliveryError::Misconfigured(_) => tracing::error!(
                operation = op,
                http_status = status,
                "the HTTP provider refused our signature or URL; every request will fail until the settings are fixed"
            ),
            DeliveryError::Unavailable(_) => {
                tracing::warn!(operation = op, http_status = status, "the HTTP provider is failing")
            }
        }
        Err(error)
    }

    /// The error for a request that got no answer: a timeout, or anything
    /// else that kept it from being sent or answered (refused connection,
    /// DNS, TLS, a reset). Its text is fixed: reqwest's would name the URL.
    fn transport_error(&self, operation: Operation, error: &reqwest::Error) -> DeliveryError {
        let code = if error.is_timeout() { "timeout" } else { "unavailable" };
        self.metrics.provider_error_code(PROVIDER, operation.as_str(), code);
        let kind = if error.is_timeout() {
            "timeout"
        } else if error.is_connect() {
            "connection error"
        } else {
            "request error"
        };
        tracing::warn!(
            operation = operation.as_str(),
            error = kind,
            "the HTTP provider is unavailable"
        );
        DeliveryError::Unavailable(kind.to_owned())
    }
}

/// A fresh id for a message that is not from the outbox: `msg_` and 32 hex
/// digits, which no outbox id (at most 19 decimal digits) can equal.
fn random_id() -> String {
    let mut bytes = [0_u8; 16];
    OsRandom.fill(&mut bytes);
    let mut id = String::with_capacity(4 + 32);
    id.push_str("msg_");
    for byte in bytes {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

/// The `id` of an outbox message, stable across attempts and providers.
fn queued_id(queued: MessageRef) -> String {
    format!("msg_{}", queued.id)
}

#[async_trait]
impl SmsSender for HttpProvider {
    async fn send_sms(&self, message: &OutgoingSms) -> Result<(), DeliveryError> {
        let id = random_id();
        self.deliver(
            Operation::SendSms,
            message.to.as_str(),
            message.body.expose_secret(),
            &id,
            OTHER_PURPOSE,
        )
        .await
    }

    /// The message's `id` is the one its receipts name.
    async fn send_queued_sms(
        &self,
        message: &OutgoingSms,
        queued: MessageRef,
    ) -> Result<Option<ProviderMessageId>, DeliveryError> {
        self.deliver_queued_text(Operation::SendSms, message, queued).await
    }
}

#[async_trait]
impl VoiceCaller for HttpProvider {
    async fn call(&self, call: &OutgoingCall) -> Result<(), DeliveryError> {
        let id = random_id();
        self.deliver(
            Operation::Call,
            call.to.as_str(),
            call.spoken_text.expose_secret(),
            &id,
            OTHER_PURPOSE,
        )
        .await
    }

    async fn place_queued_call(&self, call: &OutgoingCall, queued: MessageRef) -> Result<(), DeliveryError> {
        let id = queued_id(queued);
        self.deliver(
            Operation::Call,
            call.to.as_str(),
            call.spoken_text.expose_secret(),
            &id,
            queued.purpose,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_fresh_and_cannot_be_outbox_ids() {
        let (first, second) = (random_id(), random_id());
        assert_ne!(first, second);
        assert_eq!(first.len(), 4 + 32);
        assert!(first.starts_with("msg_"));
        assert_eq!(
            queued_id(MessageRef {
                id: 42,
                purpose: "pin_auth"
            }),
            "msg_42"
        );
    }

    #[test]
    fn the_shown_url_has_no_credentials_or_query() {
        assert_eq!(
            redacted_url("https://user:pa55@sms.example.com:8443/send?token=t0k3n"),
            "https://sms.example.com:8443/send?[redacted]"
        );
        assert_eq!(redacted_url("not a url"), "[unparsable]");
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for url in ["http://localhost:8080/x", "http://127.0.0.1/x", "http://[::1]:9/x"] {
            assert!(is_loopback(&reqwest::Url::parse(url).unwrap()), "{url}");
        }
        for url in [
            "http://sms.example.com/x",
            "http://10.0.0.1/x",
            "http://[2001:db8::1]/x",
        ] {
            assert!(!is_loopback(&reqwest::Url::parse(url).unwrap()), "{url}");
        }
    }
}
