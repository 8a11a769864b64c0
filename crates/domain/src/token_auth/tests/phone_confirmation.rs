//! Phone confirmation for a signed-in user.

use super::*;

#[test]
fn a_signed_in_user_confirms_a_phone_with_a_texted_code() {
    block_on(async {
        let world = World::new();
        let mut mocks = Mocks::new();
        mocks
            .sessions
            .expect_find_session()
            .returning(|_| Ok(Some(session(7, false))));
        mocks.accounts.expect_set_verified_phone().never();
        let service = mocks.build(&world);
        // The seed's own example number is not a real US number.
        assert!(matches!(
            service
                .send_phone_verification(Some("t"), Some("(123)456-7890"), &Client::default())
                .await,
            Err(PhoneVerificationError::InvalidPhone)
        ));
        let service = {
            let mut mocks = Mocks::new();
            mocks
                .sessions
                .expect_find_session()
                .returning(|_| Ok(Some(session(7, false))));
            mocks.users.expect_find_by_phone().returning(|_| Ok(None));
            mocks
                .accounts
                .expect_set_verified_phone()
                .withf(|user, phone, _| *user == UserId::new(7) && phone.as_str() == "+12063721234")
                .times(1)
                .returning(|_, _, _| Ok(()));
            mocks.build(&world)
        };
        service
            .send_phone_verification(Some("t"), Some("(206)372-1234"), &Client::default())
            .await
            .unwrap();
        let code = world.last_code();
        assert_eq!(code.len(), 4);
        let wrong = if code == "0000" { "1111" } else { "0000" };
        assert!(matches!(
            service.verify_phone(Some("t"), Some(wrong), &Client::default()).await,
            Err(PhoneVerificationError::InvalidCode)
        ));
        service
            .verify_phone(Some("t"), Some(&code), &Client::default())
            .await
            .unwrap();
    });
}

#[test]
fn a_phone_of_another_user_is_refused() {
    block_on(async {
        let world = World::new();
        let mut mocks = Mocks::new();
        mocks
            .sessions
            .expect_find_session()
            .returning(|_| Ok(Some(session(7, false))));
        mocks
            .users
            .expect_find_by_phone()
            .returning(|_| Ok(Some(user(8, "+12063721234"))));
        let service = mocks.build(&world);
        assert!(matches!(
            service
                .send_phone_verification(Some("t"), Some("206-372-1234"), &Client::default())
                .await,
            Err(PhoneVerificationError::PhoneTaken)
        ));
        assert_eq!(world.sent_count(), 0);
    });
}

