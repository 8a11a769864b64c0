//! Unit tests of the send guard over an exact in-test limiter.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use async_trait::async_trait;
use pollster::block_on;

use super::*;
use crate::rate_limit::{RateDecision, RateKey};

/// A sliding-window log, as the adapters keep it.
#[derive(Default)]
struct Log(Mutex<HashMap<String, Vec<i64>>>);

impl Log {
    /// When another event fits for `key`, or `None` if one fits now.
    fn refusal(map: &mut HashMap<String, Vec<i64>>, key: &str, rule: RateRule, now: i64) -> Option<Duration> {
        let window = rule.window.as_millis() as i64;
        let events = map.get_mut(key)?;
        events.retain(|t| *t > now - window);
        (events.len() >= rule.limit as usize).then(|| {
            let oldest = events.first().copied().unwrap_or(now);
            Duration::from_millis((oldest + window - now).max(1) as u64)
        })
    }

    /// The keys held, events or not.
    fn keys(&self) -> Vec<String> {
        self.0.lock().unwrap().keys().cloned().collect()
    }
}

#[async_trait]
impl RateLimiter for Log {
    async fn acquire(&self, key: &str, rule: RateRule, now: Timestamp) -> Result<RateDecision, StoreError> {
        Ok(match self.acquire_all(&[RateKey::new(key, rule)], now).await? {
            BatchDecision::Allowed => RateDecision::Allowed,
            BatchDecision::Limited { retry_after, .. } => RateDecision::Limited { retry_after },
        })
    }

    async fn acquire_all(&self, batch: &[RateKey], now: Timestamp) -> Result<BatchDecision, StoreError> {
        let mut map = self.0.lock().unwrap();
        let now = now.unix_millis();
        for (index, item) in batch.iter().enumerate() {
            let refusal = match item.rule.limit {
                0 => Some(item.rule.window),
                _ => Self::refusal(&mut map, &item.key, item.rule, now),
            };
            if let Some(retry_after) = refusal {
                return Ok(BatchDecision::Limited { index, retry_after });
            }
        }
        for item in batch {
            map.entry(item.key.clone()).or_default().push(now);
        }
        Ok(BatchDecision::Allowed)
    }
}

struct Down;

#[async_trait]
impl RateLimiter for Down {
    async fn acquire(&self, _: &str, _: RateRule, _: Timestamp) -> Result<RateDecision, StoreError> {
        Err(StoreError::new("acquire", "redis down"))
    }

    async fn acquire_all(&self, _: &[RateKey], _: Timestamp) -> Result<BatchDecision, StoreError> {
        Err(StoreError::new("acquire_all", "redis down"))
    }
}

/// Numbers that have verified before, and how often anyone asked.
#[derive(Default)]
struct Verified {
    phones: HashSet<String>,
    asked: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl VerifiedPhones for Verified {
    async fn has_verified(&self, phone: &PhoneNumber) -> Result<bool, StoreError> {
        self.asked.fetch_add(1, Ordering::Relaxed);
        Ok(self.phones.contains(phone.as_str()))
    }
}

fn hasher() -> SecretHasher {
    SecretHasher::new(b"test rate-limit key".to_vec())
}

fn new_guard(limiter: Arc<dyn RateLimiter>, settings: AbuseSettings) -> SendGuard {
    SendGuard::new(limiter, settings, hasher())
}

fn settings() -> AbuseSettings {
    AbuseSettings {
        sends_per_phone: RateRule::new(5, Duration::from_secs(600)),
        sends_per_phone_daily: RateRule::new(20, Duration::from_secs(86_400)),
        resend_cooldown: HashMap::from([(Purpose::PinAuth, Duration::from_secs(30))]),
        sends_per_ip: RateRule::new(20, Duration::from_secs(600)),
        checks_per_ip: RateRule::new(60, Duration::from_secs(600)),
        sends_per_ipv6_48: Some(RateRule::new(160, Duration::from_secs(600))),
        checks_per_ipv6_48: Some(RateRule::new(480, Duration::from_secs(600))),
        destinations: PhonePolicy::new("US", &[], vec![]).unwrap(),
        require_mobile_for_sms: true,
        hourly_budget: None,
        country_hourly_budget: None,
        country_budgets: HashMap::new(),
        returning_reserve_percent: 20,
        fail_open: false,
    }
}

fn phone(text: &str) -> PhoneNumber {
    PhoneNumber::parse_e164(text).unwrap()
}

const MOBILE: &str = "+85261677528";
const T0: i64 = 1_700_000_000_000;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix_millis(T0 + seconds * 1000)
}

