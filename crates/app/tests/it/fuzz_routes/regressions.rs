//! Plain regression tests for what the properties found: each minimal
//! failing input, kept as a test of its own.

use super::*;

/// A correctly signed token naming a user the database does not have: the
/// device's foreign key was refused and the client got a 503.
async fn register_device_for_a_user_that_does_not_exist_is_refused(backend: TestBackend) {
    let app = spawn_app_with(backend, configure).await;
    let now = now_seconds();
    let claims = json!({
        "sub": "42", "user_id": 42, "iat": now, "nbf": now, "exp": now + 1800,
        "iss": "phonegate", "aud": "phonegate:access", "jti": "00",
    });
    let token = jwt(&json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1"}), &claims, true);
    let answer = send(
        &app,
        Request::post("/api/v1/auth/register_device")
            .header(header::HOST, "localhost")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"handle": "a", "platform": "fcm"}).to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
    assert_eq!(answer.body.unwrap(), json!({"errors": "Unauthorized"}));
}

on_both_backends!(register_device_for_a_user_that_does_not_exist_is_refused);
