//! Unit tests of the tokens surface's use cases over mocks of every port.

use std::sync::{Arc, Mutex};

use secrecy::ExposeSecret as _;

use pollster::block_on;

use super::*;
use crate::{
    abuse::Client,
    account::PasswordHash,
    outbox::{Envelope, MockOutboxStore, OutboxMessage, Outgoing},
};
use crate::{
    phone::PhonePolicy,
    phone_login::AccessCodeRecord,
    ports::{
        MockAccessCodeStore, MockAccountStore, MockApplicationStore, MockPasswordHasher, MockSessionStore,
        MockUserStore,
    },
    test_support::{self as support, World, user},
};

struct Mocks {
    users: MockUserStore,
    accounts: MockAccountStore,
    sessions: MockSessionStore,
    applications: MockApplicationStore,
    access_codes: MockAccessCodeStore,
    passwords: MockPasswordHasher,
    outbox: MockOutboxStore,
}

impl Mocks {
    fn new() -> Self {
        Self {
            users: MockUserStore::new(),
            accounts: MockAccountStore::new(),
            sessions: MockSessionStore::new(),
            applications: MockApplicationStore::new(),
            access_codes: MockAccessCodeStore::new(),
            passwords: MockPasswordHasher::new(),
            outbox: MockOutboxStore::new(),
        }
    }

    /// "right password" matches the hash "hash-of-right"; everything else fails.
    fn with_passwords(mut self) -> Self {
        self.passwords.expect_verify().returning(|password, hash| {
            Ok(hash.as_ref().is_some_and(|h| h.as_str() == "hash-of-right") && password.expose() == "right password")
        });
        self.passwords
            .expect_hash()
            .returning(|password| Ok(PasswordHash::new(format!("hash-of-{}", password.expose()))));
        self
    }

    fn with_account(mut self, email: &str) -> Self {
        let email = email.to_owned();
        self.accounts.expect_find_by_email().returning(move |candidate| {
            Ok((candidate.as_str() == email).then(|| Account {
                user: user(7, "+12063721234"),
                password_hash: Some(PasswordHash::new("hash-of-right".into())),
            }))
        });
        self
    }

    fn build(self, world: &Arc<World>) -> TokenAuth {
        TokenAuth::new(
            TokenAuthPorts {
                users: Arc::new(self.users),
                accounts: Arc::new(self.accounts),
                sessions: Arc::new(self.sessions),
                applications: Arc::new(self.applications),
                access_codes: Arc::new(self.access_codes),
                passwords: Arc::new(self.passwords),
                screen: Arc::new(CommonList),
                tokens: Arc::new(support::tokens()),
                outbox: Arc::new(self.outbox),
                messenger: support::messenger(world),
            },
            support::engine(world),
            TokenAuthSettings {
                phones: PhonePolicy::new("US", &[], vec![]).unwrap(),
                phone_policy: support::policy(4, 600),
                session_ttl: Duration::from_secs(90 * 86_400),
                reset_ttl: Duration::from_secs(3600),
                reset_url_template: "https://app.example.com/reset?token={token}".into(),
                app_name: "phonegate".into(),
            },
        )
    }
}

/// Refuses two well-known passwords and the account's own email.
struct CommonList;

impl crate::ports::PasswordScreen for CommonList {
    fn is_common(&self, password: &Password, context: &[&str]) -> bool {
        ["password", "12345678"].contains(&password.expose()) || context.contains(&password.expose())
    }
}

/// An unlocked account: settles every sign-in as the store would.
fn settle_unlocked(accounts: &mut MockAccountStore) {
    accounts
        .expect_settle_sign_in()
        .returning(|_, matched, _, _| Ok(matched.then(|| UserId::new(7))));
}

fn sign_in_request<'a>(email: &'a str, password: &'a str) -> SignInRequest<'a> {
    SignInRequest {
        email: Some(email),
        password: Some(password),
        device_token: Some("324628746283682634"),
        mobile_os: Some("ios"),
        app_id: None,
    }
}

