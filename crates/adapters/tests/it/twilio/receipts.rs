//! Delivery receipts: the `StatusCallback` each text asks for, the `sid`
//! its answer names, and the reader of Twilio's signed status callbacks,
//! checked against signatures computed here with HMAC-SHA1 directly (and
//! Twilio's own published example), not with the adapter's code.

use hmac::{Hmac, Mac as _};
use phonegate_adapters::twilio::TwilioReceiptReader;
use phonegate_domain::ports::{
    MessageRef, Receipt, ReceiptReader as _, ReceiptRejected, ReceiptRequest, ReceiptStatus,
};
use sha1::Sha1;

use super::*;

const CALLBACK: &str = "https://auth.example.com/receipts/twilio";
const SID: &str = "SM0123456789abcdef0123456789abcdef";
const QUEUED: MessageRef = MessageRef {
    id: 7,
    purpose: "pin_auth",
};

#[tokio::test]
async fn a_configured_status_callback_goes_with_every_text_and_the_sid_comes_back() {
    let server = MockServer::start().await;
    mount(&server, &messages_path(), created()).await;
    let mut settings = settings(&server);
    settings.status_callback = Some(CALLBACK.to_owned());
    let client = TwilioClient::new(settings).unwrap();

    let sid = client.send_queued_sms(&sms(), QUEUED).await.unwrap();

    assert_eq!(sid.as_ref().map(|id| id.as_str()), Some(SID));
    let mut fields = sms_fields();
    fields.push(("StatusCallback", CALLBACK));
    assert_requests(&server, 1, &messages_path(), &fields).await;
}

#[tokio::test]
async fn without_a_status_callback_none_is_sent_and_the_sid_still_comes_back() {
    let server = MockServer::start().await;
    mount(&server, &messages_path(), created()).await;

    let sid = client(&server).send_queued_sms(&sms(), QUEUED).await.unwrap();

    assert_eq!(sid.as_ref().map(|id| id.as_str()), Some(SID));
    assert_requests(&server, 1, &messages_path(), &sms_fields()).await;
}

#[tokio::test]
async fn an_answer_without_a_sid_is_still_a_sent_text() {
    let server = MockServer::start().await;
    mount(
        &server,
        &messages_path(),
        ResponseTemplate::new(201).set_body_string("<html>"),
    )
    .await;

    let sid = client(&server).send_queued_sms(&sms(), QUEUED).await.unwrap();

    assert_eq!(sid, None);
}

#[test]
fn a_status_callback_that_is_not_an_http_url_is_refused() {
    let mut settings = TwilioSettings::new(ACCOUNT_SID, SecretString::from(AUTH_TOKEN));
    settings.from_number = Some(FROM.to_owned());
    settings.status_callback = Some("ftp://auth.example.com/receipts/twilio".to_owned());
    let error = TwilioClient::new(settings).unwrap_err().to_string();
    assert!(error.contains("status_callback"), "{error}");
}

// --- The reader ----------------------------------------------------------

/// The signature Twilio's documentation describes, computed here: the URL,
/// then each parameter's name and value sorted by name, under HMAC-SHA1,
/// in base64.
fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn form_body(params: &[(&str, &str)]) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
        .into_bytes()
}

/// A status callback as Twilio documents one for a text that failed.
fn callback_params(status: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("AccountSid", ACCOUNT_SID),
        ("ApiVersion", "2010-04-01"),
        ("ErrorCode", "30003"),
        ("From", FROM),
        ("MessageSid", SID),
        ("MessageStatus", status),
        ("SmsSid", SID),
        ("SmsStatus", status),
        ("To", TO),
    ]
}

fn reader() -> TwilioReceiptReader {
    TwilioReceiptReader::new("twilio", SecretString::from(AUTH_TOKEN))
}

/// Reads a POST of `body` to `url` with `signature` (no header when
/// `None`).
fn read_post(
    reader: &TwilioReceiptReader,
    url: &str,
    body: &[u8],
    signature: Option<&str>,
) -> Result<Receipt, ReceiptRejected> {
    let mut headers = vec![("content-type".to_owned(), FORM.to_owned())];
    if let Some(signature) = signature {
        headers.push(("x-twilio-signature".to_owned(), signature.to_owned()));
    }
    let query = url.split_once('?').map_or("", |(_, query)| query);
    reader.read(&ReceiptRequest {
        method: "POST",
        url,
        query,
        headers: &headers,
        body,
    })
}

/// Reads a callback of `params`, signed for `CALLBACK` with the token.
fn read_signed(params: &[(&str, &str)]) -> Result<Receipt, ReceiptRejected> {
    let signature = twilio_signature(AUTH_TOKEN, CALLBACK, params);
    read_post(&reader(), CALLBACK, &form_body(params), Some(&signature))
}

