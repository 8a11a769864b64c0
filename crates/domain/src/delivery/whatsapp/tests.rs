#![allow(clippy::unwrap_used, reason = "tests")]

use std::sync::Arc;

use pollster::block_on;
use secrecy::ExposeSecret as _;

use crate::{
    delivery::{
        Messenger,
        routes::{Hop, Routes},
    },
    otp::{Channel, CodeLength, IssuedCode, OtpCode, Purpose, SecretHash},
    outbox::{Envelope, Outgoing},
    phone::PhoneNumber,
    ports::{
        DeliveryError, MessageRef, MockHostedVerification, MockSmsSender, MockWhatsAppSender, OutgoingSms, SmsSender,
        VoiceCaller, WhatsAppSender,
    },
    time::Timestamp,
};

const NOW: Timestamp = Timestamp::from_unix_millis(1_700_000_000_000);
const QUEUED: MessageRef = MessageRef {
    id: 7,
    purpose: "pin_auth",
};

fn phone() -> PhoneNumber {
    PhoneNumber::parse_e164("+5511987654321").unwrap()
}

fn issued(purpose: Purpose) -> IssuedCode {
    IssuedCode {
        purpose,
        code: OtpCode::parse("4821", CodeLength::new(4).unwrap()).unwrap(),
        expires_at: NOW.plus(std::time::Duration::from_secs(600)),
        test_number: false,
        lookup_hash: SecretHash::from_bytes(vec![1; 32]),
    }
}

