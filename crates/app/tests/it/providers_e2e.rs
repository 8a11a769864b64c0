//! Routes, failover and mixed fleets with the real binary, against local
//! servers shaped like each vendor's API (issue 16): a route's second
//! provider takes a message the first cannot send, at once and once; a
//! number the first refuses is not sent elsewhere; numbers go to the route
//! of their prefix; and instances with different providers on one database
//! each deliver only what they can, so every code arrives once.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use phonegate_adapters::testing::{TestBackend, TestDatabase};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{method, path, path_regex},
};

use crate::common::process::{Server, scratch_dir};

pub(crate) const SID: &str = "AC00000000000000000000000000000001";
const SERVICE: &str = "VA00000000000000000000000000000001";
const PLIVO_ID: &str = "MAXXXXXXXXXXXXXXXXXX";

/// The secrets every instance here (and the CLI beside them) shares.
pub(crate) const MASTER_SECRET: &str = "a-providers-test-master-secret-0123456789";
pub(crate) const HS256_KEY: &str = "a-providers-test-hs256-key-0123456789";

/// Settings every instance here shares: a real provider needs secrets and
/// an https reset link; limits stay out of the way of a few sends.
pub(crate) fn common_settings(database_url: &str) -> String {
    format!(
        r#"
[database]
url = "{database_url}"

[auth]
jwt_secret = "{MASTER_SECRET}"
jwt_hs256_key = "{HS256_KEY}"

[mail]
reset_url_template = "https://example.com/reset?token={{token}}"

[rate_limit]
sends_per_ip = 100000
checks_per_ip = 100000

[rate_limit.resend_cooldown_seconds]
pin_auth = 0
phone_verify = 0
phone_login = 0
phone_confirm = 0

[abuse]
hourly_sms_budget = 0
country_hourly_sms_budget = 0

[outbox]
poll_interval_ms = 200
"#
    )
}

pub(crate) fn twilio_settings(twilio: &MockServer) -> String {
    format!(
        r#"
[twilio]
account_sid = "{SID}"
auth_token = "twilio-test-auth-token"
from_number = "+15005550006"
verify_service_sid = "{SERVICE}"
api_base_url = "{uri}"
verify_base_url = "{uri}"
max_attempts = 1
"#,
        uri = twilio.uri()
    )
}

pub(crate) fn telnyx_settings(telnyx: &MockServer) -> String {
    format!(
        "\n[telnyx]\napi_key = \"KEY0123456789\"\nfrom = \"+15005550007\"\nbase_url = \"{}\"\n",
        telnyx.uri()
    )
}

pub(crate) fn plivo_settings(plivo: &MockServer) -> String {
    format!(
        "\n[plivo]\nauth_id = \"{PLIVO_ID}\"\nauth_token = \"plivo-token\"\nfrom = \"+15005550008\"\nbase_url = \"{}\"\n",
        plivo.uri()
    )
}

pub(crate) fn vonage_settings(vonage: &MockServer) -> String {
    format!(
        "\n[vonage]\napi_key = \"abcd1234\"\napi_secret = \"vonage-secret\"\nfrom = \"+15005550009\"\nsms_base_url = \"{}\"\n",
        vonage.uri()
    )
}

/// Starts `phonegate serve` with `settings` as its `phonegate.toml`.
pub(crate) fn start(settings: &str) -> Server {
    let dir = scratch_dir("providers");
    std::fs::write(dir.join("phonegate.toml"), settings).unwrap();
    Server::start(dir, &[])
}

pub(crate) fn base(server: &Server) -> String {
    format!("http://127.0.0.1:{}", server.port)
}

pub(crate) async fn register(base: &str, number: &str) -> Instant {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/phone/register"))
        .json(&json!({"phone_number": number}))
        .send()
        .await
        .unwrap();
    let answered = Instant::now();
    let status = response.status().as_u16();
    assert_eq!(status, 200, "{:?}", response.text().await);
    answered
}

/// Vonage's SMS API accepting every text with its documented answer
/// (message-id `0A0000000123ABCD1`).
pub(crate) async fn mount_vonage_sms(vonage: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/sms/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "message-count": "1",
            "messages": [{"to": "447911123456", "message-id": "0A0000000123ABCD1", "status": "0",
                          "remaining-balance": "3.14159265", "message-price": "0.03330000", "network": "12345"}]
        })))
        .mount(vonage)
        .await;
}

