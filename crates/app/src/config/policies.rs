//! The checks that turn raw sections into the domain's policies: code
//! lengths and lifetimes, test numbers, accepted phone numbers, message
//! templates, the rate limits and the SMS-pumping guard. Every error names
//! the key at fault.

use std::time::Duration;

use anyhow::{Context as _, bail};
use phonegate_domain::{
    abuse::AbuseSettings,
    delivery::MessageTemplates,
    otp::{CodeLength, OtpPolicy, Purpose, TestNumbers},
    phone::{PhoneNumber, PhonePolicy},
    rate_limit::RateRule,
};

use crate::settings::{CodePolicySection, Settings, SmsProvider};

pub(super) fn code_policy(name: &str, policy: CodePolicySection) -> anyhow::Result<OtpPolicy> {
    let Some(length) = CodeLength::new(policy.length) else {
        bail!("otp.{name}.length must be between 4 and 10, not {}", policy.length);
    };
    if policy.max_attempts == 0 {
        bail!("otp.{name}.max_attempts must be at least 1");
    }
    if policy.ttl_seconds == 0 {
        bail!("otp.{name}.ttl_seconds must be at least 1");
    }
    Ok(OtpPolicy {
        length,
        ttl: Duration::from_secs(policy.ttl_seconds),
        max_attempts: policy.max_attempts,
    })
}

