//! The developer console's routes through the real router: `GET /` and
//! `GET /dev/outbox` with the console SMS provider, and neither with a real
//! provider (the outbox shows codes), and only to connections from this
//! machine. The page itself is driven in a browser by `console_browser.rs`.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use crate::common;

use std::net::{IpAddr, SocketAddr};

use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{Request, StatusCode, header},
};
use common::spawn_app;
use http_body_util::BodyExt as _;
use phonegate::{
    Overrides, build,
    settings::{Settings, SmsProvider},
};
use phonegate_adapters::{
    sms::ConsoleEcho,
    testing::{TestBackend, TestDatabase},
};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tower::ServiceExt as _;

/// A request from this machine (the server gives every request its peer's
/// address; the console answers only loopback peers).
async fn get(router: &Router, path: &str, host: &str) -> (StatusCode, Option<String>, String) {
    let response = router
        .clone()
        .oneshot(
            Request::get(path)
                .header(header::HOST, host)
                .extension(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 50_000))))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| value.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, content_type, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn the_console_provider_serves_the_page_and_the_dev_outbox() {
    let app = spawn_app(TestBackend::Sqlite).await;

    let (status, content_type, page) = get(&app.router, "/", "localhost:8080").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.unwrap().starts_with("text/html"));
    assert!(page.contains("<title>phonegate developer console</title>"));
    // The page works offline: nothing is loaded from another origin.
    assert!(!page.contains("http://") && !page.contains("https://"), "{page}");

    let signup = app
        .post_json(
            "/api/v1/auth/signup",
            &json!({"user_auth": {"mobile": "+85251224538", "address_attributes": {"district_id": "1"}}}),
        )
        .await;
    assert_eq!(signup.status, StatusCode::OK, "{:?}", signup.body);

    let (status, _, outbox) = get(&app.router, "/dev/outbox?to=%2B85251224538", "127.0.0.1:8080").await;
    assert_eq!(status, StatusCode::OK);
    let outbox: Value = serde_json::from_str(&outbox).unwrap();
    let messages = outbox["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{outbox}");
    assert_eq!(messages[0]["channel"], "sms");
    assert_eq!(messages[0]["to"], "+85251224538");
    let body = messages[0]["body"].as_str().unwrap();
    let pin = body.rsplit(' ').next().unwrap();
    assert_eq!(pin, app.last_code_to("+85251224538"));

    // The code the outbox shows is the one that signs in.
    let verify = app
        .post_json(
            "/api/v1/auth/verify",
            &json!({"otp_auth_key": signup.body["otp_auth_key"], "pin": pin}),
        )
        .await;
    assert_eq!(verify.status, StatusCode::OK, "{:?}", verify.body);

    // Another number's messages are not listed.
    let (_, _, other) = get(&app.router, "/dev/outbox?to=%2B85261677528", "localhost").await;
    assert_eq!(serde_json::from_str::<Value>(&other).unwrap()["messages"], json!([]));
}

#[tokio::test]
async fn the_console_answers_only_on_loopback_or_allowed_hosts() {
    let app = spawn_app(TestBackend::Sqlite).await;
    for path in ["/", "/dev/outbox"] {
        let (status, _, body) = get(&app.router, path, "attacker.example:8080").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(body.contains("security.allowed_hosts"), "{body}");
    }

    let app = common::spawn_app_with(TestBackend::Sqlite, |settings| {
        settings.security.allowed_hosts = vec!["dev.example.com".to_owned()];
    })
    .await;
    assert_eq!(get(&app.router, "/", "dev.example.com").await.0, StatusCode::OK);
    assert_eq!(get(&app.router, "/", "localhost").await.0, StatusCode::FORBIDDEN);
}

