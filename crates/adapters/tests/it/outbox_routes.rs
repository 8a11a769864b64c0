//! The outbox on both backends as routes use it (issue 16): claims of the
//! kinds an instance can send, the provider of each attempt, the backlog
//! by kind, and a failed Verify start reissued as a local text.

use std::time::Duration;

use phonegate_adapters::{
    on_both_backends,
    sql::{Db, SqlStore},
    testing::TestBackend,
};
use phonegate_domain::{
    otp::Channel,
    outbox::{DeliveryOutcome, Envelope, OutboxMessage, OutboxStore, Outgoing, Via},
    ports::{ChallengeStore, OutgoingSms},
};
use secrecy::{ExposeSecret as _, SecretString};

use crate::outbox::{KINDS, LEASE, NOW, challenge, phone, sms, store};

/// Issue 16: in a fleet whose instances have different providers, a
/// dispatcher claims only the kinds it can send, so a hosted Verify start
/// waits for an instance with Verify and a text for one with an SMS
/// provider; an expired message is claimed by anyone, to be dropped; the
/// provider of the last attempt is recorded; the backlog shows each kind.
async fn a_dispatcher_claims_only_the_kinds_it_can_send(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    store.replace_live(challenge(1, NOW), sms(1, NOW)).await.unwrap();
    let hosted = Outgoing::Message(OutboxMessage {
        envelope: Envelope::Hosted {
            to: phone(2),
            channel: Channel::Sms,
            locale: "en".into(),
            fallback: Some(SecretString::from("Your phonegate code is 900002")),
        },
        purpose: "pin_auth",
        created_at: NOW,
        not_after: NOW.plus(Duration::from_secs(600)),
    });
    store.replace_live(challenge(2, NOW), hosted).await.unwrap();
    let by_kind = store.backlog_by_kind(NOW.plus(Duration::from_secs(5))).await.unwrap();
    let summary: Vec<(String, u64)> = by_kind
        .iter()
        .map(|entry| (entry.kind.clone(), entry.backlog.pending))
        .collect();
    assert_eq!(summary, [("hosted_sms".to_owned(), 1), ("sms".to_owned(), 1)]);
    assert_eq!(by_kind[0].backlog.oldest_age, Some(Duration::from_secs(5)));

    let verify_only = store
        .claim_due(NOW, LEASE, 10, &["hosted_sms", "hosted_call", "mail"])
        .await
        .unwrap();
    assert_eq!(verify_only.len(), 1);
    assert_eq!(verify_only[0].message.envelope.kind(), "hosted_sms");
    let Envelope::Hosted { fallback, .. } = &verify_only[0].message.envelope else {
        panic!("a hosted envelope");
    };
    assert_eq!(
        fallback.as_ref().map(|text| text.expose_secret().to_owned()).as_deref(),
        Some("Your phonegate code is 900002"),
        "the fallback text survives the round trip, sealed"
    );
    let texts_only = store.claim_due(NOW, LEASE, 10, &["sms", "call", "mail"]).await.unwrap();
    assert_eq!(texts_only.len(), 1);
    assert_eq!(texts_only[0].message.envelope.kind(), "sms");
    store
        .finish(
            texts_only[0].id,
            texts_only[0].lease,
            DeliveryOutcome::Sent,
            Via {
                provider: Some("vonage"),
                message_id: None,
            },
            NOW,
        )
        .await
        .unwrap();
    store
        .finish(
            verify_only[0].id,
            verify_only[0].lease,
            DeliveryOutcome::Retry {
                at: NOW.plus(Duration::from_secs(1)),
                error: "twilio_verify: the provider is unavailable: http 503".into(),
            },
            Via {
                provider: Some("twilio_verify"),
                message_id: None,
            },
            NOW,
        )
        .await
        .unwrap();
    let sql = "SELECT kind, state, provider FROM outbox ORDER BY id";
    let rows: Vec<(String, String, Option<String>)> = match store.db() {
        Db::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
    };
    assert_eq!(
        rows,
        [
            ("sms".to_owned(), "sent".to_owned(), Some("vonage".to_owned())),
            (
                "hosted_sms".to_owned(),
                "pending".to_owned(),
                Some("twilio_verify".to_owned())
            ),
        ]
    );
    // Nobody with only texts claims the Verify start while it can still be
    // sent; once it has expired anyone does, to drop it.
    let soon = NOW.plus(Duration::from_secs(2));
    assert!(store.claim_due(soon, LEASE, 10, &["sms"]).await.unwrap().is_empty());
    let expired = NOW.plus(Duration::from_secs(600));
    let claimed = store.claim_due(expired, LEASE, 10, &["sms"]).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].message.envelope.kind(), "hosted_sms");
}

