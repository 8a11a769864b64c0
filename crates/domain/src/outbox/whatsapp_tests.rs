//! The dispatcher's WhatsApp fallback: a number that is not a WhatsApp
//! user gets the same code by SMS, in the same dispatch, after the row has
//! become the SMS.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::sync::Mutex;

use pollster::block_on;
use secrecy::{ExposeSecret as _, SecretString};

use super::*;
use crate::{
    delivery::routes::Routes,
    otp::{Channel, Purpose},
    phone::PhoneNumber,
    ports::{
        Metrics, MockHostedVerification, MockMailer, MockSmsSender, MockVoiceCaller, MockWhatsAppSender, OutgoingSms,
        SmsSender, WhatsAppSender,
    },
    test_support::{World, clock},
    time::Timestamp,
};

const BODY: &str = "Your phonegate code is 4821";

fn message(world: &World, envelope: Envelope) -> OutboxMessage {
    let now = Timestamp::from_unix_millis(*world.now.lock().unwrap());
    OutboxMessage {
        envelope,
        purpose: "pin_auth",
        created_at: now,
        not_after: now.plus(Duration::from_secs(300)),
    }
}

fn phone() -> PhoneNumber {
    PhoneNumber::parse_e164("+5511987654321").unwrap()
}

fn whatsapp_message(world: &World) -> OutboxMessage {
    message(
        world,
        Envelope::WhatsApp(OutgoingSms {
            to: phone(),
            body: SecretString::from(BODY),
        }),
    )
}

/// Counts the fallbacks.
#[derive(Debug, Default)]
struct Fallbacks(Mutex<Vec<(&'static str, &'static str)>>);