#[test]
fn sign_in_issues_a_per_device_token() {
    block_on(async {
        let world = World::new();
        let mut mocks = Mocks::new().with_passwords().with_account("admin@beyondvip.com");
        settle_unlocked(&mut mocks.accounts);
        mocks
            .sessions
            .expect_create_session()
            .withf(|session| {
                session.user_id == UserId::new(7)
                    && session.device
                        == Some(SessionDevice {
                            device_token: "324628746283682634".into(),
                            mobile_os: Some(MobileOs::Ios),
                        })
            })
            .times(1)
            .returning(|_| Ok(()));
        let service = mocks.build(&world);
        let signed_in = service
            .sign_in(
                sign_in_request("Admin@BeyondVIP.com", "right password"),
                &Client::default(),
            )
            .await
            .unwrap();
        assert_eq!(signed_in.token.expose().len(), 22);
        assert_eq!(signed_in.user.id, UserId::new(7));
    });
}

#[test]
fn unknown_email_and_wrong_password_fail_alike_after_a_password_check() {
    block_on(async {
        let world = World::new();
        let mut mocks = Mocks::new().with_account("admin@beyondvip.com");
        let checks: Arc<Mutex<Vec<bool>>> = Arc::default();
        let seen = checks.clone();
        mocks.passwords.expect_verify().returning(move |_, hash| {
            seen.lock().unwrap().push(hash.is_some());
            Ok(false)
        });
        settle_unlocked(&mut mocks.accounts);
        mocks.sessions.expect_create_session().never();
        let service = mocks.build(&world);
        let unknown = service
            .sign_in(sign_in_request("nobody@example.com", "x"), &Client::default())
            .await
            .unwrap_err();
        let wrong = service
            .sign_in(sign_in_request("admin@beyondvip.com", "wrong"), &Client::default())
            .await
            .unwrap_err();
        assert_eq!(unknown.to_string(), wrong.to_string());
        assert!(matches!(unknown, SignInError::InvalidCredentials));
        // Both did a password check: the unknown email against the dummy hash.
        assert_eq!(*checks.lock().unwrap(), vec![false, true]);
    });
}

#[test]
fn an_unknown_app_id_is_refused() {
    block_on(async {
        let world = World::new();
        let mut mocks = Mocks::new().with_passwords().with_account("admin@beyondvip.com");
        mocks.applications.expect_find_application().returning(|_| Ok(None));
        let service = mocks.build(&world);
        let request = SignInRequest {
            app_id: Some("nope"),
            ..sign_in_request("admin@beyondvip.com", "right password")
        };
        assert!(matches!(
            service.sign_in(request, &Client::default()).await,
            Err(SignInError::UnknownApplication)
        ));
        let request = SignInRequest {
            mobile_os: Some("windows"),
            ..sign_in_request("admin@beyondvip.com", "right password")
        };
        assert!(matches!(
            service.sign_in(request, &Client::default()).await,
            Err(SignInError::InvalidMobileOs)
        ));
    });
}

fn session(user: i64, revoked: bool) -> SessionRecord {
    SessionRecord {
        id: 3,
        user_id: UserId::new(user),
        application_id: None,
        created_at: Timestamp::from_unix_millis(1_700_000_000_000),
        expires_at: Timestamp::from_unix_millis(1_800_000_000_000),
        revoked,
    }
}

#[test]
fn sign_out_revokes_only_the_users_own_token() {
    block_on(async {
        let world = World::new();
        let mut mocks = Mocks::new();
        mocks
            .sessions
            .expect_find_session()
            .returning(|_| Ok(Some(session(7, false))));
        mocks
            .sessions
            .expect_end_session()
            .withf(|id, push, _| *id == 3 && push.as_deref() == Some("apn"))
            .times(1)
            .returning(|_, _, _| Ok(()));
        let service = mocks.build(&world);
        assert!(matches!(
            service.sign_out("8", Some("token"), None).await,
            Err(Unauthorized::Token)
        ));
        assert!(matches!(
            service.sign_out("7", None, None).await,
            Err(Unauthorized::Token)
        ));
        service.sign_out("7", Some("token"), Some("apn")).await.unwrap();
    });
}

