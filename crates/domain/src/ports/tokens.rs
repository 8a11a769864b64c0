//! Signing and verifying access tokens.

use crate::{
    phone::PhoneNumber,
    time::Timestamp,
    token::{AccessClaims, IssuedToken, PhoneSession, PublicJwk, TokenError},
    user::UserId,
};

/// Signs and verifies access tokens (JWTs). Synchronous: signing is pure
/// computation with a key held in memory.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait TokenIssuer: Send + Sync {
    /// Signs a token for `user`, issued at `now`.
    fn issue(&self, user: UserId, now: Timestamp) -> Result<IssuedToken, TokenError>;

    /// Verifies `token` at `now`: signature first, then algorithm, issuer,
    /// expiry and not-before. Never trusts a key named by the token itself.
    fn verify(&self, token: &str, now: Timestamp) -> Result<AccessClaims, TokenError>;

    /// Signs phone-verify's session token: it names the phone and the
    /// challenge's nonce (never the code) and expires with the challenge. It
    /// is not an access token and is refused as one.
    fn issue_phone_session(
        &self,
        phone: &PhoneNumber,
        nonce: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<IssuedToken, TokenError>;

    /// Verifies a session token from [`TokenIssuer::issue_phone_session`].
    fn verify_phone_session(&self, token: &str, now: Timestamp) -> Result<PhoneSession, TokenError>;

    /// The public keys that verify this issuer's tokens: the current signing
    /// key and every previous key still accepted, when they are asymmetric
    /// (RS256, EdDSA). Shared-secret keys are never listed, so an issuer
    /// with HS256 keys only returns an empty list. Published as a JWKS.
    fn public_keys(&self) -> Vec<PublicJwk>;
}
