//! JWTs with jsonwebtoken: access tokens and phone-verify session tokens,
//! signed with one current key and verified with it or any previous key.
//!
//! Keys rotate without logging anyone out: a new key becomes current and
//! signs every new token, while the old one moves to the previous keys and
//! keeps verifying the tokens it signed until they expire. A token is
//! checked only with the configured key its header's `kid` names (an
//! unknown or missing `kid` is refused; a key is never taken from the token)
//! and only with that key's one algorithm, so `none` and algorithm-confusion
//! tokens (an HS256 "signature" made with an RSA public key) fail before any
//! claim is read. Each kind of token names its kind in `typ` and `aud`, and
//! is refused where another kind is expected by either (see `typ.rs`).

use std::{fmt, sync::Arc, time::Duration};

use jsonwebtoken::{Header, Validation, decode, decode_header, encode};
use phonegate_domain::{
    phone::PhoneNumber,
    ports::{RandomSource, TokenIssuer},
    time::Timestamp,
    token::{AccessClaims, IssuedToken, PhoneSession, PublicJwk, TokenError},
    user::UserId,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

mod keys;
mod typ;

pub use keys::{JwtAlgorithm, JwtKeyError, MIN_RSA_BITS, MIN_SECRET_BYTES, SigningKey, VerifyingKey};
pub use typ::LegacyTokens;
use typ::{ACCESS_TYP, PHONE_SESSION_TYP, Typ};

/// The audience of access tokens. Every token names what it is for, so a
/// token of one kind is never accepted as another.
const ACCESS_AUDIENCE: &str = "phonegate:access";
/// The audience of phone-verify session tokens.
const PHONE_SESSION_AUDIENCE: &str = "phonegate:phone-verify";

/// The claims of a phone-verify session token: the phone and the nonce that
/// finds the challenge, never the code. Deliberately not `Debug`.
#[derive(Serialize, Deserialize)]
struct SessionClaims {
    phone_number: String,
    nonce: String,
    iat: i64,
    exp: i64,
    iss: String,
    aud: String,
}

/// The claims phonegate puts in its access tokens.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id, as a string (RFC 7519 `sub` is a string).
    sub: String,
    /// The user id again as a number, for clients that read `user_id`.
    user_id: i64,
    iat: i64,
    nbf: i64,
    exp: i64,
    iss: String,
    aud: String,
    jti: String,
}

/// Settings of the token issuer.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub issuer: String,
    /// Lifetime of access tokens.
    pub ttl: Duration,
    /// Signs every new token (its `kid` goes into the header) and verifies.
    pub current: SigningKey,
    /// Verify only: the keys that signed tokens which may still be alive.
    pub previous: Vec<VerifyingKey>,
    /// Tokens from before explicit typing, accepted for a while after the
    /// upgrade; `None` refuses them.
    pub legacy: Option<LegacyTokens>,
}

/// A key that verifies, with the validations of each kind of token, which
/// allow exactly that key's algorithm.
struct Verifier {
    key: VerifyingKey,
    access: Validation,
    session: Validation,
}

impl Verifier {
    fn new(key: VerifyingKey, issuer: &str) -> Self {
        // The allow-list holds this key's one algorithm: `none` and every
        // other algorithm fail before any claim is read.
        let mut validation = Validation::new(key.algorithm().jose());
        validation.algorithms = vec![key.algorithm().jose()];
        validation.set_issuer(&[issuer]);
        // Time checks are done against the domain's clock below, so that
        // tests drive expiry the same way as for codes.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let mut access = validation.clone();
        access.set_audience(&[ACCESS_AUDIENCE]);
        access.set_required_spec_claims(&["exp", "iss", "sub", "nbf", "aud"]);
        let mut session = validation;
        session.set_audience(&[PHONE_SESSION_AUDIENCE]);
        session.set_required_spec_claims(&["exp", "iss", "aud"]);
        Self { key, access, session }
    }

