//! The generic HTTP provider against a local receiver (wiremock) that
//! checks every request's Standard Webhooks signature with its own HMAC,
//! computed here from the raw body (not with `webhook_signature::verify`),
//! and answers 401 when it does not match. Each answer maps onto the right
//! `DeliveryError` after exactly one request.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac as _};
use phonegate_adapters::{
    http_provider::{HttpProvider, HttpProviderSettings},
    webhook_signature::{self, DEFAULT_TOLERANCE, SignatureError, SignatureHeaders, WebhookSecret},
};
use phonegate_domain::{
    phone::PhoneNumber,
    ports::{MessageRef, OutgoingCall, OutgoingSms, Sender, SmsSender, VoiceCaller},
    time::Timestamp,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::Sha256;
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{method, path},
};

mod answers;
mod receipts;
mod secrets;
mod whatsapp;

/// The receiver's key; the provider is configured with its `whsec_` form.
const KEY: &[u8] = b"an in-house gateway's 32-byte k!";
const ROUTE: &str = "/hooks/phonegate";
const TO: &str = "+14155550100";
const FROM: &str = "+15005550006";
const SMS_BODY: &str = "Your phonegate code is 482913";
const SPOKEN: &str = "Your phonegate code is 4, 8, 2, 9, 1, 3. Again, your code is 4, 8, 2, 9, 1, 3.";
const CODE: &str = "482913";
const QUEUED: MessageRef = MessageRef {
    id: 42,
    purpose: "pin_auth",
};

fn whsec(key: &[u8]) -> String {
    format!("whsec_{}", STANDARD.encode(key))
}

/// A receiver that checks the signature with `key` the way a receiver
/// written from the documentation would, and answers `answer` when it
/// matches.
struct Receiver {
    key: Vec<u8>,
    answer: ResponseTemplate,
}

fn header<'a>(request: &'a Request, name: &str) -> &'a str {
    request.headers.get(name).map_or("", |value| value.to_str().unwrap())
}

/// The independent HMAC: `base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))`.
fn expected_signature(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

fn signed_with(request: &Request, key: &[u8]) -> bool {
    let expected = expected_signature(
        key,
        header(request, "webhook-id"),
        header(request, "webhook-timestamp"),
        &request.body,
    );
    header(request, "webhook-signature")
        .split(' ')
        .any(|entry| entry.strip_prefix("v1,") == Some(expected.as_str()))
}

impl Respond for Receiver {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if signed_with(request, &self.key) {
            self.answer.clone()
        } else {
            ResponseTemplate::new(401)
        }
    }
}

async fn receiver(key: &[u8], answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(ROUTE))
        .respond_with(Receiver {
            key: key.to_vec(),
            answer,
        })
        .mount(&server)
        .await;
    server
}

fn settings(server: &MockServer) -> HttpProviderSettings {
    let mut settings = HttpProviderSettings::new(
        format!("{}{ROUTE}", server.uri()),
        WebhookSecret::parse(&whsec(KEY)).unwrap(),
    );
    settings.from = Some(Sender::Number(FROM.to_owned()));
    settings
}

fn provider(server: &MockServer) -> HttpProvider {
    HttpProvider::new(settings(server)).unwrap()
}

fn sms() -> OutgoingSms {
    OutgoingSms {
        to: PhoneNumber::parse_e164(TO).unwrap(),
        body: SecretString::from(SMS_BODY),
    }
}

fn call() -> OutgoingCall {
    OutgoingCall {
        to: PhoneNumber::parse_e164(TO).unwrap(),
        spoken_text: SecretString::from(SPOKEN),
    }
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

fn json_body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

fn unix_now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

// --- The request -------------------------------------------------------

#[tokio::test]
async fn a_queued_sms_is_a_signed_json_post_with_every_field() {
    let server = receiver(KEY, ResponseTemplate::new(202)).await;
    let mut settings = settings(&server);
    settings.locale = "pt-BR".to_owned();
    let before = unix_now();

    HttpProvider::new(settings)
        .unwrap()
        .send_queued_sms(&sms(), QUEUED)
        .await
        .unwrap();

    let after = unix_now();
    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), ROUTE);
    assert_eq!(header(request, "content-type"), "application/json");
    assert_eq!(header(request, "webhook-id"), "msg_42");
    let timestamp: i64 = header(request, "webhook-timestamp").parse().unwrap();
    assert!((before..=after).contains(&timestamp), "{timestamp}");
    assert!(signed_with(request, KEY));
    assert_eq!(
        json_body(request),
        json!({
            "id": "msg_42",
            "to": TO,
            "channel": "sms",
            "body": SMS_BODY,
            "purpose": "pin_auth",
            "locale": "pt-BR",
            "from": FROM,
        })
    );
}

#[tokio::test]
async fn a_queued_call_sends_the_spoken_text_on_the_call_channel() {
    let server = receiver(KEY, ResponseTemplate::new(200)).await;

    provider(&server)
        .place_queued_call(
            &call(),
            MessageRef {
                id: 7,
                purpose: "phone_login",
            },
        )
        .await
        .unwrap();

    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    assert_eq!(header(&received[0], "webhook-id"), "msg_7");
    assert_eq!(
        json_body(&received[0]),
        json!({
            "id": "msg_7",
            "to": TO,
            "channel": "call",
            "body": SPOKEN,
            "purpose": "phone_login",
            "locale": "en",
            "from": FROM,
        })
    );
}

