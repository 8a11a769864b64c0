//! Property tests over every route of the four surfaces and the ops
//! endpoints, against the real router (built as `phonegate serve` builds it,
//! with the console SMS provider).
//!
//! `random_requests_never_fail_the_server` sends requests with random
//! methods, content types, bodies built from each route's real field names
//! with hostile values, query strings, Authorization headers (garbage,
//! JWT-shaped garbage, and tokens correctly signed with the test secret but
//! carrying arbitrary claims), and checks that every answer is below 500
//! and that every error is in its surface's own shape.
//! `valid_flows_succeed_for_any_number` runs each surface's happy path with
//! random valid numbers typed in random formats.
//!
//! Case counts are chosen so that these tests take a few seconds in CI;
//! `PROPTEST_CASES=20000 cargo test -p phonegate --test it
//! fuzz_routes::sqlite::random_requests` runs a longer search (the flow test
//! builds a service per case, so give it far fewer). A failure prints the
//! minimal request; it becomes a plain regression test (in `regressions`)
//! rather than a persisted seed file.
//!
//! The modules: `catalogue` (the routes and their parameters), `generators`
//! (random values), `requests` (random requests from them), `shapes`
//! (checking answers), `flows` (the happy paths) and `regressions`.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use crate::common;

mod catalogue;
mod flows;
mod generators;
mod regressions;
mod requests;
mod shapes;

use std::time::{SystemTime, UNIX_EPOCH};

use axum::{
    body::Body,
    http::{HeaderValue, Method, Request, StatusCode, header},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{TestApp, spawn_app_with, spawn_app_with_limits};
use hmac::{Hmac, Mac as _};
use http_body_util::BodyExt as _;
use phonegate::settings::Settings;
use phonegate_adapters::{on_both_backends, testing::TestBackend};
use phonegate_domain::phone::{LineKind, PhonePolicy};
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use tower::ServiceExt as _;

use self::{catalogue::*, flows::*, generators::*, requests::*, shapes::*};

/// The master secret of the app under test.
const JWT_SECRET: &str = "fuzz-master-secret-0123456789abcdefgh";
/// Its HS256 key, so the test can sign tokens with arbitrary claims and
/// reach the code behind the signature check.
const JWT_HS256_KEY: &str = "fuzz-hs256-key-0123456789abcdefgh";

/// `default_cases`, or `PROPTEST_CASES` when set (for a longer local run),
/// with no failure files written into the source tree.
fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn configure(settings: &mut Settings) {
    settings.auth.jwt_secret = Some(SecretString::from(JWT_SECRET));
    settings.auth.jwt_hs256_key = Some(SecretString::from(JWT_HS256_KEY));
}

// --- the properties -----------------------------------------------------------

/// Every route, any method, content type, body, query and credentials:
/// never a 5xx, always the surface's own shape. On SQLite the rate limits
/// are lifted so requests reach the stores; on Postgres the shipped limits
/// stay, so 429s in each surface's shape are fuzzed too.
async fn random_requests_never_fail_the_server(backend: TestBackend) {
    let app = match backend {
        TestBackend::Sqlite => spawn_app_with(backend, configure).await,
        TestBackend::Postgres => spawn_app_with_limits(backend, configure).await,
    };
    // A user (user 1, whom some signed tokens name), a session token of
    // theirs and an application's token, so some requests get past
    // authentication.
    app.create_user("fuzz@example.com", "fuzz-password", "Fuzz", "Er").await;
    let signed_in = post(
        &app,
        "/api/v1/tokens",
        &json!({"email": "fuzz@example.com", "password": "fuzz-password"}),
        false,
    )
    .await;
    let (_, app_token) = app.create_application("fuzz").await;
    let known = Known {
        session_token: signed_in.body.unwrap()["token"].as_str().unwrap().to_owned(),
        app_token: app_token.expose().to_owned(),
    };
    let cases = if backend == TestBackend::Sqlite { 1500 } else { 400 };
    let handle = tokio::runtime::Handle::current();
    run_cases(cases, case, |case| {
        let answer = handle.block_on(send(&app, case.request(&known)));
        check(&case, &answer)
    });
}

/// Runs `test` on `cases` values of `strategy()`, on a thread with a large
/// stack: proptest's strategy trees are deep and their frames large in
/// debug builds. The test may block on the current runtime's handle.
fn run_cases<S: Strategy>(
    cases: u32,
    strategy: impl FnOnce() -> S + Send,
    test: impl Fn(S::Value) -> Result<(), TestCaseError> + Send,
) {
    let result = tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .stack_size(64 << 20)
                .spawn_scoped(scope, move || {
                    TestRunner::new(config(cases))
                        .run(&strategy(), test)
                        .map_err(|error| error.to_string())
                })
                .unwrap()
                .join()
                .unwrap()
        })
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

/// Each surface's happy path with random valid numbers, formats, names,
/// devices and encodings, on a fresh service per case.
async fn valid_flows_succeed_for_any_number(backend: TestBackend) {
    let cases = if backend == TestBackend::Sqlite { 12 } else { 4 };
    let handle = tokio::runtime::Handle::current();
    run_cases(cases, flow, |flow| {
        handle.block_on(async {
            let app = spawn_app_with(backend, configure).await;
            run_flow(&app, &flow).await
        })
    });
}

on_both_backends!(
    random_requests_never_fail_the_server,
    valid_flows_succeed_for_any_number
);
