//! The Telnyx adapter against a local HTTP server (wiremock): the request is
//! checked whole (method, path, bearer token, content type, the JSON body),
//! each documented error maps onto the right `DeliveryError` after exactly
//! one request, and no secret reaches an error or a log line.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use phonegate_adapters::telnyx::{TelnyxClient, TelnyxSettings};
use phonegate_domain::{
    phone::PhoneNumber,
    ports::{DeliveryError, Metrics, OutgoingSms, Sender, SmsSender},
};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{method, path},
};

const API_KEY: &str = "KEY0123456789ABCDEF_telnyx-secret-9f8e7d";
const PROFILE: &str = "4000eba1-a0c0-4563-9925-b25e842a7cb6";
const FROM: &str = "+15005550006";
const TO: &str = "+14155550100";
const SMS_BODY: &str = "Your phonegate code is 482913";
const CODE: &str = "482913";
const MESSAGES: &str = "/v2/messages";

/// Settings pointing at `server` (with a trailing slash, which is trimmed),
/// sending from `FROM` without a messaging profile.
fn settings(server: &MockServer) -> TelnyxSettings {
    let mut settings = TelnyxSettings::new(SecretString::from(API_KEY));
    settings.from = Some(Sender::Number(FROM.to_owned()));
    settings.base_url = format!("{}/", server.uri());
    settings.timeout = Duration::from_secs(5);
    settings
}

fn client(server: &MockServer) -> TelnyxClient {
    TelnyxClient::new(settings(server)).unwrap()
}

fn with_profile(server: &MockServer) -> TelnyxClient {
    let mut settings = settings(server);
    settings.messaging_profile_id = Some(PROFILE.to_owned());
    TelnyxClient::new(settings).unwrap()
}

fn sms() -> OutgoingSms {
    OutgoingSms {
        to: PhoneNumber::parse_e164(TO).unwrap(),
        body: SecretString::from(SMS_BODY),
    }
}

/// Telnyx's documented success: 200 with the message in `data`.
fn accepted(from: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"data": {
        "record_type": "message",
        "direction": "outbound",
        "id": "40385f64-5717-4562-b3fc-2c963f66afa6",
        "type": "SMS",
        "from": {"phone_number": from, "carrier": "TELNYX LLC", "line_type": "VoIP"},
        "to": [{"phone_number": TO, "status": "queued", "carrier": "T-MOBILE USA, INC.", "line_type": "Wireless"}],
        "text": SMS_BODY,
        "errors": [],
    }}))
}

/// Telnyx's documented error document, with one error.
fn telnyx_error(status: u16, code: &str, title: &str, pointer: Option<&str>) -> ResponseTemplate {
    let mut error = json!({"code": code, "title": title, "detail": format!("{title}: {TO}")});
    if let Some(pointer) = pointer {
        error["source"] = json!({"pointer": pointer});
    }
    ResponseTemplate::new(status).set_body_json(json!({"errors": [error]}))
}

/// Answers every POST to the messages path with `response`, and expects
/// exactly `times` of them (checked when the server is dropped).
async fn mount(server: &MockServer, response: ResponseTemplate, times: u64) {
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(response)
        .expect(times)
        .mount(server)
        .await;
}

/// Asserts that `request` is Telnyx's documented send: a JSON POST to
/// `/v2/messages` with our bearer token, whose body is exactly `expected`.
fn assert_send(request: &Request, expected: &Value) {
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), MESSAGES);
    assert_eq!(request.url.query(), None, "nothing goes in the query string");
    let authorization = request.headers.get("authorization").unwrap().to_str().unwrap();
    assert_eq!(authorization.strip_prefix("Bearer "), Some(API_KEY));
    assert_eq!(
        request.headers.get("content-type").unwrap().to_str().unwrap(),
        "application/json"
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(&body, expected);
}

/// The error of one send through `client` answered with `response`, after
/// exactly one request.
async fn error_for(response: ResponseTemplate) -> DeliveryError {
    let server = MockServer::start().await;
    mount(&server, response, 1).await;
    client(&server).send_sms(&sms()).await.unwrap_err()
}

#[tokio::test]
async fn an_sms_is_the_documented_json_post() {
    let server = MockServer::start().await;
    mount(&server, accepted(FROM), 1).await;

    client(&server).send_sms(&sms()).await.unwrap();

    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_send(&received[0], &json!({"from": FROM, "to": TO, "text": SMS_BODY}));
}

#[tokio::test]
async fn the_messaging_profile_goes_with_every_message_and_allows_an_alphanumeric_sender() {
    let server = MockServer::start().await;
    mount(&server, accepted(FROM), 2).await;
    let default = with_profile(&server);
    let acme = default.clone().with_sender(Sender::Alphanumeric("Acme".to_owned()));

    acme.send_sms(&sms()).await.unwrap();
    default.send_sms(&sms()).await.unwrap();

    let received = server.received_requests().await.unwrap();
    for (request, from) in received.iter().zip(["Acme", FROM]) {
        let expected = json!({"from": from, "to": TO, "text": SMS_BODY, "messaging_profile_id": PROFILE});
        assert_send(request, &expected);
    }
}

