//! Sign-in and sign-out.

use super::*;

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
            app_id: Some(AppId::parse("nope").unwrap()),
            ..sign_in_request("admin@beyondvip.com", "right password")
        };
        assert!(matches!(
            service.sign_in(request, &Client::default()).await,
            Err(SignInError::UnknownApplication)
        ));
    });
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
        let session = service.authenticate(&token("token")).await.unwrap();
        assert!(matches!(
            service.sign_out(&session, UserId::new(8), None).await,
            Err(Unauthorized::OtherUser)
        ));
        service
            .sign_out(&session, UserId::new(7), Some(PushToken::parse("apn").unwrap()))
            .await
            .unwrap();
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
            service.authenticate(&token("token")).await,
            Err(Unauthorized::Revoked)
        ));
    });
}

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
        let app = ApplicationToken::parse("app").unwrap();
        let _ = service.authorize_application(Some(&app), &client).await;
        assert!(matches!(
            service.authorize_application(Some(&app), &client).await,
            Err(IntrospectError::Refused(_))
        ));
        assert!(matches!(
            service
                .complete_password_reset(&reset("tok", "new password!"), &client)
                .await,
            Err(CompleteResetError::Refused(_))
        ));
        // Refused whatever the new password, so flaws cannot be probed
        // past the limit.
        let flawed = PasswordReset {
            token: ResetToken::parse("tok").unwrap(),
            password: ProposedPassword::Invalid(crate::account::PasswordError::TooShort),
        };
        assert!(matches!(
            service.complete_password_reset(&flawed, &client).await,
            Err(CompleteResetError::Refused(_))
        ));
    });
}
