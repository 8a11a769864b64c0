//! Known and unknown accounts cannot be told apart by response time:
//! send_pin for a mobile with and without a user, and a password reset for
//! an email with and without an account.
//!
//! Method: 200 requests of the "known" case in each of two runs and 200 of
//! the "unknown" case, interleaved (k1, u, k2 in rotating order) so that
//! drift in the machine's load hits all three alike; only the router's own
//! time is measured (delivery runs afterwards, as it does in the background
//! in production). The noise between two runs of the same case is the
//! difference of medians of two halves of the known samples, over 1,000
//! random splits; the known-vs-unknown difference of medians must stay
//! under twice its 99th percentile (or 5% of the median, whichever is
//! larger, since a 2-core machine running other tests has bursts no split
//! sees). A leak of the kind this guards against (a provider call, a write
//! skipped for unknown accounts) costs far more than that.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use crate::common;

use std::time::{Duration, Instant};

use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use common::{TestApp, spawn_app};
use phonegate_adapters::testing::TestBackend;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const SAMPLES: usize = 200;

/// The router's time for one request (delivery excluded).
async fn timed(app: &TestApp, path: &str, body: &Value) -> Duration {
    let request = Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::HOST, "localhost")
        .body(Body::from(body.to_string()))
        .unwrap();
    let started = Instant::now();
    let response = app.router.clone().oneshot(request).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    app.deliver_outbox().await;
    elapsed
}

fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// A small deterministic PRNG for the permutations (xorshift).
struct Shuffle(u64);

impl Shuffle {
    fn next(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

/// The 99th percentile of the difference of medians between two random
/// halves of `samples`: how far two runs of the same case drift apart.
fn same_case_noise(samples: &[f64]) -> f64 {
    let mut pool = samples.to_vec();
    let mut rng = Shuffle(0x2545_F491_4F6C_DD1D);
    let mut differences: Vec<f64> = (0..1_000)
        .map(|_| {
            for i in (1..pool.len()).rev() {
                pool.swap(i, rng.next(i + 1));
            }
            let (a, b) = pool.split_at(pool.len() / 2);
            (median(a) - median(b)).abs()
        })
        .collect();
    differences.sort_by(f64::total_cmp);
    differences[differences.len() * 99 / 100]
}

async fn assert_indistinguishable(
    app: &TestApp,
    what: &str,
    path: &str,
    known: impl Fn(usize) -> Value,
    unknown: impl Fn(usize) -> Value,
) {
    // Warm up caches and the connection pool.
    for i in 0..20 {
        timed(app, path, &known(10_000 + i)).await;
        timed(app, path, &unknown(10_000 + i)).await;
    }
    let (mut k1, mut u, mut k2) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..SAMPLES {
        for slot in 0..3 {
            match (slot + i) % 3 {
                0 => k1.push(timed(app, path, &known(i)).await.as_secs_f64()),
                1 => u.push(timed(app, path, &unknown(i)).await.as_secs_f64()),
                _ => k2.push(timed(app, path, &known(i + SAMPLES)).await.as_secs_f64()),
            }
        }
    }
    let known_all: Vec<f64> = k1.iter().chain(&k2).copied().collect();
    let runs = (median(&k1) - median(&k2)).abs();
    let noise = same_case_noise(&known_all);
    let difference = (median(&known_all) - median(&u)).abs();
    let bound = (2.0 * noise).max(0.05 * median(&known_all));
    eprintln!(
        "{what}: known {:.1} µs, unknown {:.1} µs, difference {:.1} µs; two runs of the known case differ by \
         {:.1} µs, same-case noise (p99) {:.1} µs; bound {:.1} µs",
        median(&known_all) * 1e6,
        median(&u) * 1e6,
        difference * 1e6,
        runs * 1e6,
        noise * 1e6,
        bound * 1e6,
    );
    assert!(
        difference <= bound,
        "{what}: known and unknown differ by {:.1} µs, beyond the noise bound of {:.1} µs",
        difference * 1e6,
        bound * 1e6
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_pin_takes_as_long_for_an_unknown_mobile() {
    // Runs in a process of its own with nothing beside it (see `common::alone`).
    if crate::common::alone::rerun_alone(module_path!(), "send_pin_takes_as_long_for_an_unknown_mobile") {
        return;
    }
    let app = spawn_app(TestBackend::Sqlite).await;
    // 600 users, so every "known" request is a different known mobile.
    for i in 0..(2 * SAMPLES + 40) {
        app.store_user(&format!("+852616{i:05}")).await;
    }
    assert_indistinguishable(
        &app,
        "send_pin",
        "/api/v1/auth/send_pin",
        |i| {
            let i = if i >= 10_000 { 2 * SAMPLES + i - 10_000 } else { i };
            json!({"mobile": format!("+852616{i:05}")})
        },
        |i| json!({"mobile": format!("+852916{i:05}")}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_takes_as_long_for_an_unknown_email() {
    // Runs in a process of its own with nothing beside it (see `common::alone`).
    if crate::common::alone::rerun_alone(module_path!(), "a_reset_takes_as_long_for_an_unknown_email") {
        return;
    }
    let app = spawn_app(TestBackend::Sqlite).await;
    for i in 0..4 {
        app.create_user(&format!("known{i}@example.com"), "a long password", "Ada", "Lovelace")
            .await;
    }
    assert_indistinguishable(
        &app,
        "reset",
        "/api/v1/tokens/reset",
        |i| json!({"email": format!("known{}@example.com", i % 4)}),
        |i| json!({"email": format!("nobody{i}@example.com")}),
    )
    .await;
}
