//! The outbox on real SQLite and a real Postgres: messages are written with
//! their challenge, sealed at rest, claimed once under a lease (shared by
//! several dispatchers with `FOR UPDATE SKIP LOCKED` on Postgres), taken
//! over when a dispatcher dies, and purged when done.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::{collections::HashSet, sync::Arc, time::Duration};

use phonegate_adapters::{
    on_both_backends,
    sql::{Db, DbOptions, Sealer, SqlStore, migrate},
    testing::{TestBackend, TestDatabase},
};
use phonegate_domain::{
    otp::{Channel, NewChallenge, Purpose, SecretHash},
    outbox::{DeliveryOutcome, Envelope, OutboxMessage, OutboxStore, Outgoing, Via},
    phone::PhoneNumber,
    ports::{ChallengeStore, Housekeeping, OutgoingSms},
    time::Timestamp,
};
use secrecy::{ExposeSecret as _, SecretString};

pub(crate) const NOW: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);
pub(crate) const LEASE: Duration = Duration::from_secs(60);
/// Every kind a message can be: the dispatchers here can deliver anything.
pub(crate) const KINDS: &[&str] = &["sms", "call", "hosted_sms", "hosted_call", "mail"];

pub(crate) async fn store(backend: TestBackend) -> (TestDatabase, SqlStore) {
    let database = TestDatabase::create(backend).await;
    let db = Db::connect(&database.url, &DbOptions::default()).await.unwrap();
    migrate(&db, NOW.unix_millis()).await.unwrap();
    (database, SqlStore::new(db).with_sealer(Sealer::new([7; 32])))
}

pub(crate) fn phone(n: u32) -> PhoneNumber {
    PhoneNumber::parse_e164(&format!("+852612{n:05}")).unwrap()
}

pub(crate) fn challenge(n: u32, created_at: Timestamp) -> NewChallenge {
    NewChallenge {
        purpose: Purpose::PinAuth,
        phone: phone(n),
        user_id: None,
        channel: Channel::Sms,
        device_binding: None,
        lookup_hash: SecretHash::from_bytes(n.to_be_bytes().repeat(8)),
        code_hash: SecretHash::from_bytes(vec![0xC0; 32]),
        max_attempts: 5,
        created_at,
        expires_at: created_at.plus(Duration::from_secs(600)),
        sent_prefix: Some("852".into()),
    }
}

pub(crate) fn sms(n: u32, created_at: Timestamp) -> Outgoing {
    Outgoing::Message(OutboxMessage {
        envelope: Envelope::Sms(OutgoingSms {
            to: phone(n),
            body: SecretString::from(format!("Your phonegate code is 9{n:05}")),
        }),
        purpose: "pin_auth",
        created_at,
        not_after: created_at.plus(Duration::from_secs(600)),
    })
}

fn decoy(n: u32, created_at: Timestamp) -> Outgoing {
    match sms(n, created_at) {
        Outgoing::Message(message) => Outgoing::Decoy(message),
        other => other,
    }
}

async fn queue(store: &SqlStore, n: u32) {
    store.replace_live(challenge(n, NOW), sms(n, NOW)).await.unwrap();
}

fn body(envelope: &Envelope) -> String {
    match envelope {
        Envelope::Sms(sms) => sms.body.expose_secret().to_owned(),
        other => panic!("not a text: {}", other.kind()),
    }
}

async fn a_queued_message_is_claimed_once_and_then_sent(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    queue(&store, 1).await;
    // Decoys and test numbers queue nothing that is ever claimed.
    store.replace_live(challenge(2, NOW), decoy(2, NOW)).await.unwrap();
    store.replace_live(challenge(3, NOW), Outgoing::Nothing).await.unwrap();
    let claimed = store.claim_due(NOW, LEASE, 10, KINDS).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let message = &claimed[0];
    assert_eq!(message.attempts, 1);
    assert_eq!(body(&message.message.envelope), "Your phonegate code is 900001");
    assert_eq!(message.message.purpose, "pin_auth");
    assert!(
        store.claim_due(NOW, LEASE, 10, KINDS).await.unwrap().is_empty(),
        "leased"
    );
    store
        .finish(message.id, message.lease, DeliveryOutcome::Sent, Via::default(), NOW)
        .await
        .unwrap();
    let later = NOW.plus(LEASE * 2);
    assert!(
        store.claim_due(later, LEASE, 10, KINDS).await.unwrap().is_empty(),
        "sent"
    );
    assert_eq!(store.backlog(later).await.unwrap().pending, 0);
}

