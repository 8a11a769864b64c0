//! Twilio: SMS and voice calls through the REST API (2010-04-01), and
//! provider-checked codes through Verify v2.
//!
//! A thin client on reqwest (rustls with ring): each port method is one
//! form-encoded POST with HTTP basic auth (account SID and auth token), as
//! Twilio documents them. Twilio's error documents become [`TwilioError`]s
//! and then the domain's [`DeliveryError`]s; transient failures are retried
//! a bounded number of times (see `http.rs`).
//!
//! Nothing here logs a message body, a spoken text, a code or the auth
//! token: logs carry the operation, the HTTP status and Twilio's error code
//! and message.

mod error;
mod http;
mod messages;
mod receipts;
pub mod signature;
mod twiml;
mod whatsapp;

use std::{fmt, sync::Arc, time::Duration};

use async_trait::async_trait;
use phonegate_domain::{
    otp::{Channel, OtpCode},
    phone::PhoneNumber,
    ports::{DeliveryError, HostedCheck, HostedVerification, Metrics, NoMetrics, OutgoingCall, Sender, VoiceCaller},
};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use self::http::{Failure, Operation};
pub use self::{error::TwilioError, receipts::TwilioReceiptReader};

/// Where Twilio's REST API (messages and calls) lives.
pub const DEFAULT_API_BASE_URL: &str = "https://api.twilio.com";
/// Where Twilio Verify lives.
pub const DEFAULT_VERIFY_BASE_URL: &str = "https://verify.twilio.com";

/// How to reach Twilio. `Debug` redacts the auth token.
#[derive(Clone)]
pub struct TwilioSettings {
    /// The account SID (`AC…`): the basic-auth user and part of every REST
    /// path.
    pub account_sid: String,
    /// The account's auth token: the basic-auth password.
    pub auth_token: SecretString,
    /// The number SMS are sent from (unless `messaging_service_sid` is set)
    /// and calls are placed from, in E.164.
    pub from_number: Option<String>,
    /// A Messaging Service (`MG…`) to send SMS through instead of
    /// `from_number`; when set it wins for SMS. Calls still need
    /// `from_number`.
    pub messaging_service_sid: Option<String>,
    /// The Verify service (`VA…`) for [`HostedVerification`].
    pub verify_service_sid: Option<String>,
    /// Where Twilio posts each text's delivery receipts (`StatusCallback`):
    /// the full URL of `/receipts/<provider name>`. No receipts without it.
    pub status_callback: Option<String>,
    /// The WhatsApp sender (a number in E.164 registered with WhatsApp)
    /// that WhatsApp messages come from, as `From=whatsapp:<number>`.
    pub whatsapp_from: Option<String>,
    /// Defaults to [`DEFAULT_API_BASE_URL`]; tests point it at a local
    /// server.
    pub api_base_url: String,
    /// Defaults to [`DEFAULT_VERIFY_BASE_URL`].
    pub verify_base_url: String,
    /// The limit for one attempt, from connecting to reading the whole
    /// response.
    pub timeout: Duration,
    /// The language the code is spoken in on calls (`<Say language>`), e.g.
    /// `en-US`.
    pub voice_language: String,
    /// How many attempts a request gets in all, retries included (at least 1).
    pub max_attempts: u32,
    /// The delay before the first retry; each further retry waits twice as
    /// long as the one before.
    pub retry_base_delay: Duration,
}

impl TwilioSettings {
    /// Settings with Twilio's URLs, a 10-second timeout, `en-US` calls,
    /// 3 attempts and a 200 ms base delay; set the sender fields and the
    /// Verify service as needed.
    pub fn new(account_sid: impl Into<String>, auth_token: SecretString) -> Self {
        Self {
            account_sid: account_sid.into(),
            auth_token,
            from_number: None,
            messaging_service_sid: None,
            verify_service_sid: None,
            status_callback: None,
            whatsapp_from: None,
            api_base_url: DEFAULT_API_BASE_URL.to_owned(),
            verify_base_url: DEFAULT_VERIFY_BASE_URL.to_owned(),
            timeout: Duration::from_secs(10),
            voice_language: "en-US".to_owned(),
            max_attempts: 3,
            retry_base_delay: Duration::from_millis(200),
        }
    }
}

