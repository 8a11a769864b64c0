//! The master secret `auth.jwt_secret` and the HS256 JWT key
//! `auth.jwt_hs256_key`, kept apart.
//!
//! The master secret is the root of the keys that protect stored data: the
//! hashing key of codes, lookup keys and stored tokens, and the sealing key
//! of outbox rows, each derived under its own label. It signs nothing and
//! no other service needs it. The HS256 key, which the services verifying
//! phonegate's JWTs share, is a setting of its own: a service holding it
//! can derive none of the master's keys, and a JWT is no oracle for
//! guessing the master. Only in development, when it is unset, is the
//! HS256 key derived from the master (HKDF-SHA256 under its own label).
//!
//! The labels below are part of the stored data's format: changing one
//! makes every stored hash or sealed row unreadable. The tests pin them.

use std::{collections::BTreeSet, time::Duration};

use anyhow::{Context as _, bail};
use hkdf::Hkdf;
use phonegate_adapters::{
    jwt::{LegacyTokens, MIN_SECRET_BYTES, VerifyingKey},
    random::OsRandom,
    sql::SqlStore,
};
use phonegate_domain::{
    otp::SecretHasher,
    ports::{Clock, RandomSource as _},
    time::Timestamp,
};
use secrecy::{ExposeSecret as _, SecretBox, SecretString};
use sha2::Sha256;

use crate::settings::{JwtAlgorithmSetting, Settings};

/// The shortest master secret accepted, in characters.
const MIN_MASTER_CHARS: usize = 32;

/// The fewest distinct characters a configured secret may have. Hex has
/// only 16 symbols, and a random 32-digit hex secret (`openssl rand -hex
/// 16`, as many deployments made theirs) shows about 14 of them, fewer than
/// 8 about once in a million; so the floor is 8, and what catches a secret
/// made by hand is the repetition check beside it. A master secret cannot
/// be changed (stored hashes depend on it), so a rule that refused some
/// random secrets would strand the deployments that have one.
const MIN_DISTINCT_CHARS: usize = 8;

/// The HKDF `info` of the development HS256 key: a label of its own, so
/// that it is unrelated to the hashing and sealing keys.
const HS256_KEY_LABEL: &[u8] = b"phonegate jwt hs256 v1";

/// The label of the key that hashes codes, lookup keys and stored tokens.
const HASHING_LABEL: &str = "phonegate otp hashing v1";

/// The label of the key that seals outbox payloads.
const SEALING_LABEL: &str = "phonegate outbox sealing v1";

/// The `server_secrets` row holding when this database first ran a version
/// with explicit token types and a separate HS256 key (Unix milliseconds).
const LEGACY_TOKENS_SINCE: &str = "jwt_legacy_tokens_since";

/// The hasher of codes, lookup keys and stored tokens: keyed by the master
/// secret under its own label, never by a JWT key, so rotating JWT keys
/// leaves every stored hash valid.
pub(crate) fn hasher(master: &SecretString) -> SecretHasher {
    SecretHasher::derived(master.expose_secret().as_bytes(), HASHING_LABEL)
}

/// The key that seals outbox payloads (codes, reset links), the same on
/// every instance sharing the master secret.
pub(crate) fn sealing_key(master: &SecretString) -> SecretBox<[u8; 32]> {
    SecretHasher::derive_key(master.expose_secret().as_bytes(), SEALING_LABEL)
}

/// Refuses a configured secret that looks made by hand rather than drawn
/// at random, naming `setting`: fewer than 8 distinct characters
/// (`aaaa…`), or one pattern repeated end to end (`changeme-changeme-…`).
fn check_variety(setting: &str, secret: &str) -> anyhow::Result<()> {
    let chars: Vec<char> = secret.chars().collect();
    let distinct = chars.iter().collect::<BTreeSet<_>>().len();
    let repeated = (1..=chars.len() / 2).any(|period| chars.iter().zip(&chars[period..]).all(|(a, b)| a == b));
    if distinct >= MIN_DISTINCT_CHARS && !repeated {
        return Ok(());
    }
    bail!(
        "{setting} has too little variety (fewer than {MIN_DISTINCT_CHARS} distinct characters, or a \
         repeated pattern): use a random value, e.g. from `openssl rand -base64 48`"
    )
}

/// The configured master secret, checked: at least 32 characters, with
/// variety. `None` when it is not set.
pub(crate) fn configured_master(settings: &Settings) -> anyhow::Result<Option<SecretString>> {
    let Some(secret) = &settings.auth.jwt_secret else {
        return Ok(None);
    };
    if secret.expose_secret().chars().count() < MIN_MASTER_CHARS {
        bail!("auth.jwt_secret must be at least {MIN_MASTER_CHARS} characters long");
    }
    check_variety("auth.jwt_secret", secret.expose_secret())?;
    Ok(Some(secret.clone()))
}

