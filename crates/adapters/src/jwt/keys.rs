//! The keys tokens are signed and verified with: HS256 shared secrets, and
//! RS256 and EdDSA (Ed25519) keys read from PEM.
//!
//! Every key has an id and exactly one algorithm. A [`SigningKey`] signs new
//! tokens and verifies them; a [`VerifyingKey`] only verifies, which is all a
//! previous key may do (it has no private half to sign with).

use std::fmt;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, crypto,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk},
};
use phonegate_domain::token::{PublicJwk, PublicKeyParams};
use secrecy::{ExposeSecret as _, SecretString};

/// The shortest HS256 secret accepted, in bytes (RFC 7518 §3.2 asks for a
/// key at least as long as the hash output).
pub const MIN_SECRET_BYTES: usize = 32;

/// The shortest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// The algorithms a key can have. A token is only ever checked with the
/// algorithm of the key its `kid` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwtAlgorithm {
    /// HMAC-SHA-256 with a shared secret. Never published.
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// Ed25519 signatures.
    EdDsa,
}

impl JwtAlgorithm {
    /// The JWS name, as in a token's `alg` header.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Rs256 => "RS256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub(super) fn jose(self) -> Algorithm {
        match self {
            Self::Hs256 => Algorithm::HS256,
            Self::Rs256 => Algorithm::RS256,
            Self::EdDsa => Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key cannot be used. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtKeyError {
    #[error("the key id is empty")]
    EmptyKeyId,
    #[error("an HS256 secret must be at least {MIN_SECRET_BYTES} bytes long")]
    SecretTooShort,
    #[error("{0}")]
    WrongPemKind(String),
    #[error("not a usable {algorithm} private key: {reason}")]
    BadPrivateKey { algorithm: JwtAlgorithm, reason: String },
    #[error("not a usable {algorithm} public key: {reason}")]
    BadPublicKey { algorithm: JwtAlgorithm, reason: String },
    #[error("the RSA key has {bits} bits; at least {MIN_RSA_BITS} are required")]
    RsaKeyTooShort { bits: usize },
    #[error("the key failed its signing self-check: {0}")]
    SelfCheck(String),
    #[error("the key id {0:?} is used by more than one key")]
    DuplicateKeyId(String),
}

/// A key that verifies tokens: its id, its one algorithm, the material that
/// checks signatures and, for asymmetric keys, its public JWK.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: String,
    algorithm: JwtAlgorithm,
    decoding: DecodingKey,
    /// `None` for HS256: a shared secret is never published.
    public: Option<PublicJwk>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// An HS256 key that verifies with `secret` (at least
    /// [`MIN_SECRET_BYTES`] bytes).
    pub fn hs256(kid: &str, secret: &SecretString) -> Result<Self, JwtKeyError> {
        let kid = key_id(kid)?;
        let secret = secret.expose_secret().as_bytes();
        if secret.len() < MIN_SECRET_BYTES {
            return Err(JwtKeyError::SecretTooShort);
        }
        Ok(Self {
            kid,
            algorithm: JwtAlgorithm::Hs256,
            decoding: DecodingKey::from_secret(secret),
            public: None,
        })
    }

    /// A verify-only RS256 or EdDSA key from a PEM public key
    /// (`PUBLIC KEY`, or `RSA PUBLIC KEY` for RSA). A private key is refused:
    /// a key that only verifies has no business holding one.
    pub fn public_pem(kid: &str, algorithm: JwtAlgorithm, pem: &[u8]) -> Result<Self, JwtKeyError> {
        let kid = key_id(kid)?;
        let bad = |reason: String| JwtKeyError::BadPublicKey { algorithm, reason };
        match pem_label(pem).as_deref() {
            Some("PUBLIC KEY") => {}
            Some("RSA PUBLIC KEY") if algorithm == JwtAlgorithm::Rs256 => {}
            Some(label) if label.contains("PRIVATE KEY") => {
                return Err(JwtKeyError::WrongPemKind(format!(
                    "expected a PEM public key but found a {label}; extract its public half with \
                     `openssl pkey -in private.pem -pubout -out public.pem`"
                )));
            }
            Some(label) => return Err(bad(format!("unsupported PEM block {label:?}"))),
            None => return Err(bad("no PEM block found".into())),
        }
        let (decoding, jwk) = match algorithm {
            JwtAlgorithm::Hs256 => return Err(bad("HS256 keys are secrets, not PEM files".into())),
            JwtAlgorithm::Rs256 => {
                let decoding = DecodingKey::from_rsa_pem(pem).map_err(|error| bad(error.to_string()))?;
                let jwk = Jwk::from_decoding_key(&decoding, Some(Algorithm::RS256))
                    .map_err(|error| bad(error.to_string()))?;
                (decoding, jwk)
            }
            JwtAlgorithm::EdDsa => {
                let decoding = DecodingKey::from_ed_pem(pem).map_err(|error| bad(error.to_string()))?;
                let jwk = Jwk::from_decoding_key(&decoding, Some(Algorithm::EdDSA))
                    .map_err(|error| bad(error.to_string()))?;
                (decoding, jwk)
            }
        };
        let public = public_jwk(&kid, algorithm, &jwk).map_err(bad)?;
        check_strength(&public)?;
        Ok(Self {
            kid,
            algorithm,
            decoding,
            public: Some(public),
        })
    }

    /// The key id tokens name in their header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    /// The public JWK of an asymmetric key; `None` for HS256.
    pub fn public_jwk(&self) -> Option<&PublicJwk> {
        self.public.as_ref()
    }

    pub(super) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// The key that signs new tokens, with the verifying half that checks them.
#[derive(Clone)]
pub struct SigningKey {
    encoding: EncodingKey,
    verifying: VerifyingKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.verifying.kid)
            .field("algorithm", &self.verifying.algorithm)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// An HS256 key signing with `secret` (at least [`MIN_SECRET_BYTES`]
    /// bytes).
    pub fn hs256(kid: &str, secret: &SecretString) -> Result<Self, JwtKeyError> {
        let verifying = VerifyingKey::hs256(kid, secret)?;
        let encoding = EncodingKey::from_secret(secret.expose_secret().as_bytes());
        Ok(Self { encoding, verifying })
    }

    /// An RS256 or EdDSA key from a PEM private key: PKCS#8 (`PRIVATE KEY`,
    /// as `openssl genpkey` writes) or, for RSA, PKCS#1 (`RSA PRIVATE KEY`).
    /// The public half is derived from it, and the pair is checked by
    /// signing and verifying once, so a bad key fails at start rather than
    /// at the first sign-in.
    pub fn private_pem(kid: &str, algorithm: JwtAlgorithm, pem: &[u8]) -> Result<Self, JwtKeyError> {
        let kid = key_id(kid)?;
        let bad = |reason: String| JwtKeyError::BadPrivateKey { algorithm, reason };
        match pem_label(pem).as_deref() {
            Some("PRIVATE KEY") => {}
            Some("RSA PRIVATE KEY") if algorithm == JwtAlgorithm::Rs256 => {}
            Some("ENCRYPTED PRIVATE KEY") => {
                return Err(bad(
                    "encrypted PEM keys are not supported; store it decrypted with restricted file permissions".into(),
                ));
            }
            Some(label) if label.contains("PUBLIC KEY") => {
                return Err(JwtKeyError::WrongPemKind(format!(
                    "expected a PEM private key but found a {label}"
                )));
            }
            Some(label) => return Err(bad(format!("unsupported PEM block {label:?}"))),
            None => return Err(bad("no PEM block found".into())),
        }
        let encoding = match algorithm {
            JwtAlgorithm::Hs256 => return Err(bad("HS256 keys are secrets, not PEM files".into())),
            JwtAlgorithm::Rs256 => EncodingKey::from_rsa_pem(pem),
            JwtAlgorithm::EdDsa => EncodingKey::from_ed_pem(pem),
        }
        .map_err(|error| bad(error.to_string()))?;
        let jwk = Jwk::from_encoding_key(&encoding, algorithm.jose()).map_err(|error| bad(error.to_string()))?;
        let public = public_jwk(&kid, algorithm, &jwk).map_err(bad)?;
        check_strength(&public)?;
        // Tokens are verified with the public half, exactly as published in
        // the JWKS, so what other services verify with is what we verify with.
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|error| bad(error.to_string()))?;
        let key = Self {
            encoding,
            verifying: VerifyingKey {
                kid,
                algorithm,
                decoding,
                public: Some(public),
            },
        };
        key.self_check()?;
        Ok(key)
    }