#[test]
fn a_revoked_token_is_unauthorized() {
    block_on(async {
        let world = World::new();
        let mut mocks = Mocks::new();
        mocks
            .sessions
            .expect_find_session()
            .returning(|_| Ok(Some(session(7, true))));
        mocks.sessions.expect_end_session().never();
        let service = mocks.build(&world);
        assert!(matches!(
            service.sign_out("7", Some("token"), None).await,
            Err(Unauthorized::Token)
        ));
    });
}

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
            .request_password_reset(Some("nobody@example.com"), &Client::default())
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
            .request_password_reset(Some("admin@beyondvip.com"), &Client::default())
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
            (
                ResetOutcome::NotFound,
                "Reset token is invalid or has already been used.",
            ),
            (
                ResetOutcome::AlreadyUsed,
                "Reset token is invalid or has already been used.",
            ),
            (ResetOutcome::Expired, "Reset token has expired."),
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
                .complete_password_reset(
                    Some("tok"),
                    Some("new password!"),
                    Some("new password!"),
                    &Client::default(),
                )
                .await;
            let got = result.map(|_| "ok".to_owned()).unwrap_or_else(|e| e.to_string());
            assert_eq!(got, expected);
        }
        let world = World::new();
        let service = Mocks::new().with_passwords().build(&world);
        let error = service
            .complete_password_reset(Some("tok"), Some("short"), None, &Client::default())
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "Password is too short (minimum is 8 characters)");
        let error = service
            .complete_password_reset(Some("tok"), Some("long enough"), Some("different"), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(error, CompleteResetError::ConfirmationMismatch));
    });
}

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

/// Introspects as a request without a socket address would.
async fn introspect(
    service: &TokenAuth,
    app_token: Option<&str>,
    token: Option<&str>,
) -> Result<Introspection, IntrospectError> {
    service.introspect(app_token, token, &Client::default()).await
}

#[test]
fn introspection_needs_an_application_and_knows_every_token_kind() {
    block_on(async {
        let world = World::new();
        let mut mocks = Mocks::new();
        mocks.applications.expect_find_application_by_token().returning(|hash| {
            Ok(
                (*hash == support::hasher().token_hash("application_token", b"app-secret")).then(|| Application {
                    id: 1,
                    app_id: "a1".into(),
                    name: "server".into(),
                }),
            )
        });
        mocks.sessions.expect_find_session().returning(|hash| {
            Ok((*hash == support::hasher().token_hash("session_token", b"opaque-token")).then(|| session(7, false)))
        });
        mocks.access_codes.expect_find_access_code().returning(|_| {
            Ok(Some(AccessCodeRecord {
                user_id: UserId::new(9),
                phone: None,
                device_id: "d".into(),
                expires_at: Timestamp::from_unix_millis(1_800_000_000_000),
                revoked: false,
            }))
        });
        let service = mocks.build(&world);
        assert!(matches!(
            introspect(&service, Some("wrong"), Some("opaque-token")).await,
            Err(IntrospectError::Unauthorized)
        ));
        let kind = |i: Introspection| match i {
            Introspection::Active {
                user_id, token_type, ..
            } => format!("{token_type}:{}", user_id.get()),
            Introspection::Inactive => "inactive".into(),
        };
        let app = Some("app-secret");
        assert_eq!(
            kind(introspect(&service, app, Some("opaque-token")).await.unwrap()),
            "opaque:7"
        );
        assert_eq!(
            kind(introspect(&service, app, Some("other-token")).await.unwrap()),
            "inactive"
        );
        assert_eq!(
            kind(introspect(&service, app, Some(&"a".repeat(32))).await.unwrap()),
            "access_code:9"
        );
        // The test token issuer reads "jwt-for-<id>" tokens; a JWT has two dots.
        assert_eq!(
            kind(introspect(&service, app, Some("x.y.z")).await.unwrap()),
            "inactive"
        );
        assert!(matches!(
            introspect(&service, app, None).await,
            Err(IntrospectError::MissingToken)
        ));
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
                .complete_password_reset(Some("guess"), Some("new password!"), None, &Client::default())
                .await
                .unwrap_err();
            assert!(
                matches!(error, CompleteResetError::InvalidToken | CompleteResetError::Expired),
                "{error:?}"
            );
        }
    });
}

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

