//! Every example of seed 003 (phone-login), the rules the brief adds, and
//! one user base across surfaces, against the real router on SQLite and on
//! Postgres.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use crate::common;

use std::time::Duration;

use axum::http::StatusCode;
use common::{TestApp, spawn_app, spawn_app_with};
use phonegate::settings::{SmsProvider, TestPrefixEntry};
use phonegate_adapters::{on_both_backends, testing::TestBackend};
use serde_json::{Value, json};

const PHONE: &str = "+12063721234";

fn res_info(code: i64, info: &str) -> Value {
    json!({"code": code, "code_info": info})
}

async fn login(app: &TestApp, query: &str) -> common::Reply {
    app.post_query(&format!("/v1/auth/phone_login?{query}")).await
}

async fn check_pin(app: &TestApp, query: &str) -> common::Reply {
    app.post_query(&format!("/v1/auth/check_pin?{query}")).await
}

/// check_pin for the seed's number and device, with `pin`.
async fn check_seed_pin(app: &TestApp, pin: &str) -> common::Reply {
    check_pin(
        app,
        &format!("phone_number=(206)372-1234&device_id=abcde&verify_pin={pin}"),
    )
    .await
}

/// Logs in through phone-login and returns the access code's user id.
async fn login_user_id(app: &TestApp, phone_query: &str) -> i64 {
    let reply = login(app, &format!("phone_number={phone_query}&device_id=abcde")).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let pin = app.last_code_to(PHONE);
    let reply = check_pin(
        app,
        &format!("phone_number={phone_query}&device_id=abcde&verify_pin={pin}"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let code = reply.body["res_content"]["access_code"].as_str().unwrap();
    let reply = app
        .post_query(&format!("/v1/auth/check_access_code?access_code={code}"))
        .await;
    assert_eq!(
        reply.body["res_info"],
        res_info(40, "VALID_ACCESS_CODE"),
        "{:?}",
        reply.body
    );
    reply.body["res_content"]["user_id"].as_i64().unwrap()
}

/// Seed: GET /v1/auth/ping → 33 AUTH_ENDPOINT_FUNCTION_SUCCESS, "pong".
async fn ping_pongs(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let reply = app
        .send(
            axum::http::Request::get("/v1/auth/ping")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        json!({"res_info": {"code": 33, "code_info": "AUTH_ENDPOINT_FUNCTION_SUCCESS"}, "res_content": "pong"})
    );
}

/// Seed: phone_login?phone_number=(206)372-1234&device_id=abcde → NEW_PHONE, and a 5-digit PIN by SMS.
async fn phone_login_of_a_new_phone(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let reply = login(&app, "phone_number=(206)372-1234&device_id=abcde").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({"res_info": {"code": 1, "code_info": "NEW_PHONE"}}));
    let message = app.sms.last_to(PHONE).unwrap();
    assert_eq!(message.channel, "sms");
    assert_eq!(app.last_code_to(PHONE).len(), 5);
}

/// Seed: check_pin?phone_number=(206)372-1234&device_id=abcde&verify_pin=… →
/// NEW_ACCESS_CODE with a 32-hex access_code and a UTC expiry.
async fn check_pin_returns_an_access_code(backend: TestBackend) {
    let app = spawn_app(backend).await;
    login(&app, "phone_number=(206)372-1234&device_id=abcde").await;
    let pin = app.last_code_to(PHONE);
    let reply = check_seed_pin(&app, &pin).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["res_info"], res_info(22, "NEW_ACCESS_CODE"));
    let content = reply.body["res_content"].as_object().unwrap();
    assert_eq!(content.len(), 2);
    let code = content["access_code"].as_str().unwrap();
    assert_eq!(code.len(), 32);
    assert!(code.bytes().all(|b| b.is_ascii_hexdigit()));
    let expiry = content["expiry"].as_str().unwrap();
    let shape = regex::Regex::new(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$").unwrap();
    assert!(shape.is_match(expiry), "{expiry}");
    // The PIN is single use.
    let reply = check_seed_pin(&app, &pin).await;
    assert_eq!(reply.body["res_info"], res_info(4, "INVALID_PIN"));
}

/// Security II, finding 14: the PIN is consumed in the transaction that
/// writes the access code, so a database failure there does not burn it:
/// the same PIN works once the database is back.
async fn a_failed_access_code_write_leaves_the_pin_usable(backend: TestBackend) {
    use phonegate_adapters::testing::{allow_inserts, fail_inserts};
    let app = spawn_app(backend).await;
    login(&app, "phone_number=(206)372-1234&device_id=abcde").await;
    let pin = app.last_code_to(PHONE);
    fail_inserts(app.store.db(), "access_codes").await;
    let reply = check_seed_pin(&app, &pin).await;
    assert_ne!(reply.status, StatusCode::OK, "{:?}", reply.body);
    allow_inserts(app.store.db(), "access_codes").await;
    let reply = check_seed_pin(&app, &pin).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["res_info"], res_info(22, "NEW_ACCESS_CODE"));
}

