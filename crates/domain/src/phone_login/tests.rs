//! Unit tests of the phone-login use cases over mocks of every port.

use std::{sync::Arc, time::Duration};

use pollster::block_on;

use super::*;
use crate::{
    otp::TestNumbers,
    ports::MockAccessCodeStore,
    test_support::{self as support, World},
};

const PHONE: &str = "+12063721234";

/// An access-code store over the world's access codes (which the user
/// store's `consume_verifying` writes).
fn access_codes(world: &Arc<World>) -> MockAccessCodeStore {
    let mut store = MockAccessCodeStore::new();
    let w = world.clone();
    store.expect_find_access_code().returning(move |hash| {
        Ok(w.access_codes
            .lock()
            .unwrap()
            .iter()
            .find(|c| c.code_hash == *hash)
            .map(|c| AccessCodeRecord {
                user_id: c.user_id,
                phone: w
                    .users
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|u| u.id == c.user_id)
                    .and_then(|u| u.phone.clone()),
                device_id: c.device_id.clone(),
                expires_at: c.expires_at,
                revoked: false,
            }))
    });
    store
}

fn service_with(world: &Arc<World>, engine: OtpEngine) -> PhoneLogin {
    PhoneLogin::new(
        Arc::new(support::users(world)),
        Arc::new(access_codes(world)),
        support::messenger(world),
        engine,
        PhoneLoginSettings {
            phones: PhonePolicy::new("US", &[], vec![]).unwrap(),
            policy: support::policy(5, 300),
            access_code_ttl: Duration::from_secs(30 * 86_400),
        },
    )
}

fn service(world: &Arc<World>) -> PhoneLogin {
    service_with(world, support::engine(world))
}

#[test]
fn a_new_phone_gets_a_five_digit_pin_by_sms() {
    block_on(async {
        let world = World::new();
        let service = service(&world);
        let status = service
            .phone_login(Some("(206)372-1234"), Some("abcde"), None, &Client::default())
            .await
            .unwrap();
        assert_eq!(status, LoginStatus::NewPhone);
        let sent = world.sent.lock().unwrap().clone();
        assert_eq!((sent[0].0, sent[0].1.as_str()), ("sms", PHONE));
        assert_eq!(world.last_code().len(), 5);
    });
}

#[test]
fn a_known_phone_is_returning() {
    block_on(async {
        let world = World::new();
        world.add_user(1, PHONE);
        let service = service(&world);
        let status = service
            .phone_login(Some(PHONE), Some("abcde"), Some("F"), &Client::default())
            .await
            .unwrap();
        assert_eq!(status, LoginStatus::ReturningPhone);
    });
}

#[test]
fn call_verify_reads_the_pin_aloud_digit_by_digit_twice() {
    block_on(async {
        let world = World::new();
        let service = service(&world);
        service
            .phone_login(Some(PHONE), Some("abcde"), Some("T"), &Client::default())
            .await
            .unwrap();
        let sent = world.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, "call");
        let text = &sent[0].2;
        // "Your phonegate code is 1, 2, 3, 4, 5. Again, your code is 1, 2, 3, 4, 5."
        let rest = text.strip_prefix("Your phonegate code is ").expect(text);
        let (first, second) = rest.split_once(". Again, your code is ").expect(text);
        assert_eq!(Some(first), second.strip_suffix('.'), "read twice: {text}");
        let digits: Vec<&str> = first.split(", ").collect();
        assert_eq!(digits.len(), 5, "{text}");
        assert!(
            digits.iter().all(|d| d.len() == 1 && d.as_bytes()[0].is_ascii_digit()),
            "{text}"
        );
        let pin: String = digits.concat();
        let grant = service
            .check_pin(Some(PHONE), Some("abcde"), Some(&pin), &Client::default())
            .await
            .unwrap();
        assert_eq!(grant.expose().len(), 32);
    });
}

