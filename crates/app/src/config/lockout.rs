//! The `[lockout]` settings and what `phonegate config check` says about
//! how guessable the configured codes are.

use std::time::Duration;

use anyhow::bail;
use phonegate_domain::abuse::phone_lockout::LockoutSettings;

use crate::settings::Settings;

/// NIST SP 800-63B's floor for a one-time code sent out of band: 6 digits.
const NIST_MIN_DIGITS: usize = 6;

/// The phone lockout's settings from `[lockout]`; it shares the send
/// guard's choice of failing open (`rate_limit.fail_open`).
pub(super) fn lockout_settings(settings: &Settings) -> anyhow::Result<LockoutSettings> {
    let lockout = &settings.lockout;
    if lockout.failed_checks > 0 {
        if lockout.window_seconds == 0 {
            bail!("lockout.window_seconds must be at least 1 (or lockout.failed_checks 0 to turn the lockout off)");
        }
        if lockout.lock_seconds == 0 {
            bail!("lockout.lock_seconds must be at least 1 (or lockout.failed_checks 0 to turn the lockout off)");
        }
    }
    Ok(LockoutSettings {
        failed_checks: lockout.failed_checks,
        window: Duration::from_secs(lockout.window_seconds),
        lock: Duration::from_secs(lockout.lock_seconds),
        fail_open: settings.rate_limit.fail_open,
    })
}

/// Warnings about codes a guesser has a real chance against: a surface
/// whose codes are shorter than 6 digits (existing clients may need the
/// seeds' 4 or 5, so it is not an error), and a lockout turned off. Each
/// names the key to change.
pub(super) fn guessing_warnings(settings: &Settings) -> Vec<String> {
    let mut warnings = vec![];
    let otp = &settings.otp;
    for (surface, length) in [
        ("pin_auth", otp.pin_auth.length),
        ("phone_verify", otp.phone_verify.length),
        ("phone_login", otp.phone_login.length),
        ("phone_confirm", otp.phone_confirm.length),
    ] {
        // With Twilio Verify, Twilio makes every surface's codes, at the
        // length set on the Verify service.
        let (key, length) = if settings.hosted_codes() {
            (
                "twilio.verify_code_length".to_owned(),
                settings.twilio.verify_code_length,
            )
        } else {
            (format!("otp.{surface}.length"), length)
        };
        if length < NIST_MIN_DIGITS {
            warnings.push(format!(
                "{key} is {length}: {surface} codes are shorter than the {NIST_MIN_DIGITS} digits NIST SP 800-63B \
                 asks for; keep it only if existing clients need it (see the guessing odds in docs/operations.md)"
            ));
        }
    }
    if settings.lockout.failed_checks == 0 {
        warnings.push(
            "lockout.failed_checks is 0: wrong codes per phone number are capped only per code and by the send \
             limits (see docs/operations.md)"
                .to_owned(),
        );
    }
    warnings
}
