//! The circuit breaker: a provider that keeps failing is skipped for a
//! while, so each message does not first wait for it to fail again.
//!
//! It is per instance (each instance learns by its own calls) and per
//! provider and channel (a provider's calls failing says nothing of its
//! texts), and counts
//! only failures that say something about the provider: an outage, a
//! throttle, its own wrong settings. A number the provider refuses is the
//! number's fault, and counts as an answer like any success.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use crate::time::Timestamp;

/// When a provider's circuit opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failures that open the circuit; 0 = never open it.
    pub failures: u32,
    /// How long an open circuit skips the provider before one message may
    /// try it again.
    pub cool_off: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures: 5,
            cool_off: Duration::from_secs(30),
        }
    }
}

/// A change of a provider's circuit, for the caller to log and count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The provider failed `BreakerSettings::failures` times in a row: it
    /// is skipped until the cool-off ends.
    Opened,
    /// The provider answered again after its circuit was open.
    Closed,
}

#[derive(Debug, Default, Clone, Copy)]
struct Health {
    consecutive_failures: u32,
    /// While set, the circuit is open until then; afterwards one message
    /// may try the provider (half open), and its outcome closes or reopens.
    open_until: Option<Timestamp>,
}

/// Which circuit: a provider's, for one channel (`sms`, `call`,
/// `hosted`).
pub type Circuit = (&'static str, &'static str);

/// Per-provider, per-channel circuits of one instance.
#[derive(Debug, Default)]
pub struct CircuitBreaker {
    settings: BreakerSettings,
    health: Mutex<HashMap<Circuit, Health>>,
}

impl CircuitBreaker {
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            health: Mutex::default(),
        }
    }

    fn with_health<R>(&self, provider: Circuit, f: impl FnOnce(&mut Health) -> R) -> R {
        // The map holds counters only; a panic elsewhere cannot leave it
        // in a state worse than slightly wrong counts.
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        f(health.entry(provider).or_default())
    }

    /// Whether `provider` may be tried at `now`: its circuit is closed, or
    /// its cool-off has ended (one trial decides).
    pub fn allows(&self, provider: Circuit, now: Timestamp) -> bool {
        self.with_health(provider, |health| health.open_until.is_none_or(|until| now >= until))
    }

    /// Whether `provider`'s circuit is open at `now` (for `/metrics`).
    pub fn is_open(&self, provider: Circuit, now: Timestamp) -> bool {
        !self.allows(provider, now)
    }

    /// `provider` answered (accepted the message, or refused the number).
    pub fn record_answer(&self, provider: Circuit) -> Option<Transition> {
        self.with_health(provider, |health| {
            let was_open = health.open_until.take().is_some();
            health.consecutive_failures = 0;
            was_open.then_some(Transition::Closed)
        })
    }

    /// `provider` failed in a way that says something about it.
    pub fn record_failure(&self, provider: Circuit, now: Timestamp) -> Option<Transition> {
        let BreakerSettings { failures, cool_off } = self.settings;
        self.with_health(provider, |health| {
            health.consecutive_failures = health.consecutive_failures.saturating_add(1);
            if failures == 0 || health.consecutive_failures < failures {
                return None;
            }
            // A failed trial after a cool-off reopens a circuit that never
            // closed: no new transition to report.
            let reopened = health.open_until.is_some();
            health.open_until = Some(now.plus(cool_off));
            (!reopened).then_some(Transition::Opened)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VONAGE: Circuit = ("vonage", "sms");
    const PLIVO: Circuit = ("plivo", "sms");

    #[test]
    fn opens_after_n_failures_and_closes_after_a_good_trial() {
        let breaker = CircuitBreaker::new(BreakerSettings {
            failures: 3,
            cool_off: Duration::from_secs(30),
        });
        let start = Timestamp::from_unix_millis(1_000_000);
        assert_eq!(breaker.record_failure(VONAGE, start), None);
        assert_eq!(breaker.record_failure(VONAGE, start), None);
        assert!(breaker.allows(VONAGE, start));
        assert_eq!(breaker.record_failure(VONAGE, start), Some(Transition::Opened));
        assert!(!breaker.allows(VONAGE, start.plus(Duration::from_secs(29))));
        assert!(breaker.allows(("twilio", "sms"), start), "circuits are per provider");
        assert!(breaker.allows(("vonage", "call"), start), "and per channel");
        // The cool-off ends: one trial fails, and the circuit stays open
        // for another cool-off without a second "opened".
        let later = start.plus(Duration::from_secs(30));
        assert!(breaker.allows(VONAGE, later));
        assert_eq!(breaker.record_failure(VONAGE, later), None);
        assert!(!breaker.allows(VONAGE, later.plus(Duration::from_secs(1))));
        let trial = later.plus(Duration::from_secs(30));
        assert!(breaker.allows(VONAGE, trial));
        assert_eq!(breaker.record_answer(VONAGE), Some(Transition::Closed));
        assert!(breaker.allows(VONAGE, trial));
        assert_eq!(breaker.record_answer(VONAGE), None);
    }

    #[test]
    fn an_answer_between_failures_starts_the_count_over() {
        let breaker = CircuitBreaker::new(BreakerSettings {
            failures: 2,
            cool_off: Duration::from_secs(30),
        });
        let now = Timestamp::from_unix_millis(0);
        assert_eq!(breaker.record_failure(PLIVO, now), None);
        assert_eq!(breaker.record_answer(PLIVO), None);
        assert_eq!(breaker.record_failure(PLIVO, now), None);
        assert!(breaker.allows(PLIVO, now));
    }
}