/// Issue 16: a Verify start that failed becomes a text with phonegate's
/// own code, and its challenge is marked local in the same transaction, so
/// a check compares the code here; a lost lease changes nothing.
async fn a_failed_verify_start_is_reissued_as_a_local_text(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    let hosted = Outgoing::Message(OutboxMessage {
        envelope: Envelope::Hosted {
            to: phone(3),
            channel: Channel::Sms,
            locale: "en".into(),
            fallback: Some(SecretString::from("Your phonegate code is 900003")),
        },
        purpose: "pin_auth",
        created_at: NOW,
        not_after: NOW.plus(Duration::from_secs(600)),
    });
    store.replace_live(challenge(3, NOW), hosted).await.unwrap();
    assert!(hosted_flag(&store).await, "Verify makes this code");
    let claimed = store.claim_due(NOW, LEASE, 10, KINDS).await.unwrap().remove(0);
    let Envelope::Hosted { to, fallback, .. } = &claimed.message.envelope else {
        panic!("a hosted envelope");
    };
    let local = Envelope::Sms(OutgoingSms {
        to: to.clone(),
        body: fallback.clone().unwrap(),
    });
    assert!(
        !store
            .reissue_locally(claimed.id, claimed.lease ^ 1, &local)
            .await
            .unwrap(),
        "not our lease"
    );
    assert!(hosted_flag(&store).await);
    assert!(store.reissue_locally(claimed.id, claimed.lease, &local).await.unwrap());
    assert!(!hosted_flag(&store).await, "phonegate's own code now");
    // A retry finds the text, claimable by any instance with SMS.
    store
        .finish(
            claimed.id,
            claimed.lease,
            DeliveryOutcome::Retry {
                at: NOW,
                error: "twilio: unavailable".into(),
            },
            Via {
                provider: Some("twilio"),
                message_id: None,
            },
            NOW,
        )
        .await
        .unwrap();
    let again = store.claim_due(NOW, LEASE, 10, &["sms"]).await.unwrap().remove(0);
    let Envelope::Sms(text) = &again.message.envelope else {
        panic!("a text");
    };
    assert_eq!(text.body.expose_secret(), "Your phonegate code is 900003");
}

/// Issue 17: a WhatsApp message is sealed and claimed as kind `whatsapp`
/// (only by an instance that names that kind), and a number that is not
/// on WhatsApp has its row switched to the same text by SMS under the
/// lease, leaving the challenge as it was.
async fn a_whatsapp_message_is_switched_to_sms_under_its_lease(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    let whatsapp = Outgoing::Message(OutboxMessage {
        envelope: Envelope::WhatsApp(OutgoingSms {
            to: phone(4),
            body: SecretString::from("Your phonegate code is 900004"),
        }),
        purpose: "phone_verify",
        created_at: NOW,
        not_after: NOW.plus(Duration::from_secs(600)),
    });
    store.replace_live(challenge(4, NOW), whatsapp).await.unwrap();
    assert!(store.claim_due(NOW, LEASE, 10, KINDS).await.unwrap().is_empty());
    let claimed = store.claim_due(NOW, LEASE, 10, &["whatsapp"]).await.unwrap().remove(0);
    let Envelope::WhatsApp(message) = &claimed.message.envelope else {
        panic!("a WhatsApp message");
    };
    assert_eq!(message.body.expose_secret(), "Your phonegate code is 900004");
    let sms = Envelope::Sms(OutgoingSms {
        to: message.to.clone(),
        body: message.body.clone(),
    });
    assert!(
        !store.switch_channel(claimed.id, claimed.lease ^ 1, &sms).await.unwrap(),
        "not our lease"
    );
    assert!(store.switch_channel(claimed.id, claimed.lease, &sms).await.unwrap());
    assert!(!hosted_flag(&store).await, "still phonegate's own code");
    let retry = DeliveryOutcome::Retry {
        at: NOW,
        error: "twilio: unavailable".into(),
    };
    store
        .finish(claimed.id, claimed.lease, retry, Via::default(), NOW)
        .await
        .unwrap();
    let again = store.claim_due(NOW, LEASE, 10, &["sms"]).await.unwrap().remove(0);
    let Envelope::Sms(text) = &again.message.envelope else {
        panic!("a text");
    };
    assert_eq!(text.body.expose_secret(), "Your phonegate code is 900004");
}

/// Whether the one challenge of the store is marked as Verify's code.
async fn hosted_flag(store: &SqlStore) -> bool {
    let sql = "SELECT hosted FROM otp_challenges";
    let rows: Vec<(bool,)> = match store.db() {
        Db::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
    };
    rows[0].0
}

on_both_backends!(
    a_dispatcher_claims_only_the_kinds_it_can_send,
    a_failed_verify_start_is_reissued_as_a_local_text,
    a_whatsapp_message_is_switched_to_sms_under_its_lease,
);
