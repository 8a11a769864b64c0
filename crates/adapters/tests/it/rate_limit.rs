//! The rate limiters against the `RateLimiter` contract: one suite run on
//! the in-memory limiter and on a real Redis, then what only one of them
//! promises (bounded memory; sharing across instances, expiry, timeouts).
//!
//! The Redis tests use `REDIS_URL` (default `redis://127.0.0.1:6379`) and a
//! random key prefix per test, so runs never see each other's keys. When no
//! Redis answers they fail, saying how to start one: a missing Redis must
//! never look like a pass.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use phonegate_adapters::{
    random::OsRandom,
    rate_limit::{InMemoryRateLimiter, RedisRateLimiter},
};
use phonegate_domain::{
    ports::RandomSource as _,
    rate_limit::{BatchDecision, RateDecision, RateKey, RateLimiter, RateRule},
    time::Timestamp,
};

const T0: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

fn at(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(T0.unix_millis() + millis)
}

fn limited(millis: u64) -> RateDecision {
    RateDecision::Limited {
        retry_after: Duration::from_millis(millis),
    }
}

async fn acquire(limiter: &dyn RateLimiter, key: &str, rule: RateRule, now: Timestamp) -> RateDecision {
    limiter.acquire(key, rule, now).await.unwrap()
}

/// The contract every adapter keeps, each test on a fresh limiter.
mod contract {
    use super::*;

    /// Up to the limit events are allowed; refusals are not recorded, so
    /// once the first event leaves the window exactly one more fits.
    pub async fn the_limit_holds_and_refusals_are_not_recorded(limiter: Arc<dyn RateLimiter>) {
        let rule = RateRule::new(3, Duration::from_secs(10));
        for millis in 0..3 {
            assert_eq!(acquire(&*limiter, "k", rule, at(millis)).await, RateDecision::Allowed);
        }
        for millis in 3..200 {
            assert!(matches!(
                acquire(&*limiter, "k", rule, at(millis)).await,
                RateDecision::Limited { .. }
            ));
        }
        // The event at 0 has left `(now - 10 s, now]`; had any refusal from
        // 3 ms on been recorded, the window would still be full.
        assert_eq!(acquire(&*limiter, "k", rule, at(10_000)).await, RateDecision::Allowed);
        assert_eq!(acquire(&*limiter, "k", rule, at(10_000)).await, limited(1));
    }

    /// Events leave the window one by one, exactly a window after they were
    /// recorded, and a key whose window has passed allows the full limit again.
    pub async fn the_window_slides(limiter: Arc<dyn RateLimiter>) {
        let rule = RateRule::new(2, Duration::from_millis(1000));
        assert_eq!(acquire(&*limiter, "k", rule, at(0)).await, RateDecision::Allowed);
        assert_eq!(acquire(&*limiter, "k", rule, at(1)).await, RateDecision::Allowed);
        assert_eq!(acquire(&*limiter, "k", rule, at(999)).await, limited(1));
        assert_eq!(acquire(&*limiter, "k", rule, at(1000)).await, RateDecision::Allowed);
        assert_eq!(acquire(&*limiter, "k", rule, at(1000)).await, limited(1));
        assert_eq!(acquire(&*limiter, "k", rule, at(1001)).await, RateDecision::Allowed);
        assert_eq!(acquire(&*limiter, "k", rule, at(1500)).await, limited(500));
        for millis in [5000, 5000] {
            assert_eq!(acquire(&*limiter, "k", rule, at(millis)).await, RateDecision::Allowed);
        }
        assert_eq!(acquire(&*limiter, "k", rule, at(5000)).await, limited(1000));
    }

    /// `retry_after` is the time until the oldest event leaves the window.
    pub async fn retry_after_is_when_the_oldest_event_leaves(limiter: Arc<dyn RateLimiter>) {
        let rule = RateRule::new(2, Duration::from_secs(60));
        assert_eq!(acquire(&*limiter, "k", rule, at(0)).await, RateDecision::Allowed);
        assert_eq!(acquire(&*limiter, "k", rule, at(5_000)).await, RateDecision::Allowed);
        assert_eq!(acquire(&*limiter, "k", rule, at(20_000)).await, limited(40_000));
        assert_eq!(acquire(&*limiter, "k", rule, at(59_999)).await, limited(1));
        assert_eq!(acquire(&*limiter, "k", rule, at(60_000)).await, RateDecision::Allowed);
        // Now the oldest is the event at 5 s.
        assert_eq!(acquire(&*limiter, "k", rule, at(60_000)).await, limited(5_000));
    }

