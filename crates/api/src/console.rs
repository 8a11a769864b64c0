//! The developer console: with the console SMS provider, `GET /` serves a
//! page on which a developer tries each surface in the browser, and
//! `GET /dev/outbox` lists what the console providers "sent", codes
//! included, for that page.
//!
//! Both exist only when the app hands this module a [`DevOutbox`], which it
//! does only with `sms.provider = "console"`: with a real provider the codes
//! go to real phones, and the routes are not mounted at all (404). They
//! answer only to a Host in `security.allowed_hosts` or, when that list is
//! empty, to a loopback name (`localhost`, `127.0.0.1`, `[::1]`), so a web
//! page that rebinds its own domain to the developer's machine cannot read
//! the codes. With that list empty they also answer only to a connection
//! from this machine: a loopback peer address and no proxy's forwarding
//! header (a proxy on the same machine relays requests from anywhere).
//! Anyone else gets the same empty 404 as when the console is not mounted,
//! so a server bound to a public address by mistake does not even show
//! that it has a console; `phonegate serve` also refuses such a bind
//! (`crates/app`).

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    extract::{ConnectInfo, Query, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{Html, IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use crate::{
    hosts::AllowedHosts,
    routes::{MountedRoute, Routes},
};

/// The page: static HTML with inline script, so it needs no build step and
/// no network beyond this service.
const PAGE: &str = include_str!("console.html");

/// A message a console provider "sent".
#[derive(Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DevMessage {
    /// Unique within the outbox (`phone-3`, `mail-1`): the page waits for an
    /// id it has not seen.
    pub id: String,
    /// `sms`, `call` or `mail`.
    pub channel: String,
    /// The phone number (E.164) or email address.
    pub to: String,
    /// The text, with its code or link.
    pub body: String,
}

impl std::fmt::Debug for DevMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevMessage")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .field("to", &self.to)
            .field("body", &"[redacted]")
            .finish()
    }
}

/// Where the console providers keep what they "sent".
pub trait DevOutbox: Send + Sync {
    /// Every message kept, oldest first.
    fn messages(&self) -> Vec<DevMessage>;
}

fn routes() -> Routes<Arc<dyn DevOutbox>> {
    Routes::new().get("/", page).get("/dev/outbox", list_outbox)
}

/// The routes [`router`] mounts.
pub fn mounted() -> Vec<MountedRoute> {
    routes().table().to_vec()
}

/// The console's routes: `GET /` and `GET /dev/outbox`.
pub fn router(outbox: Arc<dyn DevOutbox>, hosts: &AllowedHosts) -> Router {
    routes()
        .into_router()
        .with_state(outbox)
        .layer(middleware::from_fn_with_state(hosts.clone(), check_host))
}

/// The tag of these operations in the OpenAPI spec.
const TAG: &str = "console";

/// The developer console's part of the OpenAPI spec.
#[derive(utoipa::OpenApi)]
#[openapi(paths(page, list_outbox))]
pub(crate) struct Doc;

/// Headers by which a proxy says it relays someone else's request.
const FORWARDING_HEADERS: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];

/// Whether the request came straight from this machine: its socket peer
/// (axum's `ConnectInfo`, which the server adds to every request; a request
/// without one is not trusted) is a loopback address, and no proxy says it
/// is relaying it.
fn from_this_machine(request: &Request) -> bool {
    let loopback_peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| peer.ip().to_canonical().is_loopback());
    let relayed = FORWARDING_HEADERS
        .iter()
        .any(|name| request.headers().contains_key(*name));
    loopback_peer && !relayed
}

async fn check_host(State(hosts): State<AllowedHosts>, request: Request, next: Next) -> Response {
    if hosts.is_empty() && !from_this_machine(&request) {
        tracing::info!("developer console refused: the connection is not from this machine");
        return StatusCode::NOT_FOUND.into_response();
    }
    if hosts.permits_or_loopback(request.headers(), request.uri()) {
        next.run(request).await
    } else {
        tracing::info!("developer console refused: Host is neither allowed nor loopback");
        (
            StatusCode::FORBIDDEN,
            "The developer console answers only on localhost, or on a host in security.allowed_hosts.\n",
        )
            .into_response()
    }
}