    /// Checks the token's `alg`, signature and claims with this key.
    fn check<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        alg: jsonwebtoken::Algorithm,
        kind: Kind,
    ) -> Result<T, TokenError> {
        if alg != self.key.algorithm().jose() {
            return Err(TokenError::Invalid);
        }
        let validation = match kind {
            Kind::Access => &self.access,
            Kind::Session => &self.session,
        };
        decode::<T>(token, self.key.decoding(), validation)
            .map(|data| data.claims)
            .map_err(|_| TokenError::Invalid)
    }
}

/// Signs JWTs with the current key and verifies them with the key their
/// `kid` names, among the current and previous keys.
pub struct JwtTokens {
    current: SigningKey,
    /// The current key's verifier first, then the previous keys'.
    verifiers: Vec<Verifier>,
    /// The raw master secret's verifier, for legacy tokens only.
    legacy_master: Option<Verifier>,
    legacy_until: Option<Timestamp>,
    issuer: String,
    ttl: Duration,
    random: Arc<dyn RandomSource>,
}

impl fmt::Debug for JwtTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtTokens")
            .field("issuer", &self.issuer)
            .field("current", &self.current)
            .field(
                "previous",
                &self.verifiers.iter().skip(1).map(|v| &v.key).collect::<Vec<_>>(),
            )
            .field("legacy_until", &self.legacy_until)
            .finish_non_exhaustive()
    }
}

/// Clock skew tolerated on `nbf` between instances, in seconds.
const NBF_LEEWAY_SECONDS: i64 = 30;

/// Which kind of token is being verified.
#[derive(Clone, Copy)]
enum Kind {
    Access,
    Session,
}

impl Kind {
    /// The `typ` this kind of token carries.
    const fn typ(self) -> &'static str {
        match self {
            Self::Access => ACCESS_TYP,
            Self::Session => PHONE_SESSION_TYP,
        }
    }
}

impl JwtTokens {
    /// Refuses two keys with one id: a `kid` must name exactly one key.
    pub fn new(settings: JwtSettings, random: Arc<dyn RandomSource>) -> Result<Self, JwtKeyError> {
        let JwtSettings {
            issuer,
            ttl,
            current,
            previous,
            legacy,
        } = settings;
        let mut verifiers = vec![Verifier::new(current.verifying_key().clone(), &issuer)];
        for key in previous {
            if verifiers.iter().any(|verifier| verifier.key.kid() == key.kid()) {
                return Err(JwtKeyError::DuplicateKeyId(key.kid().to_owned()));
            }
            verifiers.push(Verifier::new(key, &issuer));
        }
        let legacy_until = legacy.as_ref().map(|legacy| legacy.until);
        let legacy_master = legacy
            .and_then(|legacy| legacy.master)
            .map(|key| Verifier::new(key, &issuer));
        Ok(Self {
            current,
            verifiers,
            legacy_master,
            legacy_until,
            issuer,
            ttl,
            random,
        })
    }

    fn sign<T: Serialize>(&self, kind: Kind, claims: &T, expires_at: Timestamp) -> Result<IssuedToken, TokenError> {
        let mut header = Header::new(self.current.algorithm().jose());
        header.typ = Some(kind.typ().to_owned());
        header.kid = Some(self.current.kid().to_owned());
        let token =
            encode(&header, claims, self.current.encoding()).map_err(|error| TokenError::Signing(error.to_string()))?;
        Ok(IssuedToken::new(SecretString::from(token), expires_at))
    }

