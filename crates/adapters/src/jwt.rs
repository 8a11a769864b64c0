//! HS256 access tokens with jsonwebtoken.

use std::{fmt, sync::Arc, time::Duration};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};
use phonegate_domain::{
    phone::PhoneNumber,
    ports::{RandomSource, TokenIssuer},
    time::Timestamp,
    token::{AccessClaims, IssuedToken, PhoneSession, TokenError},
    user::UserId,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

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
#[derive(Clone)]
pub struct JwtSettings {
    pub secret: SecretString,
    pub issuer: String,
    pub ttl: Duration,
    /// The key id written into every token's header. Tokens that name any
    /// other key are refused.
    pub key_id: String,
}

impl fmt::Debug for JwtSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSettings")
            .field("secret", &"[redacted]")
            .field("issuer", &self.issuer)
            .field("ttl", &self.ttl)
            .field("key_id", &self.key_id)
            .finish()
    }
}

/// Signs and verifies HS256 JWTs with one shared secret.
pub struct Hs256Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    session_validation: Validation,
    issuer: String,
    ttl: Duration,
    key_id: String,
    random: Arc<dyn RandomSource>,
}

impl fmt::Debug for Hs256Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hs256Tokens")
            .field("issuer", &self.issuer)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Clock skew tolerated on `nbf` between instances, in seconds.
const NBF_LEEWAY_SECONDS: i64 = 30;

impl Hs256Tokens {
    pub fn new(settings: &JwtSettings, random: Arc<dyn RandomSource>) -> Self {
        use secrecy::ExposeSecret as _;
        let secret = settings.secret.expose_secret().as_bytes();
        // Only HS256 is accepted: the allow-list that makes `none` and
        // algorithm-confusion tokens fail before any claim is read.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[settings.issuer.as_str()]);
        // Time checks are done against the domain's clock below, so that
        // tests drive expiry the same way as for codes.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let mut session_validation = validation.clone();
        validation.set_audience(&[ACCESS_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "nbf", "aud"]);
        session_validation.set_audience(&[PHONE_SESSION_AUDIENCE]);
        session_validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            session_validation,
            issuer: settings.issuer.clone(),
            ttl: settings.ttl,
            key_id: settings.key_id.clone(),
            random,
        }
    }
}

impl TokenIssuer for Hs256Tokens {
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
        self.sign(&claims, expires_at)
    }

    fn verify(&self, token: &str, now: Timestamp) -> Result<AccessClaims, TokenError> {
        let claims: Claims = self.decode(token, &self.validation)?;
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
        self.sign(&claims, expires_at)
    }

    fn verify_phone_session(&self, token: &str, now: Timestamp) -> Result<PhoneSession, TokenError> {
        let claims: SessionClaims = self.decode(token, &self.session_validation)?;
        if now.unix_seconds() >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(PhoneSession {
            phone: claims.phone_number,
            nonce: claims.nonce,
            expires_at: Timestamp::from_unix_millis(claims.exp.saturating_mul(1000)),
        })
    }
}

