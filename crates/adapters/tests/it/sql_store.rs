//! The SQL store against real SQLite and a real Postgres: migrations, the
//! conditional writes that make codes single-use with bounded attempts, and
//! the one-transaction use cases.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::{sync::Arc, time::Duration};

use phonegate_adapters::{
    on_both_backends,
    sql::{Db, DbOptions, SqlStore, migrate},
    testing::{TestBackend, TestDatabase},
};
use phonegate_domain::{
    device::{PushHandle, PushPlatform},
    otp::{AttemptOutcome, Channel, NewChallenge, Purpose, SecretHash},
    outbox::Outgoing,
    phone::PhoneNumber,
    phone_login::PendingAccessCode,
    ports::{AccessCodeStore as _, ChallengeStore, DeviceStore, Readiness, UserStore},
    time::Timestamp,
    user::{NewAddress, NewUser, PhoneVerification, UserId},
};

const NOW: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

async fn store(backend: TestBackend) -> (TestDatabase, SqlStore) {
    let database = TestDatabase::create(backend).await;
    let db = Db::connect(&database.url, &DbOptions::default()).await.unwrap();
    assert!(
        migrate(&db, NOW.unix_millis()).await.unwrap() >= 2,
        "every migration applies to a new database"
    );
    (database, SqlStore::new(db))
}

fn phone(text: &str) -> PhoneNumber {
    PhoneNumber::parse_e164(text).unwrap()
}

fn challenge(lookup: u8, phone_text: &str, user: Option<UserId>) -> NewChallenge {
    NewChallenge {
        purpose: Purpose::PinAuth,
        phone: phone(phone_text),
        user_id: user,
        channel: Channel::Sms,
        device_binding: None,
        lookup_hash: SecretHash::from_bytes(vec![lookup; 32]),
        code_hash: SecretHash::from_bytes(vec![0xC0; 32]),
        max_attempts: 5,
        created_at: NOW,
        expires_at: NOW.plus(Duration::from_secs(600)),
        sent_prefix: None,
    }
}

fn jake(phone_text: &str) -> NewUser {
    NewUser {
        phone: phone(phone_text),
        first_name: Some("Jake".into()),
        last_name: Some("Deamon".into()),
        address: Some(NewAddress {
            district_id: Some(1),
            address_type: Some("Profile".into()),
            ..NewAddress::default()
        }),
    }
}

fn verification(phone_text: &str, access_code: Option<PendingAccessCode>) -> PhoneVerification {
    PhoneVerification {
        phone: phone(phone_text),
        verified_at: NOW,
        access_code,
        requires_signup: false,
    }
}

/// A pin-auth signup whose pin was verified: the user it created.
async fn new_user(store: &SqlStore, phone_text: &str, lookup: u8) -> UserId {
    let id = store
        .store_signup(jake(phone_text), challenge(lookup, phone_text, None), Outgoing::Nothing)
        .await
        .unwrap();
    let signup = PhoneVerification {
        requires_signup: true,
        ..verification(phone_text, None)
    };
    let (user, created) = store.consume_verifying(id, signup).await.unwrap().unwrap();
    assert!(created);
    user.id
}

fn hash(lookup: u8) -> SecretHash {
    SecretHash::from_bytes(vec![lookup; 32])
}

async fn migrations_apply_once(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    assert_eq!(migrate(store.db(), NOW.unix_millis()).await.unwrap(), 0);
    store.check().await.unwrap();
}

async fn attempts_are_counted_up_to_the_limit(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    store
        .replace_live(challenge(1, "+85261234567", None), Outgoing::Nothing)
        .await
        .unwrap();
    for expected in 1..=5 {
        match store.spend_attempt(&hash(1), NOW).await.unwrap() {
            AttemptOutcome::Spent(attempt) => {
                assert_eq!(attempt.attempts, expected);
                assert_eq!(attempt.max_attempts, 5);
                assert_eq!(attempt.code_hash, SecretHash::from_bytes(vec![0xC0; 32]));
                assert_eq!(attempt.phone.as_str(), "+85261234567");
            }
            other => panic!("attempt {expected}: {other:?}"),
        }
    }
    assert_eq!(
        store.spend_attempt(&hash(1), NOW).await.unwrap(),
        AttemptOutcome::Exhausted
    );
    assert_eq!(
        store.spend_attempt(&hash(9), NOW).await.unwrap(),
        AttemptOutcome::NotFound
    );
}