    /// When a key holds more events than a (lowered) limit, another fits
    /// only once enough of them have left, not when the oldest has.
    pub async fn retry_after_under_a_lowered_limit(limiter: Arc<dyn RateLimiter>) {
        let window = Duration::from_secs(60);
        for millis in [0, 1_000, 2_000] {
            let decision = acquire(&*limiter, "k", RateRule::new(3, window), at(millis)).await;
            assert_eq!(decision, RateDecision::Allowed);
        }
        let lowered = RateRule::new(2, window);
        assert_eq!(acquire(&*limiter, "k", lowered, at(10_000)).await, limited(51_000));
        assert_eq!(acquire(&*limiter, "k", lowered, at(60_000)).await, limited(1_000));
        assert_eq!(
            acquire(&*limiter, "k", lowered, at(61_000)).await,
            RateDecision::Allowed
        );
    }

    /// A limit of 0 allows nothing (the retry is the window) and records nothing.
    pub async fn a_limit_of_zero_allows_nothing(limiter: Arc<dyn RateLimiter>) {
        let window = Duration::from_secs(30);
        for millis in [0, 1, 100_000] {
            let decision = acquire(&*limiter, "k", RateRule::new(0, window), at(millis)).await;
            assert_eq!(decision, limited(30_000));
        }
        let decision = acquire(&*limiter, "k", RateRule::new(1, window), at(100_000)).await;
        assert_eq!(decision, RateDecision::Allowed, "the refusals were not recorded");
    }

    /// Each key has its own count, even keys that are prefixes of each other.
    pub async fn keys_are_independent(limiter: Arc<dyn RateLimiter>) {
        let rule = RateRule::new(1, Duration::from_secs(60));
        assert_eq!(
            acquire(&*limiter, "send:+15550001", rule, at(0)).await,
            RateDecision::Allowed
        );
        assert_eq!(acquire(&*limiter, "send:+15550001", rule, at(1)).await, limited(59_999));
        for key in ["send:+155500012", "send:+1555000", "ip:+15550001", ""] {
            assert_eq!(
                acquire(&*limiter, key, rule, at(1)).await,
                RateDecision::Allowed,
                "key {key:?}"
            );
        }
        assert_eq!(acquire(&*limiter, "send:+15550001", rule, at(2)).await, limited(59_998));
    }

    /// A batch records one event on every key or, when one key refuses,
    /// none at all (not even on the keys before it), naming that key.
    pub async fn a_batch_is_all_or_nothing(limiter: Arc<dyn RateLimiter>) {
        let minute = Duration::from_secs(60);
        let batch = |full: u32| {
            vec![
                RateKey::new("a", RateRule::new(3, minute)),
                RateKey::new("b", RateRule::new(full, minute)),
                RateKey::new("c", RateRule::new(3, minute)),
            ]
        };
        let all = |batch: Vec<RateKey>| {
            let limiter = Arc::clone(&limiter);
            async move { limiter.acquire_all(&batch, at(1_000)).await.unwrap() }
        };
        assert_eq!(all(batch(1)).await, BatchDecision::Allowed);
        assert_eq!(
            all(batch(1)).await,
            BatchDecision::Limited {
                index: 1,
                retry_after: Duration::from_millis(60_000)
            }
        );
        // "a" and "c" hold one event each, not two: two more fit in each.
        for key in ["a", "c"] {
            let rule = RateRule::new(3, minute);
            assert_eq!(acquire(&*limiter, key, rule, at(2_000)).await, RateDecision::Allowed);
            assert_eq!(acquire(&*limiter, key, rule, at(2_000)).await, RateDecision::Allowed);
            assert_eq!(acquire(&*limiter, key, rule, at(2_000)).await, limited(59_000));
        }
        // A refused new key under a limit of 0 creates nothing either.
        let refused = limiter
            .acquire_all(
                &[
                    RateKey::new("fresh", RateRule::new(5, minute)),
                    RateKey::new("zero", RateRule::new(0, minute)),
                ],
                at(3_000),
            )
            .await
            .unwrap();
        assert_eq!(
            refused,
            BatchDecision::Limited {
                index: 1,
                retry_after: minute
            }
        );
        assert_eq!(
            acquire(&*limiter, "fresh", RateRule::new(1, minute), at(3_000)).await,
            RateDecision::Allowed
        );
        assert_eq!(limiter.acquire_all(&[], at(0)).await.unwrap(), BatchDecision::Allowed);
    }