/// The master secret `auth.jwt_secret`: configured, or in development
/// generated once per database (and loudly warned about).
pub(crate) async fn master_secret(
    settings: &Settings,
    store: &SqlStore,
    clock: &dyn Clock,
) -> anyhow::Result<SecretString> {
    if let Some(secret) = configured_master(settings)? {
        return Ok(secret);
    }
    if !settings.is_development() {
        bail!("auth.jwt_secret is required when a real SMS or mail provider is configured");
    }
    let mut fresh = vec![0u8; 32];
    OsRandom.fill(&mut fresh);
    let fresh = fresh
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into_bytes();
    let secret = store
        .secret_or_insert("dev_jwt_secret", fresh, clock.now())
        .await
        .context("reading the development JWT secret")?;
    tracing::warn!(
        "auth.jwt_secret is not set: using a random secret stored in this development database; \
         set auth.jwt_secret before deploying"
    );
    let secret = String::from_utf8(secret).context("the stored development JWT secret is not text")?;
    Ok(SecretString::from(secret))
}

/// The development HS256 key: HKDF-SHA256 of the master secret (no salt,
/// `info` = `phonegate jwt hs256 v1`, 32 bytes), written as 64 lowercase
/// hex digits, which are the HMAC key.
fn derive_hs256_key(master: &SecretString) -> SecretString {
    let mut okm = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's limit of 255 × 32, so this cannot fail.
    Hkdf::<Sha256>::new(None, master.expose_secret().as_bytes())
        .expand(HS256_KEY_LABEL, &mut okm)
        .expect("HKDF-SHA256 yields 32 bytes");
    let hex: String = okm.iter().map(|b| format!("{b:02x}")).collect();
    okm.fill(0);
    SecretString::from(hex)
}

/// Where the HS256 key comes from.
pub(crate) enum Hs256Key {
    /// `auth.jwt_hs256_key`.
    Configured(SecretString),
    /// Derived from the master secret (development only).
    Derived(SecretString),
    /// The current key is RS256 or EdDSA.
    Unused,
}

impl Hs256Key {
    /// The key, when the current key is HS256.
    pub(crate) fn key(&self) -> Option<&SecretString> {
        match self {
            Self::Configured(key) | Self::Derived(key) => Some(key),
            Self::Unused => None,
        }
    }

    /// How `config check` reports it.
    pub(crate) const fn describe(&self) -> &'static str {
        match self {
            Self::Configured(_) => "set",
            Self::Derived(_) => "derived from auth.jwt_secret (development only)",
            Self::Unused => "unused",
        }
    }
}

/// The HS256 key: `auth.jwt_hs256_key`, checked (at least 32 bytes, with
/// variety, not the master secret), required with HS256 outside
/// development and derived from `master` in development when unset.
pub(crate) fn hs256_key(settings: &Settings, master: &SecretString) -> anyhow::Result<Hs256Key> {
    let auth = &settings.auth;
    if auth.jwt_algorithm != JwtAlgorithmSetting::Hs256 {
        // Refused by name where the current key is read (`jwt_keys`).
        return Ok(Hs256Key::Unused);
    }
    match &auth.jwt_hs256_key {
        Some(key) => {
            let text = key.expose_secret();
            if text.len() < MIN_SECRET_BYTES {
                bail!("auth.jwt_hs256_key: an HS256 secret must be at least {MIN_SECRET_BYTES} bytes long");
            }
            check_variety("auth.jwt_hs256_key", text)?;
            if text == master.expose_secret() {
                bail!(
                    "auth.jwt_hs256_key must not be auth.jwt_secret: the services that verify JWTs hold \
                     the HS256 key, and must not hold the master secret"
                );
            }
            Ok(Hs256Key::Configured(key.clone()))
        }
        None if settings.is_development() => Ok(Hs256Key::Derived(derive_hs256_key(master))),
        None => bail!(
            "auth.jwt_hs256_key is required with auth.jwt_algorithm = \"HS256\" when a real SMS or mail \
             provider is configured: the key that services verifying phonegate's JWTs share, at least \
             {MIN_SECRET_BYTES} bytes and not auth.jwt_secret (e.g. `openssl rand -base64 48`)"
        ),
    }
}

/// Warnings about previous keys that are the master secret: tokens it
/// signed before the upgrade verify without that (see [`legacy_tokens`]),
/// and while it is listed it stays a JWT key.
pub(crate) fn master_reuse_warnings(settings: &Settings, master: &SecretString) -> Vec<String> {
    settings
        .auth
        .jwt_previous_keys
        .iter()
        .enumerate()
        .filter(|(_, key)| {
            key.secret
                .as_ref()
                .is_some_and(|secret| secret.expose_secret() == master.expose_secret())
        })
        .map(|(index, key)| {
            format!(
                "auth.jwt_previous_keys[{index}] (kid {:?}) is auth.jwt_secret: remove it once the tokens it \
                 signed have expired, so that the master secret is no JWT key",
                key.kid
            )
        })
        .collect()
}

