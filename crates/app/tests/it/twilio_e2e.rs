//! End to end with the real binary and Twilio: `sms.provider = "twilio"`
//! (phonegate's codes sent through Messages.json and Calls.json) and
//! `"twilio_verify"` (Twilio's codes, through Verifications and
//! VerificationCheck), against a local server shaped like Twilio's API.
//! The codes are read from the requests that server captured, as a phone
//! would receive them.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::{
    collections::HashMap,
    net::TcpListener,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{body_string_contains, method, path},
};

const SID: &str = "AC00000000000000000000000000000001";
const TOKEN: &str = "twilio-test-auth-token";
const SERVICE: &str = "VA00000000000000000000000000000001";

fn form(request: &Request) -> HashMap<String, String> {
    form_urlencoded::parse(&request.body).into_owned().collect()
}

/// Twilio Verify, in miniature: it generates a code per number, "delivers"
/// it, and checks it.
#[derive(Clone, Default)]
struct FakeVerify {
    pending: Arc<Mutex<HashMap<String, String>>>,
    channels: Arc<Mutex<Vec<String>>>,
    counter: Arc<Mutex<u32>>,
}

impl FakeVerify {
    /// The pending code of `to`, once the dispatcher has started the
    /// verification (a moment after the request that queued it).
    async fn code_for(&self, to: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(code) = self.pending.lock().unwrap().get(to).cloned() {
                return code;
            }
            assert!(Instant::now() < deadline, "no verification was started for {to}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Respond for FakeVerify {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let fields = form(request);
        let to = fields.get("To").cloned().unwrap_or_default();
        if request.url.path().ends_with("/Verifications") {
            let mut counter = self.counter.lock().unwrap();
            *counter += 1;
            let code = format!("{:06}", 100_000 + *counter * 7919 % 900_000);
            self.pending.lock().unwrap().insert(to.clone(), code);
            self.channels
                .lock()
                .unwrap()
                .push(fields.get("Channel").cloned().unwrap_or_default());
            return ResponseTemplate::new(201).set_body_json(json!({"sid": "VE1", "to": to, "status": "pending"}));
        }
        let code = fields.get("Code").cloned().unwrap_or_default();
        let mut pending = self.pending.lock().unwrap();
        match pending.get(&to) {
            Some(expected) if *expected == code => {
                pending.remove(&to);
                ResponseTemplate::new(200).set_body_json(json!({"sid": "VE1", "status": "approved", "valid": true}))
            }
            Some(_) => {
                ResponseTemplate::new(200).set_body_json(json!({"sid": "VE1", "status": "pending", "valid": false}))
            }
            None => ResponseTemplate::new(404).set_body_json(
                json!({"code": 20404, "message": "The requested resource was not found", "status": 404}),
            ),
        }
    }
}

struct Phonegate {
    child: Child,
    base: String,
    dir: std::path::PathBuf,
    http: reqwest::Client,
    /// Keeps tests that must run alone from running beside this server.
    _pass: crate::common::alone::Pass,
}

impl Drop for Phonegate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Phonegate {
    async fn start(provider: &str, twilio: &MockServer) -> Self {
        Self::start_with(provider, twilio, &[]).await
    }

