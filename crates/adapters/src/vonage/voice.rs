//! The Voice API: one JSON `POST {voice_base_url}/v1/calls` per call, with
//! an inline NCCO that speaks the text, authenticated by an application
//! JWT.
//!
//! The request follows the Voice API reference's "Create an outbound call"
//! (`to` and `from` endpoints of type `phone`, numbers without `+`, and an
//! `ncco` of one `talk` action with its `language`); success is
//! `201 Created` with the call's `uuid`. The JWT follows Vonage's
//! authentication guide and JWT generator (<https://developer.vonage.com/jwt>):
//! RS256, signed with the application's private key, with the claims
//! `application_id`, `iat`, `exp` and a unique `jti`.

use std::{
    fmt,
    time::{SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};

/// How long a token is valid. Each token serves one request, sent at once;
/// the margin only absorbs clock skew between us and Vonage.
pub(super) const TOKEN_LIFETIME_SECS: u64 = 15 * 60;

/// An application's private key, ready to sign. `Debug` shows nothing of it.
pub(super) struct SigningKey(EncodingKey);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

/// The claims of an application JWT.
#[derive(Serialize)]
struct Claims<'a> {
    application_id: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
}

impl SigningKey {
    /// Reads an RSA private key in PEM form (PKCS#8 `PRIVATE KEY`, as Vonage
    /// hands it out, or PKCS#1 `RSA PRIVATE KEY`) and signs one token with
    /// it, so that a key the signer cannot use is refused at start rather
    /// than at the first call. The error never quotes the key.
    pub(super) fn from_pem(pem: &str) -> Result<Self, String> {
        const REFUSED: &str = "private_key is not an RSA private key in PEM form (PKCS#8 or PKCS#1)";
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| REFUSED.to_owned())?;
        let key = Self(key);
        key.token("self-check", 0).map_err(|_| REFUSED.to_owned())?;
        Ok(key)
    }

    /// A token for `application_id`, issued at `now` (seconds since the
    /// epoch), with a fresh random `jti`.
    pub(super) fn token(&self, application_id: &str, now: u64) -> Result<String, String> {
        let claims = Claims {
            application_id,
            iat: now,
            exp: now.saturating_add(TOKEN_LIFETIME_SECS),
            jti: random_id()?,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.0)
            .map_err(|error| format!("vonage: cannot sign the application JWT: {error}"))
    }
}

/// Seconds since the epoch (0 if the clock is before it, which Vonage will
/// then refuse as an expired token: a clock that wrong is a misconfiguration).
pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// A random UUID (version 4) for `jti`, from the operating system's CSPRNG.
fn random_id() -> Result<String, String> {
    let mut bytes = [0_u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| "vonage: the random generator failed".to_owned())?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// The body of a call from `from` to `to` (both E.164, sent without `+`)
/// that speaks `text` in `language`.
pub(super) fn call_body(from: &str, to: &str, text: &str, language: &str) -> Value {
    json!({
        "to": [{"type": "phone", "number": to.trim_start_matches('+')}],
        "from": {"type": "phone", "number": from.trim_start_matches('+')},
        "ncco": [{"action": "talk", "text": text, "language": language}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_4_uuids_and_differ() {
        let (a, b) = (random_id().unwrap_or_default(), random_id().unwrap_or_default());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn the_body_speaks_the_text() {
        let body = call_body("+15005550006", "+14155550100", "Code 1, 2, 3", "en-GB");
        assert_eq!(
            body,
            json!({
                "to": [{"type": "phone", "number": "14155550100"}],
                "from": {"type": "phone", "number": "15005550006"},
                "ncco": [{"action": "talk", "text": "Code 1, 2, 3", "language": "en-GB"}],
            })
        );
    }

    #[test]
    fn keys_that_cannot_sign_are_refused_without_quoting_them() {
        for pem in [
            "",
            "not a key",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let error = SigningKey::from_pem(pem).unwrap_err();
            assert!(error.starts_with("private_key is not"), "{error}");
            assert!(!error.contains("AAAA"), "{error}");
        }
    }
}
