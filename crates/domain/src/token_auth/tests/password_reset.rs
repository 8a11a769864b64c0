//! Requesting and completing a password reset.

use super::*;
use crate::account::Email;

#[test]
fn a_reset_for_an_unknown_email_sends_nothing() {
    block_on(async {
        let world = World::new();
        let mut mocks = Mocks::new().with_account("admin@beyondvip.com");
        mocks.accounts.expect_create_password_reset().never();
        // A decoy row keeps the store work of known and unknown emails alike.
        mocks.outbox.expect_enqueue_decoy().times(1).returning(|decoy, _| {
            assert!(matches!(decoy.envelope, Envelope::Mail(_)), "a whole email is composed");
            Ok(())
        });
        let service = mocks.build(&world);
        service
            .request_password_reset(&Email::parse("nobody@example.com").unwrap(), &Client::default())
            .await
            .unwrap();
    });
}

#[test]
fn a_reset_email_carries_a_link_with_a_token_stored_only_hashed() {
    block_on(async {
        let world = World::new();
        let mut mocks = Mocks::new().with_account("admin@beyondvip.com");
        let stored: Arc<Mutex<Option<NewPasswordReset>>> = Arc::default();
        let keep = stored.clone();
        let sent: Arc<Mutex<Vec<(String, Timestamp)>>> = Arc::default();
        let keep_sent = sent.clone();
        mocks
            .accounts
            .expect_create_password_reset()
            .times(1)
            .returning(move |reset, outgoing| {
                *keep.lock().unwrap() = Some(reset);
                let Outgoing::Message(OutboxMessage {
                    envelope: Envelope::Mail(mail),
                    not_after,
                    ..
                }) = outgoing
                else {
                    panic!("the reset email is queued with the reset");
                };
                assert_eq!(mail.to.as_str(), "admin@beyondvip.com");
                assert!(
                    mail.html_body
                        .expose_secret()
                        .contains("<a href=\"https://app.example.com/reset?token=")
                );
                keep_sent
                    .lock()
                    .unwrap()
                    .push((mail.text_body.expose_secret().to_owned(), not_after));
                Ok(())
            });
        let service = mocks.build(&world);
        service
            .request_password_reset(&Email::parse("admin@beyondvip.com").unwrap(), &Client::default())
            .await
            .unwrap();
        let (text, not_after) = sent.lock().unwrap()[0].clone();
        let token = text.split("token=").nth(1).unwrap().split_whitespace().next().unwrap();
        let reset = stored.lock().unwrap().clone().unwrap();
        assert_eq!(
            reset.token_hash,
            support::hasher().token_hash("password_reset", token.as_bytes())
        );
        assert_eq!(reset.expires_at.since(reset.created_at), Duration::from_secs(3600));
        assert_eq!(
            not_after, reset.expires_at,
            "the email is not delivered after its link expired"
        );
    });
}

#[test]
fn completing_a_reset_maps_each_outcome() {
    block_on(async {
        for (outcome, expected) in [
            (ResetOutcome::Done(UserId::new(7)), "ok"),
            (ResetOutcome::NotFound, "UnknownToken"),
            (ResetOutcome::AlreadyUsed, "UnknownToken"),
            (ResetOutcome::Expired, "Expired"),
        ] {
            let world = World::new();
            let mut mocks = Mocks::new().with_passwords();
            mocks
                .accounts
                .expect_find_password_reset()
                .returning(|_, _| Ok(ResetOutcome::Done(UserId::new(7))));
            mocks
                .accounts
                .expect_complete_password_reset()
                .withf(|_, hash, _| hash.as_str() == "hash-of-new password!")
                .returning(move |_, _, _| Ok(outcome));
            let service = mocks.build(&world);
            let result = service
                .complete_password_reset(&reset("tok", "new password!"), &Client::default())
                .await;
            let got = result.map(|_| "ok".to_owned()).unwrap_or_else(|e| format!("{e:?}"));
            assert_eq!(got, expected);
        }
    });
}

#[test]
fn a_guessed_reset_token_costs_a_lookup_and_no_hash() {
    block_on(async {
        for outcome in [ResetOutcome::NotFound, ResetOutcome::AlreadyUsed, ResetOutcome::Expired] {
            let world = World::new();
            let mut mocks = Mocks::new();
            mocks
                .accounts
                .expect_find_password_reset()
                .times(1)
                .returning(move |_, _| Ok(outcome));
            mocks.passwords.expect_hash().never();
            mocks.accounts.expect_complete_password_reset().never();
            let service = mocks.build(&world);
            let error = service
                .complete_password_reset(&reset("guess", "new password!"), &Client::default())
                .await
                .unwrap_err();
            assert!(
                matches!(error, CompleteResetError::UnknownToken | CompleteResetError::Expired),
                "{error:?}"
            );
        }
    });
}

/// A flawed new password is judged after the per-IP limit admits the
/// attempt, and before the token is looked up: a throttled client is told
/// to wait whatever it sent.
#[test]
fn a_flawed_new_password_is_refused_after_the_limit_and_before_the_lookup() {
    block_on(async {
        for (password, expected) in [
            (
                ProposedPassword::Invalid(crate::account::PasswordError::TooShort),
                "InvalidPassword(TooShort)",
            ),
            (ProposedPassword::Unconfirmed, "ConfirmationMismatch"),
        ] {
            let world = World::new();
            let mut mocks = Mocks::new();
            mocks.accounts.expect_find_password_reset().never();
            mocks.passwords.expect_hash().never();
            let service = mocks.build(&world);
            let reset = PasswordReset {
                token: ResetToken::parse("tok").unwrap(),
                password,
            };
            let error = service
                .complete_password_reset(&reset, &Client::default())
                .await
                .unwrap_err();
            assert_eq!(format!("{error:?}"), expected);
        }
    });
}