    async fn start_with(provider: &str, twilio: &MockServer, extra: &[(&str, &str)]) -> Self {
        let pass = crate::common::alone::pass();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("phonegate-twilio-{provider}-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_phonegate"))
            .current_dir(&dir)
            .envs([
                ("PHONEGATE__SERVER__BIND", format!("127.0.0.1:{port}")),
                ("PHONEGATE__SMS__PROVIDER", provider.to_owned()),
                // A real provider needs an https reset link.
                (
                    "PHONEGATE__MAIL__RESET_URL_TEMPLATE",
                    "https://example.com/reset?token={token}".to_owned(),
                ),
                (
                    "PHONEGATE__AUTH__JWT_SECRET",
                    "an-e2e-test-master-secret-0123456789".to_owned(),
                ),
                (
                    "PHONEGATE__AUTH__JWT_HS256_KEY",
                    "an-e2e-test-hs256-key-0123456789".to_owned(),
                ),
                ("PHONEGATE__TWILIO__ACCOUNT_SID", SID.to_owned()),
                ("PHONEGATE__TWILIO__AUTH_TOKEN", TOKEN.to_owned()),
                ("PHONEGATE__TWILIO__FROM_NUMBER", "+15005550006".to_owned()),
                ("PHONEGATE__TWILIO__VERIFY_SERVICE_SID", SERVICE.to_owned()),
                ("PHONEGATE__TWILIO__API_BASE_URL", twilio.uri()),
                ("PHONEGATE__TWILIO__VERIFY_BASE_URL", twilio.uri()),
                ("PHONEGATE__TWILIO__RETRY_BASE_DELAY_MS", "10".to_owned()),
                // These flows resend to one number at once.
                (
                    "PHONEGATE__RATE_LIMIT__RESEND_COOLDOWN_SECONDS__PIN_AUTH",
                    "0".to_owned(),
                ),
                (
                    "PHONEGATE__RATE_LIMIT__RESEND_COOLDOWN_SECONDS__PHONE_LOGIN",
                    "0".to_owned(),
                ),
            ])
            .envs(extra.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
            http: reqwest::Client::new(),
            _pass: pass,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server
            .http
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "phonegate did not start with sms.provider = {provider}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    async fn post_json(&self, path: &str, body: Value) -> (u16, Value, reqwest::header::HeaderMap) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        (status, response.json().await.unwrap_or(Value::Null), headers)
    }

    async fn post_query(&self, path_and_query: &str) -> (u16, Value, reqwest::header::HeaderMap) {
        let response = self
            .http
            .post(format!("{}{path_and_query}", self.base))
            .send()
            .await
            .unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        (status, response.json().await.unwrap_or(Value::Null), headers)
    }
}

/// Every request to Twilio carries the account's basic-auth credentials.
async fn assert_authenticated(twilio: &MockServer) {
    use base64::Engine as _;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    );
    for request in twilio.received_requests().await.unwrap() {
        assert_eq!(
            request.headers.get("authorization").unwrap().to_str().unwrap(),
            expected
        );
    }
}

