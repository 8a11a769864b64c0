#![allow(clippy::unwrap_used, reason = "tests")]

use std::sync::Mutex;

use pollster::block_on;
use secrecy::SecretString;

use super::*;
use crate::{phone::PhoneNumber, ports::OutgoingSms, time::Timestamp};
use crate::{
    ports::{Metrics, MockMailer, MockSmsSender, MockVoiceCaller},
    test_support::{World, clock},
};

fn sms_message(world: &World, ttl: Duration) -> OutboxMessage {
    let now = Timestamp::from_unix_millis(*world.now.lock().unwrap());
    OutboxMessage {
        envelope: Envelope::Sms(OutgoingSms {
            to: PhoneNumber::parse_e164("+85261677528").unwrap(),
            body: SecretString::from("Your phonegate code is 1234"),
        }),
        purpose: "pin_auth",
        created_at: now,
        not_after: now.plus(ttl),
    }
}

/// An outbox holding `messages`, recording every finish.
fn outbox(messages: Vec<OutboxMessage>, finished: Arc<Mutex<Vec<(i64, DeliveryOutcome)>>>) -> MockOutboxStore {
    let mut outbox = claims(messages);
    outbox.expect_extend_lease().returning(|_, lease, _| Ok(lease == 77));
    outbox.expect_finish().returning(move |id, lease, outcome, _, _| {
        assert_eq!(lease, 77, "finishes under the claim's lease");
        finished.lock().unwrap().push((id, outcome));
        Ok(())
    });
    outbox
}

/// An outbox whose claims hand out `messages` (ids 1, 2, …; lease 77),
/// with no other expectations.
fn claims(messages: Vec<OutboxMessage>) -> MockOutboxStore {
    let mut outbox = MockOutboxStore::new();
    let queue = Mutex::new(messages);
    outbox.expect_claim_due().returning(move |_, _, limit, _| {
        let mut queue = queue.lock().unwrap();
        let take = queue.len().min(limit as usize);
        Ok(queue
            .drain(..take)
            .enumerate()
            .map(|(i, message)| ClaimedMessage {
                id: i as i64 + 1,
                lease: 77,
                attempts: 3,
                message,
                avoid: None,
            })
            .collect())
    });
    outbox
}

fn dispatcher(world: &Arc<World>, outbox: MockOutboxStore, sms: MockSmsSender) -> Dispatcher {
    let messenger = Messenger::new(Arc::new(sms), Arc::new(MockVoiceCaller::new()), "phonegate".into());
    Dispatcher::new(
        Arc::new(outbox),
        messenger,
        Arc::new(MockMailer::new()),
        Arc::new(clock(world)),
        DispatchSettings::default(),
    )
}

#[test]
fn a_delivered_message_is_marked_sent() {
    block_on(async {
        let world = World::new();
        let finished = Arc::default();
        let mut sms = MockSmsSender::new();
        sms.expect_send_queued_sms().times(1).returning(|_, _| Ok(None));
        let messages = vec![sms_message(&world, Duration::from_secs(300))];
        let dispatcher = dispatcher(&world, outbox(messages, Arc::clone(&finished)), sms);
        let report = dispatcher.dispatch_due().await.unwrap();
        assert_eq!((report.claimed, report.sent), (1, 1));
        assert_eq!(*finished.lock().unwrap(), vec![(1, DeliveryOutcome::Sent)]);
    });
}

#[test]
fn a_batch_renews_its_lease_only_once_deliveries_took_time() {
    block_on(async {
        let world = World::new();
        let finished: Arc<Mutex<Vec<(i64, DeliveryOutcome)>>> = Arc::default();
        let messages = vec![
            sms_message(&world, Duration::from_secs(300)),
            sms_message(&world, Duration::from_secs(300)),
            sms_message(&world, Duration::from_secs(300)),
        ];
        let mut outbox = claims(messages);
        // The first delivery starts on a fresh claim; the second one
        // takes five seconds, so the third renews first, and finds the
        // lease lost to another dispatcher.
        outbox.expect_extend_lease().times(1).returning(|id, _, _| {
            assert_eq!(id, 3);
            Ok(false)
        });
        let recorded = Arc::clone(&finished);
        outbox.expect_finish().returning(move |id, _, outcome, _, _| {
            recorded.lock().unwrap().push((id, outcome));
            Ok(())
        });
        let mut sms = MockSmsSender::new();
        let slow_world = Arc::clone(&world);
        let mut sent = 0;
        sms.expect_send_queued_sms().times(2).returning(move |_, _| {
            sent += 1;
            if sent == 2 {
                slow_world.advance(Duration::from_secs(5));
            }
            Ok(None)
        });
        let dispatcher = dispatcher(&world, outbox, sms);
        let report = dispatcher.dispatch_due().await.unwrap();
        assert_eq!((report.claimed, report.sent), (3, 2));
        assert_eq!(
            *finished.lock().unwrap(),
            vec![(1, DeliveryOutcome::Sent), (2, DeliveryOutcome::Sent)]
        );
    });
}