/// Responses that hold codes must not be kept by the browser or a proxy.
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[utoipa::path(
    get,
    path = "/",
    operation_id = "console_page",
    tag = TAG,
    summary = "The developer console page",
    description = "Only with `sms.provider = \"console\"` (404 otherwise), only on a loopback Host or one in \
        `security.allowed_hosts` (403 otherwise), and, when that list is empty, only to a connection from a loopback \
        address that no proxy relays (404 otherwise).",
    responses(
        (status = 200, description = "The page", body = String, content_type = "text/html; charset=utf-8"),
        (status = 403, description = "Not a loopback or allowed Host", body = String, content_type = "text/plain; charset=utf-8"),
        (status = 404, description = "No console, or a connection from another machine"),
    )
)]
async fn page() -> Response {
    no_store(Html(PAGE).into_response())
}

#[derive(Deserialize)]
struct OutboxQuery {
    to: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct OutboxBody {
    messages: Vec<DevMessage>,
}

/// The messages to `to` (all of them without it), oldest first.
#[utoipa::path(
    get,
    path = "/dev/outbox",
    operation_id = "console_outbox",
    tag = TAG,
    summary = "What the console providers sent",
    description = "The developer console's outbox, codes included: only with `sms.provider = \"console\"` (404 \
        otherwise), only on a loopback Host or one in `security.allowed_hosts` (403 otherwise), and, when that list \
        is empty, only to a connection from a loopback address that no proxy relays (404 otherwise).",
    params(("to" = Option<String>, Query, description = "Only messages to this phone (any format) or email")),
    responses(
        (status = 200, description = "The messages, oldest first", body = OutboxBody),
        (status = 403, description = "Not a loopback or allowed Host", body = String, content_type = "text/plain; charset=utf-8"),
        (status = 404, description = "No console, or a connection from another machine"),
    )
)]
async fn list_outbox(State(outbox): State<Arc<dyn DevOutbox>>, Query(query): Query<OutboxQuery>) -> Response {
    let to = query.to;
    let messages = outbox
        .messages()
        .into_iter()
        .filter(|message| to.as_deref().is_none_or(|to| addressed_to(&message.to, to)))
        .collect();
    no_store(Json(OutboxBody { messages }).into_response())
}

/// Whether a message to `recipient` (E.164 or an email address) matches
/// `wanted` as a developer typed it: an email address case-insensitively; a
/// phone number in any format by its digits, which may leave out the
/// country code (`(206) 372-1234` finds `+12063721234`).
fn addressed_to(recipient: &str, wanted: &str) -> bool {
    let wanted = wanted.trim();
    if wanted.contains('@') {
        return recipient.eq_ignore_ascii_case(wanted);
    }
    let digits = |text: &str| text.chars().filter(char::is_ascii_digit).collect::<String>();
    let wanted = digits(wanted);
    !wanted.is_empty() && !recipient.contains('@') && digits(recipient).ends_with(&wanted)
}

#[cfg(test)]
mod tests {
    use axum::{
        body::Body,
        http::{Request, header::HOST},
    };
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    use super::*;

    struct Fixed(Vec<DevMessage>);

    impl DevOutbox for Fixed {
        fn messages(&self) -> Vec<DevMessage> {
            self.0.clone()
        }
    }

    fn message(id: &str, to: &str) -> DevMessage {
        DevMessage {
            id: id.to_owned(),
            channel: "sms".to_owned(),
            to: to.to_owned(),
            body: format!("Your phonegate code is {id}"),
        }
    }

    fn app(allowed: &[&str]) -> Router {
        router(
            Arc::new(Fixed(vec![
                message("sms-1", "+12063721234"),
                message("sms-2", "+85251224538"),
                message("mail-1", "Dev@Example.com"),
            ])),
            &AllowedHosts::new(allowed.iter().map(|host| (*host).to_owned())),
        )
    }