#[test]
fn twilios_published_example_signature_is_accepted() {
    // Twilio's "Webhooks security" example: this URL, auth token 12345 and
    // these parameters sign as 0/KCTR6DLpKmkAf8muzZqo1nDgQ=. It is a call,
    // not a receipt, so it verifies and then cannot be read.
    let params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ];
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    let reader = TwilioReceiptReader::new("twilio", SecretString::from("12345"));
    let body = form_body(&params);
    let read = read_post(&reader, url, &body, Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    assert!(matches!(read, Err(ReceiptRejected::Malformed(_))), "{read:?}");
    let read = read_post(&reader, url, &body, Some("GvWf1cFY/Q7PnoempGyD5oXAezc="));
    assert_eq!(read, Err(ReceiptRejected::BadSignature));
}

#[test]
fn a_signed_receipt_is_read() {
    let receipt = read_signed(&callback_params("undelivered")).unwrap();
    assert_eq!(receipt.provider, "twilio");
    assert_eq!(receipt.message_id.as_str(), SID);
    assert_eq!(receipt.status, ReceiptStatus::Undelivered);
    assert_eq!(receipt.error_code.as_deref(), Some("30003"));
}

#[test]
fn a_tampered_missing_or_misdirected_signature_is_refused() {
    let params = callback_params("undelivered");
    let signature = twilio_signature(AUTH_TOKEN, CALLBACK, &params);
    let body = form_body(&params);
    assert!(read_post(&reader(), CALLBACK, &body, Some(&signature)).is_ok());

    let mut tampered = params.clone();
    tampered[5] = ("MessageStatus", "delivered");
    assert_eq!(
        read_post(&reader(), CALLBACK, &form_body(&tampered), Some(&signature)),
        Err(ReceiptRejected::BadSignature)
    );
    let mut added = params.clone();
    added.push(("Extra", "1"));
    assert_eq!(
        read_post(&reader(), CALLBACK, &form_body(&added), Some(&signature)),
        Err(ReceiptRejected::BadSignature)
    );
    assert_eq!(
        read_post(&reader(), CALLBACK, &body, None),
        Err(ReceiptRejected::BadSignature)
    );
    assert_eq!(
        read_post(
            &reader(),
            "https://auth.example.com/receipts/vonage",
            &body,
            Some(&signature)
        ),
        Err(ReceiptRejected::BadSignature)
    );
    let other_token = TwilioReceiptReader::new("twilio", SecretString::from("another token"));
    assert_eq!(
        read_post(&other_token, CALLBACK, &body, Some(&signature)),
        Err(ReceiptRejected::BadSignature)
    );
    assert_eq!(
        read_post(&reader(), CALLBACK, &body, Some("not base64!")),
        Err(ReceiptRejected::BadSignature)
    );
}

#[test]
fn every_documented_status_maps() {
    for (value, expected) in [
        ("queued", ReceiptStatus::Queued),
        ("accepted", ReceiptStatus::Queued),
        ("scheduled", ReceiptStatus::Queued),
        ("sending", ReceiptStatus::Sent),
        ("sent", ReceiptStatus::Sent),
        ("delivered", ReceiptStatus::Delivered),
        ("read", ReceiptStatus::Delivered),
        ("undelivered", ReceiptStatus::Undelivered),
        ("failed", ReceiptStatus::Failed),
        ("canceled", ReceiptStatus::Failed),
    ] {
        assert_eq!(
            read_signed(&callback_params(value)).unwrap().status,
            expected,
            "{value}"
        );
    }
}

#[test]
fn a_signed_but_unreadable_receipt_is_malformed_without_echoing_it() {
    let read = read_signed(&callback_params("lost"));
    let Err(ReceiptRejected::Malformed(why)) = read else {
        panic!("an unknown status is malformed: {read:?}");
    };
    assert!(!why.contains("lost") && !why.contains(TO), "{why}");
    let without_sid: Vec<_> = callback_params("sent")
        .into_iter()
        .filter(|(name, _)| *name != "MessageSid")
        .collect();
    assert!(matches!(read_signed(&without_sid), Err(ReceiptRejected::Malformed(_))));
}

#[test]
fn an_error_code_that_is_not_a_number_is_dropped() {
    let mut params = callback_params("failed");
    params[2] = ("ErrorCode", "call +14155550100");
    let receipt = read_signed(&params).unwrap();
    assert_eq!(receipt.status, ReceiptStatus::Failed);
    assert_eq!(receipt.error_code, None);
    let delivered: Vec<_> = callback_params("delivered")
        .into_iter()
        .filter(|(name, _)| *name != "ErrorCode")
        .collect();
    assert_eq!(read_signed(&delivered).unwrap().error_code, None);
}

#[test]
fn the_readers_debug_shows_no_token() {
    let shown = format!("{:?}", reader());
    assert!(!shown.contains(AUTH_TOKEN), "{shown}");
}