fn send<'a>(purpose: Purpose, phone: &'a PhoneNumber, client: &'a Client) -> SendAttempt<'a> {
    SendAttempt {
        purpose,
        phone,
        channel: Channel::Sms,
        client,
    }
}

fn ip(last: u8) -> Client {
    Client::new(Some(IpAddr::from([203, 0, 113, last])))
}

#[test]
fn five_sends_per_phone_in_ten_minutes_then_429_until_the_oldest_leaves() {
    block_on(async {
        let guard = new_guard(Arc::new(Log::default()), settings());
        let mobile = phone(MOBILE);
        // Each from another IP, 31 s apart (past the cooldown).
        for i in 0..5 {
            guard
                .admit_send(send(Purpose::PinAuth, &mobile, &ip(i)), at(i64::from(i) * 31))
                .await
                .unwrap();
        }
        let refused = guard
            .admit_send(send(Purpose::PinAuth, &mobile, &ip(9)), at(5 * 31))
            .await
            .unwrap_err();
        assert_eq!(refused.retry_after(), Some(Duration::from_secs(600 - 5 * 31)));
        assert!(matches!(refused, Refusal::RateLimited { .. }));
        guard
            .admit_send(send(Purpose::PinAuth, &mobile, &ip(9)), at(600))
            .await
            .unwrap();
        assert_eq!(guard.counters().rate_limited.load(Ordering::Relaxed), 1);
    });
}

#[test]
fn a_resend_within_the_cooldown_is_refused_except_where_clients_resend_at_once() {
    block_on(async {
        let guard = new_guard(Arc::new(Log::default()), settings());
        let mobile = phone(MOBILE);
        let client = Client::default();
        guard
            .admit_send(send(Purpose::PinAuth, &mobile, &client), at(0))
            .await
            .unwrap();
        let refused = guard
            .admit_send(send(Purpose::PinAuth, &mobile, &client), at(10))
            .await
            .unwrap_err();
        assert_eq!(refused.retry_after(), Some(Duration::from_secs(20)));
        // phone-verify has no cooldown ("hit again for resending").
        guard
            .admit_send(send(Purpose::PhoneVerify, &mobile, &client), at(10))
            .await
            .unwrap();
        guard
            .admit_send(send(Purpose::PhoneVerify, &mobile, &client), at(11))
            .await
            .unwrap();
    });
}

#[test]
fn twenty_sends_per_ip_across_numbers() {
    block_on(async {
        let guard = new_guard(Arc::new(Log::default()), settings());
        let client = ip(1);
        for i in 0..20 {
            let mobile = phone(&format!("+852616775{i:02}"));
            guard
                .admit_send(send(Purpose::PinAuth, &mobile, &client), at(0))
                .await
                .unwrap();
        }
        let mobile = phone("+85261677599");
        let refused = guard
            .admit_send(send(Purpose::PinAuth, &mobile, &client), at(1))
            .await
            .unwrap_err();
        assert!(matches!(refused, Refusal::RateLimited { .. }), "{refused:?}");
        guard
            .admit_send(send(Purpose::PinAuth, &mobile, &ip(2)), at(1))
            .await
            .unwrap();
    });
}

#[test]
fn sixty_checks_per_ip() {
    block_on(async {
        let guard = new_guard(Arc::new(Log::default()), settings());
        for _ in 0..60 {
            guard.admit_check(&ip(1), at(0)).await.unwrap();
        }
        assert!(guard.admit_check(&ip(1), at(0)).await.is_err());
        guard.admit_check(&ip(2), at(0)).await.unwrap();
        // Without a socket address there is no per-IP limit.
        for _ in 0..100 {
            guard.admit_check(&Client::default(), at(0)).await.unwrap();
        }
    });
}

