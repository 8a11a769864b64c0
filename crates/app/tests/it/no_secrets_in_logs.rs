//! No log line, at any level and from any crate, contains a pin, an
//! otp_auth_key or a JWT. This captures everything a full flow of every
//! surface logs (TRACE, all targets, on SQLite and Postgres), in text and in
//! the service's own JSON format at once, and searches both. The JSON lines
//! are also checked to carry the request id on every line of a request.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use crate::common;

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use axum::{
    body::Body,
    http::{Request, header},
};
use common::{TestApp, spawn_app};
use phonegate::{settings::LogFormat, telemetry};
use phonegate_adapters::testing::TestBackend;
use regex::Regex;
use serde_json::json;
use tracing_subscriber::{fmt::MakeWriter, layer::SubscriberExt as _, util::SubscriberInitExt as _};

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

/// Runs every pin-auth call, the failing ones too, and returns the secrets
/// that went over the wire.
async fn full_flow(app: &TestApp, mobile: &str) -> Vec<String> {
    let mut secrets = vec![];
    let signup = app
        .post_json(
            "/api/v1/auth/signup",
            &json!({"user_auth": {"mobile": mobile, "address_attributes": {"district_id": 1}}}),
        )
        .await;
    let first_key = signup.body["otp_auth_key"].as_str().unwrap().to_owned();
    let first_pin = app.last_code_to(mobile);
    // A second signup: the mobile has no user until a pin is verified, so
    // this (not send_pin) sends the new pin.
    let resend = app
        .post_json(
            "/api/v1/auth/signup",
            &json!({"user_auth": {"mobile": mobile, "address_attributes": {"district_id": 1}}}),
        )
        .await;
    let key = resend.body["otp_auth_key"].as_str().unwrap().to_owned();
    let pin = app.last_code_to(mobile);
    // A superseded key and a wrong pin, then the right one.
    app.post_json(
        "/api/v1/auth/verify",
        &json!({"otp_auth_key": first_key, "pin": first_pin}),
    )
    .await;
    let wrong = if pin == "0000" { "1111" } else { "0000" };
    app.post_json("/api/v1/auth/verify", &json!({"otp_auth_key": key, "pin": wrong}))
        .await;
    let verified = app
        .post_json("/api/v1/auth/verify", &json!({"otp_auth_key": key, "pin": pin}))
        .await;
    assert_eq!(verified.status, 200);
    let jwt = verified.body["jwt_token"].as_str().unwrap().to_owned();
    // The user exists now: send_pin sends a real pin.
    let again = app.post_json("/api/v1/auth/send_pin", &json!({"mobile": mobile})).await;
    secrets.push(again.body["otp_auth_key"].as_str().unwrap().to_owned());
    secrets.push(app.last_code_to(mobile));
    app.get_with_bearer("/api/v1/auth/current_user_profile", &jwt).await;
    app.send(
        Request::post("/api/v1/auth/register_device")
            .header(header::AUTHORIZATION, format!("Bearer {jwt}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("handle=h&platform=fcm"))
            .unwrap(),
    )
    .await;
    let unknown = app
        .post_json("/api/v1/auth/send_pin", &json!({"mobile": "+85251641822"}))
        .await;
    // A pin passed in the query string must not be logged either.
    app.send(
        Request::post(format!(
            "/api/v1/auth/verify?otp_auth_key={}&pin={pin}",
            key.replace('+', "%2B")
        ))
        .body(Body::empty())
        .unwrap(),
    )
    .await;
    secrets.extend([first_pin, pin]);

    // phone-verify: the code and the session token.
    let reply = app
        .post_json("/api/phone/register", &json!({"phone_number": "+1 206 372 1234"}))
        .await;
    let session = reply.body["session_token"].as_str().unwrap().to_owned();
    let code = app.last_code_to("+12063721234");
    let reply = app
        .post_json(
            "/api/phone/verify",
            &json!({"phone_number": "+12063721234", "security_code": code, "session_token": session}),
        )
        .await;
    assert_eq!(reply.status, 200);
    // phone-login: PINs (SMS and call) and the access code travel in the query string.
    app.post_query("/v1/auth/phone_login?phone_number=(206)372-1234&device_id=abcde&call_verify=T")
        .await;
    let spoken = app.last_spoken_code_to("+12063721234");
    app.post_query("/v1/auth/phone_login?phone_number=(206)372-1234&device_id=abcde")
        .await;
    let login_pin = app.last_code_to("+12063721234");
    let reply = app
        .post_query(&format!(
            "/v1/auth/check_pin?phone_number=(206)372-1234&device_id=abcde&verify_pin={login_pin}"
        ))
        .await;
    let access_code = reply.body["res_content"]["access_code"].as_str().unwrap().to_owned();
    let reply = app
        .post_query(&format!("/v1/auth/check_access_code?access_code={access_code}"))
        .await;
    assert_eq!(reply.status, 200);
    secrets.extend([code, spoken, login_pin, access_code]);

    // tokens: the password, the session token, the reset token, the app token.
    let password = "Hunter2-Log-Canary";
    let user = app
        .token_auth
        .admin()
        .create_user(common::new_user("logs@example.com", password, Some("Lo"), None))
        .await
        .unwrap();
    let (_, app_token) = app.create_application("log test").await;
    let reply = app
        .form(
            "POST",
            "/api/v1/tokens.json",
            &format!("email=logs@example.com&password={password}&device_token=d1"),
        )
        .await;
    let session_token = reply.body["token"].as_str().unwrap().to_owned();
    app.form(
        "POST",
        "/api/v1/tokens.json",
        "email=logs@example.com&password=wrong-canary",
    )
    .await;
    app.form(
        "POST",
        "/api/v1/tokens/introspect.json",
        &format!("auth_token={}&token={session_token}", app_token.expose()),
    )
    .await;
    app.form("POST", "/api/v1/tokens/reset.json", "email=logs@example.com")
        .await;
    let mail = app.mail.outbox().pop().unwrap();
    let reset_token = mail
        .text_body
        .split("token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let reply = app
        .form(
            "PUT",
            "/api/v1/tokens/reset.json",
            &format!("reset_token={reset_token}&password=New-Canary-Pass"),
        )
        .await;
    assert_eq!(reply.status, 200);
    app.form(
        "DELETE",
        &format!("/api/v1/tokens/{}.json", user.get()),
        &format!("auth_token={session_token}"),
    )
    .await;
    secrets.extend([
        password.to_owned(),
        "wrong-canary".to_owned(),
        "New-Canary-Pass".to_owned(),
        session_token,
        reset_token,
        app_token.expose().to_owned(),
    ]);
    secrets.extend(session.split('.').map(str::to_owned));
    secrets.push(session);
    secrets.extend([
        first_key,
        key,
        unknown.body["otp_auth_key"].as_str().unwrap().to_owned(),
    ]);
    let parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    secrets.push(jwt);
    // Each JWT part on its own (a logged payload or signature is a leak too).
    secrets.extend(parts);
    secrets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_flow_logs_no_pin_key_or_token() {
    // Runs in a process of its own with nothing beside it (see `common::alone`).
    if crate::common::alone::rerun_alone(module_path!(), "a_full_flow_logs_no_pin_key_or_token") {
        return;
    }
    let text = Capture::default();
    let json = Capture::default();
    // No filter: every level of every target reaches both layers.
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(text.clone())
                .with_ansi(false)
                .without_time(),
        )
        .with(telemetry::layer(LogFormat::Json, json.clone(), false))
        .init();

    let mut secrets = vec![];
    for backend in [TestBackend::Sqlite, TestBackend::Postgres] {
        let app = spawn_app(backend).await;
        secrets.extend(full_flow(&app, "+85261677528").await);
    }

    let logs = String::from_utf8(text.0.lock().unwrap().clone()).unwrap();
    // The capture works: the flow's own log lines are there.
    for expected in [
        "pin verified; token issued",
        "phone verified",
        "PIN checked; access code issued",
        "request_id=",
        "path=/api/v1/auth/verify",
        "path=/v1/auth/check_pin",
        "signed in with email and password",
        "password reset; sessions and access codes revoked",
    ] {
        assert!(logs.contains(expected), "missing {expected:?} in the captured logs");
    }
    assert!(logs.lines().count() > 50, "suspiciously few log lines");

    // A 4-digit pin could equal a measured latency or a group of a request
    // id by pure chance; those fields carry no secret, so they are removed
    // before searching for pins as whole numbers.
    let noise = Regex::new(r"latency_us=\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap();
    assert_no_secret(&noise.replace_all(&logs, ""), &logs, &secrets);

    let json_logs = String::from_utf8(json.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = json_logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not one JSON object per line: {line}")))
        .collect();
    assert!(lines.len() > 50, "suspiciously few JSON log lines");
    for expected in [
        "pin verified; token issued",
        "PIN checked; access code issued",
        "request finished",
    ] {
        let line = lines
            .iter()
            .find(|line| line["message"] == expected)
            .unwrap_or_else(|| panic!("missing {expected:?} in the JSON logs"));
        assert!(
            request_id(line).is_some_and(|id| id.len() == 36),
            "{expected:?} has no request id: {line}"
        );
    }
    // Every line logged inside a request carries its request id.
    let in_requests = lines
        .iter()
        .filter(|line| line["spans"].as_array().is_some_and(|spans| !spans.is_empty()))
        .filter(|line| line["spans"][0]["name"] == "request");
    let mut count = 0;
    for line in in_requests {
        assert!(request_id(line).is_some(), "a request's line without its id: {line}");
        count += 1;
    }
    assert!(count > 50, "suspiciously few request lines in JSON ({count})");
    assert!(json_logs.contains(r#""path":"/api/v1/auth/verify""#));
    // Timestamps (digits) and the same noise as in text are removed first.
    let json_noise = Regex::new(
        r#""timestamp":"[^"]*"|"latency_us":\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"#,
    )
    .unwrap();
    assert_no_secret(&json_noise.replace_all(&json_logs, ""), &json_logs, &secrets);
}

/// The request id of a JSON log line, from the request span.
fn request_id(line: &serde_json::Value) -> Option<&str> {
    line["spans"]
        .as_array()?
        .iter()
        .find(|span| span["name"] == "request")?["request_id"]
        .as_str()
}

/// No secret in `logs`; pins (all digits) are searched as whole numbers in
/// `scrubbed`, the logs without fields that are digits by nature.
fn assert_no_secret(scrubbed: &str, logs: &str, secrets: &[String]) {
    for secret in secrets {
        if secret.bytes().all(|b| b.is_ascii_digit()) {
            let whole = Regex::new(&format!(r"(^|[^0-9A-Za-z]){secret}([^0-9A-Za-z]|$)")).unwrap();
            assert!(!whole.is_match(scrubbed), "a pin appears in the logs");
        } else {
            assert!(!logs.contains(secret.as_str()), "a key or token appears in the logs");
        }
    }
}

/// A text sender whose first delivery panics (with the recipient in the
/// panic's message), as a bug in a provider client might; every later one
/// is recorded.
#[derive(Debug, Default)]
struct PanicsOnce {
    calls: std::sync::atomic::AtomicU32,
    delivered: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl phonegate_domain::ports::SmsSender for PanicsOnce {
    async fn send_sms(
        &self,
        message: &phonegate_domain::ports::OutgoingSms,
    ) -> Result<(), phonegate_domain::ports::DeliveryError> {
        if self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            panic!("provider client bug while texting {}", message.to);
        }
        self.delivered.lock().unwrap().push(message.to.as_str().to_owned());
        Ok(())
    }
}

/// Queues a text to `to` with a live challenge, as an issued code does.
async fn queue_text(app: &TestApp, to: &str, lookup: u8) {
    use phonegate_domain::{
        otp::{Channel, NewChallenge, Purpose, SecretHash},
        outbox::{Envelope, OutboxMessage, Outgoing},
        phone::PhoneNumber,
        ports::{ChallengeStore as _, Clock as _, OutgoingSms},
    };
    let now = app.clock.now();
    let phone = PhoneNumber::parse_e164(to).unwrap();
    let challenge = NewChallenge {
        purpose: Purpose::PhoneVerify,
        phone: phone.clone(),
        user_id: None,
        channel: Channel::Sms,
        device_binding: None,
        lookup_hash: SecretHash::from_bytes(vec![lookup; 32]),
        code_hash: SecretHash::from_bytes(vec![0xC0; 32]),
        max_attempts: 5,
        created_at: now,
        expires_at: now.plus(std::time::Duration::from_secs(600)),
        sent_prefix: None,
    };
    let message = OutboxMessage {
        envelope: Envelope::Sms(OutgoingSms {
            to: phone,
            body: secrecy::SecretString::from("Your phonegate code is 123456"),
        }),
        purpose: "phone_verify",
        created_at: now,
        not_after: now.plus(std::time::Duration::from_secs(600)),
    };
    app.store
        .replace_live(challenge, Outgoing::Message(message))
        .await
        .unwrap();
}

/// Waits until `done`, for at most 20 seconds: a bound on a background
/// task, not a measure of its speed.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Security II, finding 14: a background dispatcher that panics is logged
/// (its worker index, not the panic's message) and restarted, so the next
/// message is still delivered.
#[tokio::test]
async fn a_panicking_dispatcher_is_logged_and_restarted() {
    use phonegate_domain::{
        delivery::Messenger,
        outbox::{DispatchSettings, Dispatcher},
    };
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .without_time()
        .with_writer(capture.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = spawn_app(TestBackend::Sqlite).await;
    let sender = Arc::new(PanicsOnce::default());
    let dispatcher = Dispatcher::new(
        Arc::new(app.store.clone()),
        Messenger::new(sender.clone(), Arc::new(app.sms.clone()), "phonegate".into()),
        Arc::new(app.mail.clone()),
        Arc::new(app.clock.clone()),
        DispatchSettings::default(),
    );
    let mut settings = phonegate::settings::Settings::defaults().unwrap();
    settings.outbox.workers = 1;
    settings.housekeeping.interval_seconds = 0;
    let background = phonegate::background::spawn(&settings, &app.store, &dispatcher, Arc::new(app.clock.clone()));
    let logs = || String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    queue_text(&app, "+12063721234", 1).await;
    wait_until("the panic was logged", || logs().contains("outbox dispatcher panicked")).await;
    queue_text(&app, "+12063725678", 2).await;
    wait_until("the next message was delivered", || {
        sender.delivered.lock().unwrap().contains(&"+12063725678".to_owned())
    })
    .await;
    background.shutdown(std::time::Duration::from_secs(5)).await;
    let logs = logs();
    let line = logs
        .lines()
        .find(|line| line.contains("outbox dispatcher panicked"))
        .unwrap();
    assert!(line.contains("ERROR") && line.contains("worker=0"), "{line}");
    assert!(
        !logs.contains("provider client bug"),
        "the panic's message is not logged: {logs}"
    );
}
