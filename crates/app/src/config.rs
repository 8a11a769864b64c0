//! The validated configuration: the raw [`Settings`] checked once, in one
//! place, and turned into the domain's and adapters' own settings.
//!
//! Both `phonegate serve` (through [`crate::build`]) and `phonegate config
//! check` (through [`crate::check_settings`]) start from a [`Config`], so a
//! setting that `config check` accepts is one `serve` accepts, and each
//! error names the key at fault. Building one connects to nothing: the
//! database, Redis, SMTP and Twilio are reached only when the service is
//! wired; key files are read.

use std::sync::Arc;

use anyhow::bail;
use phonegate_adapters::{
    password::{Argon2Settings, argon2_for},
    random::OsRandom,
    rate_limit::RedisRateLimiter,
    sql::Backend,
};
use phonegate_api::ClientIpSource;
use phonegate_domain::{
    abuse::{AbuseSettings, phone_lockout::LockoutSettings, pumping::PumpingSettings, sign_in::SignInLimits},
    delivery::MessageTemplates,
    otp::{OtpPolicy, TestNumbers},
    phone::{MobileRule, PhonePolicy},
};
use secrecy::{ExposeSecret as _, SecretString};

use crate::{
    exposure, jwt_keys,
    providers::{self, MailChoice, SmsChoice},
    secrets,
    settings::{CodePolicySection, Settings, SmsProvider},
};

mod lockout;
mod policies;
mod pumping;
mod sign_in;

/// The settings, checked. Built by [`Config::new`] (what the service needs
/// to run) or [`Config::for_serving`] (that, and what it may expose to the
/// network).
#[derive(Debug)]
pub struct Config {
    /// The settings this was checked from. The values that need no check
    /// (names, durations) and the JWT keys, which are read again once the
    /// master secret is known, are taken from here.
    pub(crate) settings: Settings,
    /// `sqlite` or `postgres`.
    pub(crate) database: &'static str,
    pub(crate) test_numbers: TestNumbers,
    pub(crate) sms: SmsChoice,
    pub(crate) templates: MessageTemplates,
    pub(crate) mail: MailChoice,
    pub(crate) codes: CodePolicies,
    pub(crate) phones: PhonePolicies,
    pub(crate) mobile_rule: MobileRule,
    pub(crate) abuse: AbuseSettings,
    pub(crate) pumping: PumpingSettings,
    pub(crate) sign_in: SignInLimits,
    pub(crate) lockout: LockoutSettings,
    pub(crate) client_ip: ClientIpSource,
    pub(crate) argon2: Argon2Settings,
    /// Where the rate limits count: `memory` or `redis`.
    pub(crate) rate_limit: &'static str,
    /// Where the HS256 key comes from, as `config check` reports it.
    pub(crate) hs256_key: &'static str,
    /// Settings that work but deserve a second look, in the order found.
    warnings: Vec<String>,
    /// The warnings about what the service exposes, which `serve` logs.
    exposure_warnings: Vec<String>,
}

/// The code policy of each surface.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CodePolicies {
    pub(crate) pin_auth: OtpPolicy,
    pub(crate) phone_verify: OtpPolicy,
    pub(crate) phone_login: OtpPolicy,
    pub(crate) phone_confirm: OtpPolicy,
}

/// The numbers each surface accepts.
#[derive(Debug, Clone)]
pub(crate) struct PhonePolicies {
    pub(crate) phone_verify: PhonePolicy,
    pub(crate) phone_login: PhonePolicy,
    /// The tokens surface reads numbers in the default region, any region.
    pub(crate) tokens: PhonePolicy,
}

/// Whether the checks of what the service exposes refuse the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exposure {
    /// `serve` and `config check`: a developer console on a public address,
    /// an http reset link or SMTP credentials in the clear are refused.
    Refused,
    /// Building the service in-process (tests, the benchmark, the admin
    /// commands): only the proxy settings it uses are checked.
    Unchecked,
}

