//! Token introspection.

use super::*;

/// Introspects as a request without a socket address would.
async fn introspect(service: &TokenAuth, app_token: &str, token: &str) -> Result<Introspection, IntrospectError> {
    let app_token = ApplicationToken::parse(app_token).unwrap();
    let application = service
        .authorize_application(Some(&app_token), &Client::default())
        .await?;
    Ok(service
        .introspect(&application, &IntrospectedToken::parse(token).unwrap())
        .await?)
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
            introspect(&service, "wrong", "opaque-token").await,
            Err(IntrospectError::UnknownApplicationToken)
        ));
        assert!(matches!(
            service.authorize_application(None, &Client::default()).await,
            Err(IntrospectError::MissingApplicationToken)
        ));
        let kind = |i: Introspection| match i {
            Introspection::Active {
                user_id, token_type, ..
            } => format!("{token_type}:{}", user_id.get()),
            Introspection::Inactive => "inactive".into(),
        };
        let app = "app-secret";
        assert_eq!(
            kind(introspect(&service, app, "opaque-token").await.unwrap()),
            "opaque:7"
        );
        assert_eq!(
            kind(introspect(&service, app, "other-token").await.unwrap()),
            "inactive"
        );
        assert_eq!(
            kind(introspect(&service, app, &"a".repeat(32)).await.unwrap()),
            "access_code:9"
        );
        // The test token issuer reads "jwt-for-<id>" tokens; a JWT has two dots.
        assert_eq!(kind(introspect(&service, app, "x.y.z").await.unwrap()), "inactive");
    });
}
