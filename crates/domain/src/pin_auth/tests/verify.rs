//! `verify`: pins right, wrong, expired, exhausted, superseded and used,
//! keys and pins that cannot be ours, and decoys.

use super::*;

#[test]
fn happy_path_returns_a_token_and_the_profile() {
    block_on(async {
        let (world, service) = setup();
        let key = service.send_pin(&mobile(KNOWN), &Client::default()).await.unwrap();
        let session = service
            .verify(&key, &pin(&world.last_code()), &Client::default())
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
        let key = service.send_pin(&mobile(KNOWN), &Client::default()).await.unwrap();
        let wrong = if world.last_code() == "0000" { "1111" } else { "0000" };
        let error = service.verify(&key, &pin(wrong), &Client::default()).await.unwrap_err();
        assert!(matches!(error, VerifyError::WrongPin), "{error:?}");
    });
}

#[test]
fn expired_pin_is_refused_even_when_correct() {
    block_on(async {
        let (world, service) = setup();
        let key = service.send_pin(&mobile(KNOWN), &Client::default()).await.unwrap();
        world.advance(Duration::from_secs(600));
        let error = service
            .verify(&key, &pin(&world.last_code()), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, VerifyError::Expired), "{error:?}");
    });
}

#[test]
fn a_pin_just_before_expiry_still_works() {
    block_on(async {
        let (world, service) = setup();
        let key = service.send_pin(&mobile(KNOWN), &Client::default()).await.unwrap();
        world.advance(Duration::from_secs(599));
        service
            .verify(&key, &pin(&world.last_code()), &Client::default())
            .await
            .unwrap();
    });
}

#[test]
fn five_wrong_pins_kill_the_challenge_and_the_sixth_is_refused_even_when_correct() {
    block_on(async {
        let (world, service) = setup();
        let key = service.send_pin(&mobile(KNOWN), &Client::default()).await.unwrap();
        let code = world.last_code();
        let wrong = if code == "0000" { "1111" } else { "0000" };
        for _ in 0..5 {
            let error = service.verify(&key, &pin(wrong), &Client::default()).await.unwrap_err();
            assert!(matches!(error, VerifyError::WrongPin), "{error:?}");
        }
        let error = service.verify(&key, &pin(&code), &Client::default()).await.unwrap_err();
        assert!(matches!(error, VerifyError::AttemptsExhausted), "{error:?}");
    });
}

#[test]
fn the_fifth_attempt_may_still_be_the_right_one() {
    block_on(async {
        let (world, service) = setup();
        let key = service.send_pin(&mobile(KNOWN), &Client::default()).await.unwrap();
        let code = world.last_code();
        let wrong = if code == "0000" { "1111" } else { "0000" };
        for _ in 0..4 {
            service.verify(&key, &pin(wrong), &Client::default()).await.unwrap_err();
        }
        service.verify(&key, &pin(&code), &Client::default()).await.unwrap();
    });
}

#[test]
fn a_newer_pin_replaces_the_older_one() {
    block_on(async {
        let (world, service) = setup();
        let old_key = service.send_pin(&mobile(KNOWN), &Client::default()).await.unwrap();
        let old_code = world.last_code();
        let new_key = service.send_pin(&mobile(KNOWN), &Client::default()).await.unwrap();
        let new_code = world.last_code();
        assert_ne!(old_key, new_key, "the otp_auth_key cycles with every pin");
        let error = service
            .verify(&old_key, &pin(&old_code), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, VerifyError::WrongPin), "{error:?}");
        service
            .verify(&new_key, &pin(&new_code), &Client::default())
            .await
            .unwrap();
    });
}

#[test]
fn a_decoy_challenge_never_yields_a_session_even_with_its_code() {
    block_on(async {
        let (world, service) = setup();
        let key = service.send_pin(&mobile(UNKNOWN), &Client::default()).await.unwrap();
        // Force the decoy's stored hash to a code we know, as if guessed.
        let lookup = key.lookup();
        let lookup_hash = hasher().lookup_hash(Purpose::PinAuth, &lookup);
        let code = OtpCode::parse("4321", CodeLength::new(4).unwrap()).unwrap();
        world.rows.lock().unwrap()[0].challenge.code_hash = hasher().code_hash(&lookup_hash, &code);
        let error = service
            .verify(&key, &pin("4321"), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, VerifyError::WrongPin), "{error:?}");
    });
}