#[test]
fn an_outage_is_retried_with_exponential_backoff() {
    block_on(async {
        let world = World::new();
        let finished = Arc::default();
        let mut sms = MockSmsSender::new();
        sms.expect_send_queued_sms()
            .returning(|_, _| Err(DeliveryError::Unavailable("503".into())));
        let messages = vec![sms_message(&world, Duration::from_secs(300))];
        let dispatcher = dispatcher(&world, outbox(messages, Arc::clone(&finished)), sms);
        dispatcher.dispatch_due().await.unwrap();
        let now = Timestamp::from_unix_millis(*world.now.lock().unwrap());
        // The third attempt failed: the next waits 1 s × 2² = 4 s.
        assert_eq!(
            *finished.lock().unwrap(),
            vec![(
                1,
                DeliveryOutcome::Retry {
                    at: now.plus(Duration::from_secs(4)),
                    error: "provider: the provider is unavailable: 503".into()
                }
            )]
        );
        assert_eq!(dispatcher.backoff(1), Duration::from_secs(1));
        assert_eq!(dispatcher.backoff(30), Duration::from_secs(60), "capped at retry_max");
    });
}

#[test]
fn an_expired_code_is_dropped_not_sent() {
    block_on(async {
        let world = World::new();
        let finished = Arc::default();
        let mut sms = MockSmsSender::new();
        sms.expect_send_queued_sms().never();
        let messages = vec![sms_message(&world, Duration::from_secs(300))];
        world.advance(Duration::from_secs(300));
        let dispatcher = dispatcher(&world, outbox(messages, Arc::clone(&finished)), sms);
        let report = dispatcher.dispatch_due().await.unwrap();
        assert_eq!(report.dropped, 1);
        assert!(matches!(finished.lock().unwrap()[0].1, DeliveryOutcome::Dropped { .. }));
    });
}

#[test]
fn a_retry_that_would_come_after_expiry_drops_the_message() {
    block_on(async {
        let world = World::new();
        let finished = Arc::default();
        let mut sms = MockSmsSender::new();
        sms.expect_send_queued_sms()
            .returning(|_, _| Err(DeliveryError::Unavailable("503".into())));
        let messages = vec![sms_message(&world, Duration::from_secs(3))];
        let dispatcher = dispatcher(&world, outbox(messages, Arc::clone(&finished)), sms);
        dispatcher.dispatch_due().await.unwrap();
        assert!(matches!(finished.lock().unwrap()[0].1, DeliveryOutcome::Dropped { .. }));
    });
}