/// The configured test numbers, refused with a real SMS provider unless the
/// deployment explicitly allows them.
pub(super) fn test_numbers(settings: &Settings) -> anyhow::Result<TestNumbers> {
    let otp = &settings.otp;
    let exact = otp
        .test_numbers
        .iter()
        .map(|entry| {
            PhoneNumber::parse_e164(&entry.number)
                .map(|phone| (phone, entry.code.clone()))
                .map_err(|error| anyhow::anyhow!("otp.test_numbers: {:?} is not E.164: {error}", entry.number))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let prefixes = otp
        .test_prefixes
        .iter()
        .map(|entry| {
            let digits = entry.prefix.strip_prefix('+').unwrap_or_default();
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                bail!("otp.test_prefixes: {:?} must be + and digits", entry.prefix);
            }
            Ok((entry.prefix.clone(), entry.code.clone()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let numbers = TestNumbers::new(exact, prefixes).map_err(|error| anyhow::anyhow!("otp: {error}"))?;
    if !numbers.is_empty() {
        let real_provider = settings
            .providers_in_use()
            .iter()
            .any(|provider| *provider != SmsProvider::Console);
        if real_provider && !otp.allow_test_numbers_in_production {
            bail!(
                "otp.test_numbers / otp.test_prefixes are configured with a real SMS provider; \
                 set otp.allow_test_numbers_in_production = true if that is intended"
            );
        }
        tracing::warn!(
            numbers = otp.test_numbers.len(),
            prefixes = otp.test_prefixes.len(),
            "test numbers are enabled: they accept a fixed code and receive nothing"
        );
    }
    Ok(numbers)
}

pub(super) fn phone_policy(
    settings: &Settings,
    surface: &str,
    regions: &[String],
    prefixes: &[String],
) -> anyhow::Result<PhonePolicy> {
    PhonePolicy::new(&settings.phone.default_region, regions, prefixes.to_vec())
        .map_err(|error| anyhow::anyhow!("{surface} / phone.default_region: {error}"))
}

/// The purpose a settings table names by its surface (`pin_auth`,
/// `phone_verify`, `phone_login`, `phone_confirm`); `section` names the table
/// in the error.
fn surface_purpose(section: &str, surface: &str) -> anyhow::Result<Purpose> {
    Ok(match surface {
        "pin_auth" => Purpose::PinAuth,
        "phone_verify" => Purpose::PhoneVerify,
        "phone_login" => Purpose::PhoneLogin,
        "phone_confirm" => Purpose::PhoneConfirm,
        other => bail!("{section}.{other}: unknown surface (pin_auth, phone_verify, phone_login or phone_confirm)"),
    })
}

/// The message templates of `messages.locale`.
pub(super) fn message_templates(settings: &Settings) -> anyhow::Result<MessageTemplates> {
    let locale = &settings.messages.locale;
    let set = settings
        .messages
        .templates
        .get(locale)
        .with_context(|| format!("messages.locale = {locale:?} has no [messages.templates.{locale}]"))?;
    let mut templates = MessageTemplates {
        sms: set.sms.clone(),
        voice: set.voice.clone(),
        ..MessageTemplates::english()
    };
    for (surface, overrides) in &set.surfaces {
        let purpose = surface_purpose(&format!("messages.templates.{locale}.surfaces"), surface)?;
        if let Some(sms) = &overrides.sms {
            templates.sms_by_purpose.insert(purpose, sms.clone());
        }
        if let Some(voice) = &overrides.voice {
            templates.voice_by_purpose.insert(purpose, voice.clone());
        }
    }
    templates
        .validate()
        .map_err(|error| anyhow::anyhow!("messages.templates.{locale}: {error}"))?;
    Ok(templates)
}

/// The limits and the SMS-pumping guard from `[rate_limit]` and `[abuse]`.
pub(super) fn abuse_settings(settings: &Settings) -> anyhow::Result<AbuseSettings> {
    let limits = &settings.rate_limit;
    let abuse = &settings.abuse;
    let rule = |limit: u32, seconds: u64| RateRule::new(limit, Duration::from_secs(seconds.max(1)));
    let mut resend_cooldown = std::collections::HashMap::new();
    for (surface, seconds) in &limits.resend_cooldown_seconds {
        let purpose = surface_purpose("rate_limit.resend_cooldown_seconds", surface)?;
        resend_cooldown.insert(purpose, Duration::from_secs(*seconds));
    }
    if abuse.returning_reserve_percent > 100 {
        bail!(
            "abuse.returning_reserve_percent: {} is not a share of the budget (0 to 100)",
            abuse.returning_reserve_percent
        );
    }
    if limits.max_memory_keys < 1000 {
        bail!(
            "rate_limit.max_memory_keys: {} is too few to hold one instance's counts (at least 1000)",
            limits.max_memory_keys
        );
    }
    for code in abuse.country_hourly_sms_budgets.keys() {
        if code.is_empty() || code.len() > 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            bail!("abuse.country_hourly_sms_budgets: {code:?} is not a calling code (digits, e.g. \"44\")");
        }
    }
    Ok(AbuseSettings {
        sends_per_phone: rule(limits.sends_per_phone, limits.sends_per_phone_window_seconds),
        sends_per_phone_daily: rule(limits.sends_per_phone_per_day, 86_400),
        resend_cooldown,
        sends_per_ip: rule(limits.sends_per_ip, limits.sends_per_ip_window_seconds),
        checks_per_ip: rule(limits.checks_per_ip, limits.checks_per_ip_window_seconds),
        // A /48 limit of 0 means none; it shares the per-IP windows.
        sends_per_ipv6_48: (limits.sends_per_ipv6_48 > 0)
            .then(|| rule(limits.sends_per_ipv6_48, limits.sends_per_ip_window_seconds)),
        checks_per_ipv6_48: (limits.checks_per_ipv6_48 > 0)
            .then(|| rule(limits.checks_per_ipv6_48, limits.checks_per_ip_window_seconds)),
        destinations: PhonePolicy::new(
            &settings.phone.default_region,
            &abuse.allowed_regions,
            abuse.allowed_prefixes.clone(),
        )
        .map_err(|error| anyhow::anyhow!("abuse.allowed_regions: {error}"))?,
        require_mobile_for_sms: abuse.require_mobile_for_sms,
        hourly_budget: (abuse.hourly_sms_budget > 0).then_some(abuse.hourly_sms_budget),
        country_hourly_budget: (abuse.country_hourly_sms_budget > 0).then_some(abuse.country_hourly_sms_budget),
        country_budgets: abuse.country_hourly_sms_budgets.clone().into_iter().collect(),
        returning_reserve_percent: abuse.returning_reserve_percent,
        fail_open: limits.fail_open,
    })
}

/// `security.client_ip_header` as a header name.
pub(super) fn client_ip_header(settings: &Settings) -> anyhow::Result<Option<axum::http::HeaderName>> {
    settings
        .security
        .client_ip_header
        .as_deref()
        .map(|name| {
            axum::http::HeaderName::try_from(name)
                .map_err(|_| anyhow::anyhow!("security.client_ip_header: {name:?} is not a header name"))
        })
        .transpose()
}