#[test]
fn a_consumed_pin_cannot_be_used_again() {
    block_on(async {
        let (world, service) = setup();
        let key = service.send_pin(&mobile(KNOWN), &Client::default()).await.unwrap();
        let code = world.last_code();
        service.verify(&key, &pin(&code), &Client::default()).await.unwrap();
        let error = service.verify(&key, &pin(&code), &Client::default()).await.unwrap_err();
        assert!(matches!(error, VerifyError::WrongPin), "{error:?}");
    });
}

/// A key or pin that cannot match any challenge is refused by its parsing
/// function, so the use case (and its attempt counter) never sees it.
#[test]
fn malformed_keys_and_pins_are_refused_by_parsing() {
    assert_eq!(OtpAuthKey::parse("not base64!"), Err(OtpAuthKeyError::Malformed));
    assert_eq!(OtpAuthKey::parse("AAAA"), Err(OtpAuthKeyError::Malformed), "3 bytes");
    assert_eq!(OtpAuthKey::parse(" \t"), Err(OtpAuthKeyError::Blank));
    let key = OtpAuthKey::parse(" /JqONEgEjrZefDV3ZIQsNA== ").expect("16 bytes of base64");
    assert_eq!(key.expose(), "/JqONEgEjrZefDV3ZIQsNA==");
    let settings = settings();
    for malformed in ["12a4", "12345", "12"] {
        assert_eq!(settings.parse_pin(malformed), Err(PinError::Malformed), "{malformed}");
    }
    assert_eq!(settings.parse_pin(" "), Err(PinError::Blank));
    assert_eq!(
        settings.parse_pin(" 1234 ").map(|pin| pin.expose().to_owned()),
        Ok("1234".to_owned())
    );
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
        let known = service.send_pin(&mobile(KNOWN), &Client::default()).await.unwrap();
        let unknown = service.send_pin(&mobile(UNKNOWN), &Client::default()).await.unwrap();
        assert_eq!(
            *world.sent.lock().unwrap(),
            vec![("hosted", KNOWN.to_owned(), "sms".to_owned())],
            "only the known number's verification is queued"
        );
        let known = service
            .verify(&known, &pin("1234"), &Client::default())
            .await
            .unwrap_err();
        let unknown = service
            .verify(&unknown, &pin("1234"), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(known, VerifyError::WrongPin), "{known:?}");
        assert!(matches!(unknown, VerifyError::WrongPin), "{unknown:?}");
    });
}

#[test]
fn a_code_twilio_verify_made_is_checked_there_whichever_instance_checks_it() {
    block_on(async {
        use crate::ports::{HostedCheck, MockHostedVerification};
        let world = World::new();
        let first = parts(&world);
        // The instance that sent the code asked Verify to make it.
        let mut verify = MockHostedVerification::new();
        verify.expect_check().times(1).returning(|_, code| {
            Ok(if code.expose() == "4242" {
                HostedCheck::Approved
            } else {
                HostedCheck::Rejected
            })
        });
        let verify: std::sync::Arc<dyn crate::ports::HostedVerification> = std::sync::Arc::new(verify);
        let challenges: Arc<dyn crate::ports::ChallengeStore> = Arc::new(first.challenges);
        let clock = Arc::new(support::clock(&world));
        let sender = OtpEngine::new(challenges.clone(), clock.clone(), Arc::new(support::random()), hasher());
        let sending = PinAuth::new(
            Arc::new(first.users),
            Arc::new(first.devices),
            Messenger::hosted(verify.clone(), "en".into(), "phonegate".into()),
            Arc::new(support::tokens()),
            sender.with_hosted(verify.clone()),
            settings(),
        );
        let key = sending.send_pin(&mobile(KNOWN), &Client::default()).await.unwrap();
        // Another instance makes its own codes but can reach Verify: the
        // hosted code goes there, the only place that can check it.
        let other = parts(&world);
        let checking = PinAuth::new(
            Arc::new(other.users),
            Arc::new(other.devices),
            Messenger::new(
                Arc::new(crate::ports::MockSmsSender::new()),
                Arc::new(crate::ports::MockVoiceCaller::new()),
                "phonegate".into(),
            ),
            Arc::new(support::tokens()),
            OtpEngine::new(challenges, clock, Arc::new(support::random()), hasher()).with_hosted_checks(verify),
            settings(),
        );
        let verified = checking.verify(&key, &pin("4242"), &Client::default()).await;
        assert!(verified.is_ok(), "{verified:?}");
    });
}