async fn expired_challenges_spend_nothing(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    store
        .replace_live(challenge(1, "+85261234567", None), Outgoing::Nothing)
        .await
        .unwrap();
    let at_expiry = NOW.plus(Duration::from_secs(600));
    assert_eq!(
        store.spend_attempt(&hash(1), at_expiry).await.unwrap(),
        AttemptOutcome::Expired
    );
    // Still live with all attempts just before expiry.
    let before = NOW.plus(Duration::from_secs(599));
    assert!(matches!(
        store.spend_attempt(&hash(1), before).await.unwrap(),
        AttemptOutcome::Spent(a) if a.attempts == 1
    ));
}

async fn a_new_challenge_supersedes_the_live_one(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    store
        .replace_live(challenge(1, "+85261234567", None), Outgoing::Nothing)
        .await
        .unwrap();
    store
        .replace_live(challenge(2, "+85261234567", None), Outgoing::Nothing)
        .await
        .unwrap();
    // A challenge for another phone is untouched.
    store
        .replace_live(challenge(3, "+85291234567", None), Outgoing::Nothing)
        .await
        .unwrap();
    assert_eq!(
        store.spend_attempt(&hash(1), NOW).await.unwrap(),
        AttemptOutcome::Closed
    );
    assert!(matches!(
        store.spend_attempt(&hash(2), NOW).await.unwrap(),
        AttemptOutcome::Spent(_)
    ));
    assert!(matches!(
        store.spend_attempt(&hash(3), NOW).await.unwrap(),
        AttemptOutcome::Spent(_)
    ));
}

async fn a_challenge_is_consumed_once(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    let id = store
        .replace_live(challenge(1, "+85261234567", None), Outgoing::Nothing)
        .await
        .unwrap();
    assert!(store.consume(id, NOW).await.unwrap());
    assert!(!store.consume(id, NOW).await.unwrap());
    assert_eq!(
        store.spend_attempt(&hash(1), NOW).await.unwrap(),
        AttemptOutcome::Closed
    );
}

async fn concurrent_consumers_have_exactly_one_winner(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    let store = Arc::new(store);
    let id = store
        .replace_live(challenge(1, "+85261234567", None), Outgoing::Nothing)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.consume(id, NOW).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1);
}

