//! `phonegate config check`: what a [`Config`] selects, as the command
//! prints it.

use serde::Serialize;

use crate::{config::Config, settings::Settings};

/// One resolved route, as `config check` prints it.
#[derive(Debug, Serialize)]
pub struct RouteReport {
    /// `+44`, or `default`.
    pub prefix: String,
    pub providers: Vec<&'static str>,
    /// The route's sender; `null` when each provider uses its own.
    pub sender: Option<String>,
}

/// What `phonegate config check` found: the adapters the settings would
/// use. Serialised as the command's output.
#[derive(Debug, Serialize)]
pub struct ConfigReport {
    /// `sqlite` or `postgres`.
    pub database: &'static str,
    /// Who sends texts: the default route's providers, in the order they
    /// are tried (`twilio`, or `vonage, twilio`).
    pub sms: String,
    /// Who places calls: the default voice route's providers.
    pub voice: String,
    /// Every route of texts, as resolved: `prefix` (or `default`) and its
    /// providers in the order they are tried.
    pub sms_routes: Vec<RouteReport>,
    /// The same for calls.
    pub voice_routes: Vec<RouteReport>,
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
        let routes = |plans: &[crate::providers::RoutePlan]| -> Vec<RouteReport> {
            let mut routes: Vec<RouteReport> = plans
                .iter()
                .map(|plan| RouteReport {
                    prefix: plan
                        .prefix
                        .as_ref()
                        .map_or_else(|| "default".to_owned(), |prefix| prefix.as_str().to_owned()),
                    providers: plan.providers.iter().map(|provider| provider.as_str()).collect(),
                    sender: plan.sender.as_ref().map(|sender| sender.as_str().to_owned()),
                })
                .collect();
            // Longest prefix first, as they are matched; the default last.
            routes.sort_by_key(|route| (route.prefix == "default", std::cmp::Reverse(route.prefix.len())));
            routes
        };
        let (sms_routes, voice_routes) = (routes(&config.sms.sms_routes), routes(&config.sms.voice_routes));
        let default_of = |routes: &[RouteReport]| {
            routes
                .iter()
                .find(|route| route.prefix == "default")
                .map(|route| route.providers.join(", "))
                .unwrap_or_default()
        };
        Self {
            database: config.database,
            sms: default_of(&sms_routes),
            // Twilio Verify places its own calls (phone-login's call_verify).
            voice: if config.sms.hosted && default_of(&voice_routes).is_empty() {
                "twilio_verify".to_owned()
            } else {
                default_of(&voice_routes)
            },
            sms_routes,
            voice_routes,
            codes: if config.sms.hosted {
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
