//! `signup`, and the bearer-token use cases: `current_user_profile` and
//! `register_device`.

use super::*;

#[test]
fn signup_of_a_new_mobile_creates_the_user_only_when_its_pin_is_verified() {
    block_on(async {
        let (world, service) = setup();
        let new_mobile = PhoneNumber::parse_e164("+85251224538").unwrap();
        let key = service
            .signup(
                Signup {
                    first_name: Some(text("Jake")),
                    last_name: Some(text("Deamon")),
                    address: Some(SignupAddress {
                        district_id: Some(1),
                        address_type: Some(text("Profile")),
                        ..SignupAddress::default()
                    }),
                    ..Signup::of(new_mobile.clone())
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
            .verify(&key, &pin(&world.last_code()), &Client::default())
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
                Signup {
                    first_name: Some(text("Someone")),
                    ..Signup::of(mobile(KNOWN))
                },
                &Client::default(),
            )
            .await
            .unwrap();
        assert!(world.signups.lock().unwrap().is_empty(), "nothing kept pending");
        let session = service
            .verify(&key, &pin(&world.last_code()), &Client::default())
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
        let signup = |name: &str| Signup {
            first_name: Some(text(name)),
            ..Signup::of(mobile("+85251224538"))
        };
        // Someone who does not hold the number signs it up first; its owner
        // signs up after, and verifies their own pin.
        service.signup(signup("Mallory"), &Client::default()).await.unwrap();
        let key = service.signup(signup("Olivia"), &Client::default()).await.unwrap();
        let session = service
            .verify(&key, &pin(&world.last_code()), &Client::default())
            .await
            .unwrap();
        assert_eq!(session.profile.user.first_name.as_deref(), Some("Olivia"));
    });
}

#[test]
fn current_user_profile_needs_a_valid_bearer_token() {
    block_on(async {
        let (_world, service) = setup();
        let signed_in = service.authenticate(&bearer("jwt-for-1831")).unwrap();
        let profile = service.current_user_profile(signed_in).await.unwrap();
        assert_eq!(profile.user.id, UserId::new(1831));
        assert!(BearerToken::parse(" ").is_none(), "a blank token is no token");
        let error = service.authenticate(&bearer("forged")).unwrap_err();
        assert!(
            matches!(error, AuthError::TokenRefused(TokenError::Invalid)),
            "{error:?}"
        );
        let signed_in = service.authenticate(&bearer("jwt-for-5")).unwrap();
        let error = service.current_user_profile(signed_in).await.unwrap_err();
        assert!(matches!(error, AuthError::UnknownUser), "{error:?}");
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
        let signed_in = service.authenticate(&bearer("jwt-for-1831")).unwrap();
        let handle = PushHandle::parse("reg-id").unwrap();
        service
            .register_device(signed_in, &handle, PushPlatform::Fcm)
            .await
            .unwrap();
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
        let signed_in = service.authenticate(&bearer("jwt-for-5")).unwrap();
        let handle = PushHandle::parse("reg-id").unwrap();
        let error = service
            .register_device(signed_in, &handle, PushPlatform::Fcm)
            .await
            .unwrap_err();
        assert!(
            matches!(error, RegisterDeviceError::Auth(AuthError::UnknownUser)),
            "{error:?}"
        );
    });
}
