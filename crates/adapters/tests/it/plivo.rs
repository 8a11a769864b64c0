//! The Plivo adapter against a local HTTP server (wiremock): the request is
//! checked whole (method, path, basic auth, content type, the JSON body),
//! each documented answer maps onto the right `DeliveryError` after exactly
//! one request, and no secret reaches an error or a log line.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::Engine as _;
use phonegate_adapters::plivo::{PlivoClient, PlivoSettings};
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

const AUTH_ID: &str = "MA0123456789ABCDEF01";
const AUTH_TOKEN: &str = "plivo-tok-9f8e7d6c5b4a39281706f5e4d3";
const FROM: &str = "+15005550006";
const TO: &str = "+14155550100";
const TO_DIGITS: &str = "14155550100";
const SMS_BODY: &str = "Your phonegate code is 482913";
const CODE: &str = "482913";
const API_ID: &str = "db342550-7f1d-11e1-8ea7-1231380bc196";

fn messages_path() -> String {
    format!("/v1/Account/{AUTH_ID}/Message/")
}

/// Settings pointing at `server` (with a trailing slash, which is trimmed),
/// sending from `FROM`.
fn settings(server: &MockServer) -> PlivoSettings {
    let mut settings = PlivoSettings::new(AUTH_ID, SecretString::from(AUTH_TOKEN));
    settings.from = Some(Sender::Number(FROM.to_owned()));
    settings.base_url = format!("{}/", server.uri());
    settings.timeout = Duration::from_secs(5);
    settings
}

fn client(server: &MockServer) -> PlivoClient {
    PlivoClient::new(settings(server)).unwrap()
}

fn sms() -> OutgoingSms {
    OutgoingSms {
        to: PhoneNumber::parse_e164(TO).unwrap(),
        body: SecretString::from(SMS_BODY),
    }
}

/// Plivo's documented success: 202, the message queued.
fn queued() -> ResponseTemplate {
    ResponseTemplate::new(202).set_body_json(json!({
        "api_id": API_ID,
        "message": "message(s) queued",
        "message_uuid": ["db3ce55a-7f1d-11e1-8ea7-1231380bc196"],
    }))
}

/// Plivo's documented error document.
fn plivo_error(status: u16, error: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"api_id": API_ID, "error": error}))
}

/// Answers every POST to the messages path with `response`, and expects
/// exactly `times` of them (checked when the server is dropped).
async fn mount(server: &MockServer, response: ResponseTemplate, times: u64) {
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(response)
        .expect(times)
        .mount(server)
        .await;
}

/// Asserts that `request` is Plivo's documented send: a JSON POST to the
/// account's Message resource with our basic auth, whose body is exactly
/// `expected`.
fn assert_send(request: &Request, expected: &Value) {
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), messages_path());
    assert_eq!(request.url.query(), None, "nothing goes in the query string");
    let authorization = request.headers.get("authorization").unwrap().to_str().unwrap();
    let encoded = authorization.strip_prefix("Basic ").unwrap();
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    assert_eq!(String::from_utf8(decoded).unwrap(), format!("{AUTH_ID}:{AUTH_TOKEN}"));
    assert_eq!(
        request.headers.get("content-type").unwrap().to_str().unwrap(),
        "application/json"
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(&body, expected);
}

fn documented_body(src: &str) -> Value {
    json!({"src": src, "dst": TO_DIGITS, "text": SMS_BODY})
}

/// The error of one send answered with `response`, after exactly one
/// request.
async fn error_for(response: ResponseTemplate) -> DeliveryError {
    let server = MockServer::start().await;
    mount(&server, response, 1).await;
    client(&server).send_sms(&sms()).await.unwrap_err()
}

#[tokio::test]
async fn an_sms_is_the_documented_json_post() {
    let server = MockServer::start().await;
    mount(&server, queued(), 1).await;

    client(&server).send_sms(&sms()).await.unwrap();

    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_send(&received[0], &documented_body("15005550006"));
}

#[tokio::test]
async fn with_sender_changes_only_the_src_of_that_client() {
    let server = MockServer::start().await;
    mount(&server, queued(), 2).await;
    let default = client(&server);
    let acme = default.clone().with_sender(Sender::Alphanumeric("Acme".to_owned()));

    acme.send_sms(&sms()).await.unwrap();
    default.send_sms(&sms()).await.unwrap();

    let received = server.received_requests().await.unwrap();
    assert_send(&received[0], &documented_body("Acme"));
    assert_send(&received[1], &documented_body("15005550006"));
}