#[test]
fn destinations_outside_the_allow_list_and_non_mobiles_get_nothing() {
    block_on(async {
        let mut settings = settings();
        settings.destinations = PhonePolicy::new("US", &["HK".into(), "GB".into()], vec![]).unwrap();
        let guard = new_guard(Arc::new(Log::default()), settings);
        let client = Client::default();
        let us = phone("+12063721234");
        let refused = guard.admit_send(send(Purpose::PhoneLogin, &us, &client), at(0)).await;
        assert!(matches!(refused, Err(Refusal::DestinationNotAllowed)), "{refused:?}");
        // A London landline cannot receive a text, but can take a call.
        let landline = phone("+442071838750");
        let refused = guard
            .admit_send(send(Purpose::PhoneLogin, &landline, &client), at(0))
            .await;
        assert!(matches!(refused, Err(Refusal::NotMobile)), "{refused:?}");
        let call = SendAttempt {
            channel: Channel::Call,
            ..send(Purpose::PhoneLogin, &landline, &client)
        };
        guard.admit_send(call, at(0)).await.unwrap();
        // A premium-rate number is no mobile either.
        let premium = phone("+449098790000");
        let refused = guard
            .admit_send(send(Purpose::PhoneLogin, &premium, &client), at(0))
            .await;
        assert!(matches!(refused, Err(Refusal::NotMobile)), "{refused:?}");
        // Nor a call.
        let call = SendAttempt {
            channel: Channel::Call,
            ..send(Purpose::PhoneLogin, &premium, &client)
        };
        assert!(matches!(guard.admit_send(call, at(0)).await, Err(Refusal::NotMobile)));
        guard
            .admit_send(send(Purpose::PhoneLogin, &phone("+447400123456"), &client), at(0))
            .await
            .unwrap();
        assert_eq!(guard.counters().not_mobile.load(Ordering::Relaxed), 3);
        assert_eq!(guard.counters().destination_refused.load(Ordering::Relaxed), 1);
    });
}

#[test]
fn the_hourly_budgets_refuse_sends_once_spent() {
    block_on(async {
        let mut settings = settings();
        settings.hourly_budget = Some(4);
        settings.country_hourly_budget = Some(100);
        settings.country_budgets = HashMap::from([("44".to_owned(), 2)]);
        let guard = new_guard(Arc::new(Log::default()), settings);
        let client = Client::default();
        for i in 0..2 {
            let uk = phone(&format!("+4474001234{i:02}"));
            guard
                .admit_send(send(Purpose::PhoneLogin, &uk, &client), at(0))
                .await
                .unwrap();
        }
        let uk = phone("+447400123499");
        let refused = guard.admit_send(send(Purpose::PhoneLogin, &uk, &client), at(0)).await;
        assert!(matches!(refused, Err(Refusal::BudgetExhausted { .. })), "{refused:?}");
        // The refused UK send spent nothing of the global budget (4): two
        // more sends fit in it.
        for i in 0..2 {
            let hk = phone(&format!("+852616775{i:02}"));
            guard
                .admit_send(send(Purpose::PhoneLogin, &hk, &client), at(0))
                .await
                .unwrap();
        }
        let hk = phone("+85261677577");
        let refused = guard
            .admit_send(send(Purpose::PhoneLogin, &hk, &client), at(1))
            .await
            .unwrap_err();
        assert_eq!(refused.retry_after(), Some(Duration::from_secs(3599)));
        assert_eq!(guard.counters().budget_exhausted.load(Ordering::Relaxed), 2);
        guard
            .admit_send(send(Purpose::PhoneLogin, &hk, &client), at(3600))
            .await
            .unwrap();
    });
}

#[test]
fn a_limiter_outage_fails_closed_unless_configured_open() {
    block_on(async {
        let mobile = phone(MOBILE);
        let client = ip(1);
        let guard = new_guard(Arc::new(Down), settings());
        let refused = guard.admit_send(send(Purpose::PinAuth, &mobile, &client), at(0)).await;
        assert!(matches!(refused, Err(Refusal::Store(_))), "{refused:?}");
        let open = new_guard(
            Arc::new(Down),
            AbuseSettings {
                fail_open: true,
                ..settings()
            },
        );
        open.admit_send(send(Purpose::PinAuth, &mobile, &client), at(0))
            .await
            .unwrap();
    });
}

#[test]
fn calling_codes() {
    for (number, code) in [
        ("+12063721234", "1"),
        ("+79161234567", "7"),
        ("+447400123456", "44"),
        ("+85261677528", "852"),
        ("+919876543210", "91"),
        ("+2348031234567", "234"),
    ] {
        assert_eq!(calling_code(&phone(number)), code, "{number}");
    }
}