    /// Of 50 concurrent calls for one key at limit 10, exactly 10 win.
    pub async fn concurrent_calls_never_exceed_the_limit(limiter: Arc<dyn RateLimiter>) {
        let rule = RateRule::new(10, Duration::from_secs(60));
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let limiter = Arc::clone(&limiter);
                tokio::spawn(async move { acquire(&*limiter, "hot", rule, at(i % 3)).await })
            })
            .collect();
        let mut allowed = 0;
        for task in tasks {
            if task.await.unwrap() == RateDecision::Allowed {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 10);
        assert!(matches!(
            acquire(&*limiter, "hot", rule, at(3)).await,
            RateDecision::Limited { .. }
        ));
    }

    /// `peek` answers what `acquire` would, at every point of a sliding
    /// window and under a lowered or zero limit, and records nothing, not
    /// even when asked with a shorter window.
    pub async fn peek_answers_as_acquire_would_and_records_nothing(limiter: Arc<dyn RateLimiter>) {
        let peek = |key: &'static str, rule: RateRule, now: Timestamp| {
            let limiter = Arc::clone(&limiter);
            async move { limiter.peek(key, rule, now).await.unwrap() }
        };
        let rule = RateRule::new(2, Duration::from_millis(1000));
        for _ in 0..5 {
            assert_eq!(peek("k", rule, at(0)).await, RateDecision::Allowed);
        }
        assert_eq!(acquire(&*limiter, "k", rule, at(0)).await, RateDecision::Allowed);
        assert_eq!(peek("k", rule, at(1)).await, RateDecision::Allowed);
        assert_eq!(acquire(&*limiter, "k", rule, at(1)).await, RateDecision::Allowed);
        for _ in 0..3 {
            assert_eq!(peek("k", rule, at(999)).await, limited(1));
        }
        assert_eq!(acquire(&*limiter, "k", rule, at(999)).await, limited(1));
        // A peek with a window that has passed every event sees room, and
        // leaves the events for the real rule.
        let short = RateRule::new(2, Duration::from_millis(1));
        assert_eq!(peek("k", short, at(999)).await, RateDecision::Allowed);
        assert_eq!(acquire(&*limiter, "k", rule, at(999)).await, limited(1));
        assert_eq!(peek("k", rule, at(1000)).await, RateDecision::Allowed);
        assert_eq!(acquire(&*limiter, "k", rule, at(1000)).await, RateDecision::Allowed);
        // Events at 1 and 1000 are in the window: the one at 1 frees it.
        assert_eq!(peek("k", rule, at(1000)).await, limited(1));
        // Under a lowered limit: when the event at `count - limit` leaves.
        let lowered = RateRule::new(1, Duration::from_millis(1000));
        assert_eq!(peek("k", lowered, at(1000)).await, limited(1000));
        assert_eq!(peek("k", rule, at(1001)).await, RateDecision::Allowed);
        // A limit of 0, on a used key and on an unknown one.
        let zero = RateRule::new(0, Duration::from_secs(30));
        assert_eq!(peek("k", zero, at(1500)).await, limited(30_000));
        assert_eq!(peek("unknown", zero, at(1500)).await, limited(30_000));
        assert_eq!(peek("unknown", rule, at(1500)).await, RateDecision::Allowed);
    }

    /// `reset` forgets one key's events (the full limit is allowed again at
    /// once), leaves every other key alone, and succeeds on unknown keys.
    pub async fn reset_forgets_one_key(limiter: Arc<dyn RateLimiter>) {
        let rule = RateRule::new(1, Duration::from_secs(60));
        for key in ["lock:+15550001", "lock:+155500012"] {
            assert_eq!(acquire(&*limiter, key, rule, at(0)).await, RateDecision::Allowed);
            assert_eq!(acquire(&*limiter, key, rule, at(1)).await, limited(59_999));
        }
        limiter.reset("lock:+15550001").await.unwrap();
        assert_eq!(
            limiter.peek("lock:+15550001", rule, at(2)).await.unwrap(),
            RateDecision::Allowed
        );
        assert_eq!(
            acquire(&*limiter, "lock:+15550001", rule, at(2)).await,
            RateDecision::Allowed
        );
        assert_eq!(
            acquire(&*limiter, "lock:+155500012", rule, at(2)).await,
            limited(59_998)
        );
        limiter.reset("never-used").await.unwrap();
        limiter.reset("lock:+15550001").await.unwrap();
        limiter.reset("lock:+15550001").await.unwrap();
        assert_eq!(
            acquire(&*limiter, "lock:+15550001", rule, at(3)).await,
            RateDecision::Allowed
        );
    }
}

