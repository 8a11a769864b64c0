//! The `[abuse.pumping]` settings, checked into the pumping guard's.

use std::time::Duration;

use anyhow::bail;
use phonegate_domain::abuse::pumping::PumpingSettings;

use crate::settings::Settings;

/// The pumping guard's settings; it fails open or closed as the rate
/// limits do (`rate_limit.fail_open`).
pub(super) fn pumping_settings(settings: &Settings) -> anyhow::Result<PumpingSettings> {
    let pumping = &settings.abuse.pumping;
    if pumping.min_conversion_percent > 100 {
        bail!(
            "abuse.pumping.min_conversion_percent: {} is not a share of the sends (0 to 100)",
            pumping.min_conversion_percent
        );
    }
    if pumping.enabled && pumping.min_sends == 0 {
        bail!("abuse.pumping.min_sends must be at least 1 (or abuse.pumping.enabled false)");
    }
    if pumping.window_seconds == 0 {
        bail!("abuse.pumping.window_seconds must be at least 1");
    }
    for prefix in &pumping.prefixes {
        if prefix.is_empty() || prefix.len() > 15 || !prefix.bytes().all(|byte| byte.is_ascii_digit()) {
            bail!("abuse.pumping.prefixes: {prefix:?} is not a prefix of E.164 digits without `+` (e.g. \"4479\")");
        }
    }
    Ok(PumpingSettings {
        enabled: pumping.enabled,
        min_sends: pumping.min_sends,
        min_conversion_percent: pumping.min_conversion_percent,
        window: Duration::from_secs(pumping.window_seconds),
        held_per_minute: pumping.held_per_minute,
        prefixes: pumping.prefixes.clone(),
        verdict_ttl: Duration::from_secs(pumping.verdict_cache_seconds),
        fail_open: settings.rate_limit.fail_open,
    })
}