/// call_verify=T calls the phone and reads the PIN aloud; the flow continues identically.
async fn call_verify_calls_instead_of_texting(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let reply = login(&app, "phone_number=(206)372-1234&device_id=abcde&call_verify=T").await;
    assert_eq!(reply.body["res_info"], res_info(1, "NEW_PHONE"));
    let call = app.sms.last_to(PHONE).unwrap();
    assert_eq!(call.channel, "call");
    let pin = app.last_spoken_code_to(PHONE);
    assert_eq!(pin.len(), 5);
    assert_eq!(
        call.body
            .matches(&pin.chars().map(String::from).collect::<Vec<_>>().join(", "))
            .count(),
        2
    );
    let reply = check_seed_pin(&app, &pin).await;
    assert_eq!(reply.body["res_info"], res_info(22, "NEW_ACCESS_CODE"));
}

/// The PIN is bound to the device: another device_id gets no access code.
async fn a_wrong_device_gets_no_access_code(backend: TestBackend) {
    let app = spawn_app(backend).await;
    login(&app, "phone_number=(206)372-1234&device_id=abcde").await;
    let pin = app.last_code_to(PHONE);
    let reply = check_pin(
        &app,
        &format!("phone_number=(206)372-1234&device_id=zzzzz&verify_pin={pin}"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body["res_info"], res_info(4, "INVALID_PIN"));
    assert!(reply.body["res_content"].get("access_code").is_none());
}

/// After 5 minutes the PIN is PIN_EXPIRED (time through the clock port).
async fn an_expired_pin_is_23(backend: TestBackend) {
    let app = spawn_app(backend).await;
    login(&app, "phone_number=(206)372-1234&device_id=abcde").await;
    let pin = app.last_code_to(PHONE);
    app.clock.advance(Duration::from_secs(299));
    app.clock.advance(Duration::from_secs(1));
    let reply = check_seed_pin(&app, &pin).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body["res_info"], res_info(23, "PIN_EXPIRED"));
}

/// Five wrong PINs kill the challenge; the right one then gets PIN_EXPIRED.
async fn five_wrong_pins_kill_the_challenge(backend: TestBackend) {
    let app = spawn_app(backend).await;
    login(&app, "phone_number=(206)372-1234&device_id=abcde").await;
    let pin = app.last_code_to(PHONE);
    let wrong = if pin == "00000" { "11111" } else { "00000" };
    for _ in 0..5 {
        let reply = check_seed_pin(&app, wrong).await;
        assert_eq!(reply.body["res_info"], res_info(4, "INVALID_PIN"));
    }
    let reply = check_seed_pin(&app, &pin).await;
    assert_eq!(reply.body["res_info"], res_info(23, "PIN_EXPIRED"));
}