#[test]
fn twenty_sends_per_phone_per_day() {
    block_on(async {
        let guard = new_guard(Arc::new(Log::default()), settings());
        let mobile = phone(MOBILE);
        let client = Client::default();
        // 5 every 10 minutes (and 31 s apart) for 40 minutes: 20 sends.
        for window in 0..4 {
            for i in 0..5 {
                let t = window * 600 + i * 31;
                guard
                    .admit_send(send(Purpose::PinAuth, &mobile, &client), at(t))
                    .await
                    .unwrap();
            }
        }
        let refused = guard
            .admit_send(send(Purpose::PinAuth, &mobile, &client), at(2400))
            .await
            .unwrap_err();
        assert_eq!(refused.retry_after(), Some(Duration::from_secs(86_400 - 2400)));
    });
}

#[test]
fn an_ipv6_client_is_counted_by_its_slash_64() {
    block_on(async {
        let guard = new_guard(Arc::new(Log::default()), settings());
        for host in 0..60u16 {
            let ip: IpAddr = format!("2001:db8:1:2::{host:x}").parse().unwrap();
            guard.admit_check(&Client::new(Some(ip)), at(0)).await.unwrap();
        }
        let same_64: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert!(guard.admit_check(&Client::new(Some(same_64)), at(0)).await.is_err());
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        guard.admit_check(&Client::new(Some(other_64)), at(0)).await.unwrap();
    });
}

/// A send refused by the budget, or by the per-phone limits, leaves no key
/// behind and spends nothing: the per-phone keys exist only for sends that
/// were admitted, and no budget unit goes to a send refused per phone.
#[test]
fn a_refused_send_creates_no_per_phone_key_and_spends_no_budget() {
    block_on(async {
        let log = Arc::new(Log::default());
        let mut settings = settings();
        settings.hourly_budget = Some(2);
        let guard = new_guard(log.clone(), settings);
        let client = Client::default();
        let first = phone(MOBILE);
        guard
            .admit_send(send(Purpose::PinAuth, &first, &client), at(0))
            .await
            .unwrap();
        let held = log.keys().len();
        // The cooldown refuses the same number: no budget unit is spent.
        let refused = guard.admit_send(send(Purpose::PinAuth, &first, &client), at(1)).await;
        assert!(matches!(refused, Err(Refusal::RateLimited { .. })), "{refused:?}");
        let second = phone("+85261677529");
        guard
            .admit_send(send(Purpose::PinAuth, &second, &client), at(2))
            .await
            .unwrap();
        // The budget (2) is spent: a third number gets nothing, not even keys.
        let keys_before = log.keys().len();
        assert!(keys_before > held);
        let third = phone("+85261677530");
        let refused = guard.admit_send(send(Purpose::PinAuth, &third, &client), at(3)).await;
        assert!(matches!(refused, Err(Refusal::BudgetExhausted { .. })), "{refused:?}");
        assert_eq!(log.keys().len(), keys_before, "{:?}", log.keys());
    });
}

/// Phone numbers and emails appear in limiter keys only as keyed hashes.
#[test]
fn limiter_keys_hold_no_phone_number_or_email() {
    block_on(async {
        let log = Arc::new(Log::default());
        let guard = new_guard(log.clone(), settings());
        let mobile = phone(MOBILE);
        guard
            .admit_send(send(Purpose::PinAuth, &mobile, &ip(1)), at(0))
            .await
            .unwrap();
        let email = Email::parse("Someone@Example.com").unwrap();
        guard.admit_mail(&email, &ip(1), at(0)).await.unwrap();
        let keys = log.keys();
        assert_eq!(keys.len(), 5, "{keys:?}");
        for key in &keys {
            assert!(!key.contains("61677528"), "{key}");
            assert!(!key.to_ascii_lowercase().contains("example"), "{key}");
        }
        // Under another server secret the same number has other keys.
        let other = Arc::new(Log::default());
        let guard = SendGuard::new(other.clone(), settings(), SecretHasher::new(b"another".to_vec()));
        guard
            .admit_send(send(Purpose::PinAuth, &mobile, &ip(1)), at(0))
            .await
            .unwrap();
        let phone_keys = |keys: Vec<String>| -> HashSet<String> {
            keys.into_iter().filter(|key| key.starts_with("send:phone:")).collect()
        };
        assert_eq!(phone_keys(other.keys()).len(), 1);
        assert!(phone_keys(other.keys()).is_disjoint(&phone_keys(log.keys())));
    });
}