#[test]
fn check_pin_issues_an_access_code_that_a_backend_can_validate() {
    block_on(async {
        let world = World::new();
        let service = service(&world);
        service
            .phone_login(Some(PHONE), Some("abcde"), None, &Client::default())
            .await
            .unwrap();
        let grant = service
            .check_pin(
                Some("206-372-1234"),
                Some("abcde"),
                Some(&world.last_code()),
                &Client::default(),
            )
            .await
            .unwrap();
        assert_eq!(grant.expose().len(), 32);
        assert!(grant.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        let info = service
            .check_access_code(Some(grant.expose()), None, &Client::default())
            .await
            .unwrap();
        assert_eq!(info.user_id, grant.user_id);
        assert_eq!(info.phone.as_ref().map(PhoneNumber::as_str), Some(PHONE));
        assert!(
            service
                .check_access_code(Some(grant.expose()), Some("abcde"), &Client::default())
                .await
                .is_ok()
        );
        assert!(matches!(
            service
                .check_access_code(Some(grant.expose()), Some("other"), &Client::default())
                .await,
            Err(AccessCodeError::Invalid)
        ));
        assert!(matches!(
            service
                .check_access_code(Some(&"0".repeat(32)), None, &Client::default())
                .await,
            Err(AccessCodeError::Invalid)
        ));
        world.advance(Duration::from_secs(30 * 86_400));
        assert!(matches!(
            service
                .check_access_code(Some(grant.expose()), None, &Client::default())
                .await,
            Err(AccessCodeError::Expired)
        ));
    });
}

#[test]
fn the_pin_is_bound_to_the_device() {
    block_on(async {
        let world = World::new();
        let service = service(&world);
        service
            .phone_login(Some(PHONE), Some("abcde"), None, &Client::default())
            .await
            .unwrap();
        let pin = world.last_code();
        let error = service
            .check_pin(Some(PHONE), Some("other"), Some(&pin), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, CheckPinError::InvalidPin), "{error:?}");
        // The wrong device spent an attempt but the right one still works.
        service
            .check_pin(Some(PHONE), Some("abcde"), Some(&pin), &Client::default())
            .await
            .unwrap();
    });
}

#[test]
fn an_expired_pin_is_pin_expired() {
    block_on(async {
        let world = World::new();
        let service = service(&world);
        service
            .phone_login(Some(PHONE), Some("abcde"), None, &Client::default())
            .await
            .unwrap();
        world.advance(Duration::from_secs(300));
        let error = service
            .check_pin(Some(PHONE), Some("abcde"), Some(&world.last_code()), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, CheckPinError::PinExpired), "{error:?}");
    });
}

#[test]
fn parameters_are_checked() {
    block_on(async {
        let world = World::new();
        let service = service(&world);
        let param = |r: Result<LoginStatus, PhoneLoginError>| match r {
            Err(PhoneLoginError::Parameter(p)) => p,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            param(service.phone_login(None, Some("d"), None, &Client::default()).await),
            ParameterError::Missing("phone_number")
        );
        assert_eq!(
            param(service.phone_login(Some(PHONE), None, None, &Client::default()).await),
            ParameterError::Missing("device_id")
        );
        assert_eq!(
            param(
                service
                    .phone_login(Some(PHONE), Some("d"), Some("yes"), &Client::default())
                    .await
            ),
            ParameterError::Invalid("call_verify")
        );
        assert_eq!(
            param(
                service
                    .phone_login(Some("12"), Some("d"), None, &Client::default())
                    .await
            ),
            ParameterError::InvalidPhone
        );
        assert_eq!(
            param(
                service
                    .phone_login(Some(PHONE), Some(&"d".repeat(300)), None, &Client::default())
                    .await
            ),
            ParameterError::Invalid("device_id")
        );
        assert!(matches!(
            service
                .check_pin(Some(PHONE), Some("d"), None, &Client::default())
                .await,
            Err(CheckPinError::Parameter(ParameterError::Missing("verify_pin")))
        ));
        assert_eq!(world.sent_count(), 0);
    });
}

