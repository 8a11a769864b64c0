//! HS256 access tokens with jsonwebtoken.

use std::{fmt, sync::Arc, time::Duration};

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
};
use phonegate_domain::{
    ports::{RandomSource, TokenIssuer},
    time::Timestamp,
    token::{AccessClaims, IssuedToken, TokenError},
    user::UserId,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The claims phonegate puts in its JWTs.
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
        validation.set_required_spec_claims(&["exp", "iss", "sub", "nbf"]);
        // Time checks are done against the domain's clock below, so that
        // tests drive expiry the same way as for codes.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
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
            jti: jti.iter().map(|b| format!("{b:02x}")).collect(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.key_id.clone());
        let token = encode(&header, &claims, &self.encoding)
            .map_err(|error| TokenError::Signing(error.to_string()))?;
        Ok(IssuedToken::new(SecretString::from(token), expires_at))
    }

    fn verify(&self, token: &str, now: Timestamp) -> Result<AccessClaims, TokenError> {
        let header = decode_header(token).map_err(|_| TokenError::Invalid)?;
        // A token naming a key we do not hold is refused outright; the key
        // is never taken from the token itself.
        if header.kid.as_deref().is_some_and(|kid| kid != self.key_id) {
            return Err(TokenError::Invalid);
        }
        let data = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?;
        let claims = data.claims;
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
        assert_eq!(
            tokens.verify(issued.expose(), expired),
            Err(TokenError::Expired)
        );
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
            "exp": NOW.unix_seconds() + 600, "iss": "phonegate", "jti": "x"
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
            let token = forge(
                &format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#),
                &claims(),
                "AAAA",
            );
            assert_eq!(
                tokens("s").verify(&token, NOW),
                Err(TokenError::Invalid),
                "{alg}"
            );
        }
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
        let token = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"s"),
        )
        .unwrap();
        assert_eq!(tokens("s").verify(&token, NOW), Err(TokenError::Invalid));
    }

    #[test]
    fn a_token_from_the_future_is_refused() {
        let mut claims = claims();
        claims["nbf"] = (NOW.unix_seconds() + 3600).into();
        claims["exp"] = (NOW.unix_seconds() + 7200).into();
        let token = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"s"),
        )
        .unwrap();
        assert_eq!(
            tokens("s").verify(&token, NOW),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn a_token_missing_exp_is_refused() {
        let mut claims = claims();
        claims.as_object_mut().unwrap().remove("exp");
        let token = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"s"),
        )
        .unwrap();
        assert_eq!(tokens("s").verify(&token, NOW), Err(TokenError::Invalid));
    }

    #[test]
    fn garbage_is_refused() {
        for token in ["", "a.b", "a.b.c", "....", "eyJ.eyJ.sig"] {
            assert_eq!(
                tokens("s").verify(token, NOW),
                Err(TokenError::Invalid),
                "{token}"
            );
        }
    }
}
