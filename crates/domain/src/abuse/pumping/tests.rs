//! Unit tests of the pumping guard over an in-test table of sends (behind
//! a mockall mock of the conversion store), and of its place in the
//! `OtpEngine`.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::sync::atomic::{AtomicUsize, Ordering};

use pollster::block_on;

use super::*;
use crate::{
    abuse::Client,
    otp::{Channel, IssueRequest, LookupKey, Purpose, TestNumbers},
    ports::{MockConversionStore, MockVerifiedPhones},
    test_support::{self as support, World},
};

/// One code sent: its prefix, when, and whether it was verified.
type Sends = Arc<Mutex<Vec<(String, i64, bool)>>>;

const START: i64 = 1_700_000_000_000;

fn settings() -> PumpingSettings {
    PumpingSettings {
        enabled: true,
        min_sends: 5,
        min_conversion_percent: 20,
        window: Duration::from_secs(3600),
        held_per_minute: 2,
        prefixes: vec!["4479".into()],
        verdict_ttl: Duration::from_secs(5),
        fail_open: false,
    }
}

/// A conversion store counting `sends` as the SQL adapter does, and how
/// many times it was read.
fn store(sends: &Sends, reads: &Arc<AtomicUsize>) -> MockConversionStore {
    let mut store = MockConversionStore::new();
    let (sends, reads) = (sends.clone(), reads.clone());
    store.expect_prefix_counts().returning(move |prefix, since, recent| {
        reads.fetch_add(1, Ordering::Relaxed);
        let sends = sends.lock().unwrap();
        let of = sends
            .iter()
            .filter(|(p, at, _)| p == prefix && *at >= since.unix_millis());
        Ok(PrefixCounts {
            sent: of.clone().count() as u64,
            verified: of.clone().filter(|(_, _, verified)| *verified).count() as u64,
            recent: of.filter(|(_, at, _)| *at >= recent.unix_millis()).count() as u64,
        })
    });
    store
}

/// Records trips and held sends as the metrics registry would.
#[derive(Debug, Default)]
struct Recorder {
    held: Mutex<Vec<String>>,
    trips: Mutex<Vec<(String, bool)>>,
}

impl Metrics for Recorder {
    fn delivery(&self, _: &'static str, _: &'static str, _: Option<&'static str>, _: &'static str) {}

    fn code_check(&self, _: &'static str, _: &'static str) {}

    fn provider_call(&self, _: &'static str, _: &'static str, _: Duration, _: &'static str) {}

    fn provider_error_code(&self, _: &'static str, _: &'static str, _: &str) {}

    fn pumping_held(&self, prefix: &str) {
        self.held.lock().unwrap().push(prefix.to_owned());
    }

    fn pumping_tripped(&self, prefix: &str, tripped: bool) {
        self.trips.lock().unwrap().push((prefix.to_owned(), tripped));
    }
}

struct Fixture {
    guard: PumpingGuard,
    sends: Sends,
    reads: Arc<AtomicUsize>,
    metrics: Arc<Recorder>,
}

fn fixture_with(settings: PumpingSettings, verified: MockVerifiedPhones) -> Fixture {
    let sends = Sends::default();
    let reads = Arc::new(AtomicUsize::new(0));
    let metrics = Arc::new(Recorder::default());
    let guard = PumpingGuard::new(Arc::new(store(&sends, &reads)), settings)
        .with_verified_phones(Arc::new(verified))
        .with_metrics(metrics.clone());
    Fixture {
        guard,
        sends,
        reads,
        metrics,
    }
}

/// Nobody has verified before.
fn nobody() -> MockVerifiedPhones {
    let mut verified = MockVerifiedPhones::new();
    verified.expect_has_verified().returning(|_| Ok(false));
    verified
}

fn fixture() -> Fixture {
    fixture_with(settings(), nobody())
}

fn phone(text: &str) -> PhoneNumber {
    PhoneNumber::parse_e164(text).unwrap()
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix_millis(START + seconds * 1000)
}

impl Fixture {
    /// Asks to send to `number` at `seconds`, recording the send (never
    /// verified) when it is allowed.
    fn send(&self, number: &str, seconds: i64) -> Result<(), Refusal> {
        let phone = phone(number);
        let result = block_on(self.guard.admit(&phone, at(seconds)));
        if result.is_ok() {
            let prefix = self.guard.prefix_of(&phone);
            self.sends
                .lock()
                .unwrap()
                .push((prefix, at(seconds).unix_millis(), false));
        }
        result
    }