    /// Signs a fixed message and verifies the signature with the public half.
    fn self_check(&self) -> Result<(), JwtKeyError> {
        const MESSAGE: &[u8] = b"phonegate signing key self-check";
        let algorithm = self.verifying.algorithm.jose();
        let signature = crypto::sign(MESSAGE, &self.encoding, algorithm)
            .map_err(|error| JwtKeyError::SelfCheck(error.to_string()))?;
        match crypto::verify(&signature, MESSAGE, &self.verifying.decoding, algorithm) {
            Ok(true) => Ok(()),
            Ok(false) => Err(JwtKeyError::SelfCheck(
                "the public half does not verify its signature".into(),
            )),
            Err(error) => Err(JwtKeyError::SelfCheck(error.to_string())),
        }
    }

    pub fn kid(&self) -> &str {
        &self.verifying.kid
    }

    pub fn algorithm(&self) -> JwtAlgorithm {
        self.verifying.algorithm
    }

    /// The half that verifies this key's tokens.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }

    pub(super) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }
}

fn key_id(kid: &str) -> Result<String, JwtKeyError> {
    if kid.trim().is_empty() {
        return Err(JwtKeyError::EmptyKeyId);
    }
    Ok(kid.to_owned())
}

/// The label of the first PEM block (`PRIVATE KEY` for
/// `-----BEGIN PRIVATE KEY-----`), to refuse the wrong kind of key with a
/// clear message before parsing.
fn pem_label(pem: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(pem).ok()?;
    text.lines().find_map(|line| {
        line.trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
            .map(str::to_owned)
    })
}

