//! The Vonage adapter against a local HTTP server (wiremock): every request
//! is checked whole (method, path, credentials, content type, every field,
//! the JWT verified with the application's public key), and every
//! documented answer maps onto the right `DeliveryError` after exactly one
//! request.

mod receipts;
mod secrets;
mod sms;
mod voice;

use std::time::Duration;

use phonegate_adapters::vonage::{VonageClient, VonageSettings};
use phonegate_domain::{
    phone::PhoneNumber,
    ports::{OutgoingCall, OutgoingSms, Sender},
};
use secrecy::SecretString;
use serde_json::json;
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{method, path},
};

const API_KEY: &str = "a1b2c3d4";
const API_SECRET: &str = "Sec-9f8e7d6c5b4a3928";
const APPLICATION_ID: &str = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab";
/// A throwaway RSA key of the JWT tests (`tests/fixtures/jwt/README.md`),
/// standing for a Vonage application's private key. Test-only.
const PRIVATE_KEY: &str = include_str!("../fixtures/jwt/rsa-a.pem");
/// The same key in PKCS#1 form.
const PRIVATE_KEY_PKCS1: &str = include_str!("../fixtures/jwt/rsa-a.pkcs1.pem");
/// Its public half, which Vonage would hold.
const PUBLIC_KEY: &str = include_str!("../fixtures/jwt/rsa-a.pub.pem");
const ED25519_KEY: &str = include_str!("../fixtures/jwt/ed25519-a.pem");
const FROM: &str = "+15005550006";
const TO: &str = "+14155550100";
const SMS_BODY: &str = "Your phonegate code is 482913";
const SPOKEN: &str = "Your phonegate code is 4, 8, 2, 9, 1, 3. Again, your code is 4, 8, 2, 9, 1, 3.";
const SMS_PATH: &str = "/sms/json";
const CALLS_PATH: &str = "/v1/calls";

/// Settings pointing both APIs at `server`, sending from `FROM`, with an
/// application for calls.
fn settings(server: &MockServer) -> VonageSettings {
    let mut settings = VonageSettings::new(API_KEY, SecretString::from(API_SECRET));
    settings.application_id = Some(APPLICATION_ID.to_owned());
    settings.private_key = Some(SecretString::from(PRIVATE_KEY));
    settings.from = Some(Sender::Number(FROM.to_owned()));
    settings.sms_base_url = server.uri();
    settings.voice_base_url = format!("{}/", server.uri());
    settings.timeout = Duration::from_secs(5);
    settings
}

fn client(server: &MockServer) -> VonageClient {
    VonageClient::new(settings(server)).unwrap()
}

fn phone() -> PhoneNumber {
    PhoneNumber::parse_e164(TO).unwrap()
}

fn sms() -> OutgoingSms {
    OutgoingSms {
        to: phone(),
        body: SecretString::from(SMS_BODY),
    }
}

fn call() -> OutgoingCall {
    OutgoingCall {
        to: phone(),
        spoken_text: SecretString::from(SPOKEN),
    }
}

/// Mounts `response` on `POST route`, expecting exactly one request (the
/// server checks it when dropped).
async fn mount_once(server: &MockServer, route: &str, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(response)
        .expect(1)
        .mount(server)
        .await;
}

/// Every request the server received.
async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

/// The SMS API's documented answer for an accepted one-part text.
fn sms_accepted() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "message-count": "1",
        "messages": [{
            "to": "14155550100",
            "message-id": "0A0000000123ABCD1",
            "status": "0",
            "remaining-balance": "3.14159265",
            "message-price": "0.03330000",
            "network": "12345",
        }],
    }))
}

/// The SMS API's answer refusing the text with `status`: HTTP 200 still.
fn sms_refused(status: &str, error_text: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "message-count": "1",
        "messages": [{"status": status, "error-text": error_text}],
    }))
}

/// The Voice API's documented answer to a created call.
fn call_created() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({
        "uuid": "63f61863-4a51-4f6b-86e1-46edebcf9356",
        "status": "started",
        "direction": "outbound",
        "conversation_uuid": "CON-f972836a-550f-45fa-956c-12a2ab5b7d22",
    }))
}

/// A Voice API problem document (RFC 7807), as Vonage's API errors page
/// shows them.
fn problem(status: u16, code: &str, title: &str, detail: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/problem+json")
        .set_body_json(json!({
            "type": format!("https://developer.nexmo.com/api-errors#{code}"),
            "title": title,
            "detail": detail,
            "instance": "798b8f199c45014ab7b08bfe9cc1c12c",
        }))
}

/// A base URL where nothing listens: a port that was just free.
fn refusing_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}
