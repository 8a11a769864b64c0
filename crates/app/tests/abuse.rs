//! Abuse resistance through the real router with the shipped limits:
//! brute force over fresh challenges and IPs, concurrent sends and checks,
//! per-IP limits, the SMS budget, destinations that get nothing, and each
//! surface's 429.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

mod common;

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use common::{Reply, TestApp, spawn_app, spawn_app_with_limits};
use phonegate::settings::Settings;
use phonegate_adapters::testing::TestBackend;
use phonegate_domain::ports::Clock as _;
use serde_json::{Value, json};

const SIGNUP: &str = "/api/v1/auth/signup";
const SEND_PIN: &str = "/api/v1/auth/send_pin";
const VERIFY: &str = "/api/v1/auth/verify";
const MOBILE: &str = "+85261677528";

/// The deployment sits behind a proxy that names the client in
/// `X-Forwarded-For`, so these tests can speak from any IP they like.
fn behind_proxy(settings: &mut Settings) {
    settings.security.client_ip_header = Some("X-Forwarded-For".into());
}

async fn post_from(app: &TestApp, ip: &str, path: &str, body: &Value) -> Reply {
    app.send(
        Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-forwarded-for", ip)
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

/// Signs `mobile` up and verifies the signup's pin: the user exists from
/// then on, so send_pin sends it real pins.
async fn signup(app: &TestApp, mobile: &str) {
    let reply = app
        .post_json(
            SIGNUP,
            &json!({"user_auth": {"mobile": mobile, "first_name": "Jake", "last_name": "Deamon",
                     "address_attributes": {"district_id": "1", "address_type": "Profile"}}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let key = reply.body["otp_auth_key"].as_str().unwrap().to_owned();
    let reply = app
        .post_json(VERIFY, &json!({"otp_auth_key": key, "pin": app.last_code_to(mobile)}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
}

fn retry_after(reply: &Reply) -> Duration {
    let seconds: u64 = reply
        .headers
        .get(header::RETRY_AFTER)
        .expect("a 429 says when to retry")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    Duration::from_secs(seconds)
}

/// A wrong pin that is surely wrong: the right one plus one.
fn wrong(pin: &str) -> String {
    format!("{:04}", (pin.parse::<u32>().unwrap() + 1) % 10_000)
}

/// An attacker makes 10,000 guesses at one account's pin, each new
/// challenge from a fresh IP, waiting exactly as long as every 429 says.
/// Every challenge gets five wrong guesses and then the right pin, which
/// must be refused. Whatever the attacker does, the server evaluates no
/// more guesses than 5 sends per 10 minutes × 5 attempts allow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_over_fresh_challenges_and_ips_never_beats_the_limits() {
    let app = spawn_app_with_limits(TestBackend::Sqlite, behind_proxy).await;
    signup(&app, MOBILE).await;
    app.clock.advance(Duration::from_secs(600));
    let start = app.clock.now();
    let (mut guesses, mut evaluated, mut challenges, mut ip) = (0u32, 0u32, 0u32, 0u32);
    while guesses < 10_000 {
        ip += 1;
        let from = format!("198.51.{}.{}", ip / 250, ip % 250 + 1);
        let sent = post_from(&app, &from, SEND_PIN, &json!({"mobile": MOBILE})).await;
        if sent.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(sent.body["errors"].is_string(), "pin-auth's own error shape");
            app.clock.advance(retry_after(&sent));
            continue;
        }
        assert_eq!(sent.status, StatusCode::OK, "{:?}", sent.body);
        challenges += 1;
        let key = sent.body["otp_auth_key"].as_str().unwrap().to_owned();
        let pin = app.last_code_to(MOBILE);
        for attempt in 1..=6 {
            let guess = if attempt == 6 { pin.clone() } else { wrong(&pin) };
            let reply = post_from(&app, &from, VERIFY, &json!({"otp_auth_key": key, "pin": guess})).await;
            guesses += 1;
            assert_ne!(
                reply.status,
                StatusCode::OK,
                "guess {attempt} of challenge {challenges} won a session"
            );
            if reply.body["errors"] == "Invalid pin" {
                evaluated += 1;
            } else {
                assert_eq!(
                    reply.body["errors"], "Too many failed attempts. Please request a new pin.",
                    "the 6th guess is refused even when correct"
                );
                assert_eq!(attempt, 6);
            }
        }
    }
    let elapsed = app.clock.now().since(start);
    let windows = elapsed.as_secs().div_ceil(600) + 1;
    assert!(
        challenges as u64 <= 5 * windows,
        "{challenges} challenges in {windows} windows"
    );
    assert!(
        evaluated as u64 <= 25 * windows,
        "{evaluated} guesses evaluated in {windows} windows"
    );
    assert_eq!(evaluated, challenges * 5);
    assert!(challenges > 10, "the attacker did get some challenges ({challenges})");
}

/// 50 parallel verifies of one correct code on Postgres: exactly one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_verifies_of_one_code_give_one_session() {
    let app = Arc::new(spawn_app(TestBackend::Postgres).await);
    signup(&app, MOBILE).await;
    let sent = app.post_json(SEND_PIN, &json!({"mobile": MOBILE})).await;
    let key = sent.body["otp_auth_key"].as_str().unwrap().to_owned();
    let pin = app.last_code_to(MOBILE);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (app, key, pin) = (app.clone(), key.clone(), pin.clone());
            tokio::spawn(async move { app.post_json(VERIFY, &json!({"otp_auth_key": key, "pin": pin})).await })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        let reply = task.await.unwrap();
        match reply.status {
            StatusCode::OK => wins += 1,
            StatusCode::UNPROCESSABLE_ENTITY => {}
            other => panic!("unexpected {other}: {:?}", reply.body),
        }
    }
    assert_eq!(wins, 1);
}

/// 50 parallel sends to one phone on Postgres: at most the per-phone limit
/// is queued and delivered; the rest get phone-verify's throttle answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_sends_to_one_phone_deliver_at_most_the_limit() {
    let app = Arc::new(spawn_app_with_limits(TestBackend::Postgres, |_| {}).await);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                app.post_json("/api/phone/register", &json!({"phone_number": "+12063721234"}))
                    .await
            })
        })
        .collect();
    let (mut ok, mut throttled) = (0, 0);
    for task in tasks {
        let reply = task.await.unwrap();
        match reply.status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                throttled += 1;
                let detail = reply.body["detail"].as_str().unwrap();
                assert!(
                    detail.starts_with("Request was throttled. Expected available in "),
                    "{detail}"
                );
            }
            other => panic!("unexpected {other}: {:?}", reply.body),
        }
    }
    app.deliver_outbox().await;
    assert_eq!((ok, throttled), (5, 45));
    assert_eq!(app.messages_to("+12063721234"), 5);
}