impl fmt::Debug for TwilioSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioSettings")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"[redacted]")
            .field("from_number", &self.from_number)
            .field("messaging_service_sid", &self.messaging_service_sid)
            .field("verify_service_sid", &self.verify_service_sid)
            .field("status_callback", &self.status_callback)
            .field("whatsapp_from", &self.whatsapp_from)
            .field("api_base_url", &self.api_base_url)
            .field("verify_base_url", &self.verify_base_url)
            .field("timeout", &self.timeout)
            .field("voice_language", &self.voice_language)
            .field("max_attempts", &self.max_attempts)
            .field("retry_base_delay", &self.retry_base_delay)
            .finish()
    }
}

/// The settings cannot work; the text says which one and why (never the
/// auth token).
#[derive(Debug, thiserror::Error)]
#[error("invalid Twilio settings: {0}")]
pub struct TwilioSettingsError(String);

/// The Twilio adapter: [`SmsSender`](phonegate_domain::ports::SmsSender), [`VoiceCaller`] and
/// [`HostedVerification`]. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct TwilioClient {
    inner: Arc<Inner>,
    /// Counts Twilio's error codes (`phonegate_twilio_errors_total`).
    metrics: Arc<dyn Metrics>,
    /// A route's sender, in place of the settings' `from_number` and
    /// `messaging_service_sid`.
    sender: Option<Sender>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    settings: TwilioSettings,
    messages_url: String,
    calls_url: String,
    /// The Verify URLs, when a Verify service is configured.
    verify: Option<VerifyUrls>,
}

#[derive(Debug)]
struct VerifyUrls {
    verifications: String,
    verification_check: String,
}

