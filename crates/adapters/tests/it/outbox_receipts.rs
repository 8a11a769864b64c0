//! Delivery receipts on both backends (issue 17): recorded on the row the
//! provider's id names, in order; a text that did not arrive queued again
//! once for another provider, with the same code; payloads kept only as
//! long as a resend could help.

use std::time::Duration;

use phonegate_adapters::{
    on_both_backends,
    sql::{Db, SqlStore},
    testing::TestBackend,
};
use phonegate_domain::{
    outbox::{ClaimedMessage, DeliveryOutcome, Envelope, OutboxStore, Outgoing, Via},
    ports::{ChallengeStore, Housekeeping, ProviderMessageId, Receipt, ReceiptStatus, ReceiptStore},
    time::Timestamp,
};
use secrecy::ExposeSecret as _;

use crate::outbox::{KINDS, LEASE, NOW, challenge, sms, store};

fn receipt(provider: &'static str, id: &str, status: ReceiptStatus) -> Receipt {
    Receipt {
        provider,
        message_id: ProviderMessageId::new(id).unwrap(),
        status,
        error_code: (status == ReceiptStatus::Undelivered).then(|| "30003".to_owned()),
    }
}

/// Queues text `n` and sends it through `provider` under `id`.
async fn sent(store: &SqlStore, n: u32, provider: &'static str, id: &str) -> i64 {
    store.replace_live(challenge(n, NOW), sms(n, NOW)).await.unwrap();
    let claimed = store.claim_due(NOW, LEASE, 1, KINDS).await.unwrap().remove(0);
    finish_sent(store, &claimed, provider, id).await;
    claimed.id
}

async fn finish_sent(store: &SqlStore, claimed: &ClaimedMessage, provider: &'static str, id: &str) {
    let via = Via {
        provider: Some(provider),
        message_id: ProviderMessageId::new(id),
    };
    store
        .finish(claimed.id, claimed.lease, DeliveryOutcome::Sent, via, NOW)
        .await
        .unwrap();
}

/// (state, provider, provider_message_id, delivery_status, delivery_error,
/// whether a payload is kept) of every row, by id.
type Row = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
);

async fn rows(store: &SqlStore) -> Vec<Row> {
    let sql = "SELECT state, provider, provider_message_id, delivery_status, delivery_error, \
               payload IS NOT NULL FROM outbox ORDER BY id";
    match store.db() {
        Db::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
    }
}

fn row(status: Option<&str>, error: Option<&str>, payload: bool) -> Row {
    (
        "sent".to_owned(),
        Some("twilio".to_owned()),
        Some("SM1".to_owned()),
        status.map(str::to_owned),
        error.map(str::to_owned),
        payload,
    )
}

/// A receipt finds its row by provider and id; a late `sent` does not undo
/// `delivered`, which drops the payload; unknown ids and other providers'
/// ids change nothing.
async fn receipts_are_recorded_in_order_on_the_message_they_name(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    sent(&store, 1, "twilio", "SM1").await;
    assert_eq!(
        rows(&store).await,
        [row(None, None, true)],
        "kept for a resend until a receipt says"
    );

    let found = store
        .record_receipt(&receipt("twilio", "SM1", ReceiptStatus::Sent), NOW)
        .await
        .unwrap()
        .expect("the row with that id");
    assert!(found.live && !found.resent);
    assert_eq!(found.envelope.unwrap().kind(), "sms");
    assert_eq!(rows(&store).await, [row(Some("sent"), None, true)]);

    for unknown in [
        receipt("twilio", "SM2", ReceiptStatus::Undelivered),
        receipt("vonage", "SM1", ReceiptStatus::Undelivered),
    ] {
        assert!(store.record_receipt(&unknown, NOW).await.unwrap().is_none());
    }
    store
        .record_receipt(&receipt("twilio", "SM1", ReceiptStatus::Delivered), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rows(&store).await, [row(Some("delivered"), None, false)]);
    store
        .record_receipt(&receipt("twilio", "SM1", ReceiptStatus::Sent), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rows(&store).await,
        [row(Some("delivered"), None, false)],
        "a late `sent` is older news"
    );
}

