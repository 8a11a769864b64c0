//! Access tokens handed to clients.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::{time::Timestamp, user::UserId};

/// A signed access token (a JWT) with its expiry. The token itself is a
/// bearer credential: it is only exposed to be written into a response.
pub struct IssuedToken {
    token: SecretString,
    pub expires_at: Timestamp,
}

impl IssuedToken {
    pub fn new(token: SecretString, expires_at: Timestamp) -> Self {
        Self { token, expires_at }
    }

    /// The token text, for the response body and nothing else.
    pub fn expose(&self) -> &str {
        self.token.expose_secret()
    }
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What a verified access token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    pub user_id: UserId,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// The token's unique id (`jti`), for revocation lists.
    pub token_id: String,
}

/// Why a presented token is not accepted. Deliberately coarse: the client is
/// told only that it is unauthorized, and logs say which check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed or its signature does not verify")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token could not be signed: {0}")]
    Signing(String),
}

/// What a verified phone-verify session token says. `Debug` hides the
/// nonce, which with the code finds and passes the challenge.
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneSession {
    /// The E.164 number the code was sent to.
    pub phone: String,
    /// Finds the challenge (its lookup key, base64).
    pub nonce: String,
    pub expires_at: Timestamp,
}

impl fmt::Debug for PhoneSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhoneSession")
            .field("phone", &self.phone)
            .field("nonce", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A public key that verifies phonegate's tokens, as a JSON Web Key
/// (RFC 7517, with RFC 7518's RSA and RFC 8037's Ed25519 parameters), so
/// that other services can verify tokens without sharing a secret. Only
/// public material: shared-secret (HS256) keys are never listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicJwk {
    /// The key id tokens name in their header's `kid`.
    pub kid: String,
    /// The JWS algorithm the key verifies (`RS256` or `EdDSA`).
    pub alg: String,
    /// The key type and its public parameters.
    pub params: PublicKeyParams,
}

/// The public parameters of a [`PublicJwk`], base64url without padding as
/// the JWK specifications write them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKeyParams {
    /// `kty: "RSA"`: the modulus `n` and the public exponent `e`.
    Rsa { n: String, e: String },
    /// `kty: "OKP"`: the curve `crv` (`Ed25519`) and the public key `x`.
    Okp { crv: String, x: String },
}

impl PublicJwk {
    /// The JWK `kty` of this key.
    pub fn kty(&self) -> &'static str {
        match self.params {
            PublicKeyParams::Rsa { .. } => "RSA",
            PublicKeyParams::Okp { .. } => "OKP",
        }
    }
}
