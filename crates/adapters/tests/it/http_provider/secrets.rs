//! Settings are checked by field, and no secret reaches `Debug`, an error
//! or a log line.

use std::time::Duration;

use phonegate_adapters::{
    http_provider::{HttpProvider, HttpProviderSettings},
    webhook_signature::WebhookSecret,
};
use phonegate_domain::ports::{Sender, SmsSender as _, VoiceCaller as _};
use serde_json::json;
use wiremock::ResponseTemplate;

use super::{CODE, KEY, QUEUED, ROUTE, SMS_BODY, SPOKEN, TO, call, header, receiver, requests, settings, sms, whsec};

#[test]
fn invalid_settings_name_the_field_and_never_the_secret() {
    let secret = whsec(KEY);
    let valid = || HttpProviderSettings::new("https://sms.example.com/send", WebhookSecret::parse(&secret).unwrap());
    let mut cases = vec![];
    for url in [
        "sms.example.com/send".to_owned(),
        "ftp://sms.example.com/send".to_owned(),
        format!("ftp://user:{}@sms.example.com/send", &secret[6..]),
        "not a url".to_owned(),
    ] {
        let mut settings = valid();
        settings.url = url;
        cases.push(("url", settings));
    }
    let mut settings = valid();
    settings.locale = " ".to_owned();
    cases.push(("locale", settings));
    let mut settings = valid();
    settings.timeout = Duration::ZERO;
    cases.push(("timeout", settings));
    let mut settings = valid();
    settings.from = Some(Sender::Alphanumeric(String::new()));
    cases.push(("from", settings));
    for (field, settings) in cases {
        let error = HttpProvider::new(settings).unwrap_err();
        assert_eq!(error.field(), field, "{error}");
        let text = error.to_string();
        assert!(text.contains(field) && !text.contains(&secret), "{text}");
    }
    assert!(HttpProvider::new(valid()).is_ok());
}

#[test]
fn debug_redacts_the_secret_and_the_url_credentials() {
    let secret = whsec(KEY);
    let settings = HttpProviderSettings::new(
        "https://gateway:pa55w0rd@sms.example.com/send?token=t0k3n",
        WebhookSecret::parse(&secret).unwrap(),
    );
    let provider = HttpProvider::new(settings.clone()).unwrap();
    for debug in [format!("{settings:?}"), format!("{provider:?}")] {
        for leak in [secret.as_str(), &secret[6..], "pa55w0rd", "t0k3n"] {
            assert!(!debug.contains(leak), "{debug}");
        }
        assert!(debug.contains("sms.example.com/send"), "{debug}");
    }
}

/// Captures everything logged at TRACE (ours, reqwest's, hyper's) while
/// messages succeed and fail in every way, and searches it and the errors
/// for the message, the spoken text, the code, the recipient, the secret,
/// the signature and the URL's token.
#[tokio::test]
async fn logs_and_errors_carry_no_secret() {
    let capture = crate::log_capture::LogCapture::start();
    let token = "t0k3n-in-the-query";
    let mut errors = vec![];
    let mut signatures = vec![];
    for answer in [
        ResponseTemplate::new(200),
        ResponseTemplate::new(400).set_body_string(format!("bad {SMS_BODY} for {TO}")),
        ResponseTemplate::new(422).set_body_json(json!({"error": "invalid_number"})),
        ResponseTemplate::new(429),
        ResponseTemplate::new(503).set_body_string(SPOKEN),
        ResponseTemplate::new(200).set_delay(Duration::from_secs(2)),
    ] {
        let server = receiver(KEY, answer).await;
        let mut settings = settings(&server);
        settings.url = format!("{}{ROUTE}?token={token}", server.uri());
        settings.timeout = Duration::from_millis(500);
        let provider = HttpProvider::new(settings).unwrap();
        errors.push(provider.send_queued_sms(&sms(), QUEUED).await.map(drop));
        errors.push(provider.place_queued_call(&call(), QUEUED).await);
        signatures.extend(
            requests(&server)
                .await
                .iter()
                .map(|request| header(request, "webhook-signature")[3..].to_owned()),
        );
    }

    let logs = capture.text();
    let secret = whsec(KEY);
    let national = &TO[2..];
    let mut leaks = vec![SMS_BODY, SPOKEN, CODE, national, &secret[6..], token];
    leaks.extend(signatures.iter().map(String::as_str));
    for leak in &leaks {
        assert!(!logs.contains(leak), "the logs contain {leak:?}:\n{logs}");
    }
    for error in errors.iter().filter_map(|result| result.as_ref().err()) {
        for text in [error.to_string(), format!("{error:?}")] {
            for leak in &leaks {
                assert!(!text.contains(leak), "{text}");
            }
        }
    }
    for expected in ["http_status=400", "http_status=503", "timeout"] {
        assert!(logs.contains(expected), "the logs lack {expected:?}:\n{logs}");
    }
}
