//! Unit tests of the tokens surface's use cases over mocks of every port:
//! the shared mocks here, one module per use case.

use std::sync::{Arc, Mutex};

use secrecy::ExposeSecret as _;

use pollster::block_on;

use super::*;
use crate::{
    abuse::Client,
    outbox::{Envelope, MockOutboxStore, OutboxMessage, Outgoing},
};
use crate::{
    abuse::Refusal,
    account::{Password, PasswordHash},
    application::Application,
    ports::{HashError, StoreError},
    time::Timestamp,
    user::UserId,
};
use crate::{
    phone::PhonePolicy,
    phone_login::AccessCodeRecord,
    ports::{
        MockAccessCodeStore, MockAccountStore, MockApplicationStore, MockPasswordHasher, MockSessionStore,
        MockUserStore,
    },
    test_support::{self as support, World, user},
};

struct Mocks {
    users: MockUserStore,
    accounts: MockAccountStore,
    sessions: MockSessionStore,
    applications: MockApplicationStore,
    access_codes: MockAccessCodeStore,
    passwords: MockPasswordHasher,
    outbox: MockOutboxStore,
}

impl Mocks {
    fn new() -> Self {
        Self {
            users: MockUserStore::new(),
            accounts: MockAccountStore::new(),
            sessions: MockSessionStore::new(),
            applications: MockApplicationStore::new(),
            access_codes: MockAccessCodeStore::new(),
            passwords: MockPasswordHasher::new(),
            outbox: MockOutboxStore::new(),
        }
    }

    /// "right password" matches the hash "hash-of-right"; everything else fails.
    fn with_passwords(mut self) -> Self {
        self.passwords.expect_verify().returning(|password, hash| {
            Ok(hash.as_ref().is_some_and(|h| h.as_str() == "hash-of-right") && password.expose() == "right password")
        });
        self.passwords
            .expect_hash()
            .returning(|password| Ok(PasswordHash::new(format!("hash-of-{}", password.expose()))));
        self
    }

    fn with_account(mut self, email: &str) -> Self {
        let email = email.to_owned();
        self.accounts.expect_find_by_email().returning(move |candidate| {
            Ok((candidate.as_str() == email).then(|| Account {
                user: user(7, "+12063721234"),
                password_hash: Some(PasswordHash::new("hash-of-right".into())),
            }))
        });
        self
    }

    fn build(self, world: &Arc<World>) -> TokenAuth {
        TokenAuth::new(
            TokenAuthPorts {
                users: Arc::new(self.users),
                accounts: Arc::new(self.accounts),
                sessions: Arc::new(self.sessions),
                applications: Arc::new(self.applications),
                access_codes: Arc::new(self.access_codes),
                passwords: Arc::new(self.passwords),
                screen: Arc::new(CommonList),
                tokens: Arc::new(support::tokens()),
                outbox: Arc::new(self.outbox),
                messenger: support::messenger(world),
            },
            support::engine(world),
            TokenAuthSettings {
                phones: PhonePolicy::new("US", &[], vec![]).unwrap(),
                phone_policy: support::policy(4, 600),
                session_ttl: Duration::from_secs(90 * 86_400),
                reset_ttl: Duration::from_secs(3600),
                reset_url_template: "https://app.example.com/reset?token={token}".into(),
                app_name: "phonegate".into(),
            },
        )
    }
}

/// Refuses two well-known passwords and the account's own email.
struct CommonList;

impl crate::ports::PasswordScreen for CommonList {
    fn is_common(&self, password: &Password, context: &[&str]) -> bool {
        ["password", "12345678"].contains(&password.expose()) || context.contains(&password.expose())
    }
}

/// An unlocked account: settles every sign-in as the store would.
fn settle_unlocked(accounts: &mut MockAccountStore) {
    accounts
        .expect_settle_sign_in()
        .returning(|_, matched, _, _| Ok(matched.then(|| UserId::new(7))));
}

fn sign_in_request(email: &str, password: &str) -> SignInRequest {
    SignInRequest {
        email: SignInEmail::parse(email).unwrap(),
        password: SignInPassword::parse(password).unwrap(),
        device_token: Some(DeviceToken::parse("324628746283682634").unwrap()),
        mobile_os: Some(MobileOs::Ios),
        app_id: None,
    }
}

/// A reset request as the edge builds it.
fn reset(token: &str, password: &str) -> PasswordReset {
    PasswordReset {
        token: ResetToken::parse(token).unwrap(),
        password: ProposedPassword::Acceptable(crate::account::NewPassword::parse(password).unwrap()),
    }
}

/// A session token as a client would present it.
fn token(text: &str) -> SessionToken {
    SessionToken::parse(text).unwrap()
}

fn session(user: i64, revoked: bool) -> SessionRecord {
    SessionRecord {
        id: 3,
        user_id: UserId::new(user),
        application_id: None,
        created_at: Timestamp::from_unix_millis(1_700_000_000_000),
        expires_at: Timestamp::from_unix_millis(1_800_000_000_000),
        revoked,
    }
}

#[derive(Default)]
struct Counting(Mutex<std::collections::HashMap<String, u32>>);

#[async_trait::async_trait]
impl crate::rate_limit::RateLimiter for Counting {
    async fn acquire(
        &self,
        key: &str,
        rule: crate::rate_limit::RateRule,
        _: Timestamp,
    ) -> Result<crate::rate_limit::RateDecision, StoreError> {
        let mut counts = self.0.lock().unwrap();
        let count = counts.entry(key.to_owned()).or_default();
        if *count >= rule.limit {
            return Ok(crate::rate_limit::RateDecision::Limited {
                retry_after: Duration::from_secs(7),
            });
        }
        *count += 1;
        Ok(crate::rate_limit::RateDecision::Allowed)
    }

    async fn acquire_all(
        &self,
        batch: &[crate::rate_limit::RateKey],
        _: Timestamp,
    ) -> Result<crate::rate_limit::BatchDecision, StoreError> {
        let mut counts = self.0.lock().unwrap();
        if let Some(index) = batch
            .iter()
            .position(|key| counts.get(&key.key).copied().unwrap_or(0) >= key.rule.limit)
        {
            return Ok(crate::rate_limit::BatchDecision::Limited {
                index,
                retry_after: Duration::from_secs(7),
            });
        }
        for key in batch {
            *counts.entry(key.key.clone()).or_default() += 1;
        }
        Ok(crate::rate_limit::BatchDecision::Allowed)
    }
}

mod admin;
mod introspection;
mod password_reset;
mod phone_confirmation;
mod sign_in;