#[tokio::test]
async fn an_unusable_or_missing_sender_is_a_misconfiguration_without_a_request() {
    let server = MockServer::start().await;
    let service = Sender::MessagingService("MG0123456789abcdef0123456789abcdef".to_owned());
    assert!(!PlivoClient::supports(&service));
    assert!(PlivoClient::supports(&Sender::Number(FROM.to_owned())));
    assert!(PlivoClient::supports(&Sender::Alphanumeric("Acme".to_owned())));

    let through_service = client(&server).with_sender(service).send_sms(&sms()).await;
    let mut no_sender = settings(&server);
    no_sender.from = None;
    let without = PlivoClient::new(no_sender).unwrap().send_sms(&sms()).await;

    for outcome in [through_service, without] {
        assert!(matches!(outcome, Err(DeliveryError::Misconfigured(_))), "{outcome:?}");
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_destination_plivo_calls_invalid_is_an_invalid_number() {
    // "Destination number validation": a synchronous 400 naming the number.
    let error = error_for(plivo_error(400, "14155550100 is not a valid phone number")).await;
    assert!(matches!(error, DeliveryError::InvalidNumber), "{error:?}");
    let error = error_for(plivo_error(400, "'14155550100' is not a valid phone number.")).await;
    assert!(matches!(error, DeliveryError::InvalidNumber), "{error:?}");
    // "Bulk messaging": a 202 listing the destination in `invalid_number`.
    let refused = ResponseTemplate::new(202).set_body_json(json!({
        "api_id": API_ID,
        "invalid_number": [TO_DIGITS],
        "message": "message(s) queued",
        "message_uuid": [],
    }));
    let error = error_for(refused).await;
    assert!(matches!(error, DeliveryError::InvalidNumber), "{error:?}");
}

#[tokio::test]
async fn other_400s_are_final_rejections_named_by_status() {
    for text in ["15005550006 is not a valid phone number", "src parameter not present"] {
        let error = error_for(plivo_error(400, text)).await;
        assert!(
            matches!(&error, DeliveryError::Rejected(summary) if summary == "plivo HTTP 400"),
            "{error:?}"
        );
    }
    let error = error_for(ResponseTemplate::new(402)).await;
    assert!(matches!(&error, DeliveryError::Rejected(summary) if summary == "plivo HTTP 402"));
}

#[tokio::test]
async fn a_429_is_a_rate_limit_with_its_retry_after() {
    let throttled = plivo_error(429, "too many requests").insert_header("Retry-After", "30");
    let error = error_for(throttled).await;
    assert!(
        matches!(error, DeliveryError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(30)),
        "{error:?}"
    );
    let error = error_for(plivo_error(429, "too many requests")).await;
    assert!(
        matches!(error, DeliveryError::RateLimited { retry_after: None }),
        "{error:?}"
    );
}

#[tokio::test]
async fn refused_credentials_or_a_wrong_account_are_misconfigurations() {
    for (status, text) in [(401, "authentication failed"), (404, "not found")] {
        let error = error_for(plivo_error(status, text)).await;
        assert!(
            matches!(&error, DeliveryError::Misconfigured(summary) if *summary == format!("plivo HTTP {status}")),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn server_errors_are_unavailable_after_one_attempt() {
    let error = error_for(plivo_error(500, "server error")).await;
    assert!(matches!(&error, DeliveryError::Unavailable(summary) if summary == "plivo HTTP 500"));
    let error = error_for(ResponseTemplate::new(502).set_body_string("<html>Bad gateway</html>")).await;
    assert!(matches!(&error, DeliveryError::Unavailable(summary) if summary == "plivo HTTP 502"));
}

#[tokio::test]
async fn an_answer_slower_than_the_timeout_is_unavailable_after_one_attempt() {
    let server = MockServer::start().await;
    mount(&server, queued().set_delay(Duration::from_secs(3)), 1).await;
    let mut settings = settings(&server);
    settings.timeout = Duration::from_millis(200);

    let error = PlivoClient::new(settings).unwrap().send_sms(&sms()).await.unwrap_err();

    assert!(
        matches!(&error, DeliveryError::Unavailable(why) if why.starts_with("plivo: the request timed out")),
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
    let mut settings = PlivoSettings::new(AUTH_ID, SecretString::from(AUTH_TOKEN));
    settings.from = Some(Sender::Number(FROM.to_owned()));
    settings.base_url = format!("http://127.0.0.1:{port}");

    let error = PlivoClient::new(settings).unwrap().send_sms(&sms()).await.unwrap_err();

    assert!(
        matches!(&error, DeliveryError::Unavailable(why) if why.starts_with("plivo: could not connect")),
        "{error:?}"
    );
}

/// A change that makes valid settings invalid.
type Spoil = fn(&mut PlivoSettings);

#[test]
fn invalid_settings_are_refused_naming_the_field_but_not_the_token() {
    let valid = || PlivoSettings::new(AUTH_ID, SecretString::from(AUTH_TOKEN));
    assert_eq!(valid().base_url, "https://api.plivo.com");
    assert_eq!(valid().timeout, Duration::from_secs(10));
    assert!(valid().from.is_none());
    PlivoClient::new(valid()).unwrap();
    let cases: Vec<(&str, Spoil)> = vec![
        ("auth_id", |s| s.auth_id = "MA/../x".to_owned()),
        ("auth_id", |s| s.auth_id = String::new()),
        ("auth_token", |s| s.auth_token = SecretString::from("")),
        ("from", |s| {
            s.from = Some(Sender::MessagingService(
                "MG0123456789abcdef0123456789abcdef".to_owned(),
            ));
        }),
        ("base_url", |s| s.base_url = "not a url".to_owned()),
        ("base_url", |s| s.base_url = format!("ftp://{AUTH_TOKEN}@example.com")),
        ("timeout", |s| s.timeout = Duration::ZERO),
    ];
    for (field, spoil) in cases {
        let mut settings = valid();
        spoil(&mut settings);
        let error = PlivoClient::new(settings).unwrap_err().to_string();
        assert!(error.contains(field), "{error}");
        assert!(!error.contains(AUTH_TOKEN), "{error}");
    }
}

#[test]
fn debug_output_redacts_the_auth_token() {
    let mut settings = PlivoSettings::new(AUTH_ID, SecretString::from(AUTH_TOKEN));
    settings.from = Some(Sender::Number(FROM.to_owned()));
    let debug = format!("{settings:?}");
    assert!(!debug.contains(AUTH_TOKEN), "{debug}");
    assert!(debug.contains("[redacted]") && debug.contains(AUTH_ID), "{debug}");
    let debug = format!("{:?}", PlivoClient::new(settings).unwrap());
    assert!(!debug.contains(AUTH_TOKEN), "{debug}");
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
async fn refusals_and_failures_are_counted() {
    let codes = Arc::new(Codes::default());
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(plivo_error(400, "14155550100 is not a valid phone number"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    mount(&server, plivo_error(401, "authentication failed"), 1).await;
    let client = client(&server).with_metrics(codes.clone());

    client.send_sms(&sms()).await.unwrap_err();
    client.send_sms(&sms()).await.unwrap_err();

    assert_eq!(
        *codes.0.lock().unwrap(),
        ["plivo/send_sms/invalid_destination", "plivo/send_sms/http_401"]
    );
}

/// Everything logged at TRACE (ours, reqwest's, hyper's) while a message is
/// sent and refused every documented way, and every error's `Display` and
/// `Debug`, hold neither the token, the credentials header, the text, the
/// code nor the recipient's number, even when Plivo echoes them.
#[tokio::test]
async fn no_secret_reaches_an_error_or_a_log_line() {
    let capture = crate::log_capture::LogCapture::start();
    let echo = format!("{TO_DIGITS} is not a valid phone number ({AUTH_TOKEN} {SMS_BODY})");

    let server = MockServer::start().await;
    mount(&server, queued(), 1).await;
    client(&server).send_sms(&sms()).await.unwrap();
    drop(server);
    let mut errors = vec![];
    for status in [400, 401, 404, 429, 500] {
        errors.push(error_for(plivo_error(status, &echo)).await);
    }

    for error in &errors {
        for text in [error.to_string(), format!("{error:?}")] {
            for secret in [AUTH_TOKEN, SMS_BODY, CODE, TO_DIGITS] {
                assert!(!text.contains(secret), "{text}");
            }
        }
    }
    let logs = capture.text();
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{AUTH_ID}:{AUTH_TOKEN}"));
    for secret in [AUTH_TOKEN, credentials.as_str(), SMS_BODY, CODE, TO_DIGITS] {
        assert!(!logs.contains(secret), "the logs contain {secret:?}:\n{logs}");
    }
    for expected in [
        "invalid_destination",
        "http_status=401",
        "http_429",
        "http_status=500",
        API_ID,
    ] {
        assert!(logs.contains(expected), "the logs lack {expected:?}:\n{logs}");
    }
}
