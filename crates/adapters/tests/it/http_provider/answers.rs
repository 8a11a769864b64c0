//! What each answer of the receiver becomes, after exactly one request.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use phonegate_adapters::{
    http_provider::{HttpProvider, HttpProviderSettings},
    webhook_signature::WebhookSecret,
};
use phonegate_domain::ports::{DeliveryError, Metrics, SmsSender as _, VoiceCaller as _};
use serde_json::json;
use wiremock::ResponseTemplate;

use super::{KEY, QUEUED, ROUTE, call, provider, receiver, requests, settings, sms, whsec};

/// Sends the queued SMS to a receiver answering `answer` (after checking
/// the signature), asserts that exactly one request was made, and returns
/// the error.
async fn error_for(answer: ResponseTemplate) -> DeliveryError {
    let server = receiver(KEY, answer).await;
    let error = provider(&server).send_queued_sms(&sms(), QUEUED).await.unwrap_err();
    assert_eq!(requests(&server).await.len(), 1, "exactly one request: {error:?}");
    error
}

#[tokio::test]
async fn a_5xx_is_unavailable_after_one_request() {
    for status in [500, 502, 503] {
        let error = error_for(ResponseTemplate::new(status)).await;
        assert!(
            matches!(&error, DeliveryError::Unavailable(text) if *text == format!("http {status}")),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn a_timeout_is_unavailable_after_one_request() {
    let server = receiver(KEY, ResponseTemplate::new(200).set_delay(Duration::from_secs(3))).await;
    let mut settings = settings(&server);
    settings.timeout = Duration::from_millis(200);

    let error = HttpProvider::new(settings)
        .unwrap()
        .send_queued_sms(&sms(), QUEUED)
        .await
        .unwrap_err();

    assert!(
        matches!(&error, DeliveryError::Unavailable(text) if text == "timeout"),
        "{error:?}"
    );
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    // A port that was just free: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let secret = WebhookSecret::parse(&whsec(KEY)).unwrap();
    let settings = HttpProviderSettings::new(format!("http://127.0.0.1:{port}{ROUTE}"), secret);

    let error = HttpProvider::new(settings).unwrap().call(&call()).await.unwrap_err();

    assert!(
        matches!(&error, DeliveryError::Unavailable(text) if text == "connection error"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_400_is_rejected_at_once() {
    let error = error_for(ResponseTemplate::new(400).set_body_json(json!({"error": "bad_request"}))).await;
    assert!(
        matches!(&error, DeliveryError::Rejected(text) if text == "http 400"),
        "{error:?}"
    );
}

#[tokio::test]
async fn invalid_number_is_final_after_one_request() {
    for status in [400, 422] {
        let error = error_for(ResponseTemplate::new(status).set_body_json(json!({"error": "invalid_number"}))).await;
        assert!(matches!(error, DeliveryError::InvalidNumber), "{status}: {error:?}");
    }
}

#[tokio::test]
async fn a_429_is_a_rate_limit_with_its_retry_after() {
    let error = error_for(ResponseTemplate::new(429).insert_header("Retry-After", "30")).await;
    assert!(
        matches!(error, DeliveryError::RateLimited { retry_after: Some(delay) } if delay == Duration::from_secs(30)),
        "{error:?}"
    );
    let error = error_for(ResponseTemplate::new(429)).await;
    assert!(
        matches!(error, DeliveryError::RateLimited { retry_after: None }),
        "{error:?}"
    );
}

/// A receiver that does not accept our signature (its secret differs from
/// ours) refuses every message the same way: a settings problem, kept for
/// a retry once the settings are fixed, rather than a final refusal.
#[tokio::test]
async fn a_signature_the_receiver_refuses_is_a_misconfiguration() {
    let server = receiver(b"the receiver's different 32 byte", ResponseTemplate::new(200)).await;

    let error = provider(&server).send_queued_sms(&sms(), QUEUED).await.unwrap_err();

    assert!(
        matches!(&error, DeliveryError::Misconfigured(text) if text == "http 401"),
        "{error:?}"
    );
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let answer = ResponseTemplate::new(301).insert_header("Location", "http://127.0.0.1:9/elsewhere");
    let error = error_for(answer).await;
    assert!(
        matches!(&error, DeliveryError::Misconfigured(text) if text == "http 301"),
        "{error:?}"
    );
}

#[derive(Debug, Default)]
struct Recorded(Mutex<Vec<String>>);

impl Metrics for Recorded {
    fn delivery(&self, _: &'static str, _: &'static str, _: Option<&'static str>, _: &'static str) {}

    fn code_check(&self, _: &'static str, _: &'static str) {}

    fn provider_call(&self, _: &'static str, _: &'static str, _: Duration, _: &'static str) {}

    fn provider_error_code(&self, provider: &'static str, operation: &'static str, code: &str) {
        self.0.lock().unwrap().push(format!("{provider}/{operation}/{code}"));
    }
}

#[tokio::test]
async fn failures_are_counted_by_status_or_kind() {
    let metrics = Arc::new(Recorded::default());
    for answer in [ResponseTemplate::new(503), ResponseTemplate::new(400)] {
        let server = receiver(KEY, answer).await;
        let provider = provider(&server).with_metrics(metrics.clone());
        provider.send_queued_sms(&sms(), QUEUED).await.unwrap_err();
        provider.place_queued_call(&call(), QUEUED).await.unwrap_err();
    }
    let server = receiver(KEY, ResponseTemplate::new(200).set_delay(Duration::from_secs(3))).await;
    let mut settings = settings(&server);
    settings.timeout = Duration::from_millis(100);
    let slow = HttpProvider::new(settings).unwrap().with_metrics(metrics.clone());
    slow.send_queued_sms(&sms(), QUEUED).await.unwrap_err();
    let server = receiver(KEY, ResponseTemplate::new(200)).await;
    provider(&server)
        .with_metrics(metrics.clone())
        .send_queued_sms(&sms(), QUEUED)
        .await
        .unwrap();

    assert_eq!(
        *metrics.0.lock().unwrap(),
        [
            "http/send_sms/http_503",
            "http/call/http_503",
            "http/send_sms/http_400",
            "http/call/http_400",
            "http/send_sms/timeout"
        ]
    );
}