/// A new PIN request invalidates the old PIN.
async fn a_resend_invalidates_the_old_pin(backend: TestBackend) {
    let app = spawn_app(backend).await;
    login(&app, "phone_number=(206)372-1234&device_id=abcde").await;
    let old = app.last_code_to(PHONE);
    let reply = login(&app, "phone_number=(206)372-1234&device_id=abcde").await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(app.messages_to(PHONE), 2, "a second PIN was sent");
    let new = app.last_code_to(PHONE);
    if old != new {
        let reply = check_seed_pin(&app, &old).await;
        assert_eq!(reply.body["res_info"], res_info(4, "INVALID_PIN"));
    }
    let reply = check_seed_pin(&app, &new).await;
    assert_eq!(reply.body["res_info"], res_info(22, "NEW_ACCESS_CODE"));
}

/// Missing parameter → -1, unparseable phone → 12, bad call_verify → -6, all 400.
async fn parameter_errors_use_the_code_table(backend: TestBackend) {
    let app = spawn_app(backend).await;
    for (query, code, info) in [
        ("device_id=abcde", -1, "MISSING_PARAMETER"),
        ("phone_number=(206)372-1234", -1, "MISSING_PARAMETER"),
        ("phone_number=12&device_id=abcde", 12, "INVALID_PHONE"),
        ("phone_number=%2B9180765XXX10&device_id=abcde", 12, "INVALID_PHONE"),
        (
            "phone_number=(206)372-1234&device_id=abcde&call_verify=Y",
            -6,
            "INVALID_PARAMETER",
        ),
    ] {
        let reply = login(&app, query).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(reply.body["res_info"], res_info(code, info), "{query}");
    }
    let reply = check_pin(&app, "phone_number=(206)372-1234&device_id=abcde").await;
    assert_eq!(reply.body["res_info"], res_info(-1, "MISSING_PARAMETER"));
    assert_eq!(app.sms.outbox().len(), 0);
}

/// Parameters may also come as a form or JSON body.
async fn form_and_json_bodies_work(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let reply = app
        .post_form(
            "/v1/auth/phone_login",
            "phone_number=206-372-1234&device_id=abcde&call_verify=F",
        )
        .await;
    assert_eq!(reply.body["res_info"], res_info(1, "NEW_PHONE"));
    let pin = app.last_code_to(PHONE);
    let reply = app
        .post_json(
            "/v1/auth/check_pin",
            &json!({"phone_number": "+1 206 372 1234", "device_id": "abcde", "verify_pin": pin}),
        )
        .await;
    assert_eq!(reply.body["res_info"], res_info(22, "NEW_ACCESS_CODE"));
}

/// A backend validates access codes: 40, -2 (unknown or other device), -3 (expired).
async fn access_codes_can_be_validated(backend: TestBackend) {
    let app = spawn_app(backend).await;
    login(&app, "phone_number=(206)372-1234&device_id=abcde").await;
    let pin = app.last_code_to(PHONE);
    let reply = check_seed_pin(&app, &pin).await;
    let code = reply.body["res_content"]["access_code"].as_str().unwrap().to_owned();
    let expiry = reply.body["res_content"]["expiry"].clone();
    let check = |query: String| {
        let app = &app;
        async move { app.post_query(&format!("/v1/auth/check_access_code?{query}")).await }
    };
    let reply = check(format!("access_code={code}&device_id=abcde")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["res_info"], res_info(40, "VALID_ACCESS_CODE"));
    assert_eq!(reply.body["res_content"]["phone_number"], PHONE);
    assert_eq!(reply.body["res_content"]["expiry"], expiry);
    for query in [
        format!("access_code={code}&device_id=other"),
        format!("access_code={}", "ab".repeat(16)),
    ] {
        let reply = check(query).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.body["res_info"], res_info(-2, "INVALID_ACCESS_CODE"));
    }
    let reply = check(String::new()).await;
    assert_eq!(reply.body["res_info"], res_info(-1, "MISSING_PARAMETER"));
    app.clock.advance(Duration::from_secs(30 * 86_400));
    let reply = check(format!("access_code={code}")).await;
    assert_eq!(reply.body["res_info"], res_info(-3, "EXPIRED_ACCESS_CODE"));
}

