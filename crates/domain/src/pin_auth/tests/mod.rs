//! Unit tests of the pin-auth use cases over mockall mocks of every port.
//!
//! The challenge store mock is backed by a small in-test table so that the
//! use cases can be driven through whole flows (send, then verify); the
//! conditional-write guarantees of the real stores are tested against SQLite
//! and Postgres in the adapters crate.

use std::{sync::Arc, time::Duration};

use secrecy::SecretString;

use pollster::block_on;

use super::*;
use crate::abuse::Client;
use crate::{
    otp::{CodeLength, OtpCode, OtpEngine, Purpose},
    phone::{MobileError, MobileRule, PhoneNumber},
    ports::{MockChallengeStore, MockDeviceStore, MockSmsSender, MockUserStore},
    test_support::{self as support, World, hasher},
    time::Timestamp,
    token::TokenError,
};

const KNOWN: &str = "+85261677528";
const UNKNOWN: &str = "+85251641822";

/// A mobile the rule accepts.
fn mobile(text: &str) -> PhoneNumber {
    MobileRule::hong_kong().parse(text).expect("a mobile of the rule")
}

/// A pin of the policy's shape.
fn pin(text: &str) -> OtpCode {
    settings().parse_pin(text).expect("a pin of the policy's shape")
}

fn text(text: &str) -> ProfileText {
    ProfileText::parse(text.to_owned()).expect("a short text")
}

fn bearer(token: &str) -> BearerToken {
    BearerToken::parse(token).expect("a token that is not blank")
}

fn settings() -> PinAuthSettings {
    PinAuthSettings {
        mobile_rule: MobileRule::hong_kong(),
        policy: support::policy(4, 600),
    }
}

struct Parts {
    users: MockUserStore,
    devices: MockDeviceStore,
    sms: MockSmsSender,
    challenges: MockChallengeStore,
}

fn parts(world: &Arc<World>) -> Parts {
    world.add_user(1831, KNOWN);
    Parts {
        users: support::users(world),
        devices: MockDeviceStore::new(),
        sms: support::sms(world),
        challenges: support::challenge_store(world),
    }
}

fn pin_auth(world: &Arc<World>, parts: Parts) -> PinAuth {
    let otp = OtpEngine::new(
        Arc::new(parts.challenges),
        Arc::new(support::clock(world)),
        Arc::new(support::random()),
        hasher(),
    );
    PinAuth::new(
        Arc::new(parts.users),
        Arc::new(parts.devices),
        Messenger::new(Arc::new(parts.sms), Arc::new(support::voice(world)), "phonegate".into()),
        Arc::new(support::tokens()),
        otp,
        settings(),
    )
}

fn setup() -> (Arc<World>, PinAuth) {
    let world = World::new();
    let service = pin_auth(&world, parts(&world));
    (world, service)
}

mod account;
mod verify;

#[test]
fn send_pin_to_a_known_mobile_texts_a_four_digit_pin() {
    block_on(async {
        let (world, service) = setup();
        let key = service.send_pin(&mobile(KNOWN), &Client::default()).await.unwrap();
        assert_eq!(key.expose().len(), 24);
        let sent = world.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        assert_eq!((sent[0].0, sent[0].1.as_str()), ("sms", KNOWN));
        let code = world.last_code();
        assert_eq!(code.len(), 4);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        assert!(sent[0].2.starts_with("Your phonegate code is "));
        let rows = world.rows.lock().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].challenge.user_id, Some(UserId::new(1831)));
        assert_eq!(rows[0].challenge.max_attempts, 5);
    });
}

#[test]
fn unknown_mobile_gets_a_random_key_of_the_same_shape_and_no_sms() {
    block_on(async {
        let world = World::new();
        let mut parts = parts(&world);
        parts.sms = MockSmsSender::new();
        parts.sms.expect_send_sms().never();
        let service = pin_auth(&world, parts);
        let unknown = service.send_pin(&mobile(UNKNOWN), &Client::default()).await.unwrap();
        let known = {
            // The same shape as a real key: 24 base64 characters of 16 bytes.
            assert_eq!(unknown.expose().len(), 24);
            OtpAuthKey::parse(unknown.expose()).expect("decodes like a real key")
        };
        assert_eq!(known.lookup().as_bytes().len(), 16);
        // The decoy did the same store work as a real pin, for no user.
        let rows = world.rows.lock().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].challenge.user_id, None);
    });
}

#[test]
fn invalid_mobiles_are_refused_by_the_rule() {
    let rule = &settings().mobile_rule;
    assert_eq!(rule.parse(""), Err(MobileError::Blank));
    assert_eq!(
        rule.parse("+9101234567"),
        Err(MobileError::WrongCountry("+852".to_owned()))
    );
}

#[test]
fn codes_are_uniform_enough_and_the_right_length() {
    let world = World::new();
    let engine = support::engine(&world);
    let length = CodeLength::new(4).unwrap();
    let mut first_digit = [0u32; 10];
    for _ in 0..10_000 {
        let code = engine.new_code(length);
        assert_eq!(code.expose().len(), 4);
        first_digit[(code.expose().as_bytes()[0] - b'0') as usize] += 1;
    }
    // Each leading digit should appear about 1,000 times.
    assert!(first_digit.iter().all(|&n| (800..1200).contains(&n)), "{first_digit:?}");
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let code = OtpCode::parse("1234", CodeLength::new(4).unwrap()).unwrap();
    assert!(!format!("{code:?}").contains("1234"));
    let key = OtpAuthKey::encode(vec![7u8; 16]);
    assert!(!format!("{key:?}").contains(key.expose()));
    assert!(!format!("{:?}", bearer("secret.jwt.text")).contains("secret.jwt.text"));
    let token = IssuedToken::new(SecretString::from("secret.jwt.text"), Timestamp::from_unix_millis(0));
    assert!(!format!("{token:?}").contains("secret.jwt.text"));
}

#[test]
fn a_pin_is_queued_with_its_challenge_and_an_unknown_mobile_gets_a_decoy_row() {
    block_on(async {
        let world = World::new();
        let parts = parts(&world);
        // The provider is never called by a use case: messages go to the
        // outbox with the challenge, and the dispatcher sends them later.
        let service = pin_auth(&world, parts);
        service.send_pin(&mobile(KNOWN), &Client::default()).await.unwrap();
        assert_eq!(world.sent_count(), 1);
        assert_eq!(*world.decoys.lock().unwrap(), 0);
        service
            .send_pin(&mobile("+85291234567"), &Client::default())
            .await
            .unwrap();
        assert_eq!(world.sent_count(), 1, "nothing is queued for an unknown mobile");
        assert_eq!(*world.decoys.lock().unwrap(), 1, "but a decoy row is written");
    });
}
