//! Twilio's request signatures: the `X-Twilio-Signature` header of every
//! webhook Twilio sends (a message's `StatusCallback` delivery receipts
//! among them) is the base64 HMAC-SHA1, under the account's auth token, of
//! the full URL Twilio called followed by each POST parameter's name and
//! value, sorted by name (Twilio's "Webhooks security" page). A receipt
//! endpoint checks it before believing anything the request says.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac as _};
use secrecy::{ExposeSecret as _, SecretString};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// The MAC of `url` and `params` under `auth_token`, before encoding.
fn mac(auth_token: &SecretString, url: &str, params: &[(String, String)]) -> HmacSha1 {
    // HMAC takes a key of any length; this cannot fail.
    let mut mac = HmacSha1::new_from_slice(auth_token.expose_secret().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // By name, then by value: a name may repeat, and Twilio's own
    // libraries sort the values of a repeated name too.
    sorted.sort();
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// The `X-Twilio-Signature` Twilio sends with a POST of `params` to `url`.
pub fn expected_signature(auth_token: &SecretString, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(auth_token, url, params).finalize().into_bytes())
}

/// Whether `signature` (the header as received) is Twilio's for a POST of
/// `params` to `url`, compared in constant time. A header that is not
/// base64 is not a signature.
pub fn is_valid(auth_token: &SecretString, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(given) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    mac(auth_token, url, params).verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twilio's documented example (the "Validating requests" snippets:
    /// auth token `12345`, this URL and these parameters).
    fn example() -> (SecretString, &'static str, Vec<(String, String)>) {
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("To", "+18005551212"),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .to_vec();
        (
            SecretString::from("12345"),
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            params,
        )
    }

    #[test]
    fn twilios_documented_example_signs_and_verifies() {
        let (token, url, mut params) = example();
        assert_eq!(expected_signature(&token, url, &params), "GvWf1cFY/Q7PnoempGyD5oXAezc=");
        // The order parameters arrive in does not matter.
        params.reverse();
        assert!(is_valid(&token, url, &params, "GvWf1cFY/Q7PnoempGyD5oXAezc="));
    }

    #[test]
    fn a_changed_parameter_url_or_token_is_refused() {
        let (token, url, params) = example();
        let signature = expected_signature(&token, url, &params);
        let mut tampered = params.clone();
        tampered[2].1 = "9999".to_owned();
        assert!(!is_valid(&token, url, &tampered, &signature));
        assert!(!is_valid(
            &token,
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &params,
            &signature
        ));
        assert!(!is_valid(&SecretString::from("54321"), url, &params, &signature));
        assert!(!is_valid(&token, url, &params, "not base64!"));
        assert!(!is_valid(&token, url, &params, ""));
    }
}