impl Metrics for Fallbacks {
    fn delivery(&self, _: &'static str, _: &'static str, _: Option<&'static str>, _: &'static str) {}
    fn code_check(&self, _: &'static str, _: &'static str) {}
    fn provider_call(&self, _: &'static str, _: &'static str, _: Duration, _: &'static str) {}
    fn provider_error_code(&self, _: &'static str, _: &'static str, _: &str) {}
    fn channel_fallback(&self, from: &'static str, to: &'static str) {
        self.0.lock().unwrap().push((from, to));
    }
}

/// An outbox handing out `messages` under lease 77 and recording how
/// each ended; `switched` says what `switch_channel` answers (`None`:
/// it must not be called).
fn outbox(
    messages: Vec<OutboxMessage>,
    switched: Option<Result<bool, StoreError>>,
    finished: &Arc<Mutex<Vec<DeliveryOutcome>>>,
    order: &Arc<Mutex<Vec<&'static str>>>,
) -> MockOutboxStore {
    let mut outbox = MockOutboxStore::new();
    let queue = Mutex::new(messages);
    outbox.expect_claim_due().returning(move |_, _, _, _| {
        Ok(queue
            .lock()
            .unwrap()
            .drain(..)
            .map(|message| ClaimedMessage {
                id: 1,
                lease: 77,
                attempts: 1,
                message,
                avoid: None,
            })
            .collect())
    });
    match switched {
        Some(answer) => {
            let order = Arc::clone(order);
            outbox
                .expect_switch_channel()
                .times(1)
                .return_once(move |id, lease, envelope| {
                    assert_eq!((id, lease), (1, 77));
                    order.lock().unwrap().push(envelope.kind());
                    answer
                });
        }
        None => {
            outbox.expect_switch_channel().never();
        }
    }
    outbox.expect_reissue_locally().never();
    let finished = Arc::clone(finished);
    outbox.expect_finish().returning(move |_, _, outcome, _, _| {
        finished.lock().unwrap().push(outcome);
        Ok(())
    });
    outbox
}

fn dispatcher(
    world: &Arc<World>,
    outbox: MockOutboxStore,
    messenger: Messenger,
    metrics: &Arc<Fallbacks>,
) -> Dispatcher {
    Dispatcher::new(
        Arc::new(outbox),
        messenger,
        Arc::new(MockMailer::new()),
        Arc::new(clock(world)),
        DispatchSettings::default(),
    )
    .with_metrics(metrics.clone())
}

/// A local messenger: texts through `sms`, WhatsApp through `whatsapp`.
fn local(sms: MockSmsSender, whatsapp: MockWhatsAppSender) -> Messenger {
    Messenger::routed(
        Routes::single("twilio", Arc::new(sms) as Arc<dyn SmsSender>),
        Routes::single(
            "twilio",
            Arc::new(MockVoiceCaller::new()) as Arc<dyn crate::ports::VoiceCaller>,
        ),
        "phonegate".into(),
    )
    .with_whatsapp(
        Routes::single("twilio", Arc::new(whatsapp) as Arc<dyn WhatsAppSender>),
        [Purpose::PinAuth],
    )
}

#[test]
fn a_number_without_whatsapp_gets_the_same_code_by_sms_at_once() {
    block_on(async {
        let world = World::new();
        let order: Arc<Mutex<Vec<&'static str>>> = Arc::default();
        let mut whatsapp = MockWhatsAppSender::new();
        whatsapp
            .expect_send_whatsapp()
            .times(1)
            .returning(|_, _| Err(DeliveryError::NotOnChannel));
        let mut sms = MockSmsSender::new();
        let sent = Arc::clone(&order);
        sms.expect_send_queued_sms()
            .times(1)
            .withf(|message, _| message.to == phone() && message.body.expose_secret() == BODY)
            .returning(move |_, _| {
                sent.lock().unwrap().push("sent");
                Ok(None)
            });
        let finished = Arc::default();
        let outbox = outbox(vec![whatsapp_message(&world)], Some(Ok(true)), &finished, &order);
        let metrics = Arc::new(Fallbacks::default());
        let dispatcher = dispatcher(&world, outbox, local(sms, whatsapp), &metrics);
        let report = dispatcher.dispatch_due().await.unwrap();
        assert_eq!(report.sent, 1);
        assert_eq!(*finished.lock().unwrap(), vec![DeliveryOutcome::Sent]);
        assert_eq!(
            *order.lock().unwrap(),
            ["sms", "sent"],
            "the row becomes the SMS before it is sent"
        );
        assert_eq!(*metrics.0.lock().unwrap(), [("whatsapp", "sms")]);
    });
}

#[test]
fn a_whatsapp_outage_keeps_the_message_on_whatsapp() {
    block_on(async {
        let world = World::new();
        let mut whatsapp = MockWhatsAppSender::new();
        whatsapp
            .expect_send_whatsapp()
            .times(1)
            .returning(|_, _| Err(DeliveryError::Unavailable("http 503".into())));
        let mut sms = MockSmsSender::new();
        sms.expect_send_queued_sms().never();
        let finished = Arc::default();
        let outbox = outbox(vec![whatsapp_message(&world)], None, &finished, &Arc::default());
        let metrics = Arc::new(Fallbacks::default());
        let dispatcher = dispatcher(&world, outbox, local(sms, whatsapp), &metrics);
        assert_eq!(dispatcher.dispatch_due().await.unwrap().retried, 1);
        assert!(metrics.0.lock().unwrap().is_empty());
    });
}

#[test]
fn a_failed_switch_retries_instead_of_failing_the_code() {
    block_on(async {
        let world = World::new();
        let mut whatsapp = MockWhatsAppSender::new();
        whatsapp
            .expect_send_whatsapp()
            .returning(|_, _| Err(DeliveryError::NotOnChannel));
        let mut sms = MockSmsSender::new();
        sms.expect_send_queued_sms().never();
        let finished: Arc<Mutex<Vec<DeliveryOutcome>>> = Arc::default();
        let down = Err(StoreError::new("switch_channel", "the database is down"));
        let outbox = outbox(vec![whatsapp_message(&world)], Some(down), &finished, &Arc::default());
        let metrics = Arc::new(Fallbacks::default());
        let dispatcher = dispatcher(&world, outbox, local(sms, whatsapp), &metrics);
        assert_eq!(dispatcher.dispatch_due().await.unwrap().retried, 1);
        assert!(matches!(finished.lock().unwrap()[0], DeliveryOutcome::Retry { .. }));
    });
}

#[test]
fn verify_by_whatsapp_falls_back_to_verify_by_sms() {
    block_on(async {
        let world = World::new();
        let channels: Arc<Mutex<Vec<Channel>>> = Arc::default();
        let mut verify = MockHostedVerification::new();
        let seen = Arc::clone(&channels);
        verify.expect_start().times(2).returning(move |to, channel, locale| {
            assert_eq!((to, locale), (&phone(), "en"));
            seen.lock().unwrap().push(channel);
            match channel {
                Channel::WhatsApp => Err(DeliveryError::NotOnChannel),
                _ => Ok(()),
            }
        });
        let messenger = Messenger::hosted(Arc::new(verify), "en".into(), "phonegate".into())
            .with_whatsapp(Routes::new(Vec::new(), Vec::new()), [Purpose::PinAuth]);
        let hosted = Envelope::Hosted {
            to: phone(),
            channel: Channel::WhatsApp,
            locale: "en".into(),
            fallback: None,
        };
        let finished = Arc::default();
        let order = Arc::default();
        let outbox = outbox(vec![message(&world, hosted)], Some(Ok(true)), &finished, &order);
        let metrics = Arc::new(Fallbacks::default());
        let dispatcher = dispatcher(&world, outbox, messenger, &metrics);
        assert_eq!(dispatcher.dispatch_due().await.unwrap().sent, 1);
        assert_eq!(*channels.lock().unwrap(), [Channel::WhatsApp, Channel::Sms]);
        assert_eq!(*order.lock().unwrap(), ["hosted_sms"]);
    });
}
