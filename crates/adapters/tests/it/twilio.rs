//! The Twilio adapter against a local HTTP server (wiremock): every request
//! is checked field by field (method, path, basic auth, content type, the
//! full form), and every documented error maps onto the right
//! `DeliveryError`, with retries only where they are safe.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::Engine as _;
use phonegate_adapters::twilio::{TwilioClient, TwilioError, TwilioSettings};
use phonegate_domain::{
    otp::{Channel, CodeLength, OtpCode},
    phone::PhoneNumber,
    ports::{DeliveryError, HostedCheck, HostedVerification, OutgoingCall, OutgoingSms, SmsSender, VoiceCaller},
};
use secrecy::SecretString;
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{method, path},
};

mod receipts;
mod whatsapp;

const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "tok-9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const MESSAGING_SERVICE_SID: &str = "MG0123456789abcdef0123456789abcdef";
const VERIFY_SERVICE_SID: &str = "VA0123456789abcdef0123456789abcdef";
const FROM: &str = "+15005550006";
const TO: &str = "+14155550100";
const SMS_BODY: &str = "Your phonegate code is 482913";
const CODE: &str = "482913";
const FORM: &str = "application/x-www-form-urlencoded";

fn messages_path() -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
}

fn calls_path() -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json")
}

fn verifications_path() -> String {
    format!("/v2/Services/{VERIFY_SERVICE_SID}/Verifications")
}

fn check_path() -> String {
    format!("/v2/Services/{VERIFY_SERVICE_SID}/VerificationCheck")
}

/// Settings pointing at `server`, with a sender number, a Verify service,
/// 3 attempts and a 1 ms base delay so retries cost nothing.
fn settings(server: &MockServer) -> TwilioSettings {
    let mut settings = TwilioSettings::new(ACCOUNT_SID, SecretString::from(AUTH_TOKEN));
    settings.from_number = Some(FROM.to_owned());
    settings.verify_service_sid = Some(VERIFY_SERVICE_SID.to_owned());
    settings.api_base_url = server.uri();
    settings.verify_base_url = format!("{}/", server.uri());
    settings.timeout = Duration::from_secs(5);
    settings.max_attempts = 3;
    settings.retry_base_delay = Duration::from_millis(1);
    settings
}

fn client(server: &MockServer) -> TwilioClient {
    TwilioClient::new(settings(server)).unwrap()
}

fn phone() -> PhoneNumber {
    PhoneNumber::parse_e164(TO).unwrap()
}

fn code() -> OtpCode {
    OtpCode::parse(CODE, CodeLength::new(6).unwrap()).unwrap()
}

fn sms() -> OutgoingSms {
    OutgoingSms {
        to: phone(),
        body: SecretString::from(SMS_BODY),
    }
}

/// Twilio's JSON error document.
fn twilio_error(status: u16, code: u32, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    }))
}

fn created() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued"}))
}

async fn mount(server: &MockServer, route: &str, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(response)
        .mount(server)
        .await;
}

/// Every request the server received.
async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

/// Asserts that `request` is a form POST to `route` with our basic auth and
/// exactly the fields `expected` (no more, no fewer, none repeated).
fn assert_form_post(request: &Request, route: &str, expected: &[(&str, &str)]) {
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), route);
    assert_eq!(request.url.query(), None, "nothing goes in the query string");
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"));
    assert_eq!(
        request.headers.get("authorization").unwrap().to_str().unwrap(),
        format!("Basic {credentials}")
    );
    assert_eq!(request.headers.get("content-type").unwrap().to_str().unwrap(), FORM);
    let mut fields: Vec<(String, String)> = form_urlencoded::parse(&request.body).into_owned().collect();
    fields.sort();
    let mut expected: Vec<(String, String)> = expected
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(fields, expected);
}

/// Asserts that exactly `count` requests were made and that each was the
/// same well-formed form POST.
async fn assert_requests(server: &MockServer, count: usize, route: &str, expected: &[(&str, &str)]) {
    let received = requests(server).await;
    assert_eq!(received.len(), count, "number of requests to {route}");
    for request in &received {
        assert_form_post(request, route, expected);
    }
}

fn sms_fields() -> Vec<(&'static str, &'static str)> {
    vec![("To", TO), ("From", FROM), ("Body", SMS_BODY)]
}

