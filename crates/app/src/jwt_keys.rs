//! The JWT keys from `[auth]`: the current signing key and the previous
//! keys that only verify, read once at start. Every error names the setting
//! at fault; none contains key material.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use phonegate_adapters::jwt::{
    JwtAlgorithm, JwtKeyError, JwtSettings, JwtTokens, LegacyTokens, SigningKey, VerifyingKey,
};
use phonegate_domain::ports::RandomSource;
use secrecy::SecretString;

use crate::settings::{AuthSection, JwtAlgorithmSetting, PreviousJwtKeyEntry};

fn algorithm(setting: JwtAlgorithmSetting) -> JwtAlgorithm {
    match setting {
        JwtAlgorithmSetting::Hs256 => JwtAlgorithm::Hs256,
        JwtAlgorithmSetting::Rs256 => JwtAlgorithm::Rs256,
        JwtAlgorithmSetting::EdDsa => JwtAlgorithm::EdDsa,
    }
}

/// Reads a PEM key file named by `setting`.
fn read_pem(setting: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{setting}: cannot read the key file {}", path.display()))
}

/// The token issuer: signs with the current key, verifies with it and with
/// the previous keys, and accepts `legacy` tokens from before the upgrade
/// for a while. `hs256_key` is the HS256 key (`auth.jwt_hs256_key`, or in
/// development derived from the master secret), never the master secret.
pub(crate) fn token_issuer(
    auth: &AuthSection,
    hs256_key: Option<&SecretString>,
    legacy: Option<LegacyTokens>,
    random: Arc<dyn RandomSource>,
) -> anyhow::Result<JwtTokens> {
    let tokens = tokens(auth, hs256_key, legacy, random)?;
    let previous_kids: Vec<&str> = auth.jwt_previous_keys.iter().map(|key| key.kid.as_str()).collect();
    tracing::info!(
        kid = auth.jwt_key_id.as_str(),
        algorithm = %algorithm(auth.jwt_algorithm),
        previous = ?previous_kids,
        "JWT signing key loaded"
    );
    Ok(tokens)
}

/// Checks the keys as [`token_issuer`] reads them (key files included),
/// without logging that they were loaded: the service reads them again once
/// it knows the master secret.
pub(crate) fn check(
    auth: &AuthSection,
    hs256_key: Option<&SecretString>,
    random: Arc<dyn RandomSource>,
) -> anyhow::Result<()> {
    tokens(auth, hs256_key, None, random).map(drop)
}

fn tokens(
    auth: &AuthSection,
    hs256_key: Option<&SecretString>,
    legacy: Option<LegacyTokens>,
    random: Arc<dyn RandomSource>,
) -> anyhow::Result<JwtTokens> {
    let current = current_key(auth, hs256_key)?;
    let previous = auth
        .jwt_previous_keys
        .iter()
        .enumerate()
        .map(|(index, entry)| previous_key(index, entry))
        .collect::<anyhow::Result<Vec<_>>>()?;
    JwtTokens::new(
        JwtSettings {
            issuer: auth.jwt_issuer.clone(),
            ttl: Duration::from_secs(auth.jwt_ttl_seconds),
            current,
            previous,
            legacy,
        },
        random,
    )
    .map_err(|error| match error {
        JwtKeyError::DuplicateKeyId(kid) => anyhow::anyhow!(
            "auth.jwt_previous_keys: the kid {kid:?} is used twice (or is also auth.jwt_key_id); \
             every key needs its own kid"
        ),
        other => anyhow::anyhow!("auth.jwt_*: {other}"),
    })
}

fn current_key(auth: &AuthSection, hs256_key: Option<&SecretString>) -> anyhow::Result<SigningKey> {
    let kid = auth.jwt_key_id.as_str();
    if kid.trim().is_empty() {
        bail!("auth.jwt_key_id must not be empty");
    }
    let algorithm = algorithm(auth.jwt_algorithm);
    match algorithm {
        JwtAlgorithm::Hs256 => {
            if auth.jwt_private_key_file.is_some() {
                bail!(
                    "auth.jwt_private_key_file is only used with auth.jwt_algorithm = \"RS256\" or \"EdDSA\", \
                     not \"HS256\""
                );
            }
            let secret = hs256_key.context("auth.jwt_hs256_key is required with auth.jwt_algorithm = \"HS256\"")?;
            SigningKey::hs256(kid, secret).map_err(|error| anyhow::anyhow!("auth.jwt_hs256_key: {error}"))
        }
        JwtAlgorithm::Rs256 | JwtAlgorithm::EdDsa => {
            if auth.jwt_hs256_key.is_some() {
                bail!("auth.jwt_hs256_key is only used with auth.jwt_algorithm = \"HS256\", not \"{algorithm}\"");
            }
            let path = auth.jwt_private_key_file.as_deref().with_context(|| {
                format!("auth.jwt_private_key_file is required when auth.jwt_algorithm = \"{algorithm}\"")
            })?;
            let pem = read_pem("auth.jwt_private_key_file", path)?;
            SigningKey::private_pem(kid, algorithm, &pem)
                .map_err(|error| anyhow::anyhow!("auth.jwt_private_key_file ({}): {error}", path.display()))
        }
    }
}

fn previous_key(index: usize, entry: &PreviousJwtKeyEntry) -> anyhow::Result<VerifyingKey> {
    let name = format!("auth.jwt_previous_keys[{index}] (kid {:?})", entry.kid);
    if entry.kid.trim().is_empty() {
        bail!("auth.jwt_previous_keys[{index}].kid must not be empty");
    }
    let algorithm = algorithm(entry.algorithm);
    match algorithm {
        JwtAlgorithm::Hs256 => {
            if entry.public_key_file.is_some() {
                bail!("{name}: public_key_file is for RS256 and EdDSA keys; an HS256 key has a secret");
            }
            let secret = entry
                .secret
                .as_ref()
                .with_context(|| format!("{name}: secret is required for an HS256 key"))?;
            VerifyingKey::hs256(&entry.kid, secret).map_err(|error| anyhow::anyhow!("{name}.secret: {error}"))
        }
        JwtAlgorithm::Rs256 | JwtAlgorithm::EdDsa => {
            if entry.secret.is_some() {
                bail!("{name}: secret is for HS256 keys; a {algorithm} key has a public_key_file");
            }
            let path = entry
                .public_key_file
                .as_deref()
                .with_context(|| format!("{name}: public_key_file is required for a {algorithm} key"))?;
            let setting = format!("{name}.public_key_file");
            let pem = read_pem(&setting, path)?;
            VerifyingKey::public_pem(&entry.kid, algorithm, &pem)
                .map_err(|error| anyhow::anyhow!("{setting} ({}): {error}", path.display()))
        }
    }
}
