//! Every example of seed 000 (phone-verify), and the rules the brief adds,
//! against the real router on SQLite and on Postgres.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use crate::common;

use std::time::Duration;

use axum::http::StatusCode;
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{TestApp, spawn_app, spawn_app_with};
use phonegate_adapters::{on_both_backends, testing::TestBackend};
use serde_json::{Value, json};

const REGISTER: &str = "/api/phone/register";
const VERIFY: &str = "/api/phone/verify";
const PHONE: &str = "+12063721234";

async fn register(app: &TestApp, phone: &str) -> String {
    let reply = app.post_json(REGISTER, &json!({"phone_number": phone})).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body.as_object().unwrap().len(), 1, "{:?}", reply.body);
    reply.body["session_token"].as_str().unwrap().to_owned()
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Seed: register → 200 {"session_token": <JWT>}, a 6-digit code by SMS.
async fn register_sends_a_code_and_returns_a_session_token(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let token = register(&app, PHONE).await;
    let code = app.last_code_to(PHONE);
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
    // A signed JWT naming the E.164 phone and a nonce; never the code.
    assert_eq!(token.split('.').count(), 3);
    let claims = claims(&token);
    assert_eq!(claims["phone_number"], PHONE);
    assert!(claims["nonce"].as_str().unwrap().len() >= 16);
    assert!(!token.contains(&code) && !claims.to_string().contains(&code));
    // It expires with the challenge (10 minutes by default); iat is rounded
    // down and exp up to whole seconds, so the span is 600 or 601 seconds.
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!((600..=601).contains(&lifetime), "{lifetime}");
}

