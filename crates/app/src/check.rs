//! `phonegate config check`: what a [`Config`] selects, as the command
//! prints it.

use serde::Serialize;

use crate::{config::Config, providers::SmsChoice, settings::Settings};

/// What `phonegate config check` found: the adapters the settings would
/// use. Serialised as the command's output.
#[derive(Debug, Serialize)]
pub struct ConfigReport {
    /// `sqlite` or `postgres`.
    pub database: &'static str,
    /// Who sends texts: `console`, `twilio` or `twilio_verify`.
    pub sms: &'static str,
    /// Who places calls: the same as `sms`.
    pub voice: &'static str,
    /// Who makes and checks the codes: `phonegate` or `twilio_verify`.
    pub codes: &'static str,
    /// `console` or `smtp`.
    pub mail: &'static str,
    /// Where the rate limits count: `memory` (one instance) or `redis`.
    pub rate_limit: &'static str,
    /// The current JWT signing key's algorithm and id, and how many
    /// previous keys still verify.
    pub jwt_algorithm: &'static str,
    /// Where the HS256 key comes from: `set` (`auth.jwt_hs256_key`),
    /// derived from the master secret (development only), or `unused`.
    pub jwt_hs256_key: &'static str,
    pub jwt_key_id: String,
    pub jwt_previous_keys: usize,
    /// `text` or `json`.
    pub log_format: &'static str,
    /// Settings that work but deserve a second look.
    pub warnings: Vec<String>,
}

impl ConfigReport {
    /// What `config` selects.
    pub fn of(config: &Config) -> Self {
        let settings = config.settings();
        let sms = settings.sms.provider.as_str();
        Self {
            database: config.database,
            sms,
            voice: sms,
            codes: if matches!(config.sms, SmsChoice::TwilioVerify(_)) {
                "twilio_verify"
            } else {
                "phonegate"
            },
            mail: settings.mail.provider.as_str(),
            rate_limit: config.rate_limit,
            jwt_algorithm: settings.auth.jwt_algorithm.as_str(),
            jwt_hs256_key: config.hs256_key,
            jwt_key_id: settings.auth.jwt_key_id.clone(),
            jwt_previous_keys: settings.auth.jwt_previous_keys.len(),
            log_format: settings.log.format.as_str(),
            warnings: config.warnings().to_vec(),
        }
    }
}

/// Validates `settings` as `serve` would, without connecting to anything
/// (no database, Redis, SMTP or Twilio connection; key files are read), and
/// says which adapters they select. The error names the offending key.
pub fn check_settings(settings: &Settings) -> anyhow::Result<ConfigReport> {
    Config::for_serving(settings).map(|config| ConfigReport::of(&config))
}