fn envelope(messenger: &Messenger, purpose: Purpose, channel: Channel) -> Envelope {
    match messenger.compose(&phone(), channel, &issued(purpose), NOW) {
        Outgoing::Message(message) => message.envelope,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn whatsapp_routes(hops: Vec<(&'static str, Arc<dyn WhatsAppSender>)>) -> Routes<dyn WhatsAppSender> {
    let hops = hops
        .into_iter()
        .map(|(provider, client)| Hop { provider, client })
        .collect();
    Routes::new(Vec::new(), hops)
}

fn no_calls() -> Routes<dyn VoiceCaller> {
    Routes::new(Vec::new(), Vec::new())
}

/// A local messenger whose pin-auth texts go by WhatsApp through `whatsapp`.
fn local(sms: MockSmsSender, whatsapp: Routes<dyn WhatsAppSender>) -> Messenger {
    let sms: Arc<dyn SmsSender> = Arc::new(sms);
    Messenger::routed(Routes::single("twilio", sms), no_calls(), "Acme".into())
        .with_whatsapp(whatsapp, [Purpose::PinAuth])
}

#[test]
fn a_whatsapp_surface_sends_its_texts_by_whatsapp_with_the_same_words() {
    let messenger = local(MockSmsSender::new(), whatsapp_routes(Vec::new()));
    let Envelope::WhatsApp(message) = envelope(&messenger, Purpose::PinAuth, Channel::Sms) else {
        panic!("pin-auth's texts go by WhatsApp");
    };
    assert_eq!(message.to, phone());
    assert_eq!(message.body.expose_secret(), "Your Acme code is 4821");
    let Envelope::Sms(text) = envelope(&messenger, Purpose::PhoneVerify, Channel::Sms) else {
        panic!("the other surfaces keep SMS");
    };
    assert_eq!(text.body.expose_secret(), message.body.expose_secret());
    assert_eq!(envelope(&messenger, Purpose::PinAuth, Channel::Call).kind(), "call");
}

#[test]
fn a_hosted_whatsapp_surface_asks_verify_for_whatsapp() {
    let messenger = Messenger::hosted(Arc::new(MockHostedVerification::new()), "en".into(), "Acme".into())
        .with_local_fallback(
            Routes::single("twilio", Arc::new(MockSmsSender::new()) as Arc<dyn SmsSender>),
            no_calls(),
        )
        .with_whatsapp(whatsapp_routes(Vec::new()), [Purpose::PinAuth]);
    let hosted = envelope(&messenger, Purpose::PinAuth, Channel::Sms);
    assert_eq!(hosted.kind(), "hosted_whatsapp");
    let Envelope::Hosted {
        fallback: Some(text), ..
    } = &hosted
    else {
        panic!("a hosted envelope with phonegate's own text as its fallback");
    };
    assert_eq!(text.expose_secret(), "Your Acme code is 4821");
    assert_eq!(
        envelope(&messenger, Purpose::PhoneLogin, Channel::Sms).kind(),
        "hosted_sms"
    );
    assert!(messenger.deliverable_kinds().contains(&"hosted_whatsapp"));
}

#[test]
fn whatsapp_messages_go_to_the_whatsapp_route_only() {
    block_on(async {
        let mut sms = MockSmsSender::new();
        sms.expect_send_queued_sms().never();
        let mut whatsapp = MockWhatsAppSender::new();
        whatsapp
            .expect_send_whatsapp()
            .times(1)
            .withf(|message, queued| message.body.expose_secret() == "Your Acme code is 4821" && *queued == QUEUED)
            .returning(|_, _| Ok(None));
        let messenger = local(sms, whatsapp_routes(vec![("twilio", Arc::new(whatsapp))]));
        assert_eq!(messenger.deliverable_kinds(), ["sms", "whatsapp"]);
        let message = envelope(&messenger, Purpose::PinAuth, Channel::Sms);
        let delivery = messenger.deliver(&message, QUEUED, NOW).await;
        assert!(delivery.result.is_ok());
        assert_eq!(delivery.last_provider(), Some("twilio"));
    });
}

#[test]
fn a_number_without_whatsapp_is_not_tried_on_another_whatsapp_provider() {
    block_on(async {
        let mut first = MockWhatsAppSender::new();
        first
            .expect_send_whatsapp()
            .times(1)
            .returning(|_, _| Err(DeliveryError::NotOnChannel));
        let mut second = MockWhatsAppSender::new();
        second.expect_send_whatsapp().never();
        let routes = whatsapp_routes(vec![("twilio", Arc::new(first)), ("http", Arc::new(second))]);
        let messenger = local(MockSmsSender::new(), routes);
        let message = envelope(&messenger, Purpose::PinAuth, Channel::Sms);
        let delivery = messenger.deliver(&message, QUEUED, NOW).await;
        assert!(matches!(delivery.result, Err(DeliveryError::NotOnChannel)));
    });
}

#[test]
fn only_a_refusal_of_the_number_on_whatsapp_falls_back_to_sms() {
    let messenger = local(MockSmsSender::new(), whatsapp_routes(Vec::new()));
    let message = envelope(&messenger, Purpose::PinAuth, Channel::Sms);
    let Some(Envelope::Sms(text)) = messenger.sms_fallback(&message, &DeliveryError::NotOnChannel) else {
        panic!("a number without WhatsApp gets the same code by SMS");
    };
    assert_eq!(
        (text.to.clone(), text.body.expose_secret()),
        (phone(), "Your Acme code is 4821")
    );
    assert!(
        messenger
            .sms_fallback(&message, &DeliveryError::Rejected("twilio 63016".into()))
            .is_some()
    );
    for kept in [
        DeliveryError::InvalidNumber,
        DeliveryError::Unavailable("http 503".into()),
        DeliveryError::RateLimited { retry_after: None },
        DeliveryError::Misconfigured("twilio 20003".into()),
    ] {
        assert!(messenger.sms_fallback(&message, &kept).is_none(), "{kept:?}");
    }
    let text = envelope(&messenger, Purpose::PhoneVerify, Channel::Sms);
    assert!(messenger.sms_fallback(&text, &DeliveryError::NotOnChannel).is_none());
}

#[test]
fn no_sms_route_means_no_fallback() {
    let messenger = Messenger::routed(
        Routes::new(Vec::new(), Vec::<Hop<dyn SmsSender>>::new()),
        no_calls(),
        "Acme".into(),
    )
    .with_whatsapp(whatsapp_routes(Vec::new()), [Purpose::PinAuth]);
    let message = Envelope::WhatsApp(OutgoingSms {
        to: phone(),
        body: "Your Acme code is 4821".to_owned().into(),
    });
    assert!(messenger.sms_fallback(&message, &DeliveryError::NotOnChannel).is_none());
}

#[test]
fn sms_instead_keeps_the_code_and_the_recipient() {
    let hosted = Envelope::Hosted {
        to: phone(),
        channel: Channel::WhatsApp,
        locale: "pt-BR".into(),
        fallback: Some("Your Acme code is 4821".to_owned().into()),
    };
    let Some(Envelope::Hosted {
        to,
        channel: Channel::Sms,
        locale,
        fallback: Some(text),
    }) = Messenger::sms_instead(&hosted)
    else {
        panic!("a hosted WhatsApp start becomes a hosted SMS start");
    };
    assert_eq!(
        (to, locale.as_str(), text.expose_secret()),
        (phone(), "pt-BR", "Your Acme code is 4821")
    );
    let sms = Envelope::Sms(OutgoingSms {
        to: phone(),
        body: "x".to_owned().into(),
    });
    assert!(Messenger::sms_instead(&sms).is_none());
}
