//! A lifetime cap on wrong codes per phone number.
//!
//! The per-challenge attempt limit (5) and the per-phone send limits (20
//! codes a day) still let a guesser test 100 codes a day against one
//! number, every day: a 4-digit code falls with about 1% a day. The
//! [`PhoneLockout`] counts wrong codes per phone number across challenges
//! and surfaces; when a number has had `failed_checks` wrong codes within
//! `window`, it is locked for `lock`: no code is compared for it (even the
//! right one is refused, in the surface's usual "invalid" answer) and no
//! code is sent to it (the send is answered as usual, with a decoy that
//! sends nothing, as for an unknown number), so a guesser cannot tell that
//! the lock exists. A correct code before the cap starts the count over.
//!
//! The counts live behind the [`RateLimiter`] port, so several instances
//! share them through Redis.

use std::{fmt, sync::Arc, time::Duration};

use crate::{
    abuse::calling_code,
    otp::{Purpose, SecretHasher},
    phone::PhoneNumber,
    ports::StoreError,
    rate_limit::{RateDecision, RateLimiter, RateRule},
    time::Timestamp,
};

/// The lockout's settings (`[lockout]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutSettings {
    /// Wrong codes for one number within `window` that lock it (default
    /// 10); 0 turns the lockout off.
    pub failed_checks: u32,
    /// How far back wrong codes count (default 24 hours).
    pub window: Duration,
    /// How long a lock lasts (default 24 hours).
    pub lock: Duration,
    /// Whether checks go on when the counts cannot be read (Redis down);
    /// the same choice as the send guard's `rate_limit.fail_open`.
    pub fail_open: bool,
}

/// Counts wrong codes per phone number and locks numbers that have too
/// many. See the module documentation.
#[derive(Clone)]
pub struct PhoneLockout {
    limiter: Arc<dyn RateLimiter>,
    settings: LockoutSettings,
    keys: SecretHasher,
}

impl fmt::Debug for PhoneLockout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhoneLockout")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Which of a number's two counts a key names.
#[derive(Debug, Clone, Copy)]
enum Count {
    /// The wrong codes within the window.
    Failures,
    /// The lock: one event, which leaves its window when the lock ends.
    Lock,
}

/// The limiter key of one of `phone`'s counts. Every key of the lockout is
/// built here; the number appears only as the same keyed hash as in the
/// send limits' keys, so no number reaches Redis.
fn phone_key(keys: &SecretHasher, count: Count, phone: &PhoneNumber) -> String {
    let kind = match count {
        Count::Failures => "fail",
        Count::Lock => "lock",
    };
    let phone = super::hashed_key(keys, "phonegate rate-limit phone", phone.as_str());
    format!("lockout:{kind}:phone:{phone}")
}

impl PhoneLockout {
    /// A lockout counting in `limiter`, or `None` when `settings` turn it
    /// off (`failed_checks` 0).
    pub fn new(limiter: Arc<dyn RateLimiter>, settings: LockoutSettings, keys: SecretHasher) -> Option<Self> {
        (settings.failed_checks > 0).then_some(Self {
            limiter,
            settings,
            keys,
        })
    }

    pub fn settings(&self) -> &LockoutSettings {
        &self.settings
    }

    /// The lock of one number: one event held for the lock's duration.
    fn lock_rule(&self) -> RateRule {
        RateRule::new(1, self.settings.lock)
    }

    /// Wrong codes allowed without locking: the one that reaches
    /// `failed_checks` is refused by this rule, and that refusal locks.
    fn failure_rule(&self) -> RateRule {
        RateRule::new(self.settings.failed_checks.saturating_sub(1), self.settings.window)
    }

    /// Whether `phone` is locked at `now`. When the lock cannot be read,
    /// the number counts as locked (fail closed, the default) or not
    /// (`fail_open`), as the send guard decides for its own counts.
    pub async fn is_locked(&self, phone: &PhoneNumber, now: Timestamp) -> Result<bool, StoreError> {
        match self
            .limiter
            .peek(&phone_key(&self.keys, Count::Lock, phone), self.lock_rule(), now)
            .await
        {
            Ok(decision) => Ok(matches!(decision, RateDecision::Limited { .. })),
            Err(error) if self.settings.fail_open => {
                tracing::error!(error = %error.report(), "rate limiter unavailable; not enforcing the phone lockout (rate_limit.fail_open)");
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }

    /// Counts one wrong code for `phone` (a code was compared and did not
    /// match), and locks the number if that was one too many. Answers
    /// whether this call locked it, so the caller can count the lock.
    ///
    /// A failure to record is logged, not returned: the client gets the
    /// wrong-code answer either way, and the per-challenge attempt limit
    /// still holds; while the limiter is down, [`Self::is_locked`] fails
    /// closed unless `fail_open` is set.
    pub async fn record_failure(&self, purpose: Purpose, phone: &PhoneNumber, now: Timestamp) -> bool {
        let failures = phone_key(&self.keys, Count::Failures, phone);
        match self.limiter.acquire(&failures, self.failure_rule(), now).await {
            Ok(RateDecision::Allowed) => false,
            Ok(RateDecision::Limited { .. }) => self.lock(purpose, phone, &failures, now).await,
            Err(error) => {
                tracing::error!(error = %error.report(), "could not count a wrong code for the phone lockout");
                false
            }
        }
    }

    /// Locks `phone` and starts its count of wrong codes over, so that
    /// when the lock ends the number again allows `failed_checks` wrong
    /// codes (not one, as the failures of the last window would).
    async fn lock(&self, purpose: Purpose, phone: &PhoneNumber, failures: &str, now: Timestamp) -> bool {
        let locked = match self
            .limiter
            .acquire(&phone_key(&self.keys, Count::Lock, phone), self.lock_rule(), now)
            .await
        {
            // Another check locked it first (concurrent wrong codes).
            Ok(RateDecision::Limited { .. }) => return false,
            Ok(RateDecision::Allowed) => true,
            Err(error) => {
                tracing::error!(error = %error.report(), "could not lock a phone number after too many wrong codes");
                return false;
            }
        };
        if let Err(error) = self.limiter.reset(failures).await {
            tracing::error!(error = %error.report(), "could not clear a locked phone number's count of wrong codes");
        }
        // The alert names the surface and the country, never the number:
        // phone numbers are personal data that logs need not hold.
        tracing::error!(
            alert = "phone_locked",
            purpose = purpose.as_str(),
            calling_code = calling_code(phone),
            failed_checks = self.settings.failed_checks,
            window_s = self.settings.window.as_secs(),
            lock_s = self.settings.lock.as_secs(),
            "too many wrong codes for one phone number: its code checks and sends are locked (possible guessing)"
        );
        locked
    }

    /// Makes a refused check of a locked number cost what a wrong code
    /// costs (one more limiter round trip, here a read of the count of
    /// wrong codes that changes nothing), so its answer does not come
    /// back measurably sooner and give the lock away.
    pub async fn pace_refusal(&self, phone: &PhoneNumber, now: Timestamp) {
        let _ = self
            .limiter
            .peek(&phone_key(&self.keys, Count::Failures, phone), self.failure_rule(), now)
            .await;
    }

    /// A right code for `phone`: its count of wrong codes starts over. A
    /// failure is logged: the count then stays, which only errs towards
    /// locking sooner.
    pub async fn record_success(&self, phone: &PhoneNumber) {
        if let Err(error) = self.limiter.reset(&phone_key(&self.keys, Count::Failures, phone)).await {
            tracing::error!(error = %error.report(), "could not clear a phone number's count of wrong codes");
        }
    }
}

#[cfg(test)]
mod tests;
