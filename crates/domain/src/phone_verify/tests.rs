//! Unit tests of the phone-verify use cases over mocks of every port.

use std::{sync::Arc, time::Duration};

use pollster::block_on;

use super::*;
use crate::{
    phone::PhonePolicy,
    test_support::{self as support, World},
};

const PHONE: &str = "+12063721234";

fn service(world: &Arc<World>) -> PhoneVerify {
    PhoneVerify::new(
        Arc::new(support::users(world)),
        support::messenger(world),
        Arc::new(support::tokens()),
        support::engine(world),
        PhoneVerifySettings {
            phones: PhonePolicy::new("US", &[], vec![]).unwrap(),
            policy: support::policy(6, 600),
        },
    )
}

fn request<'a>(phone: &'a str, code: &'a str, token: &'a str) -> VerifyRequest<'a> {
    VerifyRequest {
        phone_number: Some(phone),
        security_code: Some(code),
        session_token: Some(token),
    }
}

#[test]
fn register_texts_a_six_digit_code_and_returns_a_session_token_without_it() {
    block_on(async {
        let world = World::new();
        let service = service(&world);
        let token = service
            .register(Some("(206)372-1234"), &Client::default())
            .await
            .unwrap();
        let code = world.last_code();
        assert_eq!(code.len(), 6);
        assert!(token.expose().contains(PHONE));
        assert!(!token.expose().contains(&code), "the token never carries the code");
        assert_eq!(token.expires_at, world.rows.lock().unwrap()[0].challenge.expires_at);
    });
}

#[test]
fn verify_accepts_the_code_and_creates_the_user() {
    block_on(async {
        let world = World::new();
        let service = service(&world);
        let token = service.register(Some(PHONE), &Client::default()).await.unwrap();
        let verified = service
            .verify(
                request("206-372-1234", &world.last_code(), token.expose()),
                &Client::default(),
            )
            .await
            .unwrap();
        assert!(verified.created);
        assert_eq!(world.users.lock().unwrap().len(), 1);
    });
}

#[test]
fn verify_of_a_known_phone_reuses_its_user() {
    block_on(async {
        let world = World::new();
        world.add_user(7, PHONE);
        let service = service(&world);
        let token = service.register(Some(PHONE), &Client::default()).await.unwrap();
        let verified = service
            .verify(request(PHONE, &world.last_code(), token.expose()), &Client::default())
            .await
            .unwrap();
        assert_eq!((verified.user_id, verified.created), (UserId::new(7), false));
    });
}

#[test]
fn a_wrong_code_or_a_token_for_another_phone_is_not_valid() {
    block_on(async {
        let world = World::new();
        let service = service(&world);
        let token = service.register(Some(PHONE), &Client::default()).await.unwrap();
        let code = world.last_code();
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let error = service
            .verify(request(PHONE, wrong, token.expose()), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, PhoneVerifyError::InvalidCode), "{error:?}");
        let error = service
            .verify(request("+14155550100", &code, token.expose()), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, PhoneVerifyError::InvalidCode), "{error:?}");
        let error = service
            .verify(request(PHONE, &code, "forged"), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, PhoneVerifyError::InvalidCode), "{error:?}");
    });
}

#[test]
fn resending_replaces_the_previous_code() {
    block_on(async {
        let world = World::new();
        let service = service(&world);
        let old_token = service.register(Some(PHONE), &Client::default()).await.unwrap();
        let old_code = world.last_code();
        let new_token = service.register(Some(PHONE), &Client::default()).await.unwrap();
        let error = service
            .verify(request(PHONE, &old_code, old_token.expose()), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, PhoneVerifyError::InvalidCode), "{error:?}");
        service
            .verify(
                request(PHONE, &world.last_code(), new_token.expose()),
                &Client::default(),
            )
            .await
            .unwrap();
    });
}

#[test]
fn an_expired_code_says_so() {
    block_on(async {
        let world = World::new();
        let service = service(&world);
        let token = service.register(Some(PHONE), &Client::default()).await.unwrap();
        world.advance(Duration::from_secs(600));
        let error = service
            .verify(request(PHONE, &world.last_code(), token.expose()), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, PhoneVerifyError::Expired), "{error:?}");
    });
}

#[test]
fn five_failures_kill_the_challenge() {
    block_on(async {
        let world = World::new();
        let service = service(&world);
        let token = service.register(Some(PHONE), &Client::default()).await.unwrap();
        let code = world.last_code();
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..5 {
            service
                .verify(request(PHONE, wrong, token.expose()), &Client::default())
                .await
                .unwrap_err();
        }
        let error = service
            .verify(request(PHONE, &code, token.expose()), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, PhoneVerifyError::TooManyAttempts), "{error:?}");
    });
}

#[test]
fn missing_fields_are_all_named() {
    block_on(async {
        let world = World::new();
        let service = service(&world);
        let error = service
            .verify(
                VerifyRequest {
                    phone_number: Some(PHONE),
                    security_code: Some(" "),
                    session_token: None,
                },
                &Client::default(),
            )
            .await
            .unwrap_err();
        match error {
            PhoneVerifyError::MissingFields(fields) => {
                assert_eq!(fields, vec!["security_code", "session_token"])
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            service.register(None, &Client::default()).await,
            Err(RegisterError::MissingPhone)
        ));
        assert!(matches!(
            service.register(Some("+9180765XXX10"), &Client::default()).await,
            Err(RegisterError::InvalidPhone(_))
        ));
        assert_eq!(world.sent_count(), 0);
    });
}
