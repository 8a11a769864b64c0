#![allow(clippy::unwrap_used, reason = "tests")]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use pollster::block_on;
use secrecy::SecretString;

use crate::{
    delivery::{
        Messenger,
        breaker::BreakerSettings,
        routes::{Hop, RoutePrefix, Routes},
    },
    outbox::Envelope,
    phone::PhoneNumber,
    ports::{DeliveryError, MessageRef, Metrics, MockSmsSender, MockVoiceCaller, OutgoingSms, SmsSender, VoiceCaller},
    time::Timestamp,
};

const QUEUED: MessageRef = MessageRef {
    id: 7,
    purpose: "pin_auth",
};

fn text(to: &str) -> Envelope {
    Envelope::Sms(OutgoingSms {
        to: PhoneNumber::parse_e164(to).unwrap(),
        body: SecretString::from("Your phonegate code is 123456"),
    })
}

/// A sender answering `answers` in turn (the last one from then on),
/// counting its calls.
fn sender(answers: Vec<Result<(), DeliveryError>>, calls: &Arc<Mutex<u32>>) -> Arc<dyn SmsSender> {
    let mut mock = MockSmsSender::new();
    let calls = Arc::clone(calls);
    mock.expect_send_queued_sms().returning(move |_, queued| {
        assert_eq!(queued, QUEUED, "every provider gets the same outbox message");
        let mut calls = calls.lock().unwrap();
        *calls += 1;
        let index = (*calls as usize - 1).min(answers.len() - 1);
        answers[index].clone().map(|()| None)
    });
    Arc::new(mock)
}

fn no_calls() -> Routes<dyn VoiceCaller> {
    Routes::new(Vec::new(), Vec::<Hop<dyn VoiceCaller>>::new())
}

/// Records failovers and circuit changes.
#[derive(Debug, Default)]
struct Recorded {
    failovers: Mutex<Vec<(&'static str, &'static str)>>,
    circuits: Mutex<Vec<(&'static str, &'static str, bool)>>,
}

