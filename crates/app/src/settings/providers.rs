//! The raw sections that choose and configure the SMS and voice providers
//! and their routes (`[sms]`, `[voice]`, `[vonage]`, `[plivo]`, `[telnyx]`,
//! `[http_provider]`; `[twilio]` is in `sections`).

use secrecy::SecretString;
use serde::Deserialize;

/// A provider of texts and calls, as settings name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsProvider {
    Console,
    Twilio,
    TwilioVerify,
    Vonage,
    Plivo,
    Telnyx,
    /// The generic signed HTTP provider (`[http_provider]`).
    Http,
    /// Drops every message: for benchmarks only, refused unless mail stays
    /// on the console too (a deployment that mails people cannot use it).
    Null,
}

impl SmsProvider {
    /// The name the settings use, also the `provider` label of metrics and
    /// the outbox's `provider` column.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::Twilio => "twilio",
            Self::TwilioVerify => "twilio_verify",
            Self::Vonage => "vonage",
            Self::Plivo => "plivo",
            Self::Telnyx => "telnyx",
            Self::Http => "http",
            Self::Null => "null",
        }
    }

    /// Whether the provider can place calls that read a code aloud.
    pub const fn places_calls(self) -> bool {
        matches!(
            self,
            Self::Console | Self::Twilio | Self::Vonage | Self::Http | Self::Null
        )
    }
}

/// `[sms]`: who sends texts, by destination.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSection {
    /// The one provider of a deployment that names one (the default route
    /// when `providers` is empty).
    pub provider: SmsProvider,
    /// The default route: the providers to try, in order, for numbers no
    /// route's prefix matches. When set, `provider` is not used.
    #[serde(default)]
    pub providers: Vec<SmsProvider>,
    /// The default route's sender (a number, an alphanumeric sender ID or
    /// a Twilio Messaging Service SID); each provider's own `from` when
    /// unset.
    #[serde(default)]
    pub sender: Option<String>,
    /// Routes by E.164 prefix; the longest matching prefix wins.
    #[serde(default)]
    pub routes: Vec<RouteEntry>,
    /// Consecutive failures that open a provider's circuit (it is then
    /// skipped for `breaker_cool_off_seconds`); 0 = never.
    pub breaker_failures: u32,
    pub breaker_cool_off_seconds: u64,
    /// With `provider = "null"`: a loopback UDP address that receives a copy
    /// of each dropped message, so a benchmark can read its codes.
    #[serde(default)]
    pub null_tap: Option<String>,
}

/// `[voice]`: who places calls, by destination.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceSection {
    /// The default route of calls; when empty, the SMS default route's
    /// providers that can place calls.
    #[serde(default)]
    pub providers: Vec<SmsProvider>,
    /// The number calls come from on the default route; each provider's
    /// own `from` when unset.
    #[serde(default)]
    pub sender: Option<String>,
    #[serde(default)]
    pub routes: Vec<RouteEntry>,
}

/// `[whatsapp]`: who carries WhatsApp messages, for the surfaces whose
/// `otp.<surface>.channel` is `whatsapp`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsAppSection {
    /// The providers to try, in order; when empty, the SMS default
    /// route's providers that can carry WhatsApp.
    #[serde(default)]
    pub providers: Vec<SmsProvider>,
}

/// One route: numbers starting with `prefix` go to `providers`, in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteEntry {
    /// `+` and digits, e.g. `+44` or `+1415`.
    pub prefix: String,
    pub providers: Vec<SmsProvider>,
    /// The route's sender; the default route's when unset.
    #[serde(default)]
    pub sender: Option<String>,
}

/// `[vonage]`: the SMS API and the Voice API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VonageSection {
    pub api_key: Option<String>,
    pub api_secret: Option<SecretString>,
    /// The Voice API application, whose private key signs the JWTs.
    pub application_id: Option<String>,
    /// The application's private key (PEM).
    pub private_key: Option<SecretString>,
    /// The sender (a number, or an alphanumeric ID for texts).
    pub from: Option<String>,
    pub sms_base_url: String,
    pub voice_base_url: String,
    pub voice_language: String,
    pub timeout_seconds: u64,
    /// The account's signature secret, with which Vonage signs delivery
    /// receipts; without it every Vonage receipt is refused.
    pub signature_secret: Option<SecretString>,
    /// How Vonage signs: `md5hash` (its default), `md5`, `sha1`, `sha256`
    /// or `sha512`.
    pub signature_method: String,
}

/// `[plivo]`: the Message API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlivoSection {
    pub auth_id: Option<String>,
    pub auth_token: Option<SecretString>,
    pub from: Option<String>,
    pub base_url: String,
    pub timeout_seconds: u64,
}

/// `[telnyx]`: the Messages API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelnyxSection {
    pub api_key: Option<SecretString>,
    pub messaging_profile_id: Option<String>,
    pub from: Option<String>,
    pub base_url: String,
    pub timeout_seconds: u64,
}

/// `[http_provider]`: the generic signed HTTP provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProviderSection {
    pub url: Option<String>,
    /// The signing secret, `whsec_` and base64 (Standard Webhooks).
    pub secret: Option<SecretString>,
    pub from: Option<String>,
    /// The `locale` field of each request.
    pub locale: String,
    pub timeout_seconds: u64,
}
