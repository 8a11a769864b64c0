//! WhatsApp through Twilio: Messages with `whatsapp:` addresses, Verify
//! with `Channel=whatsapp`, and Twilio's "not a WhatsApp user" errors
//! told apart from an invalid number, so the dispatcher can send an SMS.

use phonegate_adapters::twilio::TwilioClient;
use phonegate_domain::{
    otp::Channel,
    ports::{DeliveryError, HostedVerification as _, MessageRef, WhatsAppSender as _},
};
use wiremock::MockServer;

use super::{
    MESSAGING_SERVICE_SID, SMS_BODY, TO, assert_requests, created, messages_path, mount, phone, settings, sms,
    twilio_error, verification_created, verifications_path,
};

const WHATSAPP_FROM: &str = "+14155238886";
const QUEUED: MessageRef = MessageRef {
    id: 42,
    purpose: "pin_auth",
};

fn whatsapp_client(server: &MockServer) -> TwilioClient {
    let mut settings = settings(server);
    settings.whatsapp_from = Some(WHATSAPP_FROM.to_owned());
    TwilioClient::new(settings).unwrap()
}

#[tokio::test]
async fn a_whatsapp_message_has_whatsapp_addresses_and_the_text() {
    let server = MockServer::start().await;
    mount(&server, &messages_path(), created()).await;

    let sid = whatsapp_client(&server).send_whatsapp(&sms(), QUEUED).await.unwrap();

    assert_eq!(sid.unwrap().as_str(), "SM0123456789abcdef0123456789abcdef");
    let to = format!("whatsapp:{TO}");
    let from = format!("whatsapp:{WHATSAPP_FROM}");
    assert_requests(
        &server,
        1,
        &messages_path(),
        &[("To", &to), ("From", &from), ("Body", SMS_BODY)],
    )
    .await;
}

#[tokio::test]
async fn without_a_whatsapp_sender_a_messaging_service_sends_it() {
    let server = MockServer::start().await;
    mount(&server, &messages_path(), created()).await;
    let mut settings = settings(&server);
    settings.messaging_service_sid = Some(MESSAGING_SERVICE_SID.to_owned());

    TwilioClient::new(settings)
        .unwrap()
        .send_whatsapp(&sms(), QUEUED)
        .await
        .unwrap();

    let to = format!("whatsapp:{TO}");
    assert_requests(
        &server,
        1,
        &messages_path(),
        &[
            ("To", &to),
            ("MessagingServiceSid", MESSAGING_SERVICE_SID),
            ("Body", SMS_BODY),
        ],
    )
    .await;
}

#[tokio::test]
async fn without_any_whatsapp_sender_nothing_is_sent() {
    let server = MockServer::start().await;
    mount(&server, &messages_path(), created()).await;
    let client = TwilioClient::new(settings(&server)).unwrap();

    assert!(!client.sends_whatsapp());
    let error = client.send_whatsapp(&sms(), QUEUED).await.unwrap_err();

    assert!(matches!(error, DeliveryError::Misconfigured(_)), "{error:?}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_number_that_is_not_a_whatsapp_user_is_not_on_the_channel() {
    let server = MockServer::start().await;
    // Twilio's documented answer when WhatsApp has no account for `To`.
    mount(
        &server,
        &messages_path(),
        twilio_error(400, 63003, "Channel could not find To address"),
    )
    .await;

    let error = whatsapp_client(&server)
        .send_whatsapp(&sms(), QUEUED)
        .await
        .unwrap_err();

    assert!(matches!(error, DeliveryError::NotOnChannel), "{error:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "not retried");
}

#[tokio::test]
async fn verify_start_by_whatsapp() {
    let server = MockServer::start().await;
    mount(&server, &verifications_path(), verification_created()).await;

    whatsapp_client(&server)
        .start(&phone(), Channel::WhatsApp, "en")
        .await
        .unwrap();

    assert_requests(
        &server,
        1,
        &verifications_path(),
        &[("To", TO), ("Channel", "whatsapp"), ("Locale", "en")],
    )
    .await;
}

#[tokio::test]
async fn verify_refusing_whatsapp_for_the_number_is_not_on_the_channel() {
    let server = MockServer::start().await;
    mount(
        &server,
        &verifications_path(),
        twilio_error(400, 63024, "Invalid message recipient"),
    )
    .await;

    let error = whatsapp_client(&server)
        .start(&phone(), Channel::WhatsApp, "en")
        .await
        .unwrap_err();

    assert!(matches!(error, DeliveryError::NotOnChannel), "{error:?}");
}
