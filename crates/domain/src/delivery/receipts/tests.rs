#![allow(clippy::unwrap_used, reason = "tests")]

use std::sync::{Arc, Mutex};

use pollster::block_on;
use secrecy::SecretString;

use super::{ReceiptOutcome, Receipts};
use crate::{
    delivery::{
        Messenger,
        routes::{Hop, Routes},
    },
    outbox::Envelope,
    phone::PhoneNumber,
    ports::{
        MockClock, MockReceiptStore, MockSmsSender, MockVoiceCaller, OutgoingSms, ProviderMessageId, Receipt,
        ReceiptStatus, ReceiptedMessage, SmsSender, VoiceCaller,
    },
    time::Timestamp,
};

const NOW: i64 = 1_700_000_000_000;

fn text() -> Envelope {
    Envelope::Sms(OutgoingSms {
        to: PhoneNumber::parse_e164("+447700900123").unwrap(),
        body: SecretString::from("Your phonegate code is 123456"),
    })
}

fn receipt(status: ReceiptStatus) -> Receipt {
    Receipt {
        provider: "twilio",
        message_id: ProviderMessageId::new("SM0123").unwrap(),
        status,
        error_code: Some("30003".into()),
    }
}

/// A message as the store finds it: sent once through `twilio`, its code
/// live for another minute.
fn found() -> ReceiptedMessage {
    ReceiptedMessage {
        id: 9,
        envelope: Some(text()),
        not_after: Timestamp::from_unix_millis(NOW + 60_000),
        resent: false,
        live: true,
    }
}