/// Runs every contract test on the limiter that `$make` (an async
/// expression) builds afresh for each test.
macro_rules! contract_tests {
    ($make:expr) => {
        contract_tests!(@each $make;
            the_limit_holds_and_refusals_are_not_recorded,
            the_window_slides,
            retry_after_is_when_the_oldest_event_leaves,
            retry_after_under_a_lowered_limit,
            a_limit_of_zero_allows_nothing,
            keys_are_independent,
            concurrent_calls_never_exceed_the_limit,
            a_batch_is_all_or_nothing,
            peek_answers_as_acquire_would_and_records_nothing,
            reset_forgets_one_key,
        );
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let limiter: Arc<dyn RateLimiter> = $make;
                crate::rate_limit::contract::$name(limiter).await;
            }
        )*
    };
}

mod memory {
    use super::*;

    contract_tests!(Arc::new(InMemoryRateLimiter::new()));

    /// A limiter fed new keys for a long time holds about as many keys as
    /// are within their window, not every key it has seen.
    #[tokio::test]
    async fn stale_keys_are_swept() {
        let limiter = InMemoryRateLimiter::new();
        let rule = RateRule::new(1, Duration::from_secs(1));
        for round in 0..100 {
            let now = at(round * 1000);
            for key in 0..1000 {
                let decision = acquire(&limiter, &format!("{round}:{key}"), rule, now).await;
                assert_eq!(decision, RateDecision::Allowed);
            }
        }
        let held = limiter.key_count();
        assert!(
            (1000..5000).contains(&held),
            "holds {held} keys after 100,000 keys of which 1,000 are live"
        );
        // The live keys are still counted.
        assert_eq!(acquire(&limiter, "99:7", rule, at(99_500)).await, limited(500));
    }

    /// A refusal of a new key (limit 0) leaves nothing behind.
    #[tokio::test]
    async fn refused_new_keys_are_not_held() {
        let limiter = InMemoryRateLimiter::new();
        for key in 0..100 {
            let decision = acquire(&limiter, &key.to_string(), RateRule::new(0, Duration::from_secs(9)), T0).await;
            assert_eq!(decision, limited(9000));
        }
        assert_eq!(limiter.key_count(), 0);
    }

    /// At most `max_keys` keys are held, and a new key beyond them is never
    /// refused: keys whose windows have passed make room first, then the
    /// least recently used key.
    #[tokio::test]
    async fn a_full_limiter_forgets_stale_then_least_recently_used_keys() {
        let limiter = InMemoryRateLimiter::with_max_keys(3);
        let hour = RateRule::new(1, Duration::from_secs(3600));
        // "live" is used first; "stale" later, but its window passes at 2 ms.
        assert_eq!(acquire(&limiter, "live", hour, at(0)).await, RateDecision::Allowed);
        let short = RateRule::new(1, Duration::from_millis(1));
        assert_eq!(acquire(&limiter, "stale", short, at(1)).await, RateDecision::Allowed);
        assert_eq!(acquire(&limiter, "recent", hour, at(2)).await, RateDecision::Allowed);
        // Full: the stale key makes room, though "live" was used before it.
        assert_eq!(acquire(&limiter, "new1", hour, at(10)).await, RateDecision::Allowed);
        assert_eq!(limiter.key_count(), 3);
        assert!(matches!(
            acquire(&limiter, "live", hour, at(11)).await,
            RateDecision::Limited { .. }
        ));
        // Nothing is stale now: the least recently used key ("recent") goes.
        assert_eq!(acquire(&limiter, "new2", hour, at(12)).await, RateDecision::Allowed);
        for held in ["live", "new1", "new2"] {
            assert!(
                matches!(
                    acquire(&limiter, held, hour, at(13)).await,
                    RateDecision::Limited { .. }
                ),
                "{held} is still counted"
            );
        }
        assert_eq!(
            acquire(&limiter, "recent", hour, at(14)).await,
            RateDecision::Allowed,
            "the least recently used key was forgotten"
        );
        assert_eq!(limiter.key_count(), 3);
    }

