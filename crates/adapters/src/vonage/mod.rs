//! Vonage: SMS through the SMS API and voice calls through the Voice API.
//!
//! A thin client on reqwest (rustls with ring). A text is one form POST to
//! `/sms/json` with the account's API key and secret (`sms.rs`); a call is
//! one JSON POST to `/v1/calls` with a JWT signed by a Vonage application's
//! private key (`voice.rs`). Each request is sent once: the dispatcher does
//! the retrying and the failover (`http.rs`). Vonage's answers map onto the
//! domain's [`DeliveryError`] as tabled in `error.rs`.
//!
//! Nothing here logs or returns a message body, a spoken text, the API
//! secret, the private key, a JWT or the recipient's number: logs carry the
//! operation, the HTTP status and Vonage's status or problem code, and
//! errors carry `vonage <code>` or `vonage http <status>`.

mod error;
mod http;
mod receipts;
mod signature;
mod sms;
mod voice;

use std::{fmt, sync::Arc, time::Duration};

use async_trait::async_trait;
use phonegate_domain::ports::{
    DeliveryError, MessageRef, Metrics, NoMetrics, OutgoingCall, OutgoingSms, ProviderMessageId, Sender, SmsSender,
    VoiceCaller,
};
use secrecy::{ExposeSecret as _, SecretString};

use self::http::{Failure, Operation};
pub use self::{
    receipts::VonageReceiptReader,
    signature::{UnknownSignatureMethod, VonageSignatureMethod},
};

/// Where the SMS API lives.
pub const DEFAULT_SMS_BASE_URL: &str = "https://rest.nexmo.com";
/// Where the Voice API lives.
pub const DEFAULT_VOICE_BASE_URL: &str = "https://api.nexmo.com";

/// How to reach Vonage. `Debug` redacts the API secret and the private key.
#[derive(Clone)]
pub struct VonageSettings {
    /// The account's API key: SMS API credentials, with `api_secret`.
    pub api_key: String,
    /// The account's API secret.
    pub api_secret: SecretString,
    /// The Vonage application whose key signs Voice API requests; calls
    /// need it, texts do not.
    pub application_id: Option<String>,
    /// That application's private key, in PEM form (as the dashboard hands
    /// it out); calls need it.
    pub private_key: Option<SecretString>,
    /// Who texts and calls come from unless a route says otherwise: a
    /// number (texts and calls) or an alphanumeric sender ID (texts only).
    pub from: Option<Sender>,
    /// Defaults to [`DEFAULT_SMS_BASE_URL`]; tests point it at a local server.
    pub sms_base_url: String,
    /// Defaults to [`DEFAULT_VOICE_BASE_URL`]; a regional host from Vonage's
    /// Regions guide works too.
    pub voice_base_url: String,
    /// The language calls speak in (the `talk` action's `language`), e.g.
    /// `en-US`.
    pub voice_language: String,
    /// The limit for one request, from connecting to reading the answer.
    pub timeout: Duration,
    /// Where Vonage sends each text's delivery receipts (the SMS API's
    /// `callback`, at most 100 characters): the full URL of
    /// `/receipts/<provider name>`. Unset, the account's webhook is used.
    pub receipt_url: Option<String>,
    /// The account's signature secret (not the API secret), which signs
    /// its webhooks once Vonage has turned signed webhooks on. Receipts
    /// are refused without it: unsigned ones could be forged.
    pub signature_secret: Option<SecretString>,
    /// How the account signs, as chosen in Vonage's dashboard (default
    /// `md5hash`, Vonage's default).
    pub signature_method: VonageSignatureMethod,
}

impl VonageSettings {
    /// Settings for texts with Vonage's URLs, `en-US` calls and a 10-second
    /// timeout; set `from`, and `application_id` and `private_key` for calls.
    pub fn new(api_key: impl Into<String>, api_secret: SecretString) -> Self {
        Self {
            api_key: api_key.into(),
            api_secret,
            application_id: None,
            private_key: None,
            from: None,
            sms_base_url: DEFAULT_SMS_BASE_URL.to_owned(),
            voice_base_url: DEFAULT_VOICE_BASE_URL.to_owned(),
            voice_language: "en-US".to_owned(),
            timeout: Duration::from_secs(10),
            receipt_url: None,
            signature_secret: None,
            signature_method: VonageSignatureMethod::default(),
        }
    }
}