// --- SMS ---------------------------------------------------------------

#[tokio::test]
async fn sms_is_sent_from_the_number() {
    let server = MockServer::start().await;
    mount(&server, &messages_path(), created()).await;

    client(&server).send_sms(&sms()).await.unwrap();

    assert_requests(&server, 1, &messages_path(), &sms_fields()).await;
}

#[tokio::test]
async fn sms_goes_through_the_messaging_service_when_one_is_set() {
    let server = MockServer::start().await;
    mount(&server, &messages_path(), created()).await;
    let mut settings = settings(&server);
    settings.messaging_service_sid = Some(MESSAGING_SERVICE_SID.to_owned());

    TwilioClient::new(settings).unwrap().send_sms(&sms()).await.unwrap();

    assert_requests(
        &server,
        1,
        &messages_path(),
        &[
            ("To", TO),
            ("MessagingServiceSid", MESSAGING_SERVICE_SID),
            ("Body", SMS_BODY),
        ],
    )
    .await;
}

/// Issue 16: a route's sender replaces the settings' for that route only:
/// a Messaging Service goes as `MessagingServiceSid`, an alphanumeric ID
/// as `From`; calls keep the settings' number unless the route's is one.
#[tokio::test]
async fn a_routes_sender_replaces_the_settings_sender() {
    use phonegate_domain::ports::Sender;
    let server = MockServer::start().await;
    mount(&server, &messages_path(), created()).await;
    mount(&server, &calls_path(), created()).await;
    let client = TwilioClient::new(settings(&server)).unwrap();
    let service = client
        .clone()
        .with_sender(Sender::MessagingService(MESSAGING_SERVICE_SID.to_owned()));
    service.send_sms(&sms()).await.unwrap();
    let alphanumeric = client.clone().with_sender(Sender::Alphanumeric("Acme".to_owned()));
    alphanumeric.send_sms(&sms()).await.unwrap();
    alphanumeric
        .call(&OutgoingCall {
            to: phone(),
            spoken_text: SecretString::from("Your code is 4, 8, 2"),
        })
        .await
        .unwrap();
    let forms: Vec<Vec<(String, String)>> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|request| form_urlencoded::parse(&request.body).into_owned().collect())
        .collect();
    let field = |form: &[(String, String)], name: &str| {
        form.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone())
    };
    assert_eq!(
        field(&forms[0], "MessagingServiceSid").as_deref(),
        Some(MESSAGING_SERVICE_SID)
    );
    assert_eq!(field(&forms[0], "From"), None);
    assert_eq!(field(&forms[1], "From").as_deref(), Some("Acme"));
    assert_eq!(
        field(&forms[2], "From").as_deref(),
        Some(FROM),
        "calls come from a number"
    );
    client.send_sms(&sms()).await.unwrap();
    let last: Vec<(String, String)> = form_urlencoded::parse(&server.received_requests().await.unwrap()[3].body)
        .into_owned()
        .collect();
    assert_eq!(
        field(&last, "From").as_deref(),
        Some(FROM),
        "the original client is unchanged"
    );
}

#[tokio::test]
async fn sms_without_a_sender_is_a_misconfiguration_and_sends_nothing() {
    let server = MockServer::start().await;
    let mut settings = settings(&server);
    settings.from_number = None;

    let error = TwilioClient::new(settings).unwrap().send_sms(&sms()).await.unwrap_err();

    assert!(matches!(error, DeliveryError::Misconfigured(_)), "{error:?}");
    assert!(requests(&server).await.is_empty());
}

// --- Calls -------------------------------------------------------------

#[tokio::test]
async fn a_call_says_the_escaped_text_in_the_configured_language() {
    let server = MockServer::start().await;
    mount(&server, &calls_path(), created()).await;
    let mut settings = settings(&server);
    settings.voice_language = "en-GB".to_owned();
    let spoken = "Your Smith & <Sons> code is 4, 8, 2. Again, your code is 4, 8, 2.";

    TwilioClient::new(settings)
        .unwrap()
        .call(&OutgoingCall {
            to: phone(),
            spoken_text: SecretString::from(spoken),
        })
        .await
        .unwrap();

    let twiml = "<Response><Say language=\"en-GB\">Your Smith &amp; &lt;Sons&gt; code is 4, 8, 2. \
                 Again, your code is 4, 8, 2.</Say></Response>";
    assert_requests(
        &server,
        1,
        &calls_path(),
        &[("To", TO), ("From", FROM), ("Twiml", twiml)],
    )
    .await;
}

