//! Standard Webhooks signatures (<https://www.standardwebhooks.com>,
//! version 1.0.0, symmetric scheme): signing the requests phonegate sends
//! (the generic HTTP provider) and verifying the ones it receives.
//!
//! A message is signed as `HMAC-SHA256(key, "{id}.{timestamp}.{body}")`,
//! where `id` is the `webhook-id` header, `timestamp` the
//! `webhook-timestamp` header (Unix seconds) and `body` the raw request
//! body, and the `webhook-signature` header carries
//! `v1,<base64 of the MAC>`. A receiver may see several space-separated
//! signatures (during a key rotation); one valid `v1` signature is enough.
//!
//! The key is configured as `whsec_<base64 of the key>`, the form the spec
//! and its libraries use. A secret without that prefix is used as it is
//! written, its UTF-8 bytes being the key. This differs from the reference
//! libraries, which base64-decode a secret with or without the prefix, so
//! a receiver using one of them must be given the `whsec_` form.

use std::{fmt, time::Duration};

use base64::{
    Engine as _, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig, general_purpose::STANDARD},
};
use hmac::{Hmac, Mac as _};
use phonegate_domain::time::Timestamp;
use secrecy::{ExposeSecret as _, SecretSlice};
use sha2::Sha256;

/// How far a `webhook-timestamp` may be from the receiver's clock, either
/// way, by default: the spec's recommendation against replays.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The prefix that marks a base64-encoded Standard Webhooks secret.
const PREFIX: &str = "whsec_";

/// The shortest key accepted, in bytes: the spec asks for at least 24
/// random bytes (192 bits), and a shorter key is far easier to guess.
pub const MIN_KEY_BYTES: usize = 24;

/// Base64 as the spec writes it (standard alphabet), read with or without
/// its `=` padding, since secrets are often copied without it.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A signing key, parsed once from its configured text. `Debug` shows
/// nothing of it, and its bytes are wiped when it is dropped.
#[derive(Clone)]
pub struct WebhookSecret {
    key: SecretSlice<u8>,
}

/// Why a configured secret cannot be used. The text never contains the
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSecretError {
    /// The part after `whsec_` is not base64.
    #[error("the part after whsec_ is not base64")]
    NotBase64,
    /// The key is shorter than [`MIN_KEY_BYTES`].
    #[error("the key is {0} bytes long; at least {MIN_KEY_BYTES} are required")]
    TooShort(usize),
}

impl WebhookSecret {
    /// Reads a secret: `whsec_<base64>` (the key is the decoded bytes), or
    /// any other text, whose UTF-8 bytes are the key. Either way the key
    /// must be at least [`MIN_KEY_BYTES`] long.
    pub fn parse(text: &str) -> Result<Self, WebhookSecretError> {
        let key = match text.strip_prefix(PREFIX) {
            Some(encoded) => LENIENT_BASE64
                .decode(encoded.trim())
                .map_err(|_| WebhookSecretError::NotBase64)?,
            None => text.as_bytes().to_vec(),
        };
        if key.len() < MIN_KEY_BYTES {
            return Err(WebhookSecretError::TooShort(key.len()));
        }
        Ok(Self { key: key.into() })
    }

    /// The MAC of one message, keyed with this secret.
    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        #[expect(clippy::expect_used, reason = "HMAC accepts keys of any length, so this cannot fail")]
        let mut mac =
            <Hmac<Sha256> as hmac::Mac>::new_from_slice(self.key.expose_secret()).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

/// The `webhook-signature` header value for a message: `v1,` and the
/// base64 of its MAC. `timestamp` is in Unix seconds and must be what the
/// `webhook-timestamp` header says; `id` must be what `webhook-id` says,
/// and should contain no `.` (the spec's advice, so that the signed text
/// splits one way only).
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = secret.mac(id, timestamp, body).finalize().into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// The three Standard Webhooks headers of a received request, as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureHeaders<'a> {
    /// `webhook-id`.
    pub id: &'a str,
    /// `webhook-timestamp`: Unix seconds.
    pub timestamp: &'a str,
    /// `webhook-signature`: space-separated `<version>,<base64>` entries.
    pub signature: &'a str,
}

