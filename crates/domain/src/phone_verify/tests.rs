//! Unit tests of the phone-verify use cases over mocks of every port.

use std::{sync::Arc, time::Duration};

use pollster::block_on;
use secrecy::SecretString;

use super::*;
use crate::{
    phone::PhonePolicy,
    ports::MockTokenIssuer,
    test_support::{self as support, World},
    time::Timestamp,
    token::PhoneSession,
};

const PHONE: &str = "+12063721234";

/// Session tokens shaped like the JWTs the real issuer signs (three
/// base64url segments), whose middle segment is `phone|nonce|expiry`.
fn session_tokens() -> MockTokenIssuer {
    let mut tokens = MockTokenIssuer::new();
    tokens
        .expect_issue_phone_session()
        .returning(|phone, nonce, _now, expires_at| {
            let claims = URL_SAFE_NO_PAD.encode(format!("{phone}|{nonce}|{}", expires_at.unix_millis()));
            Ok(IssuedToken::new(
                SecretString::from(format!("eyJzZXNzaW9uIn0.{claims}.c2ln")),
                expires_at,
            ))
        });
    tokens.expect_verify_phone_session().returning(|token, now| {
        let claims = match token.split('.').collect::<Vec<_>>()[..] {
            ["eyJzZXNzaW9uIn0", claims, "c2ln"] => URL_SAFE_NO_PAD.decode(claims).map_err(|_| TokenError::Invalid)?,
            _ => return Err(TokenError::Invalid),
        };
        let claims = String::from_utf8(claims).map_err(|_| TokenError::Invalid)?;
        let [phone, nonce, expires] = claims.split('|').collect::<Vec<_>>()[..] else {
            return Err(TokenError::Invalid);
        };
        let expires_at = Timestamp::from_unix_millis(expires.parse().map_err(|_| TokenError::Invalid)?);
        if now >= expires_at {
            return Err(TokenError::Expired);
        }
        Ok(PhoneSession {
            phone: phone.to_owned(),
            nonce: nonce.to_owned(),
            expires_at,
        })
    });
    tokens
}

fn service(world: &Arc<World>) -> PhoneVerify {
    PhoneVerify::new(
        Arc::new(support::users(world)),
        support::messenger(world),
        Arc::new(session_tokens()),
        support::engine(world),
        PhoneVerifySettings {
            phones: PhonePolicy::new("US", &[], vec![]).unwrap(),
            policy: support::policy(6, 600),
        },
    )
}

/// `input` read as the edge reads it.
fn phone(service: &PhoneVerify, input: &str) -> PhoneNumber {
    service.phones().parse(input).unwrap()
}

/// A request as the edge builds it.
fn request(service: &PhoneVerify, phone_input: &str, code: &str, token: &str) -> VerifyRequest {
    VerifyRequest {
        phone: phone(service, phone_input),
        code: SubmittedCode::parse(code, service.code_length()),
        session_token: SessionToken::parse(token).unwrap(),
    }
}

/// A well-formed token that this service never signed.
const FORGED: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpb3MifQ.XSIBOsfA6kYd8NUE2MlvhdrOZszoWQdzunOGEU_Wr94";

#[test]
fn register_texts_a_six_digit_code_and_returns_a_session_token_without_it() {
    block_on(async {
        let world = World::new();
        let service = service(&world);
        let token = service
            .register(&phone(&service, "(206)372-1234"), &Client::default())
            .await
            .unwrap();
        let code = world.last_code();
        assert_eq!(code.len(), 6);
        let claims = token.expose().split('.').nth(1).unwrap();
        let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        assert!(claims.contains(PHONE));
        assert!(
            !token.expose().contains(&code) && !claims.contains(&code),
            "the token never carries the code"
        );
        assert_eq!(token.expires_at, world.rows.lock().unwrap()[0].challenge.expires_at);
    });
}

#[test]
fn verify_accepts_the_code_and_creates_the_user() {
    block_on(async {
        let world = World::new();
        let service = service(&world);
        let token = service
            .register(&phone(&service, PHONE), &Client::default())
            .await
            .unwrap();
        let verified = service
            .verify(
                request(&service, "206-372-1234", &world.last_code(), token.expose()),
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
        let token = service
            .register(&phone(&service, PHONE), &Client::default())
            .await
            .unwrap();
        let verified = service
            .verify(
                request(&service, PHONE, &world.last_code(), token.expose()),
                &Client::default(),
            )
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
        let token = service
            .register(&phone(&service, PHONE), &Client::default())
            .await
            .unwrap();
        let code = world.last_code();
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let error = service
            .verify(request(&service, PHONE, wrong, token.expose()), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, VerifyError::WrongCode), "{error:?}");
        let error = service
            .verify(
                request(&service, "+14155550100", &code, token.expose()),
                &Client::default(),
            )
            .await
            .unwrap_err();
        assert!(matches!(error, VerifyError::SessionForAnotherPhone), "{error:?}");
        let error = service
            .verify(request(&service, PHONE, &code, FORGED), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, VerifyError::SessionRefused), "{error:?}");
    });
}

#[test]
fn resending_replaces_the_previous_code() {
    block_on(async {
        let world = World::new();
        let service = service(&world);
        let old_token = service
            .register(&phone(&service, PHONE), &Client::default())
            .await
            .unwrap();
        let old_code = world.last_code();
        let new_token = service
            .register(&phone(&service, PHONE), &Client::default())
            .await
            .unwrap();
        let error = service
            .verify(
                request(&service, PHONE, &old_code, old_token.expose()),
                &Client::default(),
            )
            .await
            .unwrap_err();
        assert!(matches!(error, VerifyError::NoLiveChallenge), "{error:?}");
        service
            .verify(
                request(&service, PHONE, &world.last_code(), new_token.expose()),
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
        let token = service
            .register(&phone(&service, PHONE), &Client::default())
            .await
            .unwrap();
        world.advance(Duration::from_secs(600));
        let error = service
            .verify(
                request(&service, PHONE, &world.last_code(), token.expose()),
                &Client::default(),
            )
            .await
            .unwrap_err();
        assert!(matches!(error, VerifyError::SessionExpired), "{error:?}");
    });
}

#[test]
fn five_failures_kill_the_challenge() {
    block_on(async {
        let world = World::new();
        let service = service(&world);
        let token = service
            .register(&phone(&service, PHONE), &Client::default())
            .await
            .unwrap();
        let code = world.last_code();
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..5 {
            service
                .verify(request(&service, PHONE, wrong, token.expose()), &Client::default())
                .await
                .unwrap_err();
        }
        let error = service
            .verify(request(&service, PHONE, &code, token.expose()), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, VerifyError::AttemptsExhausted), "{error:?}");
    });
}

#[test]
fn the_session_is_judged_before_the_code() {
    block_on(async {
        let world = World::new();
        let service = service(&world);
        let token = service
            .register(&phone(&service, PHONE), &Client::default())
            .await
            .unwrap();
        // A malformed code with a live session: refused without spending
        // one of the challenge's attempts.
        for _ in 0..6 {
            let error = service
                .verify(request(&service, PHONE, "12345", token.expose()), &Client::default())
                .await
                .unwrap_err();
            assert!(matches!(error, VerifyError::MalformedCode), "{error:?}");
        }
        // The same malformed code with an expired session: expired.
        world.advance(Duration::from_secs(600));
        let error = service
            .verify(request(&service, PHONE, "12345", token.expose()), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, VerifyError::SessionExpired), "{error:?}");
        assert_eq!(world.rows.lock().unwrap()[0].attempts, 0);
    });
}