#[tokio::test]
async fn a_call_needs_a_from_number_even_with_a_messaging_service() {
    let server = MockServer::start().await;
    let mut settings = settings(&server);
    settings.from_number = None;
    settings.messaging_service_sid = Some(MESSAGING_SERVICE_SID.to_owned());
    let call = OutgoingCall {
        to: phone(),
        spoken_text: SecretString::from("1, 2, 3"),
    };

    let error = TwilioClient::new(settings).unwrap().call(&call).await.unwrap_err();

    assert!(matches!(error, DeliveryError::Misconfigured(_)), "{error:?}");
    assert!(requests(&server).await.is_empty());
}

// --- Verify ------------------------------------------------------------

fn verification_created() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({"sid": "VE0123456789abcdef0123456789abcdef", "status": "pending"}))
}

#[tokio::test]
async fn verify_start_by_sms() {
    let server = MockServer::start().await;
    mount(&server, &verifications_path(), verification_created()).await;

    client(&server).start(&phone(), Channel::Sms, "en").await.unwrap();

    assert_requests(
        &server,
        1,
        &verifications_path(),
        &[("To", TO), ("Channel", "sms"), ("Locale", "en")],
    )
    .await;
}

#[tokio::test]
async fn verify_start_by_call() {
    let server = MockServer::start().await;
    mount(&server, &verifications_path(), verification_created()).await;

    client(&server).start(&phone(), Channel::Call, "pt-BR").await.unwrap();

    assert_requests(
        &server,
        1,
        &verifications_path(),
        &[("To", TO), ("Channel", "call"), ("Locale", "pt-BR")],
    )
    .await;
}

#[tokio::test]
async fn verify_without_a_service_is_a_misconfiguration_and_sends_nothing() {
    let server = MockServer::start().await;
    let mut settings = settings(&server);
    settings.verify_service_sid = None;
    let client = TwilioClient::new(settings).unwrap();

    let start = client.start(&phone(), Channel::Sms, "en").await.unwrap_err();
    let check = client.check(&phone(), &code()).await.unwrap_err();

    assert!(matches!(start, DeliveryError::Misconfigured(_)), "{start:?}");
    assert!(matches!(check, DeliveryError::Misconfigured(_)), "{check:?}");
    assert!(requests(&server).await.is_empty());
}

/// Checks `CODE` against a server answering `response`, asserting the
/// request, and returns the outcome.
async fn check_with(response: ResponseTemplate) -> Result<HostedCheck, DeliveryError> {
    let server = MockServer::start().await;
    mount(&server, &check_path(), response).await;
    let outcome = client(&server).check(&phone(), &code()).await;
    assert_requests(&server, 1, &check_path(), &[("To", TO), ("Code", CODE)]).await;
    outcome
}

#[tokio::test]
async fn verify_check_approved() {
    let response = ResponseTemplate::new(200).set_body_json(json!({"status": "approved", "valid": true}));
    assert_eq!(check_with(response).await.unwrap(), HostedCheck::Approved);
}

#[tokio::test]
async fn verify_check_pending_is_a_wrong_code() {
    let response = ResponseTemplate::new(200).set_body_json(json!({"status": "pending", "valid": false}));
    assert_eq!(check_with(response).await.unwrap(), HostedCheck::Rejected);
}

#[tokio::test]
async fn verify_check_404_without_a_body_is_not_found() {
    assert_eq!(
        check_with(ResponseTemplate::new(404)).await.unwrap(),
        HostedCheck::NotFound
    );
}

#[tokio::test]
async fn verify_check_20404_is_not_found() {
    let response = twilio_error(404, 20404, "The requested resource was not found");
    assert_eq!(check_with(response).await.unwrap(), HostedCheck::NotFound);
    // The code alone decides, whatever the status.
    let response = twilio_error(400, 20404, "The requested resource was not found");
    assert_eq!(check_with(response).await.unwrap(), HostedCheck::NotFound);
}

#[tokio::test]
async fn verify_check_of_a_closed_verification_is_not_found() {
    let response = ResponseTemplate::new(200).set_body_json(json!({"status": "max_attempts_reached"}));
    assert_eq!(check_with(response).await.unwrap(), HostedCheck::NotFound);
}