/// A PIN of the wrong length is INVALID_PIN without spending an attempt;
/// an access code or device id that cannot match is INVALID_ACCESS_CODE;
/// a device id longer than 255 bytes is INVALID_PARAMETER when asking for
/// a PIN.
async fn malformed_pins_and_codes_are_refused_like_wrong_ones(backend: TestBackend) {
    let app = spawn_app(backend).await;
    login(&app, "phone_number=(206)372-1234&device_id=abcde").await;
    let pin = app.last_code_to(PHONE);
    for _ in 0..6 {
        let reply = check_seed_pin(&app, "1234").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            reply.body,
            json!({"res_info": {"code": 4, "code_info": "INVALID_PIN"}, "res_content": "invalid PIN"})
        );
    }
    let reply = check_seed_pin(&app, &pin).await;
    assert_eq!(
        reply.body["res_info"],
        res_info(22, "NEW_ACCESS_CODE"),
        "no attempt was spent"
    );
    let code = reply.body["res_content"]["access_code"].as_str().unwrap().to_owned();
    let long_device = "d".repeat(256);
    for query in [
        "access_code=not-hex".to_owned(),
        format!("access_code={code}&device_id={long_device}"),
    ] {
        let reply = app.post_query(&format!("/v1/auth/check_access_code?{query}")).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{query}");
        assert_eq!(
            reply.body,
            json!({"res_info": {"code": -2, "code_info": "INVALID_ACCESS_CODE"}, "res_content": "invalid access code"})
        );
    }
    let reply = app
        .post_query(&format!(
            "/v1/auth/check_access_code?access_code={}",
            code.to_ascii_uppercase()
        ))
        .await;
    assert_eq!(reply.body["res_info"], res_info(40, "VALID_ACCESS_CODE"));
    let reply = login(&app, &format!("phone_number=(206)372-1234&device_id={long_device}")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        json!({"res_info": {"code": -6, "code_info": "INVALID_PARAMETER"}, "res_content": "device_id is not valid"})
    );
}

