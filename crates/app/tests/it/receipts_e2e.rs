//! Delivery receipts with the real binary (issue 17): a vendor posting a
//! correctly signed receipt moves the message's state, a tampered one gets
//! 403 and changes nothing, and a receipt saying a text did not arrive has
//! the same code sent once through the route's next provider.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use phonegate_adapters::testing::{TestBackend, TestDatabase};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::providers_e2e::{
    base, common_settings, count, mount_telnyx, register, start, telnyx_accepts, telnyx_settings, twilio_settings,
};

/// What providers are told to call back; the signatures cover it, not the
/// local address the test posts to (as behind a proxy).
const PUBLIC_URL: &str = "https://auth.example.com";
const AUTH_TOKEN: &str = "twilio-test-auth-token";

/// Twilio's Messages API answering each text with the next of `sids`.
async fn twilio_answering(sids: &[&str]) -> MockServer {
    let twilio = MockServer::start().await;
    for sid in sids {
        Mock::given(method("POST"))
            .and(path(format!(
                "/2010-04-01/Accounts/{}/Messages.json",
                crate::providers_e2e::SID
            )))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": sid, "status": "queued"})))
            .up_to_n_times(1)
            .mount(&twilio)
            .await;
    }
    twilio
}

/// Twilio's signature, computed here from its documentation: base64 of the
/// HMAC-SHA1, under the auth token, of the URL followed by each POST
/// parameter's name and value, sorted by name.
fn twilio_signature(url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort_unstable();
    let mut signed = url.to_owned();
    for (name, value) in sorted {
        signed.push_str(name);
        signed.push_str(value);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(AUTH_TOKEN.as_bytes()).unwrap();
    mac.update(signed.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Posts Twilio's status callback for `sid` with `status`, signed with
/// `signature` (the right one unless a test tampers), and returns the
/// answer's status.
async fn post_status(server: &str, sid: &str, status: &str, tamper: bool) -> u16 {
    let params = [
        ("AccountSid", crate::providers_e2e::SID),
        ("ErrorCode", "30003"),
        ("From", "+15005550006"),
        ("MessageSid", sid),
        ("MessageStatus", status),
        ("SmsSid", sid),
        ("SmsStatus", status),
    ];
    let url = format!("{PUBLIC_URL}/receipts/twilio");
    let signature = twilio_signature(&url, &params);
    let mut body: Vec<(&str, &str)> = params.to_vec();
    if tamper {
        // The signature was made for another status.
        for param in &mut body {
            if param.0 == "MessageStatus" {
                param.1 = "delivered";
            }
        }
    }
    reqwest::Client::new()
        .post(format!("{server}/receipts/twilio"))
        .header("X-Twilio-Signature", signature)
        .form(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The body of every text `server` received for `to` at `suffix`.
async fn bodies(server: &MockServer, suffix: &str, to: &str) -> Vec<String> {
    let requests = server.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .filter(|request| request.url.path().ends_with(suffix))
        .filter_map(|request| {
            if let Ok(json) = serde_json::from_slice::<Value>(&request.body) {
                return (json["to"] == to).then(|| json["text"].as_str().unwrap_or_default().to_owned());
            }
            let form: HashMap<String, String> = form_urlencoded::parse(&request.body).into_owned().collect();
            (form.get("To").map(String::as_str) == Some(to)).then(|| form["Body"].clone())
        })
        .collect()
}

/// The form of the first Messages request for `to`.
async fn twilio_form(twilio: &MockServer, to: &str) -> HashMap<String, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let requests = twilio.received_requests().await.unwrap_or_default();
        let found = requests.iter().find_map(|request| {
            let form: HashMap<String, String> = form_urlencoded::parse(&request.body).into_owned().collect();
            (form.get("To").map(String::as_str) == Some(to)).then_some(form)
        });
        if let Some(form) = found {
            return form;
        }
        assert!(Instant::now() < deadline, "no text for {to} reached Twilio");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn metrics(server: &str) -> String {
    reqwest::get(format!("{server}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `(provider_message_id, delivery_status, delivery_error)` of each outbox
/// row, in order.
async fn delivery_state(database: &TestDatabase) -> Vec<(Option<String>, Option<String>, Option<String>)> {
    let db = phonegate_adapters::sql::Db::connect(&database.url, &Default::default())
        .await
        .unwrap();
    let sql = "SELECT provider_message_id, delivery_status, delivery_error FROM outbox ORDER BY id";
    let rows = match &db {
        phonegate_adapters::sql::Db::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        phonegate_adapters::sql::Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
    };
    db.close().await;
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_receipts_are_verified_and_an_undelivered_text_goes_through_the_next_provider() {
    let twilio = twilio_answering(&["SM0000000000000000000000000000001", "SM0000000000000000000000000000002"]).await;
    let telnyx = MockServer::start().await;
    mount_telnyx(&telnyx, telnyx_accepts()).await;
    let database = TestDatabase::create(TestBackend::Sqlite).await;
    let settings = format!(
        "{}{}{}\n[sms]\nprovider = \"console\"\nproviders = [\"twilio\", \"telnyx\"]\n",
        common_settings(&database.url),
        twilio_settings(&twilio),
        telnyx_settings(&telnyx),
    )
    .replace(
        "[database]",
        &format!("[server]\npublic_url = \"{PUBLIC_URL}/\"\n\n[database]"),
    );
    let server = start(&settings);
    let base = base(&server);

    // Each text asks Twilio for receipts at the public URL.
    register(&base, "+12063720111").await;
    let form = twilio_form(&twilio, "+12063720111").await;
    assert_eq!(form["StatusCallback"], format!("{PUBLIC_URL}/receipts/twilio"));
    let first = "SM0000000000000000000000000000001";

    // A tampered receipt changes nothing; a signed one moves the state.
    assert_eq!(post_status(&base, first, "undelivered", true).await, 403);
    assert_eq!(delivery_state(&database).await[0], (Some(first.to_owned()), None, None));
    assert_eq!(post_status(&base, first, "delivered", false).await, 200);
    assert_eq!(
        delivery_state(&database).await[0],
        (
            Some(first.to_owned()),
            Some("delivered".to_owned()),
            Some("30003".to_owned())
        )
    );
    // An id nobody sent gets the same 200, and changes nothing.
    assert_eq!(
        post_status(&base, "SM0000000000000000000000000009999", "undelivered", false).await,
        200
    );
    assert_eq!(count(&telnyx, "/v2/messages", "+12063720111").await, 0);

    // Undelivered: the same code goes through Telnyx, once.
    register(&base, "+12063720112").await;
    let sent = twilio_form(&twilio, "+12063720112").await["Body"].clone();
    assert_eq!(
        post_status(&base, "SM0000000000000000000000000000002", "undelivered", false).await,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while count(&telnyx, "/v2/messages", "+12063720112").await == 0 {
        assert!(Instant::now() < deadline, "the code did not go through Telnyx");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Once the resend is recorded, Twilio's id names nothing: a second
    // non-delivery report does not send it a third time.
    let deadline = Instant::now() + Duration::from_secs(5);
    while delivery_state(&database).await[1].0.is_some() {
        assert!(Instant::now() < deadline, "the resend was not recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        post_status(&base, "SM0000000000000000000000000000002", "undelivered", false).await,
        200
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        bodies(&telnyx, "/v2/messages", "+12063720112").await,
        [sent],
        "the same code, once"
    );

    let metrics = metrics(&base).await;
    for line in [
        r#"phonegate_receipts_total{provider="twilio",outcome="bad_signature"} 1"#,
        r#"phonegate_receipts_total{provider="twilio",outcome="recorded"} 1"#,
        r#"phonegate_receipts_total{provider="twilio",outcome="resent"} 1"#,
        r#"phonegate_receipts_total{provider="twilio",outcome="unknown"} 2"#,
        r#"phonegate_undelivered_resends_total{from="twilio",to="telnyx"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

const VONAGE_SIGNATURE_SECRET: &str = "vonage-signature-secret";
/// The generic provider's key, and the same key as `http_provider.secret`.
const HTTP_KEY: &[u8] = b"a-generic-provider-key-0123456789";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A Vonage delivery receipt for `message_id`, signed as Vonage documents
/// signed webhooks (`&name=value` sorted by name, HMAC-SHA256 under the
/// signature secret), as the query of a GET (Vonage's default).
fn vonage_receipt_query(message_id: &str, status: &str, tamper: bool) -> String {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let mut params: Vec<(String, String)> = [
        ("msisdn", "447911123456"),
        ("to", "Acme"),
        ("network-code", "23410"),
        ("messageId", message_id),
        ("price", "0.03330000"),
        ("status", status),
        ("scts", "2612071200"),
        ("err-code", "0"),
        ("message-timestamp", "2026-12-07 12:00:00"),
        ("timestamp", timestamp.as_str()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    let mut sorted = params.clone();
    sorted.sort();
    let text: String = sorted
        .iter()
        .map(|(name, value)| format!("&{name}={}", value.replace(['&', '='], "_")))
        .collect();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(VONAGE_SIGNATURE_SECRET.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    params.push(("sig".to_owned(), hex(&mac.finalize().into_bytes())));
    if tamper {
        params[5].1 = "failed".to_owned();
    }
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish()
}

/// Posts the generic provider's receipt `{id, status}`, signed per
/// Standard Webhooks (HMAC-SHA256 of `id.timestamp.body` under the key),
/// and returns the answer's status.
async fn post_http_receipt(server: &str, id: &str, status: &str, tamper: bool) -> u16 {
    let body = json!({"id": id, "status": status}).to_string();
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let webhook_id = "msg_receipt_1";
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(HTTP_KEY).unwrap();
    mac.update(format!("{webhook_id}.{timestamp}.{body}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let sent = if tamper { body.replace(status, "failed") } else { body };
    reqwest::Client::new()
        .post(format!("{server}/receipts/http"))
        .header("content-type", "application/json")
        .header("webhook-id", webhook_id)
        .header("webhook-timestamp", timestamp)
        .header("webhook-signature", format!("v1,{signature}"))
        .body(sent)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The `id` the generic provider was given for the text to `to`.
async fn http_message_id(gateway: &MockServer, to: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let requests = gateway.received_requests().await.unwrap_or_default();
        let found = requests.iter().find_map(|request| {
            let json: Value = serde_json::from_slice(&request.body).ok()?;
            (json["to"] == to).then(|| json["id"].as_str().unwrap_or_default().to_owned())
        });
        if let Some(id) = found {
            return id;
        }
        assert!(Instant::now() < deadline, "no text for {to} reached the gateway");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the outbox has `rows` rows with a provider's message id.
async fn sent_rows(database: &TestDatabase, rows: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while delivery_state(database)
        .await
        .iter()
        .filter(|row| row.0.is_some())
        .count()
        < rows
    {
        assert!(Instant::now() < deadline, "the texts were not recorded as sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vonage_and_generic_receipts_are_verified_before_they_count() {
    let (vonage, gateway) = (MockServer::start().await, MockServer::start().await);
    crate::providers_e2e::mount_vonage_sms(&vonage).await;
    Mock::given(method("POST"))
        .and(path("/send"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&gateway)
        .await;
    let database = TestDatabase::create(TestBackend::Sqlite).await;
    let key = base64::engine::general_purpose::STANDARD.encode(HTTP_KEY);
    let settings = format!(
        "{common}{vonage}signature_secret = \"{VONAGE_SIGNATURE_SECRET}\"\nsignature_method = \"sha256\"\n\n\
         [http_provider]\nurl = \"{gateway}/send\"\nsecret = \"whsec_{key}\"\n\n\
         [sms]\nprovider = \"console\"\nproviders = [\"http\"]\n\n\
         [[sms.routes]]\nprefix = \"+44\"\nproviders = [\"vonage\"]\nsender = \"Acme\"\n",
        common = common_settings(&database.url).replace(
            "[database]",
            &format!("[server]\npublic_url = \"{PUBLIC_URL}\"\n\n[database]")
        ),
        vonage = crate::providers_e2e::vonage_settings(&vonage),
        gateway = gateway.uri(),
    );
    let server = start(&settings);
    let base = base(&server);
    register(&base, "+447911123456").await;
    register(&base, "+12063720113").await;
    let http_id = http_message_id(&gateway, "+12063720113").await;
    sent_rows(&database, 2).await;
    let form: HashMap<String, String> = form_urlencoded::parse(&vonage.received_requests().await.unwrap()[0].body)
        .into_owned()
        .collect();
    assert_eq!(form["callback"], format!("{PUBLIC_URL}/receipts/vonage"));

    let by_get = |query: String| {
        let url = format!("{base}/receipts/vonage?{query}");
        async move { reqwest::get(url).await.unwrap().status().as_u16() }
    };
    let status_of = |rows: &[(Option<String>, Option<String>, Option<String>)], id: &str| {
        rows.iter()
            .find(|row| row.0.as_deref() == Some(id))
            .and_then(|row| row.1.clone())
    };
    // Tampered: 403, nothing changes.
    assert_eq!(
        by_get(vonage_receipt_query("0A0000000123ABCD1", "delivered", true)).await,
        403
    );
    assert_eq!(post_http_receipt(&base, &http_id, "delivered", true).await, 403);
    let rows = delivery_state(&database).await;
    assert_eq!(status_of(&rows, "0A0000000123ABCD1"), None);
    assert_eq!(status_of(&rows, &http_id), None);
    // Signed: delivered.
    assert_eq!(
        by_get(vonage_receipt_query("0A0000000123ABCD1", "delivered", false)).await,
        200
    );
    assert_eq!(post_http_receipt(&base, &http_id, "delivered", false).await, 200);
    let rows = delivery_state(&database).await;
    assert_eq!(status_of(&rows, "0A0000000123ABCD1").as_deref(), Some("delivered"));
    assert_eq!(status_of(&rows, &http_id).as_deref(), Some("delivered"));

    let metrics = metrics(&base).await;
    for line in [
        r#"phonegate_receipts_total{provider="vonage",outcome="bad_signature"} 1"#,
        r#"phonegate_receipts_total{provider="vonage",outcome="recorded"} 1"#,
        r#"phonegate_receipts_total{provider="http",outcome="bad_signature"} 1"#,
        r#"phonegate_receipts_total{provider="http",outcome="recorded"} 1"#,
        r#"phonegate_otp_deliveries_total{provider="vonage",calling_code="44"} 1"#,
        r#"phonegate_otp_deliveries_total{provider="http",calling_code="1"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}
