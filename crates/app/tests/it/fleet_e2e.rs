//! Two instances with different providers on one Postgres database
//! (issue 16): each claims only the messages its providers can send, so a
//! fleet in the middle of a switch strands no code.

use std::time::{Duration, Instant};

use phonegate_adapters::testing::{TestBackend, TestDatabase};
use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path_regex},
};

use crate::providers_e2e::{
    base, common_settings, count, mount_telnyx, plivo_settings, register, start, telnyx_accepts, telnyx_settings,
    twilio_settings,
};

/// Sends one code on every surface through `base`, to numbers made from
/// `tag`, and returns each number with the moment its send was answered.
async fn send_on_every_surface(base: &str, tag: u32, auth_token: &str) -> Vec<(String, Instant)> {
    let http = reqwest::Client::new();
    let mut sent = Vec::new();
    let verify = format!("+1206374{tag:04}");
    sent.push((verify.clone(), register(base, &verify).await));
    let pin = format!("+8525122{tag:04}");
    let response = http
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"user_auth": {"mobile": pin, "address_attributes": {}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{:?}", response.text().await);
    sent.push((pin, Instant::now()));
    let login = format!("+1206375{tag:04}");
    let response = http
        .post(format!(
            "{base}/v1/auth/phone_login?phone_number={}&device_id=device{tag}",
            login.replace('+', "%2B")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{:?}", response.text().await);
    sent.push((login, Instant::now()));
    let confirm = format!("+1206376{tag:04}");
    let response = http
        .post(format!("{base}/api/v1/settings/send_phone_verification.json"))
        .json(&json!({"auth_token": auth_token, "phone": confirm}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{:?}", response.text().await);
    sent.push((confirm, Instant::now()));
    sent
}

const EMAIL: &str = "fleet@example.com";
const PASSWORD: &str = "Fleet-Pass-4821-quokka";

/// An account of the tokens surface, made with the CLI on the fleet's
/// database, signed in through `base`: its session token.
async fn signed_in(database_url: &str, base: &str) -> String {
    let dir = crate::common::process::scratch_dir("fleet-cli");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_phonegate"))
        .current_dir(&dir)
        .env("PHONEGATE__DATABASE__URL", database_url)
        .env("PHONEGATE__AUTH__JWT_SECRET", crate::providers_e2e::MASTER_SECRET)
        .env("PHONEGATE__AUTH__JWT_HS256_KEY", crate::providers_e2e::HS256_KEY)
        .args([
            "users",
            "create",
            "--email",
            EMAIL,
            "--password",
            PASSWORD,
            "--first-name",
            "Fleet",
        ])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/tokens.json"))
        .json(&json!({"email": EMAIL, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body:?}");
    body["token"].as_str().unwrap().to_owned()
}

/// Two instances on one Postgres database, with different providers, take
/// sends in turn; each code reaches a fake provider exactly once within
/// two seconds, and no message is failed or retried as misconfigured.
async fn a_mixed_fleet_delivers_every_code_once(
    first: impl Fn(&MockServer) -> String,
    second: impl Fn(&MockServer) -> String,
    expect: &[&str],
) {
    let _pass = crate::common::alone::pass();
    let database = TestDatabase::create(TestBackend::Postgres).await;
    let vendor = MockServer::start().await;
    // One server plays every vendor: Twilio Messages and Verify, Plivo,
    // Telnyx; each answers its documented success.
    Mock::given(method("POST"))
        .and(path_regex("/Messages.json$"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1", "status": "queued"})))
        .mount(&vendor)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("/Verifications$"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": "VE1", "status": "pending"})))
        .mount(&vendor)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("/Message/$"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({
            "api_id": "db342550-e1f1-11e5-a1e2-22000ac70a51",
            "message": "message(s) queued",
            "message_uuid": ["db3ce55a-7f1d-11e1-8ea7-1231380bc196"]
        })))
        .mount(&vendor)
        .await;
    mount_telnyx(&vendor, telnyx_accepts()).await;
    let common = common_settings(&database.url);
    let a = start(&format!("{common}{}", first(&vendor)));
    let b = start(&format!("{common}{}", second(&vendor)));
    let token = signed_in(&database.url, &base(&a)).await;
    let mut sent = Vec::new();
    for round in 0..3 {
        sent.extend(send_on_every_surface(&base(&a), round * 2, &token).await);
        sent.extend(send_on_every_surface(&base(&b), round * 2 + 1, &token).await);
    }
    for (number, at) in &sent {
        loop {
            let mut arrived = 0;
            for suffix in expect {
                arrived += count(&vendor, suffix, number).await;
            }
            if arrived > 0 {
                break;
            }
            assert!(
                at.elapsed() < Duration::from_secs(2),
                "no code reached {number} within 2 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (number, _) in &sent {
        let mut arrived = 0;
        for suffix in expect {
            arrived += count(&vendor, suffix, number).await;
        }
        assert_eq!(arrived, 1, "{number} got its code {arrived} times");
    }
    // No attempt failed on either instance: nothing was retried, failed
    // or refused as misconfigured.
    for server in [&a, &b] {
        let metrics = reqwest::get(format!("{}/metrics", base(server)))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let failures: Vec<&str> = metrics
            .lines()
            .filter(|line| {
                (line.starts_with("phonegate_delivery_failures_total")
                    || line.starts_with("phonegate_provider_errors_total"))
                    && !line.ends_with(" 0")
            })
            .collect();
        assert!(failures.is_empty(), "{failures:?}");
        assert!(metrics.contains("phonegate_messages_sent_total"), "{metrics}");
    }
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_switching_from_twilio_to_verify_strands_no_code() {
    a_mixed_fleet_delivers_every_code_once(
        |vendor| format!("{}\n[sms]\nprovider = \"twilio\"\n", twilio_settings(vendor)),
        |vendor| format!("{}\n[sms]\nprovider = \"twilio_verify\"\n", twilio_settings(vendor)),
        &["/Messages.json", "/Verifications"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_switching_between_two_vendors_strands_no_code() {
    a_mixed_fleet_delivers_every_code_once(
        |vendor| format!("{}\n[sms]\nprovider = \"plivo\"\n", plivo_settings(vendor)),
        |vendor| format!("{}\n[sms]\nprovider = \"telnyx\"\n", telnyx_settings(vendor)),
        &["/Message/", "/v2/messages"],
    )
    .await;
}
