//! Throttles for password sign-in and for the endpoints that look a token
//! up: who may try a password, how often, and when an account locks.
//!
//! Sign-in is the one flow where the attacker chooses the secret to test,
//! so each try must cost them: the [`SignInGuard`] limits tries per client
//! IP and per email address (through the same [`RateLimiter`] as the send
//! limits, so several instances share the counts), and the account store
//! counts consecutive failures per account and locks it for a while after
//! [`LockoutPolicy::after_failures`] of them (in the database, so the lock
//! holds across instances and restarts). The lock answers exactly like a
//! wrong password: it tells an attacker nothing.
//!
//! Reset completion, token introspection and access-code checks each look
//! a random token up; they share one per-IP limit, so a flood of guesses
//! stays cheap to refuse.

use std::{fmt, sync::Arc, sync::atomic::Ordering, time::Duration};

use super::{AbuseCounters, Client, Refusal, batch::ipv6_48_key, hashed_key, ip_key};
use crate::{
    otp::SecretHasher,
    rate_limit::{RateDecision, RateLimiter, RateRule},
    time::Timestamp,
};

pub use crate::ports::accounts::LockoutPolicy;

/// The sign-in limits, all configurable (`[sign_in]`).
#[derive(Debug, Clone)]
pub struct SignInLimits {
    /// Sign-in tries per client IP.
    pub per_ip: RateRule,
    /// Sign-in tries per email address, whoever sends them.
    pub per_email: RateRule,
    /// Reset completions, introspections and access-code checks per client
    /// IP, together.
    pub token_checks_per_ip: RateRule,
    pub lockout: LockoutPolicy,
    /// Whether to allow tries when the counts cannot be read (Redis down);
    /// follows `rate_limit.fail_open`.
    pub fail_open: bool,
}

/// Stands before every password sign-in and every token lookup by a client.
#[derive(Clone)]
pub struct SignInGuard {
    /// `None`: no rate limits (the lockout still applies).
    limiter: Option<Arc<dyn RateLimiter>>,
    limits: Arc<SignInLimits>,
    counters: Arc<AbuseCounters>,
    /// Hashes email addresses in limiter keys, as the send guard does.
    keys: SecretHasher,
}

/// How many times the per-IP limits an IPv6 /48 (one site's network, 65,536
/// /64s) may use in all, as the send guard's default /48 limits are.
const IPV6_48_FACTOR: u32 = 8;

/// The limit of a whole IPv6 /48 under a per-IP `rule`.
fn per_ipv6_48(rule: RateRule) -> RateRule {
    RateRule::new(rule.limit.saturating_mul(IPV6_48_FACTOR), rule.window)
}

impl fmt::Debug for SignInGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignInGuard")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Default for SignInGuard {
    /// No rate limits, the default lockout: for tools and unit tests that
    /// do not exercise the limits. The service always wires real limits.
    fn default() -> Self {
        let unlimited = RateRule::new(u32::MAX, Duration::from_secs(1));
        Self {
            limiter: None,
            limits: Arc::new(SignInLimits {
                per_ip: unlimited,
                per_email: unlimited,
                token_checks_per_ip: unlimited,
                lockout: LockoutPolicy::default(),
                fail_open: false,
            }),
            counters: Arc::default(),
            keys: SecretHasher::new(Vec::new()),
        }
    }
}

impl SignInGuard {
    /// A guard counting in `limiter`, with email addresses in its keys
    /// hashed under `keys` (the send guard's limiter-key hasher).
    pub fn new(limiter: Arc<dyn RateLimiter>, limits: SignInLimits, keys: SecretHasher) -> Self {
        Self {
            limiter: Some(limiter),
            limits: Arc::new(limits),
            counters: Arc::default(),
            keys,
        }
    }

    /// Counts refusals into `counters` (the send guard's, so `/metrics`
    /// shows every rate-limited request in one series).
    #[must_use]
    pub fn with_counters(mut self, counters: Arc<AbuseCounters>) -> Self {
        self.counters = counters;
        self
    }

