//! The admin CLI's store operations against real SQLite and Postgres:
//! listing and revoking applications, and revoking every token of a user,
//! each in one transaction.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::time::Duration;

use phonegate_adapters::{
    on_both_backends,
    sql::{Db, DbOptions, SqlStore, migrate},
    testing::{TestBackend, TestDatabase},
};
use phonegate_domain::{
    account::{Email, PasswordHash},
    application::{NewApplication, Revocation},
    otp::SecretHash,
    phone::PhoneNumber,
    phone_login::NewAccessCode,
    ports::{AccessCodeStore, AccountStore, ApplicationStore, RevokedTokens, SessionStore},
    time::Timestamp,
    token_auth::{NewAccount, NewSession},
    user::UserId,
};

const NOW: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

async fn store(backend: TestBackend) -> (TestDatabase, SqlStore) {
    let database = TestDatabase::create(backend).await;
    let db = Db::connect(&database.url, &DbOptions::default()).await.unwrap();
    migrate(&db, NOW.unix_millis()).await.unwrap();
    (database, SqlStore::new(db))
}

fn hash(byte: u8) -> SecretHash {
    SecretHash::from_bytes(vec![byte; 32])
}

async fn account(store: &SqlStore, email: &str, phone: Option<&str>) -> UserId {
    store
        .create_account(NewAccount {
            email: Email::parse(email).unwrap(),
            password_hash: PasswordHash::new("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into()),
            first_name: None,
            last_name: None,
            phone: phone.map(|phone| PhoneNumber::parse_e164(phone).unwrap()),
            created_at: NOW,
        })
        .await
        .unwrap()
}

async fn session(store: &SqlStore, user: UserId, application: Option<i64>, token: u8) {
    store
        .create_session(NewSession {
            user_id: user,
            application_id: application,
            device: None,
            token_hash: hash(token),
            created_at: NOW,
            expires_at: NOW.plus(Duration::from_secs(3600)),
        })
        .await
        .unwrap();
}

async fn revoked(store: &SqlStore, token: u8) -> bool {
    store.find_session(&hash(token)).await.unwrap().unwrap().revoked
}

async fn an_application_is_listed_and_revoked_with_its_sessions(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    let mut created = vec![];
    for (name, token) in [("mobile", 1), ("backend", 2)] {
        created.push(
            store
                .create_application(NewApplication {
                    app_id: format!("app-{name}"),
                    name: name.into(),
                    auth_token_hash: hash(token),
                    created_at: NOW,
                })
                .await
                .unwrap(),
        );
    }
    let user = account(&store, "a@example.com", None).await;
    session(&store, user, Some(created[0].id), 10).await;
    session(&store, user, Some(created[0].id), 11).await;
    session(&store, user, Some(created[1].id), 12).await;
    session(&store, user, None, 13).await;

    let listed = store.list_applications().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].application, created[0]);
    assert_eq!(listed[0].created_at, NOW);
    assert!(listed.iter().all(|listing| listing.revoked_at.is_none()));

    let later = NOW.plus(Duration::from_secs(5));
    assert_eq!(
        store.revoke_application("app-mobile", later).await.unwrap(),
        Revocation::Revoked { session_tokens: 2 }
    );
    // Its token no longer authenticates, its app_id no longer signs in,
    // and its sessions are revoked; the other application's are not.
    assert!(store.find_application_by_token(&hash(1)).await.unwrap().is_none());
    assert!(store.find_application("app-mobile").await.unwrap().is_none());
    assert!(revoked(&store, 10).await && revoked(&store, 11).await);
    assert!(!revoked(&store, 12).await && !revoked(&store, 13).await);
    assert!(store.find_application_by_token(&hash(2)).await.unwrap().is_some());

    let listed = store.list_applications().await.unwrap();
    assert_eq!(listed[0].revoked_at, Some(later));
    assert_eq!(listed[1].revoked_at, None);
    assert_eq!(
        store.revoke_application("app-mobile", later).await.unwrap(),
        Revocation::AlreadyRevoked
    );
    assert_eq!(
        store.revoke_application("app-unknown", later).await.unwrap(),
        Revocation::NotFound
    );
}