/// Seed: verify {phone_number, security_code, session_token} → 200 {"message": "Security code is valid."}.
async fn verify_accepts_the_code(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let token = register(&app, PHONE).await;
    let reply = app
        .post_json(
            VERIFY,
            &json!({"phone_number": PHONE, "security_code": app.last_code_to(PHONE), "session_token": token}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({"message": "Security code is valid."}));
    // The verified phone is a user now.
    let phone = phonegate_domain::phone::PhoneNumber::parse_e164(PHONE).unwrap();
    use phonegate_domain::ports::UserStore as _;
    assert!(app.store.find_by_phone(&phone).await.unwrap().is_some());
}

/// A wrong code: 400 {"non_field_errors": ["Security code is not valid"]}.
async fn a_wrong_code_is_not_valid(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let token = register(&app, PHONE).await;
    let code = app.last_code_to(PHONE);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for body in [
        json!({"phone_number": PHONE, "security_code": wrong, "session_token": token}),
        // A token for another number, or forged.
        json!({"phone_number": "+14155550100", "security_code": code, "session_token": token}),
        json!({"phone_number": PHONE, "security_code": code, "session_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpb3NfKzkxOTkxMTcxNTkyOV9zZXNzaW9uX2NvZGUiOiI3MTExNDYifQ.XSIBOsfA6kYd8NUE2MlvhdrOZszoWQdzunOGEU_Wr94"}),
    ] {
        let reply = app.post_json(VERIFY, &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            reply.body,
            json!({"non_field_errors": ["Security code is not valid"]}),
            "{body}"
        );
    }
}

/// An expired code: 400 {"non_field_errors": ["Security code has expired"]}.
async fn an_expired_code_says_so(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let token = register(&app, PHONE).await;
    app.clock.advance(Duration::from_secs(601));
    let reply = app
        .post_json(
            VERIFY,
            &json!({"phone_number": PHONE, "security_code": app.last_code_to(PHONE), "session_token": token}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body, json!({"non_field_errors": ["Security code has expired"]}));
}

/// Five wrong codes kill the challenge; the right one is then refused.
async fn five_wrong_codes_kill_the_challenge(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let token = register(&app, PHONE).await;
    let code = app.last_code_to(PHONE);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let reply = app
            .post_json(
                VERIFY,
                &json!({"phone_number": PHONE, "security_code": wrong, "session_token": token}),
            )
            .await;
        assert_eq!(reply.body, json!({"non_field_errors": ["Security code is not valid"]}));
    }
    let reply = app
        .post_json(
            VERIFY,
            &json!({"phone_number": PHONE, "security_code": code, "session_token": token}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        json!({"non_field_errors": ["Too many failed verification attempts. Please request a new code."]})
    );
}

/// Hitting register again resends a fresh code and the old one stops working.
async fn resending_invalidates_the_old_code(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let old_token = register(&app, PHONE).await;
    let old_code = app.last_code_to(PHONE);
    let new_token = register(&app, PHONE).await;
    let new_code = app.last_code_to(PHONE);
    assert_eq!(app.messages_to(PHONE), 2);
    let reply = app
        .post_json(
            VERIFY,
            &json!({"phone_number": PHONE, "security_code": old_code, "session_token": old_token}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = app
        .post_json(
            VERIFY,
            &json!({"phone_number": PHONE, "security_code": new_code, "session_token": new_token}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

/// Missing fields: {"<field>": ["This field is required."]} for each.
async fn missing_fields_are_required(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let reply = app.post_json(REGISTER, &json!({})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body, json!({"phone_number": ["This field is required."]}));
    let reply = app.post_json(VERIFY, &json!({"phone_number": PHONE})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        json!({"security_code": ["This field is required."], "session_token": ["This field is required."]})
    );
}

/// The seed's redacted number and other junk: a field error, never a 500.
async fn invalid_numbers_are_field_errors(backend: TestBackend) {
    let app = spawn_app(backend).await;
    for phone in ["+9180765XXX10", "12", "not a number"] {
        let reply = app.post_json(REGISTER, &json!({"phone_number": phone})).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{phone}");
        assert_eq!(
            reply.body,
            json!({"phone_number": ["Enter a valid phone number."]}),
            "{phone}"
        );
    }
    let reply = app.post_form(REGISTER, "phone_number[=1").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body["detail"].is_string());
    assert_eq!(app.sms.outbox().len(), 0);
}

/// Form bodies work like JSON (DRF's clients send both).
async fn form_bodies_work(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let reply = app.post_form(REGISTER, "phone_number=%2B1%20206%20372%201234").await;
    assert_eq!(reply.status, StatusCode::OK);
    let token = reply.body["session_token"].as_str().unwrap();
    let form = format!(
        "phone_number=(206)372-1234&security_code={}&session_token={token}",
        app.last_code_to(PHONE)
    );
    let reply = app.post_form(VERIFY, &form).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
}

/// A security code of the wrong shape or a session token that is not a
/// JWT is answered as a wrong code; the session is judged first, so with an
/// expired session the answer is "expired" whatever the code. A code sent
/// as a JSON number is read as its digits.
async fn malformed_codes_and_tokens_are_answered_as_wrong_codes(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let token = register(&app, PHONE).await;
    let not_valid = json!({"non_field_errors": ["Security code is not valid"]});
    for (code, token) in [
        ("12345", token.as_str()),
        ("1234567", token.as_str()),
        ("123456", "not-a-jwt"),
    ] {
        let reply = app
            .post_json(
                VERIFY,
                &json!({"phone_number": PHONE, "security_code": code, "session_token": token}),
            )
            .await;
        assert_eq!(
            (reply.status, &reply.body),
            (StatusCode::BAD_REQUEST, &not_valid),
            "{code} {token}"
        );
    }
    let code = app.last_code_to(PHONE);
    // A number loses leading zeros; such a code goes as text.
    let code = match code.parse::<u64>() {
        Ok(number) if !code.starts_with('0') => json!(number),
        _ => json!(code),
    };
    let verify = json!({"phone_number": PHONE, "security_code": code, "session_token": token});
    let reply = app.post_json(VERIFY, &verify).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);

    let token = register(&app, PHONE).await;
    app.clock.advance(Duration::from_secs(601));
    let reply = app
        .post_json(
            VERIFY,
            &json!({"phone_number": PHONE, "security_code": "12", "session_token": token}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body, json!({"non_field_errors": ["Security code has expired"]}));
}

/// The HS256 key of the app in [`tokens_of_one_kind_are_refused_where_the_other_is_expected`].
const HS256_KEY: &str = "phone-verify-test-hs256-key-0123456789";

/// `claims` signed with [`HS256_KEY`] under kid `k1` and the given `typ`.
fn signed(typ: &str, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("k1".into());
    header.typ = Some(typ.into());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(HS256_KEY.as_bytes()),
    )
    .unwrap()
}

/// A session token is no bearer token for pin-auth, and an access token no
/// session token for phone-verify: each is refused by its `typ` as well as
/// its `aud`. Claims of one kind under the other's `typ`, correctly signed,
/// are refused too, so the `typ` check stands on its own.
#[tokio::test]
async fn tokens_of_one_kind_are_refused_where_the_other_is_expected() {
    let app = spawn_app_with(TestBackend::Sqlite, |settings| {
        settings.auth.jwt_hs256_key = Some(secrecy::SecretString::from(HS256_KEY));
    })
    .await;
    // A pin-auth user and their access token.
    let mobile = "+85251224538";
    let reply = app
        .post_json(
            "/api/v1/auth/signup",
            &json!({"user_auth": {"mobile": mobile, "address_attributes": {}}}),
        )
        .await;
    let key = reply.body["otp_auth_key"].as_str().unwrap().to_owned();
    let reply = app
        .post_json(
            "/api/v1/auth/verify",
            &json!({"otp_auth_key": key, "pin": app.last_code_to(mobile)}),
        )
        .await;
    let access = reply.body["jwt_token"].as_str().unwrap().to_owned();
    let session = register(&app, PHONE).await;
    let code = app.last_code_to(PHONE);
    const PROFILE: &str = "/api/v1/auth/current_user_profile";
    let unauthorized = (StatusCode::UNAUTHORIZED, json!({"errors": "Unauthorized"}));
    let not_valid = (
        StatusCode::BAD_REQUEST,
        json!({"non_field_errors": ["Security code is not valid"]}),
    );
    let verify = |token: &str| json!({"phone_number": PHONE, "security_code": code, "session_token": token});

    let reply = app.get_with_bearer(PROFILE, &session).await;
    assert_eq!((reply.status, reply.body), unauthorized, "a session token as a bearer");
    let reply = app.post_json(VERIFY, &verify(&access)).await;
    assert_eq!(
        (reply.status, reply.body),
        not_valid,
        "an access token as a session token"
    );

    // Access claims typed as a session token, and session claims typed as
    // an access token: refused by typ alone.
    let reply = app
        .get_with_bearer(PROFILE, &signed("pv-session+jwt", &claims(&access)))
        .await;
    assert_eq!((reply.status, reply.body), unauthorized);
    let reply = app
        .post_json(VERIFY, &verify(&signed("at+jwt", &claims(&session))))
        .await;
    assert_eq!((reply.status, reply.body), not_valid);
    // With the right typ the same claims pass: the refusals were the typ's.
    let reply = app.get_with_bearer(PROFILE, &signed("at+jwt", &claims(&access))).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let reply = app
        .post_json(VERIFY, &verify(&signed("pv-session+jwt", &claims(&session))))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
}

/// Security II, finding 14: the code is consumed in the transaction that
/// writes the user, so a database failure there does not burn it: the same
/// code works once the database is back.
async fn a_failed_user_write_leaves_the_code_usable(backend: TestBackend) {
    use phonegate_adapters::testing::{allow_inserts, fail_inserts};
    let app = spawn_app(backend).await;
    let token = register(&app, PHONE).await;
    let body = json!({"phone_number": PHONE, "security_code": app.last_code_to(PHONE), "session_token": token});
    fail_inserts(app.store.db(), "users").await;
    let reply = app.post_json(VERIFY, &body).await;
    assert_ne!(reply.status, StatusCode::OK, "{:?}", reply.body);
    allow_inserts(app.store.db(), "users").await;
    let reply = app.post_json(VERIFY, &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body, json!({"message": "Security code is valid."}));
}

on_both_backends!(
    register_sends_a_code_and_returns_a_session_token,
    a_failed_user_write_leaves_the_code_usable,
    verify_accepts_the_code,
    a_wrong_code_is_not_valid,
    an_expired_code_says_so,
    five_wrong_codes_kill_the_challenge,
    resending_invalidates_the_old_code,
    missing_fields_are_required,
    invalid_numbers_are_field_errors,
    form_bodies_work,
    malformed_codes_and_tokens_are_answered_as_wrong_codes,
);

/// A client's `x-request-id` is kept (and echoed) when it is at most 64
/// characters of `[A-Za-z0-9._-]`; any other is replaced by a fresh id, so
/// a client cannot put what it likes into every log line of its request.
#[tokio::test]
async fn a_client_request_id_is_kept_only_when_short_and_plain() {
    let app = spawn_app(TestBackend::Sqlite).await;
    let answer_id = |sent: &[&str]| {
        let mut request = axum::http::Request::get("/healthz");
        for id in sent {
            request = request.header("x-request-id", *id);
        }
        let request = request.body(axum::body::Body::empty()).unwrap();
        let app = &app;
        async move {
            let reply = app.send(request).await;
            assert_eq!(reply.status, StatusCode::OK);
            reply.headers["x-request-id"].to_str().unwrap().to_owned()
        }
    };
    let plain = "0f8c2a4e-6b1d-4a55.9a0e_3c1f2b7d9e10";
    assert_eq!(answer_id(&[plain]).await, plain);
    let longest = "a".repeat(64);
    assert_eq!(answer_id(&[&longest]).await, longest);
    for sent in [
        vec!["a".repeat(65)],
        vec!["level=error msg=forged".to_owned()],
        vec!["id\"quoted".to_owned()],
        vec!["one".to_owned(), "two".to_owned()],
    ] {
        let sent: Vec<&str> = sent.iter().map(String::as_str).collect();
        let used = answer_id(&sent).await;
        assert!(!sent.contains(&used.as_str()), "{sent:?} was kept");
        // A fresh UUID instead.
        assert_eq!(used.len(), 36, "{used}");
        assert!(used.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'), "{used}");
    }
}
