//! The raw sections of the settings file, as serde reads them: one struct
//! per TOML table (`*Section`) or entry of an array of tables (`*Entry`).
//! They are named apart from the domain's and adapters' settings types,
//! which [`crate::config::Config`] builds from them once they are checked.

use secrecy::SecretString;
use serde::Deserialize;

/// Per-phone and per-IP limits, and where their counts live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    /// Counts shared through Redis when set (several instances); kept in
    /// memory otherwise (one instance). May hold a password: never logged.
    pub redis_url: Option<SecretString>,
    /// Prefix of every Redis key.
    pub redis_key_prefix: String,
    /// Allow sends when Redis cannot be reached (default: refuse with 503).
    pub fail_open: bool,
    pub sends_per_phone: u32,
    pub sends_per_phone_window_seconds: u64,
    /// Sends per phone number per day (a second, longer window).
    pub sends_per_phone_per_day: u32,
    pub sends_per_ip: u32,
    pub sends_per_ip_window_seconds: u64,
    pub checks_per_ip: u32,
    pub checks_per_ip_window_seconds: u64,
    /// Sends per IPv6 /48 (all its /64s together) per `sends_per_ip_window_seconds`; 0 = no such limit.
    pub sends_per_ipv6_48: u32,
    /// Checks per IPv6 /48 per `checks_per_ip_window_seconds`; 0 = no such limit.
    pub checks_per_ipv6_48: u32,
    /// Keys the in-memory limiter holds at most (without Redis); beyond it
    /// the least recently used are forgotten.
    pub max_memory_keys: usize,
    /// Least seconds between two sends to one number, per surface
    /// (`pin_auth`, `phone_verify`, `phone_login`, `phone_confirm`); 0 = none.
    pub resend_cooldown_seconds: std::collections::BTreeMap<String, u64>,
}

/// The SMS-pumping guard.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbuseSection {
    /// Regions (ISO 3166 alpha-2) codes may be sent to; empty = all.
    pub allowed_regions: Vec<String>,
    /// E.164 prefixes codes may be sent to; empty = all.
    pub allowed_prefixes: Vec<String>,
    /// Refuse texts to numbers libphonenumber does not call mobile.
    pub require_mobile_for_sms: bool,
    /// Sends per hour, all destinations; 0 = no budget.
    pub hourly_sms_budget: u32,
    /// Sends per hour per destination calling code; 0 = no budget.
    pub country_hourly_sms_budget: u32,
    /// Per calling code (e.g. `"44"`) budgets overriding the one above.
    pub country_hourly_sms_budgets: std::collections::BTreeMap<String, u32>,
    /// Percent of each hourly budget only numbers that have verified before
    /// may spend (0 to 100; rounded down).
    pub returning_reserve_percent: u8,
    /// The guard per destination prefix on conversion (`[abuse.pumping]`).
    pub pumping: PumpingSection,
}

/// Sends to a prefix whose codes are not verified are held
/// (docs/configuration.md says why the defaults are what they are).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PumpingSection {
    pub enabled: bool,
    /// Sends to a prefix in the window before its conversion is judged.
    pub min_sends: u32,
    /// The least share of those sends, in percent, that must be verified.
    pub min_conversion_percent: u8,
    pub window_seconds: u64,
    /// Sends per minute, all instances together, to a tripped prefix.
    pub held_per_minute: u32,
    /// Prefixes (digits, no `+`) judged apart from their calling code.
    pub prefixes: Vec<String>,
    /// How long an instance trusts a prefix's verdict.
    pub verdict_cache_seconds: u64,
}

/// Password sign-in's throttles and account lockout, the per-IP limit of
/// token lookups, and the password-hashing queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInSection {
    /// Sign-in tries per client IP per window.
    pub per_ip: u32,
    pub per_ip_window_seconds: u64,
    /// Sign-in tries per email address (trimmed, lower-cased) per window.
    pub per_email: u32,
    pub per_email_window_seconds: u64,
    /// Reset completions, introspections and access-code checks per client
    /// IP per window, together.
    pub token_checks_per_ip: u32,
    pub token_checks_window_seconds: u64,
    /// Consecutive failed sign-ins that lock an account; 0 = never.
    pub lock_after_failures: u32,
    /// The first lock; each further failure after a lock doubles it.
    pub lock_base_seconds: u64,
    /// The longest lock.
    pub lock_max_seconds: u64,
    /// Password hashes that may wait per hashing thread; beyond, 503.
    pub hashing_queue_per_thread: usize,
}

/// The cap on wrong codes per phone number (`[lockout]`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockoutSection {
    /// Wrong codes for one number within the window that lock it; 0 = off.
    pub failed_checks: u32,
    /// How far back wrong codes count, in seconds.
    pub window_seconds: u64,
    /// How long a lock lasts, in seconds.
    pub lock_seconds: u64,
}