// --- Error mapping -----------------------------------------------------

/// Sends the SMS to a server answering `response` every time, asserts that
/// exactly `requests` identical requests were made, and returns the error.
async fn sms_error(response: ResponseTemplate, expected_requests: usize) -> DeliveryError {
    let server = MockServer::start().await;
    mount(&server, &messages_path(), response).await;
    let error = client(&server).send_sms(&sms()).await.unwrap_err();
    assert_requests(&server, expected_requests, &messages_path(), &sms_fields()).await;
    error
}

/// The same with a Verify start by SMS.
async fn verify_start_error(response: ResponseTemplate) -> DeliveryError {
    let server = MockServer::start().await;
    mount(&server, &verifications_path(), response).await;
    let error = client(&server).start(&phone(), Channel::Sms, "en").await.unwrap_err();
    assert_requests(
        &server,
        1,
        &verifications_path(),
        &[("To", TO), ("Channel", "sms"), ("Locale", "en")],
    )
    .await;
    error
}

#[tokio::test]
async fn code_21211_is_an_invalid_number() {
    let error = sms_error(
        twilio_error(400, 21211, "The 'To' number is not a valid phone number."),
        1,
    )
    .await;
    assert!(matches!(error, DeliveryError::InvalidNumber), "{error:?}");
}

#[tokio::test]
async fn code_60200_is_an_invalid_number() {
    let error = verify_start_error(twilio_error(400, 60200, "Invalid parameter `To`")).await;
    assert!(matches!(error, DeliveryError::InvalidNumber), "{error:?}");
}

#[tokio::test]
async fn code_20429_is_a_rate_limit_with_retry_after() {
    let response = twilio_error(429, 20429, "Too Many Requests").insert_header("Retry-After", "30");
    let error = sms_error(response, 1).await;
    assert!(
        matches!(error, DeliveryError::RateLimited { retry_after: Some(delay) } if delay == Duration::from_secs(30)),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_bare_429_is_a_rate_limit_without_a_delay() {
    let error = sms_error(ResponseTemplate::new(429), 1).await;
    assert!(
        matches!(error, DeliveryError::RateLimited { retry_after: None }),
        "{error:?}"
    );
}

#[tokio::test]
async fn code_60203_is_a_rate_limit() {
    let error = verify_start_error(twilio_error(429, 60203, "Max send attempts reached")).await;
    assert!(
        matches!(error, DeliveryError::RateLimited { retry_after: None }),
        "{error:?}"
    );
}

#[tokio::test]
async fn code_60212_is_a_rate_limit() {
    let response =
        twilio_error(429, 60212, "Too many concurrent requests for phone number").insert_header("Retry-After", "2");
    let error = verify_start_error(response).await;
    assert!(
        matches!(error, DeliveryError::RateLimited { retry_after: Some(delay) } if delay == Duration::from_secs(2)),
        "{error:?}"
    );
}

#[tokio::test]
async fn code_20003_is_a_misconfiguration() {
    let error = sms_error(twilio_error(401, 20003, "Authenticate"), 1).await;
    let DeliveryError::Misconfigured(message) = &error else {
        panic!("expected Misconfigured, got {error:?}");
    };
    assert!(message.contains("20003"), "{message}");
    assert!(!error.to_string().contains(AUTH_TOKEN));
}

#[tokio::test]
async fn a_403_is_a_misconfiguration() {
    let error = sms_error(ResponseTemplate::new(403), 1).await;
    assert!(matches!(error, DeliveryError::Misconfigured(_)), "{error:?}");
}

#[tokio::test]
async fn a_400_is_not_retried() {
    let error = sms_error(twilio_error(400, 21602, "Message body is required."), 1).await;
    let DeliveryError::Unavailable(message) = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(message.contains("21602"), "{message}");
}

#[tokio::test]
async fn a_500_is_retried_and_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(twilio_error(500, 20500, "Internal Server Error"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    mount(&server, &messages_path(), created()).await;

    client(&server).send_sms(&sms()).await.unwrap();

    assert_requests(&server, 2, &messages_path(), &sms_fields()).await;
}

#[tokio::test]
async fn a_503_every_time_is_unavailable_after_max_attempts() {
    let server = MockServer::start().await;
    mount(&server, &messages_path(), ResponseTemplate::new(503)).await;
    let mut settings = settings(&server);
    settings.max_attempts = 4;

    let error = TwilioClient::new(settings).unwrap().send_sms(&sms()).await.unwrap_err();

    let DeliveryError::Unavailable(message) = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(
        message.contains("HTTP 503") && message.contains("4 attempts"),
        "{message}"
    );
    assert_requests(&server, 4, &messages_path(), &sms_fields()).await;
}

#[tokio::test]
async fn retries_back_off_exponentially() {
    let server = MockServer::start().await;
    mount(&server, &messages_path(), ResponseTemplate::new(503)).await;
    let mut settings = settings(&server);
    settings.retry_base_delay = Duration::from_millis(40);
    let started = Instant::now();

    TwilioClient::new(settings).unwrap().send_sms(&sms()).await.unwrap_err();

    // Three attempts wait 40 ms, then 80 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(120),
        "{:?}",
        started.elapsed()
    );
    assert_requests(&server, 3, &messages_path(), &sms_fields()).await;
}

#[tokio::test]
async fn a_response_slower_than_the_timeout_is_retried_then_unavailable() {
    let server = MockServer::start().await;
    mount(&server, &messages_path(), created().set_delay(Duration::from_secs(3))).await;
    let mut settings = settings(&server);
    settings.timeout = Duration::from_millis(200);

    let error = TwilioClient::new(settings).unwrap().send_sms(&sms()).await.unwrap_err();

    let DeliveryError::Unavailable(message) = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(message.contains("timed out"), "{message}");
    assert_requests(&server, 3, &messages_path(), &sms_fields()).await;
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_unavailable() {
    // A port that was just free: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = MockServer::start().await;
    let mut settings = settings(&server);
    settings.api_base_url = format!("http://127.0.0.1:{port}");

    let error = TwilioClient::new(settings).unwrap().send_sms(&sms()).await.unwrap_err();

    let DeliveryError::Unavailable(message) = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(
        message.contains("could not connect") && message.contains("3 attempts"),
        "{message}"
    );
}

#[tokio::test]
async fn a_verify_check_500_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(check_path()))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad gateway</html>"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    mount(
        &server,
        &check_path(),
        ResponseTemplate::new(200).set_body_json(json!({"status": "approved"})),
    )
    .await;

    let outcome = client(&server).check(&phone(), &code()).await.unwrap();

    assert_eq!(outcome, HostedCheck::Approved);
    assert_requests(&server, 2, &check_path(), &[("To", TO), ("Code", CODE)]).await;
}