/// 20 sends per IP across numbers, 60 checks per IP; another IP is not
/// affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_limits_hold_in_each_surfaces_shape() {
    let app = spawn_app_with_limits(TestBackend::Sqlite, behind_proxy).await;
    for n in 0..20 {
        let reply = post_from(
            &app,
            "203.0.113.9",
            "/api/phone/register",
            &json!({"phone_number": format!("+1206372{n:04}")}),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    }
    let refused = post_from(&app, "203.0.113.9", SEND_PIN, &json!({"mobile": MOBILE})).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.body["errors"].is_string(), "{:?}", refused.body);
    assert!(retry_after(&refused) > Duration::ZERO);
    let other = post_from(&app, "203.0.113.10", SEND_PIN, &json!({"mobile": MOBILE})).await;
    assert_eq!(other.status, StatusCode::OK);

    // Checks: 60 per IP, whatever they check.
    for _ in 0..60 {
        let reply = post_from(
            &app,
            "203.0.113.11",
            VERIFY,
            &json!({"otp_auth_key": "AAAAAAAAAAAAAAAAAAAAAA==", "pin": "1234"}),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let refused = post_from(
        &app,
        "203.0.113.11",
        VERIFY,
        &json!({"otp_auth_key": "AAAAAAAAAAAAAAAAAAAAAA==", "pin": "1234"}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);

    // phone-login's envelope says -429; the tokens surface says {"error"}.
    let reply = app
        .send(
            Request::post("/v1/auth/phone_login?phone_number=%2B12063729999&device_id=d")
                .header("x-forwarded-for", "203.0.113.9")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.body["res_info"]["code"], -429);
    assert!(reply.headers.contains_key(header::RETRY_AFTER));
    let reply = post_from(
        &app,
        "203.0.113.9",
        "/api/v1/tokens/reset",
        &json!({"email": "a@example.com"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(reply.body["error"].is_string(), "{:?}", reply.body);
    assert!(app.abuse_counters.rate_limited.load(Ordering::Relaxed) >= 4);
}

/// The resend cooldown applies to pin-auth, not to phone-verify, whose
/// clients resend by registering again at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resend_cooldown_spares_the_surface_that_resends_at_once() {
    let app = spawn_app_with_limits(TestBackend::Sqlite, |_| {}).await;
    signup(&app, MOBILE).await;
    let again = app.post_json(SEND_PIN, &json!({"mobile": MOBILE})).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&again), Duration::from_secs(30));
    app.clock.advance(Duration::from_secs(30));
    assert_eq!(
        app.post_json(SEND_PIN, &json!({"mobile": MOBILE})).await.status,
        StatusCode::OK
    );
    for _ in 0..2 {
        let reply = app
            .post_json("/api/phone/register", &json!({"phone_number": "+12063721234"}))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
}

/// The hourly budget: once spent, sends are refused and counted for the
/// alert; sends resume when the hour has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sms_budget_refuses_sends_once_spent() {
    let app = spawn_app_with_limits(TestBackend::Sqlite, |settings| {
        settings.abuse.hourly_sms_budget = 3;
    })
    .await;
    for n in 0..3 {
        let reply = app
            .post_json(
                "/api/phone/register",
                &json!({"phone_number": format!("+1206372{n:04}")}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let refused = app
        .post_json("/api/phone/register", &json!({"phone_number": "+12063729999"}))
        .await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.abuse_counters.budget_exhausted.load(Ordering::Relaxed), 1);
    assert_eq!(app.messages_to("+12063729999"), 0);
    app.clock.advance(Duration::from_secs(3600));
    let reply = app
        .post_json("/api/phone/register", &json!({"phone_number": "+12063729999"}))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

/// Destinations outside the allow-list, and numbers that are not mobiles,
/// get no text at all; a landline may still get a call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_mobiles_and_disallowed_countries_get_nothing() {
    let app = spawn_app_with_limits(TestBackend::Sqlite, |settings| {
        settings.abuse.allowed_regions = vec!["US".into(), "GB".into(), "HK".into()];
    })
    .await;
    // A London landline by text: refused as an invalid phone.
    let reply = app
        .post_query("/v1/auth/phone_login?phone_number=%2B442071838750&device_id=d")
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    assert_eq!(reply.body["res_info"]["code"], 12);
    // By call it goes out.
    let reply = app
        .post_query("/v1/auth/phone_login?phone_number=%2B442071838750&device_id=d&call_verify=T")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(app.messages_to("+442071838750"), 1);
    // A premium-rate number, and a country not on the list.
    for number in ["+449098790000", "+33612345678"] {
        let reply = app
            .post_json("/api/phone/register", &json!({"phone_number": number}))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{number}: {:?}", reply.body);
        assert_eq!(app.messages_to(number), 0);
    }
    assert_eq!(app.abuse_counters.not_mobile.load(Ordering::Relaxed), 2);
    assert_eq!(app.abuse_counters.destination_refused.load(Ordering::Relaxed), 1);
}

/// `/metrics` reports the refusals (the budget's is the alert) and the
/// outbox's backlog in Prometheus' text format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_report_refusals_and_the_outbox_backlog() {
    let app = spawn_app_with_limits(TestBackend::Sqlite, |settings| {
        settings.abuse.hourly_sms_budget = 1;
    })
    .await;
    for number in ["+12063720001", "+12063720002"] {
        app.post_json("/api/phone/register", &json!({"phone_number": number}))
            .await;
    }
    let metrics = |app: &TestApp| {
        let router = app.router.clone();
        async move {
            use http_body_util::BodyExt as _;
            use tower::ServiceExt as _;
            let response = router
                .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert!(
                response.headers()[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with("text/plain; version=0.0.4")
            );
            String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
        }
    };
    let text = metrics(&app).await;
    assert!(text.contains("\nphonegate_sms_budget_exhausted_total 1\n"), "{text}");
    assert!(text.contains("# TYPE phonegate_rate_limited_total counter\n"), "{text}");
    assert!(text.contains("\nphonegate_outbox_pending 0\n"), "delivered: {text}");
    // A message queued but not yet delivered shows in the backlog.
    app.clock.advance(Duration::from_secs(3600));
    let request = Request::post("/api/phone/register")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"phone_number": "+12063720003"}).to_string()))
        .unwrap();
    use tower::ServiceExt as _;
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = metrics(&app).await;
    assert!(text.contains("\nphonegate_outbox_pending 1\n"), "{text}");
}