/// The delivery dispatcher.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSection {
    /// Concurrent dispatchers per instance.
    pub workers: u32,
    /// Messages per claim.
    pub batch: u32,
    /// How long a claim lasts; must exceed a provider call with its retries.
    pub lease_seconds: u64,
    pub retry_base_ms: u64,
    pub retry_max_seconds: u64,
    /// How often an idle dispatcher looks for due retries and rows of a
    /// dispatcher that died. New messages wake it at once.
    pub poll_interval_ms: u64,
}

/// Background purging of what can never be used again.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HousekeepingSection {
    /// Seconds between purges; 0 = never.
    pub interval_seconds: u64,
    /// How long expired rows are kept (for support and audits) before deletion.
    pub retention_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub bind: String,
    /// A second listener for the operator routes (`/metrics`), which then
    /// leave `bind`; unset, everything is served on `bind`.
    pub admin_bind: Option<String>,
    /// Seconds a connection may take to send a complete request head
    /// (also how long an idle keep-alive connection stays open).
    pub header_read_timeout_seconds: u64,
    /// Seconds a request may take, its body included, before a 408.
    pub request_timeout_seconds: u64,
    /// Connections served at once per listener; more wait to be accepted.
    pub max_connections: u32,
    /// Seconds in-flight requests get to finish after SIGTERM before
    /// their connections are closed.
    pub shutdown_grace_seconds: u64,
    /// The URL providers reach this service at (`https://auth.example.com`),
    /// from which their delivery-receipt callbacks are built
    /// (`<public_url>/receipts/<provider>`) and against which their
    /// signatures are checked; unset, no receipts are asked for or taken.
    pub public_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// `sqlite://…` or `postgres://…`. May hold a password, so it is kept
    /// secret and never logged.
    pub url: SecretString,
    pub max_connections: u32,
    /// How long a user profile read from the database is served from
    /// memory (0 turns that off); see `SqlStore::with_profile_cache`.
    pub profile_cache_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioSection {
    pub account_sid: Option<String>,
    pub auth_token: Option<SecretString>,
    /// The sender of SMS and calls (E.164).
    pub from_number: Option<String>,
    /// Send SMS through a Messaging Service instead of `from_number`.
    pub messaging_service_sid: Option<String>,
    /// The Verify service (`sms.provider = "twilio_verify"`).
    pub verify_service_sid: Option<String>,
    /// The WhatsApp sender (a number registered with WhatsApp), sent as
    /// `From=whatsapp:<number>`.
    #[serde(default)]
    pub whatsapp_from: Option<String>,
    pub api_base_url: String,
    pub verify_base_url: String,
    pub timeout_seconds: u64,
    /// Attempts per request when Twilio times out or fails with 5xx.
    pub max_attempts: u32,
    pub retry_base_delay_ms: u64,
    /// `<Say language>` of calls, e.g. `en-US`.
    pub voice_language: String,
    /// `Locale` of Verify messages, e.g. `en`.
    pub verify_locale: String,
    /// The code length configured on the Verify service; every surface uses
    /// it in `twilio_verify` mode, since Twilio generates the codes.
    pub verify_code_length: usize,
}

/// Message templates per locale; `locale` picks the set in use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesSection {
    pub locale: String,
    pub templates: std::collections::HashMap<String, LocaleTemplatesSection>,
}

