//! Abuse resistance through the real router with the shipped limits:
//! brute force over fresh challenges and IPs, concurrent sends and checks,
//! per-IP limits, the SMS budget, destinations that get nothing, and each
//! surface's 429.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use crate::common;

use std::{
    net::SocketAddr,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use axum::{
    body::Body,
    extract::ConnectInfo,
    http::{Request, StatusCode, header},
};
use common::{Reply, TestApp, spawn_app, spawn_app_with, spawn_app_with_limits};
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
    // Each register supersedes the code before it, and a superseded code's
    // message is dropped rather than sent if the dispatcher has not sent it
    // yet: at most the five admitted codes go out, and the live one does.
    let delivered = app.messages_to("+12063721234");
    assert!((1..=5).contains(&delivered), "{delivered} messages");
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

/// A phone-verify registration of the `n`th number, arriving over a
/// connection from `peer` with `X-Forwarded-For: forwarded`.
async fn register_via(app: &TestApp, peer: [u8; 4], forwarded: &str, n: u32) -> StatusCode {
    let mut request = Request::post("/api/phone/register")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-forwarded-for", forwarded)
        .body(Body::from(
            json!({"phone_number": format!("+1206372{n:04}")}).to_string(),
        ))
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((peer, 40_000))));
    app.send(request).await.status
}

/// Behind a CDN (198.51.100.0/24) and a load balancer (10.0.0.0/8), both
/// in `security.trusted_proxies`, two users keep separate per-IP buckets
/// (20 sends each): the client is the right-most forwarded address that no
/// trusted proxy is. Neither a forged entry nor a direct connection with a
/// header picks a fresh bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_behind_trusted_proxies_keep_their_own_ip_limits() {
    let app = spawn_app_with_limits(TestBackend::Sqlite, |settings| {
        settings.security.trusted_proxies = vec!["10.0.0.0/8".to_owned(), "198.51.100.0/24".to_owned()];
        // Forty unverified codes to +1 in a moment are what the pumping
        // guard holds; this test is about the per-IP limits alone.
        settings.abuse.pumping.enabled = false;
    })
    .await;
    let balancer = [10, 0, 0, 2];
    for n in 0..20 {
        let status = register_via(&app, balancer, "203.0.113.1, 198.51.100.7", n).await;
        assert_eq!(status, StatusCode::OK, "send {n}");
    }
    let status = register_via(&app, balancer, "203.0.113.1, 198.51.100.7", 20).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another user through the same CDN edge and load balancer.
    let status = register_via(&app, balancer, "203.0.113.2, 198.51.100.7", 21).await;
    assert_eq!(status, StatusCode::OK, "a second user behind the same proxies");
    // What the first user writes to the left of its own address is ignored.
    let status = register_via(&app, balancer, "192.0.2.99, 203.0.113.1, 198.51.100.7", 22).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // A client that is not a trusted proxy is its own address, whatever
    // header it sends.
    for n in 0..20 {
        let status = register_via(&app, [192, 0, 2, 50], &format!("203.0.113.{}", 100 + n), 30 + n).await;
        assert_eq!(status, StatusCode::OK, "direct send {n}");
    }
    let status = register_via(&app, [192, 0, 2, 50], "203.0.113.200", 60).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
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

const TOKENS: &str = "/api/v1/tokens.json";
const ADA: &str = "Ada-Passphrase-7";

/// Behind the proxy, with a cheap argon2 so the tries that pass the limits
/// hash quickly (stored hashes carry their cost, so the accounts use it
/// too). The sign-in limits and lockout are the shipped ones.
fn sign_in_limits(settings: &mut Settings) {
    behind_proxy(settings);
    settings.auth.argon2_memory_kib = 1024;
    settings.auth.argon2_iterations = 1;
}

async fn sign_in_from(app: &TestApp, ip: &str, email: &str, password: &str) -> Reply {
    post_from(app, ip, TOKENS, &json!({"email": email, "password": password})).await
}

/// The n-th of many fresh client addresses.
fn fresh_ip(n: u32) -> String {
    format!("10.{}.{}.{}", n / 65_536 % 256, n / 256 % 256, n % 256)
}