impl fmt::Debug for VonageSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VonageSettings")
            .field("api_key", &self.api_key)
            .field("api_secret", &"[redacted]")
            .field("application_id", &self.application_id)
            .field("private_key", &self.private_key.as_ref().map(|_| "[redacted]"))
            .field("from", &self.from)
            .field("sms_base_url", &self.sms_base_url)
            .field("voice_base_url", &self.voice_base_url)
            .field("voice_language", &self.voice_language)
            .field("timeout", &self.timeout)
            .field("receipt_url", &self.receipt_url)
            .field(
                "signature_secret",
                &self.signature_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("signature_method", &self.signature_method)
            .finish()
    }
}

/// The settings cannot work; the text names the field and why, never a
/// secret.
#[derive(Debug, thiserror::Error)]
#[error("invalid Vonage settings: {0}")]
pub struct VonageSettingsError(String);

/// The Vonage adapter: [`SmsSender`] and [`VoiceCaller`]. Cheap to clone
/// (the connection pool and the parsed key are shared).
#[derive(Debug, Clone)]
pub struct VonageClient {
    inner: Arc<Inner>,
    /// Who this client sends from: the settings' `from` or a route's.
    sender: Option<Sender>,
    /// Counts Vonage's error codes.
    metrics: Arc<dyn Metrics>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    settings: VonageSettings,
    sms_url: String,
    calls_url: String,
    /// The parsed private key, when one is configured.
    signing_key: Option<voice::SigningKey>,
}

