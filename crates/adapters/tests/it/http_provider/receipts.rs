//! The generic provider's delivery receipts: JSON POSTs signed by the
//! receiver with Standard Webhooks headers, computed here with the test's
//! own HMAC-SHA256 (`expected_signature`), not with `webhook_signature`.

use std::sync::Arc;

use phonegate_adapters::{clock::ManualClock, http_provider::HttpReceiptReader};
use phonegate_domain::ports::{Receipt, ReceiptReader as _, ReceiptRejected, ReceiptRequest, ReceiptStatus};

use super::*;

const RECEIPT_URL: &str = "https://auth.example.com/receipts/http";
/// The reader's clock: any fixed time.
const NOW: i64 = 1_767_225_600;
const RECEIPT_ID: &str = "rcpt_2b1f0c";

fn reader() -> HttpReceiptReader {
    HttpReceiptReader::new("http", WebhookSecret::parse(&whsec(KEY)).unwrap())
        .with_clock(Arc::new(ManualClock::at(Timestamp::from_unix_millis(NOW * 1000))))
}

/// The three signature headers for `body`, signed with `key` at `timestamp`.
fn signed_headers(key: &[u8], timestamp: i64, body: &[u8]) -> Vec<(String, String)> {
    let timestamp = timestamp.to_string();
    let signature = expected_signature(key, RECEIPT_ID, &timestamp, body);
    vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("webhook-id".to_owned(), RECEIPT_ID.to_owned()),
        ("webhook-timestamp".to_owned(), timestamp),
        ("webhook-signature".to_owned(), format!("v1,{signature}")),
    ]
}

fn read(headers: &[(String, String)], body: &[u8]) -> Result<Receipt, ReceiptRejected> {
    reader().read(&ReceiptRequest {
        method: "POST",
        url: RECEIPT_URL,
        query: "",
        headers,
        body,
    })
}

fn read_signed(body: &Value) -> Result<Receipt, ReceiptRejected> {
    let body = serde_json::to_vec(body).unwrap();
    read(&signed_headers(KEY, NOW, &body), &body)
}

#[test]
fn a_signed_receipt_is_read() {
    let receipt = read_signed(&json!({"id": "msg_42", "status": "undelivered", "error": "absent_subscriber"})).unwrap();
    assert_eq!(receipt.provider, "http");
    assert_eq!(receipt.message_id.as_str(), "msg_42");
    assert_eq!(receipt.status, ReceiptStatus::Undelivered);
    assert_eq!(receipt.error_code.as_deref(), Some("absent_subscriber"));
}

#[test]
fn every_status_of_the_contract_maps() {
    for (value, expected) in [
        ("queued", ReceiptStatus::Queued),
        ("sent", ReceiptStatus::Sent),
        ("delivered", ReceiptStatus::Delivered),
        ("undelivered", ReceiptStatus::Undelivered),
        ("failed", ReceiptStatus::Failed),
    ] {
        let receipt = read_signed(&json!({"id": "msg_42", "status": value})).unwrap();
        assert_eq!(receipt.status, expected, "{value}");
        assert_eq!(receipt.error_code, None);
    }
}

#[test]
fn an_error_that_is_not_a_short_code_is_dropped() {
    for error in [
        json!("handset +14155550100 is switched off"),
        json!("x".repeat(33)),
        json!({"code": 1}),
        json!(null),
    ] {
        let receipt = read_signed(&json!({"id": "msg_42", "status": "failed", "error": error})).unwrap();
        assert_eq!(receipt.status, ReceiptStatus::Failed);
        assert_eq!(receipt.error_code, None, "{error}");
    }
    let numeric = read_signed(&json!({"id": "msg_42", "status": "failed", "error": 30003})).unwrap();
    assert_eq!(numeric.error_code.as_deref(), Some("30003"));
}

#[test]
fn a_tampered_body_a_stale_timestamp_or_a_missing_header_is_refused() {
    let body = serde_json::to_vec(&json!({"id": "msg_42", "status": "failed"})).unwrap();
    let headers = signed_headers(KEY, NOW, &body);
    assert!(read(&headers, &body).is_ok());

    let tampered = serde_json::to_vec(&json!({"id": "msg_42", "status": "delivered"})).unwrap();
    assert_eq!(read(&headers, &tampered), Err(ReceiptRejected::BadSignature));
    for offset in [-301, 301] {
        let stale = signed_headers(KEY, NOW + offset, &body);
        assert_eq!(read(&stale, &body), Err(ReceiptRejected::BadSignature), "{offset}");
    }
    assert!(read(&signed_headers(KEY, NOW - 300, &body), &body).is_ok());
    for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let without: Vec<_> = headers.iter().filter(|(name, _)| name != missing).cloned().collect();
        assert_eq!(read(&without, &body), Err(ReceiptRejected::BadSignature), "{missing}");
    }
    let other_key = signed_headers(b"another gateway's 32-byte key!!!", NOW, &body);
    assert_eq!(read(&other_key, &body), Err(ReceiptRejected::BadSignature));
}

#[test]
fn a_signed_receipt_that_breaks_the_contract_is_malformed() {
    for body in [
        json!({"id": "msg_42", "status": "read"}),
        json!({"id": "msg_42", "status": "DELIVERED"}),
        json!({"id": "", "status": "sent"}),
        json!({"status": "sent"}),
        json!(["msg_42", "sent"]),
    ] {
        let read = read_signed(&body);
        assert!(matches!(read, Err(ReceiptRejected::Malformed(_))), "{body}: {read:?}");
    }
}

#[test]
fn the_readers_debug_shows_no_key() {
    let shown = format!("{:?}", reader());
    assert!(!shown.contains(&whsec(KEY)) && !shown.contains("gateway"), "{shown}");
}
