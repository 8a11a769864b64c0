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
    otp::{CodeLength, OtpCode},
    phone::PhoneNumber,
    ports::{MockChallengeStore, MockDeviceStore, MockSmsSender, MockUserStore},
    test_support::{self as support, World, hasher},
    time::Timestamp,
};

const KNOWN: &str = "+85261677528";
const UNKNOWN: &str = "+85251641822";

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

#[test]
fn send_pin_to_a_known_mobile_texts_a_four_digit_pin() {
    block_on(async {
        let (world, service) = setup();
        let key = service.send_pin(KNOWN, &Client::default()).await.unwrap();
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
fn happy_path_returns_a_token_and_the_profile() {
    block_on(async {
        let (world, service) = setup();
        let key = service.send_pin(KNOWN, &Client::default()).await.unwrap();
        let session = service
            .verify(key.expose(), &world.last_code(), &Client::default())
            .await
            .unwrap();
        assert_eq!(session.token.expose(), "jwt-for-1831");
        assert_eq!(session.profile.user.id, UserId::new(1831));
    });
}

#[test]
fn wrong_pin_is_refused() {
    block_on(async {
        let (world, service) = setup();
        let key = service.send_pin(KNOWN, &Client::default()).await.unwrap();
        let wrong = if world.last_code() == "0000" { "1111" } else { "0000" };
        let error = service
            .verify(key.expose(), wrong, &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, VerifyError::InvalidPin), "{error:?}");
    });
}

#[test]
fn expired_pin_is_refused_even_when_correct() {
    block_on(async {
        let (world, service) = setup();
        let key = service.send_pin(KNOWN, &Client::default()).await.unwrap();
        world.advance(Duration::from_secs(600));
        let error = service
            .verify(key.expose(), &world.last_code(), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, VerifyError::Expired), "{error:?}");
    });
}

#[test]
fn a_pin_just_before_expiry_still_works() {
    block_on(async {
        let (world, service) = setup();
        let key = service.send_pin(KNOWN, &Client::default()).await.unwrap();
        world.advance(Duration::from_secs(599));
        service
            .verify(key.expose(), &world.last_code(), &Client::default())
            .await
            .unwrap();
    });
}

#[test]
fn five_wrong_pins_kill_the_challenge_and_the_sixth_is_refused_even_when_correct() {
    block_on(async {
        let (world, service) = setup();
        let key = service.send_pin(KNOWN, &Client::default()).await.unwrap();
        let code = world.last_code();
        let wrong = if code == "0000" { "1111" } else { "0000" };
        for _ in 0..5 {
            let error = service
                .verify(key.expose(), wrong, &Client::default())
                .await
                .unwrap_err();
            assert!(matches!(error, VerifyError::InvalidPin), "{error:?}");
        }
        let error = service
            .verify(key.expose(), &code, &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, VerifyError::TooManyAttempts), "{error:?}");
    });
}

#[test]
fn the_fifth_attempt_may_still_be_the_right_one() {
    block_on(async {
        let (world, service) = setup();
        let key = service.send_pin(KNOWN, &Client::default()).await.unwrap();
        let code = world.last_code();
        let wrong = if code == "0000" { "1111" } else { "0000" };
        for _ in 0..4 {
            service
                .verify(key.expose(), wrong, &Client::default())
                .await
                .unwrap_err();
        }
        service.verify(key.expose(), &code, &Client::default()).await.unwrap();
    });
}

