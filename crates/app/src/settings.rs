//! Typed settings, loaded once at start and passed down.
//!
//! Layers, later wins: the built-in defaults (`defaults.toml`, compiled in),
//! `phonegate.toml` in the working directory or the file named by
//! `--config`, then environment variables `PHONEGATE__SECTION__KEY`.
//! Unknown keys are errors, so a typo cannot silently fall back to a default.

use std::path::Path;

use config::{Config, File, FileFormat};
use serde::Deserialize;

mod providers;
mod sections;

pub use providers::*;
pub use sections::*;

const DEFAULTS: &str = include_str!("defaults.toml");

/// The raw settings, one field per TOML table, as the layers give them.
/// Nothing here is checked beyond its type: [`crate::config::Config::new`]
/// checks them all at once and names the bad key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSection,
    pub database: DatabaseSection,
    pub sms: SmsSection,
    #[serde(default)]
    pub voice: VoiceSection,
    #[serde(default)]
    pub whatsapp: WhatsAppSection,
    pub twilio: TwilioSection,
    pub vonage: VonageSection,
    pub plivo: PlivoSection,
    pub telnyx: TelnyxSection,
    pub http_provider: HttpProviderSection,
    pub messages: MessagesSection,
    pub mail: MailSection,
    pub auth: AuthSection,
    pub security: SecuritySection,
    pub otp: OtpSection,
    pub phone: PhoneSection,
    pub pin_auth: PinAuthSection,
    pub phone_verify: PhoneVerifySection,
    pub phone_login: PhoneLoginSection,
    pub rate_limit: RateLimitSection,
    pub abuse: AbuseSection,
    pub sign_in: SignInSection,
    pub lockout: LockoutSection,
    pub outbox: OutboxSection,
    pub housekeeping: HousekeepingSection,
    pub log: LogSection,
}

/// Where to read the settings file from.
#[derive(Debug, Clone, Copy)]
pub enum ConfigFile<'a> {
    /// `phonegate.toml` in the working directory, if it exists.
    Default,
    /// A file the operator named; it must exist.
    Explicit(&'a Path),
}

/// Settings whose environment variable is a comma-separated list.
const LIST_KEYS: &[&str] = &[
    "security.allowed_hosts",
    "security.trusted_proxies",
    "pin_auth.mobile_prefixes",
    "phone_verify.allowed_regions",
    "phone_verify.allowed_prefixes",
    "phone_login.allowed_regions",
    "phone_login.allowed_prefixes",
    "abuse.allowed_regions",
    "abuse.allowed_prefixes",
    "abuse.pumping.prefixes",
];

/// Settings that only a config file can hold (lists of tables). Their
/// environment variable is refused without echoing its value, which may
/// hold a secret.
const FILE_ONLY_KEYS: &[&str] = &["auth.jwt_previous_keys"];

impl Settings {
    /// Loads the layers from the process environment.
    pub fn load(file: ConfigFile<'_>) -> Result<Self, config::ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// Loads the layers with environment variables taken from `vars`
    /// instead of the process environment (for tests).
    ///
    /// Variables are applied as text: values such as `+15005550006` or a
    /// secret made of digits must not be turned into numbers on the way
    /// (typed settings are still parsed from the text when deserialised).
    pub fn load_with_env(
        file: ConfigFile<'_>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, config::ConfigError> {
        let file_source = match file {
            ConfigFile::Default => File::with_name("phonegate.toml")
                .format(FileFormat::Toml)
                .required(false),
            ConfigFile::Explicit(path) => File::from(path).format(FileFormat::Toml).required(true),
        };
        let mut builder = Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .add_source(file_source);
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix("PHONEGATE__") else {
                continue;
            };
            let key = rest.to_ascii_lowercase().replace("__", ".");
            if FILE_ONLY_KEYS.contains(&key.as_str()) {
                return Err(config::ConfigError::Message(format!(
                    "{key} can only be set in the config file, not with the environment variable {name}"
                )));
            }
            builder = if LIST_KEYS.contains(&key.as_str()) {
                let items: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_owned)
                    .collect();
                builder.set_override(key, items)?
            } else {
                builder.set_override(key, value)?
            };
        }
        builder.build()?.try_deserialize()
    }

    /// The built-in defaults alone.
    pub fn defaults() -> Result<Self, config::ConfigError> {
        Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .build()?
            .try_deserialize()
    }

    /// Whether this is a development setup: nothing leaves the machine, so
    /// conveniences such as a generated JWT secret are allowed.
    pub fn is_development(&self) -> bool {
        self.providers_in_use()
            .iter()
            .all(|provider| *provider == SmsProvider::Console)
            && self.mail.provider == MailProvider::Console
    }

    /// The default SMS route: `sms.providers`, or `sms.provider` alone.
    pub fn sms_default_route(&self) -> Vec<SmsProvider> {
        if self.sms.providers.is_empty() {
            vec![self.sms.provider]
        } else {
            self.sms.providers.clone()
        }
    }

    /// Whether Twilio Verify makes and checks the codes: it leads the
    /// default SMS route.
    pub fn hosted_codes(&self) -> bool {
        self.sms_default_route().first() == Some(&SmsProvider::TwilioVerify)
    }

    /// Whether some route names `provider`.
    pub fn uses_provider(&self, provider: SmsProvider) -> bool {
        self.providers_in_use().contains(&provider)
    }

    /// Every provider some route of texts, calls or WhatsApp names, each once, in
    /// the order first named.
    pub fn providers_in_use(&self) -> Vec<SmsProvider> {
        let mut all = self.sms_default_route();
        let routes = self.sms.routes.iter().chain(&self.voice.routes);
        for provider in routes
            .flat_map(|route| route.providers.iter())
            .chain(&self.voice.providers)
            .chain(&self.whatsapp.providers)
        {
            if !all.contains(provider) {
                all.push(*provider);
            }
        }
        all
    }
}