    /// Requires the header's `typ` to be `kind`'s (or, until the legacy
    /// tokens' time is up, the generic `JWT`), picks the key the header's
    /// `kid` names among the configured keys, requires the token's `alg` to
    /// be that key's algorithm, then checks the signature and the claims the
    /// validation requires. A legacy token that fails with the configured
    /// key is tried with the raw master secret, when there is one. Expiry is
    /// checked by the callers.
    fn decode<T: serde::de::DeserializeOwned>(&self, token: &str, kind: Kind, now: Timestamp) -> Result<T, TokenError> {
        // `none` and unknown algorithms fail here already: jsonwebtoken's
        // header has no such algorithm.
        let header = decode_header(token).map_err(|_| TokenError::Invalid)?;
        let legacy = match typ::classify(header.typ.as_deref(), kind.typ()) {
            Typ::Expected => false,
            Typ::Legacy if self.legacy_until.is_some_and(|until| now < until) => true,
            Typ::Legacy | Typ::Wrong => return Err(TokenError::Invalid),
        };
        let kid = header.kid.as_deref().ok_or(TokenError::Invalid)?;
        let configured = self.verifiers.iter().find(|verifier| verifier.key.kid() == kid);
        let master = self
            .legacy_master
            .as_ref()
            .filter(|master| legacy && master.key.kid() == kid);
        let mut result = Err(TokenError::Invalid);
        for verifier in configured.into_iter().chain(master) {
            result = verifier.check(token, header.alg, kind);
            if result.is_ok() {
                break;
            }
        }
        result
    }
}

impl TokenIssuer for JwtTokens {
    fn issue(&self, user: UserId, now: Timestamp) -> Result<IssuedToken, TokenError> {
        let expires_at = now.plus(self.ttl);
        let mut jti = [0u8; 16];
        self.random.fill(&mut jti);
        let claims = Claims {
            sub: user.get().to_string(),
            user_id: user.get(),
            iat: now.unix_seconds(),
            nbf: now.unix_seconds(),
            exp: expires_at.unix_seconds(),
            iss: self.issuer.clone(),
            aud: ACCESS_AUDIENCE.to_owned(),
            jti: jti.iter().map(|b| format!("{b:02x}")).collect(),
        };
        self.sign(Kind::Access, &claims, expires_at)
    }

    fn verify(&self, token: &str, now: Timestamp) -> Result<AccessClaims, TokenError> {
        let claims: Claims = self.decode(token, Kind::Access, now)?;
        if claims.sub != claims.user_id.to_string() {
            return Err(TokenError::Invalid);
        }
        let now_s = now.unix_seconds();
        if now_s >= claims.exp {
            return Err(TokenError::Expired);
        }
        if claims.nbf > now_s + NBF_LEEWAY_SECONDS {
            return Err(TokenError::NotYetValid);
        }
        Ok(AccessClaims {
            user_id: UserId::new(claims.user_id),
            issued_at: Timestamp::from_unix_millis(claims.iat.saturating_mul(1000)),
            expires_at: Timestamp::from_unix_millis(claims.exp.saturating_mul(1000)),
            token_id: claims.jti,
        })
    }

    fn issue_phone_session(
        &self,
        phone: &PhoneNumber,
        nonce: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<IssuedToken, TokenError> {
        let claims = SessionClaims {
            phone_number: phone.as_str().to_owned(),
            nonce: nonce.to_owned(),
            iat: now.unix_seconds(),
            // Rounded up, so the token does not die before its challenge.
            exp: (expires_at.unix_millis() + 999).div_euclid(1000),
            iss: self.issuer.clone(),
            aud: PHONE_SESSION_AUDIENCE.to_owned(),
        };
        self.sign(Kind::Session, &claims, expires_at)
    }

    fn verify_phone_session(&self, token: &str, now: Timestamp) -> Result<PhoneSession, TokenError> {
        let claims: SessionClaims = self.decode(token, Kind::Session, now)?;
        if now.unix_seconds() >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(PhoneSession {
            phone: claims.phone_number,
            nonce: claims.nonce,
            expires_at: Timestamp::from_unix_millis(claims.exp.saturating_mul(1000)),
        })
    }

    fn public_keys(&self) -> Vec<PublicJwk> {
        self.verifiers
            .iter()
            .filter_map(|verifier| verifier.key.public_jwk().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests;
