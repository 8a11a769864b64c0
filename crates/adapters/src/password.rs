//! Password hashing with argon2id, off the async runtime.

use std::sync::Arc;

use argon2::{
    Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version, password_hash::SaltString,
};
use async_trait::async_trait;
use phonegate_domain::{
    StoreError,
    account::{Password, PasswordHash},
    ports::{PasswordHasher, RandomSource},
};

/// argon2id cost settings (OWASP's minimum: 19 MiB, 2 passes, 1 lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Settings {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Hashes and verifies passwords with argon2id on tokio's blocking pool, so
/// a burst of sign-ins never stalls the threads that serve requests.
#[derive(Clone)]
pub struct Argon2Passwords {
    argon2: Argon2<'static>,
    /// Bounds how many hashes run at once: each takes `memory_kib` of RAM,
    /// and a burst of sign-ins must queue rather than exhaust memory.
    permits: Arc<tokio::sync::Semaphore>,
    random: Arc<dyn RandomSource>,
    /// A hash of a random password, checked when there is no real hash so
    /// that an unknown email takes as long as a wrong password.
    dummy: Arc<String>,
}

impl std::fmt::Debug for Argon2Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2Passwords")
            .field("params", self.argon2.params())
            .finish_non_exhaustive()
    }
}

impl Argon2Passwords {
    /// Builds the hasher (computing the dummy hash once, which takes as long
    /// as one real hash).
    pub fn new(settings: Argon2Settings, random: Arc<dyn RandomSource>) -> Result<Self, String> {
        let params = Params::new(settings.memory_kib, settings.iterations, settings.parallelism, None)
            .map_err(|error| format!("invalid argon2 settings: {error}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut password = [0u8; 32];
        random.fill(&mut password);
        let dummy = hash_with(&argon2, random.as_ref(), &password)?;
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Ok(Self {
            argon2,
            // Twice the cores keeps every core busy while bounding memory
            // (2 cores × 2 × 19 MiB by default).
            permits: Arc::new(tokio::sync::Semaphore::new(cores * 2)),
            random,
            dummy: Arc::new(dummy),
        })
    }
}

fn hash_with(argon2: &Argon2<'_>, random: &dyn RandomSource, password: &[u8]) -> Result<String, String> {
    let mut salt = [0u8; 16];
    random.fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|error| format!("salt: {error}"))?;
    argon2
        .hash_password(password, &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| format!("argon2: {error}"))
}

fn verify_with(argon2: &Argon2<'_>, password: &[u8], phc: &str) -> bool {
    // The stored hash names its own parameters, so hashes made with older
    // settings keep verifying after the settings change.
    argon2::PasswordHash::new(phc).is_ok_and(|hash| argon2.verify_password(password, &hash).is_ok())
}

#[async_trait]
impl PasswordHasher for Argon2Passwords {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, StoreError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError("password hashing is shut down".into()))?;
        let (argon2, random, password) = (self.argon2.clone(), self.random.clone(), password.clone());
        tokio::task::spawn_blocking(move || hash_with(&argon2, random.as_ref(), password.expose().as_bytes()))
            .await
            .map_err(|error| StoreError(format!("password hashing task failed: {error}")))?
            .map(PasswordHash::new)
            .map_err(StoreError)
    }

    async fn verify(&self, password: &Password, hash: Option<PasswordHash>) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let (argon2, password) = (self.argon2.clone(), password.clone());
        let (phc, real) = match hash {
            Some(hash) => (hash.as_str().to_owned(), true),
            None => (self.dummy.as_str().to_owned(), false),
        };
        let matches = tokio::task::spawn_blocking(move || verify_with(&argon2, password.expose().as_bytes(), &phc))
            .await
            .unwrap_or(false);
        real && matches
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::OsRandom;

    fn hasher() -> Argon2Passwords {
        // Cheap parameters: these tests check behaviour, not cost.
        Argon2Passwords::new(
            Argon2Settings {
                memory_kib: 1024,
                iterations: 1,
                parallelism: 1,
            },
            Arc::new(OsRandom),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn hashes_verify_and_are_argon2id_with_a_salt() {
        let hasher = hasher();
        let password = Password::new_password("correct horse battery").unwrap();
        let first = hasher.hash(&password).await.unwrap();
        let second = hasher.hash(&password).await.unwrap();
        assert!(first.as_str().starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_ne!(first, second, "every hash has its own salt");
        assert!(hasher.verify(&password, Some(first.clone())).await);
        let wrong = Password::presented("wrong").unwrap();
        assert!(!hasher.verify(&wrong, Some(first)).await);
        assert!(!hasher.verify(&password, None).await);
        assert!(
            !hasher
                .verify(&password, Some(PasswordHash::new("garbage".into())))
                .await
        );
    }

    #[tokio::test]
    async fn hashes_made_with_other_settings_still_verify() {
        let password = Password::new_password("correct horse battery").unwrap();
        let old = hasher().hash(&password).await.unwrap();
        let stronger = Argon2Passwords::new(
            Argon2Settings {
                memory_kib: 2048,
                iterations: 2,
                parallelism: 1,
            },
            Arc::new(OsRandom),
        )
        .unwrap();
        assert!(stronger.verify(&password, Some(old)).await);
    }
}
