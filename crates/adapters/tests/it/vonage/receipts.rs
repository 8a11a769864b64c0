//! Delivery receipts: the `callback` each text carries, the `message-id` its
//! answer names, and the reader of Vonage's signed DLRs, checked against
//! signatures computed here (MD5 and HMAC-SHA256 directly, as Vonage's
//! "Signing messages" guide describes them), not with the adapter's code.

use std::sync::Arc;

use hmac::{Hmac, Mac as _};
use md5::{Digest as _, Md5};
use phonegate_adapters::{
    clock::ManualClock,
    vonage::{VonageReceiptReader, VonageSignatureMethod},
};
use phonegate_domain::{
    ports::{
        Clock as _, MessageRef, Receipt, ReceiptReader as _, ReceiptRejected, ReceiptRequest, ReceiptStatus,
        SmsSender as _,
    },
    time::Timestamp,
};
use sha2::Sha256;

use super::*;

const RECEIPT_URL: &str = "https://auth.example.com/receipts/vonage";
const SIGNATURE_SECRET: &str = "sig-5ecret-0f-the-account";
const MESSAGE_ID: &str = "0A0000000123ABCD1";
/// The reader's clock: any fixed time.
const NOW: i64 = 1_767_225_600;

#[tokio::test]
async fn a_configured_receipt_url_is_the_callback_and_the_message_id_comes_back() {
    let server = MockServer::start().await;
    mount_once(&server, SMS_PATH, sms_accepted()).await;
    let mut settings = settings(&server);
    settings.receipt_url = Some(RECEIPT_URL.to_owned());
    let client = VonageClient::new(settings).unwrap();
    let queued = MessageRef {
        id: 9,
        purpose: "pin_auth",
    };

    let id = client.send_queued_sms(&sms(), queued).await.unwrap();

    assert_eq!(id.as_ref().map(|id| id.as_str()), Some(MESSAGE_ID));
    let received = requests(&server).await;
    let fields: Vec<(String, String)> = form_urlencoded::parse(&received[0].body).into_owned().collect();
    let callbacks: Vec<&str> = fields
        .iter()
        .filter(|(name, _)| name == "callback")
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(callbacks, [RECEIPT_URL]);
}

#[tokio::test]
async fn without_a_receipt_url_no_callback_is_sent() {
    let server = MockServer::start().await;
    mount_once(&server, SMS_PATH, sms_accepted()).await;

    client(&server).send_sms(&sms()).await.unwrap();

    let received = requests(&server).await;
    assert!(form_urlencoded::parse(&received[0].body).all(|(name, _)| name != "callback"));
}

#[test]
fn receipt_settings_that_cannot_work_are_refused_without_the_secret() {
    let base = || {
        let mut settings = VonageSettings::new(API_KEY, SecretString::from(API_SECRET));
        settings.from = Some(Sender::Number(FROM.to_owned()));
        settings
    };
    let mut long = base();
    long.receipt_url = Some(format!("https://auth.example.com/{}", "r".repeat(90)));
    assert!(VonageClient::new(long).unwrap_err().to_string().contains("receipt_url"));
    let mut empty = base();
    empty.signature_secret = Some(SecretString::from(""));
    assert!(
        VonageClient::new(empty)
            .unwrap_err()
            .to_string()
            .contains("signature_secret")
    );
    let mut set = base();
    set.signature_secret = Some(SecretString::from(SIGNATURE_SECRET));
    let shown = format!("{set:?} {:?}", VonageReceiptReader::from_settings("vonage", &set));
    assert!(!shown.contains(SIGNATURE_SECRET), "{shown}");
}

// --- The reader ----------------------------------------------------------