async fn every_token_of_a_user_is_revoked_and_only_theirs(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    let user = account(&store, "a@example.com", Some("+12063721234")).await;
    let other = account(&store, "b@example.com", None).await;
    session(&store, user, None, 1).await;
    session(&store, user, None, 2).await;
    session(&store, other, None, 3).await;
    for (owner, code) in [(user, 20), (other, 21)] {
        store
            .insert_access_code(NewAccessCode {
                user_id: owner,
                code_hash: hash(code),
                device_id: "d".into(),
                created_at: NOW,
                expires_at: NOW.plus(Duration::from_secs(3600)),
            })
            .await
            .unwrap();
    }
    assert_eq!(
        store.revoke_user_tokens(user, NOW).await.unwrap(),
        RevokedTokens {
            session_tokens: 2,
            access_codes: 1
        }
    );
    assert!(revoked(&store, 1).await && revoked(&store, 2).await);
    assert!(!revoked(&store, 3).await);
    assert!(store.find_access_code(&hash(20)).await.unwrap().unwrap().revoked);
    assert!(!store.find_access_code(&hash(21)).await.unwrap().unwrap().revoked);
    // Nothing is left to revoke the second time.
    assert_eq!(
        store.revoke_user_tokens(user, NOW).await.unwrap(),
        RevokedTokens::default()
    );
}

/// Concurrent failed sign-ins are counted exactly, by one conditional
/// statement each: of 20 at once, the first 5 count and the fifth locks;
/// the rest meet the lock and change nothing. A right password inside the
/// lock is refused; after it, it clears the count; the next lock doubles.
async fn failed_sign_ins_count_atomically_and_lock(backend: TestBackend) {
    use phonegate_domain::abuse::sign_in::LockoutPolicy;
    let (_database, store) = store(backend).await;
    let user = account(&store, "ada@example.com", None).await;
    let email = Email::parse("ada@example.com").unwrap();
    let policy = LockoutPolicy::default();
    let tries: Vec<_> = (0..20)
        .map(|_| {
            let (store, email) = (store.clone(), email.clone());
            tokio::spawn(async move { store.settle_sign_in(&email, false, NOW, &policy).await.unwrap() })
        })
        .collect();
    let mut counted = 0;
    for attempt in tries {
        if let Some(id) = attempt.await.unwrap() {
            assert_eq!(id, user);
            counted += 1;
        }
    }
    assert_eq!(counted, 5);
    let at = |seconds: u64| NOW.plus(Duration::from_secs(seconds));
    assert_eq!(store.settle_sign_in(&email, true, at(59), &policy).await.unwrap(), None);
    // A sixth failure once the lock is over locks for two minutes.
    assert_eq!(
        store.settle_sign_in(&email, false, at(60), &policy).await.unwrap(),
        Some(user)
    );
    assert_eq!(
        store.settle_sign_in(&email, true, at(179), &policy).await.unwrap(),
        None
    );
    assert_eq!(
        store.settle_sign_in(&email, true, at(180), &policy).await.unwrap(),
        Some(user)
    );
    // Cleared: four failures are not five.
    for _ in 0..4 {
        store.settle_sign_in(&email, false, at(181), &policy).await.unwrap();
    }
    assert_eq!(
        store.settle_sign_in(&email, true, at(181), &policy).await.unwrap(),
        Some(user)
    );
    let nobody = Email::parse("nobody@example.com").unwrap();
    assert_eq!(store.settle_sign_in(&nobody, true, NOW, &policy).await.unwrap(), None);
}

on_both_backends!(
    an_application_is_listed_and_revoked_with_its_sessions,
    every_token_of_a_user_is_revoked_and_only_theirs,
    failed_sign_ins_count_atomically_and_lock,
);