impl Hs256Tokens {
    fn sign<T: Serialize>(&self, claims: &T, expires_at: Timestamp) -> Result<IssuedToken, TokenError> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.key_id.clone());
        let token = encode(&header, claims, &self.encoding).map_err(|error| TokenError::Signing(error.to_string()))?;
        Ok(IssuedToken::new(SecretString::from(token), expires_at))
    }

    /// Checks the header's key id, then the signature and the claims the
    /// validation requires. Time is checked by the callers.
    fn decode<T: serde::de::DeserializeOwned>(&self, token: &str, validation: &Validation) -> Result<T, TokenError> {
        let header = decode_header(token).map_err(|_| TokenError::Invalid)?;
        // Every token phonegate signs names its key; a token naming another
        // key, or none, is refused outright. The key is never taken from the
        // token itself.
        if header.kid.as_deref() != Some(self.key_id.as_str()) {
            return Err(TokenError::Invalid);
        }
        decode::<T>(token, &self.decoding, validation)
            .map(|data| data.claims)
            .map_err(|_| TokenError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;
    use crate::random::OsRandom;

    fn tokens(secret: &str) -> Hs256Tokens {
        Hs256Tokens::new(
            &JwtSettings {
                secret: SecretString::from(secret),
                issuer: "phonegate".into(),
                ttl: Duration::from_secs(1800),
                key_id: "k1".into(),
            },
            Arc::new(OsRandom),
        )
    }

    const NOW: Timestamp = Timestamp::from_unix_millis(1_700_000_000_000);

    #[test]
    fn a_token_verifies_until_it_expires() {
        let tokens = tokens("secret-one");
        let issued = tokens.issue(UserId::new(42), NOW).unwrap();
        let claims = tokens.verify(issued.expose(), NOW).unwrap();
        assert_eq!(claims.user_id, UserId::new(42));
        assert_eq!(claims.token_id.len(), 32);
        let later = NOW.plus(Duration::from_secs(1799));
        assert!(tokens.verify(issued.expose(), later).is_ok());
        let expired = NOW.plus(Duration::from_secs(1800));
        assert_eq!(tokens.verify(issued.expose(), expired), Err(TokenError::Expired));
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let issued = tokens("secret-one").issue(UserId::new(42), NOW).unwrap();
        assert_eq!(
            tokens("secret-two").verify(issued.expose(), NOW),
            Err(TokenError::Invalid)
        );
    }

    fn forge(header: &str, claims: &serde_json::Value, signature: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            signature
        )
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({
            "sub": "42", "user_id": 42, "iat": NOW.unix_seconds(), "nbf": NOW.unix_seconds(),
            "exp": NOW.unix_seconds() + 600, "iss": "phonegate", "aud": "phonegate:access", "jti": "x"
        })
    }

    #[test]
    fn alg_none_is_refused() {
        let token = forge(r#"{"alg":"none","typ":"JWT"}"#, &claims(), "");
        assert_eq!(tokens("s").verify(&token, NOW), Err(TokenError::Invalid));
    }

    #[test]
    fn other_algorithms_are_refused() {
        for alg in ["HS384", "HS512", "RS256", "ES256"] {
            let token = forge(&format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#), &claims(), "AAAA");
            assert_eq!(tokens("s").verify(&token, NOW), Err(TokenError::Invalid), "{alg}");
        }
    }

    fn header_k1() -> Header {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        header
    }

    #[test]
    fn a_token_without_kid_is_refused() {
        let token = encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(b"s"),
        )
        .unwrap();
        assert_eq!(tokens("s").verify(&token, NOW), Err(TokenError::Invalid));
        let token = encode(&header_k1(), &claims(), &EncodingKey::from_secret(b"s")).unwrap();
        assert!(
            tokens("s").verify(&token, NOW).is_ok(),
            "the same token with our kid verifies"
        );
    }

    #[test]
    fn an_unknown_kid_is_refused() {
        let tokens = tokens("s");
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("someone-elses-key".into());
        let token = encode(&header, &claims(), &EncodingKey::from_secret(b"s")).unwrap();
        assert_eq!(tokens.verify(&token, NOW), Err(TokenError::Invalid));
    }

    #[test]
    fn a_wrong_issuer_is_refused() {
        let mut claims = claims();
        claims["iss"] = "someone-else".into();
        let token = encode(&header_k1(), &claims, &EncodingKey::from_secret(b"s")).unwrap();
        assert_eq!(tokens("s").verify(&token, NOW), Err(TokenError::Invalid));
    }

    #[test]
    fn a_token_from_the_future_is_refused() {
        let mut claims = claims();
        claims["nbf"] = (NOW.unix_seconds() + 3600).into();
        claims["exp"] = (NOW.unix_seconds() + 7200).into();
        let token = encode(&header_k1(), &claims, &EncodingKey::from_secret(b"s")).unwrap();
        assert_eq!(tokens("s").verify(&token, NOW), Err(TokenError::NotYetValid));
    }

    #[test]
    fn a_token_missing_exp_is_refused() {
        let mut claims = claims();
        claims.as_object_mut().unwrap().remove("exp");
        let token = encode(&header_k1(), &claims, &EncodingKey::from_secret(b"s")).unwrap();
        assert_eq!(tokens("s").verify(&token, NOW), Err(TokenError::Invalid));
    }

    #[test]
    fn a_session_token_is_not_an_access_token_and_back() {
        let tokens = tokens("s");
        let phone = PhoneNumber::parse_e164("+12063721234").unwrap();
        let expires = NOW.plus(Duration::from_secs(600));
        let session = tokens.issue_phone_session(&phone, "nonce", NOW, expires).unwrap();
        let claims = tokens.verify_phone_session(session.expose(), NOW).unwrap();
        assert_eq!(
            (claims.phone.as_str(), claims.nonce.as_str()),
            ("+12063721234", "nonce")
        );
        assert_eq!(tokens.verify(session.expose(), NOW), Err(TokenError::Invalid));
        let access = tokens.issue(UserId::new(1), NOW).unwrap();
        assert_eq!(
            tokens.verify_phone_session(access.expose(), NOW),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            tokens.verify_phone_session(session.expose(), expires),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn an_access_token_without_audience_is_refused() {
        let mut claims = claims();
        claims.as_object_mut().unwrap().remove("aud");
        let token = encode(&header_k1(), &claims, &EncodingKey::from_secret(b"s")).unwrap();
        assert_eq!(tokens("s").verify(&token, NOW), Err(TokenError::Invalid));
    }

    #[test]
    fn garbage_is_refused() {
        for token in ["", "a.b", "a.b.c", "....", "eyJ.eyJ.sig"] {
            assert_eq!(tokens("s").verify(token, NOW), Err(TokenError::Invalid), "{token}");
        }
    }
}