async fn a_dead_dispatchers_message_is_taken_over_when_its_lease_ends(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    queue(&store, 1).await;
    let first = store.claim_due(NOW, LEASE, 10, KINDS).await.unwrap().remove(0);
    // The first dispatcher dies without a word. Before its lease ends the
    // message stays with it; after, another dispatcher takes it.
    assert!(
        store
            .claim_due(NOW.plus(LEASE / 2), LEASE, 10, KINDS)
            .await
            .unwrap()
            .is_empty()
    );
    let second = store
        .claim_due(NOW.plus(LEASE), LEASE, 10, KINDS)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(second.id, first.id);
    assert_eq!(second.attempts, 2);
    // The first dispatcher, slow rather than dead, finds out before sending.
    let later = NOW.plus(LEASE * 2);
    assert!(!store.extend_lease(first.id, first.lease, later).await.unwrap());
    assert!(store.extend_lease(second.id, second.lease, later).await.unwrap());
    // The first dispatcher's late report is ignored: its lease is gone.
    store
        .finish(
            first.id,
            first.lease,
            DeliveryOutcome::Failed { error: "late".into() },
            Via::default(),
            NOW,
        )
        .await
        .unwrap();
    store
        .finish(second.id, second.lease, DeliveryOutcome::Sent, Via::default(), NOW)
        .await
        .unwrap();
    let backlog = store.backlog(NOW.plus(LEASE * 3)).await.unwrap();
    assert_eq!(backlog.pending, 0);
}

