//! The admin use cases.

use super::*;

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
            .complete_password_reset(Some("tok"), Some("12345678"), None, &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            CompleteResetError::InvalidPassword(PasswordError::TooCommon)
        ));
        assert_eq!(
            error.to_string(),
            "Password is too common. Please choose a less common password."
        );
        let error = service
            .create_user("ada@example.com", "password", None, None, None)
            .await
            .unwrap_err();
        assert!(matches!(error, AdminError::InvalidPassword(PasswordError::TooCommon)));
        // The account's own email is as guessable as a listed password.
        let error = service
            .create_user("ada@example.com", "ada@example.com", None, None, None)
            .await
            .unwrap_err();
        assert!(matches!(error, AdminError::InvalidPassword(PasswordError::TooCommon)));
    });
}