#[test]
fn twilio_errors_are_typed() {
    let error = TwilioError::from_response(
        400,
        None,
        br#"{"code": 21211, "message": "Invalid 'To' Phone Number", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#,
    );
    assert_eq!(error.status, 400);
    assert_eq!(error.code, Some(21211));
    assert_eq!(error.message, "Invalid 'To' Phone Number");
    assert_eq!(
        error.more_info.as_deref(),
        Some("https://www.twilio.com/docs/errors/21211")
    );
    assert!(matches!(DeliveryError::from(error), DeliveryError::InvalidNumber));
}

// --- Secrets -----------------------------------------------------------

#[test]
fn debug_output_redacts_the_auth_token() {
    let mut settings = TwilioSettings::new(ACCOUNT_SID, SecretString::from(AUTH_TOKEN));
    settings.from_number = Some(FROM.to_owned());
    let debug = format!("{settings:?}");
    assert!(!debug.contains(AUTH_TOKEN), "{debug}");
    assert!(debug.contains("[redacted]") && debug.contains(ACCOUNT_SID), "{debug}");
    let client = TwilioClient::new(settings).unwrap();
    let debug = format!("{client:?}");
    assert!(!debug.contains(AUTH_TOKEN), "{debug}");
}

#[test]
fn invalid_settings_are_refused_without_the_token() {
    let valid = || {
        let mut settings = TwilioSettings::new(ACCOUNT_SID, SecretString::from(AUTH_TOKEN));
        settings.from_number = Some(FROM.to_owned());
        settings
    };
    let mut cases = vec![];
    let mut settings = valid();
    settings.account_sid = "AC/../../x".to_owned();
    cases.push(settings);
    let mut settings = valid();
    settings.auth_token = SecretString::from("");
    cases.push(settings);
    let mut settings = valid();
    settings.from_number = None;
    cases.push(settings);
    let mut settings = valid();
    settings.max_attempts = 0;
    cases.push(settings);
    let mut settings = valid();
    settings.api_base_url = "not a url".to_owned();
    cases.push(settings);
    let mut settings = valid();
    settings.verify_base_url = format!("ftp://{AUTH_TOKEN}@example.com");
    cases.push(settings);
    for settings in cases {
        let error = TwilioClient::new(settings.clone()).unwrap_err().to_string();
        assert!(!error.contains(AUTH_TOKEN), "{error}");
    }
}

