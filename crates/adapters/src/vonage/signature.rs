//! Vonage's SMS API signatures, as its "Signing messages" guide and its
//! SDKs' `check_signature` compute them: every parameter but `sig`, sorted
//! by name, written `&name=value` one after the other (with `&` and `=` in
//! values replaced by `_`); then either the `md5hash` method (the MD5 of
//! that text followed by the signature secret) or an HMAC of that text
//! keyed with the secret (`md5`, `sha1`, `sha256`, `sha512`). The `sig`
//! parameter carries the digest in hex, in either case.
//!
//! Delivery receipts and inbound messages are signed only when Vonage has
//! turned signed webhooks on for the account, with the method chosen in
//! its dashboard.

use std::{fmt, str::FromStr};

use md5::{Digest as _, Md5};
use secrecy::{ExposeSecret as _, SecretString};
use subtle::ConstantTimeEq as _;

/// How a Vonage account signs: the dashboard's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VonageSignatureMethod {
    /// `md5hash`: MD5 of the text and the secret. Vonage's default.
    #[default]
    Md5Hash,
    /// `md5`: HMAC-MD5.
    Md5,
    /// `sha1`: HMAC-SHA1.
    Sha1,
    /// `sha256`: HMAC-SHA256.
    Sha256,
    /// `sha512`: HMAC-SHA512.
    Sha512,
}

impl VonageSignatureMethod {
    /// The method's name in Vonage's SDKs and in the settings.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Md5Hash => "md5hash",
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }
}

impl fmt::Display for VonageSignatureMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signature method name that is not one of Vonage's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Vonage signature method (expected md5hash, md5, sha1, sha256 or sha512)")]
pub struct UnknownSignatureMethod;

impl FromStr for VonageSignatureMethod {
    type Err = UnknownSignatureMethod;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "md5hash" => Self::Md5Hash,
            "md5" => Self::Md5,
            "sha1" => Self::Sha1,
            "sha256" => Self::Sha256,
            "sha512" => Self::Sha512,
            _ => return Err(UnknownSignatureMethod),
        })
    }
}

/// The text Vonage signs: `&name=value` for every parameter but `sig`,
/// sorted by name.
fn signed_text(params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().filter(|(name, _)| name != "sig").collect();
    sorted.sort();
    let mut text = String::new();
    for (name, value) in sorted {
        text.push('&');
        text.push_str(name);
        text.push('=');
        text.push_str(&value.replace(['&', '='], "_"));
    }
    text
}

/// One HMAC of `text` under `key`. HMAC takes a key of any length, so
/// building it cannot fail.
fn hmac<M: hmac::Mac + hmac::digest::KeyInit>(key: &[u8], text: &[u8]) -> Vec<u8> {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(text);
    mac.finalize().into_bytes().to_vec()
}

/// The digest `sig` should carry for `params` (raw bytes, before hex).
pub(super) fn expected(method: VonageSignatureMethod, secret: &SecretString, params: &[(String, String)]) -> Vec<u8> {
    let text = signed_text(params);
    let key = secret.expose_secret().as_bytes();
    match method {
        VonageSignatureMethod::Md5Hash => {
            let mut hasher = Md5::new();
            hasher.update(text.as_bytes());
            hasher.update(key);
            hasher.finalize().to_vec()
        }
        VonageSignatureMethod::Md5 => {
            // HMAC-MD5 needs the hmac version whose digest traits md-5 0.11
            // implements.
            let mut mac = <hmac013::Hmac<Md5> as hmac013::KeyInit>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
            hmac013::Mac::update(&mut mac, text.as_bytes());
            hmac013::Mac::finalize(mac).into_bytes().to_vec()
        }
        VonageSignatureMethod::Sha1 => hmac::<hmac::Hmac<sha1::Sha1>>(key, text.as_bytes()),
        VonageSignatureMethod::Sha256 => hmac::<hmac::Hmac<sha2::Sha256>>(key, text.as_bytes()),
        VonageSignatureMethod::Sha512 => hmac::<hmac::Hmac<sha2::Sha512>>(key, text.as_bytes()),
    }
}

