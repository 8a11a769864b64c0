//! Postgres restarted under load: while it is down the service answers 503
//! (never a 500, never a hang), and when it is back the service recovers by
//! itself, with no restart of its own.
//!
//! This stops and starts the machine's real PostgreSQL cluster with
//! `pg_ctlcluster`, so it runs alone, in a process of its own, while no
//! other test of this binary runs (`common::alone`), and no other test
//! sees the outage (cargo runs test binaries one after another).

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use crate::common;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use axum::http::StatusCode;
use common::spawn_app;
use phonegate_adapters::testing::TestBackend;
use serde_json::json;

const MOBILE: &str = "+85261677528";

/// The local cluster, as `pg_ctlcluster` names it (version, "main").
fn cluster_version() -> String {
    let versions = std::fs::read_dir("/etc/postgresql").unwrap_or_else(|error| {
        panic!(
            "This test restarts the local PostgreSQL cluster with pg_ctlcluster, but /etc/postgresql is \
             unreadable ({error}). Install Debian's postgresql package (bash .ci/run does)."
        )
    });
    versions
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .max()
        .expect("a PostgreSQL cluster is installed")
}

fn pg_ctlcluster(action: &str) {
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &cluster_version(), "main", action])
        .args(if action == "stop" { &["-m", "fast"][..] } else { &[][..] })
        .status()
        .unwrap_or_else(|error| panic!("pg_ctlcluster {action} could not run: {error}"));
    assert!(status.success(), "pg_ctlcluster {action} failed: {status}");
}

/// Starts the cluster again however the test ends, so a failure here never
/// leaves the machine without its database.
struct Restart;

impl Drop for Restart {
    fn drop(&mut self) {
        let _ = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &cluster_version(), "main", "start"])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_answers_503_while_postgres_is_down_and_recovers_by_itself() {
    // Runs in a process of its own with nothing beside it (see `common::alone`).
    if crate::common::alone::rerun_alone(
        module_path!(),
        "the_service_answers_503_while_postgres_is_down_and_recovers_by_itself",
    ) {
        return;
    }
    if std::env::var("DATABASE_URL").is_ok_and(|url| !url.contains("127.0.0.1") && !url.contains("localhost")) {
        panic!("DATABASE_URL names a remote server; this test must restart the local cluster it uses");
    }
    let app = spawn_app(TestBackend::Postgres).await;
    let signup = json!({"user_auth": {"mobile": MOBILE, "address_attributes": {}}});
    let reply = app.post_json("/api/v1/auth/signup", &signup).await;
    assert_eq!(reply.status, StatusCode::OK);
    // The user exists once the signup's pin is verified; then send_pin
    // sends real pins.
    let key = reply.body["otp_auth_key"].as_str().unwrap().to_owned();
    let pin = app.last_code_to(MOBILE);
    let reply = app
        .post_json("/api/v1/auth/verify", &json!({"otp_auth_key": key, "pin": pin}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);

    let _restart = Restart;
    pg_ctlcluster("stop");
    let down_at = Instant::now();
    let mut statuses = Vec::new();
    while down_at.elapsed() < Duration::from_secs(3) {
        let reply = app.post_json("/api/v1/auth/send_pin", &json!({"mobile": MOBILE})).await;
        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(
                reply.body,
                json!({"errors": "Service Unavailable"}),
                "no detail leaks to the client"
            );
        }
        statuses.push(reply.status);
        let ready = app
            .send(
                axum::http::Request::get("/readyz")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        statuses.push(ready.status);
    }
    assert!(
        statuses.iter().all(|status| *status == StatusCode::SERVICE_UNAVAILABLE),
        "every answer during the outage is a 503: {statuses:?}"
    );
    assert!(
        statuses.len() >= 2,
        "requests were answered (not hung) during the outage"
    );

    pg_ctlcluster("start");
    let deadline = Instant::now() + Duration::from_secs(30);
    let key = loop {
        let reply = app.post_json("/api/v1/auth/send_pin", &json!({"mobile": MOBILE})).await;
        match reply.status {
            StatusCode::OK => break reply.body["otp_auth_key"].as_str().unwrap().to_owned(),
            StatusCode::SERVICE_UNAVAILABLE => {}
            other => panic!("{other} while Postgres came back: {:?}", reply.body),
        }
        assert!(
            Instant::now() < deadline,
            "the service did not recover after Postgres came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The whole flow works again, delivery included.
    let pin = app.last_code_to(MOBILE);
    let reply = app
        .post_json("/api/v1/auth/verify", &json!({"otp_auth_key": key, "pin": pin}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
}