impl Config {
    /// Checks everything the service needs to run. The error names the key.
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        Self::check(settings, Exposure::Unchecked)
    }

    /// Checks everything the service needs to run and refuses settings
    /// that are unsafe to serve, as `serve` and `config check` do.
    pub fn for_serving(settings: &Settings) -> anyhow::Result<Self> {
        Self::check(settings, Exposure::Refused)
    }

    /// Settings that work but deserve a second look.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The warnings about what the service exposes to the network.
    pub fn exposure_warnings(&self) -> &[String] {
        &self.exposure_warnings
    }

    /// The raw settings this was checked from.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    // The order of the checks is the order in which errors are reported
    // (and warnings listed), kept as `config check` has always had it.
    fn check(settings: &Settings, exposure: Exposure) -> anyhow::Result<Self> {
        let mut warnings = vec![];
        let database = match Backend::of_url(settings.database.url.expose_secret()) {
            Some(Backend::Sqlite) => "sqlite",
            Some(Backend::Postgres) => "postgres",
            None => bail!(
                "database.url must start with sqlite: or postgres:// (the value is not shown: it may hold a password)"
            ),
        };
        if settings.database.max_connections == 0 {
            bail!("database.max_connections must be at least 1");
        }
        let test_numbers = policies::test_numbers(settings)?;
        if !test_numbers.is_empty() {
            warnings.push("otp.test_numbers / otp.test_prefixes are enabled: they accept a fixed code".to_owned());
        }
        let sms = providers::sms_choice(settings)?;
        warnings.extend(sms.warnings.iter().cloned());
        // An instance that makes its own codes but can check Verify's (a
        // fleet switching to or from Verify) parses every submitted code at
        // its own lengths first: a Verify code of another length is
        // refused as malformed before it could reach Verify.
        if !settings.hosted_codes() && settings.twilio.verify_service_sid.is_some() {
            let otp = &settings.otp;
            let verify = settings.twilio.verify_code_length;
            let differ: Vec<&str> = [
                ("pin_auth", otp.pin_auth.length),
                ("phone_verify", otp.phone_verify.length),
                ("phone_login", otp.phone_login.length),
                ("phone_confirm", otp.phone_confirm.length),
            ]
            .into_iter()
            .filter(|(_, length)| *length != verify)
            .map(|(surface, _)| surface)
            .collect();
            if !differ.is_empty() {
                warnings.push(format!(
                    "twilio.verify_service_sid is set, so this instance checks codes Twilio Verify made for other \
                     instances, but otp.{{{}}}.length differ from twilio.verify_code_length ({verify}): those \
                     surfaces refuse Verify's codes as malformed; give them the same length during a switch",
                    differ.join(",")
                ));
            }
        }
        // One delivery tries a route's providers in turn under one lease:
        // the lease must outlast the slowest route, or another instance
        // may take the message over and send it again.
        let longest_route = sms
            .sms_routes
            .iter()
            .chain(&sms.voice_routes)
            .map(|plan| {
                plan.providers
                    .iter()
                    .map(|provider| provider_seconds(settings, *provider))
                    .sum::<u64>()
            })
            .max()
            .unwrap_or(0);
        if settings.outbox.lease_seconds <= longest_route {
            warnings.push(format!(
                "outbox.lease_seconds ({}) should exceed the longest a route's providers can take in turn \
                 ({longest_route} s: their timeouts, Twilio's times twilio.max_attempts), or a slow message may \
                 be sent twice",
                settings.outbox.lease_seconds
            ));
        }
        let templates = policies::message_templates(settings)?;
        let mail = providers::mail_choice(settings)?;
        let codes = code_policies(settings)?;
        let phone_verify = policies::phone_policy(
            settings,
            "phone_verify",
            &settings.phone_verify.allowed_regions,
            &settings.phone_verify.allowed_prefixes,
        )?;
        let phone_login = policies::phone_policy(
            settings,
            "phone_login",
            &settings.phone_login.allowed_regions,
            &settings.phone_login.allowed_prefixes,
        )?;
        let abuse = policies::abuse_settings(settings)?;
        let pumping = pumping::pumping_settings(settings)?;
        let sign_in = sign_in::limits(settings)?;
        let lockout = lockout::lockout_settings(settings)?;
        warnings.extend(lockout::guessing_warnings(settings));
        let header = policies::client_ip_header(settings)?;
        let exposure_warnings = match exposure {
            Exposure::Refused => exposure::check(settings)?,
            Exposure::Unchecked => vec![],
        };
        warnings.extend(exposure_warnings.iter().cloned());
        let client_ip = ClientIpSource {
            header,
            trusted_proxies: exposure::trusted_proxies(settings)?,
        };
        let rate_limit = match &settings.rate_limit.redis_url {
            Some(url) => {
                RedisRateLimiter::check_url(url.expose_secret())
                    .map_err(|error| anyhow::anyhow!("rate_limit.redis_url: {}", error.report()))?;
                "redis"
            }
            None => "memory",
        };
        if rate_limit == "memory" && database == "postgres" {
            warnings.push(
                "rate_limit.redis_url is not set: each instance counts its own limits; set it when running several \
                 instances"
                    .to_owned(),
            );
        }
        let hs256_key = jwt_keys_check(settings, &mut warnings)?;
        tracing_subscriber::EnvFilter::try_new(&settings.log.filter)
            .map_err(|error| anyhow::anyhow!("log.filter: {error}"))?;
        let argon2 = Argon2Settings {
            memory_kib: settings.auth.argon2_memory_kib,
            iterations: settings.auth.argon2_iterations,
            parallelism: settings.auth.argon2_parallelism,
        };
        argon2_for(argon2).map_err(|error| anyhow::anyhow!("auth.argon2_*: {error}"))?;
        let tokens = policies::phone_policy(settings, "tokens", &[], &[])?;
        Ok(Self {
            settings: settings.clone(),
            database,
            test_numbers,
            sms,
            templates,
            mail,
            codes,
            phones: PhonePolicies {
                phone_verify,
                phone_login,
                tokens,
            },
            mobile_rule: MobileRule::new(
                settings.pin_auth.mobile_prefixes.clone(),
                settings.pin_auth.mobile_digits_after_prefix,
            ),
            abuse,
            pumping,
            sign_in,
            lockout,
            client_ip,
            argon2,
            rate_limit,
            hs256_key,
            warnings,
            exposure_warnings,
        })
    }
}