/// The domain's view of a JWK that jsonwebtoken derived from a key.
fn public_jwk(kid: &str, algorithm: JwtAlgorithm, jwk: &Jwk) -> Result<PublicJwk, String> {
    let params = match (&jwk.algorithm, algorithm) {
        (AlgorithmParameters::RSA(rsa), JwtAlgorithm::Rs256) => PublicKeyParams::Rsa {
            n: rsa.n.clone(),
            e: rsa.e.clone(),
        },
        (AlgorithmParameters::OctetKeyPair(okp), JwtAlgorithm::EdDsa) if okp.curve == EllipticCurve::Ed25519 => {
            PublicKeyParams::Okp {
                crv: "Ed25519".into(),
                x: okp.x.clone(),
            }
        }
        _ => return Err(format!("the key is not an {algorithm} key")),
    };
    Ok(PublicJwk {
        kid: kid.to_owned(),
        alg: algorithm.name().to_owned(),
        params,
    })
}

/// Refuses RSA moduli shorter than [`MIN_RSA_BITS`].
fn check_strength(public: &PublicJwk) -> Result<(), JwtKeyError> {
    if let PublicKeyParams::Rsa { n, .. } = &public.params {
        let bytes = URL_SAFE_NO_PAD.decode(n).map_err(|_| JwtKeyError::BadPublicKey {
            algorithm: JwtAlgorithm::Rs256,
            reason: "the modulus is not base64url".into(),
        })?;
        let bits = modulus_bits(&bytes);
        if bits < MIN_RSA_BITS {
            return Err(JwtKeyError::RsaKeyTooShort { bits });
        }
    }
    Ok(())
}

/// The bit length of a big-endian unsigned integer.
fn modulus_bits(bytes: &[u8]) -> usize {
    let Some(first) = bytes.iter().position(|&b| b != 0) else {
        return 0;
    };
    let significant = bytes.len() - first;
    significant * 8 - bytes[first].leading_zeros() as usize
}