    fn trips(&self) -> Vec<(String, bool)> {
        self.metrics.trips.lock().unwrap().clone()
    }
}

fn held(result: Result<(), Refusal>) -> bool {
    matches!(result, Err(Refusal::LowConversion { retry_after }) if retry_after == Duration::from_secs(60))
}

#[test]
fn a_burst_with_no_verification_trips_after_min_sends_and_is_held_to_the_rate() {
    let f = fixture();
    for n in 0..5 {
        f.send(&format!("+4420794601{n:02}"), 0).unwrap();
    }
    // The sixth send finds five unverified sends: the prefix trips, and
    // the last minute's sends already exceed the held rate.
    assert!(held(f.send("+442079460199", 1)));
    assert!(held(f.send("+442079460198", 2)));
    assert_eq!(f.trips(), vec![("44".to_owned(), true)], "one alert per trip");
    assert_eq!(*f.metrics.held.lock().unwrap(), vec!["44", "44"]);
    // A minute later, `held_per_minute` sends go through, and no more.
    f.send("+442079460197", 61).unwrap();
    f.send("+442079460196", 62).unwrap();
    assert!(held(f.send("+442079460195", 63)));
    assert_eq!(f.trips().len(), 1, "still tripped: no second alert");
}

#[test]
fn enough_verified_codes_keep_a_prefix_open() {
    let f = fixture();
    // One verified code in five is exactly the 20 % floor.
    f.sends.lock().unwrap().push(("44".into(), at(0).unix_millis(), true));
    for n in 0..4 {
        f.send(&format!("+4420794601{n:02}"), 0).unwrap();
    }
    f.send("+442079460150", 1).unwrap();
    // Six sends, one verified: below 20 %.
    assert!(held(f.send("+442079460151", 2)));
}

#[test]
fn other_prefixes_and_longer_configured_prefixes_are_judged_apart() {
    let f = fixture();
    for n in 0..5 {
        f.send(&format!("+4479460001{n:02}"), 0).unwrap();
    }
    assert!(held(f.send("+447946000199", 1)), "the configured prefix 4479 trips");
    assert_eq!(f.trips(), vec![("4479".to_owned(), true)]);
    // The rest of +44, and other countries, are not held.
    f.send("+442079460100", 2).unwrap();
    f.send("+33612345678", 2).unwrap();
    assert_eq!(f.guard.prefix_of(&phone("+447946000100")), "4479");
    assert_eq!(f.guard.prefix_of(&phone("+447700900100")), "44");
    assert_eq!(f.guard.prefix_of(&phone("+15555550100")), "1");
}

#[test]
fn numbers_that_verified_before_are_exempt_and_asked_about_only_when_tripped() {
    let mut verified = MockVerifiedPhones::new();
    let returning = phone("+442079460999");
    let asked = Arc::new(AtomicUsize::new(0));
    let counted = asked.clone();
    verified.expect_has_verified().returning(move |number| {
        counted.fetch_add(1, Ordering::Relaxed);
        Ok(*number == returning)
    });
    let f = fixture_with(settings(), verified);
    for n in 0..5 {
        f.send(&format!("+4420794601{n:02}"), 0).unwrap();
    }
    assert_eq!(asked.load(Ordering::Relaxed), 0, "a healthy prefix asks nothing");
    assert!(held(f.send("+442079460198", 1)));
    f.send("+442079460999", 1).unwrap();
    f.send("+442079460999", 2).unwrap();
    assert_eq!(asked.load(Ordering::Relaxed), 3);
}

#[test]
fn a_tripped_prefix_clears_once_its_sends_leave_the_window() {
    let f = fixture();
    for n in 0..5 {
        f.send(&format!("+4420794601{n:02}"), 0).unwrap();
    }
    assert!(held(f.send("+442079460199", 1)));
    // Still tripped near the end of the window, with the held rate free.
    f.send("+442079460199", 3599).unwrap();
    assert_eq!(f.trips(), vec![("44".to_owned(), true)]);
    f.send("+442079460198", 3700).unwrap();
    assert_eq!(
        f.trips().last(),
        Some(&("44".to_owned(), false)),
        "clearing is reported: {:?}",
        f.trips()
    );
}

#[test]
fn a_healthy_prefix_is_read_once_per_verdict_ttl() {
    let f = fixture();
    {
        let mut sends = f.sends.lock().unwrap();
        for _ in 0..100 {
            sends.push(("44".into(), at(0).unix_millis(), true));
        }
    }
    for n in 0..20 {
        f.send(&format!("+4420794601{n:02}"), 1).unwrap();
    }
    assert_eq!(f.reads.load(Ordering::Relaxed), 1, "one read for the whole burst");
    f.send("+442079460150", 7).unwrap();
    assert_eq!(f.reads.load(Ordering::Relaxed), 2, "read again after the verdict's ttl");
}

#[test]
fn a_store_error_refuses_unless_fail_open() {
    for fail_open in [false, true] {
        let mut store = MockConversionStore::new();
        store
            .expect_prefix_counts()
            .returning(|_, _, _| Err(StoreError::new("prefix_counts", "database down")));
        let guard = PumpingGuard::new(
            Arc::new(store),
            PumpingSettings {
                fail_open,
                ..settings()
            },
        );
        let result = block_on(guard.admit(&phone("+442079460100"), at(0)));
        assert_eq!(result.is_ok(), fail_open, "{result:?}");
        if !fail_open {
            assert!(matches!(result, Err(Refusal::Store(_))), "{result:?}");
        }
    }
}

#[test]
fn a_disabled_guard_reads_nothing() {
    let f = fixture_with(
        PumpingSettings {
            enabled: false,
            ..settings()
        },
        nobody(),
    );
    for n in 0..10 {
        f.send(&format!("+4420794601{n:02}"), 0).unwrap();
    }
    assert_eq!(f.reads.load(Ordering::Relaxed), 0);
}

#[test]
fn conversion_rows_merge_per_calling_code_and_provider() {
    let row = |prefix: &str, provider: Option<&str>, sent| ConversionRow {
        prefix: prefix.into(),
        provider: provider.map(str::to_owned),
        sent,
        delivered: sent / 2,
        verified: 1,
    };
    let merged = by_calling_code(vec![
        row("44", Some("twilio"), 10),
        row("4479", Some("twilio"), 4),
        row("33", None, 2),
        row("4479", Some("vonage"), 6),
    ]);
    assert_eq!(
        merged,
        vec![
            row("33", None, 2),
            ConversionRow {
                verified: 2,
                delivered: 7,
                ..row("44", Some("twilio"), 14)
            },
            row("44", Some("vonage"), 6),
        ]
    );
}

/// The engine: a held send stores nothing, test numbers skip the guard,
/// and only codes really sent carry a sent prefix.
#[test]
fn the_engine_records_sent_prefixes_only_for_real_sends_and_stores_nothing_when_held() {
    let world = World::new();
    let sends = Sends::default();
    let reads = Arc::new(AtomicUsize::new(0));
    let guard = PumpingGuard::new(Arc::new(store(&sends, &reads)), settings());
    let test_numbers = TestNumbers::new(vec![(phone("+447946000555"), "1234".into())], vec![]).unwrap();
    let engine = support::engine(&world)
        .with_pumping(guard)
        .with_test_numbers(Arc::new(test_numbers));
    let messenger = support::messenger(&world);
    let issue = |number: &str, key: &str, decoy: bool| {
        let phone = phone(number);
        let lookup = LookupKey::from_bytes(key.as_bytes().to_vec());
        let policy = support::policy(4, 600);
        let client = Client::default();
        let request = IssueRequest {
            purpose: Purpose::PinAuth,
            phone: &phone,
            user_id: None,
            channel: Channel::Sms,
            device_binding: None,
            lookup: &lookup,
            policy: &policy,
            client: &client,
        };
        let result = if decoy {
            block_on(engine.issue_decoy(request, &messenger))
        } else {
            block_on(engine.issue(request, &messenger)).map(drop)
        };
        if result.is_ok() {
            let row = world.rows.lock().unwrap().last().unwrap().challenge.clone();
            if let Some(prefix) = &row.sent_prefix {
                sends
                    .lock()
                    .unwrap()
                    .push((prefix.clone(), row.created_at.unix_millis(), false));
            }
        }
        result
    };
    issue("+447946000100", "decoy", true).unwrap();
    assert_eq!(
        world.rows.lock().unwrap()[0].challenge.sent_prefix,
        None,
        "a decoy sends nothing"
    );
    issue("+447946000555", "test", false).unwrap();
    assert_eq!(
        world.rows.lock().unwrap()[1].challenge.sent_prefix,
        None,
        "a test number sends nothing"
    );
    for n in 0..5 {
        issue(&format!("+4479460001{n:02}"), &format!("k{n}"), false).unwrap();
    }
    assert_eq!(
        world.rows.lock().unwrap()[2].challenge.sent_prefix.as_deref(),
        Some("4479")
    );
    let stored = world.rows.lock().unwrap().len();
    let refused = issue("+447946000199", "held", false);
    assert!(
        matches!(
            refused,
            Err(crate::otp::IssueError::Refused(Refusal::LowConversion { .. }))
        ),
        "{refused:?}"
    );
    assert_eq!(world.rows.lock().unwrap().len(), stored, "a held send stores nothing");
    // Test numbers are never held.
    issue("+447946000555", "test-again", false).unwrap();
}