/// Why a received request's signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A header is missing (empty).
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not an integer number of seconds.
    #[error("the webhook-timestamp header is not a Unix time in seconds")]
    InvalidTimestamp,
    /// The timestamp is further from now than the tolerance: a replay, or
    /// a clock far off.
    #[error("the webhook-timestamp is outside the tolerance")]
    OutsideTolerance,
    /// No `v1` signature matches the body with this secret.
    #[error("no signature matches")]
    NoMatch,
}

/// Checks a received request: its timestamp must be within `tolerance` of
/// `now` (either way), and one of its `v1` signatures must be the MAC of
/// `body` (the raw bytes, before any parsing) with `secret`. Each candidate
/// is compared in constant time; entries of other versions and entries that
/// are not base64 are skipped.
pub fn verify(
    secret: &WebhookSecret,
    headers: SignatureHeaders<'_>,
    body: &[u8],
    now: Timestamp,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    for (name, value) in [
        ("webhook-id", headers.id),
        ("webhook-timestamp", headers.timestamp),
        ("webhook-signature", headers.signature),
    ] {
        if value.trim().is_empty() {
            return Err(SignatureError::MissingHeader(name));
        }
    }
    let timestamp = headers
        .timestamp
        .trim()
        .parse::<i64>()
        .map_err(|_| SignatureError::InvalidTimestamp)?;
    // Compared in milliseconds so that a timestamp exactly `tolerance`
    // away is accepted and one a second further is not.
    let distance = now.unix_millis().abs_diff(timestamp.saturating_mul(1000));
    if u128::from(distance) > tolerance.as_millis() {
        return Err(SignatureError::OutsideTolerance);
    }
    let expected = secret.mac(headers.id, timestamp, body);
    let matches = headers
        .signature
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        // `verify_slice` compares in constant time and refuses a tag of the
        // wrong length, so a truncated signature cannot match a prefix.
        .any(|tag| expected.clone().verify_slice(&tag).is_ok());
    if matches { Ok(()) } else { Err(SignatureError::NoMatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference libraries' test vector (standard-webhooks,
    /// `libraries/javascript/src/webhook.test.ts`, "sign function works").
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1_614_265_330;
    const SPEC_BODY: &str = r#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secret() -> WebhookSecret {
        WebhookSecret::parse(SPEC_SECRET).unwrap()
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_millis(seconds * 1000)
    }

    fn headers(signature: &str) -> SignatureHeaders<'_> {
        SignatureHeaders {
            id: SPEC_ID,
            timestamp: "1614265330",
            signature,
        }
    }

    fn check(signature: &str, body: &str, now: Timestamp) -> Result<(), SignatureError> {
        verify(&secret(), headers(signature), body.as_bytes(), now, DEFAULT_TOLERANCE)
    }

    #[test]
    fn signs_the_spec_test_vector() {
        assert_eq!(
            sign(&secret(), SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY.as_bytes()),
            SPEC_SIGNATURE
        );
    }

    #[test]
    fn verifies_the_spec_test_vector() {
        assert_eq!(check(SPEC_SIGNATURE, SPEC_BODY, at(SPEC_TIMESTAMP)), Ok(()));
    }

    #[test]
    fn one_valid_signature_among_several_is_enough() {
        let header = format!(
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= \
             v1,not-base64! {SPEC_SIGNATURE} v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
        );
        assert_eq!(check(&header, SPEC_BODY, at(SPEC_TIMESTAMP)), Ok(()));
    }

    #[test]
    fn a_tampered_body_or_id_is_refused() {
        let tampered = SPEC_BODY.replace('2', "3");
        assert_eq!(
            check(SPEC_SIGNATURE, &tampered, at(SPEC_TIMESTAMP)),
            Err(SignatureError::NoMatch)
        );
        let other_id = SignatureHeaders {
            id: "msg_other",
            ..headers(SPEC_SIGNATURE)
        };
        assert_eq!(
            verify(
                &secret(),
                other_id,
                SPEC_BODY.as_bytes(),
                at(SPEC_TIMESTAMP),
                DEFAULT_TOLERANCE
            ),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn another_secret_is_refused() {
        let other = WebhookSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert_eq!(
            verify(
                &other,
                headers(SPEC_SIGNATURE),
                SPEC_BODY.as_bytes(),
                at(SPEC_TIMESTAMP),
                DEFAULT_TOLERANCE
            ),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn partial_and_foreign_signatures_are_refused() {
        let truncated = &SPEC_SIGNATURE[..20];
        for signature in [
            truncated,
            "v1,",
            "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "g0hM9SsE",
        ] {
            assert_eq!(
                check(signature, SPEC_BODY, at(SPEC_TIMESTAMP)),
                Err(SignatureError::NoMatch),
                "{signature}"
            );
        }
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_refused_either_way() {
        let five_minutes = 5 * 60;
        for now in [SPEC_TIMESTAMP - five_minutes, SPEC_TIMESTAMP + five_minutes] {
            assert_eq!(check(SPEC_SIGNATURE, SPEC_BODY, at(now)), Ok(()), "{now}");
        }
        for now in [SPEC_TIMESTAMP - five_minutes - 1, SPEC_TIMESTAMP + five_minutes + 1] {
            assert_eq!(
                check(SPEC_SIGNATURE, SPEC_BODY, at(now)),
                Err(SignatureError::OutsideTolerance),
                "{now}"
            );
        }
    }

    #[test]
    fn missing_and_malformed_headers_are_refused() {
        let body = SPEC_BODY.as_bytes();
        let now = at(SPEC_TIMESTAMP);
        let cases = [
            (
                SignatureHeaders {
                    id: "",
                    ..headers(SPEC_SIGNATURE)
                },
                SignatureError::MissingHeader("webhook-id"),
            ),
            (
                SignatureHeaders {
                    timestamp: " ",
                    ..headers(SPEC_SIGNATURE)
                },
                SignatureError::MissingHeader("webhook-timestamp"),
            ),
            (headers(""), SignatureError::MissingHeader("webhook-signature")),
            (
                SignatureHeaders {
                    timestamp: "hello",
                    ..headers(SPEC_SIGNATURE)
                },
                SignatureError::InvalidTimestamp,
            ),
            (
                SignatureHeaders {
                    timestamp: "1614265330.5",
                    ..headers(SPEC_SIGNATURE)
                },
                SignatureError::InvalidTimestamp,
            ),
        ];
        for (headers, expected) in cases {
            assert_eq!(
                verify(&secret(), headers, body, now, DEFAULT_TOLERANCE),
                Err(expected.clone()),
                "{expected}"
            );
        }
    }

    #[test]
    fn a_secret_without_the_prefix_is_its_own_bytes() {
        let raw = "this is a long shared secret, not base64";
        let parsed = WebhookSecret::parse(raw).unwrap();
        let mut expected = <Hmac<Sha256> as hmac::Mac>::new_from_slice(raw.as_bytes()).unwrap();
        expected.update(b"msg_1.1700000000.{}");
        let expected = format!("v1,{}", STANDARD.encode(expected.finalize().into_bytes()));
        assert_eq!(sign(&parsed, "msg_1", 1_700_000_000, b"{}"), expected);
        // The same text behind `whsec_` would be base64, a different key.
        let prefixed = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let bare = WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_ne!(sign(&prefixed, "m", 1, b""), sign(&bare, "m", 1, b""));
    }

    #[test]
    fn bad_secrets_are_refused_without_echoing_them() {
        let not_base64 = "whsec_%%%%not*base64%%%%%%%%%%%%%%%%%%";
        assert_eq!(
            WebhookSecret::parse(not_base64).unwrap_err(),
            WebhookSecretError::NotBase64
        );
        assert_eq!(
            WebhookSecret::parse("whsec_c2hvcnQ=").unwrap_err(),
            WebhookSecretError::TooShort(5)
        );
        assert_eq!(
            WebhookSecret::parse("short").unwrap_err(),
            WebhookSecretError::TooShort(5)
        );
        assert_eq!(WebhookSecret::parse("").unwrap_err(), WebhookSecretError::TooShort(0));
        let message = WebhookSecret::parse(not_base64).unwrap_err().to_string();
        assert!(!message.contains("not*base64"), "{message}");
        // Unpadded base64 is read too.
        let unpadded = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAA").unwrap();
        let padded = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAA==").unwrap();
        assert_eq!(sign(&unpadded, "m", 1, b""), sign(&padded, "m", 1, b""));
    }

    #[test]
    fn debug_shows_nothing_of_the_key() {
        let debug = format!("{:?}", secret());
        assert_eq!(debug, "WebhookSecret([redacted])");
    }
}