async fn mount_twilio_messages(twilio: &MockServer) {
    Mock::given(method("POST"))
        .and(path(format!("/2010-04-01/Accounts/{SID}/Messages.json")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1", "status": "queued"})))
        .mount(twilio)
        .await;
}

pub(crate) async fn mount_telnyx(telnyx: &MockServer, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/v2/messages"))
        .respond_with(response)
        .mount(telnyx)
        .await;
}

pub(crate) fn telnyx_accepts() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"data": {"id": "40385f64-5717-4562-b3fc-2c963f66afa6", "record_type": "message"}}))
}

/// The recipients of the requests `server` received at paths matching
/// `suffix`, read from the form (`To`) or JSON (`to`, `dst`) body.
async fn recipients(server: &MockServer, suffix: &str) -> Vec<String> {
    let requests = server.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .filter(|request| request.url.path().ends_with(suffix))
        .map(recipient)
        .collect()
}

fn recipient(request: &Request) -> String {
    if let Ok(json) = serde_json::from_slice::<Value>(&request.body) {
        for field in ["to", "dst"] {
            if let Some(to) = json.get(field).and_then(Value::as_str) {
                return normalise(to);
            }
        }
    }
    let form: HashMap<String, String> = form_urlencoded::parse(&request.body).into_owned().collect();
    normalise(form.get("To").or_else(|| form.get("to")).map_or("", String::as_str))
}

/// Vendors differ on the leading `+`.
fn normalise(number: &str) -> String {
    format!("+{}", number.trim_start_matches('+'))
}