async fn a_retry_comes_due_at_its_time(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    queue(&store, 1).await;
    let claimed = store.claim_due(NOW, LEASE, 10, KINDS).await.unwrap().remove(0);
    let at = NOW.plus(Duration::from_secs(4));
    store
        .finish(
            claimed.id,
            claimed.lease,
            DeliveryOutcome::Retry {
                at,
                error: "503".into(),
            },
            Via {
                provider: Some("twilio"),
                message_id: None,
            },
            NOW,
        )
        .await
        .unwrap();
    assert!(
        store
            .claim_due(NOW.plus(Duration::from_secs(3)), LEASE, 10, KINDS)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim_due(at, LEASE, 10, KINDS).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    let backlog = store.backlog(at).await.unwrap();
    assert_eq!((backlog.pending, backlog.oldest_age), (1, Some(Duration::from_secs(4))));
}

async fn payloads_are_sealed_at_rest(backend: TestBackend) {
    let (database, store) = store(backend).await;
    queue(&store, 1).await;
    let payload: Vec<u8> = match store.db() {
        Db::Sqlite(pool) => sqlx::query_scalar("SELECT payload FROM outbox")
            .fetch_one(pool)
            .await
            .unwrap(),
        Db::Postgres(pool) => sqlx::query_scalar("SELECT payload FROM outbox")
            .fetch_one(pool)
            .await
            .unwrap(),
    };
    let text = String::from_utf8_lossy(&payload);
    assert!(
        !text.contains("900001") && !text.contains("+85261200001"),
        "the code is not in the clear"
    );
    // An instance with another secret cannot read the row: it fails it
    // instead of sending garbage or retrying forever.
    let db = Db::connect(&database.url, &DbOptions::default()).await.unwrap();
    let stranger = SqlStore::new(db).with_sealer(Sealer::new([8; 32]));
    assert!(stranger.claim_due(NOW, LEASE, 10, KINDS).await.unwrap().is_empty());
    assert!(
        store
            .claim_due(NOW.plus(LEASE * 2), LEASE, 10, KINDS)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn concurrent_dispatchers_claim_each_message_exactly_once(backend: TestBackend) {
    let (database, store) = store(backend).await;
    for n in 0..120 {
        queue(&store, n).await;
    }
    // Four dispatchers, each with its own pool as if on its own instance.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let db = Db::connect(&database.url, &DbOptions::default()).await.unwrap();
        let dispatcher = Arc::new(SqlStore::new(db).with_sealer(Sealer::new([7; 32])));
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let batch = dispatcher.claim_due(NOW, LEASE, 7, KINDS).await.unwrap();
                if batch.is_empty() {
                    return seen;
                }
                for message in batch {
                    seen.push(body(&message.message.envelope));
                    dispatcher
                        .finish(message.id, message.lease, DeliveryOutcome::Sent, Via::default(), NOW)
                        .await
                        .unwrap();
                }
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 120, "every message claimed once");
    assert_eq!(distinct.len(), 120, "no message claimed twice");
}

async fn housekeeping_purges_what_is_done_and_keeps_what_is_live(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    // An old challenge (expired long ago) whose message was sent, an old
    // decoy, and a fresh challenge with its message pending.
    let old = NOW.plus(Duration::from_secs(0));
    store.replace_live(challenge(1, old), sms(1, old)).await.unwrap();
    store.replace_live(challenge(2, old), decoy(2, old)).await.unwrap();
    let sent = store.claim_due(old, LEASE, 10, KINDS).await.unwrap().remove(0);
    store
        .finish(sent.id, sent.lease, DeliveryOutcome::Sent, Via::default(), old)
        .await
        .unwrap();
    let fresh = NOW.plus(Duration::from_secs(86_400 * 2));
    store.replace_live(challenge(3, fresh), sms(3, fresh)).await.unwrap();

    let report = store.purge(NOW.plus(Duration::from_secs(86_400))).await.unwrap();
    assert_eq!(report.challenges, 2);
    assert_eq!(report.outbox, 2);
    // The fresh message is still there to be sent.
    let left = store.claim_due(fresh, LEASE, 10, KINDS).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(body(&left[0].message.envelope), "Your phonegate code is 900003");
    assert_eq!(
        store
            .purge(NOW.plus(Duration::from_secs(86_400)))
            .await
            .unwrap()
            .total(),
        0
    );
}

/// Racing issuers for one phone, each queuing its message: every issue that
/// succeeded queued exactly its own message (a write that lost the race to
/// the unique index of live challenges wrote nothing before it was run
/// again), and one challenge is left live.
async fn racing_issuers_each_queue_exactly_one_message(backend: TestBackend) {
    use phonegate_domain::otp::AttemptOutcome;
    let (_database, store) = store(backend).await;
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..8u32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut racing = challenge(i, NOW);
                racing.phone = phone(0);
                store.replace_live(racing, sms(i, NOW)).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(outbox_rows(&store).await.len(), 8, "one message per issue, none twice");
    // Only the surviving challenge's message is ever sent; the superseded
    // ones are dropped by the claim.
    let claimed = store.claim_due(NOW, LEASE, 100, KINDS).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let mut live = 0;
    for i in 0..8u32 {
        let lookup = SecretHash::from_bytes(i.to_be_bytes().repeat(8));
        if let AttemptOutcome::Spent(_) = store.spend_attempt(&lookup, NOW).await.unwrap() {
            live += 1;
        }
    }
    assert_eq!(live, 1);
}

/// Every outbox row as (challenge id, state, last error), oldest first.
async fn outbox_rows(store: &SqlStore) -> Vec<(Option<i64>, String, Option<String>)> {
    let sql = "SELECT challenge_id, state, last_error FROM outbox ORDER BY id";
    match store.db() {
        Db::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
    }
}

/// Security II, finding 14: a code superseded before its message was sent
/// is never sent. Code A, then code B for the same number before the
/// dispatcher runs: the dispatcher delivers B only and A's row is dropped,
/// its payload gone.
async fn a_superseded_codes_message_is_dropped_before_sending(backend: TestBackend) {
    use phonegate_domain::{
        delivery::Messenger,
        outbox::{DispatchSettings, Dispatcher},
        ports::{Clock, MockMailer, MockSmsSender, MockVoiceCaller},
    };
    #[derive(Debug)]
    struct Fixed;
    impl Clock for Fixed {
        fn now(&self) -> Timestamp {
            NOW
        }
    }
    let (_database, store) = store(backend).await;
    let first = store.replace_live(challenge(1, NOW), sms(1, NOW)).await.unwrap();
    let mut second_challenge = challenge(2, NOW);
    second_challenge.phone = phone(1);
    let second = store.replace_live(second_challenge, sms(2, NOW)).await.unwrap();
    let mut sender = MockSmsSender::new();
    sender
        .expect_send_queued_sms()
        .times(1)
        .withf(|message, _| message.body.expose_secret() == "Your phonegate code is 900002")
        .returning(|_, _| Ok(None));
    let store = Arc::new(store);
    let dispatcher = Dispatcher::new(
        store.clone(),
        Messenger::new(Arc::new(sender), Arc::new(MockVoiceCaller::new()), "phonegate".into()),
        Arc::new(MockMailer::new()),
        Arc::new(Fixed),
        DispatchSettings::default(),
    );
    let report = dispatcher.dispatch_due().await.unwrap();
    assert_eq!((report.claimed, report.sent), (1, 1));
    let rows = outbox_rows(&store).await;
    assert_eq!(
        rows,
        vec![
            (
                Some(first.get()),
                "dropped".to_owned(),
                Some("code superseded or used before delivery".to_owned())
            ),
            (Some(second.get()), "sent".to_owned(), None),
        ]
    );
    let payloads: i64 = match store.db() {
        Db::Sqlite(pool) => sqlx::query_scalar("SELECT COUNT(payload) FROM outbox")
            .fetch_one(pool)
            .await
            .unwrap(),
        Db::Postgres(pool) => sqlx::query_scalar("SELECT COUNT(payload) FROM outbox")
            .fetch_one(pool)
            .await
            .unwrap(),
    };
    assert_eq!(payloads, 0, "no code is left sealed in the table");
}

on_both_backends!(
    a_superseded_codes_message_is_dropped_before_sending,
    a_queued_message_is_claimed_once_and_then_sent,
    a_dead_dispatchers_message_is_taken_over_when_its_lease_ends,
    a_retry_comes_due_at_its_time,
    payloads_are_sealed_at_rest,
    concurrent_dispatchers_claim_each_message_exactly_once,
    housekeeping_purges_what_is_done_and_keeps_what_is_live,
    racing_issuers_each_queue_exactly_one_message,
);