/// Twilio's error text is scrubbed of the token and of the message even if
/// Twilio (or something pretending to be it) echoes them.
#[tokio::test]
async fn no_error_shows_the_token_or_the_message() {
    let echo = format!("bad request {AUTH_TOKEN} {SMS_BODY}");
    let mut errors = vec![];
    for (status, code) in [
        (400, 21211),
        (400, 60200),
        (429, 20429),
        (429, 60203),
        (429, 60212),
        (401, 20003),
        (400, 21602),
        (404, 20404),
    ] {
        errors.push(sms_error(twilio_error(status, code, &echo).insert_header("Retry-After", "1"), 1).await);
    }
    errors.push(sms_error(twilio_error(500, 20500, &echo), 3).await);
    for error in &errors {
        for text in [error.to_string(), format!("{error:?}")] {
            assert!(!text.contains(AUTH_TOKEN), "{text}");
            assert!(!text.contains(SMS_BODY), "{text}");
        }
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Captures everything logged at TRACE (ours, reqwest's, hyper's) while
/// every operation runs, failing ones and retries included, and searches it
/// for the token, the credentials header, the message, the spoken text and
/// the code.
#[tokio::test]
async fn logs_carry_twilio_codes_but_no_secret() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        // Timestamps could contain the code's digits by chance.
        .without_time()
        .with_writer(capture.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let spoken = "Your phonegate code is 4, 8, 2, 9, 1, 3. Again, your code is 4, 8, 2, 9, 1, 3.";
    let call = OutgoingCall {
        to: phone(),
        spoken_text: SecretString::from(spoken),
    };

    let server = MockServer::start().await;
    mount(&server, &messages_path(), created()).await;
    mount(&server, &calls_path(), created()).await;
    mount(&server, &verifications_path(), verification_created()).await;
    mount(
        &server,
        &check_path(),
        ResponseTemplate::new(200).set_body_json(json!({"status": "approved"})),
    )
    .await;
    let ok = client(&server);
    ok.send_sms(&sms()).await.unwrap();
    ok.call(&call).await.unwrap();
    ok.start(&phone(), Channel::Sms, "en").await.unwrap();
    ok.check(&phone(), &code()).await.unwrap();

    for response in [
        twilio_error(400, 21211, "Invalid 'To' Phone Number"),
        twilio_error(401, 20003, "Authenticate"),
        twilio_error(503, 20503, "Service Unavailable"),
    ] {
        let server = MockServer::start().await;
        for route in [messages_path(), calls_path(), verifications_path(), check_path()] {
            mount(&server, &route, response.clone()).await;
        }
        let failing = client(&server);
        failing.send_sms(&sms()).await.unwrap_err();
        failing.call(&call).await.unwrap_err();
        failing.start(&phone(), Channel::Call, "en").await.unwrap_err();
        failing.check(&phone(), &code()).await.unwrap_err();
    }

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"));
    for secret in [AUTH_TOKEN, credentials.as_str(), SMS_BODY, spoken, CODE] {
        assert!(!logs.contains(secret), "the logs contain {secret:?}:\n{logs}");
    }
    for expected in [
        "21211",
        "20003",
        "Authenticate",
        "http_status=401",
        "retrying",
        "unavailable",
    ] {
        assert!(logs.contains(expected), "the logs lack {expected:?}:\n{logs}");
    }
}

// --- Through the outbox --------------------------------------------------

/// An SQLite store with one text to `TO` queued (its challenge live), a
/// dispatcher over it that sends through Twilio at `server`, and the
/// database (kept alive by the caller).
async fn queued_text(
    server: &MockServer,
) -> (
    phonegate_adapters::testing::TestDatabase,
    Arc<phonegate_adapters::sql::SqlStore>,
    phonegate_domain::outbox::Dispatcher,
) {
    use phonegate_adapters::{
        clock::ManualClock,
        sql::{Db, DbOptions, SqlStore, migrate},
        testing::{TestBackend, TestDatabase},
    };
    use phonegate_domain::{
        delivery::Messenger,
        otp::{NewChallenge, Purpose, SecretHash},
        outbox::{DispatchSettings, Dispatcher, Envelope, OutboxMessage, Outgoing},
        ports::{ChallengeStore as _, Clock as _, MockMailer},
    };
    let database = TestDatabase::create(TestBackend::Sqlite).await;
    let db = Db::connect(&database.url, &DbOptions::default()).await.unwrap();
    let clock = ManualClock::starting_now();
    let now = clock.now();
    migrate(&db, now.unix_millis()).await.unwrap();
    let store = Arc::new(SqlStore::new(db));
    let challenge = NewChallenge {
        purpose: Purpose::PhoneVerify,
        phone: phone(),
        user_id: None,
        channel: Channel::Sms,
        device_binding: None,
        lookup_hash: SecretHash::from_bytes(vec![1; 32]),
        code_hash: SecretHash::from_bytes(vec![2; 32]),
        max_attempts: 5,
        created_at: now,
        expires_at: now.plus(Duration::from_secs(600)),
        sent_prefix: None,
    };
    let message = Outgoing::Message(OutboxMessage {
        envelope: Envelope::Sms(sms()),
        purpose: "phone_verify",
        created_at: now,
        not_after: now.plus(Duration::from_secs(600)),
    });
    store.replace_live(challenge, message).await.unwrap();
    let twilio = Arc::new(client(server));
    let dispatcher = Dispatcher::new(
        store.clone(),
        Messenger::new(twilio.clone(), twilio, "phonegate".into()),
        Arc::new(MockMailer::new()),
        Arc::new(clock),
        DispatchSettings::default(),
    );
    (database, store, dispatcher)
}

/// The outbox row's (state, attempts, last_error).
async fn outbox_row(store: &phonegate_adapters::sql::SqlStore) -> (String, i32, Option<String>) {
    let phonegate_adapters::sql::Db::Sqlite(pool) = store.db() else {
        panic!("an SQLite store");
    };
    sqlx::query_as("SELECT state, attempts, last_error FROM outbox")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Security II, finding 14: Twilio's final refusals (not a mobile number,
/// region not enabled, recipient opted out, invalid number) fail the
/// message at once: one request, the row failed, no retry until expiry.
#[tokio::test]
async fn final_twilio_refusals_fail_the_message_at_once() {
    for code in [21610, 21408, 21614, 21211] {
        let server = MockServer::start().await;
        mount(&server, &messages_path(), twilio_error(400, code, "Refused")).await;
        let (_database, store, dispatcher) = queued_text(&server).await;
        let report = dispatcher.dispatch_due().await.unwrap();
        assert_eq!((report.claimed, report.failed), (1, 1), "{code}: {report:?}");
        assert_requests(&server, 1, &messages_path(), &sms_fields()).await;
        let (state, attempts, _) = outbox_row(&store).await;
        assert_eq!((state.as_str(), attempts), ("failed", 1), "{code}");
    }
}

/// Security II, finding 14: the outbox's `last_error` keeps Twilio's status
/// and code, never its text, which echoes the number (and could echo the
/// message).
#[tokio::test]
async fn last_error_holds_no_number_and_no_text() {
    let echo = format!("The 'To' number {TO} is not a valid phone number: {SMS_BODY}");
    for (status, code, final_state) in [(400, 21211, "failed"), (400, 21602, "pending"), (401, 20003, "pending")] {
        let server = MockServer::start().await;
        mount(&server, &messages_path(), twilio_error(status, code, &echo)).await;
        let (_database, store, dispatcher) = queued_text(&server).await;
        dispatcher.dispatch_due().await.unwrap();
        let (state, _, last_error) = outbox_row(&store).await;
        assert_eq!(state, final_state, "{code}");
        let last_error = last_error.unwrap();
        for leak in ["4155550100", "not a valid", "482913", "Your phonegate"] {
            assert!(!last_error.contains(leak), "{code}: {last_error}");
        }
    }
}
