//! Unit tests of the phone lockout, alone and in the `OtpEngine`, over an
//! exact in-test limiter and the shared challenge table.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use pollster::block_on;

use super::*;
use crate::{
    abuse::Client,
    otp::{Channel, CheckError, CodeLength, IssueRequest, IssuedCode, LookupKey, OtpCode, OtpEngine, TestNumbers},
    ports::Metrics,
    rate_limit::{BatchDecision, RateKey},
    test_support::{self as support, World},
};

/// A sliding-window log per key, as the adapters keep it, with `peek` and
/// `reset`.
#[derive(Default)]
struct Log(Mutex<HashMap<String, Vec<i64>>>);

impl Log {
    fn decide(events: &[i64], rule: RateRule, now: Timestamp) -> RateDecision {
        let window = rule.window.as_millis() as i64;
        let live: Vec<i64> = events
            .iter()
            .copied()
            .filter(|t| *t > now.unix_millis() - window)
            .collect();
        if live.len() < rule.limit as usize {
            return RateDecision::Allowed;
        }
        let freeing = live.get(live.len() - rule.limit as usize).copied();
        let retry = freeing.map_or(window, |t| t + window - now.unix_millis());
        RateDecision::Limited {
            retry_after: Duration::from_millis(retry.max(1) as u64),
        }
    }
}

#[async_trait]
impl RateLimiter for Log {
    async fn acquire(&self, key: &str, rule: RateRule, now: Timestamp) -> Result<RateDecision, StoreError> {
        let mut map = self.0.lock().unwrap();
        let events = map.entry(key.to_owned()).or_default();
        let decision = Self::decide(events, rule, now);
        if decision == RateDecision::Allowed {
            events.push(now.unix_millis());
        }
        Ok(decision)
    }

    async fn peek(&self, key: &str, rule: RateRule, now: Timestamp) -> Result<RateDecision, StoreError> {
        let map = self.0.lock().unwrap();
        Ok(Self::decide(map.get(key).map_or(&[][..], Vec::as_slice), rule, now))
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.0.lock().unwrap().remove(key);
        Ok(())
    }

    async fn acquire_all(&self, batch: &[RateKey], now: Timestamp) -> Result<BatchDecision, StoreError> {
        let mut map = self.0.lock().unwrap();
        for (index, item) in batch.iter().enumerate() {
            let events = map.get(&item.key).map_or(&[][..], Vec::as_slice);
            if let RateDecision::Limited { retry_after } = Self::decide(events, item.rule, now) {
                return Ok(BatchDecision::Limited { index, retry_after });
            }
        }
        for item in batch {
            map.entry(item.key.clone()).or_default().push(now.unix_millis());
        }
        Ok(BatchDecision::Allowed)
    }
}

/// A limiter whose backend can be taken down.
#[derive(Default)]
struct Flaky {
    log: Log,
    down: std::sync::atomic::AtomicBool,
}

impl Flaky {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::new("acquire", "redis down"));
        }
        Ok(())
    }
}

#[async_trait]
impl RateLimiter for Flaky {
    async fn acquire(&self, key: &str, rule: RateRule, now: Timestamp) -> Result<RateDecision, StoreError> {
        self.check()?;
        self.log.acquire(key, rule, now).await
    }

    async fn peek(&self, key: &str, rule: RateRule, now: Timestamp) -> Result<RateDecision, StoreError> {
        self.check()?;
        self.log.peek(key, rule, now).await
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.check()?;
        self.log.reset(key).await
    }

    async fn acquire_all(&self, batch: &[RateKey], now: Timestamp) -> Result<BatchDecision, StoreError> {
        self.check()?;
        self.log.acquire_all(batch, now).await
    }
}