#[tokio::test]
async fn from_is_omitted_without_a_sender_and_any_sender_is_passed_as_text() {
    let server = receiver(KEY, ResponseTemplate::new(200)).await;
    let mut settings = settings(&server);
    settings.from = None;
    let plain = HttpProvider::new(settings).unwrap();
    let acme = plain.clone().with_sender(Sender::Alphanumeric("Acme".to_owned()));
    let service = plain.clone().with_sender(Sender::MessagingService(
        "MG0123456789abcdef0123456789abcdef".to_owned(),
    ));

    plain.send_queued_sms(&sms(), QUEUED).await.unwrap();
    acme.send_queued_sms(&sms(), QUEUED).await.unwrap();
    service.send_queued_sms(&sms(), QUEUED).await.unwrap();
    plain.send_queued_sms(&sms(), QUEUED).await.unwrap();

    let froms: Vec<Option<Value>> = requests(&server)
        .await
        .iter()
        .map(|request| json_body(request).get("from").cloned())
        .collect();
    assert_eq!(
        froms,
        [
            None,
            Some(json!("Acme")),
            Some(json!("MG0123456789abcdef0123456789abcdef")),
            None
        ]
    );
}

#[tokio::test]
async fn plain_sends_get_a_fresh_id_and_purpose_other() {
    let server = receiver(KEY, ResponseTemplate::new(200)).await;
    let provider = provider(&server);

    provider.send_sms(&sms()).await.unwrap();
    provider.send_sms(&sms()).await.unwrap();
    provider.call(&call()).await.unwrap();

    let received = requests(&server).await;
    let ids: Vec<&str> = received.iter().map(|request| header(request, "webhook-id")).collect();
    assert_eq!(ids.len(), 3);
    for (request, id) in received.iter().zip(&ids) {
        let body = json_body(request);
        assert_eq!(body["id"], json!(id), "the body's id is the header's");
        assert_eq!(body["purpose"], json!("other"));
        assert!(id.starts_with("msg_") && id.len() > 20, "{id}");
    }
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "{ids:?}");
}

/// Receivers drop duplicates by `webhook-id`: a retry, or the next provider
/// of a route, sends the same message with the same id.
#[tokio::test]
async fn the_same_message_ref_gets_the_same_webhook_id_on_every_send() {
    let first = receiver(KEY, ResponseTemplate::new(200)).await;
    let second = receiver(KEY, ResponseTemplate::new(200)).await;

    provider(&first).send_queued_sms(&sms(), QUEUED).await.unwrap();
    provider(&first).send_queued_sms(&sms(), QUEUED).await.unwrap();
    provider(&second).send_queued_sms(&sms(), QUEUED).await.unwrap();

    let mut received = requests(&first).await;
    received.extend(requests(&second).await);
    assert_eq!(received.len(), 3);
    for request in &received {
        assert_eq!(header(request, "webhook-id"), "msg_42");
        assert_eq!(json_body(request)["id"], json!("msg_42"));
        assert!(signed_with(request, KEY));
    }
}

#[tokio::test]
async fn a_secret_without_the_prefix_signs_with_its_own_bytes() {
    let raw = "a shared secret typed by an operator";
    let server = receiver(raw.as_bytes(), ResponseTemplate::new(200)).await;
    let mut settings = settings(&server);
    settings.secret = WebhookSecret::parse(raw).unwrap();

    HttpProvider::new(settings)
        .unwrap()
        .send_queued_sms(&sms(), QUEUED)
        .await
        .unwrap();

    assert!(signed_with(&requests(&server).await[0], raw.as_bytes()));
}

// --- Verification --------------------------------------------------------

/// One request as the provider sent it, accepted by the receiver.
async fn sent_request() -> (MockServer, Request) {
    let server = receiver(KEY, ResponseTemplate::new(200)).await;
    provider(&server).send_queued_sms(&sms(), QUEUED).await.unwrap();
    let request = requests(&server).await.remove(0);
    (server, request)
}

fn verify(request: &Request, body: &[u8], now: Timestamp) -> Result<(), SignatureError> {
    let secret = WebhookSecret::parse(&whsec(KEY)).unwrap();
    let headers = SignatureHeaders {
        id: header(request, "webhook-id"),
        timestamp: header(request, "webhook-timestamp"),
        signature: header(request, "webhook-signature"),
    };
    webhook_signature::verify(&secret, headers, body, now, DEFAULT_TOLERANCE)
}

fn sent_at(request: &Request) -> Timestamp {
    let seconds: i64 = header(request, "webhook-timestamp").parse().unwrap();
    Timestamp::from_unix_millis(seconds * 1000)
}

#[tokio::test]
async fn a_tampered_body_is_refused_by_verify_and_by_the_receiver() {
    let (server, request) = sent_request().await;
    let now = sent_at(&request);
    assert_eq!(verify(&request, &request.body, now), Ok(()));
    let tampered = String::from_utf8(request.body.clone())
        .unwrap()
        .replace(TO, "+14155550199")
        .into_bytes();
    assert_ne!(tampered, request.body);

    assert_eq!(verify(&request, &tampered, now), Err(SignatureError::NoMatch));

    let mut replay = reqwest::Client::new()
        .post(format!("{}{ROUTE}", server.uri()))
        .body(tampered);
    for name in ["content-type", "webhook-id", "webhook-timestamp", "webhook-signature"] {
        replay = replay.header(name, header(&request, name));
    }
    assert_eq!(replay.send().await.unwrap().status().as_u16(), 401);
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn a_stale_timestamp_is_refused_by_verify() {
    let (_server, request) = sent_request().await;
    let sent = sent_at(&request);

    let late = sent.plus(DEFAULT_TOLERANCE + Duration::from_secs(1));
    assert_eq!(
        verify(&request, &request.body, late),
        Err(SignatureError::OutsideTolerance)
    );
    assert_eq!(verify(&request, &request.body, sent.plus(DEFAULT_TOLERANCE)), Ok(()));
}