/// An IPv6 /48 holds 65,536 /64s: besides each /64's limit, the /48 as a
/// whole has one, for sends and for checks.
#[test]
fn an_ipv6_slash_48_has_a_limit_of_its_own() {
    block_on(async {
        let mut settings = settings();
        settings.sends_per_ipv6_48 = Some(RateRule::new(30, Duration::from_secs(600)));
        settings.checks_per_ipv6_48 = Some(RateRule::new(70, Duration::from_secs(600)));
        let guard = new_guard(Arc::new(Log::default()), settings);
        let client = |text: &str| Client::new(Some(text.parse::<IpAddr>().unwrap()));
        // 30 sends from 30 /64s of one /48, each well within its /64's 20.
        for n in 0..30 {
            let mobile = phone(&format!("+852616775{n:02}"));
            let from = client(&format!("2001:db8:7:{n:x}::1"));
            guard
                .admit_send(send(Purpose::PhoneVerify, &mobile, &from), at(0))
                .await
                .unwrap();
        }
        let mobile = phone("+85261677599");
        let refused = guard
            .admit_send(send(Purpose::PhoneVerify, &mobile, &client("2001:db8:7:ff::1")), at(1))
            .await
            .unwrap_err();
        assert!(matches!(refused, Refusal::RateLimited { .. }), "{refused:?}");
        assert_eq!(refused.retry_after(), Some(Duration::from_secs(599)));
        // Another /48, and IPv4 clients, are not affected.
        guard
            .admit_send(send(Purpose::PhoneVerify, &mobile, &client("2001:db8:8::1")), at(1))
            .await
            .unwrap();
        // Checks: 60 per /64, 70 per /48.
        for _ in 0..60 {
            guard.admit_check(&client("2001:db8:9:1::1"), at(0)).await.unwrap();
        }
        for _ in 0..10 {
            guard.admit_check(&client("2001:db8:9:2::1"), at(0)).await.unwrap();
        }
        assert!(guard.admit_check(&client("2001:db8:9:3::1"), at(0)).await.is_err());
        guard.admit_check(&client("203.0.113.1"), at(0)).await.unwrap();
    });
}

/// 20 % of each hourly budget is kept for numbers that have verified
/// before: once new numbers have spent their 80 %, a returning number still
/// gets its code, and new numbers are refused until the hour passes.
#[test]
fn part_of_the_budget_is_kept_for_numbers_that_verified_before() {
    block_on(async {
        let mut settings = settings();
        settings.hourly_budget = Some(10);
        let verified = Arc::new(Verified {
            phones: HashSet::from(["+85261677501".to_owned(), "+85261677502".to_owned()]),
            ..Verified::default()
        });
        let guard = new_guard(Arc::new(Log::default()), settings).with_verified_phones(verified.clone());
        let client = Client::default();
        for n in 10..18 {
            let new = phone(&format!("+852616775{n:02}"));
            guard
                .admit_send(send(Purpose::PhoneVerify, &new, &client), at(0))
                .await
                .unwrap();
        }
        // While new numbers had budget left, nobody was looked up.
        assert_eq!(verified.asked.load(Ordering::Relaxed), 0);
        let new = phone("+85261677599");
        let refused = guard
            .admit_send(send(Purpose::PhoneVerify, &new, &client), at(1))
            .await
            .unwrap_err();
        assert!(matches!(refused, Refusal::BudgetExhausted { .. }), "{refused:?}");
        assert_eq!(refused.retry_after(), Some(Duration::from_secs(3599)));
        for returning in ["+85261677501", "+85261677502"] {
            guard
                .admit_send(send(Purpose::PhoneVerify, &phone(returning), &client), at(2))
                .await
                .unwrap();
        }
        // The whole budget (10) is spent now, for everyone.
        let refused = guard
            .admit_send(send(Purpose::PhoneVerify, &phone("+85261677501"), &client), at(3))
            .await;
        assert!(matches!(refused, Err(Refusal::BudgetExhausted { .. })), "{refused:?}");
        assert_eq!(guard.counters().budget_exhausted.load(Ordering::Relaxed), 2);
        // An hour later new numbers have their share again.
        guard
            .admit_send(send(Purpose::PhoneVerify, &new, &client), at(3600))
            .await
            .unwrap();
    });
}