impl TwilioClient {
    /// Checks `settings` and builds the HTTP client. What a port needs but
    /// is missing (a sender for SMS, `from_number` for calls, the Verify
    /// service) is reported as [`DeliveryError::Misconfigured`] when that
    /// port is used, so one client can serve deployments that use only
    /// some of them; at least one of them must be configured.
    pub fn new(settings: TwilioSettings) -> Result<Self, TwilioSettingsError> {
        let invalid = |why: &str| TwilioSettingsError(why.to_owned());
        // SIDs go into URL paths, so they must be plain identifiers.
        let is_sid = |sid: &str| !sid.is_empty() && sid.bytes().all(|b| b.is_ascii_alphanumeric());
        if !is_sid(&settings.account_sid) {
            return Err(invalid("account_sid must be a non-empty alphanumeric SID"));
        }
        if settings.auth_token.expose_secret().is_empty() {
            return Err(invalid("auth_token must not be empty"));
        }
        for (name, sid) in [
            ("messaging_service_sid", &settings.messaging_service_sid),
            ("verify_service_sid", &settings.verify_service_sid),
        ] {
            if sid.as_deref().is_some_and(|sid| !is_sid(sid)) {
                return Err(TwilioSettingsError(format!("{name} must be an alphanumeric SID")));
            }
        }
        if settings.from_number.as_deref().is_some_and(str::is_empty) {
            return Err(invalid("from_number must not be empty when set"));
        }
        if settings
            .whatsapp_from
            .as_deref()
            .is_some_and(|from| !whatsapp::is_e164(from))
        {
            return Err(invalid(
                "whatsapp_from must be a number in E.164 (+ and 8 to 15 digits)",
            ));
        }
        if settings.from_number.is_none()
            && settings.messaging_service_sid.is_none()
            && settings.verify_service_sid.is_none()
            && settings.whatsapp_from.is_none()
        {
            return Err(invalid(
                "set from_number or messaging_service_sid (SMS and calls), verify_service_sid (Verify) or \
                 whatsapp_from (WhatsApp)",
            ));
        }
        if settings.voice_language.is_empty() {
            return Err(invalid("voice_language must not be empty"));
        }
        if settings.max_attempts == 0 {
            return Err(invalid("max_attempts must be at least 1"));
        }
        if settings.timeout.is_zero() {
            return Err(invalid("timeout must be positive"));
        }
        if let Some(callback) = &settings.status_callback {
            base_url("status_callback", callback)?;
        }
        let api = base_url("api_base_url", &settings.api_base_url)?;
        let verify_base = base_url("verify_base_url", &settings.verify_base_url)?;
        let account = &settings.account_sid;
        let messages_url = format!("{api}/2010-04-01/Accounts/{account}/Messages.json");
        let calls_url = format!("{api}/2010-04-01/Accounts/{account}/Calls.json");
        let verify = settings.verify_service_sid.as_deref().map(|service| VerifyUrls {
            verifications: format!("{verify_base}/v2/Services/{service}/Verifications"),
            verification_check: format!("{verify_base}/v2/Services/{service}/VerificationCheck"),
        });
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            // Twilio's API does not redirect; following one would send the
            // credentials somewhere unexpected, so a redirect is an error.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("phonegate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| TwilioSettingsError(format!("cannot build the HTTP client: {error}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                settings,
                messages_url,
                calls_url,
                verify,
            }),
            metrics: Arc::new(NoMetrics),
            sender: None,
        })
    }

    /// The same client (sharing its connections) sending texts and placing
    /// calls from `sender`: a number, an alphanumeric sender ID (texts
    /// only) or a Messaging Service (`MessagingServiceSid`, texts only).
    #[must_use]
    pub fn with_sender(self, sender: Sender) -> Self {
        Self {
            sender: Some(sender),
            ..self
        }
    }

    /// Whether Twilio can send texts from `sender`: any kind.
    pub const fn supports(sender: &Sender) -> bool {
        matches!(
            sender,
            Sender::Number(_) | Sender::Alphanumeric(_) | Sender::MessagingService(_)
        )
    }

    /// The same client, counting every error Twilio answers by its code in
    /// `metrics`.
    #[must_use]
    pub fn with_metrics(self, metrics: Arc<dyn Metrics>) -> Self {
        Self { metrics, ..self }
    }

    /// The settings this client was built with.
    pub fn settings(&self) -> &TwilioSettings {
        &self.inner.settings
    }

    /// A missing setting, found when a port needs it: logged loudly, since
    /// every request of this kind will fail until the settings change.
    fn missing_setting(operation: Operation, what: &str) -> DeliveryError {
        tracing::error!(
            operation = operation.as_str(),
            "Twilio is misconfigured: {what} is not set"
        );
        DeliveryError::Misconfigured(format!("{what} is not set"))
    }

    /// The domain error for a failed request, logged with what Twilio said
    /// (status, code, message) and nothing of the request, and counted by
    /// Twilio's error code (`http_<status>` when the answer had none,
    /// `unavailable` when no answer came).
    fn delivery_error(&self, operation: Operation, failure: Failure) -> DeliveryError {
        let code = match &failure {
            Failure::Refused(error) => error
                .code
                .map_or_else(|| format!("http_{}", error.status), |code| code.to_string()),
            Failure::Unavailable(_) => "unavailable".to_owned(),
            Failure::Misconfigured(_) => "misconfigured".to_owned(),
        };
        self.metrics.provider_error_code("twilio", operation.as_str(), &code);
        match failure {
            Failure::Refused(error) => {
                let mapped = error.to_delivery_error();
                let op = operation.as_str();
                let code = error.code;
                let status = error.status;
                let message = error.message.as_str();
                let more_info = error.more_info.as_deref().unwrap_or("");
                match &mapped {
                    DeliveryError::Misconfigured(_) => tracing::error!(
                        operation = op,
                        http_status = status,
                        twilio_code = code,
                        twilio_message = message,
                        more_info,
                        "Twilio refused our credentials or settings; every request will fail until they are fixed"
                    ),
                    // A number that is not a WhatsApp user is told apart by its code.
                    DeliveryError::InvalidNumber | DeliveryError::NotOnChannel => tracing::info!(
                        operation = op,
                        http_status = status,
                        twilio_code = code,
                        twilio_message = message,
                        "Twilio rejected the number"
                    ),
                    DeliveryError::Rejected(_) => tracing::info!(
                        operation = op,
                        http_status = status,
                        twilio_code = code,
                        twilio_message = message,
                        "Twilio refused the message for good"
                    ),
                    DeliveryError::RateLimited { retry_after } => tracing::warn!(
                        operation = op,
                        http_status = status,
                        twilio_code = code,
                        twilio_message = message,
                        retry_after_secs = retry_after.map(|d| d.as_secs()),
                        "Twilio is rate-limiting requests"
                    ),
                    DeliveryError::Unavailable(_) => tracing::warn!(
                        operation = op,
                        http_status = status,
                        twilio_code = code,
                        twilio_message = message,
                        more_info,
                        "Twilio refused the request"
                    ),
                }
                mapped
            }
            Failure::Unavailable(why) => {
                tracing::error!(operation = operation.as_str(), error = %why, "Twilio is unavailable");
                DeliveryError::Unavailable(why)
            }
            Failure::Misconfigured(why) => {
                tracing::error!(operation = operation.as_str(), error = %why, "Twilio is misconfigured");
                DeliveryError::Misconfigured(why)
            }
        }
    }

    fn verify_urls(&self, operation: Operation) -> Result<&VerifyUrls, DeliveryError> {
        self.inner
            .verify
            .as_ref()
            .ok_or_else(|| Self::missing_setting(operation, "verify_service_sid"))
    }
}

