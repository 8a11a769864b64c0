//! Calls through the Voice API: the request and its JWT, the senders and
//! settings calls need, and the mapping of every documented answer.

use std::{
    collections::HashSet,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use phonegate_adapters::vonage::VonageClient;
use phonegate_domain::ports::{DeliveryError, OutgoingCall, Sender, SmsSender, VoiceCaller};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use wiremock::{MockServer, Request, ResponseTemplate};

use super::*;

/// The claims Vonage reads from an application JWT.
#[derive(Debug, Deserialize)]
struct Claims {
    application_id: String,
    iat: u64,
    exp: u64,
    jti: String,
}

/// Verifies the request's bearer token with the application's public key
/// (RS256 only, unexpired) and returns its claims.
fn verified_claims(request: &Request) -> Claims {
    let authorization = request.headers.get("authorization").unwrap().to_str().unwrap();
    let token = authorization.strip_prefix("Bearer ").unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let key = DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iat", "jti"]);
    jsonwebtoken::decode::<Claims>(token, &key, &validation).unwrap().claims
}

/// Asserts that `request` is a JSON POST to `/v1/calls` with exactly the
/// body of a call from `from` speaking `text` in `language`, and returns
/// its verified claims.
fn assert_call_request(request: &Request, from: &str, text: &str, language: &str) -> Claims {
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), CALLS_PATH);
    assert_eq!(request.url.query(), None);
    assert_eq!(
        request.headers.get("content-type").unwrap().to_str().unwrap(),
        "application/json"
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        json!({
            "to": [{"type": "phone", "number": "14155550100"}],
            "from": {"type": "phone", "number": from},
            "ncco": [{"action": "talk", "text": text, "language": language}],
        })
    );
    verified_claims(request)
}

/// Places `call()` against a server answering `response`, asserts the one
/// request it made, and returns the error.
async fn call_error(response: ResponseTemplate) -> DeliveryError {
    let server = MockServer::start().await;
    mount_once(&server, CALLS_PATH, response).await;
    let error = client(&server).call(&call()).await.unwrap_err();
    let received = requests(&server).await;
    assert_eq!(received.len(), 1, "exactly one request");
    assert_call_request(&received[0], "15005550006", SPOKEN, "en-US");
    error
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn a_call_speaks_the_text_with_a_signed_application_jwt() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CALLS_PATH))
        .respond_with(call_created())
        .expect(2)
        .mount(&server)
        .await;
    let client = client(&server);

    client.call(&call()).await.unwrap();
    client.call(&call()).await.unwrap();

    let received = requests(&server).await;
    assert_eq!(received.len(), 2);
    let mut ids = HashSet::new();
    for request in &received {
        let claims = assert_call_request(request, "15005550006", SPOKEN, "en-US");
        assert_eq!(claims.application_id, APPLICATION_ID);
        assert!(claims.iat.abs_diff(now()) < 60, "iat {}", claims.iat);
        assert!(claims.exp > claims.iat);
        assert!(claims.exp - claims.iat <= 15 * 60, "a short-lived token");
        assert!(!claims.jti.is_empty());
        ids.insert(claims.jti);
    }
    assert_eq!(ids.len(), 2, "each request has its own jti");
}

#[tokio::test]
async fn the_language_and_a_route_sender_are_used() {
    let server = MockServer::start().await;
    mount_once(&server, CALLS_PATH, call_created()).await;
    let mut settings = settings(&server);
    settings.voice_language = "pt-BR".to_owned();
    settings.private_key = Some(SecretString::from(PRIVATE_KEY_PKCS1));
    let sender = Sender::Number("+447700900001".to_owned());
    assert!(VonageClient::supports_calls(&sender));
    let spoken = "O seu código é 4, 8, 2.";

    VonageClient::new(settings)
        .unwrap()
        .with_sender(sender)
        .call(&OutgoingCall {
            to: phone(),
            spoken_text: SecretString::from(spoken),
        })
        .await
        .unwrap();

    assert_call_request(&requests(&server).await[0], "447700900001", spoken, "pt-BR");
}

