//! The admin use cases.

use super::*;
use crate::account::{Email, NewPassword};

#[test]
fn common_passwords_are_refused_wherever_a_password_is_chosen() {
    block_on(async {
        let world = World::new();
        let mut mocks = Mocks::new().with_passwords();
        mocks
            .accounts
            .expect_find_password_reset()
            .returning(|_, _| Ok(ResetOutcome::Done(UserId::new(7))));
        mocks.accounts.expect_complete_password_reset().never();
        mocks.accounts.expect_create_account().never();
        let service = mocks.build(&world);
        let error = service
            .complete_password_reset(&reset("tok", "12345678"), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, CompleteResetError::CommonPassword));
        let new_user = |password: &str| NewUser {
            email: Email::parse("ada@example.com").unwrap(),
            password: NewPassword::parse(password).unwrap(),
            first_name: None,
            last_name: None,
            phone: None,
        };
        let error = service.admin().create_user(new_user("password")).await.unwrap_err();
        assert!(matches!(error, AdminError::CommonPassword));
        // The account's own email is as guessable as a listed password.
        let error = service
            .admin()
            .create_user(new_user("ada@example.com"))
            .await
            .unwrap_err();
        assert!(matches!(error, AdminError::CommonPassword));
    });
}