/// One person, three formats, two surfaces: one user.
async fn the_same_number_in_three_formats_is_one_user(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let first = login_user_id(&app, "(206)372-1234").await;
    // Through phone-verify, in international format.
    let reply = app
        .post_json("/api/phone/register", &json!({"phone_number": "+1 206 372 1234"}))
        .await;
    let token = reply.body["session_token"].as_str().unwrap().to_owned();
    let reply = app
        .post_json(
            "/api/phone/verify",
            &json!({"phone_number": "+1 206 372 1234", "security_code": app.last_code_to(PHONE), "session_token": token}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let third = login_user_id(&app, "206-372-1234").await;
    assert_eq!(first, third);
    let reply = login(&app, "phone_number=%2B12063721234&device_id=abcde").await;
    assert_eq!(reply.body["res_info"], res_info(2, "RETURNING_PHONE"));
}

/// A user who signed up through pin-auth is RETURNING_PHONE on phone-login, and the same user.
async fn a_pin_auth_user_is_returning_on_phone_login(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let reply = app
        .post_json(
            "/api/v1/auth/signup",
            &json!({"user_auth": {"mobile": "+85251224538", "address_attributes": {"district_id": "1"}}}),
        )
        .await;
    let key = reply.body["otp_auth_key"].as_str().unwrap().to_owned();
    let reply = app
        .post_json(
            "/api/v1/auth/verify",
            &json!({"otp_auth_key": key, "pin": app.last_code_to("+85251224538")}),
        )
        .await;
    let pin_auth_id = reply.body["user"]["user_profile"]["id"].as_i64().unwrap();
    let reply = login(&app, "phone_number=%2B852%205122%204538&device_id=d1").await;
    assert_eq!(reply.body["res_info"], res_info(2, "RETURNING_PHONE"));
    let pin = app.last_code_to("+85251224538");
    let reply = check_pin(
        &app,
        &format!("phone_number=%2B85251224538&device_id=d1&verify_pin={pin}"),
    )
    .await;
    let code = reply.body["res_content"]["access_code"].as_str().unwrap();
    let reply = app
        .post_query(&format!("/v1/auth/check_access_code?access_code={code}"))
        .await;
    assert_eq!(reply.body["res_content"]["user_id"], pin_auth_id);
}

/// Test numbers: nothing is sent, the fixed code works, uses are counted.
async fn test_numbers_send_nothing_and_accept_their_code(backend: TestBackend) {
    let app = spawn_app_with(backend, |settings| {
        settings.otp.test_prefixes = vec![TestPrefixEntry {
            prefix: "+1415".into(),
            code: "123456".into(),
        }];
    })
    .await;
    let reply = login(&app, "phone_number=(415)555-0100&device_id=load-test").await;
    assert_eq!(reply.body["res_info"], res_info(1, "NEW_PHONE"));
    assert_eq!(app.sms.outbox().len(), 0);
    let reply = check_pin(&app, "phone_number=(415)555-0100&device_id=load-test&verify_pin=12345").await;
    assert_eq!(reply.body["res_info"], res_info(22, "NEW_ACCESS_CODE"));
    // The same prefix on phone-verify takes the 6-digit form of the code.
    let reply = app
        .post_json("/api/phone/register", &json!({"phone_number": "+14155550101"}))
        .await;
    let token = reply.body["session_token"].as_str().unwrap().to_owned();
    let reply = app
        .post_json(
            "/api/phone/verify",
            &json!({"phone_number": "+14155550101", "security_code": "123456", "session_token": token}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(app.sms.outbox().len(), 0);
    assert_eq!(app.test_numbers.uses(), 2);
}

on_both_backends!(
    ping_pongs,
    phone_login_of_a_new_phone,
    check_pin_returns_an_access_code,
    a_failed_access_code_write_leaves_the_pin_usable,
    call_verify_calls_instead_of_texting,
    a_wrong_device_gets_no_access_code,
    an_expired_pin_is_23,
    five_wrong_pins_kill_the_challenge,
    a_resend_invalidates_the_old_pin,
    parameter_errors_use_the_code_table,
    form_and_json_bodies_work,
    access_codes_can_be_validated,
    malformed_pins_and_codes_are_refused_like_wrong_ones,
    the_same_number_in_three_formats_is_one_user,
    a_pin_auth_user_is_returning_on_phone_login,
    test_numbers_send_nothing_and_accept_their_code,
);

/// Test numbers with a real SMS provider are refused at start, unless allowed.
#[tokio::test]
async fn test_numbers_are_refused_with_a_real_provider() {
    let configure = |allow: bool| {
        move |settings: &mut phonegate::settings::Settings| {
            settings.sms.provider = SmsProvider::Twilio;
            settings.otp.allow_test_numbers_in_production = allow;
            settings.otp.test_prefixes = vec![TestPrefixEntry {
                prefix: "+1415".into(),
                code: "123456".into(),
            }];
        }
    };
    let error = common::try_spawn_app_with(TestBackend::Sqlite, configure(false))
        .await
        .unwrap_err();
    assert!(error.contains("allow_test_numbers_in_production"), "{error}");
    // Allowed: the test-number check passes (and start-up goes on to the provider).
    let error = common::try_spawn_app_with(TestBackend::Sqlite, configure(true))
        .await
        .unwrap_err();
    assert!(!error.contains("allow_test_numbers_in_production"), "{error}");
}