    pub fn lockout(&self) -> &LockoutPolicy {
        &self.limits.lockout
    }

    async fn limit(&self, key: &str, rule: RateRule, now: Timestamp, what: &'static str) -> Result<(), Refusal> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        let decision = match limiter.acquire(key, rule, now).await {
            Ok(decision) => decision,
            Err(error) if self.limits.fail_open => {
                tracing::error!(error = %error.report(), "rate limiter unavailable; allowing the request (rate_limit.fail_open)");
                RateDecision::Allowed
            }
            Err(error) => return Err(Refusal::Store(error)),
        };
        match decision {
            RateDecision::Allowed => Ok(()),
            RateDecision::Limited { retry_after } => {
                self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    limit = what,
                    retry_after_s = retry_after.as_secs(),
                    "rate limit reached"
                );
                Err(Refusal::RateLimited { retry_after })
            }
        }
    }

    /// The per-IP limit under `prefix`, and for an IPv6 client its /48's
    /// too, so that one site's 65,536 /64s do not each get the allowance.
    async fn limit_ip(
        &self,
        prefix: &str,
        ip: std::net::IpAddr,
        rule: RateRule,
        now: Timestamp,
        what: &'static str,
    ) -> Result<(), Refusal> {
        self.limit(&format!("{prefix}:ip:{}", ip_key(ip)), rule, now, what)
            .await?;
        match ipv6_48_key(ip) {
            Some(site) => {
                self.limit(&format!("{prefix}:ip48:{site}"), per_ipv6_48(rule), now, what)
                    .await
            }
            None => Ok(()),
        }
    }

    /// Decides whether a client may try a password for `email` (as typed)
    /// now: the per-IP limits, then the per-email one. The email enters the
    /// limiter's keys (and so Redis) only as a keyed hash of the trimmed,
    /// lower-cased text, so `Ada@X.com ` and `ada@x.com` share a count.
    pub async fn admit_sign_in(&self, client: &Client, email: &str, now: Timestamp) -> Result<(), Refusal> {
        if let Some(ip) = client.ip() {
            self.limit_ip("signin", ip, self.limits.per_ip, now, "sign-ins per IP")
                .await?;
        }
        let email = hashed_key(&self.keys, "phonegate rate-limit email", &email.trim().to_lowercase());
        self.limit(
            &format!("signin:email:{email}"),
            self.limits.per_email,
            now,
            "sign-ins per email",
        )
        .await
    }

    /// Decides whether a client may look a token up now (reset completion,
    /// introspection, access-code check).
    pub async fn admit_token_check(&self, client: &Client, now: Timestamp) -> Result<(), Refusal> {
        match client.ip() {
            Some(ip) => {
                self.limit_ip(
                    "tokencheck",
                    ip,
                    self.limits.token_checks_per_ip,
                    now,
                    "token checks per IP",
                )
                .await
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_start_at_the_threshold_and_double_up_to_the_cap() {
        let policy = LockoutPolicy::default();
        assert_eq!(policy.lock_for(4), None);
        assert_eq!(policy.lock_for(5), Some(Duration::from_secs(60)));
        assert_eq!(policy.lock_for(6), Some(Duration::from_secs(120)));
        assert_eq!(policy.lock_for(10), Some(Duration::from_secs(1920)));
        assert_eq!(policy.lock_for(11), Some(Duration::from_secs(3600)));
        assert_eq!(policy.lock_for(u32::MAX), Some(Duration::from_secs(3600)));
        let steps = policy.steps();
        assert_eq!(steps.first(), Some(&(5, Duration::from_secs(60))));
        assert_eq!(steps.last(), Some(&(11, Duration::from_secs(3600))));
        let never = LockoutPolicy {
            after_failures: 0,
            ..policy
        };
        assert_eq!(never.lock_for(1000), None);
        assert!(never.steps().is_empty());
    }
}