#[test]
fn a_newer_pin_replaces_the_older_one() {
    block_on(async {
        let (world, service) = setup();
        let old_key = service.send_pin(KNOWN, &Client::default()).await.unwrap();
        let old_code = world.last_code();
        let new_key = service.send_pin(KNOWN, &Client::default()).await.unwrap();
        let new_code = world.last_code();
        assert_ne!(old_key, new_key, "the otp_auth_key cycles with every pin");
        let error = service
            .verify(old_key.expose(), &old_code, &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, VerifyError::InvalidPin), "{error:?}");
        service
            .verify(new_key.expose(), &new_code, &Client::default())
            .await
            .unwrap();
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
        let unknown = service.send_pin(UNKNOWN, &Client::default()).await.unwrap();
        let known = {
            // The same shape as a real key: 24 base64 characters of 16 bytes.
            assert_eq!(unknown.expose().len(), 24);
            OtpAuthKey::decode(unknown.expose()).expect("decodes like a real key")
        };
        assert_eq!(known.as_bytes().len(), 16);
        // The decoy did the same store work as a real pin, for no user.
        let rows = world.rows.lock().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].challenge.user_id, None);
    });
}

#[test]
fn a_decoy_challenge_never_yields_a_session_even_with_its_code() {
    block_on(async {
        let (world, service) = setup();
        let key = service.send_pin(UNKNOWN, &Client::default()).await.unwrap();
        // Force the decoy's stored hash to a code we know, as if guessed.
        let lookup = OtpAuthKey::decode(key.expose()).unwrap();
        let lookup_hash = hasher().lookup_hash(Purpose::PinAuth, &lookup);
        let code = OtpCode::parse("4321", CodeLength::new(4).unwrap()).unwrap();
        world.rows.lock().unwrap()[0].challenge.code_hash = hasher().code_hash(&lookup_hash, &code);
        let error = service
            .verify(key.expose(), "4321", &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, VerifyError::InvalidPin), "{error:?}");
    });
}

#[test]
fn a_consumed_pin_cannot_be_used_again() {
    block_on(async {
        let (world, service) = setup();
        let key = service.send_pin(KNOWN, &Client::default()).await.unwrap();
        let code = world.last_code();
        service.verify(key.expose(), &code, &Client::default()).await.unwrap();
        let error = service
            .verify(key.expose(), &code, &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, VerifyError::InvalidPin), "{error:?}");
    });
}

#[test]
fn malformed_keys_and_pins_spend_no_attempt() {
    block_on(async {
        let world = World::new();
        let mut parts = parts(&world);
        parts.challenges = MockChallengeStore::new();
        parts.challenges.expect_spend_attempt().never();
        let service = pin_auth(&world, parts);
        for (key, pin) in [
            ("not base64!", "1234"),
            ("/JqONEgEjrZefDV3ZIQsNA==", "12a4"),
            ("/JqONEgEjrZefDV3ZIQsNA==", "12345"),
        ] {
            let error = service.verify(key, pin, &Client::default()).await.unwrap_err();
            assert!(matches!(error, VerifyError::InvalidPin), "{error:?}");
        }
        assert!(matches!(
            service.verify("", "1234", &Client::default()).await,
            Err(VerifyError::MissingKey)
        ));
        assert!(matches!(
            service
                .verify("/JqONEgEjrZefDV3ZIQsNA==", " ", &Client::default())
                .await,
            Err(VerifyError::MissingPin)
        ));
    });
}

#[test]
fn invalid_mobiles_are_refused_before_any_store_call() {
    block_on(async {
        let world = World::new();
        let mut parts = parts(&world);
        parts.users = MockUserStore::new();
        parts.users.expect_find_by_phone().never();
        let service = pin_auth(&world, parts);
        let message = |r: Result<OtpAuthKey, SendPinError>| r.unwrap_err().to_string();
        assert_eq!(
            message(service.send_pin("", &Client::default()).await),
            "Mobile can't be blank"
        );
        assert_eq!(
            message(service.send_pin("+9101234567", &Client::default()).await),
            "Mobile must begin with +852"
        );
    });
}

