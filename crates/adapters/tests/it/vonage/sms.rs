//! Texts through the SMS API: the request, the senders, and the mapping of
//! every documented answer.

use std::time::Duration;

use phonegate_adapters::vonage::VonageClient;
use phonegate_domain::ports::{DeliveryError, OutgoingSms, Sender, SmsSender};
use secrecy::SecretString;
use wiremock::{MockServer, Request, ResponseTemplate};

use super::*;

/// Asserts that `request` is a form POST to `/sms/json` carrying exactly
/// `expected` (no more, no fewer, none repeated), the credentials in the
/// body and nowhere else.
fn assert_sms_request(request: &Request, expected: &[(&str, &str)]) {
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), SMS_PATH);
    assert_eq!(request.url.query(), None, "nothing goes in the query string");
    assert_eq!(
        request.headers.get("content-type").unwrap().to_str().unwrap(),
        "application/x-www-form-urlencoded"
    );
    assert!(request.headers.get("authorization").is_none());
    let mut fields: Vec<(String, String)> = form_urlencoded::parse(&request.body).into_owned().collect();
    fields.sort();
    let mut expected: Vec<(String, String)> = expected
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(fields, expected);
}

fn fields_from(from: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("api_key", API_KEY),
        ("api_secret", API_SECRET),
        ("from", from),
        ("to", "14155550100"),
        ("text", SMS_BODY),
    ]
}

/// Sends `SMS_BODY` to a server answering `response`, asserts the one
/// request it made, and returns the error.
async fn sms_error(response: ResponseTemplate) -> DeliveryError {
    let server = MockServer::start().await;
    mount_once(&server, SMS_PATH, response).await;
    let error = client(&server).send_sms(&sms()).await.unwrap_err();
    let received = requests(&server).await;
    assert_eq!(received.len(), 1, "exactly one request");
    assert_sms_request(&received[0], &fields_from("15005550006"));
    error
}

#[tokio::test]
async fn a_text_is_one_form_post_with_the_credentials_in_the_body() {
    let server = MockServer::start().await;
    mount_once(&server, SMS_PATH, sms_accepted()).await;

    client(&server).send_sms(&sms()).await.unwrap();

    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    assert_sms_request(&received[0], &fields_from("15005550006"));
}

#[tokio::test]
async fn a_text_outside_gsm7_is_sent_as_unicode() {
    let server = MockServer::start().await;
    mount_once(&server, SMS_PATH, sms_accepted()).await;
    let text = "Ваш код phonegate: 482913";

    client(&server)
        .send_sms(&OutgoingSms {
            to: phone(),
            body: SecretString::from(text),
        })
        .await
        .unwrap();

    let mut expected = fields_from("15005550006");
    expected[4] = ("text", text);
    expected.push(("type", "unicode"));
    assert_sms_request(&requests(&server).await[0], &expected);
}

#[tokio::test]
async fn with_sender_changes_the_from_field() {
    for (sender, from) in [
        (Sender::Alphanumeric("Acme".to_owned()), "Acme"),
        (Sender::Number("+447700900001".to_owned()), "447700900001"),
    ] {
        assert!(VonageClient::supports(&sender));
        let server = MockServer::start().await;
        mount_once(&server, SMS_PATH, sms_accepted()).await;
        let base = client(&server);

        base.clone().with_sender(sender).send_sms(&sms()).await.unwrap();

        assert_sms_request(&requests(&server).await[0], &fields_from(from));
        // The original client still sends from the settings' number.
        assert_eq!(base.sender(), Some(&Sender::Number(FROM.to_owned())));
    }
}

#[tokio::test]
async fn a_messaging_service_is_misconfigured_and_sends_nothing() {
    let server = MockServer::start().await;
    let sender = Sender::MessagingService("MG0123456789abcdef0123456789abcdef".to_owned());
    assert!(!VonageClient::supports(&sender));

    let error = client(&server).with_sender(sender).send_sms(&sms()).await.unwrap_err();

    assert!(matches!(error, DeliveryError::Misconfigured(_)), "{error:?}");
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn a_text_without_a_sender_is_misconfigured_and_sends_nothing() {
    let server = MockServer::start().await;
    let mut settings = settings(&server);
    settings.from = None;

    let error = VonageClient::new(settings).unwrap().send_sms(&sms()).await.unwrap_err();

    assert!(matches!(error, DeliveryError::Misconfigured(_)), "{error:?}");
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn status_0_for_every_part_is_success() {
    let server = MockServer::start().await;
    let two_parts = ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "message-count": "2",
        "messages": [{"status": "0", "message-id": "A"}, {"status": "0", "message-id": "B"}],
    }));
    mount_once(&server, SMS_PATH, two_parts).await;
    client(&server).send_sms(&sms()).await.unwrap();
}

#[tokio::test]
async fn a_refused_second_part_fails_the_text() {
    let two_parts = ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "message-count": "2",
        "messages": [{"status": "0"}, {"status": "9", "error-text": "Quota Exceeded - rejected"}],
    }));
    let error = sms_error(two_parts).await;
    assert!(
        matches!(error, DeliveryError::Misconfigured(ref text) if text == "vonage 9"),
        "{error:?}"
    );
}