impl Metrics for Recorded {
    fn delivery(&self, _: &'static str, _: &'static str, _: Option<&'static str>, _: &'static str) {}
    fn code_check(&self, _: &'static str, _: &'static str) {}
    fn provider_call(&self, _: &'static str, _: &'static str, _: Duration, _: &'static str) {}
    fn provider_error_code(&self, _: &'static str, _: &'static str, _: &str) {}
    fn failover(&self, from: &'static str, to: &'static str) {
        self.failovers.lock().unwrap().push((from, to));
    }
    fn provider_circuit(&self, provider: &'static str, channel: &'static str, open: bool) {
        self.circuits.lock().unwrap().push((provider, channel, open));
    }
}

fn messenger(primary: Arc<dyn SmsSender>, secondary: Arc<dyn SmsSender>, metrics: &Arc<Recorded>) -> Messenger {
    let route = vec![
        Hop {
            provider: "primary",
            client: primary,
        },
        Hop {
            provider: "secondary",
            client: secondary,
        },
    ];
    Messenger::routed(Routes::new(Vec::new(), route), no_calls(), "phonegate".into())
        .with_breaker(BreakerSettings {
            failures: 2,
            cool_off: Duration::from_secs(30),
        })
        .with_metrics(metrics.clone())
}

const NOW: Timestamp = Timestamp::from_unix_millis(1_700_000_000_000);

#[test]
fn an_outage_moves_the_message_to_the_next_provider_at_once() {
    block_on(async {
        let (first, second) = (Arc::default(), Arc::default());
        let metrics = Arc::new(Recorded::default());
        let messenger = messenger(
            sender(vec![Err(DeliveryError::Unavailable("http 503".into()))], &first),
            sender(vec![Ok(())], &second),
            &metrics,
        );
        let delivery = messenger.deliver(&text("+14155550100"), QUEUED, NOW).await;
        assert!(delivery.result.is_ok());
        assert_eq!((*first.lock().unwrap(), *second.lock().unwrap()), (1, 1), "sent once");
        assert_eq!(delivery.last_provider(), Some("secondary"));
        assert_eq!(
            delivery.errors(),
            "primary: the provider is unavailable: http 503",
            "the outbox learns which provider failed and how"
        );
        assert_eq!(*metrics.failovers.lock().unwrap(), [("primary", "secondary")]);
    });
}

#[test]
fn a_number_the_provider_refuses_is_not_tried_elsewhere() {
    block_on(async {
        let (first, second) = (Arc::default(), Arc::default());
        let metrics = Arc::new(Recorded::default());
        let messenger = messenger(
            sender(vec![Err(DeliveryError::InvalidNumber)], &first),
            sender(vec![Ok(())], &second),
            &metrics,
        );
        let delivery = messenger.deliver(&text("+14155550100"), QUEUED, NOW).await;
        assert!(matches!(delivery.result, Err(DeliveryError::InvalidNumber)));
        assert_eq!((*first.lock().unwrap(), *second.lock().unwrap()), (1, 0));
        assert!(metrics.failovers.lock().unwrap().is_empty());
    });
}

#[test]
fn a_failing_provider_is_skipped_while_its_circuit_is_open_then_tried_again() {
    block_on(async {
        let (first, second) = (Arc::default(), Arc::default());
        let metrics = Arc::new(Recorded::default());
        let messenger = messenger(
            sender(
                vec![
                    Err(DeliveryError::Unavailable("timeout".into())),
                    Err(DeliveryError::Unavailable("timeout".into())),
                    Ok(()),
                ],
                &first,
            ),
            sender(vec![Ok(())], &second),
            &metrics,
        );
        for _ in 0..2 {
            assert!(
                messenger
                    .deliver(&text("+14155550100"), QUEUED, NOW)
                    .await
                    .result
                    .is_ok()
            );
        }
        assert_eq!(
            *metrics.circuits.lock().unwrap(),
            [("primary", "sms", true)],
            "opened after 2 failures"
        );
        assert!(messenger.circuit_open("primary", "sms", NOW));
        // While open, the route starts with the secondary.
        let skipped = messenger
            .deliver(&text("+14155550100"), QUEUED, NOW.plus(Duration::from_secs(29)))
            .await;
        assert_eq!(skipped.attempts.len(), 1);
        assert_eq!(skipped.last_provider(), Some("secondary"));
        assert_eq!(*first.lock().unwrap(), 2, "the open circuit was not tried");
        // After the cool-off one message tries the primary, which answers.
        let later = NOW.plus(Duration::from_secs(30));
        let tried = messenger.deliver(&text("+14155550100"), QUEUED, later).await;
        assert_eq!(tried.last_provider(), Some("primary"));
        assert_eq!(
            *metrics.circuits.lock().unwrap(),
            [("primary", "sms", true), ("primary", "sms", false)]
        );
        assert!(!messenger.circuit_open("primary", "sms", later));
    });
}

#[test]
fn a_route_whose_circuits_are_all_open_still_tries_them_all() {
    block_on(async {
        let (first, second) = (Arc::default(), Arc::default());
        let metrics = Arc::new(Recorded::default());
        let down = || vec![Err(DeliveryError::Unavailable("http 500".into()))];
        let messenger = messenger(sender(down(), &first), sender(down(), &second), &metrics);
        for _ in 0..3 {
            let delivery = messenger.deliver(&text("+14155550100"), QUEUED, NOW).await;
            assert!(matches!(delivery.result, Err(DeliveryError::Unavailable(_))));
            assert_eq!(delivery.attempts.len(), 2);
        }
        assert_eq!((*first.lock().unwrap(), *second.lock().unwrap()), (3, 3));
    });
}

#[test]
fn numbers_take_the_route_of_their_longest_prefix() {
    block_on(async {
        let (uk, default) = (Arc::default(), Arc::default());
        let routes = Routes::new(
            vec![(
                RoutePrefix::parse("+44").unwrap(),
                vec![Hop {
                    provider: "vonage",
                    client: sender(vec![Ok(())], &uk),
                }],
            )],
            vec![Hop {
                provider: "twilio",
                client: sender(vec![Ok(())], &default),
            }],
        );
        let messenger = Messenger::routed(routes, no_calls(), "phonegate".into());
        let to_uk = messenger.deliver(&text("+447700900123"), QUEUED, NOW).await;
        let to_us = messenger.deliver(&text("+14155550100"), QUEUED, NOW).await;
        assert_eq!(
            (to_uk.last_provider(), to_us.last_provider()),
            (Some("vonage"), Some("twilio"))
        );
        assert_eq!((*uk.lock().unwrap(), *default.lock().unwrap()), (1, 1));
        assert_eq!(
            messenger.deliverable_kinds(),
            ["sms"],
            "no voice route: calls are left to others"
        );
    });
}

#[test]
fn a_messenger_with_only_a_voice_route_claims_only_calls() {
    let mut caller = MockVoiceCaller::new();
    caller.expect_place_queued_call().times(0);
    let messenger = Messenger::routed(
        Routes::new(Vec::new(), Vec::<Hop<dyn SmsSender>>::new()),
        Routes::single("twilio", Arc::new(caller) as Arc<dyn VoiceCaller>),
        "phonegate".into(),
    );
    assert_eq!(messenger.deliverable_kinds(), ["call"]);
}