    /// A flood of new keys, none of them stale, is never refused, and the
    /// limiter holds no more than its maximum (here in 16 shards).
    #[tokio::test]
    async fn a_flood_of_new_keys_is_admitted_within_the_bound() {
        let limiter = InMemoryRateLimiter::with_max_keys(16_384);
        let rule = RateRule::new(5, Duration::from_secs(3600));
        for key in 0..40_000 {
            let decision = limiter.acquire(&format!("flood:{key}"), rule, at(key)).await.unwrap();
            assert_eq!(decision, RateDecision::Allowed);
        }
        assert_eq!(limiter.key_count(), 16_384);
        // The newest keys are still counted.
        for _ in 0..4 {
            assert_eq!(
                acquire(&limiter, "flood:39999", rule, at(40_000)).await,
                RateDecision::Allowed
            );
        }
        assert!(matches!(
            acquire(&limiter, "flood:39999", rule, at(40_000)).await,
            RateDecision::Limited { .. }
        ));
    }

    /// `Debug` shows sizes, never the keys (they may hold phone numbers).
    #[tokio::test]
    async fn debug_shows_no_keys() {
        let limiter = InMemoryRateLimiter::new();
        let rule = RateRule::new(1, Duration::from_secs(1));
        assert_eq!(acquire(&limiter, "+15550009999", rule, T0).await, RateDecision::Allowed);
        let debug = format!("{limiter:?}");
        assert!(!debug.contains("5550009999"), "{debug}");
        assert!(debug.contains("key_count: 1"), "{debug}");
    }
}

mod redis_backend {
    use super::*;
    use tokio::{
        io::{AsyncReadExt as _, AsyncWriteExt as _},
        net::{TcpListener, TcpStream},
    };

    const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