/// A messenger whose one route is `providers`, in order; none is called.
fn messenger(providers: &[&'static str]) -> Messenger {
    let hops: Vec<Hop<dyn SmsSender>> = providers
        .iter()
        .map(|provider| Hop {
            provider,
            client: Arc::new(MockSmsSender::new()) as Arc<dyn SmsSender>,
        })
        .collect();
    let voice: Arc<dyn VoiceCaller> = Arc::new(MockVoiceCaller::new());
    Messenger::routed(
        Routes::new(Vec::new(), hops),
        Routes::single("twilio", voice),
        "phonegate".into(),
    )
}

/// Receipts over a store that finds `message` and records the resends it
/// is asked for in `resent`, answering `queued`.
fn receipts(
    message: Option<ReceiptedMessage>,
    providers: &[&'static str],
    queued: bool,
    resent: &Arc<Mutex<Vec<(i64, String)>>>,
) -> Receipts {
    let mut store = MockReceiptStore::new();
    let mut message = Some(message);
    store
        .expect_record_receipt()
        .times(1)
        .returning(move |_, _| Ok(message.take().unwrap()));
    let resent = Arc::clone(resent);
    store.expect_resend_avoiding().returning(move |id, avoid, envelope, _| {
        assert_eq!(envelope.kind(), "sms", "the same message goes again");
        resent.lock().unwrap().push((id, avoid.to_owned()));
        Ok(queued)
    });
    let mut clock = MockClock::new();
    clock.expect_now().return_const(Timestamp::from_unix_millis(NOW));
    Receipts::new(Arc::new(store), messenger(providers), Arc::new(clock))
}

#[test]
fn an_undelivered_text_goes_again_through_the_next_provider_once() {
    let resent = Arc::default();
    let receipts = receipts(Some(found()), &["twilio", "vonage"], true, &resent);
    let outcome = block_on(receipts.record(&receipt(ReceiptStatus::Undelivered))).unwrap();
    assert_eq!(outcome, ReceiptOutcome::Resent);
    assert_eq!(*resent.lock().unwrap(), vec![(9, "twilio".to_owned())]);
}

#[test]
fn a_failed_text_goes_again_too_but_a_delivered_or_sent_one_does_not() {
    let resent = Arc::default();
    let receipts_for = |status| {
        let outcome = block_on(receipts(Some(found()), &["twilio", "vonage"], true, &resent).record(&receipt(status)));
        outcome.unwrap()
    };
    assert_eq!(receipts_for(ReceiptStatus::Failed), ReceiptOutcome::Resent);
    assert_eq!(receipts_for(ReceiptStatus::Delivered), ReceiptOutcome::Recorded);
    assert_eq!(receipts_for(ReceiptStatus::Sent), ReceiptOutcome::Recorded);
    assert_eq!(resent.lock().unwrap().len(), 1);
}

#[test]
fn no_resend_without_another_provider_a_live_code_or_a_first_send() {
    let cases = [
        ("one provider", found(), &["twilio"][..]),
        (
            "already resent",
            ReceiptedMessage {
                resent: true,
                ..found()
            },
            &["twilio", "vonage"][..],
        ),
        (
            "code used or superseded",
            ReceiptedMessage { live: false, ..found() },
            &["twilio", "vonage"][..],
        ),
        (
            "code expired",
            ReceiptedMessage {
                not_after: Timestamp::from_unix_millis(NOW),
                ..found()
            },
            &["twilio", "vonage"][..],
        ),
        (
            "payload gone",
            ReceiptedMessage {
                envelope: None,
                ..found()
            },
            &["twilio", "vonage"][..],
        ),
    ];
    for (case, message, providers) in cases {
        let resent = Arc::default();
        let receipts = receipts(Some(message), providers, true, &resent);
        let outcome = block_on(receipts.record(&receipt(ReceiptStatus::Undelivered))).unwrap();
        assert_eq!(outcome, ReceiptOutcome::Recorded, "{case}");
        assert!(resent.lock().unwrap().is_empty(), "{case}");
    }
}

#[test]
fn a_receipt_for_no_known_message_changes_nothing() {
    let resent = Arc::default();
    let receipts = receipts(None, &["twilio", "vonage"], true, &resent);
    let outcome = block_on(receipts.record(&receipt(ReceiptStatus::Undelivered))).unwrap();
    assert_eq!(outcome, ReceiptOutcome::Unknown);
    assert!(resent.lock().unwrap().is_empty());
}

#[test]
fn a_resend_the_store_refuses_is_only_recorded() {
    let resent = Arc::default();
    let receipts = receipts(Some(found()), &["twilio", "vonage"], false, &resent);
    let outcome = block_on(receipts.record(&receipt(ReceiptStatus::Undelivered))).unwrap();
    assert_eq!(outcome, ReceiptOutcome::Recorded);
}

/// Twilio reports a WhatsApp message to a number not on WhatsApp later, in
/// its receipt: the same code then goes by SMS (through any provider of
/// the SMS route, the one that carried the WhatsApp message included).
#[test]
fn a_whatsapp_message_that_did_not_arrive_goes_by_sms_with_the_same_code() {
    let whatsapp = Envelope::WhatsApp(OutgoingSms {
        to: PhoneNumber::parse_e164("+447700900123").unwrap(),
        body: SecretString::from("Your phonegate code is 123456"),
    });
    let mut store = MockReceiptStore::new();
    let mut message = Some(ReceiptedMessage {
        envelope: Some(whatsapp),
        ..found()
    });
    store
        .expect_record_receipt()
        .times(1)
        .returning(move |_, _| Ok(message.take()));
    store.expect_resend_avoiding().never();
    let by_sms = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&by_sms);
    store
        .expect_resend_by_sms()
        .times(1)
        .returning(move |id, sent_through, sms, _| {
            let Envelope::Sms(text) = sms else {
                panic!("an SMS");
            };
            use secrecy::ExposeSecret as _;
            seen.lock()
                .unwrap()
                .push((id, sent_through.to_owned(), text.body.expose_secret().to_owned()));
            Ok(true)
        });
    let mut clock = MockClock::new();
    clock.expect_now().return_const(Timestamp::from_unix_millis(NOW));
    let receipts = Receipts::new(Arc::new(store), messenger(&["twilio"]), Arc::new(clock));
    let outcome = block_on(receipts.record(&receipt(ReceiptStatus::Undelivered))).unwrap();
    assert_eq!(outcome, ReceiptOutcome::Resent);
    assert_eq!(
        *by_sms.lock().unwrap(),
        vec![(9, "twilio".to_owned(), "Your phonegate code is 123456".to_owned())]
    );
}