/// Records what the dispatcher counts.
#[derive(Debug, Default)]
struct Recorded(Mutex<Vec<(&'static str, &'static str, &'static str)>>);

impl Metrics for Recorded {
    fn delivery(&self, purpose: &'static str, kind: &'static str, _: Option<&'static str>, outcome: &'static str) {
        self.0.lock().unwrap().push((purpose, kind, outcome));
    }

    fn code_check(&self, _: &'static str, _: &'static str) {}

    fn provider_call(&self, _: &'static str, _: &'static str, _: Duration, _: &'static str) {}

    fn provider_error_code(&self, _: &'static str, _: &'static str, _: &str) {}
}

#[test]
fn every_attempt_is_counted_by_purpose_kind_and_outcome() {
    block_on(async {
        let world = World::new();
        let finished = Arc::default();
        let mut sms = MockSmsSender::new();
        let mut calls = 0;
        sms.expect_send_queued_sms().times(2).returning(move |_, _| {
            calls += 1;
            if calls == 1 {
                Ok(None)
            } else {
                Err(DeliveryError::Unavailable("503".into()))
            }
        });
        let messages = vec![
            sms_message(&world, Duration::from_secs(300)),
            sms_message(&world, Duration::from_secs(300)),
        ];
        let recorded = Arc::new(Recorded::default());
        let dispatcher =
            dispatcher(&world, outbox(messages, Arc::clone(&finished)), sms).with_metrics(recorded.clone());
        dispatcher.dispatch_due().await.unwrap();
        assert_eq!(
            *recorded.0.lock().unwrap(),
            vec![("pin_auth", "sms", "sent"), ("pin_auth", "sms", "retry")]
        );
    });
}

#[test]
fn a_number_the_provider_refuses_fails_for_good() {
    block_on(async {
        let world = World::new();
        let finished = Arc::default();
        let mut sms = MockSmsSender::new();
        sms.expect_send_queued_sms()
            .times(1)
            .returning(|_, _| Err(DeliveryError::InvalidNumber));
        let messages = vec![sms_message(&world, Duration::from_secs(300))];
        let dispatcher = dispatcher(&world, outbox(messages, Arc::clone(&finished)), sms);
        let report = dispatcher.dispatch_due().await.unwrap();
        assert_eq!(report.failed, 1);
        assert!(matches!(finished.lock().unwrap()[0].1, DeliveryOutcome::Failed { .. }));
    });
}

/// A Verify start for a number, carrying phonegate's own code as the
/// fallback text, and a hosted messenger falling back to `sms`.
fn hosted_with_fallback(
    world: &World,
    start: Result<(), DeliveryError>,
    sms: MockSmsSender,
) -> (OutboxMessage, Messenger) {
    let now = Timestamp::from_unix_millis(*world.now.lock().unwrap());
    let message = OutboxMessage {
        envelope: Envelope::Hosted {
            to: PhoneNumber::parse_e164("+14155550100").unwrap(),
            channel: crate::otp::Channel::Sms,
            locale: "en".into(),
            fallback: Some(SecretString::from("Your phonegate code is 123456")),
        },
        purpose: "phone_verify",
        created_at: now,
        not_after: now.plus(Duration::from_secs(300)),
    };
    let mut verify = crate::ports::MockHostedVerification::new();
    verify.expect_start().times(1).return_once(move |_, _, _| start);
    let messenger = Messenger::hosted(Arc::new(verify), "en".into(), "phonegate".into()).with_local_fallback(
        crate::delivery::routes::Routes::single("twilio", Arc::new(sms) as Arc<dyn crate::ports::SmsSender>),
        crate::delivery::routes::Routes::new(Vec::new(), Vec::new()),
    );
    (message, messenger)
}

#[test]
fn a_verify_outage_sends_phonegates_own_code_instead() {
    block_on(async {
        use secrecy::ExposeSecret as _;
        let world = World::new();
        let mut sms = MockSmsSender::new();
        sms.expect_send_queued_sms()
            .times(1)
            .withf(|message, _| message.body.expose_secret() == "Your phonegate code is 123456")
            .returning(|_, _| Ok(None));
        let (message, messenger) =
            hosted_with_fallback(&world, Err(DeliveryError::Unavailable("http 503".into())), sms);
        let finished: Arc<Mutex<Vec<(i64, DeliveryOutcome)>>> = Arc::default();
        let mut outbox = outbox(vec![message], Arc::clone(&finished));
        // Recorded before the text goes out, so a quick check of the
        // code already compares it locally.
        outbox
            .expect_reissue_locally()
            .times(1)
            .withf(|id, lease, envelope| (*id, *lease, envelope.kind()) == (1, 77, "sms"))
            .returning(|_, _, _| Ok(true));
        let dispatcher = Dispatcher::new(
            Arc::new(outbox),
            messenger,
            Arc::new(MockMailer::new()),
            Arc::new(clock(&world)),
            DispatchSettings::default(),
        );
        assert_eq!(
            dispatcher.deliverable_kinds(),
            ["hosted_sms", "hosted_call", "hosted_whatsapp", "sms", "mail"]
        );
        let report = dispatcher.dispatch_due().await.unwrap();
        assert_eq!(report.sent, 1);
        assert_eq!(*finished.lock().unwrap(), vec![(1, DeliveryOutcome::Sent)]);
    });
}

#[test]
fn a_number_verify_refuses_gets_no_fallback() {
    block_on(async {
        let world = World::new();
        let mut sms = MockSmsSender::new();
        sms.expect_send_queued_sms().never();
        let (message, messenger) = hosted_with_fallback(&world, Err(DeliveryError::InvalidNumber), sms);
        let finished: Arc<Mutex<Vec<(i64, DeliveryOutcome)>>> = Arc::default();
        let mut outbox = outbox(vec![message], Arc::clone(&finished));
        outbox.expect_reissue_locally().never();
        let dispatcher = Dispatcher::new(
            Arc::new(outbox),
            messenger,
            Arc::new(MockMailer::new()),
            Arc::new(clock(&world)),
            DispatchSettings::default(),
        );
        assert_eq!(dispatcher.dispatch_due().await.unwrap().failed, 1);
    });
}