/// `bytes` read from hex of either case; `None` if it is not hex.
fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digit = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// Whether `sig` (hex, either case: the SDKs write MD5 in lower case and
/// HMACs in upper case) is the signature of `params`, compared in constant
/// time.
pub(super) fn is_valid(
    method: VonageSignatureMethod,
    secret: &SecretString,
    params: &[(String, String)],
    sig: &str,
) -> bool {
    let Some(given) = from_hex(sig.trim()) else {
        return false;
    };
    let expected = expected(method, secret, params);
    given.len() == expected.len() && bool::from(given.ct_eq(&expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    /// The vector of Vonage's Python SDK tests (`test_signature`): secret
    /// `secret`, `a=1`, `b=2`, `timestamp=1461605396`, `md5hash`.
    #[test]
    fn the_python_sdks_md5hash_vector_verifies() {
        let secret = SecretString::from("secret");
        let params = params(&[("timestamp", "1461605396"), ("b", "2"), ("a", "1")]);
        let sig = "6af838ef94998832dbfc29020b564830";
        assert!(is_valid(VonageSignatureMethod::Md5Hash, &secret, &params, sig));
        assert!(is_valid(
            VonageSignatureMethod::Md5Hash,
            &secret,
            &params,
            &sig.to_uppercase()
        ));
        let mut with_sig = params.clone();
        with_sig.push(("sig".to_owned(), sig.to_owned()));
        assert!(is_valid(VonageSignatureMethod::Md5Hash, &secret, &with_sig, sig));
        assert!(!is_valid(VonageSignatureMethod::Md5, &secret, &params, sig));
        assert!(!is_valid(
            VonageSignatureMethod::Md5Hash,
            &SecretString::from("terces"),
            &params,
            sig
        ));
    }

    #[test]
    fn values_have_ampersands_and_equals_signs_replaced() {
        assert_eq!(
            signed_text(&params(&[("text", "You & Me = Love"), ("a", "x")])),
            "&a=x&text=You _ Me _ Love"
        );
    }

    #[test]
    fn hmac_md5_matches_rfc_2104s_example() {
        // RFC 2104's second test vector (key "Jefe") checks that the hmac
        // and md-5 versions paired for the `md5` method compute HMAC-MD5.
        let mut mac = <hmac013::Hmac<Md5> as hmac013::KeyInit>::new_from_slice(b"Jefe").unwrap();
        hmac013::Mac::update(&mut mac, b"what do ya want for nothing?");
        let tag = hmac013::Mac::finalize(mac).into_bytes();
        assert_eq!(from_hex("750c783e6ab0b503eaa86e310a5db738").unwrap(), tag.to_vec());
    }

    #[test]
    fn method_names_parse_and_others_do_not() {
        for method in [
            VonageSignatureMethod::Md5Hash,
            VonageSignatureMethod::Md5,
            VonageSignatureMethod::Sha1,
            VonageSignatureMethod::Sha256,
            VonageSignatureMethod::Sha512,
        ] {
            assert_eq!(method.as_str().parse(), Ok(method));
        }
        assert_eq!(" SHA256 ".parse(), Ok(VonageSignatureMethod::Sha256));
        assert_eq!("sha384".parse::<VonageSignatureMethod>(), Err(UnknownSignatureMethod));
    }

    #[test]
    fn non_hex_signatures_are_refused() {
        assert_eq!(from_hex("0aFf"), Some(vec![0x0a, 0xff]));
        for text in ["abc", "zz", "0x12", "é0"] {
            assert_eq!(from_hex(text), None, "{text}");
        }
        assert!(!is_valid(
            VonageSignatureMethod::Md5Hash,
            &SecretString::from("secret"),
            &[],
            ""
        ));
    }
}