/// Waits until `server` has received a request for `to` at `suffix`, up to
/// `limit` after `since`, and returns how long it took.
async fn arrival(server: &MockServer, suffix: &str, to: &str, since: Instant, limit: Duration) -> Duration {
    loop {
        if recipients(server, suffix).await.iter().any(|number| number == to) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < limit,
            "nothing for {to} reached {suffix} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(crate) async fn count(server: &MockServer, suffix: &str, to: &str) -> usize {
    recipients(server, suffix)
        .await
        .iter()
        .filter(|number| *number == to)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_answering_503_hands_the_code_to_the_next_at_once() {
    // Measured against a second: no test that needs the machine to itself
    // runs meanwhile.
    let _pass = crate::common::alone::pass();
    let (telnyx, twilio) = (MockServer::start().await, MockServer::start().await);
    mount_telnyx(
        &telnyx,
        ResponseTemplate::new(503)
            .set_body_json(json!({"errors": [{"code": "10001", "title": "Service unavailable"}]})),
    )
    .await;
    mount_twilio_messages(&twilio).await;
    let database = TestDatabase::create(TestBackend::Sqlite).await;
    let settings = format!(
        "{}{}{}\n[sms]\nprovider = \"console\"\nproviders = [\"telnyx\", \"twilio\"]\n",
        common_settings(&database.url),
        telnyx_settings(&telnyx),
        twilio_settings(&twilio)
    );
    let server = start(&settings);
    let sent = register(&base(&server), "+12063720101").await;
    let took = arrival(&twilio, "/Messages.json", "+12063720101", sent, Duration::from_secs(1)).await;
    assert!(took < Duration::from_secs(1), "{took:?}");
    // Let any late duplicate show itself before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        count(&telnyx, "/v2/messages", "+12063720101").await,
        1,
        "one try at the primary"
    );
    assert_eq!(count(&twilio, "/Messages.json", "+12063720101").await, 1, "sent once");
    let metrics = reqwest::get(format!("{}/metrics", base(&server)))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"phonegate_provider_failovers_total{from="telnyx",to="twilio"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"phonegate_provider_attempts_total{provider="telnyx",operation="send_sms",outcome="unavailable"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"phonegate_messages_sent_total{surface="phone_verify",channel="sms",provider="twilio"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_the_primary_refuses_is_not_sent_through_the_next() {
    let (telnyx, twilio) = (MockServer::start().await, MockServer::start().await);
    // Telnyx's documented answer for a destination it cannot reach.
    mount_telnyx(
        &telnyx,
        ResponseTemplate::new(422).set_body_json(json!({"errors": [{
            "code": "40310",
            "title": "Invalid 'to' address",
            "detail": "The 'to' address should be a valid E.164 phone number.",
            "source": {"pointer": "/to"}
        }]})),
    )
    .await;
    mount_twilio_messages(&twilio).await;
    let database = TestDatabase::create(TestBackend::Sqlite).await;
    let settings = format!(
        "{}{}{}\n[sms]\nprovider = \"console\"\nproviders = [\"telnyx\", \"twilio\"]\n",
        common_settings(&database.url),
        telnyx_settings(&telnyx),
        twilio_settings(&twilio)
    );
    let server = start(&settings);
    let sent = register(&base(&server), "+12063720102").await;
    arrival(&telnyx, "/v2/messages", "+12063720102", sent, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        count(&twilio, "/Messages.json", "+12063720102").await,
        0,
        "not failed over"
    );
    assert_eq!(count(&telnyx, "/v2/messages", "+12063720102").await, 1, "not retried");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_outage_sends_phonegates_own_code_through_the_next_provider() {
    let _pass = crate::common::alone::pass();
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("/Verifications$"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(json!({"code": 20500, "message": "Internal Server Error", "status": 503})),
        )
        .mount(&twilio)
        .await;
    mount_twilio_messages(&twilio).await;
    let database = TestDatabase::create(TestBackend::Sqlite).await;
    let settings = format!(
        "{}{}\n[sms]\nprovider = \"console\"\nproviders = [\"twilio_verify\", \"twilio\"]\n",
        common_settings(&database.url),
        twilio_settings(&twilio)
    );
    let server = start(&settings);
    let number = "+12063720104";
    let response = reqwest::Client::new()
        .post(format!("{}/api/phone/register", base(&server)))
        .json(&json!({"phone_number": number}))
        .send()
        .await
        .unwrap();
    let sent = Instant::now();
    let session: Value = response.json().await.unwrap();
    arrival(&twilio, "/Messages.json", number, sent, Duration::from_secs(1)).await;
    assert_eq!(
        count(&twilio, "/Verifications", number).await,
        1,
        "Verify was tried first, once"
    );
    let requests = twilio.received_requests().await.unwrap();
    let text = requests
        .iter()
        .find(|request| request.url.path().ends_with("/Messages.json"))
        .map(|request| {
            let form: HashMap<String, String> = form_urlencoded::parse(&request.body).into_owned().collect();
            form["Body"].clone()
        })
        .unwrap();
    // The check goes to whoever issued the code: phonegate, here.
    let code = text.rsplit(' ').next().unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/api/phone/verify", base(&server)))
        .json(&json!({"phone_number": number, "security_code": code, "session_token": session["session_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{:?}", response.text().await);
    assert!(
        !requests
            .iter()
            .any(|request| request.url.path().ends_with("/VerificationCheck")),
        "Verify has no code to check"
    );
}

async fn numbers_take_the_route_of_their_prefix(backend: TestBackend) {
    let (vonage, twilio) = (MockServer::start().await, MockServer::start().await);
    mount_vonage_sms(&vonage).await;
    mount_twilio_messages(&twilio).await;
    let database = TestDatabase::create(backend).await;
    let settings = format!(
        "{}{}{}\n[sms]\nprovider = \"twilio\"\n\n[[sms.routes]]\nprefix = \"+44\"\nproviders = [\"vonage\"]\nsender = \"Acme\"\n",
        common_settings(&database.url),
        vonage_settings(&vonage),
        twilio_settings(&twilio)
    );
    let server = start(&settings);
    let uk = register(&base(&server), "+447911123456").await;
    let us = register(&base(&server), "+12063720103").await;
    arrival(&vonage, "/sms/json", "+447911123456", uk, Duration::from_secs(5)).await;
    arrival(&twilio, "/Messages.json", "+12063720103", us, Duration::from_secs(5)).await;
    assert_eq!(count(&twilio, "/Messages.json", "+447911123456").await, 0);
    assert_eq!(count(&vonage, "/sms/json", "+12063720103").await, 0);
    // The UK route's alphanumeric sender went to Vonage.
    let requests = vonage.received_requests().await.unwrap();
    let body = String::from_utf8_lossy(&requests[0].body).into_owned();
    assert!(body.contains("Acme"), "the route's sender: {body}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_take_the_route_of_their_prefix_on_sqlite() {
    numbers_take_the_route_of_their_prefix(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_take_the_route_of_their_prefix_on_postgres() {
    numbers_take_the_route_of_their_prefix(TestBackend::Postgres).await;
}