#[tokio::test]
async fn only_a_number_can_place_calls() {
    let server = MockServer::start().await;
    for sender in [
        Sender::Alphanumeric("Acme".to_owned()),
        Sender::MessagingService("MG0123456789abcdef0123456789abcdef".to_owned()),
    ] {
        assert!(!VonageClient::supports_calls(&sender));
        let error = client(&server).with_sender(sender).call(&call()).await.unwrap_err();
        assert!(matches!(error, DeliveryError::Misconfigured(_)), "{error:?}");
    }
    let mut settings = settings(&server);
    settings.from = None;
    let error = VonageClient::new(settings).unwrap().call(&call()).await.unwrap_err();
    assert!(matches!(error, DeliveryError::Misconfigured(_)), "{error:?}");
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn calls_need_the_application_and_its_key_but_texts_do_not() {
    let server = MockServer::start().await;
    mount_once(&server, SMS_PATH, sms_accepted()).await;
    let mut without_id = settings(&server);
    without_id.application_id = None;
    let mut without_key = settings(&server);
    without_key.private_key = None;

    for settings in [without_id, without_key] {
        let client = VonageClient::new(settings).unwrap();
        let error = client.call(&call()).await.unwrap_err();
        assert!(matches!(error, DeliveryError::Misconfigured(_)), "{error:?}");
    }
    let mut sms_only = settings(&server);
    (sms_only.application_id, sms_only.private_key) = (None, None);
    VonageClient::new(sms_only).unwrap().send_sms(&sms()).await.unwrap();
    assert!(requests(&server).await.iter().all(|r| r.url.path() == SMS_PATH));
}

#[test]
fn a_private_key_that_is_not_an_rsa_pem_is_refused() {
    for pem in [
        "not a key".to_owned(),
        ED25519_KEY.to_owned(),
        PUBLIC_KEY.to_owned(),
        PRIVATE_KEY.replace("MII", "XXX"),
    ] {
        let mut settings = VonageSettings::new(API_KEY, SecretString::from(API_SECRET));
        settings.private_key = Some(SecretString::from(pem.clone()));
        let error = VonageClient::new(settings).unwrap_err().to_string();
        assert!(error.contains("private_key"), "{error}");
        assert!(
            !error.contains("BEGIN") && !error.contains(&pem[pem.len() / 2..]),
            "{error}"
        );
    }
}

#[tokio::test]
async fn an_invalid_to_is_an_invalid_number() {
    let response = ResponseTemplate::new(400).set_body_json(json!({
        "type": "https://developer.nexmo.com/api-errors#bad-request",
        "title": "Bad Request",
        "detail": "The request failed due to validation errors",
        "invalid_parameters": [{"name": "to[0].number", "reason": "14155550100 is not a valid number"}],
        "instance": "bf0ca0bf927b3b52e3cb03217e1a1ddf",
    }));
    let error = call_error(response).await;
    assert!(matches!(error, DeliveryError::InvalidNumber), "{error:?}");
}

#[tokio::test]
async fn another_bad_request_is_a_refusal() {
    let response = ResponseTemplate::new(400).set_body_json(json!({
        "type": "https://developer.nexmo.com/api-errors#bad-request",
        "title": "Bad Request",
        "invalid_parameters": [{"name": "ncco[0].language", "reason": "unsupported"}],
    }));
    let error = call_error(response).await;
    assert!(
        matches!(error, DeliveryError::Rejected(ref text) if text == "vonage http 400"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_401_is_a_misconfiguration() {
    let error = call_error(problem(
        401,
        "unauthorized",
        "Invalid credentials supplied",
        "You did not provide correct credentials.",
    ))
    .await;
    assert!(
        matches!(error, DeliveryError::Misconfigured(ref text) if text == "vonage http 401"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_403_low_balance_is_a_misconfiguration() {
    let error = call_error(problem(
        403,
        "low-balance",
        "You do not have enough credit",
        "Your balance is 0.",
    ))
    .await;
    assert!(matches!(error, DeliveryError::Misconfigured(_)), "{error:?}");
}

#[tokio::test]
async fn a_429_is_a_rate_limit_with_retry_after() {
    let response = problem(429, "throttled", "Too Many Requests", "Slow down.").insert_header("Retry-After", "2");
    let error = call_error(response).await;
    assert!(
        matches!(error, DeliveryError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(2)),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_5xx_is_unavailable_after_one_request() {
    let error = call_error(problem(503, "internal-error", "Service Unavailable", "Try later.")).await;
    assert!(
        matches!(error, DeliveryError::Unavailable(ref text) if text == "vonage http 503"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_response_slower_than_the_timeout_is_unavailable_after_one_request() {
    let server = MockServer::start().await;
    mount_once(&server, CALLS_PATH, call_created().set_delay(Duration::from_secs(3))).await;
    let mut settings = settings(&server);
    settings.timeout = Duration::from_millis(200);

    let error = VonageClient::new(settings).unwrap().call(&call()).await.unwrap_err();

    assert!(
        matches!(error, DeliveryError::Unavailable(ref text) if text.contains("timed out")),
        "{error:?}"
    );
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    let server = MockServer::start().await;
    let mut settings = settings(&server);
    settings.voice_base_url = refusing_url();

    let error = VonageClient::new(settings).unwrap().call(&call()).await.unwrap_err();

    assert!(
        matches!(error, DeliveryError::Unavailable(ref text) if text.contains("could not connect")),
        "{error:?}"
    );
}