/// Tokens from before the upgrade: accepted for one token lifetime (the
/// longer of `auth.jwt_ttl_seconds` and `otp.phone_verify.ttl_seconds`)
/// after this database first ran the upgraded version, with the raw master
/// secret verifying (never signing) the HS256 tokens it signed then. The
/// start is kept in the database, so restarting does not extend the window.
pub(crate) async fn legacy_tokens(
    settings: &Settings,
    store: &SqlStore,
    master: &SecretString,
    now: Timestamp,
) -> anyhow::Result<LegacyTokens> {
    let since = store
        .secret_or_insert(LEGACY_TOKENS_SINCE, now.unix_millis().to_string().into_bytes(), now)
        .await
        .context("reading when this database was upgraded to separate JWT keys")?;
    let since: i64 = std::str::from_utf8(&since)
        .ok()
        .and_then(|text| text.parse().ok())
        .with_context(|| format!("the stored {LEGACY_TOKENS_SINCE} is not a time"))?;
    let auth = &settings.auth;
    // The master verifies under the current kid, which must be usable; the
    // token issuer names the same mistake the same way.
    if auth.jwt_key_id.trim().is_empty() {
        bail!("auth.jwt_key_id must not be empty");
    }
    let lifetime = Duration::from_secs(auth.jwt_ttl_seconds.max(settings.otp.phone_verify.ttl_seconds));
    let until = Timestamp::from_unix_millis(since).plus(lifetime);
    let master = match auth.jwt_algorithm {
        JwtAlgorithmSetting::Hs256 => Some(
            VerifyingKey::hs256(&auth.jwt_key_id, master)
                .map_err(|error| anyhow::anyhow!("auth.jwt_secret: {error}"))?,
        ),
        JwtAlgorithmSetting::Rs256 | JwtAlgorithmSetting::EdDsa => None,
    };
    if now < until {
        tracing::info!(
            until_unix_ms = until.unix_millis(),
            "tokens issued before the upgrade (typ JWT) are accepted until one token lifetime after it"
        );
    }
    Ok(LegacyTokens { until, master })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "master-secret-0123456789abcdef0123456789";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Known answers, computed independently (Python's hmac and hashlib)
    /// from the derivations of the versions before the HS256 key was
    /// separated: hashes stored and rows sealed by them stay readable.
    #[test]
    fn the_hashing_and_sealing_keys_are_derived_as_before() {
        let hash = hasher(&SecretString::from(MASTER)).token_hash("access_code", b"0123456789abcdef0123456789abcdef");
        assert_eq!(
            hex(hash.as_bytes()),
            "0142d121853044510f41f1b6e499e56706fb13a99fa4ba614157f0a366034209"
        );
        assert_eq!(
            hex(sealing_key(&SecretString::from(MASTER)).expose_secret()),
            "2467ca66c63eff68ba01279010af99b13ccb3611108e1592f483a27635e434b8"
        );
    }

    /// RFC 5869 HKDF-SHA256, no salt, info `phonegate jwt hs256 v1`, as
    /// docs/operations.md describes it (known answer from Python).
    #[test]
    fn the_development_hs256_key_is_hkdf_of_the_master() {
        let key = derive_hs256_key(&SecretString::from(MASTER));
        assert_eq!(
            key.expose_secret(),
            "6557db0bb96de584c0f857ec839e698fc80623c305a2ca7c651f2e126aafdcf6"
        );
    }

    #[test]
    fn secrets_need_variety() {
        for monotonous in [
            "a".repeat(64),
            "abcabcabcabcabcabcabcabcabcabcabcabc".to_owned(),
            "changeme-changeme-changeme-changeme".to_owned(),
            "0123456789a0123456789a0123456789a0123456789a0123456789a012345678".to_owned(),
            // Seven distinct characters, in no repeated pattern.
            "aabbccddeeffggaabbccddeeffggabcdefg".to_owned(),
        ] {
            let error = check_variety("auth.jwt_secret", &monotonous).unwrap_err().to_string();
            assert!(error.starts_with("auth.jwt_secret has too little variety"), "{error}");
            assert!(!error.contains(&monotonous), "{error}");
        }
        for varied in [
            "master-secret-0123456789abcdef0123456789",
            // Like `openssl rand -base64 48`.
            "q3T0yJ8m3v0Zb6kX2LrW9cN1pH5sD7fG4aE8uI0oK2jM6nB1vC3xZ5lQ7wR9tY0e",
            // Like `openssl rand -hex 32`, without 3, 7 and f: 13 distinct digits.
            "a8e69b9654e2de41b5a96d95b11a82e62980c1eabe66d6b9be91159dc10dd5cb",
            // Like `openssl rand -hex 16`: 32 digits, 12 distinct, which the
            // earlier floor of 16 distinct characters refused.
            "9b1e5a0c4b9e15a0c48b2e9d01a5c4e8",
        ] {
            assert!(check_variety("auth.jwt_secret", varied).is_ok(), "{varied}");
        }
    }
}
