//! Unit tests of the send guard over an exact in-test limiter.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::{collections::HashMap, sync::Mutex};

use async_trait::async_trait;
use pollster::block_on;

use super::*;

/// A sliding-window log, as the adapters keep it.
#[derive(Default)]
struct Log(Mutex<HashMap<String, Vec<i64>>>);

#[async_trait]
impl RateLimiter for Log {
    async fn acquire(&self, key: &str, rule: RateRule, now: Timestamp) -> Result<RateDecision, StoreError> {
        let mut map = self.0.lock().unwrap();
        let events = map.entry(key.to_owned()).or_default();
        let window = rule.window.as_millis() as i64;
        events.retain(|t| *t > now.unix_millis() - window);
        if events.len() < rule.limit as usize {
            events.push(now.unix_millis());
            Ok(RateDecision::Allowed)
        } else {
            let oldest = events.first().copied().unwrap_or(now.unix_millis());
            Ok(RateDecision::Limited {
                retry_after: Duration::from_millis((oldest + window - now.unix_millis()).max(1) as u64),
            })
        }
    }
}

struct Down;

#[async_trait]
impl RateLimiter for Down {
    async fn acquire(&self, _: &str, _: RateRule, _: Timestamp) -> Result<RateDecision, StoreError> {
        Err(StoreError("redis down".into()))
    }
}

fn settings() -> AbuseSettings {
    AbuseSettings {
        sends_per_phone: RateRule::new(5, Duration::from_secs(600)),
        sends_per_phone_daily: RateRule::new(20, Duration::from_secs(86_400)),
        resend_cooldown: HashMap::from([(Purpose::PinAuth, Duration::from_secs(30))]),
        sends_per_ip: RateRule::new(20, Duration::from_secs(600)),
        checks_per_ip: RateRule::new(60, Duration::from_secs(600)),
        destinations: PhonePolicy::new("US", &[], vec![]).unwrap(),
        require_mobile_for_sms: true,
        hourly_budget: None,
        country_hourly_budget: None,
        country_budgets: HashMap::new(),
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
        let guard = SendGuard::new(Arc::new(Log::default()), settings());
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
        let guard = SendGuard::new(Arc::new(Log::default()), settings());
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
        let guard = SendGuard::new(Arc::new(Log::default()), settings());
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
        let guard = SendGuard::new(Arc::new(Log::default()), settings());
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
        let guard = SendGuard::new(Arc::new(Log::default()), settings);
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
        let guard = SendGuard::new(Arc::new(Log::default()), settings);
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
        for i in 0..1 {
            let hk = phone(&format!("+852616775{i:02}"));
            guard
                .admit_send(send(Purpose::PhoneLogin, &hk, &client), at(0))
                .await
                .unwrap();
        }
        // The refused UK send counted against the global budget (4): it was
        // admitted by every limit before the country's.
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
        let guard = SendGuard::new(Arc::new(Down), settings());
        let refused = guard.admit_send(send(Purpose::PinAuth, &mobile, &client), at(0)).await;
        assert!(matches!(refused, Err(Refusal::Store(_))), "{refused:?}");
        let open = SendGuard::new(
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
        let guard = SendGuard::new(Arc::new(Log::default()), settings());
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
        let guard = SendGuard::new(Arc::new(Log::default()), settings());
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