/// The requests Twilio received on `suffix`, once there are at least
/// `count` (delivery runs a moment after the request that queued it).
async fn wait_sent(twilio: &MockServer, suffix: &str, count: usize) -> Vec<HashMap<String, String>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let requests = sent(twilio, suffix).await;
        if requests.len() >= count {
            return requests;
        }
        assert!(
            Instant::now() < deadline,
            "{count} requests to {suffix} expected, {} arrived",
            requests.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The requests Twilio received on `suffix`, as form fields.
async fn sent(twilio: &MockServer, suffix: &str) -> Vec<HashMap<String, String>> {
    twilio
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with(suffix))
        .map(form)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_surface_works_with_twilio_messages_and_calls() {
    let twilio = MockServer::start().await;
    let account = format!("/2010-04-01/Accounts/{SID}");
    // A number Twilio calls invalid, and one it rate-limits.
    Mock::given(method("POST"))
        .and(path(format!("{account}/Messages.json")))
        .and(body_string_contains("To=%2B85291234567"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400}),
        ))
        .with_priority(1)
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{account}/Messages.json")))
        .and(body_string_contains("To=%2B14155550199"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "7")
                .set_body_json(json!({"code": 20429, "message": "Too Many Requests", "status": 429})),
        )
        .with_priority(1)
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{account}/Messages.json")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1", "status": "queued"})))
        .with_priority(2)
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{account}/Calls.json")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": "CA1", "status": "queued"})))
        .mount(&twilio)
        .await;
    let phonegate = Phonegate::start("twilio", &twilio).await;
    let last_sms_code = |messages: Vec<HashMap<String, String>>| {
        let body = messages.last().unwrap()["Body"].clone();
        assert!(body.starts_with("Your phonegate code is "), "{body}");
        body.rsplit(' ').next().unwrap().to_owned()
    };

    // pin-auth.
    let (status, body, _) = phonegate
        .post_json(
            "/api/v1/auth/signup",
            json!({"user_auth": {"mobile": "+85251224538", "address_attributes": {}}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let messages = wait_sent(&twilio, "/Messages.json", 1).await;
    assert_eq!(messages.last().unwrap()["To"], "+85251224538");
    assert_eq!(messages.last().unwrap()["From"], "+15005550006");
    let pin = last_sms_code(messages);
    assert_eq!(pin.len(), 4);
    let (status, body, _) = phonegate
        .post_json(
            "/api/v1/auth/verify",
            json!({"otp_auth_key": body["otp_auth_key"], "pin": pin}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["jwt_token"].is_string());

    // phone-verify.
    let (_, body, _) = phonegate
        .post_json("/api/phone/register", json!({"phone_number": "+1 206 372 1234"}))
        .await;
    let code = last_sms_code(wait_sent(&twilio, "/Messages.json", 2).await);
    let (status, reply, _) = phonegate
        .post_json(
            "/api/phone/verify",
            json!({"phone_number": "+12063721234", "security_code": code, "session_token": body["session_token"]}),
        )
        .await;
    assert_eq!((status, reply), (200, json!({"message": "Security code is valid."})));

    // phone-login by SMS, then by call.
    let (_, body, _) = phonegate
        .post_query("/v1/auth/phone_login?phone_number=(206)372-1234&device_id=abcde")
        .await;
    assert_eq!(body["res_info"]["code"], 2, "{body}");
    let pin = last_sms_code(wait_sent(&twilio, "/Messages.json", 3).await);
    let (_, body, _) = phonegate
        .post_query(&format!(
            "/v1/auth/check_pin?phone_number=(206)372-1234&device_id=abcde&verify_pin={pin}"
        ))
        .await;
    assert_eq!(body["res_info"]["code"], 22, "{body}");
    let (_, body, _) = phonegate
        .post_query("/v1/auth/phone_login?phone_number=(206)372-1234&device_id=abcde&call_verify=T")
        .await;
    assert_eq!(body["res_info"]["code"], 2, "{body}");
    let calls = wait_sent(&twilio, "/Calls.json", 1).await;
    assert_eq!(calls.len(), 1);
    let twiml = &calls[0]["Twiml"];
    assert!(
        twiml.starts_with("<Response><Say language=\"en-US\">Your phonegate code is "),
        "{twiml}"
    );
    let digits: String = twiml
        .split(" code is ")
        .nth(1)
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .split(", ")
        .collect();
    assert_eq!(digits.len(), 5, "{twiml}");
    assert_eq!(
        twiml
            .matches(&digits.chars().map(String::from).collect::<Vec<_>>().join(", "))
            .count(),
        2
    );
    let (_, body, _) = phonegate
        .post_query(&format!(
            "/v1/auth/check_pin?phone_number=(206)372-1234&device_id=abcde&verify_pin={digits}"
        ))
        .await;
    assert_eq!(body["res_info"]["code"], 22, "{body}");

    // Twilio's refusals reach the outbox, not the client, who was answered
    // when the message was queued: a number Twilio calls invalid is tried
    // once and failed for good; a rate-limited one is tried again only
    // after Twilio's Retry-After (7 s).
    let (status, body, _) = phonegate
        .post_json(
            "/api/v1/auth/signup",
            json!({"user_auth": {"mobile": "+85291234567", "address_attributes": {}}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body, _) = phonegate
        .post_query("/v1/auth/phone_login?phone_number=(415)555-0199&device_id=abcde")
        .await;
    assert_eq!(status, 200, "{body}");
    wait_sent(&twilio, "/Messages.json", 5).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let messages = sent(&twilio, "/Messages.json").await;
    let to = |number: &str| messages.iter().filter(|m| m["To"] == number).count();
    assert_eq!((to("+85291234567"), to("+14155550199")), (1, 1), "no early retry");
    assert_authenticated(&twilio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_surface_works_with_twilio_verify() {
    let twilio = MockServer::start().await;
    let verify = FakeVerify::default();
    Mock::given(method("POST"))
        .and(path(format!("/v2/Services/{SERVICE}/Verifications")))
        .respond_with(verify.clone())
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v2/Services/{SERVICE}/VerificationCheck")))
        .respond_with(verify.clone())
        .mount(&twilio)
        .await;
    let phonegate = Phonegate::start("twilio_verify", &twilio).await;

    // pin-auth: Twilio's 6-digit code; a wrong one first, then the right one.
    let (_, body, _) = phonegate
        .post_json(
            "/api/v1/auth/signup",
            json!({"user_auth": {"mobile": "+85251224538", "address_attributes": {}}}),
        )
        .await;
    let key = body["otp_auth_key"].clone();
    let code = verify.code_for("+85251224538").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, _, _) = phonegate
        .post_json("/api/v1/auth/verify", json!({"otp_auth_key": key, "pin": wrong}))
        .await;
    assert_eq!(status, 422);
    let (status, body, _) = phonegate
        .post_json("/api/v1/auth/verify", json!({"otp_auth_key": key, "pin": code}))
        .await;
    assert_eq!(status, 200, "{body}");
    // Single use holds locally even though Twilio checks the code.
    let (status, _, _) = phonegate
        .post_json("/api/v1/auth/verify", json!({"otp_auth_key": key, "pin": code}))
        .await;
    assert_eq!(status, 422);

    // phone-verify.
    let (_, body, _) = phonegate
        .post_json("/api/phone/register", json!({"phone_number": "(206)372-1234"}))
        .await;
    let (status, reply, _) = phonegate
        .post_json(
            "/api/phone/verify",
            json!({"phone_number": "+12063721234", "security_code": verify.code_for("+12063721234").await,
                   "session_token": body["session_token"]}),
        )
        .await;
    assert_eq!((status, reply), (200, json!({"message": "Security code is valid."})));

    // phone-login by SMS and by call.
    for call in ["F", "T"] {
        let (_, body, _) = phonegate
            .post_query(&format!(
                "/v1/auth/phone_login?phone_number=(206)372-1234&device_id=abcde&call_verify={call}"
            ))
            .await;
        assert_eq!(body["res_info"]["code"], 2, "{body}");
        let pin = verify.code_for("+12063721234").await;
        let (_, body, _) = phonegate
            .post_query(&format!(
                "/v1/auth/check_pin?phone_number=(206)372-1234&device_id=abcde&verify_pin={pin}"
            ))
            .await;
        assert_eq!(body["res_info"]["code"], 22, "{body}");
    }
    assert_eq!(
        verify.channels.lock().unwrap().clone(),
        vec!["sms", "sms", "sms", "call"],
        "Verify was asked for each channel"
    );

    // The attempt limit holds locally: 5 wrong codes, then even the right one fails.
    let (_, body, _) = phonegate
        .post_json("/api/v1/auth/send_pin", json!({"mobile": "+85251224538"}))
        .await;
    let key = body["otp_auth_key"].clone();
    let code = verify.code_for("+85251224538").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        phonegate
            .post_json("/api/v1/auth/verify", json!({"otp_auth_key": key, "pin": wrong}))
            .await;
    }
    let checks_before = sent(&twilio, "/VerificationCheck").await.len();
    let (status, body, _) = phonegate
        .post_json("/api/v1/auth/verify", json!({"otp_auth_key": key, "pin": code}))
        .await;
    assert_eq!(
        (status, body),
        (
            422,
            json!({"errors": "Too many failed attempts. Please request a new pin."})
        )
    );
    assert_eq!(
        sent(&twilio, "/VerificationCheck").await.len(),
        checks_before,
        "no check reached Twilio"
    );

    let starts = sent(&twilio, "/Verifications").await;
    assert!(starts.iter().all(|s| s["Locale"] == "en"), "{starts:?}");
    assert_authenticated(&twilio).await;
}

/// Twilio down (503) for a while, then back; it notes every attempt.
#[derive(Clone)]
struct Outage {
    until: Instant,
    /// (when, to, accepted) of every attempt.
    attempts: Arc<Mutex<Vec<(Instant, String, bool)>>>,
}

impl Respond for Outage {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let now = Instant::now();
        let to = form(request).get("To").cloned().unwrap_or_default();
        let accepted = now >= self.until;
        self.attempts.lock().unwrap().push((now, to, accepted));
        if accepted {
            ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1", "status": "queued"}))
        } else {
            ResponseTemplate::new(503)
                .set_body_json(json!({"code": 20500, "message": "Service Unavailable", "status": 503}))
        }
    }
}

/// Twilio answers 503 for a minute. Every request is still answered at once
/// (the codes wait in the outbox); after Twilio recovers, each code that is
/// still valid is delivered exactly once, and a code that expired during
/// the outage is never delivered, nor even tried after its expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_outage_delays_messages_and_loses_none() {
    const OUTAGE: Duration = Duration::from_secs(60);
    const SHORT_TTL: Duration = Duration::from_secs(20);
    let twilio = MockServer::start().await;
    let outage = Outage {
        until: Instant::now() + OUTAGE,
        attempts: Arc::default(),
    };
    Mock::given(method("POST"))
        .and(path(format!("/2010-04-01/Accounts/{SID}/Messages.json")))
        .respond_with(outage.clone())
        .mount(&twilio)
        .await;
    let phonegate = Phonegate::start_with(
        "twilio",
        &twilio,
        &[
            ("PHONEGATE__OUTBOX__RETRY_BASE_MS", "500"),
            ("PHONEGATE__OUTBOX__RETRY_MAX_SECONDS", "4"),
            // phone-verify's codes expire during the outage.
            ("PHONEGATE__OTP__PHONE_VERIFY__TTL_SECONDS", "20"),
        ],
    )
    .await;
    let long_lived = ["+85251224538", "+85261677528", "+85291234568"];
    for mobile in long_lived {
        let (status, body, _) = phonegate
            .post_json(
                "/api/v1/auth/signup",
                json!({"user_auth": {"mobile": mobile, "address_attributes": {}}}),
            )
            .await;
        assert_eq!(status, 200, "answered at once during the outage: {body}");
    }
    let short_lived = ["+12063721234", "+12063725678"];
    let sent_at = Instant::now();
    for number in short_lived {
        let (status, body, _) = phonegate
            .post_json("/api/phone/register", json!({"phone_number": number}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let expired = sent_at + SHORT_TTL + Duration::from_secs(1);

    let deadline = outage.until + Duration::from_secs(20);
    loop {
        let attempts = outage.attempts.lock().unwrap().clone();
        let accepted = |to: &str| attempts.iter().filter(|(_, number, ok)| number == to && *ok).count();
        if long_lived.iter().all(|m| accepted(m) >= 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the codes did not arrive after Twilio recovered: {attempts:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Anything else would have come by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let attempts = outage.attempts.lock().unwrap().clone();
    let during = attempts.iter().filter(|(at, _, _)| *at < outage.until).count();
    assert!(
        (10..=400).contains(&during),
        "retries went on through the outage, with backoff ({during} attempts)"
    );
    for mobile in long_lived {
        let accepted = attempts.iter().filter(|(_, to, ok)| to == mobile && *ok).count();
        assert_eq!(accepted, 1, "{mobile} got its code exactly once");
    }
    for number in short_lived {
        assert!(
            attempts
                .iter()
                .all(|(at, to, ok)| to != number || (!ok && *at < expired)),
            "{number}'s expired code was never delivered nor tried after it expired"
        );
    }
}