/// What the account store saw of each sign-in: (email, password matched).
type Settled = Arc<Mutex<Vec<(String, bool)>>>;

/// A locked account: the store refuses every sign-in, as its conditional
/// update finds no unlocked row.
fn locked_account(mocks: &mut Mocks) -> Settled {
    let settled: Settled = Arc::default();
    let seen = settled.clone();
    mocks
        .accounts
        .expect_settle_sign_in()
        .returning(move |email, matched, _, _| {
            seen.lock().unwrap().push((email.as_str().to_owned(), matched));
            Ok(None)
        });
    settled
}

#[test]
fn a_locked_account_refuses_the_right_password_exactly_like_a_wrong_one() {
    block_on(async {
        let world = World::new();
        let mut mocks = Mocks::new().with_account("admin@beyondvip.com");
        let verified: Arc<Mutex<usize>> = Arc::default();
        let count = verified.clone();
        mocks.passwords.expect_verify().returning(move |password, _| {
            *count.lock().unwrap() += 1;
            Ok(password.expose() == "right password")
        });
        let settled = locked_account(&mut mocks);
        mocks.sessions.expect_create_session().never();
        let service = mocks.build(&world);
        let right = service
            .sign_in(
                sign_in_request("admin@beyondvip.com", "right password"),
                &Client::default(),
            )
            .await
            .unwrap_err();
        let wrong = service
            .sign_in(sign_in_request("admin@beyondvip.com", "wrong"), &Client::default())
            .await
            .unwrap_err();
        assert!(matches!(right, SignInError::InvalidCredentials));
        assert_eq!(right.to_string(), wrong.to_string());
        // The same work both ways: one password check, one store statement.
        assert_eq!(*verified.lock().unwrap(), 2);
        assert_eq!(
            *settled.lock().unwrap(),
            vec![
                ("admin@beyondvip.com".to_owned(), true),
                ("admin@beyondvip.com".to_owned(), false)
            ]
        );
    });
}

#[test]
fn a_saturated_hasher_is_its_own_error_and_counts_no_failure() {
    block_on(async {
        let world = World::new();
        let mut mocks = Mocks::new().with_account("admin@beyondvip.com");
        mocks.passwords.expect_verify().returning(|_, _| Err(HashError::Busy));
        mocks.accounts.expect_settle_sign_in().never();
        let service = mocks.build(&world);
        let error = service
            .sign_in(
                sign_in_request("admin@beyondvip.com", "right password"),
                &Client::default(),
            )
            .await
            .unwrap_err();
        assert!(matches!(error, SignInError::HasherBusy));
    });
}

/// Counts events per key, like the real limiters, and remembers the keys.
#[derive(Default)]
struct Counting(Mutex<std::collections::HashMap<String, u32>>);

#[async_trait::async_trait]
impl crate::rate_limit::RateLimiter for Counting {
    async fn acquire(
        &self,
        key: &str,
        rule: crate::rate_limit::RateRule,
        _: Timestamp,
    ) -> Result<crate::rate_limit::RateDecision, StoreError> {
        let mut counts = self.0.lock().unwrap();
        let count = counts.entry(key.to_owned()).or_default();
        if *count >= rule.limit {
            return Ok(crate::rate_limit::RateDecision::Limited {
                retry_after: Duration::from_secs(7),
            });
        }
        *count += 1;
        Ok(crate::rate_limit::RateDecision::Allowed)
    }

