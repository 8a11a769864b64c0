//! The pumping guard over HTTP (issue 17): a burst of sends to one fake
//! prefix that nobody verifies trips it after `min_sends`, further sends
//! to it are held (429 in the surface's shape), other prefixes and numbers
//! that verified before are not, it clears once the window passes; and two
//! instances on one Postgres share the counts. Also `phonegate stats`.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::time::Duration;

use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use phonegate::{Overrides, build, settings::Settings};
use phonegate_adapters::{
    clock::ManualClock,
    sms::ConsoleEcho,
    testing::{TestBackend, TestDatabase},
};
use secrecy::SecretString;
use serde_json::json;
use tower::ServiceExt as _;

use crate::common::{TestApp, relax_limits, spawn_app_with};

const REGISTER: &str = "/api/phone/register";
/// The fake prefix under attack, judged apart from the rest of +44.
const FAKE: &str = "4479111";

fn guarded(settings: &mut Settings) {
    let pumping = &mut settings.abuse.pumping;
    pumping.enabled = true;
    pumping.min_sends = 5;
    pumping.min_conversion_percent = 20;
    pumping.held_per_minute = 1;
    pumping.prefixes = vec![FAKE.to_owned()];
}

fn fake(n: u32) -> String {
    format!("+{FAKE}23{n:03}")
}

async fn register(app: &TestApp, phone: &str) -> crate::common::Reply {
    app.post_json(REGISTER, &json!({"phone_number": phone})).await
}

async fn register_and_verify(app: &TestApp, phone: &str) {
    let sent = register(app, phone).await;
    assert_eq!(sent.status, StatusCode::OK, "{:?}", sent.body);
    let code = app.last_code_to(phone);
    let verified = app
        .post_json(
            "/api/phone/verify",
            &json!({"phone_number": phone, "security_code": code, "session_token": sent.body["session_token"]}),
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{:?}", verified.body);
}

async fn a_burst_to_one_prefix_trips_the_guard_which_holds_it_and_then_clears(backend: TestBackend) {
    let app = spawn_app_with(backend, guarded).await;
    // A number of the prefix that verified before the attack.
    let returning = fake(999);
    register_and_verify(&app, &returning).await;
    // One send, one verified; five more unverified make 1 in 6, below 20 %.
    for n in 0..5 {
        let reply = register(&app, &fake(n)).await;
        assert_eq!(reply.status, StatusCode::OK, "send {n}: {:?}", reply.body);
    }
    let held = register(&app, &fake(5)).await;
    assert_eq!(held.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", held.body);
    assert_eq!(held.headers[header::RETRY_AFTER], "60");
    assert_eq!(
        held.body,
        json!({"detail": "Request was throttled. Expected available in 60 seconds."}),
        "phone-verify's throttled shape"
    );
    assert_eq!(register(&app, &fake(6)).await.status, StatusCode::TOO_MANY_REQUESTS);
    // The rest of +44 and the returning number are not held.
    assert_eq!(register(&app, "+447912345678").await.status, StatusCode::OK);
    assert_eq!(register(&app, &returning).await.status, StatusCode::OK);
    // A minute on, one held send goes through, and no more.
    app.clock.advance(Duration::from_secs(61));
    assert_eq!(register(&app, &fake(7)).await.status, StatusCode::OK);
    assert_eq!(register(&app, &fake(8)).await.status, StatusCode::TOO_MANY_REQUESTS);
    // Once the window has passed, the prefix is open again.
    app.clock.advance(Duration::from_secs(3600));
    assert_eq!(register(&app, &fake(9)).await.status, StatusCode::OK);
    assert_eq!(register(&app, &fake(10)).await.status, StatusCode::OK);

    // `phonegate stats`' report: the last day's sends to +44 (the fake
    // prefix counted under its calling code), one verified.
    let now = phonegate_domain::ports::Clock::now(&app.clock);
    let report = phonegate::stats::conversion_report(&app.store, now).await.unwrap();
    let day = report["last_day"].as_array().unwrap();
    let uk: Vec<_> = day.iter().filter(|row| row["calling_code"] == "44").collect();
    let sent: u64 = uk.iter().map(|row| row["sent"].as_u64().unwrap()).sum();
    let verified: u64 = uk.iter().map(|row| row["verified"].as_u64().unwrap()).sum();
    assert_eq!((sent, verified), (11, 1), "{report}");
    assert!(report["last_hour"].as_array().unwrap().len() <= day.len(), "{report}");
}

phonegate_adapters::on_both_backends!(a_burst_to_one_prefix_trips_the_guard_which_holds_it_and_then_clears);

/// An instance of the service on `url`, with its own cache and clock.
async fn instance(url: &str, clock: &ManualClock) -> axum::Router {
    let mut settings = Settings::defaults().unwrap();
    settings.database.url = SecretString::from(url.to_owned());
    relax_limits(&mut settings);
    guarded(&mut settings);
    let overrides = Overrides {
        clock: std::sync::Arc::new(clock.clone()),
        console_echo: ConsoleEcho::Silent,
    };
    build(&settings, overrides).await.unwrap().router
}

async fn status(router: &axum::Router, phone: &str) -> StatusCode {
    let request = Request::post(REGISTER)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"phone_number": phone}).to_string()))
        .unwrap();
    router.clone().oneshot(request).await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_share_the_counts() {
    let database = TestDatabase::create(TestBackend::Postgres).await;
    let clock = ManualClock::starting_now();
    let first = instance(&database.url, &clock).await;
    let second = instance(&database.url, &clock).await;
    for n in 0..5 {
        assert_eq!(status(&first, &fake(n)).await, StatusCode::OK, "send {n}");
    }
    // The second instance has counted nothing itself: it reads the
    // first's sends from the database.
    assert_eq!(status(&second, &fake(5)).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(status(&first, &fake(6)).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(status(&second, "+447912345678").await, StatusCode::OK);
}
