//! Phone confirmation for a signed-in user.

use super::*;
use crate::otp::OtpCode;

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
        assert_eq!(
            service.phones().parse("(123)456-7890"),
            Err(crate::phone::PhoneInputError::Invalid)
        );
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
        let session = service.authenticate(&token("t")).await.unwrap();
        let phone = service.phones().parse("(206)372-1234").unwrap();
        service
            .send_phone_verification(&session, &phone, &Client::default())
            .await
            .unwrap();
        let code = world.last_code();
        assert_eq!(code.len(), 4);
        let wrong = if code == "0000" { "1111" } else { "0000" };
        let length = service.phone_code_length();
        assert!(matches!(
            service
                .verify_phone(&session, &OtpCode::parse(wrong, length).unwrap(), &Client::default())
                .await,
            Err(ConfirmPhoneError::WrongCode)
        ));
        service
            .verify_phone(&session, &OtpCode::parse(&code, length).unwrap(), &Client::default())
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
        let session = service.authenticate(&token("t")).await.unwrap();
        let phone = service.phones().parse("206-372-1234").unwrap();
        assert!(matches!(
            service
                .send_phone_verification(&session, &phone, &Client::default())
                .await,
            Err(SendPhoneCodeError::PhoneTaken)
        ));
        assert_eq!(world.sent_count(), 0);
    });
}