#[tokio::test]
async fn status_7_number_barred_is_an_invalid_number() {
    let error = sms_error(sms_refused("7", "Number barred.")).await;
    assert!(matches!(error, DeliveryError::InvalidNumber), "{error:?}");
}

#[tokio::test]
async fn status_33_number_deactivated_is_an_invalid_number() {
    let error = sms_error(sms_refused("33", "Number de-activated.")).await;
    assert!(matches!(error, DeliveryError::InvalidNumber), "{error:?}");
}

#[tokio::test]
async fn status_3_naming_to_is_an_invalid_number_and_otherwise_a_refusal() {
    let error = sms_error(sms_refused("3", "Invalid Request :: Invalid 'to' address")).await;
    assert!(matches!(error, DeliveryError::InvalidNumber), "{error:?}");
    let error = sms_error(sms_refused("3", "Invalid Request :: Invalid 'ttl' value")).await;
    assert!(
        matches!(error, DeliveryError::Rejected(ref text) if text == "vonage 3"),
        "{error:?}"
    );
}

#[tokio::test]
async fn status_1_throttled_is_a_rate_limit() {
    let error = sms_error(sms_refused(
        "1",
        "Throughput Rate Exceeded - please wait [ 10 ] and retry",
    ))
    .await;
    assert!(
        matches!(error, DeliveryError::RateLimited { retry_after: None }),
        "{error:?}"
    );
}

#[tokio::test]
async fn status_4_invalid_credentials_is_a_misconfiguration() {
    let error = sms_error(sms_refused("4", "Bad Credentials")).await;
    assert!(
        matches!(error, DeliveryError::Misconfigured(ref text) if text == "vonage 4"),
        "{error:?}"
    );
}

#[tokio::test]
async fn status_5_internal_error_is_unavailable() {
    let error = sms_error(sms_refused("5", "Internal Error")).await;
    assert!(
        matches!(error, DeliveryError::Unavailable(ref text) if text == "vonage 5"),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_other_documented_statuses() {
    for status in ["2", "6", "12", "22", "23", "29"] {
        let error = sms_error(sms_refused(status, "Refused")).await;
        assert!(
            matches!(error, DeliveryError::Rejected(ref text) if *text == format!("vonage {status}")),
            "{status}: {error:?}"
        );
    }
    for status in ["8", "9", "11", "14", "15", "32"] {
        let error = sms_error(sms_refused(status, "Refused")).await;
        assert!(
            matches!(error, DeliveryError::Misconfigured(ref text) if *text == format!("vonage {status}")),
            "{status}: {error:?}"
        );
    }
    let error = sms_error(sms_refused("10", "Too many binds")).await;
    assert!(matches!(error, DeliveryError::RateLimited { .. }), "{error:?}");
}

#[tokio::test]
async fn http_429_is_a_rate_limit_with_retry_after() {
    let error = sms_error(ResponseTemplate::new(429).insert_header("Retry-After", "30")).await;
    assert!(
        matches!(error, DeliveryError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(30)),
        "{error:?}"
    );
}

#[tokio::test]
async fn http_401_is_a_misconfiguration() {
    let error = sms_error(ResponseTemplate::new(401)).await;
    assert!(
        matches!(error, DeliveryError::Misconfigured(ref text) if text == "vonage http 401"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_5xx_is_unavailable_after_one_request() {
    for status in [500, 503] {
        let error = sms_error(ResponseTemplate::new(status).set_body_string("<html>oops</html>")).await;
        assert!(
            matches!(error, DeliveryError::Unavailable(ref text) if *text == format!("vonage http {status}")),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn a_success_without_statuses_counts_as_accepted() {
    // Failing it would hand the text to the route's next provider: the
    // user would get the code twice whenever a proxy mangles the body.
    let server = MockServer::start().await;
    mount_once(
        &server,
        SMS_PATH,
        ResponseTemplate::new(200).set_body_string("<html>proxy</html>"),
    )
    .await;
    client(&server).send_sms(&sms()).await.unwrap();
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn a_response_slower_than_the_timeout_is_unavailable_after_one_request() {
    let server = MockServer::start().await;
    mount_once(&server, SMS_PATH, sms_accepted().set_delay(Duration::from_secs(3))).await;
    let mut settings = settings(&server);
    settings.timeout = Duration::from_millis(200);

    let error = VonageClient::new(settings).unwrap().send_sms(&sms()).await.unwrap_err();

    let DeliveryError::Unavailable(message) = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(message.contains("timed out"), "{message}");
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    let server = MockServer::start().await;
    let mut settings = settings(&server);
    settings.sms_base_url = refusing_url();

    let error = VonageClient::new(settings).unwrap().send_sms(&sms()).await.unwrap_err();

    let DeliveryError::Unavailable(message) = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(message.contains("could not connect"), "{message}");
}