    fn redis_url() -> String {
        std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned())
    }

    fn random_prefix() -> String {
        let mut bytes = [0u8; 8];
        OsRandom.fill(&mut bytes);
        let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        format!("phonegate-test:{hex}:")
    }

    /// Everything a log line could show of `error`: its text, its `Debug`
    /// form and every source in its chain.
    fn logged(error: &phonegate_domain::StoreError) -> String {
        let mut text = format!("{error} {error:?}");
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        text
    }

    fn no_redis(url: &str, error: impl std::fmt::Display) -> ! {
        panic!(
            "The Redis tests need a running Redis server, but {url} did not answer: {error}.\n\
             Start one (`redis-server --daemonize yes`, or `bash .ci/run`, which starts it), \
             or point REDIS_URL at a server."
        )
    }

    async fn limiter_with_prefix(prefix: &str) -> RedisRateLimiter {
        let url = redis_url();
        RedisRateLimiter::connect(&url, prefix)
            .await
            .unwrap_or_else(|error| no_redis(&url, error))
    }

    async fn limiter() -> RedisRateLimiter {
        limiter_with_prefix(&random_prefix()).await
    }

    /// A plain connection, to look at what the limiter left in Redis.
    async fn raw_connection() -> redis::aio::MultiplexedConnection {
        let url = redis_url();
        let client = redis::Client::open(url.as_str()).unwrap();
        client
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|error| no_redis(&url, error))
    }

    contract_tests!(Arc::new(limiter().await));

    /// Three instances sharing a Redis share the counts: 60 concurrent calls
    /// spread over them allow exactly the limit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_limit_holds_across_instances() {
        let prefix = random_prefix();
        let instances: Vec<Arc<RedisRateLimiter>> = vec![
            Arc::new(limiter_with_prefix(&prefix).await),
            Arc::new(limiter_with_prefix(&prefix).await),
            Arc::new(limiter_with_prefix(&prefix).await),
        ];
        let rule = RateRule::new(17, Duration::from_secs(60));
        let tasks: Vec<_> = (0..60)
            .map(|i| {
                let limiter = Arc::clone(&instances[i % 3]);
                // Many calls share a millisecond: their members must not collide.
                tokio::spawn(async move { acquire(&*limiter, "+15550001111", rule, at(0)).await })
            })
            .collect();
        let mut allowed = 0;
        for task in tasks {
            if task.await.unwrap() == RateDecision::Allowed {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 17);
        for instance in &instances {
            assert_eq!(acquire(&**instance, "+15550001111", rule, at(1)).await, limited(59_999));
        }
    }

    /// A key expires a window after its newest event, so Redis holds only
    /// keys in use.
    #[tokio::test]
    async fn keys_expire_after_their_window() {
        let prefix = random_prefix();
        let limiter = limiter_with_prefix(&prefix).await;
        let mut raw = raw_connection().await;
        let key = format!("{prefix}k");

        let rule = RateRule::new(3, Duration::from_secs(5));
        assert_eq!(acquire(&limiter, "k", rule, at(0)).await, RateDecision::Allowed);
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut raw).await.unwrap();
        assert!((4_000..=5_000).contains(&ttl), "PTTL {ttl}");

        let short = RateRule::new(3, Duration::from_millis(100));
        assert_eq!(acquire(&limiter, "short", short, at(0)).await, RateDecision::Allowed);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let exists: i64 = redis::cmd("EXISTS")
            .arg(format!("{prefix}short"))
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(exists, 0, "the key is gone once its window has passed");

        // A refused new key (limit 0) is not created at all.
        assert_eq!(
            acquire(&limiter, "never", RateRule::new(0, Duration::from_secs(5)), at(0)).await,
            limited(5000)
        );
        let exists: i64 = redis::cmd("EXISTS")
            .arg(format!("{prefix}never"))
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(exists, 0);
    }

    /// After sends and a reset email through the send guard, no key in
    /// Redis holds the phone number or the email: only their keyed hashes.
    #[tokio::test]
    async fn redis_keys_hold_no_phone_number_or_email() {
        use std::collections::HashMap;

        use phonegate_domain::{
            abuse::{AbuseSettings, Client, SendAttempt, SendGuard},
            account::Email,
            otp::{Channel, Purpose, SecretHasher},
            phone::{PhoneNumber, PhonePolicy},
        };

        let prefix = random_prefix();
        let limiter = Arc::new(limiter_with_prefix(&prefix).await);
        let minutes = |minutes: u64| Duration::from_secs(60 * minutes);
        let settings = AbuseSettings {
            sends_per_phone: RateRule::new(5, minutes(10)),
            sends_per_phone_daily: RateRule::new(20, minutes(1440)),
            resend_cooldown: HashMap::from([(Purpose::PinAuth, Duration::from_secs(30))]),
            sends_per_ip: RateRule::new(20, minutes(10)),
            checks_per_ip: RateRule::new(60, minutes(10)),
            sends_per_ipv6_48: Some(RateRule::new(160, minutes(10))),
            checks_per_ipv6_48: Some(RateRule::new(480, minutes(10))),
            destinations: PhonePolicy::new("US", &[], vec![]).unwrap(),
            require_mobile_for_sms: true,
            hourly_budget: Some(1000),
            country_hourly_budget: Some(300),
            country_budgets: HashMap::new(),
            returning_reserve_percent: 20,
            fail_open: false,
        };
        let guard = SendGuard::new(limiter, settings, SecretHasher::new(b"redis test key".to_vec()));
        let phone = PhoneNumber::parse_e164("+85261677528").unwrap();
        let client = Client::new(Some("2001:db8:5:6::7".parse().unwrap()));
        let attempt = SendAttempt {
            purpose: Purpose::PinAuth,
            phone: &phone,
            channel: Channel::Sms,
            client: &client,
        };
        guard.admit_send(attempt, T0).await.unwrap();
        // The second send hits the cooldown: the key is the same hash.
        assert!(guard.admit_send(attempt, at(1)).await.is_err());
        let email = Email::parse("someone@example.com").unwrap();
        guard.admit_mail(&email, &client, T0).await.unwrap();

        let mut raw = raw_connection().await;
        let mut keys: Vec<String> = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .query_async(&mut raw)
                .await
                .unwrap();
            keys.extend(page);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        // Per /64 and /48, cooldown, per phone, per day, 2 budgets, email.
        assert_eq!(keys.len(), 8, "{keys:?}");
        for key in &keys {
            for secret in ["61677528", "85261677528", "someone", "example"] {
                assert!(!key.contains(secret), "{key} holds {secret}");
            }
        }
        assert!(keys.iter().any(|key| key.starts_with(&format!("{prefix}send:phone:"))));
    }

    /// An unreachable Redis fails `connect` at once, with an error that does
    /// not quote the URL's password.
    #[tokio::test]
    async fn connecting_to_an_unreachable_redis_fails_quickly() {
        let started = Instant::now();
        let error = RedisRateLimiter::connect("redis://phonegate:hunter2-secret@127.0.0.1:1", "p:")
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
        assert!(!logged(&error).contains("hunter2-secret"), "{}", logged(&error));

        let error = RedisRateLimiter::connect("http://phonegate:hunter2-secret@127.0.0.1:6379", "p:")
            .await
            .unwrap_err();
        assert!(!logged(&error).contains("hunter2-secret"), "{}", logged(&error));
    }

    /// A server that accepts connections but never answers cannot make
    /// `connect` hang: it gives up after its timeout.
    #[tokio::test]
    async fn connecting_to_a_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut sockets = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                sockets.push(socket);
            }
        });
        let started = Instant::now();
        let error =
            RedisRateLimiter::connect_with_timeout(&format!("redis://{address}"), "p:", Duration::from_millis(300))
                .await
                .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
        assert!(logged(&error).contains("timed out"), "{}", logged(&error));
    }

    /// When Redis stops answering mid-way, `acquire` answers a store error
    /// within the timeout, naming neither the key nor the password; once
    /// Redis answers again, so does the limiter.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_silent_redis_is_a_store_error_within_the_timeout() {
        let (proxy, frozen) = freezable_proxy().await;
        let url = format!("redis://default:hunter2-secret@{proxy}");
        let limiter = RedisRateLimiter::connect_with_timeout(&url, &random_prefix(), Duration::from_millis(300))
            .await
            .unwrap_or_else(|error| no_redis(&redis_url(), error));
        let debug = format!("{limiter:?}");
        assert!(!debug.contains("hunter2-secret"), "{debug}");
        assert!(debug.contains(&proxy), "{debug}");

        let rule = RateRule::new(5, Duration::from_secs(60));
        assert_eq!(
            acquire(&limiter, "+15550002222", rule, at(0)).await,
            RateDecision::Allowed
        );

        frozen.store(true, Ordering::SeqCst);
        let started = Instant::now();
        let error = limiter.acquire("+15550002222", rule, at(1)).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
        for secret in ["5550002222", "hunter2-secret"] {
            assert!(!logged(&error).contains(secret), "{}", logged(&error));
        }

        frozen.store(false, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match limiter.acquire("+15550002222", rule, at(2)).await {
                Ok(decision) => {
                    assert_eq!(decision, RateDecision::Allowed);
                    break;
                }
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(error) => panic!("the limiter did not recover: {error}"),
            }
        }
    }

    /// A TCP proxy to the test Redis that, while `frozen` is set, holds
    /// back what clients send (and so gets no answers), as a hung server
    /// would; when unfrozen it forwards what it held.
    async fn freezable_proxy() -> (String, Arc<AtomicBool>) {
        let upstream = redis_url();
        let upstream = upstream
            .strip_prefix("redis://")
            .and_then(|rest| rest.rsplit('@').next())
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned())
            .unwrap_or_else(|| panic!("this test needs a plain redis:// REDIS_URL, not {upstream}"));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let frozen = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&frozen);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let flag = Arc::clone(&flag);
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    while let Ok(read @ 1..) = client_read.read(&mut buffer).await {
                        while flag.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        if server_write.write_all(&buffer[..read]).await.is_err() {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                });
            }
        });
        (address, frozen)
    }
}
