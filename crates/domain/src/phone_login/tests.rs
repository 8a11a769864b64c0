//! Unit tests of the phone-login use cases over mocks of every port.

use std::{sync::Arc, time::Duration};

use pollster::block_on;

use super::*;
use crate::{
    otp::{Channel, TestNumbers},
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

/// A PIN request as the edge builds it.
fn pin_request(service: &PhoneLogin, phone: &str, device: &str, channel: Channel) -> PinRequest {
    PinRequest {
        phone: service.phones().parse(phone).unwrap(),
        device: DeviceId::parse(device).unwrap(),
        channel,
    }
}

/// A PIN check as the edge builds it.
fn pin_check(service: &PhoneLogin, phone: &str, device: &str, pin: &str) -> PinCheck {
    PinCheck {
        phone: service.phones().parse(phone).unwrap(),
        device: DeviceId::parse(device).unwrap(),
        pin: OtpCode::parse(pin, service.pin_length()).unwrap(),
    }
}

fn access_code(code: &str) -> SubmittedAccessCode {
    SubmittedAccessCode::parse(code)
}

fn device(device: Option<&str>) -> RequiredDevice {
    RequiredDevice::parse(device)
}

#[test]
fn a_new_phone_gets_a_five_digit_pin_by_sms() {
    block_on(async {
        let world = World::new();
        let service = service(&world);
        let status = service
            .phone_login(
                pin_request(&service, "(206)372-1234", "abcde", Channel::Sms),
                &Client::default(),
            )
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
            .phone_login(pin_request(&service, PHONE, "abcde", Channel::Sms), &Client::default())
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
            .phone_login(pin_request(&service, PHONE, "abcde", Channel::Call), &Client::default())
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
            .check_pin(pin_check(&service, PHONE, "abcde", &pin), &Client::default())
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
            .phone_login(pin_request(&service, PHONE, "abcde", Channel::Sms), &Client::default())
            .await
            .unwrap();
        let grant = service
            .check_pin(
                pin_check(&service, "206-372-1234", "abcde", &world.last_code()),
                &Client::default(),
            )
            .await
            .unwrap();
        assert_eq!(grant.expose().len(), 32);
        assert!(grant.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        let info = service
            .check_access_code(access_code(grant.expose()), &device(None), &Client::default())
            .await
            .unwrap();
        assert_eq!(info.user_id, grant.user_id);
        assert_eq!(info.phone.as_ref().map(PhoneNumber::as_str), Some(PHONE));
        assert!(
            service
                .check_access_code(access_code(grant.expose()), &device(Some("abcde")), &Client::default())
                .await
                .is_ok()
        );
        assert!(matches!(
            service
                .check_access_code(access_code(grant.expose()), &device(Some("other")), &Client::default())
                .await,
            Err(AccessCodeError::OtherDevice)
        ));
        assert!(matches!(
            service
                .check_access_code(access_code(&"0".repeat(32)), &device(None), &Client::default())
                .await,
            Err(AccessCodeError::Unknown)
        ));
        world.advance(Duration::from_secs(30 * 86_400));
        assert!(matches!(
            service
                .check_access_code(access_code(grant.expose()), &device(None), &Client::default())
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
            .phone_login(pin_request(&service, PHONE, "abcde", Channel::Sms), &Client::default())
            .await
            .unwrap();
        let pin = world.last_code();
        let error = service
            .check_pin(pin_check(&service, PHONE, "other", &pin), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, CheckPinError::WrongPin), "{error:?}");
        // The wrong device spent an attempt but the right one still works.
        service
            .check_pin(pin_check(&service, PHONE, "abcde", &pin), &Client::default())
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
            .phone_login(pin_request(&service, PHONE, "abcde", Channel::Sms), &Client::default())
            .await
            .unwrap();
        world.advance(Duration::from_secs(300));
        let error = service
            .check_pin(
                pin_check(&service, PHONE, "abcde", &world.last_code()),
                &Client::default(),
            )
            .await
            .unwrap_err();
        assert!(matches!(error, CheckPinError::PinExpired), "{error:?}");
    });
}

#[test]
fn access_codes_are_refused_by_cause() {
    block_on(async {
        let world = World::new();
        let service = service(&world);
        service
            .phone_login(pin_request(&service, PHONE, "abcde", Channel::Sms), &Client::default())
            .await
            .unwrap();
        let grant = service
            .check_pin(
                pin_check(&service, PHONE, "abcde", &world.last_code()),
                &Client::default(),
            )
            .await
            .unwrap();
        let error = service
            .check_access_code(access_code("not hex"), &device(None), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, AccessCodeError::Malformed), "{error:?}");
        // A device id no code can have: refused as another device's.
        let error = service
            .check_access_code(
                access_code(grant.expose()),
                &device(Some(&"d".repeat(300))),
                &Client::default(),
            )
            .await
            .unwrap_err();
        assert!(matches!(error, AccessCodeError::OtherDevice), "{error:?}");
        // Upper case is the same code.
        service
            .check_access_code(
                access_code(&grant.expose().to_ascii_uppercase()),
                &device(Some(" abcde ")),
                &Client::default(),
            )
            .await
            .unwrap();
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
            .phone_login(
                pin_request(&service, "+1 415 555 0100", "d", Channel::Call),
                &Client::default(),
            )
            .await
            .unwrap();
        assert_eq!(world.sent_count(), 0);
        assert_eq!(numbers.uses(), 1);
        // Cut to this surface's 5 digits.
        service
            .check_pin(pin_check(&service, "+14155550100", "d", "12345"), &Client::default())
            .await
            .unwrap();
        // Other numbers are not affected.
        service
            .phone_login(pin_request(&service, PHONE, "d", Channel::Sms), &Client::default())
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
            .phone_login(pin_request(&service, PHONE, "abcde", Channel::Sms), &Client::default())
            .await
            .unwrap();
        let pin = world.last_code();
        let error = service
            .check_pin(pin_check(&service, PHONE, "abcde", &pin), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, CheckPinError::Store(_)), "{error:?}");
        assert!(world.access_codes.lock().unwrap().is_empty());
        let grant = service
            .check_pin(pin_check(&service, PHONE, "abcde", &pin), &Client::default())
            .await
            .unwrap();
        let info = service
            .check_access_code(access_code(grant.expose()), &device(Some("abcde")), &Client::default())
            .await
            .unwrap();
        assert_eq!(info.user_id, grant.user_id);
    });
}
