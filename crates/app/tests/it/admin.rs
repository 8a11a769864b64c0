//! The admin use cases behind `phonegate apps …` and `phonegate users …`,
//! seen through the HTTP surfaces: a revoked application's tokens stop
//! working at once, and so do a user's tokens once revoked.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use crate::common;

use axum::http::StatusCode;
use common::{TestApp, spawn_app};
use phonegate_adapters::{on_both_backends, testing::TestBackend};
use phonegate_domain::{
    account::Email,
    application::Revocation,
    token_auth::{AppId, UserLookup},
    user::UserId,
};
use serde_json::{Value, json};

async fn sign_in(app: &TestApp, query: &str) -> common::Reply {
    app.form(
        "POST",
        "/api/v1/tokens.json",
        &format!("email=admin@example.com&password=Admin-Pass-1{query}"),
    )
    .await
}

async fn introspect(app: &TestApp, app_token: &str, token: &str) -> common::Reply {
    app.form(
        "POST",
        "/api/v1/tokens/introspect.json",
        &format!("auth_token={app_token}&token={token}"),
    )
    .await
}

async fn revoking_an_application_stops_its_tokens(backend: TestBackend) {
    let app = spawn_app(backend).await;
    app.create_user("admin@example.com", "Admin-Pass-1", "Ad", "Min").await;
    let (mobile, mobile_token) = app.create_application("mobile").await;
    let (_, backend_token) = app.create_application("backend").await;
    let (mobile_token, backend_token) = (mobile_token.expose().to_owned(), backend_token.expose().to_owned());
    let reply = sign_in(&app, &format!("&app_id={}", mobile.app_id)).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let session = reply.body["token"].as_str().unwrap().to_owned();
    let reply = introspect(&app, &mobile_token, &session).await;
    assert_eq!(reply.body["active"], true);

    assert_eq!(
        app.token_auth
            .admin()
            .revoke_application(&app_id(&mobile.app_id))
            .await
            .unwrap(),
        Revocation::Revoked { session_tokens: 1 }
    );
    // Its server token no longer authenticates...
    let reply = introspect(&app, &mobile_token, &session).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // ...the session issued through it is inactive...
    let reply = introspect(&app, &backend_token, &session).await;
    assert_eq!(reply.body, json!({"active": false}));
    // ...and its app_id signs nobody in.
    let reply = sign_in(&app, &format!("&app_id={}", mobile.app_id)).await;
    assert_ne!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({"error": "Unknown app_id."}));

    let listed = app.token_auth.admin().list_applications().await.unwrap();
    let revoked: Vec<(&str, bool)> = listed
        .iter()
        .map(|listing| (listing.application.name.as_str(), listing.revoked_at.is_some()))
        .collect();
    assert_eq!(revoked, vec![("mobile", true), ("backend", false)]);
    assert_eq!(
        app.token_auth
            .admin()
            .revoke_application(&app_id(&mobile.app_id))
            .await
            .unwrap(),
        Revocation::AlreadyRevoked
    );
    assert_eq!(
        app.token_auth
            .admin()
            .revoke_application(&app_id("nope"))
            .await
            .unwrap(),
        Revocation::NotFound
    );
}

async fn revoking_a_users_tokens_signs_them_out_everywhere(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let id = app.create_user("admin@example.com", "Admin-Pass-1", "Ad", "Min").await;
    let (_, app_token) = app.create_application("backend").await;
    let app_token = app_token.expose().to_owned();
    let mut sessions = vec![];
    for device in ["d1", "d2"] {
        let reply = sign_in(&app, &format!("&device_token={device}")).await;
        sessions.push(reply.body["token"].as_str().unwrap().to_owned());
    }
    let access_code = app.phone_login_access_code("(206)372-1234", "+12063721234").await;

    // Found by id, by email (any case) and by phone (any format).
    let by_email = app
        .token_auth
        .admin()
        .find_user(&email("Admin@Example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_email.id.get(), id);
    let by_id = app
        .token_auth
        .admin()
        .find_user(&UserLookup::Id(UserId::new(id)))
        .await
        .unwrap();
    assert_eq!(by_id.unwrap().email.as_deref(), Some("admin@example.com"));
    let by_phone = app
        .token_auth
        .admin()
        .find_user(&phone(&app, "+1 (206) 372-1234"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_phone.phone.unwrap().as_str(), "+12063721234");
    assert!(
        app.token_auth
            .admin()
            .find_user(&email("nobody@example.com"))
            .await
            .unwrap()
            .is_none()
    );

    let (_, revoked) = app
        .token_auth
        .admin()
        .revoke_user_tokens(&email("admin@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((revoked.session_tokens, revoked.access_codes), (2, 0));
    for session in &sessions {
        assert_eq!(
            introspect(&app, &app_token, session).await.body,
            json!({"active": false})
        );
    }
    // The phone-login user's access code works until theirs are revoked.
    let check = |code: String| {
        let app = &app;
        async move {
            app.post_query(&format!("/v1/auth/check_access_code?access_code={code}"))
                .await
        }
    };
    assert_eq!(check(access_code.clone()).await.status, StatusCode::OK);
    let (_, revoked) = app
        .token_auth
        .admin()
        .revoke_user_tokens(&phone(&app, "(206)372-1234"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((revoked.session_tokens, revoked.access_codes), (0, 1));
    let reply = check(access_code).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{:?}", reply.body);
    assert!(
        app.token_auth
            .admin()
            .revoke_user_tokens(&UserLookup::Id(UserId::new(999_999)))
            .await
            .unwrap()
            .is_none()
    );
    let _: Value = reply.body;
}

on_both_backends!(
    revoking_an_application_stops_its_tokens,
    revoking_a_users_tokens_signs_them_out_everywhere,
);

fn app_id(text: &str) -> AppId {
    AppId::parse(text).unwrap()
}

/// A user named by email, read as the CLI reads `--email`.
fn email(text: &str) -> UserLookup {
    UserLookup::Email(Email::parse(text).unwrap())
}

/// A user named by phone, read as the CLI reads `--phone`.
fn phone(app: &common::TestApp, text: &str) -> UserLookup {
    UserLookup::Phone(app.token_auth.phones().parse(text).unwrap())
}