/// 1,000 tries at one account's password, each from a fresh IP (a botnet):
/// the per-email limit lets 10 per 10 minutes reach a password check, the
/// fifth failure locks the account, and no try gets a session. Inside a
/// lock the right password gets the wrong one's answer; the next lock is
/// longer; once it ends the right password signs in. Time moves on the
/// manual clock.
async fn brute_force_on_one_account(backend: TestBackend) {
    let app = spawn_app_with_limits(backend, sign_in_limits).await;
    app.create_user("ada@example.com", ADA, "Ada", "L").await;
    let (mut checked, mut limited) = (0, 0);
    for attempt in 0..1000 {
        let reply = sign_in_from(&app, &fresh_ip(attempt), "ada@example.com", &format!("guess-{attempt}")).await;
        match reply.status {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(retry_after(&reply) >= Duration::from_secs(1));
                assert_eq!(
                    reply.body,
                    json!({"error": "Too many requests. Please try again later."})
                );
                limited += 1;
            }
            status => panic!("{status}: {:?}", reply.body),
        }
    }
    assert_eq!((checked, limited), (10, 990));
    // The per-email window passes, and with it the first lock (a minute).
    app.clock.advance(Duration::from_secs(600));
    let wrong = sign_in_from(&app, &fresh_ip(2000), "ada@example.com", "guess-again").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    // That sixth failure locked the account for two minutes.
    let right = sign_in_from(&app, &fresh_ip(2001), "ada@example.com", ADA).await;
    assert_eq!((right.status, &right.body), (wrong.status, &wrong.body));
    app.clock.advance(Duration::from_secs(119));
    let right = sign_in_from(&app, &fresh_ip(2002), "ada@example.com", ADA).await;
    assert_eq!(right.status, StatusCode::UNAUTHORIZED);
    app.clock.advance(Duration::from_secs(1));
    let right = sign_in_from(&app, &fresh_ip(2003), "ada@example.com", ADA).await;
    assert_eq!(right.status, StatusCode::OK, "{:?}", right.body);
    assert!(right.body["token"].is_string());
}

