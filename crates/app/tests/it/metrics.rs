//! `/metrics` moves with what the service does: codes sent by surface,
//! channel and provider, verifications by outcome, provider latency and
//! errors (by Twilio's error code), and HTTP requests by route template and
//! status.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use crate::common;

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use common::{TestApp, spawn_app};
use http_body_util::BodyExt as _;
use phonegate::{Overrides, build, settings::Settings};
use phonegate_adapters::{
    clock::ManualClock,
    sms::ConsoleEcho,
    testing::{TestBackend, TestDatabase},
};
use secrecy::SecretString;
use serde_json::json;
use tower::ServiceExt as _;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path_regex},
};

async fn metrics_text(router: &Router) -> String {
    let response = router
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

/// The value of the sample `series` (name and labels exactly as rendered),
/// 0 when it is absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

async fn pin_auth_flow(app: &TestApp, mobile: &str) {
    let reply = app
        .post_json(
            "/api/v1/auth/signup",
            &json!({"user_auth": {"mobile": mobile, "address_attributes": {}}}),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let key = reply.body["otp_auth_key"].as_str().unwrap().to_owned();
    let pin = app.last_code_to(mobile);
    let wrong = if pin == "0000" { "1111" } else { "0000" };
    let reply = app
        .post_json("/api/v1/auth/verify", &json!({"otp_auth_key": key, "pin": wrong}))
        .await;
    assert_ne!(reply.status, 200);
    let reply = app
        .post_json("/api/v1/auth/verify", &json!({"otp_auth_key": key, "pin": pin}))
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_moves_the_expected_counters() {
    let app = spawn_app(TestBackend::Sqlite).await;
    let before = metrics_text(&app.router).await;
    let sent = r#"phonegate_messages_sent_total{surface="pin_auth",channel="sms",provider="console"}"#;
    assert_eq!(sample(&before, sent), 0.0);

    pin_auth_flow(&app, "+85261677528").await;
    // phone-login by call, then a reset email.
    app.post_query("/v1/auth/phone_login?phone_number=(206)372-1234&device_id=d&call_verify=T")
        .await;
    app.create_user("metrics@example.com", "Metrics-Pass-1", "M", "E").await;
    app.form("POST", "/api/v1/tokens/reset.json", "email=metrics@example.com")
        .await;
    // A path that matches no route, with something secret-looking in it.
    let reply = app
        .send(
            Request::get("/nothing/here/secret-looking-token-123")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    let text = metrics_text(&app.router).await;
    assert_eq!(sample(&text, sent), 1.0, "{text}");
    assert_eq!(
        sample(
            &text,
            r#"phonegate_messages_sent_total{surface="phone_login",channel="call",provider="console"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"phonegate_messages_sent_total{surface="password_reset",channel="mail",provider="console"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"phonegate_verifications_total{surface="pin_auth",outcome="wrong_code"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            r#"phonegate_verifications_total{surface="pin_auth",outcome="verified"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            r#"phonegate_provider_request_duration_seconds_count{provider="console",operation="send_sms"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            r#"phonegate_provider_request_duration_seconds_count{provider="console",operation="call"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            r#"phonegate_provider_request_duration_seconds_count{provider="console",operation="send_mail"}"#
        ),
        1.0
    );
    // HTTP requests by route template and status; the raw path of an
    // unmatched request is never a label.
    assert_eq!(
        sample(
            &text,
            r#"phonegate_http_requests_total{route="/api/v1/auth/verify",method="POST",status="200"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"phonegate_http_requests_total{route="/api/v1/auth/signup",method="POST",status="200"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"phonegate_http_requests_total{route="unmatched",method="GET",status="404"}"#
        ),
        1.0,
        "{text}"
    );
    assert!(!text.contains("secret-looking-token-123"), "{text}");
    assert!(
        sample(
            &text,
            r#"phonegate_http_request_duration_seconds_count{route="/api/v1/auth/verify"}"#
        ) >= 2.0
    );
    // The earlier families are still there.
    assert!(text.contains("\nphonegate_outbox_pending 0\n"), "{text}");
    assert!(text.contains("# TYPE phonegate_rate_limited_total counter\n"), "{text}");
    // The metrics request itself was counted by its route.
    let again = metrics_text(&app.router).await;
    assert!(
        sample(
            &again,
            r#"phonegate_http_requests_total{route="/metrics",method="GET",status="200"}"#
        ) >= 1.0
    );
}

/// A Twilio error is counted by its code, as a provider error of its kind,
/// and as a delivery that failed for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_errors_are_counted_by_code() {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("/Messages.json$"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 21211,
            "message": "The 'To' number is not a valid phone number.",
            "status": 400
        })))
        .mount(&twilio)
        .await;
    let database = TestDatabase::create(TestBackend::Sqlite).await;
    let mut settings = Settings::defaults().unwrap();
    settings.database.url = SecretString::from(database.url.clone());
    settings.sms.provider = phonegate::settings::SmsProvider::Twilio;
    settings.auth.jwt_secret = Some(SecretString::from("a-metrics-test-master-secret-0123456789".to_owned()));
    settings.auth.jwt_hs256_key = Some(SecretString::from("a-metrics-test-hs256-key-0123456789".to_owned()));
    settings.twilio.account_sid = Some("AC00000000000000000000000000000000".to_owned());
    settings.twilio.auth_token = Some(SecretString::from("twilio-auth-token".to_owned()));
    settings.twilio.from_number = Some("+15005550006".to_owned());
    settings.twilio.api_base_url = twilio.uri();
    let app = build(
        &settings,
        Overrides {
            clock: Arc::new(ManualClock::starting_now()),
            console_echo: ConsoleEcho::Silent,
        },
    )
    .await
    .unwrap();
    let response = app
        .router
        .clone()
        .oneshot(
            Request::post("/api/v1/auth/signup")
                .header(header::HOST, "localhost")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"user_auth": {"mobile": "+85261677528", "address_attributes": {}}}).to_string(),
                ))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let report = app.dispatcher.dispatch_due().await.unwrap();
    assert_eq!(report.failed, 1, "{report:?}");

    let text = metrics_text(&app.router).await;
    assert_eq!(
        sample(
            &text,
            r#"phonegate_provider_error_codes_total{provider="twilio",operation="send_sms",code="21211"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"phonegate_provider_errors_total{provider="twilio",operation="send_sms",error="invalid_number"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"phonegate_delivery_failures_total{surface="pin_auth",channel="sms",provider="twilio",outcome="failed"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"phonegate_provider_request_duration_seconds_count{provider="twilio",operation="send_sms"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"phonegate_messages_sent_total{surface="pin_auth",channel="sms",provider="twilio"}"#
        ),
        0.0
    );
    app.store.db().close().await;
}
