//! The sign-in limits and lockout policy from `[sign_in]`.

use std::time::Duration;

use anyhow::bail;
use phonegate_domain::{
    abuse::sign_in::{LockoutPolicy, SignInLimits},
    rate_limit::RateRule,
};

use crate::settings::Settings;

/// `[sign_in]` as the domain's limits, refusing values that would lock
/// every user out or make no sense, naming the key.
pub(super) fn limits(settings: &Settings) -> anyhow::Result<SignInLimits> {
    let sign_in = &settings.sign_in;
    for (key, value) in [
        ("per_ip", sign_in.per_ip),
        ("per_email", sign_in.per_email),
        ("token_checks_per_ip", sign_in.token_checks_per_ip),
    ] {
        if value == 0 {
            bail!("sign_in.{key} must be at least 1 (0 would refuse every request)");
        }
    }
    if sign_in.hashing_queue_per_thread == 0 {
        bail!("sign_in.hashing_queue_per_thread must be at least 1");
    }
    if sign_in.lock_after_failures > 0 {
        if sign_in.lock_base_seconds == 0 {
            bail!("sign_in.lock_base_seconds must be at least 1 when sign_in.lock_after_failures is set");
        }
        if sign_in.lock_max_seconds < sign_in.lock_base_seconds {
            bail!("sign_in.lock_max_seconds must be at least sign_in.lock_base_seconds");
        }
    }
    let rule = |limit: u32, seconds: u64| RateRule::new(limit, Duration::from_secs(seconds.max(1)));
    Ok(SignInLimits {
        per_ip: rule(sign_in.per_ip, sign_in.per_ip_window_seconds),
        per_email: rule(sign_in.per_email, sign_in.per_email_window_seconds),
        token_checks_per_ip: rule(sign_in.token_checks_per_ip, sign_in.token_checks_window_seconds),
        lockout: LockoutPolicy {
            after_failures: sign_in.lock_after_failures,
            base: Duration::from_secs(sign_in.lock_base_seconds),
            max: Duration::from_secs(sign_in.lock_max_seconds),
        },
        fail_open: settings.rate_limit.fail_open,
    })
}