    async fn acquire_all(
        &self,
        batch: &[crate::rate_limit::RateKey],
        _: Timestamp,
    ) -> Result<crate::rate_limit::BatchDecision, StoreError> {
        let mut counts = self.0.lock().unwrap();
        if let Some(index) = batch
            .iter()
            .position(|key| counts.get(&key.key).copied().unwrap_or(0) >= key.rule.limit)
        {
            return Ok(crate::rate_limit::BatchDecision::Limited {
                index,
                retry_after: Duration::from_secs(7),
            });
        }
        for key in batch {
            *counts.entry(key.key.clone()).or_default() += 1;
        }
        Ok(crate::rate_limit::BatchDecision::Allowed)
    }
}

#[test]
fn sign_ins_are_limited_per_email_and_per_ip_before_any_work() {
    use crate::{
        abuse::sign_in::{LockoutPolicy, SignInGuard, SignInLimits},
        rate_limit::RateRule,
    };
    block_on(async {
        let world = World::new();
        let mut mocks = Mocks::new().with_account("admin@beyondvip.com");
        let verified: Arc<Mutex<usize>> = Arc::default();
        let count = verified.clone();
        mocks.passwords.expect_verify().returning(move |_, _| {
            *count.lock().unwrap() += 1;
            Ok(false)
        });
        settle_unlocked(&mut mocks.accounts);
        mocks
            .applications
            .expect_find_application_by_token()
            .returning(|_| Ok(None));
        let limiter = Arc::new(Counting::default());
        let minute = Duration::from_secs(60);
        let service = mocks.build(&world).with_sign_in_guard(SignInGuard::new(
            limiter.clone(),
            SignInLimits {
                per_ip: RateRule::new(3, minute),
                per_email: RateRule::new(2, minute),
                token_checks_per_ip: RateRule::new(1, minute),
                lockout: LockoutPolicy::default(),
                fail_open: false,
            },
            crate::otp::SecretHasher::new(vec![7; 32]),
        ));
        let ip = |last: u8| Client::new(Some(std::net::IpAddr::from([203, 0, 113, last])));
        let try_as = |email: &'static str, client: Client| {
            let service = &service;
            async move { service.sign_in(sign_in_request(email, "wrong"), &client).await }
        };
        // The email is counted however it is typed.
        assert!(matches!(
            try_as("admin@beyondvip.com", ip(1)).await,
            Err(SignInError::InvalidCredentials)
        ));
        assert!(matches!(
            try_as(" Admin@BeyondVIP.com", ip(2)).await,
            Err(SignInError::InvalidCredentials)
        ));
        let refused = try_as("ADMIN@beyondvip.com", ip(3)).await.unwrap_err();
        assert!(matches!(
            refused,
            SignInError::Refused(Refusal::RateLimited { retry_after }) if retry_after == Duration::from_secs(7)
        ));
        // One IP, many emails.
        assert!(try_as("a@example.com", ip(9)).await.is_err());
        assert!(try_as("b@example.com", ip(9)).await.is_err());
        assert!(try_as("c@example.com", ip(9)).await.is_err());
        assert!(matches!(
            try_as("d@example.com", ip(9)).await,
            Err(SignInError::Refused(_))
        ));
        // Refused tries did no password work.
        assert_eq!(*verified.lock().unwrap(), 5);
        let keys: Vec<String> = limiter.0.lock().unwrap().keys().cloned().collect();
        assert!(keys.iter().all(|key| !key.contains('@')), "{keys:?}");
        // Token checks share one per-IP limit.
        let client = ip(20);
        let _ = service.introspect(Some("app"), Some("t"), &client).await;
        assert!(matches!(
            service.introspect(Some("app"), Some("t"), &client).await,
            Err(IntrospectError::Refused(_))
        ));
        assert!(matches!(
            service
                .complete_password_reset(Some("tok"), Some("new password!"), None, &client)
                .await,
            Err(CompleteResetError::Refused(_))
        ));
    });
}
