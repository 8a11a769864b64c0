//! What must never leave the adapter: the API secret, the private key, the
//! JWT, the text, the spoken code and the recipient's number, in `Debug`,
//! in errors and in logs; and what it counts.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use phonegate_adapters::vonage::{VonageClient, VonageSettings};
use phonegate_domain::ports::{DeliveryError, Metrics, SmsSender, VoiceCaller};
use secrecy::SecretString;
use serde_json::json;
use wiremock::{MockServer, ResponseTemplate};

use super::*;

/// A line from the middle of the private key.
fn key_line() -> &'static str {
    PRIVATE_KEY.lines().nth(5).unwrap()
}

#[test]
fn debug_output_redacts_the_secret_and_the_key() {
    let mut settings = VonageSettings::new(API_KEY, SecretString::from(API_SECRET));
    settings.private_key = Some(SecretString::from(PRIVATE_KEY));
    settings.application_id = Some(APPLICATION_ID.to_owned());
    let debug = format!("{settings:?}");
    assert!(debug.contains(API_KEY) && debug.contains("[redacted]"), "{debug}");
    let client = VonageClient::new(settings).unwrap();
    for debug in [debug, format!("{client:?}")] {
        assert!(!debug.contains(API_SECRET), "{debug}");
        assert!(!debug.contains(key_line()) && !debug.contains("PRIVATE KEY"), "{debug}");
    }
}

#[test]
fn invalid_settings_are_refused_naming_the_field_and_no_secret() {
    let valid = || {
        let mut settings = VonageSettings::new(API_KEY, SecretString::from(API_SECRET));
        settings.private_key = Some(SecretString::from(PRIVATE_KEY));
        settings
    };
    let mut cases: Vec<(&str, VonageSettings)> = vec![];
    let mut settings = valid();
    settings.api_key = " ".to_owned();
    cases.push(("api_key", settings));
    let mut settings = valid();
    settings.api_secret = SecretString::from("");
    cases.push(("api_secret", settings));
    let mut settings = valid();
    settings.application_id = Some(String::new());
    cases.push(("application_id", settings));
    let mut settings = valid();
    settings.sms_base_url = format!("ftp://{API_SECRET}@example.com");
    cases.push(("sms_base_url", settings));
    let mut settings = valid();
    settings.voice_base_url = format!("not a url {API_SECRET}");
    cases.push(("voice_base_url", settings));
    let mut settings = valid();
    settings.voice_language = "en US\"".to_owned();
    cases.push(("voice_language", settings));
    let mut settings = valid();
    settings.timeout = Duration::ZERO;
    cases.push(("timeout", settings));
    let mut settings = valid();
    settings.private_key = Some(SecretString::from(format!("{API_SECRET}\n{}", &PRIVATE_KEY[40..])));
    cases.push(("private_key", settings));
    for (field, settings) in cases {
        let error = VonageClient::new(settings).unwrap_err().to_string();
        assert!(error.contains(field), "{field}: {error}");
        assert!(!error.contains(API_SECRET) && !error.contains(key_line()), "{error}");
    }
}

fn assert_clean(error: &DeliveryError) {
    for text in [error.to_string(), format!("{error:?}")] {
        for leak in [API_SECRET, SMS_BODY, SPOKEN, "4155550100", "482913"] {
            assert!(!text.contains(leak), "{leak:?} in {text}");
        }
    }
}

/// Vonage's texts can echo the number (and a broken proxy anything); none
/// of it reaches an error.
#[tokio::test]
async fn errors_hold_no_secret_and_no_number() {
    let echo = format!("Invalid 'to' address {TO} for {SMS_BODY} with {API_SECRET}");
    for status in ["1", "3", "4", "5", "7", "29"] {
        let server = MockServer::start().await;
        mount_once(&server, SMS_PATH, sms_refused(status, &echo)).await;
        assert_clean(&client(&server).send_sms(&sms()).await.unwrap_err());
    }
    for status in [400, 401, 403, 422, 429, 500] {
        let server = MockServer::start().await;
        let response = ResponseTemplate::new(status).set_body_json(json!({
            "type": "https://developer.nexmo.com/api-errors#bad-request",
            "title": echo,
            "detail": echo,
            "invalid_parameters": [{"name": "to", "reason": echo}],
        }));
        mount_once(&server, CALLS_PATH, response).await;
        assert_clean(&client(&server).call(&call()).await.unwrap_err());
    }
}