#[test]
fn signup_of_a_new_mobile_creates_the_user_only_when_its_pin_is_verified() {
    block_on(async {
        let (world, service) = setup();
        let new_mobile = PhoneNumber::parse_e164("+85251224538").unwrap();
        let key = service
            .signup(
                SignupRequest {
                    mobile: new_mobile.as_str().into(),
                    first_name: Some("Jake".into()),
                    last_name: Some("Deamon".into()),
                    address: Some(NewAddress {
                        district_id: Some(1),
                        address_type: Some("Profile".into()),
                        ..NewAddress::default()
                    }),
                },
                &Client::default(),
            )
            .await
            .unwrap();
        assert_eq!(key.expose().len(), 24);
        assert_eq!(world.sent_count(), 1);
        let has_user = |world: &World| {
            world
                .users
                .lock()
                .unwrap()
                .iter()
                .any(|u| u.phone.as_ref() == Some(&new_mobile))
        };
        assert!(!has_user(&world), "no user before the pin is verified");
        {
            let signups = world.signups.lock().unwrap();
            assert_eq!(signups.len(), 1);
            assert_eq!(signups[0].1.first_name.as_deref(), Some("Jake"));
            assert_eq!(signups[0].1.address.as_ref().and_then(|a| a.district_id), Some(1));
        }
        let session = service
            .verify(key.expose(), &world.last_code(), &Client::default())
            .await
            .unwrap();
        assert!(has_user(&world));
        assert_eq!(session.profile.user.first_name.as_deref(), Some("Jake"));
        assert_eq!(session.profile.user.last_name.as_deref(), Some("Deamon"));
    });
}

#[test]
fn signup_of_an_existing_mobile_sends_a_pin_and_ignores_the_rest() {
    block_on(async {
        let (world, service) = setup();
        let key = service
            .signup(
                SignupRequest {
                    mobile: KNOWN.into(),
                    first_name: Some("Someone".into()),
                    ..SignupRequest::default()
                },
                &Client::default(),
            )
            .await
            .unwrap();
        assert!(world.signups.lock().unwrap().is_empty(), "nothing kept pending");
        let session = service
            .verify(key.expose(), &world.last_code(), &Client::default())
            .await
            .unwrap();
        assert_eq!(session.profile.user.id, UserId::new(1831));
        assert_eq!(session.profile.user.first_name.as_deref(), Some("Reynold"));
    });
}

#[test]
fn a_superseded_signup_never_names_the_user() {
    block_on(async {
        let (world, service) = setup();
        let signup = |name: &str| SignupRequest {
            mobile: "+85251224538".into(),
            first_name: Some(name.into()),
            ..SignupRequest::default()
        };
        // Someone who does not hold the number signs it up first; its owner
        // signs up after, and verifies their own pin.
        service.signup(signup("Mallory"), &Client::default()).await.unwrap();
        let key = service.signup(signup("Olivia"), &Client::default()).await.unwrap();
        let session = service
            .verify(key.expose(), &world.last_code(), &Client::default())
            .await
            .unwrap();
        assert_eq!(session.profile.user.first_name.as_deref(), Some("Olivia"));
    });
}

#[test]
fn current_user_profile_needs_a_valid_bearer_token() {
    block_on(async {
        let (_world, service) = setup();
        let profile = service.current_user_profile(Some("jwt-for-1831")).await.unwrap();
        assert_eq!(profile.user.id, UserId::new(1831));
        for bearer in [None, Some(""), Some("forged")] {
            let error = service.current_user_profile(bearer).await.unwrap_err();
            assert!(matches!(error, AuthError::Unauthorized(_)), "{error:?}");
        }
        let error = service.current_user_profile(Some("jwt-for-5")).await.unwrap_err();
        assert!(matches!(error, AuthError::Unauthorized(_)), "{error:?}");
    });
}

#[test]
fn register_device_records_the_handle_for_the_token_user() {
    block_on(async {
        let world = World::new();
        let mut parts = parts(&world);
        parts
            .devices
            .expect_register_push()
            .withf(|user, platform, handle, _| {
                *user == UserId::new(1831) && *platform == PushPlatform::Fcm && handle.as_str() == "reg-id"
            })
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        let service = pin_auth(&world, parts);
        service
            .register_device(Some("jwt-for-1831"), "reg-id", "fcm")
            .await
            .unwrap();
    });
}