/// The longest one delivery through `provider` can take, in seconds.
fn provider_seconds(settings: &Settings, provider: SmsProvider) -> u64 {
    match provider {
        SmsProvider::Twilio | SmsProvider::TwilioVerify => settings
            .twilio
            .timeout_seconds
            .saturating_mul(u64::from(settings.twilio.max_attempts.max(1))),
        SmsProvider::Vonage => settings.vonage.timeout_seconds,
        SmsProvider::Plivo => settings.plivo.timeout_seconds,
        SmsProvider::Telnyx => settings.telnyx.timeout_seconds,
        SmsProvider::Http => settings.http_provider.timeout_seconds,
        SmsProvider::Console | SmsProvider::Null => 0,
    }
}

/// The code policy of every surface. With Twilio Verify, Twilio generates
/// the codes with the length set on the Verify service, so every surface
/// uses that length.
fn code_policies(settings: &Settings) -> anyhow::Result<CodePolicies> {
    let policy = |name: &str, mut policy: CodePolicySection| {
        if settings.hosted_codes() {
            policy.length = settings.twilio.verify_code_length;
        }
        policies::code_policy(name, policy)
    };
    let otp = &settings.otp;
    Ok(CodePolicies {
        pin_auth: policy("pin_auth", otp.pin_auth)?,
        phone_verify: policy("phone_verify", otp.phone_verify)?,
        phone_login: policy("phone_login", otp.phone_login)?,
        phone_confirm: policy("phone_confirm", otp.phone_confirm)?,
    })
}

/// Checks the master secret and the JWT keys as the service reads them,
/// and says where the HS256 key comes from. In development, where the
/// service generates a master secret once it has a database, a placeholder
/// stands in so that the JWT key settings are still checked.
fn jwt_keys_check(settings: &Settings, warnings: &mut Vec<String>) -> anyhow::Result<&'static str> {
    let secret = match secrets::configured_master(settings)? {
        Some(secret) => secret,
        None if settings.is_development() => {
            warnings.push("auth.jwt_secret is not set: a random one is kept in the development database".to_owned());
            SecretString::from("a placeholder for config check only, never used".to_owned())
        }
        None => bail!("auth.jwt_secret is required when a real SMS or mail provider is configured"),
    };
    let hs256_key = secrets::hs256_key(settings, &secret)?;
    warnings.extend(secrets::master_reuse_warnings(settings, &secret));
    jwt_keys::check(&settings.auth, hs256_key.key(), Arc::new(OsRandom))?;
    Ok(hs256_key.describe())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_unexposed() {
        let config = Config::for_serving(&Settings::defaults().unwrap()).unwrap();
        assert_eq!(config.database, "sqlite");
        assert_eq!(config.rate_limit, "memory");
        assert!(config.sms.uses_console() && !config.sms.hosted);
        assert!(config.exposure_warnings().is_empty());
    }

    /// Building the service in-process leaves the network edge to `serve`:
    /// a console on every interface is refused only when serving.
    #[test]
    fn only_serving_checks_what_is_exposed() {
        let mut settings = Settings::defaults().unwrap();
        settings.server.bind = "0.0.0.0:8080".to_owned();
        assert!(Config::new(&settings).is_ok());
        let error = Config::for_serving(&settings).unwrap_err().to_string();
        assert!(
            error.starts_with("server.bind = \"0.0.0.0:8080\" is not a loopback address"),
            "{error}"
        );
    }

    #[test]
    fn twilio_verify_sets_every_code_length() {
        let mut settings = Settings::defaults().unwrap();
        settings.twilio.verify_code_length = 8;
        let lengths = |codes: CodePolicies| {
            [
                codes.pin_auth,
                codes.phone_verify,
                codes.phone_login,
                codes.phone_confirm,
            ]
            .map(|policy| policy.length.get())
        };
        let console = lengths(code_policies(&settings).unwrap());
        settings.sms.provider = SmsProvider::TwilioVerify;
        let verify = lengths(code_policies(&settings).unwrap());
        assert_eq!(console[..3], [4, 6, 5]);
        assert_eq!(verify, [8; 4]);
    }
}
