//! Token introspection.

use super::*;

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