/// An undelivered text is queued again, due now, to avoid the provider
/// that failed, with the same code, once; the old provider's id then names
/// nothing.
async fn an_undelivered_text_is_queued_once_for_another_provider(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    let id = sent(&store, 2, "twilio", "SM1").await;
    let found = store
        .record_receipt(&receipt("twilio", "SM1", ReceiptStatus::Undelivered), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rows(&store).await, [row(Some("undelivered"), Some("30003"), true)]);
    let envelope = found.envelope.unwrap();
    let later = NOW.plus(Duration::from_secs(5));
    assert!(
        !store.resend_avoiding(id, "vonage", &envelope, later).await.unwrap(),
        "not sent there"
    );
    assert!(store.resend_avoiding(id, "twilio", &envelope, later).await.unwrap());
    assert!(
        !store.resend_avoiding(id, "twilio", &envelope, later).await.unwrap(),
        "once"
    );

    let again = store.claim_due(later, LEASE, 10, KINDS).await.unwrap().remove(0);
    assert_eq!(again.id, id);
    assert_eq!(again.avoid.as_deref(), Some("twilio"));
    let Envelope::Sms(text) = &again.message.envelope else {
        panic!("a text");
    };
    assert_eq!(
        text.body.expose_secret(),
        "Your phonegate code is 900002",
        "the same code"
    );
    finish_sent(&store, &again, "vonage", "V1").await;
    assert!(
        store
            .record_receipt(&receipt("twilio", "SM1", ReceiptStatus::Undelivered), later)
            .await
            .unwrap()
            .is_none(),
        "the first provider's id names nothing now"
    );
    let resent = store
        .record_receipt(&receipt("vonage", "V1", ReceiptStatus::Undelivered), later)
        .await
        .unwrap()
        .unwrap();
    assert!(resent.resent, "a second non-delivery finds it resent already");
    let envelope = resent.envelope.unwrap();
    assert!(!store.resend_avoiding(id, "vonage", &envelope, later).await.unwrap());
}

/// No resend once the code stopped working: its challenge used or
/// superseded, or its time up. Housekeeping then drops the payload.
async fn a_dead_or_expired_code_is_not_resent_and_its_payload_goes(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    let id = sent(&store, 3, "twilio", "SM1").await;
    let envelope = store
        .record_receipt(&receipt("twilio", "SM1", ReceiptStatus::Failed), NOW)
        .await
        .unwrap()
        .unwrap()
        .envelope
        .unwrap();
    let expired = NOW.plus(Duration::from_secs(600));
    assert!(!store.resend_avoiding(id, "twilio", &envelope, expired).await.unwrap());
    // A newer code for the same number supersedes this one.
    store
        .replace_live(challenge(3, NOW.plus(Duration::from_secs(1))), sms(30, NOW))
        .await
        .unwrap();
    let soon = NOW.plus(Duration::from_secs(2));
    assert!(!store.resend_avoiding(id, "twilio", &envelope, soon).await.unwrap());

    assert_eq!(store.forget_expired_payloads(soon).await.unwrap(), 0, "not expired yet");
    let after = Timestamp::from_unix_millis(expired.unix_millis() + 1);
    assert_eq!(store.forget_expired_payloads(after).await.unwrap(), 1);
    assert!(!rows(&store).await[0].5);
}

/// A WhatsApp message a receipt says did not arrive becomes a text with the
/// same code, due now and claimable by any instance with SMS, once.
async fn an_undelivered_whatsapp_message_is_queued_again_as_a_text(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    let Outgoing::Message(mut message) = sms(4, NOW) else {
        panic!("a message");
    };
    let Envelope::Sms(text) = message.envelope else {
        panic!("a text");
    };
    message.envelope = Envelope::WhatsApp(text);
    store
        .replace_live(challenge(4, NOW), Outgoing::Message(message))
        .await
        .unwrap();
    let claimed = store.claim_due(NOW, LEASE, 1, &["whatsapp"]).await.unwrap().remove(0);
    finish_sent(&store, &claimed, "twilio", "SM4").await;
    let found = store
        .record_receipt(&receipt("twilio", "SM4", ReceiptStatus::Undelivered), NOW)
        .await
        .unwrap()
        .unwrap();
    let Some(Envelope::WhatsApp(whatsapp)) = found.envelope else {
        panic!("the WhatsApp message");
    };
    let sms_envelope = Envelope::Sms(whatsapp);
    assert!(
        !store
            .resend_by_sms(claimed.id, "vonage", &sms_envelope, NOW)
            .await
            .unwrap(),
        "not sent there"
    );
    assert!(
        store
            .resend_by_sms(claimed.id, "twilio", &sms_envelope, NOW)
            .await
            .unwrap()
    );
    assert!(
        !store
            .resend_by_sms(claimed.id, "twilio", &sms_envelope, NOW)
            .await
            .unwrap(),
        "once"
    );
    let again = store.claim_due(NOW, LEASE, 10, &["sms"]).await.unwrap().remove(0);
    assert_eq!(again.avoid, None, "any SMS provider, the same one included");
    let Envelope::Sms(text) = &again.message.envelope else {
        panic!("a text");
    };
    assert_eq!(text.body.expose_secret(), "Your phonegate code is 900004");
}

on_both_backends!(
    an_undelivered_whatsapp_message_is_queued_again_as_a_text,
    receipts_are_recorded_in_order_on_the_message_they_name,
    an_undelivered_text_is_queued_once_for_another_provider,
    a_dead_or_expired_code_is_not_resent_and_its_payload_goes,
);