impl VonageClient {
    /// Checks `settings` and builds the HTTP client. A private key that is
    /// not an RSA key in PEM form is refused here. What only one port needs
    /// (the application for calls, a sender) is reported as
    /// [`DeliveryError::Misconfigured`] when that port is used, so one
    /// client can serve a deployment that only texts.
    pub fn new(settings: VonageSettings) -> Result<Self, VonageSettingsError> {
        let invalid = |why: &str| VonageSettingsError(why.to_owned());
        if settings.api_key.trim().is_empty() {
            return Err(invalid("api_key must not be empty"));
        }
        if settings.api_secret.expose_secret().is_empty() {
            return Err(invalid("api_secret must not be empty"));
        }
        if settings
            .application_id
            .as_deref()
            .is_some_and(|id| id.trim().is_empty())
        {
            return Err(invalid("application_id must not be empty when set"));
        }
        let language = &settings.voice_language;
        if language.is_empty() || !language.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(invalid("voice_language must be a language tag such as en-US"));
        }
        if settings.timeout.is_zero() {
            return Err(invalid("timeout must be positive"));
        }
        if let Some(url) = &settings.receipt_url {
            base_url("receipt_url", url)?;
            // Vonage refuses a longer `callback`.
            if url.len() > 100 {
                return Err(invalid("receipt_url must be at most 100 characters (Vonage's limit)"));
            }
        }
        if settings
            .signature_secret
            .as_ref()
            .is_some_and(|secret| secret.expose_secret().is_empty())
        {
            return Err(invalid("signature_secret must not be empty when set"));
        }
        let sms_url = format!("{}/sms/json", base_url("sms_base_url", &settings.sms_base_url)?);
        let calls_url = format!("{}/v1/calls", base_url("voice_base_url", &settings.voice_base_url)?);
        let signing_key = settings
            .private_key
            .as_ref()
            .map(|pem| voice::SigningKey::from_pem(pem.expose_secret()))
            .transpose()
            .map_err(VonageSettingsError)?;
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            // Vonage's APIs do not redirect; following one would send the
            // credentials somewhere unexpected, so a redirect is an error.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("phonegate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| VonageSettingsError(format!("cannot build the HTTP client: {error}")))?;
        Ok(Self {
            sender: settings.from.clone(),
            inner: Arc::new(Inner {
                http,
                settings,
                sms_url,
                calls_url,
                signing_key,
            }),
            metrics: Arc::new(NoMetrics),
        })
    }

    /// The same client (sharing its connection pool), sending from `sender`
    /// instead of the settings' `from`.
    #[must_use]
    pub fn with_sender(self, sender: Sender) -> Self {
        Self {
            sender: Some(sender),
            ..self
        }
    }

    /// The same client, counting every error Vonage answers by its code in
    /// `metrics`.
    #[must_use]
    pub fn with_metrics(self, metrics: Arc<dyn Metrics>) -> Self {
        Self { metrics, ..self }
    }

    /// Whether Vonage can send texts from `sender`: a number or an
    /// alphanumeric sender ID, not a Twilio Messaging Service.
    pub fn supports(sender: &Sender) -> bool {
        matches!(sender, Sender::Number(_) | Sender::Alphanumeric(_))
    }

    /// Whether Vonage can place calls from `sender`: only from a number.
    pub fn supports_calls(sender: &Sender) -> bool {
        matches!(sender, Sender::Number(_))
    }

    /// The settings this client was built with.
    pub fn settings(&self) -> &VonageSettings {
        &self.inner.settings
    }

    /// Who this client sends from.
    pub fn sender(&self) -> Option<&Sender> {
        self.sender.as_ref()
    }

    /// A setting this operation needs is missing or unusable: logged loudly,
    /// since every request of this kind fails until the settings change.
    fn misconfigured(operation: Operation, why: &str) -> DeliveryError {
        tracing::error!(operation = operation.as_str(), "Vonage is misconfigured: {why}");
        DeliveryError::Misconfigured(format!("vonage: {why}"))
    }

    /// The `from` of a text: a number or an alphanumeric sender ID.
    fn sms_sender(&self) -> Result<&str, DeliveryError> {
        match &self.sender {
            Some(sender @ (Sender::Number(_) | Sender::Alphanumeric(_))) => Ok(sender.as_str()),
            Some(Sender::MessagingService(_)) => Err(Self::misconfigured(
                Operation::SendSms,
                "from is a Twilio Messaging Service, which Vonage cannot send from",
            )),
            None => Err(Self::misconfigured(Operation::SendSms, "from is not set")),
        }
    }

    /// The `from` of a call: a number only.
    fn call_sender(&self) -> Result<&str, DeliveryError> {
        match &self.sender {
            Some(Sender::Number(number)) => Ok(number),
            Some(_) => Err(Self::misconfigured(
                Operation::Call,
                "from must be a number to place calls (an alphanumeric sender or a Messaging Service cannot call)",
            )),
            None => Err(Self::misconfigured(Operation::Call, "from is not set")),
        }
    }

    /// The domain error for a failed request, logged with Vonage's status
    /// and code (never its text) and counted by that code (`unavailable`
    /// when no answer came).
    fn delivery_error(&self, operation: Operation, failure: Failure) -> DeliveryError {
        let op = operation.as_str();
        match failure {
            Failure::Refused(refusal) => {
                self.metrics.provider_error_code("vonage", op, &refusal.metric_code());
                let http_status = refusal.http_status;
                let vonage_status = refusal.vonage_status.as_deref();
                let problem = refusal.problem.as_deref();
                let instance = refusal.instance.as_deref();
                match &refusal.error {
                    DeliveryError::Misconfigured(_) => tracing::error!(
                        operation = op,
                        http_status,
                        vonage_status,
                        problem,
                        instance,
                        "Vonage refused our credentials or settings; every request will fail until they are fixed"
                    ),
                    // These vendors carry texts only, so no channel lacks the number.
                    DeliveryError::InvalidNumber | DeliveryError::NotOnChannel => tracing::info!(
                        operation = op,
                        http_status,
                        vonage_status,
                        problem,
                        "Vonage rejected the number"
                    ),
                    DeliveryError::Rejected(_) => tracing::info!(
                        operation = op,
                        http_status,
                        vonage_status,
                        problem,
                        instance,
                        "Vonage refused the message for good"
                    ),
                    DeliveryError::RateLimited { retry_after } => tracing::warn!(
                        operation = op,
                        http_status,
                        vonage_status,
                        problem,
                        retry_after_secs = retry_after.map(|d| d.as_secs()),
                        "Vonage is rate-limiting requests"
                    ),
                    DeliveryError::Unavailable(_) => tracing::warn!(
                        operation = op,
                        http_status,
                        vonage_status,
                        problem,
                        instance,
                        "Vonage is failing"
                    ),
                }
                refusal.error
            }
            Failure::Unavailable(why) => {
                self.metrics.provider_error_code("vonage", op, "unavailable");
                tracing::warn!(operation = op, error = %why, "Vonage is unavailable");
                DeliveryError::Unavailable(why)
            }
            Failure::Misconfigured(why) => {
                self.metrics.provider_error_code("vonage", op, "misconfigured");
                tracing::error!(operation = op, error = %why, "Vonage is misconfigured");
                DeliveryError::Misconfigured(why)
            }
        }
    }
}

