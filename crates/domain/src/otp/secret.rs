//! Keyed hashes: the only form in which codes, lookup keys and opaque
//! tokens (access codes, session and reset tokens, application tokens) are
//! ever stored.

use std::{fmt, sync::Arc};

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::code::{OtpCode, Purpose};

/// A keyed hash (HMAC-SHA-256) of a code or lookup key. This is all that is
/// ever stored of either.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash(Vec<u8>);

impl SecretHash {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Compares two hashes in time independent of where they differ.
    pub fn ct_eq(&self, other: &SecretHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// Computes the keyed hashes of codes and lookup keys with a server secret,
/// so a copy of the database alone does not let anyone test codes offline.
#[derive(Clone)]
pub struct SecretHasher {
    key: Arc<SecretBox<Vec<u8>>>,
}

impl fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHasher([redacted])")
    }
}

impl SecretHasher {
    pub fn new(key: Vec<u8>) -> Self {
        Self {
            key: Arc::new(SecretBox::new(Box::new(key))),
        }
    }

    /// A hasher whose key is derived from `master` for one `purpose`, so one
    /// configured secret can key several independent uses.
    pub fn derived(master: &[u8], purpose: &str) -> Self {
        Self::new(Self::new(master.to_vec()).mac("derive", &[purpose.as_bytes()]).0)
    }

    /// A 256-bit key derived from `master` for one `purpose` (e.g. the key
    /// that seals outbox payloads), for adapters that need raw key bytes.
    pub fn derive_key(master: &[u8], purpose: &str) -> SecretBox<[u8; 32]> {
        let derived = Self::new(master.to_vec()).mac("derive-key", &[purpose.as_bytes()]);
        let mut key = [0u8; 32];
        key.copy_from_slice(&derived.0[..32]);
        SecretBox::new(Box::new(key))
    }

    /// HMAC over length-prefixed parts, so that no two different part lists
    /// hash the same input.
    fn mac(&self, domain: &str, parts: &[&[u8]]) -> SecretHash {
        #[expect(clippy::expect_used, reason = "HMAC accepts keys of any length, so this cannot fail")]
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(self.key.expose_secret()).expect("HMAC takes any key length");
        for part in std::iter::once(domain.as_bytes()).chain(parts.iter().copied()) {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        SecretHash(mac.finalize().into_bytes().to_vec())
    }

    /// The stored form of a code, salted with the challenge's lookup hash so
    /// equal codes of different challenges hash differently.
    pub fn code_hash(&self, lookup: &SecretHash, code: &OtpCode) -> SecretHash {
        self.mac("code", &[lookup.as_bytes(), code.expose().as_bytes()])
    }

    /// The stored form of a lookup key for a purpose.
    pub fn lookup_hash(&self, purpose: Purpose, key: &LookupKey) -> SecretHash {
        self.mac("lookup", &[purpose.as_str().as_bytes(), key.as_bytes()])
    }

    /// The stored form of an opaque token (access codes, reset tokens).
    pub fn token_hash(&self, kind: &str, token: &[u8]) -> SecretHash {
        self.mac(kind, &[token])
    }
}

/// What finds a challenge again: a random key handed to the client
/// (pin-auth's `otp_auth_key`) or something the client sends back anyway
/// (a phone number). Redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct LookupKey(Vec<u8>);

impl LookupKey {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for LookupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LookupKey([redacted])")
    }
}