#[test]
fn a_test_number_sends_nothing_and_accepts_its_fixed_code() {
    block_on(async {
        let world = World::new();
        let numbers = TestNumbers::new(vec![], vec![("+1415".into(), "123456".into())]).unwrap();
        let numbers = Arc::new(numbers);
        let service = service_with(&world, support::engine(&world).with_test_numbers(numbers.clone()));
        service
            .phone_login(Some("+1 415 555 0100"), Some("d"), Some("T"), &Client::default())
            .await
            .unwrap();
        assert_eq!(world.sent_count(), 0);
        assert_eq!(numbers.uses(), 1);
        // Cut to this surface's 5 digits.
        service
            .check_pin(Some("+14155550100"), Some("d"), Some("12345"), &Client::default())
            .await
            .unwrap();
        // Other numbers are not affected.
        service
            .phone_login(Some(PHONE), Some("d"), None, &Client::default())
            .await
            .unwrap();
        assert_eq!(world.sent_count(), 1);
    });
}

/// A user store whose first `consume_verifying` fails as a database would
/// (the transaction rolls back: the challenge is left as it was), then
/// behaves like `inner`.
struct FailsOnce {
    inner: crate::ports::MockUserStore,
    failed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl UserStore for FailsOnce {
    async fn find_by_phone(&self, phone: &PhoneNumber) -> Result<Option<crate::user::User>, StoreError> {
        self.inner.find_by_phone(phone).await
    }

    async fn profile(&self, id: UserId) -> Result<Option<crate::user::UserProfile>, StoreError> {
        self.inner.profile(id).await
    }

    async fn store_signup(
        &self,
        signup: crate::user::NewUser,
        challenge: crate::otp::NewChallenge,
        outgoing: crate::outbox::Outgoing,
    ) -> Result<crate::otp::ChallengeId, StoreError> {
        self.inner.store_signup(signup, challenge, outgoing).await
    }

    async fn consume_verifying(
        &self,
        challenge: crate::otp::ChallengeId,
        verification: PhoneVerification,
    ) -> Result<Option<(crate::user::User, bool)>, StoreError> {
        if !self.failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::new("insert_access_code", "the access code insert failed"));
        }
        self.inner.consume_verifying(challenge, verification).await
    }

    async fn upsert_verified_phone(
        &self,
        phone: &PhoneNumber,
        now: Timestamp,
    ) -> Result<(crate::user::User, bool), StoreError> {
        self.inner.upsert_verified_phone(phone, now).await
    }
}

#[test]
fn a_failed_write_leaves_the_pin_usable_for_a_retry() {
    block_on(async {
        let world = World::new();
        let service = PhoneLogin::new(
            Arc::new(FailsOnce {
                inner: support::users(&world),
                failed: Default::default(),
            }),
            Arc::new(access_codes(&world)),
            support::messenger(&world),
            support::engine(&world),
            PhoneLoginSettings {
                phones: PhonePolicy::new("US", &[], vec![]).unwrap(),
                policy: support::policy(5, 300),
                access_code_ttl: Duration::from_secs(30 * 86_400),
            },
        );
        service
            .phone_login(Some(PHONE), Some("abcde"), None, &Client::default())
            .await
            .unwrap();
        let pin = world.last_code();
        let error = service
            .check_pin(Some(PHONE), Some("abcde"), Some(&pin), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, CheckPinError::Store(_)), "{error:?}");
        assert!(world.access_codes.lock().unwrap().is_empty());
        let grant = service
            .check_pin(Some(PHONE), Some("abcde"), Some(&pin), &Client::default())
            .await
            .unwrap();
        let info = service
            .check_access_code(Some(grant.expose()), Some("abcde"), &Client::default())
            .await
            .unwrap();
        assert_eq!(info.user_id, grant.user_id);
    });
}
