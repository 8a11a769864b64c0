//! The conversion counts on real SQLite and a real Postgres: only codes
//! really sent count, per prefix, with their verifications, providers and
//! receipts; and a check learns the provider that sent its code.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::time::Duration;

use phonegate_adapters::{on_both_backends, sql::SqlStore, testing::TestBackend};
use phonegate_domain::{
    otp::{AttemptOutcome, NewChallenge},
    outbox::{DeliveryOutcome, OutboxStore as _, Outgoing, Via},
    ports::{ChallengeStore as _, ConversionRow, ConversionStore as _, PrefixCounts},
    time::Timestamp,
};

use crate::outbox::{KINDS, LEASE, NOW, challenge, sms, store};

fn sent_to(n: u32, prefix: &str, created_at: Timestamp) -> NewChallenge {
    NewChallenge {
        sent_prefix: Some(prefix.to_owned()),
        ..challenge(n, created_at)
    }
}

fn decoy(n: u32, created_at: Timestamp) -> Outgoing {
    match sms(n, created_at) {
        Outgoing::Message(message) => Outgoing::Decoy(message),
        other => other,
    }
}

fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

fn ago(duration: Duration) -> Timestamp {
    Timestamp::from_unix_millis(NOW.unix_millis() - duration.as_millis() as i64)
}

/// Verifies challenge `n`'s code: spends an attempt and consumes it;
/// returns the provider the store reports with the attempt.
async fn verify(store: &SqlStore, n: u32) -> Option<String> {
    let lookup = challenge(n, NOW).lookup_hash;
    let AttemptOutcome::Spent(attempt) = store.spend_attempt(&lookup, NOW).await.unwrap() else {
        panic!("challenge {n} is live");
    };
    assert!(store.consume(attempt.id, NOW).await.unwrap());
    attempt.provider
}

async fn counts_only_real_sends_per_prefix_in_the_window(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    // Three codes sent to 852 in the last hour (one of them verified), one
    // two hours ago, one to 4479; a decoy and a test number (nothing
    // queued) that carry a prefix all the same must not count.
    for n in 1..=3 {
        let at = ago(minutes(u64::from(n) * 5));
        store.replace_live(sent_to(n, "852", at), sms(n, at)).await.unwrap();
    }
    store
        .replace_live(sent_to(4, "852", ago(minutes(120))), sms(4, ago(minutes(120))))
        .await
        .unwrap();
    store.replace_live(sent_to(5, "4479", NOW), sms(5, NOW)).await.unwrap();
    store.replace_live(sent_to(6, "852", NOW), decoy(6, NOW)).await.unwrap();
    store
        .replace_live(sent_to(7, "852", NOW), Outgoing::Nothing)
        .await
        .unwrap();
    assert_eq!(verify(&store, 1).await, None, "no provider has tried it yet");

    let counts = store
        .prefix_counts("852", ago(minutes(60)), ago(minutes(7)))
        .await
        .unwrap();
    assert_eq!(
        counts,
        PrefixCounts {
            sent: 3,
            verified: 1,
            recent: 1,
        }
    );
    let wider = store.prefix_counts("852", ago(minutes(180)), NOW).await.unwrap();
    assert_eq!((wider.sent, wider.recent), (4, 0));
    assert_eq!(
        store.prefix_counts("99", ago(minutes(60)), NOW).await.unwrap(),
        PrefixCounts::default()
    );
}

async fn conversion_joins_providers_and_receipts_and_a_check_learns_its_provider(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    for n in 1..=3 {
        store.replace_live(sent_to(n, "852", NOW), sms(n, NOW)).await.unwrap();
    }
    store.replace_live(sent_to(4, "4479", NOW), sms(4, NOW)).await.unwrap();
    store.replace_live(sent_to(5, "852", NOW), decoy(5, NOW)).await.unwrap();
    // Two messages go out through twilio, one through vonage; one waits.
    let claimed = store.claim_due(NOW, LEASE, 3, KINDS).await.unwrap();
    assert_eq!(claimed.len(), 3);
    for (message, provider) in claimed.iter().zip(["twilio", "twilio", "vonage"]) {
        store
            .finish(
                message.id,
                message.lease,
                DeliveryOutcome::Sent,
                Via {
                    provider: Some(provider),
                    message_id: None,
                },
                NOW,
            )
            .await
            .unwrap();
    }
    // A receipt says the twilio ones arrived.
    let mut tx = store.db().begin().await.unwrap();
    tx.raw("UPDATE outbox SET delivery_status = 'delivered' WHERE provider = 'twilio'")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Challenge 1's message was claimed first (the oldest id).
    assert_eq!(verify(&store, 1).await.as_deref(), Some("twilio"));

    let rows = store.conversion(ago(minutes(60))).await.unwrap();
    let row = |prefix: &str, provider: Option<&str>, sent, delivered, verified| ConversionRow {
        prefix: prefix.into(),
        provider: provider.map(str::to_owned),
        sent,
        delivered,
        verified,
    };
    assert_eq!(
        rows,
        vec![
            row("4479", None, 1, 0, 0),
            row("852", Some("twilio"), 2, 2, 1),
            row("852", Some("vonage"), 1, 0, 0),
        ]
    );
    assert!(store.conversion(NOW.plus(minutes(1))).await.unwrap().is_empty());
}

on_both_backends!(
    counts_only_real_sends_per_prefix_in_the_window,
    conversion_joins_providers_and_receipts_and_a_check_learns_its_provider,
);