/// The service with a Twilio provider pointed at a port where nothing
/// listens (nothing is sent: no request here queues a message).
async fn with_real_provider(provider: SmsProvider) -> (Router, TestDatabase) {
    let database = TestDatabase::create(TestBackend::Sqlite).await;
    let mut settings = Settings::defaults().unwrap();
    settings.database.url = SecretString::from(database.url.clone());
    settings.sms.provider = provider;
    settings.auth.jwt_secret = Some(SecretString::from("a-test-master-secret-0123456789ABCDEF".to_owned()));
    settings.auth.jwt_hs256_key = Some(SecretString::from("a-test-hs256-key-0123456789ABCDEF".to_owned()));
    settings.twilio.account_sid = Some("AC00000000000000000000000000000001".to_owned());
    settings.twilio.auth_token = Some(SecretString::from("twilio-test-auth-token".to_owned()));
    settings.twilio.from_number = Some("+15005550006".to_owned());
    settings.twilio.verify_service_sid = Some("VA00000000000000000000000000000001".to_owned());
    settings.twilio.api_base_url = "http://127.0.0.1:9".to_owned();
    settings.twilio.verify_base_url = "http://127.0.0.1:9".to_owned();
    let app = build(
        &settings,
        Overrides {
            console_echo: ConsoleEcho::Silent,
            ..Overrides::default()
        },
    )
    .await
    .unwrap();
    assert!(app.console.is_none());
    (app.router, database)
}

#[tokio::test]
async fn a_real_sms_provider_has_no_console_and_no_dev_outbox() {
    for provider in [SmsProvider::Twilio, SmsProvider::TwilioVerify] {
        let (router, _database) = with_real_provider(provider).await;
        for path in ["/", "/dev/outbox", "/dev/outbox?to=%2B85251224538"] {
            let (status, _, body) = get(&router, path, "localhost:8080").await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{provider:?} {path}: {body}");
            assert!(!body.contains("developer console"), "{body}");
        }
        // The surfaces themselves are served.
        assert_eq!(get(&router, "/healthz", "localhost").await.0, StatusCode::OK);
    }
}

/// This machine's address on its network, if it has one: the source
/// address the kernel picks for a public destination. Connecting a UDP
/// socket sends nothing.
fn network_address() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("203.0.113.1:9").ok()?;
    let address = socket.local_addr().ok()?.ip();
    (!address.is_loopback() && !address.is_unspecified()).then_some(address)
}

/// `GET path` with `Host: host` on a fresh connection to `to`; the status
/// line's code and the body.
async fn get_over_tcp(to: SocketAddr, path: &str, host: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(to).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

/// The console over real sockets, served by the same loop as `phonegate
/// serve`: a connection to the machine's network address comes from that
/// (non-loopback) address and gets the console-less 404 even with `Host:
/// localhost`; a connection to 127.0.0.1 gets the console. (Without a
/// network address the check is made on the connection info the server
/// would give.)
#[tokio::test]
async fn the_console_answers_only_connections_from_this_machine() {
    let app = spawn_app(TestBackend::Sqlite).await;
    let Some(address) = network_address() else {
        let response = app
            .router
            .clone()
            .oneshot(
                Request::get("/dev/outbox")
                    .header(header::HOST, "localhost")
                    .extension(ConnectInfo(SocketAddr::from(([192, 0, 2, 2], 50_000))))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        return;
    };
    let limits = phonegate::exposure::server_limits(&Settings::defaults().unwrap());
    let mut served = vec![];
    for bind in [SocketAddr::new(address, 0), SocketAddr::from(([127, 0, 0, 1], 0))] {
        let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
        served.push(listener.local_addr().unwrap());
        tokio::spawn(phonegate_api::server::serve(
            listener,
            app.router.clone(),
            limits,
            std::future::pending(),
        ));
    }
    let (network, loopback) = (served[0], served[1]);
    for path in ["/", "/dev/outbox"] {
        for host in ["localhost", "127.0.0.1:8080"] {
            let (status, body) = get_over_tcp(network, path, host).await;
            assert_eq!(status, 404, "{path} via {network} with Host {host}: {body}");
            assert!(body.is_empty(), "{body}");
            let (status, body) = get_over_tcp(loopback, path, host).await;
            assert_eq!(status, 200, "{path} via {loopback} with Host {host}: {body}");
        }
    }
}