/// `url` without a trailing slash, if it is an absolute http(s) URL.
fn base_url(name: &str, url: &str) -> Result<String, VonageSettingsError> {
    let parsed = reqwest::Url::parse(url).map_err(|error| VonageSettingsError(format!("{name}: {error}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.cannot_be_a_base() {
        return Err(VonageSettingsError(format!("{name} must be an http(s) URL")));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

impl VonageClient {
    /// Sends one text and returns its first part's `message-id`, which
    /// that part's receipts name (each part of a long text has its own id
    /// and receipts; a code fits in one part).
    async fn send_text(&self, message: &OutgoingSms) -> Result<Option<ProviderMessageId>, DeliveryError> {
        let operation = Operation::SendSms;
        let from = self.sms_sender()?;
        let settings = &self.inner.settings;
        let mut form = sms::form(
            &settings.api_key,
            settings.api_secret.expose_secret(),
            from,
            message.to.as_str(),
            message.body.expose_secret(),
        );
        if let Some(url) = settings.receipt_url.as_deref() {
            form.push(("callback", url));
        }
        let request = self.inner.http.post(&self.inner.sms_url).form(&form);
        let accepted = http::send(request)
            .await
            .and_then(|answer| sms::outcome(&answer))
            .map_err(|failure| self.delivery_error(operation, failure))?;
        tracing::debug!(
            operation = operation.as_str(),
            parts = accepted.parts,
            "Vonage accepted the message"
        );
        Ok(accepted.message_id)
    }
}

#[async_trait]
impl SmsSender for VonageClient {
    async fn send_sms(&self, message: &OutgoingSms) -> Result<(), DeliveryError> {
        self.send_text(message).await.map(|_| ())
    }

    /// The first part's `message-id` is the id its receipts name.
    async fn send_queued_sms(
        &self,
        message: &OutgoingSms,
        queued: MessageRef,
    ) -> Result<Option<ProviderMessageId>, DeliveryError> {
        let _ = queued;
        self.send_text(message).await
    }
}

#[async_trait]
impl VoiceCaller for VonageClient {
    async fn call(&self, call: &OutgoingCall) -> Result<(), DeliveryError> {
        let operation = Operation::Call;
        let from = self.call_sender()?;
        let settings = &self.inner.settings;
        let Some(application_id) = settings.application_id.as_deref() else {
            return Err(Self::misconfigured(operation, "application_id is not set"));
        };
        let Some(key) = &self.inner.signing_key else {
            return Err(Self::misconfigured(operation, "private_key is not set"));
        };
        let token = key
            .token(application_id, voice::now_secs())
            .map_err(|why| self.delivery_error(operation, Failure::Unavailable(why)))?;
        let body = voice::call_body(
            from,
            call.to.as_str(),
            call.spoken_text.expose_secret(),
            &settings.voice_language,
        );
        let request = self
            .inner
            .http
            .post(&self.inner.calls_url)
            .bearer_auth(token)
            .json(&body);
        let answer = http::send(request)
            .await
            .map_err(|failure| self.delivery_error(operation, failure))?;
        if !(200..300).contains(&answer.status) {
            let refusal = error::http_refusal(answer.status, answer.retry_after, &answer.body);
            return Err(self.delivery_error(operation, Failure::Refused(refusal)));
        }
        tracing::debug!(
            operation = operation.as_str(),
            http_status = answer.status,
            "Vonage accepted the call"
        );
        Ok(())
    }
}