#[tokio::test]
async fn an_unusable_or_missing_sender_is_a_misconfiguration_without_a_request() {
    let server = MockServer::start().await;
    let service = Sender::MessagingService("MG0123456789abcdef0123456789abcdef".to_owned());
    let acme = Sender::Alphanumeric("Acme".to_owned());
    assert!(!TelnyxClient::supports(&service));
    assert!(TelnyxClient::supports(&Sender::Number(FROM.to_owned())));
    assert!(TelnyxClient::supports(&acme));

    let through_service = with_profile(&server).with_sender(service).send_sms(&sms()).await;
    // An alphanumeric sender needs a messaging profile.
    let alphanumeric = client(&server).with_sender(acme).send_sms(&sms()).await;
    let mut no_sender = settings(&server);
    no_sender.from = None;
    let without = TelnyxClient::new(no_sender).unwrap().send_sms(&sms()).await;

    for outcome in [through_service, alphanumeric, without] {
        assert!(matches!(outcome, Err(DeliveryError::Misconfigured(_))), "{outcome:?}");
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn errors_about_the_destination_are_invalid_numbers() {
    for response in [
        // 40310 is documented with HTTP 400.
        telnyx_error(400, "40310", "Invalid 'to' address", None),
        telnyx_error(422, "10002", "Invalid phone number", Some("/to")),
        telnyx_error(422, "10016", "Phone number must be in +E.164 format", Some("/to")),
    ] {
        let error = error_for(response).await;
        assert!(matches!(error, DeliveryError::InvalidNumber), "{error:?}");
    }
}

#[tokio::test]
async fn other_refusals_are_final_and_named_by_code() {
    let stop = telnyx_error(400, "40300", "Blocked due to STOP message", None);
    let error = error_for(stop).await;
    assert!(
        matches!(&error, DeliveryError::Rejected(s) if s == "telnyx 40300"),
        "{error:?}"
    );
    let from = telnyx_error(422, "10002", "Invalid phone number", Some("/from"));
    let error = error_for(from).await;
    assert!(
        matches!(&error, DeliveryError::Rejected(s) if s == "telnyx 10002"),
        "{error:?}"
    );
    let error = error_for(ResponseTemplate::new(418)).await;
    assert!(
        matches!(&error, DeliveryError::Rejected(s) if s == "telnyx HTTP 418"),
        "{error:?}"
    );
}

#[tokio::test]
async fn our_key_or_sender_refused_is_a_misconfiguration() {
    for response in [
        telnyx_error(401, "10009", "Authentication failed", None),
        telnyx_error(403, "10010", "Authorization failed", None),
        telnyx_error(400, "40305", "Invalid 'from' address", Some("/from")),
        telnyx_error(400, "40306", "Alpha sender not configured", None),
    ] {
        let error = error_for(response).await;
        assert!(matches!(error, DeliveryError::Misconfigured(_)), "{error:?}");
    }
}

#[tokio::test]
async fn a_429_is_a_rate_limit_with_its_retry_after() {
    let throttled = telnyx_error(429, "10011", "Too many requests", None).insert_header("Retry-After", "12");
    let error = error_for(throttled).await;
    assert!(
        matches!(error, DeliveryError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(12)),
        "{error:?}"
    );
    let error = error_for(ResponseTemplate::new(429)).await;
    assert!(
        matches!(error, DeliveryError::RateLimited { retry_after: None }),
        "{error:?}"
    );
}

#[tokio::test]
async fn server_errors_are_unavailable_after_one_attempt() {
    let error = error_for(telnyx_error(500, "10007", "Unexpected error", None)).await;
    assert!(
        matches!(&error, DeliveryError::Unavailable(s) if s == "telnyx 10007"),
        "{error:?}"
    );
    let error = error_for(ResponseTemplate::new(503).set_body_string("<html>down</html>")).await;
    assert!(
        matches!(&error, DeliveryError::Unavailable(s) if s == "telnyx HTTP 503"),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_answer_slower_than_the_timeout_is_unavailable_after_one_attempt() {
    let server = MockServer::start().await;
    mount(&server, accepted(FROM).set_delay(Duration::from_secs(3)), 1).await;
    let mut settings = settings(&server);
    settings.timeout = Duration::from_millis(200);

    let error = TelnyxClient::new(settings).unwrap().send_sms(&sms()).await.unwrap_err();

    assert!(
        matches!(&error, DeliveryError::Unavailable(why) if why.starts_with("telnyx: the request timed out")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    // A port that was just free: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut settings = TelnyxSettings::new(SecretString::from(API_KEY));
    settings.from = Some(Sender::Number(FROM.to_owned()));
    settings.base_url = format!("http://127.0.0.1:{port}");

    let error = TelnyxClient::new(settings).unwrap().send_sms(&sms()).await.unwrap_err();

    assert!(
        matches!(&error, DeliveryError::Unavailable(why) if why.starts_with("telnyx: could not connect")),
        "{error:?}"
    );
}

/// A change that makes valid settings invalid.
type Spoil = fn(&mut TelnyxSettings);

#[test]
fn invalid_settings_are_refused_naming_the_field_but_not_the_key() {
    let valid = || TelnyxSettings::new(SecretString::from(API_KEY));
    assert_eq!(valid().base_url, "https://api.telnyx.com");
    assert_eq!(valid().timeout, Duration::from_secs(10));
    assert!(valid().from.is_none() && valid().messaging_profile_id.is_none());
    TelnyxClient::new(valid()).unwrap();
    let cases: Vec<(&str, Spoil)> = vec![
        ("api_key", |s| s.api_key = SecretString::from("")),
        ("messaging_profile_id", |s| {
            s.messaging_profile_id = Some("a profile".to_owned())
        }),
        ("messaging_profile_id", |s| {
            s.from = Some(Sender::Alphanumeric("Acme".to_owned()))
        }),
        ("from", |s| {
            s.from = Some(Sender::MessagingService(
                "MG0123456789abcdef0123456789abcdef".to_owned(),
            ));
        }),
        ("base_url", |s| s.base_url = "not a url".to_owned()),
        ("base_url", |s| s.base_url = format!("ftp://{API_KEY}@example.com")),
        ("timeout", |s| s.timeout = Duration::ZERO),
    ];
    for (field, spoil) in cases {
        let mut settings = valid();
        spoil(&mut settings);
        let error = TelnyxClient::new(settings).unwrap_err().to_string();
        assert!(error.contains(field), "{error}");
        assert!(!error.contains(API_KEY), "{error}");
    }
}

#[test]
fn debug_output_redacts_the_api_key() {
    let mut settings = TelnyxSettings::new(SecretString::from(API_KEY));
    settings.messaging_profile_id = Some(PROFILE.to_owned());
    let debug = format!("{settings:?}");
    assert!(!debug.contains(API_KEY), "{debug}");
    assert!(debug.contains("[redacted]") && debug.contains(PROFILE), "{debug}");
    let debug = format!("{:?}", TelnyxClient::new(settings).unwrap());
    assert!(!debug.contains(API_KEY), "{debug}");
}

/// Records the provider error codes counted.
#[derive(Debug, Default)]
struct Codes(Mutex<Vec<String>>);

impl Metrics for Codes {
    fn delivery(&self, _: &'static str, _: &'static str, _: Option<&'static str>, _: &'static str) {}

    fn code_check(&self, _: &'static str, _: &'static str) {}

    fn provider_call(&self, _: &'static str, _: &'static str, _: Duration, _: &'static str) {}

    fn provider_error_code(&self, provider: &'static str, operation: &'static str, code: &str) {
        self.0.lock().unwrap().push(format!("{provider}/{operation}/{code}"));
    }
}

#[tokio::test]
async fn errors_are_counted_by_code() {
    let codes = Arc::new(Codes::default());
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(telnyx_error(400, "40310", "Invalid 'to' address", None))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    mount(&server, ResponseTemplate::new(502), 1).await;
    let client = client(&server).with_metrics(codes.clone());

    client.send_sms(&sms()).await.unwrap_err();
    client.send_sms(&sms()).await.unwrap_err();

    assert_eq!(
        *codes.0.lock().unwrap(),
        ["telnyx/send_sms/40310", "telnyx/send_sms/http_502"]
    );
}

/// Everything logged at TRACE (ours, reqwest's, hyper's) while a message is
/// sent and refused every documented way, and every error's `Display` and
/// `Debug`, hold neither the key, the text, the code nor the recipient's
/// number, even when Telnyx echoes them.
#[tokio::test]
async fn no_secret_reaches_an_error_or_a_log_line() {
    let capture = crate::log_capture::LogCapture::start();
    let echo = format!("{TO} {API_KEY} {SMS_BODY}");

    let server = MockServer::start().await;
    mount(&server, accepted(FROM), 1).await;
    client(&server).send_sms(&sms()).await.unwrap();
    drop(server);
    let mut errors = vec![];
    for (status, code, pointer) in [
        (400, "40310", None),
        (422, "10002", Some("/to")),
        (400, "40300", None),
        (401, "10009", None),
        (429, "10011", None),
        (500, "10007", None),
    ] {
        let response = telnyx_error(status, code, &echo, pointer).insert_header("Retry-After", "1");
        errors.push(error_for(response).await);
    }

    let digits = TO.trim_start_matches('+');
    for error in &errors {
        for text in [error.to_string(), format!("{error:?}")] {
            for secret in [API_KEY, SMS_BODY, CODE, digits] {
                assert!(!text.contains(secret), "{text}");
            }
        }
    }
    let logs = capture.text();
    for secret in [API_KEY, SMS_BODY, CODE, digits] {
        assert!(!logs.contains(secret), "the logs contain {secret:?}:\n{logs}");
    }
    for expected in [
        "40310",
        "pointer=\"/to\"",
        "40300",
        "http_status=401",
        "10011",
        "http_status=500",
    ] {
        assert!(logs.contains(expected), "the logs lack {expected:?}:\n{logs}");
    }
}
