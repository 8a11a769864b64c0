//! Three `phonegate serve` processes on one Postgres and one Redis, sending
//! through a local server shaped like Twilio's API: a code sent through one
//! instance verifies through another, the per-phone limit holds across all
//! three, and killing one in the middle of a load loses no message.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use crate::common::process;

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use process::{Server, scratch_dir};

use phonegate_adapters::testing::{TestBackend, TestDatabase};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{method, path_regex},
};

const SID: &str = "AC00000000000000000000000000000001";

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn assert_redis_answers() {
    let url = redis_url();
    let address = url.trim_start_matches("redis://").trim_end_matches('/');
    if std::net::TcpStream::connect(address).is_err() {
        panic!(
            "This test needs Redis at {url} (REDIS_URL). Start one with `redis-server --daemonize yes`, \
             or run `bash .ci/run`, which starts it."
        );
    }
}

/// The settings every instance shares: one database, one Redis, one secret.
fn start_instance(database_url: &str, twilio: &MockServer, prefix: &str) -> Server {
    let (twilio_url, redis) = (twilio.uri(), redis_url());
    Server::start(
        scratch_dir("many"),
        &[
            ("PHONEGATE__DATABASE__URL", database_url),
            ("PHONEGATE__SMS__PROVIDER", "twilio"),
            // A real provider needs an https reset link.
            (
                "PHONEGATE__MAIL__RESET_URL_TEMPLATE",
                "https://example.com/reset?token={token}",
            ),
            (
                "PHONEGATE__AUTH__JWT_SECRET",
                "a-master-secret-of-all-three-instances-0123456789",
            ),
            (
                "PHONEGATE__AUTH__JWT_HS256_KEY",
                "the-hs256-key-of-all-three-instances-0123456789",
            ),
            ("PHONEGATE__TWILIO__ACCOUNT_SID", SID),
            ("PHONEGATE__TWILIO__AUTH_TOKEN", "token"),
            ("PHONEGATE__TWILIO__FROM_NUMBER", "+15005550006"),
            ("PHONEGATE__TWILIO__API_BASE_URL", &twilio_url),
            ("PHONEGATE__RATE_LIMIT__REDIS_URL", &redis),
            ("PHONEGATE__RATE_LIMIT__REDIS_KEY_PREFIX", prefix),
            // Every request of this test comes from 127.0.0.1.
            ("PHONEGATE__RATE_LIMIT__SENDS_PER_IP", "100000"),
            ("PHONEGATE__RATE_LIMIT__CHECKS_PER_IP", "100000"),
            ("PHONEGATE__ABUSE__HOURLY_SMS_BUDGET", "0"),
            ("PHONEGATE__ABUSE__COUNTRY_HOURLY_SMS_BUDGET", "0"),
            // A short lease, so the survivors take over a dead instance's
            // messages within seconds.
            ("PHONEGATE__OUTBOX__LEASE_SECONDS", "3"),
            ("PHONEGATE__OUTBOX__POLL_INTERVAL_MS", "200"),
        ],
    )
}

async fn post(http: &reqwest::Client, base: &str, path: &str, body: Value) -> Option<(u16, Value)> {
    let response = http.post(format!("{base}{path}")).json(&body).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.unwrap_or(Value::Null)))
}

/// The texts Twilio received: (to, body).
async fn texts(twilio: &MockServer) -> Vec<(String, String)> {
    twilio
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|request| request.url.path().ends_with("/Messages.json"))
        .map(|request| {
            let fields: HashMap<String, String> = form_urlencoded::parse(&request.body).into_owned().collect();
            (fields["To"].clone(), fields["Body"].clone())
        })
        .collect()
}

async fn wait_for_text(twilio: &MockServer, to: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some((_, body)) = texts(twilio).await.into_iter().rev().find(|(number, _)| number == to) {
            return body.rsplit(' ').next().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no text reached {to}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_codes_limits_and_the_outbox() {
    // Its database is created before its servers start: a pass from the
    // start keeps a lone test (a Postgres restart) from running meanwhile.
    let _pass = crate::common::alone::pass();
    assert_redis_answers();
    let database = TestDatabase::create(TestBackend::Postgres).await;
    let twilio = MockServer::start().await;
    // Twilio accepts every text after a short think, so a killed instance
    // has deliveries in flight.
    Mock::given(method("POST"))
        .and(path_regex("/Messages.json$"))
        .respond_with(move |_: &Request| {
            ResponseTemplate::new(201)
                .set_body_json(json!({"sid": "SM1", "status": "queued"}))
                .set_delay(Duration::from_millis(100))
        })
        .mount(&twilio)
        .await;
    let prefix = format!("phonegate-test-{}:", database.url.rsplit('/').next().unwrap());
    // Each starts listening once its migrations (run under a lock) are done.
    let mut instances: Vec<Server> = (0..3)
        .map(|_| start_instance(&database.url, &twilio, &prefix))
        .collect();
    let http = reqwest::Client::new();
    let bases: Vec<String> = instances
        .iter()
        .map(|server| format!("http://127.0.0.1:{}", server.port))
        .collect();

    // A code sent through A verifies through B.
    let (status, body) = post(
        &http,
        &bases[0],
        "/api/phone/register",
        json!({"phone_number": "+12063720001"}),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body:?}");
    let code = wait_for_text(&twilio, "+12063720001").await;
    let (status, reply) = post(
        &http,
        &bases[1],
        "/api/phone/verify",
        json!({"phone_number": "+12063720001", "security_code": code, "session_token": body["session_token"]}),
    )
    .await
    .unwrap();
    assert_eq!((status, reply), (200, json!({"message": "Security code is valid."})));

    // The per-phone limit (5 per 10 minutes) holds across all three: 15
    // concurrent sends to one number, five to each instance.
    let sends: Vec<_> = (0..15)
        .map(|i| {
            let (http, base) = (http.clone(), bases[i % 3].clone());
            tokio::spawn(async move {
                post(
                    &http,
                    &base,
                    "/api/phone/register",
                    json!({"phone_number": "+12063720002"}),
                )
                .await
                .unwrap()
                .0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for send in sends {
        statuses.push(send.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 10, "{statuses:?}");

    // Load on all three; A is killed (SIGKILL: no goodbye) in the middle.
    // Every send that was answered 200 must reach Twilio.
    let load_until = Instant::now() + Duration::from_secs(3);
    let clients: Vec<_> = (0..3)
        .map(|client| {
            let (http, bases) = (http.clone(), bases.clone());
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                let mut n = 0;
                while Instant::now() < load_until {
                    let number = format!("+1206373{client}{n:03}");
                    let base = &bases[(client + n) % 3];
                    if let Some((200, _)) =
                        post(&http, base, "/api/phone/register", json!({"phone_number": number})).await
                    {
                        accepted.push(number);
                    }
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(40)).await;
                }
                accepted
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    instances[0].child.kill().unwrap();
    instances[0].child.wait().unwrap();
    let mut accepted = HashSet::new();
    for client in clients {
        accepted.extend(client.await.unwrap());
    }
    assert!(accepted.len() > 30, "the load got through ({} sends)", accepted.len());
    // The survivors deliver what A queued or held, once its leases end.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let delivered: HashSet<String> = texts(&twilio).await.into_iter().map(|(to, _)| to).collect();
        let missing: Vec<_> = accepted.iter().filter(|n| !delivered.contains(*n)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} accepted messages never arrived: {missing:?}",
            missing.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    instances.clear();
}