/// 1,000 tries from one IP spread over 100 accounts: the per-IP limit lets
/// 50 per 10 minutes reach a password check and no try gets a session;
/// that IP is refused even the right password, while the accounts' owners
/// sign in from elsewhere (one failure each is far from a lock).
async fn brute_force_from_one_ip_over_many_accounts(backend: TestBackend) {
    let app = spawn_app_with_limits(backend, sign_in_limits).await;
    for user in 0..100 {
        app.create_user(&format!("user{user}@example.com"), ADA, "U", "Ser")
            .await;
    }
    let (mut checked, mut limited) = (0, 0);
    for attempt in 0..1000 {
        let email = format!("user{}@example.com", attempt % 100);
        let reply = sign_in_from(&app, "203.0.113.9", &email, &format!("guess-{attempt}")).await;
        match reply.status {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            status => panic!("{status}: {:?}", reply.body),
        }
    }
    assert_eq!((checked, limited), (50, 950));
    let reply = sign_in_from(&app, "203.0.113.9", "user99@example.com", ADA).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    let reply = sign_in_from(&app, "198.51.100.7", "user0@example.com", ADA).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_on_one_account_sqlite() {
    brute_force_on_one_account(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_on_one_account_postgres() {
    brute_force_on_one_account(TestBackend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_from_one_ip_over_many_accounts_sqlite() {
    brute_force_from_one_ip_over_many_accounts(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_from_one_ip_over_many_accounts_postgres() {
    brute_force_from_one_ip_over_many_accounts(TestBackend::Postgres).await;
}

/// A request with a form body from `ip`.
async fn form_from(app: &TestApp, ip: &str, method: &str, path: &str, form: &str) -> Reply {
    app.send(
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("x-forwarded-for", ip)
            .body(Body::from(form.to_owned()))
            .unwrap(),
    )
    .await
}

/// Reset completion, introspection and access-code checks look random
/// tokens up; together they share one per-IP limit, each refusing in its
/// own surface's shape, and other clients are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_checks_are_limited_per_ip() {
    let app = spawn_app_with_limits(TestBackend::Sqlite, |settings| {
        behind_proxy(settings);
        settings.sign_in.token_checks_per_ip = 3;
    })
    .await;
    let guess = "0123456789abcdef0123456789abcdef";
    let reset_with = |ip: &'static str, body: &'static str| {
        let app = &app;
        async move { form_from(app, ip, "PUT", "/api/v1/tokens/reset.json", body).await }
    };
    let reset = |ip: &'static str| reset_with(ip, "reset_token=guess&password=new-password-1");
    let introspect = |ip: &'static str| {
        let app = &app;
        async move {
            form_from(
                app,
                ip,
                "POST",
                "/api/v1/tokens/introspect.json",
                "auth_token=guess&token=guess",
            )
            .await
        }
    };
    let check_code = |ip: &'static str| {
        let app = &app;
        async move {
            form_from(
                app,
                ip,
                "POST",
                &format!("/v1/auth/check_access_code?access_code={guess}"),
                "",
            )
            .await
        }
    };
    assert_eq!(reset("203.0.113.5").await.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(introspect("203.0.113.5").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(check_code("203.0.113.5").await.status, StatusCode::UNAUTHORIZED);
    for reply in [reset("203.0.113.5").await, introspect("203.0.113.5").await] {
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            reply.body,
            json!({"error": "Too many requests. Please try again later."})
        );
        assert!(retry_after(&reply) >= Duration::from_secs(1));
    }
    let reply = check_code("203.0.113.5").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(reply.body["res_info"]["code"].is_i64(), "{:?}", reply.body);
    assert!(retry_after(&reply) >= Duration::from_secs(1));
    // A flawed new password is judged after the limit: a throttled client
    // learns nothing about it, and one within its allowance hears what is
    // wrong with it.
    let flawed = |ip: &'static str| reset_with(ip, "reset_token=guess&password=short");
    assert_eq!(flawed("203.0.113.5").await.status, StatusCode::TOO_MANY_REQUESTS);
    let reply = flawed("198.51.100.9").await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reply.body,
        json!({"error": "Password is too short (minimum is 8 characters)"})
    );
    assert_eq!(check_code("198.51.100.7").await.status, StatusCode::UNAUTHORIZED);
}

/// One IPv6 /48 holds 65,536 /64s, each with the per-IP allowance; the /48
/// as a whole has a limit of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_slash_48_is_limited_as_a_whole() {
    let app = spawn_app_with_limits(TestBackend::Sqlite, |settings| {
        behind_proxy(settings);
        settings.rate_limit.sends_per_ipv6_48 = 3;
    })
    .await;
    for n in 0..3 {
        let reply = post_from(
            &app,
            &format!("2001:db8:42:{n:x}::1"),
            "/api/phone/register",
            &json!({"phone_number": format!("+1206372{n:04}")}),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    }
    let refused = post_from(
        &app,
        "2001:db8:42:ff::1",
        "/api/phone/register",
        &json!({"phone_number": "+12063729999"}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", refused.body);
    assert!(retry_after(&refused) > Duration::ZERO);
    let other = post_from(
        &app,
        "2001:db8:43::1",
        "/api/phone/register",
        &json!({"phone_number": "+12063729999"}),
    )
    .await;
    assert_eq!(other.status, StatusCode::OK, "{:?}", other.body);
}

/// Part of the hourly budget (20 % of 5: one send) is kept for numbers that
/// have verified before. Sends to new numbers (here pin-auth's decoys for
/// unknown mobiles) spend the rest, then get 429; a user who signed in
/// with a pin before still gets one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returning_users_get_codes_when_new_numbers_have_spent_their_share() {
    let app = spawn_app_with_limits(TestBackend::Sqlite, |settings| {
        settings.abuse.hourly_sms_budget = 5;
    })
    .await;
    signup(&app, MOBILE).await;
    let key = app.post_json(SEND_PIN, &json!({"mobile": MOBILE})).await;
    assert_eq!(
        key.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the cooldown: {:?}",
        key.body
    );
    // The signup's pin signs the user in: the number has verified now.
    let signup_key = {
        app.clock.advance(Duration::from_secs(30));
        let sent = app.post_json(SEND_PIN, &json!({"mobile": MOBILE})).await;
        assert_eq!(sent.status, StatusCode::OK, "{:?}", sent.body);
        sent.body["otp_auth_key"].as_str().unwrap().to_owned()
    };
    let pin = app.last_code_to(MOBILE);
    let verified = app
        .post_json(VERIFY, &json!({"otp_auth_key": signup_key, "pin": pin}))
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{:?}", verified.body);
    // Two sends so far; new numbers may spend 4 of 5, so two more decoys fit.
    for n in 0..2 {
        let reply = app
            .post_json(SEND_PIN, &json!({"mobile": format!("+8526167750{n}")}))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    }
    let refused = app.post_json(SEND_PIN, &json!({"mobile": "+85261677509"})).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", refused.body);
    assert!(refused.body["errors"].is_string(), "{:?}", refused.body);
    // The returning user still gets a pin, from the reserve.
    app.clock.advance(Duration::from_secs(30));
    let sent = app.post_json(SEND_PIN, &json!({"mobile": MOBILE})).await;
    assert_eq!(sent.status, StatusCode::OK, "{:?}", sent.body);
    assert_eq!(app.abuse_counters.budget_exhausted.load(Ordering::Relaxed), 1);
}

/// The number every surface is guessed at in the lockout tests: pin-auth is
/// configured to take it too, so one number is guessed through all four.
const GUESSED: &str = "+12063721234";
const GUESSED_QUERY: &str = "(206)372-1234";

/// A code of `code`'s length that is surely wrong: the right one plus one.
fn wrong_code(code: &str) -> String {
    let modulus = 10u64.pow(code.len() as u32);
    format!(
        "{:0width$}",
        (code.parse::<u64>().unwrap() + 1) % modulus,
        width = code.len()
    )
}

/// Captures the log lines of every test in this binary, from the first
/// call of [`captured_logs`] on (a subscriber scoped to one thread misses
/// events whose call site another thread registered first).
#[derive(Clone, Default)]
struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
    type Writer = Lines;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn captured_logs() -> Lines {
    static LINES: std::sync::OnceLock<Lines> = std::sync::OnceLock::new();
    LINES
        .get_or_init(|| {
            let lines = Lines::default();
            tracing::subscriber::set_global_default(
                tracing_subscriber::fmt()
                    .with_writer(lines.clone())
                    .with_ansi(false)
                    .with_max_level(tracing::Level::INFO)
                    .finish(),
            )
            .unwrap();
            lines
        })
        .clone()
}

async fn metrics_text(app: &TestApp) -> String {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let response = app
        .router
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

/// One live challenge on each surface for [`GUESSED`]: sends it and
/// returns its right code with what the surface needs to check a code.
struct Surfaces {
    token: String,
    pin_key: String,
    pin: String,
    session: String,
    security_code: String,
    login_pin: String,
    confirm_code: String,
}

impl Surfaces {
    async fn send_all(app: &TestApp, token: &str) -> Self {
        let reply = app.post_json(SEND_PIN, &json!({"mobile": GUESSED})).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let pin_key = reply.body["otp_auth_key"].as_str().unwrap().to_owned();
        let pin = app.last_code_to(GUESSED);
        let reply = app
            .post_json("/api/phone/register", &json!({"phone_number": GUESSED}))
            .await;
        let session = reply.body["session_token"].as_str().unwrap().to_owned();
        let security_code = app.last_code_to(GUESSED);
        let reply = app
            .post_query(&format!(
                "/v1/auth/phone_login?phone_number={GUESSED_QUERY}&device_id=d"
            ))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let login_pin = app.last_code_to(GUESSED);
        let reply = app
            .form(
                "POST",
                "/api/v1/settings/send_phone_verification.json",
                &format!("auth_token={token}&phone={GUESSED_QUERY}"),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let confirm_code = app.last_code_to(GUESSED);
        Self {
            token: token.to_owned(),
            pin_key,
            pin,
            session,
            security_code,
            login_pin,
            confirm_code,
        }
    }

    async fn pin_auth(&self, app: &TestApp, pin: &str) -> Reply {
        app.post_json(VERIFY, &json!({"otp_auth_key": self.pin_key, "pin": pin}))
            .await
    }

    async fn phone_verify(&self, app: &TestApp, code: &str) -> Reply {
        app.post_json(
            "/api/phone/verify",
            &json!({"phone_number": GUESSED, "security_code": code, "session_token": self.session}),
        )
        .await
    }

    async fn phone_login(&self, app: &TestApp, pin: &str) -> Reply {
        app.post_query(&format!(
            "/v1/auth/check_pin?phone_number={GUESSED_QUERY}&device_id=d&verify_pin={pin}"
        ))
        .await
    }

    async fn tokens(&self, app: &TestApp, code: &str) -> Reply {
        app.form(
            "POST",
            "/api/v1/settings/verify_phone.json",
            &format!("auth_token={}&token={code}", self.token),
        )
        .await
    }
}

/// Ten wrong codes for one number, spread over the four surfaces' live
/// challenges, lock it: then every surface refuses even the right code, in
/// exactly the answer it gives a wrong code; every surface's send answers
/// as usual but sends nothing; the lock is counted in `/metrics` and
/// raised as an alert line without the number; after 24 hours codes are
/// sent and accepted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_across_surfaces_lock_the_number_everywhere() {
    // Runs in a process of its own with nothing beside it (see `common::alone`).
    if crate::common::alone::rerun_alone(module_path!(), "wrong_codes_across_surfaces_lock_the_number_everywhere") {
        return;
    }
    let lines = captured_logs();
    let _logs = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(lines.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish(),
    );
    let app = spawn_app_with(TestBackend::Sqlite, |settings| {
        settings.pin_auth.mobile_prefixes = vec!["+1206".into()];
    })
    .await;
    // The tokens user confirms the number, so it is known to pin-auth and
    // still theirs to confirm again.
    app.create_user("guessed@example.com", "a long password", "Ada", "Lovelace")
        .await;
    let reply = app
        .form(
            "POST",
            "/api/v1/tokens.json",
            "email=guessed@example.com&password=a long password",
        )
        .await;
    let token = reply.body["token"].as_str().unwrap().to_owned();
    let reply = app
        .form(
            "POST",
            "/api/v1/settings/send_phone_verification.json",
            &format!("auth_token={token}&phone={GUESSED_QUERY}"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let code = app.last_code_to(GUESSED);
    let reply = app
        .form(
            "POST",
            "/api/v1/settings/verify_phone.json",
            &format!("auth_token={token}&token={code}"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);

    let live = Surfaces::send_all(&app, &token).await;
    // Nine wrong codes: 3 + 2 + 2 + 2, each challenge keeping attempts.
    let mut wrong_answers = vec![];
    for _ in 0..3 {
        wrong_answers.push(live.pin_auth(&app, &wrong_code(&live.pin)).await);
    }
    for _ in 0..2 {
        wrong_answers.push(live.phone_verify(&app, &wrong_code(&live.security_code)).await);
        wrong_answers.push(live.phone_login(&app, &wrong_code(&live.login_pin)).await);
        wrong_answers.push(live.tokens(&app, &wrong_code(&live.confirm_code)).await);
    }
    assert!(!metrics_text(&app).await.contains("phonegate_phone_locks_total{"));
    // The tenth locks the number.
    wrong_answers.push(live.pin_auth(&app, &wrong_code(&live.pin)).await);
    let wrong_shape = |index: usize| {
        let reply: &Reply = &wrong_answers[index];
        (reply.status, reply.body.clone())
    };

    // The right codes, each on a challenge with attempts left, are refused
    // as wrong codes are.
    let refused = live.pin_auth(&app, &live.pin).await;
    assert_eq!((refused.status, refused.body), wrong_shape(0));
    let refused = live.phone_verify(&app, &live.security_code).await;
    assert_eq!((refused.status, refused.body), wrong_shape(3));
    assert_eq!(
        wrong_shape(3).1,
        json!({"non_field_errors": ["Security code is not valid"]})
    );
    let refused = live.phone_login(&app, &live.login_pin).await;
    assert_eq!((refused.status, refused.body.clone()), wrong_shape(4));
    assert_eq!(refused.body["res_info"]["code"], 4);
    let refused = live.tokens(&app, &live.confirm_code).await;
    assert_eq!((refused.status, refused.body), wrong_shape(5));
    assert_eq!(wrong_shape(0).1, json!({"errors": "Invalid pin"}));

    // Sends answer as usual and send nothing.
    let sent = app.messages_to(GUESSED);
    let reply = app.post_json(SEND_PIN, &json!({"mobile": GUESSED})).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body["otp_auth_key"].is_string(), "{:?}", reply.body);
    let reply = app
        .post_json("/api/phone/register", &json!({"phone_number": GUESSED}))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body["session_token"].is_string(), "{:?}", reply.body);
    let reply = app
        .post_query(&format!(
            "/v1/auth/phone_login?phone_number={GUESSED_QUERY}&device_id=d&call_verify=T"
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["res_info"]["code"], 2, "{:?}", reply.body);
    let reply = app
        .form(
            "POST",
            "/api/v1/settings/send_phone_verification.json",
            &format!("auth_token={token}&phone={GUESSED_QUERY}"),
        )
        .await;
    assert_eq!(reply.body, json!({"message": "Verification code sent."}));
    assert_eq!(app.messages_to(GUESSED), sent, "nothing reaches a locked number");

    // Counted once, by the surface whose check locked it; the refused
    // checks by their own outcome.
    let text = metrics_text(&app).await;
    assert!(
        text.contains("\nphonegate_phone_locks_total{surface=\"pin_auth\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("\nphonegate_verifications_total{surface=\"phone_login\",outcome=\"locked\"} 1\n"),
        "{text}"
    );
    let logs = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let alerts: Vec<&str> = logs
        .lines()
        // Only this test guesses at a +1 number.
        .filter(|line| line.contains("alert=\"phone_locked\"") && line.contains("calling_code=\"1\""))
        .collect();
    assert_eq!(alerts.len(), 1, "{logs}");
    assert!(alerts[0].contains("ERROR"), "{}", alerts[0]);
    assert!(
        !alerts[0].contains("2063721234"),
        "the alert names no number: {}",
        alerts[0]
    );

    // A second before the lock ends it holds; then codes flow again.
    app.clock.advance(Duration::from_secs(86_399));
    let reply = app.post_json(SEND_PIN, &json!({"mobile": GUESSED})).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(app.messages_to(GUESSED), sent);
    app.clock.advance(Duration::from_secs(1));
    let after = Surfaces::send_all(&app, &token).await;
    assert_eq!(app.messages_to(GUESSED), sent + 4);
    assert_eq!(after.pin_auth(&app, &after.pin).await.status, StatusCode::OK);
    assert_eq!(
        after.phone_verify(&app, &after.security_code).await.status,
        StatusCode::OK
    );
    assert_eq!(after.phone_login(&app, &after.login_pin).await.status, StatusCode::OK);
    assert_eq!(after.tokens(&app, &after.confirm_code).await.status, StatusCode::OK);
}

/// With the counts in a real Redis: nine wrong pins then the right one
/// start the count over (twice: eighteen wrong pins lock nothing); ten in a
/// row lock the number, whose sends then answer 200 with a key and send
/// nothing, as for an unknown number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_code_before_the_cap_starts_the_count_over() {
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!(
        "phonegate-test:lockout:{}:",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let app = spawn_app_with(TestBackend::Sqlite, |settings| {
        settings.rate_limit.redis_url = Some(redis.into());
        settings.rate_limit.redis_key_prefix = prefix;
    })
    .await;
    app.store_user(MOBILE).await;
    let app = &app;
    let challenge = move || async move {
        let sent = app.post_json(SEND_PIN, &json!({"mobile": MOBILE})).await;
        assert_eq!(sent.status, StatusCode::OK);
        (
            sent.body["otp_auth_key"].as_str().unwrap().to_owned(),
            app.last_code_to(MOBILE),
        )
    };
    let verify = move |key: String, pin: String| async move {
        app.post_json(VERIFY, &json!({"otp_auth_key": key, "pin": pin})).await
    };
    for _ in 0..2 {
        let (key, pin) = challenge().await;
        for _ in 0..5 {
            assert_eq!(verify(key.clone(), wrong(&pin)).await.body["errors"], "Invalid pin");
        }
        let (key, pin) = challenge().await;
        for _ in 0..4 {
            verify(key.clone(), wrong(&pin)).await;
        }
        let reply = verify(key, pin).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    }
    for _ in 0..2 {
        let (key, pin) = challenge().await;
        for _ in 0..5 {
            verify(key.clone(), wrong(&pin)).await;
        }
    }
    let sent = app.messages_to(MOBILE);
    let reply = app.post_json(SEND_PIN, &json!({"mobile": MOBILE})).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body["otp_auth_key"].is_string());
    assert_eq!(app.messages_to(MOBILE), sent, "a locked number gets no pin");
}

/// The in-memory limiter forgets its least recently used keys when full,
/// and strangers can fill it (here: token checks from 1,200 addresses, one
/// key each, past a bound of 1,000). A number's lock must survive that: it
/// lives in a limiter of its own, so the right pin is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_limiter_keys_does_not_lift_a_lock() {
    let app = spawn_app_with(TestBackend::Sqlite, |settings| {
        behind_proxy(settings);
        settings.rate_limit.max_memory_keys = 1000;
    })
    .await;
    app.store_user(MOBILE).await;
    let challenge = || async {
        let sent = app.post_json(SEND_PIN, &json!({"mobile": MOBILE})).await;
        assert_eq!(sent.status, StatusCode::OK, "{:?}", sent.body);
        (
            sent.body["otp_auth_key"].as_str().unwrap().to_owned(),
            app.last_code_to(MOBILE),
        )
    };
    for _ in 0..2 {
        let (key, pin) = challenge().await;
        for _ in 0..5 {
            let reply = app
                .post_json(VERIFY, &json!({"otp_auth_key": key, "pin": wrong(&pin)}))
                .await;
            assert_eq!(reply.body["errors"], "Invalid pin");
        }
    }
    for n in 0..1200 {
        let reply = form_from(
            &app,
            &fresh_ip(n),
            "POST",
            "/api/v1/tokens/introspect.json",
            "auth_token=guess&token=guess",
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{:?}", reply.body);
    }
    // The number is still locked: its sends store decoys and send nothing.
    let sent = app.messages_to(MOBILE);
    let reply = app.post_json(SEND_PIN, &json!({"mobile": MOBILE})).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(app.messages_to(MOBILE), sent, "a locked number gets no pin");
}

/// Sign-ins and token checks from the /64s of one IPv6 /48 share a limit of
/// 8 times the per-IP one, as sends do, so a site's 65,536 /64s do not each
/// get the per-IP allowance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_from_one_ipv6_slash_48_share_a_limit() {
    let app = spawn_app_with_limits(TestBackend::Sqlite, |settings| {
        sign_in_limits(settings);
        settings.sign_in.per_ip = 2;
        settings.sign_in.token_checks_per_ip = 1;
    })
    .await;
    for n in 0..16 {
        let ip = format!("2001:db8:42:{n:x}::1");
        let reply = sign_in_from(&app, &ip, &format!("nobody{n}@example.com"), "guess").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{n}: {:?}", reply.body);
    }
    let reply = sign_in_from(&app, "2001:db8:42:ff::1", "nobody@example.com", "guess").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", reply.body);
    // Another /48 is unaffected.
    let reply = sign_in_from(&app, "2001:db8:43::1", "nobody@example.com", "guess").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{:?}", reply.body);
    let introspect = |ip: String| {
        let app = &app;
        async move {
            form_from(
                app,
                &ip,
                "POST",
                "/api/v1/tokens/introspect.json",
                "auth_token=guess&token=guess",
            )
            .await
            .status
        }
    };
    for n in 0..8 {
        assert_eq!(
            introspect(format!("2001:db8:44:{n:x}::1")).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        introspect("2001:db8:44:ff::1".to_owned()).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}