#[test]
fn register_device_refuses_unknown_platforms_and_missing_tokens() {
    block_on(async {
        let world = World::new();
        let mut parts = parts(&world);
        parts.devices.expect_register_push().never();
        let service = pin_auth(&world, parts);
        let error = service
            .register_device(Some("jwt-for-1831"), "reg-id", "windows")
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "Platform must be one of fcm, gcm, aps");
        let error = service
            .register_device(Some("jwt-for-1831"), " ", "fcm")
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "Handle can't be blank");
        let error = service.register_device(None, "reg-id", "fcm").await.unwrap_err();
        assert!(matches!(error, RegisterDeviceError::Auth(_)), "{error:?}");
    });
}

#[test]
fn register_device_refuses_a_token_of_a_user_that_does_not_exist() {
    // Found by crates/app/tests/it/fuzz_routes: the device's foreign key was
    // refused by the database and the client got a 503.
    block_on(async {
        let world = World::new();
        let mut parts = parts(&world);
        parts.devices.expect_register_push().never();
        let service = pin_auth(&world, parts);
        let error = service
            .register_device(Some("jwt-for-5"), "reg-id", "fcm")
            .await
            .unwrap_err();
        assert!(
            matches!(error, RegisterDeviceError::Auth(AuthError::Unauthorized(_))),
            "{error:?}"
        );
    });
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
    let key = OtpAuthKey::encode(&[7u8; 16]);
    assert!(!format!("{key:?}").contains(key.expose()));
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
        service.send_pin(KNOWN, &Client::default()).await.unwrap();
        assert_eq!(world.sent_count(), 1);
        assert_eq!(*world.decoys.lock().unwrap(), 0);
        service.send_pin("+85291234567", &Client::default()).await.unwrap();
        assert_eq!(world.sent_count(), 1, "nothing is queued for an unknown mobile");
        assert_eq!(*world.decoys.lock().unwrap(), 1, "but a decoy row is written");
    });
}

#[test]
fn with_twilio_verify_an_unknown_mobile_answers_like_a_wrong_pin() {
    block_on(async {
        use crate::ports::{HostedCheck, MockHostedVerification};
        let world = World::new();
        let parts = parts(&world);
        let mut hosted = MockHostedVerification::new();
        // Starting the verification is queued, not called by the use case.
        hosted.expect_start().never();
        // Twilio has a pending code only for the known number; the decoy's
        // check still goes out, so it takes the same time.
        hosted.expect_check().times(2).returning(|to, _| {
            Ok(if to.as_str() == KNOWN {
                HostedCheck::Rejected
            } else {
                HostedCheck::NotFound
            })
        });
        let hosted: std::sync::Arc<dyn crate::ports::HostedVerification> = std::sync::Arc::new(hosted);
        let otp = OtpEngine::new(
            Arc::new(parts.challenges),
            Arc::new(support::clock(&world)),
            Arc::new(support::random()),
            hasher(),
        )
        .with_hosted(hosted.clone());
        let service = PinAuth::new(
            Arc::new(parts.users),
            Arc::new(parts.devices),
            Messenger::hosted(hosted, "en".into(), "phonegate".into()),
            Arc::new(support::tokens()),
            otp,
            settings(),
        );
        let known = service.send_pin(KNOWN, &Client::default()).await.unwrap();
        let unknown = service.send_pin(UNKNOWN, &Client::default()).await.unwrap();
        assert_eq!(
            *world.sent.lock().unwrap(),
            vec![("hosted", KNOWN.to_owned(), "sms".to_owned())],
            "only the known number's verification is queued"
        );
        let known = service
            .verify(known.expose(), "1234", &Client::default())
            .await
            .unwrap_err()
            .to_string();
        let unknown = service
            .verify(unknown.expose(), "1234", &Client::default())
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(known, "Invalid pin");
        assert_eq!(unknown, known);
    });
}