/// A DLR as Vonage's SMS API documents one, with the `timestamp` and
/// `nonce` it adds to signed webhooks.
fn dlr(status: &'static str, err_code: &'static str, timestamp: &str) -> Vec<(String, String)> {
    [
        ("msisdn", "14155550100"),
        ("to", "15005550006"),
        ("network-code", "310090"),
        ("messageId", MESSAGE_ID),
        ("price", "0.03330000"),
        ("status", status),
        ("scts", "2001011400"),
        ("err-code", err_code),
        ("api-key", API_KEY),
        ("message-timestamp", "2026-01-01 00:00:00"),
        ("nonce", "a7f1c2e0-0d1b-4c55-9f4b-1f1d0c7c1a2b"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .chain([("timestamp".to_owned(), timestamp.to_owned())])
    .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The signature as Vonage's guide describes it: `&name=value` for every
/// parameter sorted by name, `&` and `=` in values replaced by `_`; then
/// MD5 of that and the secret (`md5hash`), or HMAC-SHA256 of it (written in
/// upper case, as Vonage's SDKs write HMACs).
fn sign(params: &mut Vec<(String, String)>, secret: &str, method: &str) {
    let mut sorted = params.clone();
    sorted.sort();
    let text: String = sorted
        .iter()
        .map(|(name, value)| format!("&{name}={}", value.replace(['&', '='], "_")))
        .collect();
    let sig = match method {
        "md5hash" => hex(&Md5::digest(format!("{text}{secret}").as_bytes())),
        "sha256" => {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(text.as_bytes());
            hex(&mac.finalize().into_bytes()).to_uppercase()
        }
        other => panic!("no test signer for {other}"),
    };
    params.push(("sig".to_owned(), sig));
}

fn reader(method: VonageSignatureMethod) -> VonageReceiptReader {
    VonageReceiptReader::new("vonage", Some(SecretString::from(SIGNATURE_SECRET)), method)
        .with_clock(Arc::new(ManualClock::at(Timestamp::from_unix_millis(NOW * 1000))))
}

fn read_get(reader: &VonageReceiptReader, params: &[(String, String)]) -> Result<Receipt, ReceiptRejected> {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let url = format!("{RECEIPT_URL}?{query}");
    reader.read(&ReceiptRequest {
        method: "GET",
        url: &url,
        query: &query,
        headers: &[],
        body: b"",
    })
}

fn read_post(reader: &VonageReceiptReader, content_type: &str, body: &[u8]) -> Result<Receipt, ReceiptRejected> {
    reader.read(&ReceiptRequest {
        method: "POST",
        url: RECEIPT_URL,
        query: "",
        headers: &[("content-type".to_owned(), content_type.to_owned())],
        body,
    })
}

fn json_body(params: &[(String, String)]) -> Vec<u8> {
    let object: serde_json::Map<String, serde_json::Value> = params
        .iter()
        .map(|(name, value)| (name.clone(), serde_json::Value::String(value.clone())))
        .collect();
    serde_json::to_vec(&object).unwrap()
}

#[test]
fn a_signed_get_query_is_read() {
    let mut params = dlr("delivered", "0", &NOW.to_string());
    sign(&mut params, SIGNATURE_SECRET, "md5hash");
    let receipt = read_get(&reader(VonageSignatureMethod::Md5Hash), &params).unwrap();
    assert_eq!(receipt.provider, "vonage");
    assert_eq!(receipt.message_id.as_str(), MESSAGE_ID);
    assert_eq!(receipt.status, ReceiptStatus::Delivered);
    assert_eq!(receipt.error_code, None);
}

#[test]
fn a_signed_post_of_json_is_read() {
    let mut params = dlr("expired", "1", &(NOW - 60).to_string());
    sign(&mut params, SIGNATURE_SECRET, "sha256");
    let receipt = read_post(
        &reader(VonageSignatureMethod::Sha256),
        "application/json",
        &json_body(&params),
    )
    .unwrap();
    assert_eq!(receipt.status, ReceiptStatus::Undelivered);
    assert_eq!(receipt.error_code.as_deref(), Some("1"));
}

#[test]
fn a_signed_post_form_is_read() {
    let mut params = dlr("rejected", "6", &NOW.to_string());
    sign(&mut params, SIGNATURE_SECRET, "md5hash");
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    let receipt = read_post(
        &reader(VonageSignatureMethod::Md5Hash),
        "application/x-www-form-urlencoded",
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(receipt.status, ReceiptStatus::Failed);
}

#[test]
fn tampered_unsigned_or_wrongly_signed_receipts_are_refused() {
    let md5hash = reader(VonageSignatureMethod::Md5Hash);
    let mut params = dlr("expired", "1", &NOW.to_string());
    sign(&mut params, SIGNATURE_SECRET, "md5hash");
    assert!(read_get(&md5hash, &params).is_ok());

    let mut tampered = params.clone();
    tampered[5].1 = "delivered".to_owned();
    assert_eq!(read_get(&md5hash, &tampered), Err(ReceiptRejected::BadSignature));
    let unsigned: Vec<_> = params.iter().filter(|(name, _)| name != "sig").cloned().collect();
    assert_eq!(read_get(&md5hash, &unsigned), Err(ReceiptRejected::BadSignature));
    let mut repeated = params.clone();
    repeated.push(("status".to_owned(), "delivered".to_owned()));
    assert_eq!(read_get(&md5hash, &repeated), Err(ReceiptRejected::BadSignature));
    assert_eq!(
        read_get(&reader(VonageSignatureMethod::Sha256), &params),
        Err(ReceiptRejected::BadSignature)
    );
    let mut other_secret = dlr("expired", "1", &NOW.to_string());
    sign(&mut other_secret, "another secret", "md5hash");
    assert_eq!(read_get(&md5hash, &other_secret), Err(ReceiptRejected::BadSignature));
    assert_eq!(
        read_post(&md5hash, "application/json", b"{not json"),
        Err(ReceiptRejected::BadSignature)
    );
}

#[test]
fn without_a_signature_secret_every_receipt_is_refused() {
    let mut params = dlr("failed", "5", &NOW.to_string());
    sign(&mut params, SIGNATURE_SECRET, "md5hash");
    let unconfigured = VonageReceiptReader::new("vonage", None, VonageSignatureMethod::Md5Hash);
    assert_eq!(read_get(&unconfigured, &params), Err(ReceiptRejected::BadSignature));
}

#[test]
fn a_timestamp_over_five_minutes_off_is_refused() {
    let md5hash = reader(VonageSignatureMethod::Md5Hash);
    for (offset, accepted) in [(-300, true), (300, true), (-301, false), (301, false)] {
        let mut params = dlr("delivered", "0", &(NOW + offset).to_string());
        sign(&mut params, SIGNATURE_SECRET, "md5hash");
        assert_eq!(read_get(&md5hash, &params).is_ok(), accepted, "{offset}");
    }
    let mut without: Vec<_> = dlr("delivered", "0", "")
        .into_iter()
        .filter(|(name, _)| name != "timestamp")
        .collect();
    sign(&mut without, SIGNATURE_SECRET, "md5hash");
    assert_eq!(read_get(&md5hash, &without), Err(ReceiptRejected::BadSignature));
    // The system clock is the default.
    let now = phonegate_adapters::clock::SystemClock.now().unix_seconds();
    let mut fresh = dlr("delivered", "0", &now.to_string());
    sign(&mut fresh, SIGNATURE_SECRET, "md5hash");
    let default_clock = VonageReceiptReader::new(
        "vonage",
        Some(SecretString::from(SIGNATURE_SECRET)),
        VonageSignatureMethod::Md5Hash,
    );
    assert!(read_get(&default_clock, &fresh).is_ok());
}

#[test]
fn a_signed_receipt_with_an_unknown_status_is_malformed() {
    let mut params = dlr("lost", "0", &NOW.to_string());
    sign(&mut params, SIGNATURE_SECRET, "md5hash");
    let read = read_get(&reader(VonageSignatureMethod::Md5Hash), &params);
    let Err(ReceiptRejected::Malformed(why)) = read else {
        panic!("an unknown status is malformed: {read:?}");
    };
    assert!(!why.contains("lost") && !why.contains("14155550100"), "{why}");
}