#[derive(Debug, Default)]
struct Recorded(Mutex<Vec<String>>);

impl Metrics for Recorded {
    fn delivery(&self, _: &'static str, _: &'static str, _: Option<&'static str>, _: &'static str) {}
    fn code_check(&self, _: &'static str, _: &'static str) {}
    fn provider_call(&self, _: &'static str, _: &'static str, _: Duration, _: &'static str) {}
    fn provider_error_code(&self, provider: &'static str, operation: &'static str, code: &str) {
        self.0.lock().unwrap().push(format!("{provider} {operation} {code}"));
    }
}

#[tokio::test]
async fn vonage_codes_are_counted() {
    let recorded = Arc::new(Recorded::default());
    let server = MockServer::start().await;
    mount_once(&server, SMS_PATH, sms_refused("7", "Number barred.")).await;
    mount_once(&server, CALLS_PATH, problem(401, "unauthorized", "Unauthorized", "No.")).await;
    let client = client(&server).with_metrics(recorded.clone());

    client.send_sms(&sms()).await.unwrap_err();
    client.call(&call()).await.unwrap_err();

    assert_eq!(
        *recorded.0.lock().unwrap(),
        ["vonage send_sms 7", "vonage call http_401"]
    );
}

/// Captures everything logged at TRACE (ours, reqwest's, hyper's) while
/// texts and calls succeed and fail, and searches it for every secret and
/// for the number.
#[tokio::test]
async fn logs_carry_vonage_codes_but_no_secret() {
    let capture = crate::log_capture::LogCapture::start();
    // With a single scoped subscriber, tracing decides whether a call site
    // is enabled from the default of whichever thread reaches it first, so
    // a site first reached by a test on another thread would stay silent
    // here. A second live dispatcher makes it ask every dispatcher instead.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());

    let server = MockServer::start().await;
    mount_once(&server, SMS_PATH, sms_accepted()).await;
    mount_once(&server, CALLS_PATH, call_created()).await;
    let ok = client(&server);
    ok.send_sms(&sms()).await.unwrap();
    ok.call(&call()).await.unwrap();
    let authorization = requests(&server).await[1].headers["authorization"]
        .to_str()
        .unwrap()
        .to_owned();
    let jwt = authorization.strip_prefix("Bearer ").unwrap().to_owned();

    let echo = format!("Invalid 'to' address {TO}");
    for (sms_answer, call_answer) in [
        (sms_refused("7", &echo), problem(400, "bad-request", &echo, &echo)),
        (sms_refused("4", &echo), problem(401, "unauthorized", &echo, &echo)),
        (ResponseTemplate::new(503), problem(503, "internal-error", &echo, &echo)),
    ] {
        let server = MockServer::start().await;
        mount_once(&server, SMS_PATH, sms_answer).await;
        mount_once(&server, CALLS_PATH, call_answer).await;
        let failing = client(&server);
        failing.send_sms(&sms()).await.unwrap_err();
        failing.call(&call()).await.unwrap_err();
    }
    let mut unreachable = settings(&server);
    unreachable.sms_base_url = refusing_url();
    VonageClient::new(unreachable)
        .unwrap()
        .send_sms(&sms())
        .await
        .unwrap_err();

    let logs = capture.text();
    for secret in [
        API_SECRET,
        key_line(),
        jwt.as_str(),
        SMS_BODY,
        SPOKEN,
        "482913",
        "4, 8, 2, 9",
        "4155550100",
    ] {
        assert!(!logs.contains(secret), "the logs contain {secret:?}:\n{logs}");
    }
    for expected in [
        "vonage_status=\"7\"",
        "vonage_status=\"4\"",
        "http_status=401",
        "unauthorized",
        "http_status=503",
        "could not connect",
    ] {
        assert!(logs.contains(expected), "the logs lack {expected:?}:\n{logs}");
    }
}