/// `url` without a trailing slash, if it is an absolute http(s) URL.
fn base_url(name: &str, url: &str) -> Result<String, TwilioSettingsError> {
    let parsed = reqwest::Url::parse(url).map_err(|error| TwilioSettingsError(format!("{name}: {error}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.cannot_be_a_base() {
        return Err(TwilioSettingsError(format!("{name} must be an http(s) URL")));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[async_trait]
impl VoiceCaller for TwilioClient {
    async fn call(&self, call: &OutgoingCall) -> Result<(), DeliveryError> {
        let operation = Operation::Call;
        let settings = &self.inner.settings;
        // A route's number places calls; an alphanumeric ID or a Messaging
        // Service cannot, so the settings' number does.
        let from = match &self.sender {
            Some(Sender::Number(from)) => Some(from.as_str()),
            _ => settings.from_number.as_deref(),
        };
        let Some(from) = from else {
            return Err(Self::missing_setting(operation, "from_number"));
        };
        let spoken = call.spoken_text.expose_secret();
        let twiml = twiml::say(&settings.voice_language, spoken);
        let form = [("To", call.to.as_str()), ("From", from), ("Twiml", twiml.as_str())];
        self.post_form(operation, &self.inner.calls_url, &form, &[spoken, &twiml])
            .await
            .map_err(|failure| self.delivery_error(operation, failure))?;
        tracing::debug!(operation = operation.as_str(), "Twilio accepted the call");
        Ok(())
    }
}

/// The part of a VerificationCheck answer we read.
#[derive(Deserialize)]
struct CheckBody {
    status: String,
}

#[async_trait]
impl HostedVerification for TwilioClient {
    async fn start(&self, to: &PhoneNumber, channel: Channel, locale: &str) -> Result<(), DeliveryError> {
        let operation = Operation::VerifyStart;
        let urls = self.verify_urls(operation)?;
        let mut form = vec![("To", to.as_str()), ("Channel", channel.as_str())];
        // An empty locale lets the Verify service pick its default, which an
        // empty `Locale` field would not (Twilio rejects it).
        if !locale.is_empty() {
            form.push(("Locale", locale));
        }
        self.post_form(operation, &urls.verifications, &form, &[])
            .await
            .map_err(|failure| self.delivery_error(operation, failure))?;
        tracing::debug!(
            operation = operation.as_str(),
            channel = channel.as_str(),
            "Twilio Verify started a verification"
        );
        Ok(())
    }

    async fn check(&self, to: &PhoneNumber, code: &OtpCode) -> Result<HostedCheck, DeliveryError> {
        let operation = Operation::VerifyCheck;
        let urls = self.verify_urls(operation)?;
        let form = [("To", to.as_str()), ("Code", code.expose())];
        let body = match self
            .post_form(operation, &urls.verification_check, &form, &[code.expose()])
            .await
        {
            Ok(body) => body,
            // Twilio deletes a verification once it is approved, expired or
            // out of attempts, and then answers 404 / 20404 to checks.
            Err(Failure::Refused(error)) if error.is_not_found() => {
                tracing::debug!(
                    operation = operation.as_str(),
                    http_status = error.status,
                    twilio_code = error.code,
                    "Twilio Verify has no pending verification for the number"
                );
                return Ok(HostedCheck::NotFound);
            }
            Err(failure) => return Err(self.delivery_error(operation, failure)),
        };
        let status = serde_json::from_slice::<CheckBody>(&body)
            .map(|body| body.status)
            .map_err(|_| {
                tracing::error!(
                    operation = operation.as_str(),
                    "Twilio Verify answered a check without a readable status"
                );
                DeliveryError::Unavailable("Twilio Verify answered a check without a readable status".to_owned())
            })?;
        tracing::debug!(operation = operation.as_str(), status, "Twilio Verify checked a code");
        match status.as_str() {
            "approved" => Ok(HostedCheck::Approved),
            "pending" => Ok(HostedCheck::Rejected),
            // The verification exists but can no longer be approved: the
            // user needs a new code, exactly as when it is gone.
            "canceled" | "expired" | "max_attempts_reached" | "deleted" | "failed" => Ok(HostedCheck::NotFound),
            other => {
                tracing::error!(
                    operation = operation.as_str(),
                    status = other,
                    "Twilio Verify answered a check with an unknown status"
                );
                Err(DeliveryError::Unavailable(format!(
                    "Twilio Verify answered an unknown status {other:?}"
                )))
            }
        }
    }
}