/// One locale's words. Placeholders: `{app}`, `{code}`, `{digits}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocaleTemplatesSection {
    pub sms: String,
    pub voice: String,
    /// Overrides per surface: `pin_auth`, `phone_verify`, `phone_login`, `phone_confirm`.
    #[serde(default)]
    pub surfaces: std::collections::HashMap<String, SurfaceTemplatesSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurfaceTemplatesSection {
    pub sms: Option<String>,
    pub voice: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailProvider {
    Console,
    Smtp,
}

impl MailProvider {
    /// The name the settings use, also the `provider` label of metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::Smtp => "smtp",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSection {
    pub provider: MailProvider,
    /// May hold credentials, so it is kept secret.
    pub smtp_url: Option<SecretString>,
    pub from: String,
    pub timeout_seconds: u64,
    /// The link in password-reset emails; `{token}` becomes the reset token.
    pub reset_url_template: String,
    pub reset_ttl_seconds: u64,
    /// The least time a reset request takes to answer, known email or not.
    pub reset_min_response_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// The master secret: the hashing key of codes and stored tokens and
    /// the sealing key of outbox rows are derived from it. It never signs a
    /// token and no other service needs it. Optional only in development
    /// (console providers), where a random secret is generated once per
    /// database.
    pub jwt_secret: Option<SecretString>,
    pub jwt_issuer: String,
    pub jwt_ttl_seconds: u64,
    pub jwt_key_id: String,
    /// Lifetime of the tokens surface's opaque session tokens.
    pub session_ttl_seconds: u64,
    /// argon2id cost: memory in KiB, passes, lanes (OWASP: 19456, 2, 1).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    // JWT signing keys: the algorithm of the current key (`jwt_key_id`),
    // its material, and the previous keys that only verify (rotation).
    /// The current key's algorithm.
    pub jwt_algorithm: JwtAlgorithmSetting,
    /// HS256 only: the current key's secret, which the services verifying
    /// phonegate's JWTs share (at least 32 bytes, never `jwt_secret`).
    /// Required with HS256 outside development; in development it is
    /// derived from the master secret when unset. Rotating HS256 keys
    /// changes this and leaves `jwt_secret` alone. Its former name,
    /// `jwt_signing_secret`, is still read.
    #[serde(alias = "jwt_signing_secret")]
    pub jwt_hs256_key: Option<SecretString>,
    /// RS256 and EdDSA: the current key's PEM private key file.
    pub jwt_private_key_file: Option<std::path::PathBuf>,
    /// Keys that verify tokens they signed earlier and never sign. A list of
    /// tables: config file only, not settable from the environment.
    pub jwt_previous_keys: Vec<PreviousJwtKeyEntry>,
}

/// The algorithm of a JWT key, as JWS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JwtAlgorithmSetting {
    #[serde(rename = "HS256")]
    Hs256,
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl JwtAlgorithmSetting {
    /// The name JWS (and the settings) give the algorithm.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Rs256 => "RS256",
            Self::EdDsa => "EdDSA",
        }
    }
}

/// A previous JWT key: it verifies the tokens it signed until they expire.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousJwtKeyEntry {
    pub kid: String,
    pub algorithm: JwtAlgorithmSetting,
    /// HS256: the shared secret.
    pub secret: Option<SecretString>,
    /// RS256 and EdDSA: the PEM public key file.
    pub public_key_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySection {
    pub allowed_hosts: Vec<String>,
    /// The reverse proxy's client-address header (e.g. `X-Forwarded-For`);
    /// unset, the socket's address is the client's (or, with
    /// `trusted_proxies`, `X-Forwarded-For` is read).
    pub client_ip_header: Option<String>,
    /// CIDR blocks (or addresses) of the proxies allowed to name the
    /// client: the right-most address of the forwarded chain that is not
    /// one of them is the client. Empty: the header, if set, is believed
    /// from any peer (its right-most entry).
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodePolicySection {
    pub length: usize,
    pub ttl_seconds: u64,
    pub max_attempts: u32,
    /// How the surface's texts travel; calls are unchanged.
    #[serde(default)]
    pub channel: TextChannel,
}

/// How a surface's texts travel (`otp.<surface>.channel`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextChannel {
    #[default]
    Sms,
    /// A WhatsApp message with the same words, and the same code by SMS
    /// when the number is not on WhatsApp.
    #[serde(rename = "whatsapp")]
    WhatsApp,
}

/// A test number with its fixed code.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestNumberEntry {
    /// E.164, e.g. `+15555550100`.
    pub number: String,
    pub code: String,
}

/// A range of test numbers: every number starting with `prefix`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestPrefixEntry {
    pub prefix: String,
    pub code: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtpSection {
    pub app_name: String,
    /// Test numbers are refused at start with a real SMS provider unless this is set.
    pub allow_test_numbers_in_production: bool,
    pub test_numbers: Vec<TestNumberEntry>,
    pub test_prefixes: Vec<TestPrefixEntry>,
    pub pin_auth: CodePolicySection,
    pub phone_verify: CodePolicySection,
    pub phone_login: CodePolicySection,
    /// The tokens surface's `send_phone_verification`.
    pub phone_confirm: CodePolicySection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneSection {
    /// Region (ISO 3166 alpha-2) in which national numbers such as
    /// `(206)372-1234` are read.
    pub default_region: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneVerifySection {
    /// Regions (ISO 3166 alpha-2) accepted; empty accepts all.
    pub allowed_regions: Vec<String>,
    /// E.164 prefixes accepted; empty accepts all.
    pub allowed_prefixes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneLoginSection {
    pub allowed_regions: Vec<String>,
    pub allowed_prefixes: Vec<String>,
    /// How long an access code from check_pin stays valid.
    pub access_code_ttl_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinAuthSection {
    pub mobile_prefixes: Vec<String>,
    pub mobile_digits_after_prefix: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info,sqlx=warn`.
    pub filter: String,
}