/// Counts the locks reported to the metrics.
#[derive(Debug, Default)]
struct Locks(Mutex<Vec<&'static str>>);

impl Metrics for Locks {
    fn delivery(&self, _: &'static str, _: &'static str, _: Option<&'static str>, _: &'static str) {}

    fn code_check(&self, _: &'static str, _: &'static str) {}

    fn provider_call(&self, _: &'static str, _: &'static str, _: Duration, _: &'static str) {}

    fn provider_error_code(&self, _: &'static str, _: &'static str, _: &str) {}

    fn phone_locked(&self, purpose: &'static str) {
        self.0.lock().unwrap().push(purpose);
    }
}

const DAY: Duration = Duration::from_secs(86_400);
const MOBILE: &str = "+85261677528";

fn settings() -> LockoutSettings {
    LockoutSettings {
        failed_checks: 10,
        window: DAY,
        lock: DAY,
        fail_open: false,
    }
}

struct Fixture {
    world: Arc<World>,
    engine: OtpEngine,
    locks: Arc<Locks>,
    messenger: crate::delivery::Messenger,
}

fn fixture_with(limiter: Arc<dyn RateLimiter>, settings: LockoutSettings) -> Fixture {
    let world = World::new();
    let locks = Arc::new(Locks::default());
    let engine = support::engine(&world)
        .with_lockout(PhoneLockout::new(limiter, settings, keys()))
        .with_metrics(locks.clone());
    let messenger = support::messenger(&world);
    Fixture {
        world,
        engine,
        locks,
        messenger,
    }
}

fn fixture() -> Fixture {
    fixture_with(Arc::new(Log::default()), settings())
}

fn phone(text: &str) -> PhoneNumber {
    PhoneNumber::parse_e164(text).unwrap()
}

impl Fixture {
    /// Issues a code for `purpose` to `phone` under the lookup key `key`.
    fn issue(&self, purpose: Purpose, phone: &str, key: &str) -> IssuedCode {
        let phone = PhoneNumber::parse_e164(phone).unwrap();
        let lookup = LookupKey::from_bytes(key.as_bytes().to_vec());
        let policy = support::policy(4, 600);
        let client = Client::default();
        block_on(self.engine.issue(
            IssueRequest {
                purpose,
                phone: &phone,
                user_id: None,
                channel: Channel::Sms,
                device_binding: None,
                lookup: &lookup,
                policy: &policy,
                client: &client,
            },
            &self.messenger,
        ))
        .unwrap()
    }

    fn check(&self, purpose: Purpose, key: &str, code: &OtpCode) -> Result<(), CheckError> {
        let lookup = LookupKey::from_bytes(key.as_bytes().to_vec());
        block_on(self.engine.check(purpose, &lookup, code, None, &Client::default())).map(drop)
    }

    /// `count` wrong codes against fresh challenges of `purpose`, five per
    /// challenge (the per-challenge limit).
    fn guess_wrong(&self, purpose: Purpose, phone: &str, count: usize) {
        let mut left = count;
        let mut round = 0;
        while left > 0 {
            round += 1;
            let key = format!("{}-{round}-{}", purpose.as_str(), self.world.rows.lock().unwrap().len());
            let issued = self.issue(purpose, phone, &key);
            for _ in 0..left.min(5) {
                let result = self.check(purpose, &key, &wrong(&issued.code));
                assert!(
                    matches!(result, Err(CheckError::WrongCode { .. } | CheckError::Locked)),
                    "{result:?}"
                );
                left -= 1;
            }
        }
    }
}

fn wrong(code: &OtpCode) -> OtpCode {
    let value: u32 = code.expose().parse().unwrap();
    OtpCode::parse(&format!("{:04}", (value + 1) % 10_000), CodeLength::new(4).unwrap()).unwrap()
}

#[test]
fn wrong_codes_across_surfaces_lock_even_the_right_code_and_count_the_lock() {
    let f = fixture();
    let live = f.issue(Purpose::PinAuth, MOBILE, "pin-auth");
    f.guess_wrong(Purpose::PhoneVerify, MOBILE, 6);
    f.guess_wrong(Purpose::PhoneLogin, MOBILE, 3);
    assert!(f.locks.0.lock().unwrap().is_empty(), "nine wrong codes do not lock");
    f.guess_wrong(Purpose::PhoneConfirm, MOBILE, 1);
    assert_eq!(*f.locks.0.lock().unwrap(), ["phone_confirm"], "the tenth locks, once");
    assert!(matches!(
        f.check(Purpose::PinAuth, "pin-auth", &live.code),
        Err(CheckError::Locked)
    ));
    // Another number is not affected.
    let other = f.issue(Purpose::PinAuth, "+85261677529", "other");
    f.check(Purpose::PinAuth, "other", &other.code).unwrap();
}

#[test]
fn a_locked_number_gets_a_decoy_and_no_message_until_the_lock_ends() {
    let f = fixture();
    f.guess_wrong(Purpose::PinAuth, MOBILE, 10);
    let sent = f.world.sent_count();
    let decoys = *f.world.decoys.lock().unwrap();
    let issued = f.issue(Purpose::PhoneLogin, MOBILE, "during");
    assert_eq!(f.world.sent_count(), sent, "nothing is sent to a locked number");
    assert_eq!(*f.world.decoys.lock().unwrap(), decoys + 1, "a decoy row stands in");
    assert!(matches!(
        f.check(Purpose::PhoneLogin, "during", &issued.code),
        Err(CheckError::Locked)
    ));

    // A second before the lock ends it still holds; then codes flow again.
    f.world.advance(DAY - Duration::from_secs(1));
    let issued = f.issue(Purpose::PhoneLogin, MOBILE, "almost");
    assert_eq!(f.world.sent_count(), sent);
    assert!(matches!(
        f.check(Purpose::PhoneLogin, "almost", &issued.code),
        Err(CheckError::Locked)
    ));
    f.world.advance(Duration::from_secs(1));
    let issued = f.issue(Purpose::PhoneLogin, MOBILE, "after");
    assert_eq!(f.world.sent_count(), sent + 1);
    f.check(Purpose::PhoneLogin, "after", &issued.code).unwrap();
}

#[test]
fn a_lock_that_ended_allows_the_full_count_again() {
    // A lock shorter than the window: the wrong codes that locked are still
    // within the window when the lock ends, yet they no longer count.
    let hour = Duration::from_secs(3600);
    let f = fixture_with(
        Arc::new(Log::default()),
        LockoutSettings {
            lock: hour,
            ..settings()
        },
    );
    f.guess_wrong(Purpose::PinAuth, MOBILE, 10);
    f.world.advance(hour);
    f.guess_wrong(Purpose::PinAuth, MOBILE, 9);
    let issued = f.issue(Purpose::PinAuth, MOBILE, "ninth");
    f.check(Purpose::PinAuth, "ninth", &issued.code).unwrap();
    assert_eq!(f.locks.0.lock().unwrap().len(), 1);
}

#[test]
fn a_right_code_before_the_cap_starts_the_count_over() {
    let f = fixture();
    f.guess_wrong(Purpose::PinAuth, MOBILE, 9);
    let issued = f.issue(Purpose::PinAuth, MOBILE, "right");
    f.check(Purpose::PinAuth, "right", &issued.code).unwrap();
    f.guess_wrong(Purpose::PinAuth, MOBILE, 9);
    let issued = f.issue(Purpose::PinAuth, MOBILE, "still-open");
    f.check(Purpose::PinAuth, "still-open", &issued.code).unwrap();
    assert!(f.locks.0.lock().unwrap().is_empty());
}

#[test]
fn wrong_codes_leave_the_count_when_the_window_passes() {
    let f = fixture();
    f.guess_wrong(Purpose::PinAuth, MOBILE, 9);
    f.world.advance(DAY);
    f.guess_wrong(Purpose::PinAuth, MOBILE, 9);
    let issued = f.issue(Purpose::PinAuth, MOBILE, "open");
    f.check(Purpose::PinAuth, "open", &issued.code).unwrap();
}

#[test]
fn checks_that_compare_no_code_are_not_counted() {
    let f = fixture();
    let code = OtpCode::parse("1234", CodeLength::new(4).unwrap()).unwrap();
    for n in 0..20 {
        assert!(matches!(
            f.check(Purpose::PinAuth, &format!("unknown-{n}"), &code),
            Err(CheckError::NotFound)
        ));
    }
    // An expired challenge and a used-up one compare nothing either.
    let issued = f.issue(Purpose::PinAuth, MOBILE, "expiring");
    f.world.advance(Duration::from_secs(600));
    for _ in 0..20 {
        assert!(matches!(
            f.check(Purpose::PinAuth, "expiring", &issued.code),
            Err(CheckError::Expired)
        ));
    }
    let issued = f.issue(Purpose::PinAuth, MOBILE, "open");
    f.check(Purpose::PinAuth, "open", &issued.code).unwrap();
    assert!(f.locks.0.lock().unwrap().is_empty());
}

#[test]
fn test_numbers_are_locked_for_checks_too() {
    let world = World::new();
    let numbers = Arc::new(TestNumbers::new(vec![(phone(MOBILE), "1234".into())], vec![]).unwrap());
    let engine = support::engine(&world)
        .with_test_numbers(numbers)
        .with_lockout(PhoneLockout::new(Arc::new(Log::default()), settings(), keys()));
    let f = Fixture {
        messenger: support::messenger(&world),
        world,
        engine,
        locks: Arc::default(),
    };
    f.guess_wrong(Purpose::PinAuth, MOBILE, 10);
    let issued = f.issue(Purpose::PinAuth, MOBILE, "fixed");
    assert_eq!(issued.code.expose(), "1234");
    assert!(matches!(
        f.check(Purpose::PinAuth, "fixed", &issued.code),
        Err(CheckError::Locked)
    ));
}

#[test]
fn a_limiter_outage_fails_closed_unless_told_to_fail_open() {
    for fail_open in [false, true] {
        let limiter = Arc::new(Flaky::default());
        let f = fixture_with(
            limiter.clone(),
            LockoutSettings {
                fail_open,
                ..settings()
            },
        );
        let issued = f.issue(Purpose::PinAuth, MOBILE, "key");
        limiter.down.store(true, std::sync::atomic::Ordering::Relaxed);
        let result = f.check(Purpose::PinAuth, "key", &issued.code);
        if fail_open {
            result.unwrap();
        } else {
            assert!(matches!(result, Err(CheckError::Store(_))), "{result:?}");
        }
    }
}

#[test]
fn zero_failed_checks_turns_the_lockout_off_and_one_locks_at_once() {
    let off = LockoutSettings {
        failed_checks: 0,
        ..settings()
    };
    assert!(PhoneLockout::new(Arc::new(Log::default()), off, keys()).is_none());
    let f = fixture_with(
        Arc::new(Log::default()),
        LockoutSettings {
            failed_checks: 1,
            ..settings()
        },
    );
    f.guess_wrong(Purpose::PinAuth, MOBILE, 1);
    assert_eq!(f.locks.0.lock().unwrap().len(), 1);
}

#[test]
fn keys_name_the_count_and_the_number() {
    let number = phone(MOBILE);
    let failures = phone_key(&keys(), Count::Failures, &number);
    let lock = phone_key(&keys(), Count::Lock, &number);
    assert!(failures.starts_with("lockout:fail:phone:"), "{failures}");
    assert!(lock.starts_with("lockout:lock:phone:"), "{lock}");
    // The number appears only as a keyed hash, the same in both counts.
    assert!(!failures.contains("61677528") && !lock.contains("61677528"));
    assert_eq!(
        failures["lockout:fail:phone:".len()..],
        lock["lockout:lock:phone:".len()..]
    );
    assert_ne!(
        failures,
        phone_key(&SecretHasher::new(vec![8; 32]), Count::Failures, &number)
    );
}

#[test]
fn a_decoy_for_a_locked_number_is_still_written() {
    let f = fixture();
    f.guess_wrong(Purpose::PinAuth, MOBILE, 10);
    let decoys = *f.world.decoys.lock().unwrap();
    let number = phone(MOBILE);
    let lookup = LookupKey::from_bytes(b"decoy".to_vec());
    let policy = support::policy(4, 600);
    let client = Client::default();
    block_on(f.engine.issue_decoy(
        IssueRequest {
            purpose: Purpose::PinAuth,
            phone: &number,
            user_id: None,
            channel: Channel::Sms,
            device_binding: None,
            lookup: &lookup,
            policy: &policy,
            client: &client,
        },
        &f.messenger,
    ))
    .unwrap();
    assert_eq!(*f.world.decoys.lock().unwrap(), decoys + 1);
}

/// The key under which numbers are hashed in limiter keys.
fn keys() -> crate::otp::SecretHasher {
    crate::otp::SecretHasher::new(vec![7; 32])
}