    /// A connection from this machine, as the server describes it.
    fn loopback() -> ConnectInfo<SocketAddr> {
        ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 50_000)))
    }

    async fn get(app: Router, path: &str, host: &str) -> (StatusCode, String) {
        get_from(app, path, host, Some(loopback()), &[]).await
    }

    async fn get_from(
        app: Router,
        path: &str,
        host: &str,
        peer: Option<ConnectInfo<SocketAddr>>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, String) {
        let mut request = Request::get(path).header(HOST, host);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(Body::empty()).unwrap();
        if let Some(peer) = peer {
            request.extensions_mut().insert(peer);
        }
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    fn ids(body: &str) -> Vec<String> {
        let value: serde_json::Value = serde_json::from_str(body).unwrap();
        value["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn the_outbox_filters_by_recipient_in_any_format() {
        let (status, body) = get(app(&[]), "/dev/outbox", "localhost:8080").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ids(&body), ["sms-1", "sms-2", "mail-1"]);
        let (_, body) = get(app(&[]), "/dev/outbox?to=(206)%20372-1234", "localhost").await;
        assert_eq!(ids(&body), ["sms-1"]);
        let (_, body) = get(app(&[]), "/dev/outbox?to=%2B85251224538", "localhost").await;
        assert_eq!(ids(&body), ["sms-2"]);
        let (_, body) = get(app(&[]), "/dev/outbox?to=dev@example.COM", "localhost").await;
        assert_eq!(ids(&body), ["mail-1"]);
        let (_, body) = get(app(&[]), "/dev/outbox?to=nobody", "localhost").await;
        assert!(ids(&body).is_empty());
    }

    #[tokio::test]
    async fn the_page_is_served_without_caching() {
        let response = app(&[])
            .oneshot(
                Request::get("/")
                    .header(HOST, "127.0.0.1:8080")
                    .extension(loopback())
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("phonegate developer console"));
    }

    #[tokio::test]
    async fn only_loopback_hosts_are_served_unless_hosts_are_configured() {
        for host in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "dev.localhost",
        ] {
            assert_eq!(get(app(&[]), "/dev/outbox", host).await.0, StatusCode::OK, "{host}");
        }
        for host in ["evil.example", "192.168.1.20:8080", "localhost.evil.example"] {
            assert_eq!(get(app(&[]), "/", host).await.0, StatusCode::FORBIDDEN, "{host}");
            assert_eq!(
                get(app(&[]), "/dev/outbox", host).await.0,
                StatusCode::FORBIDDEN,
                "{host}"
            );
        }
        let configured = || app(&["dev.example.com"]);
        assert_eq!(get(configured(), "/", "dev.example.com").await.0, StatusCode::OK);
        assert_eq!(get(configured(), "/", "localhost").await.0, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn only_connections_from_this_machine_are_served_unless_hosts_are_configured() {
        let remote = |ip: [u8; 4]| Some(ConnectInfo(SocketAddr::from((ip, 50_000))));
        // A Host the attacker chose does not help from another machine: the
        // answer is the console-less 404, empty, whatever the Host.
        for (peer, headers) in [
            (remote([192, 0, 2, 2]), &[][..]),
            (remote([10, 0, 0, 7]), &[][..]),
            (Some(ConnectInfo("[2001:db8::1]:50000".parse().unwrap())), &[][..]),
            (None, &[][..]),
            // A proxy on this machine relays requests from anywhere.
            (Some(loopback()), &[("x-forwarded-for", "203.0.113.9")][..]),
            (Some(loopback()), &[("forwarded", "for=203.0.113.9")][..]),
            (Some(loopback()), &[("x-real-ip", "203.0.113.9")][..]),
        ] {
            for path in ["/", "/dev/outbox"] {
                for host in ["localhost", "127.0.0.1:8080", "evil.example"] {
                    let (status, body) = get_from(app(&[]), path, host, peer, headers).await;
                    assert_eq!(status, StatusCode::NOT_FOUND, "{peer:?} {headers:?} {path} {host}");
                    assert!(body.is_empty(), "{body}");
                }
            }
        }
        // Every loopback address is this machine, IPv6 and IPv4-mapped too.
        for peer in ["127.0.0.2:1", "[::1]:1", "[::ffff:127.0.0.1]:1"] {
            let peer = Some(ConnectInfo(peer.parse().unwrap()));
            assert_eq!(get_from(app(&[]), "/", "localhost", peer, &[]).await.0, StatusCode::OK);
        }
        // A deployment that names its hosts has chosen to expose the console.
        let (status, _) = get_from(
            app(&["dev.example.com"]),
            "/",
            "dev.example.com",
            remote([192, 0, 2, 2]),
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }

    #[test]
    fn debug_output_hides_the_body() {
        let debug = format!("{:?}", message("sms-1", "+12063721234"));
        assert!(!debug.contains("code is"), "{debug}");
    }
}