async fn concurrent_attempts_never_exceed_the_limit(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    let store = Arc::new(store);
    store
        .replace_live(challenge(1, "+85261234567", None), Outgoing::Nothing)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.spend_attempt(&hash(1), NOW).await.unwrap() })
        })
        .collect();
    let mut spent = 0;
    for task in tasks {
        match task.await.unwrap() {
            AttemptOutcome::Spent(_) => spent += 1,
            AttemptOutcome::Exhausted => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(spent, 5);
}

/// Security II, finding 8: a signup creates no user; its names and address
/// wait with its challenge and make the user only when it is consumed.
async fn a_signup_is_pending_until_its_challenge_is_consumed(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    let id = store
        .store_signup(
            jake("+85251224538"),
            challenge(1, "+85251224538", None),
            Outgoing::Nothing,
        )
        .await
        .unwrap();
    assert!(store.find_by_phone(&phone("+85251224538")).await.unwrap().is_none());
    match store.spend_attempt(&hash(1), NOW).await.unwrap() {
        AttemptOutcome::Spent(attempt) => assert_eq!(attempt.user_id, None),
        other => panic!("{other:?}"),
    }
    let (user, created) = store
        .consume_verifying(id, verification("+85251224538", None))
        .await
        .unwrap()
        .unwrap();
    assert!(created);
    assert_eq!(user.first_name.as_deref(), Some("Jake"));
    let profile = store.profile(user.id).await.unwrap().unwrap();
    assert_eq!(
        profile.user.phone.as_ref().map(PhoneNumber::as_str),
        Some("+85251224538")
    );
    assert_eq!(profile.user.last_name.as_deref(), Some("Deamon"));
    assert_eq!(profile.addresses.len(), 1);
    assert_eq!(profile.addresses[0].district_id, Some(1));
    assert_eq!(profile.addresses[0].user_id, user.id);
    assert_eq!(
        store.find_by_phone(&phone("+85251224538")).await.unwrap().unwrap().id,
        user.id
    );
    assert!(store.find_by_phone(&phone("+85251224539")).await.unwrap().is_none());
    assert!(store.profile(UserId::new(999_999)).await.unwrap().is_none());
    // Consumed once: a second consume writes nothing.
    assert!(
        store
            .consume_verifying(id, verification("+85251224538", None))
            .await
            .unwrap()
            .is_none()
    );
    // A challenge for no user without a pending signup (a decoy) never
    // makes a user when a signup is required, and stays as it was.
    let decoy = store
        .replace_live(challenge(2, "+85251224539", None), Outgoing::Nothing)
        .await
        .unwrap();
    let required = PhoneVerification {
        requires_signup: true,
        ..verification("+85251224539", None)
    };
    assert!(store.consume_verifying(decoy, required).await.unwrap().is_none());
    assert!(store.find_by_phone(&phone("+85251224539")).await.unwrap().is_none());
    assert!(matches!(
        store.spend_attempt(&hash(2), NOW).await.unwrap(),
        AttemptOutcome::Spent(_)
    ));
}

/// Security II, finding 8: a superseded signup's fields are never used,
/// and an existing user keeps its own.
async fn a_superseded_signup_is_never_applied(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    let mut mallory = jake("+85251224538");
    mallory.first_name = Some("Mallory".into());
    let first = store
        .store_signup(mallory.clone(), challenge(1, "+85251224538", None), Outgoing::Nothing)
        .await
        .unwrap();
    let mut olivia = jake("+85251224538");
    olivia.first_name = Some("Olivia".into());
    olivia.address = None;
    let second = store
        .store_signup(olivia, challenge(2, "+85251224538", None), Outgoing::Nothing)
        .await
        .unwrap();
    assert!(
        store
            .consume_verifying(first, verification("+85251224538", None))
            .await
            .unwrap()
            .is_none(),
        "superseded"
    );
    let (user, _) = store
        .consume_verifying(second, verification("+85251224538", None))
        .await
        .unwrap()
        .unwrap();
    let profile = store.profile(user.id).await.unwrap().unwrap();
    assert_eq!(profile.user.first_name.as_deref(), Some("Olivia"));
    assert!(profile.addresses.is_empty());
    // A signup of a number that has a user by the time it is verified
    // leaves that user as it is.
    let third = store
        .store_signup(mallory, challenge(3, "+85251224538", None), Outgoing::Nothing)
        .await
        .unwrap();
    let (same, created) = store
        .consume_verifying(third, verification("+85251224538", None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((same.id, created), (user.id, false));
    assert_eq!(same.first_name.as_deref(), Some("Olivia"));
}

/// Security II, finding 14: the consume and the writes it stands for are
/// one transaction. When the access code cannot be written, nothing is:
/// the challenge is still live (the same code can be tried again) and no
/// user was created.
async fn a_failed_write_leaves_the_challenge_live(backend: TestBackend) {
    use phonegate_adapters::testing::{allow_inserts, fail_inserts};
    let (_database, store) = store(backend).await;
    let id = store
        .replace_live(challenge(1, "+12063721234", None), Outgoing::Nothing)
        .await
        .unwrap();
    let code = || {
        Some(PendingAccessCode {
            code_hash: SecretHash::from_bytes(vec![0xAC; 32]),
            device_id: "d1".into(),
            expires_at: NOW.plus(Duration::from_secs(3600)),
        })
    };
    fail_inserts(store.db(), "access_codes").await;
    assert!(
        store
            .consume_verifying(id, verification("+12063721234", code()))
            .await
            .is_err()
    );
    assert!(store.find_by_phone(&phone("+12063721234")).await.unwrap().is_none());
    assert!(matches!(
        store.spend_attempt(&hash(1), NOW).await.unwrap(),
        AttemptOutcome::Spent(_)
    ));
    allow_inserts(store.db(), "access_codes").await;
    let (user, created) = store
        .consume_verifying(id, verification("+12063721234", code()))
        .await
        .unwrap()
        .unwrap();
    assert!(created);
    let record = store
        .find_access_code(&SecretHash::from_bytes(vec![0xAC; 32]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((record.user_id, record.device_id.as_str()), (user.id, "d1"));
    assert_eq!(
        store.spend_attempt(&hash(1), NOW).await.unwrap(),
        AttemptOutcome::Closed
    );
}

async fn a_push_handle_belongs_to_one_user(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    let alice = new_user(&store, "+85251224538", 1).await;
    let bob = new_user(&store, "+85261224538", 2).await;
    let handle = PushHandle::parse("fcm-registration-id").unwrap();
    store
        .register_push(alice, PushPlatform::Fcm, &handle, NOW)
        .await
        .unwrap();
    store
        .register_push(alice, PushPlatform::Fcm, &handle, NOW)
        .await
        .unwrap();
    assert_eq!(store.push_registrations(alice).await.unwrap().len(), 1);
    store.register_push(bob, PushPlatform::Fcm, &handle, NOW).await.unwrap();
    assert!(store.push_registrations(alice).await.unwrap().is_empty());
    assert_eq!(
        store.push_registrations(bob).await.unwrap(),
        vec![("fcm".to_owned(), "fcm-registration-id".to_owned())]
    );
}

async fn permissions_are_listed_in_the_profile(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    let user = new_user(&store, "+85251224538", 1).await;
    store.grant_permission(user, "admin").await.unwrap();
    store.grant_permission(user, "admin").await.unwrap();
    let profile = store.profile(user).await.unwrap().unwrap();
    assert_eq!(profile.permissions.len(), 1);
    assert_eq!(profile.permissions[0].name, "admin");
}

async fn a_server_secret_is_created_once(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    let first = store.secret_or_insert("k", vec![1, 2, 3], NOW).await.unwrap();
    let second = store.secret_or_insert("k", vec![4, 5, 6], NOW).await.unwrap();
    assert_eq!(first, vec![1, 2, 3]);
    assert_eq!(second, vec![1, 2, 3]);
}

async fn a_lookup_hash_can_be_reissued_for_the_same_phone(backend: TestBackend) {
    // phone-login's lookup is the phone itself: every new PIN for a number
    // has the same lookup hash as the ones before it.
    let (_database, store) = store(backend).await;
    let first = store
        .replace_live(challenge(1, "+12063721234", None), Outgoing::Nothing)
        .await
        .unwrap();
    assert!(store.consume(first, NOW).await.unwrap());
    assert_eq!(
        store.spend_attempt(&hash(1), NOW).await.unwrap(),
        AttemptOutcome::Closed
    );
    store
        .replace_live(challenge(1, "+12063721234", None), Outgoing::Nothing)
        .await
        .unwrap();
    store
        .replace_live(challenge(1, "+12063721234", None), Outgoing::Nothing)
        .await
        .unwrap();
    match store.spend_attempt(&hash(1), NOW).await.unwrap() {
        AttemptOutcome::Spent(attempt) => assert_eq!(attempt.attempts, 1),
        other => panic!("{other:?}"),
    }
}

async fn racing_issuers_leave_exactly_one_live_challenge(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..10u8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .replace_live(challenge(10 + i, "+85261234567", None), Outgoing::Nothing)
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let mut live = 0;
    for i in 0..10u8 {
        match store.spend_attempt(&hash(10 + i), NOW).await.unwrap() {
            AttemptOutcome::Spent(_) => live += 1,
            AttemptOutcome::Closed => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(live, 1);
}

async fn a_verified_phone_is_one_user(backend: TestBackend) {
    let (_database, store) = store(backend).await;
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.upsert_verified_phone(&phone("+12063721234"), NOW).await.unwrap() })
        })
        .collect();
    let mut ids = vec![];
    let mut created = 0;
    for task in tasks {
        let (user, was_created) = task.await.unwrap();
        ids.push(user.id);
        created += usize::from(was_created);
    }
    assert_eq!(created, 1);
    assert!(ids.iter().all(|id| *id == ids[0]));
    // An existing pin-auth user is found, not duplicated.
    let existing = new_user(&store, "+85251224538", 1).await;
    let (user, was_created) = store.upsert_verified_phone(&phone("+85251224538"), NOW).await.unwrap();
    assert_eq!((user.id, was_created), (existing, false));
}

async fn access_codes_are_found_by_hash(backend: TestBackend) {
    use phonegate_domain::{phone_login::NewAccessCode, ports::AccessCodeStore};
    let (_database, store) = store(backend).await;
    let user = new_user(&store, "+12063721234", 1).await;
    store
        .insert_access_code(NewAccessCode {
            user_id: user,
            code_hash: hash(7),
            device_id: "abcde".into(),
            created_at: NOW,
            expires_at: NOW.plus(Duration::from_secs(60)),
        })
        .await
        .unwrap();
    let record = store.find_access_code(&hash(7)).await.unwrap().unwrap();
    assert_eq!(record.user_id, user);
    assert_eq!(record.device_id, "abcde");
    assert_eq!(record.phone.unwrap().as_str(), "+12063721234");
    assert!(!record.revoked);
    assert!(store.find_access_code(&hash(8)).await.unwrap().is_none());
}

/// With the profile cache on, a profile is served from memory, yet this
/// store's own writes to it show at once: a permission granted, a phone
/// verified on the tokens surface.
async fn cached_profiles_show_the_stores_own_writes_at_once(backend: TestBackend) {
    use phonegate_domain::ports::AccountStore;
    let (_database, store) = store(backend).await;
    let store = store.with_profile_cache(Duration::from_secs(3600));
    let user = new_user(&store, "+85251224538", 1).await;
    let before = store.profile(user).await.unwrap().unwrap();
    assert!(before.permissions.is_empty());
    store.grant_permission(user, "admin").await.unwrap();
    let after = store.profile(user).await.unwrap().unwrap();
    assert_eq!(after.permissions.len(), 1, "the grant forgot the cached profile");
    store
        .set_verified_phone(user, &phone("+85261234567"), NOW)
        .await
        .unwrap();
    let moved = store.profile(user).await.unwrap().unwrap();
    assert_eq!(moved.user.phone.unwrap().as_str(), "+85261234567");
    assert!(
        store.profile(UserId::new(987_654)).await.unwrap().is_none(),
        "no user, nothing cached"
    );
}

on_both_backends!(
    cached_profiles_show_the_stores_own_writes_at_once,
    a_lookup_hash_can_be_reissued_for_the_same_phone,
    racing_issuers_leave_exactly_one_live_challenge,
    a_verified_phone_is_one_user,
    access_codes_are_found_by_hash,
    migrations_apply_once,
    attempts_are_counted_up_to_the_limit,
    expired_challenges_spend_nothing,
    a_new_challenge_supersedes_the_live_one,
    a_challenge_is_consumed_once,
    concurrent_consumers_have_exactly_one_winner,
    concurrent_attempts_never_exceed_the_limit,
    a_signup_is_pending_until_its_challenge_is_consumed,
    a_superseded_signup_is_never_applied,
    a_failed_write_leaves_the_challenge_live,
    a_push_handle_belongs_to_one_user,
    permissions_are_listed_in_the_profile,
    a_server_secret_is_created_once,
);
