//! Every request/response example of seed 001 (pin-auth), and the rules the
//! brief adds, against the real router on SQLite and on Postgres.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use crate::common;

use std::{collections::BTreeSet, time::Duration};

use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{TestApp, spawn_app, spawn_app_with};
use phonegate_adapters::{on_both_backends, testing::TestBackend};
use serde_json::{Value, json};

const SIGNUP: &str = "/api/v1/auth/signup";
const SEND_PIN: &str = "/api/v1/auth/send_pin";
const VERIFY: &str = "/api/v1/auth/verify";
const PROFILE: &str = "/api/v1/auth/current_user_profile";
const REGISTER_DEVICE: &str = "/api/v1/auth/register_device";

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(items: &[&'a str]) -> BTreeSet<&'a str> {
    items.iter().copied().collect()
}

/// An `otp_auth_key` as the seed shows it: 16 random bytes in base64.
fn assert_auth_key_shape(value: &Value) {
    let key = value["otp_auth_key"].as_str().expect("otp_auth_key is a string");
    assert_eq!(key.len(), 24, "{key}");
    assert!(key.ends_with("=="), "{key}");
    assert_eq!(keys(value), set(&["otp_auth_key"]));
}

/// Signs up the seed's user (Jake Deamon) and returns the otp_auth_key.
async fn signup_seed_user(app: &TestApp, mobile: &str) -> String {
    let reply = app
        .post_json(
            SIGNUP,
            &json!({"user_auth": {"mobile": mobile, "first_name": "Jake", "last_name": "Deamon",
                     "address_attributes": {"district_id": "1", "address_type": "Profile"}}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_auth_key_shape(&reply.body);
    reply.body["otp_auth_key"].as_str().unwrap().to_owned()
}

/// Signs up and verifies; returns the verify body.
async fn signed_in(app: &TestApp, mobile: &str) -> Value {
    let key = signup_seed_user(app, mobile).await;
    let reply = app
        .post_json(VERIFY, &json!({"otp_auth_key": key, "pin": app.last_code_to(mobile)}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body
}

/// Seed: send pin with valid host and valid (registered) mobile → 200 {otp_auth_key}.
async fn send_pin_to_a_registered_mobile(backend: TestBackend) {
    let app = spawn_app(backend).await;
    signed_in(&app, "+85261677528").await;
    let reply = app.post_json(SEND_PIN, &json!({"mobile": "+85261677528"})).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_auth_key_shape(&reply.body);
    assert_eq!(app.messages_to("+85261677528"), 2);
    let code = app.last_code_to("+85261677528");
    assert_eq!(code.len(), 4);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
}

/// Seed: send pin to an unregistered mobile → 200 with a key of the same shape, and no SMS.
async fn send_pin_to_an_unregistered_mobile(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let reply = app.post_json(SEND_PIN, &json!({"mobile": "+85251641822"})).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_auth_key_shape(&reply.body);
    assert_eq!(app.messages_to("+85251641822"), 0);
    // Its key is useless: every pin is refused.
    let key = reply.body["otp_auth_key"].as_str().unwrap();
    let reply = app
        .post_json(VERIFY, &json!({"otp_auth_key": key, "pin": "1234"}))
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Seed: send pin with an invalid host → 403 {"errors": "Invalid host"}.
async fn send_pin_with_an_invalid_host(backend: TestBackend) {
    let app = spawn_app_with(backend, |settings| {
        settings.security.allowed_hosts = vec!["api.example.com".into()];
    })
    .await;
    let request = |host: &str| {
        Request::post(SEND_PIN)
            .header(header::HOST, host)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"mobile": "+85260274677"}).to_string()))
            .unwrap()
    };
    let reply = app.send(request("evil.example.net")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.body, json!({"errors": "Invalid host"}));
    // The allowed host, with or without a port, is served.
    for host in ["api.example.com", "api.example.com:8443"] {
        let reply = app.send(request(host)).await;
        assert_eq!(reply.status, StatusCode::OK, "{host}");
    }
}

/// Seed: empty mobile → 422 {"errors": "Mobile can't be blank"}; a missing one too.
async fn send_pin_with_an_empty_mobile(backend: TestBackend) {
    let app = spawn_app(backend).await;
    for body in [json!({"mobile": ""}), json!({})] {
        let reply = app.post_json(SEND_PIN, &body).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.body, json!({"errors": "Mobile can't be blank"}));
    }
}

/// Seed: +9101234567 → 422 {"errors": "Mobile must begin with +852"}, and
/// the seed's list of valid and invalid numbers.
async fn send_pin_with_invalid_mobiles(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let reply = app.post_json(SEND_PIN, &json!({"mobile": "+9101234567"})).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.body, json!({"errors": "Mobile must begin with +852"}));
    for (mobile, message) in [
        ("+11112345678", "Mobile must begin with +852"),
        ("+85212345678", "Mobile must begin with +8525, +8526, or +8529"),
        ("+8525234567", "Mobile must contain a further 7 digits"),
        ("+852523456789", "Mobile must contain a further 7 digits"),
    ] {
        let reply = app.post_json(SEND_PIN, &json!({"mobile": mobile})).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{mobile}");
        assert_eq!(reply.body, json!({"errors": message}), "{mobile}");
    }
    for mobile in ["+85251234567", "+85261234567", "+85291234567"] {
        let reply = app.post_json(SEND_PIN, &json!({"mobile": mobile})).await;
        assert_eq!(reply.status, StatusCode::OK, "{mobile}");
    }
}

/// Seed: signup → 200 {otp_auth_key} and a pin is texted (the user exists
/// once the pin is verified).
async fn signup_creates_the_user_and_texts_a_pin(backend: TestBackend) {
    let app = spawn_app(backend).await;
    signup_seed_user(&app, "+85251224538").await;
    assert_eq!(app.messages_to("+85251224538"), 1);
}

/// Signup of an existing mobile sends a new pin and ignores the other fields.
async fn signup_of_an_existing_mobile_ignores_the_other_fields(backend: TestBackend) {
    let app = spawn_app(backend).await;
    signed_in(&app, "+85251224538").await;
    let reply = app
        .post_json(
            SIGNUP,
            &json!({"user_auth": {"mobile": "+85251224538", "first_name": "Mallory",
                     "address_attributes": {"district_id": "9"}}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let key = reply.body["otp_auth_key"].as_str().unwrap();
    let reply = app
        .post_json(
            VERIFY,
            &json!({"otp_auth_key": key, "pin": app.last_code_to("+85251224538")}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["user"]["user_profile"]["first_name"], "Jake");
    assert_eq!(reply.body["user"]["addresses"].as_array().unwrap().len(), 1);
}

/// Signup as a Rails form (nested keys), as the original's clients may send it.
async fn signup_accepts_rails_form_parameters(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let reply = app
        .post_form(
            SIGNUP,
            "user_auth[mobile]=%2B85251224538&user_auth[first_name]=Jake&user_auth[address_attributes][district_id]=1",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_auth_key_shape(&reply.body);
}

/// Signup's required parameters and validations.
async fn signup_validates_its_parameters(backend: TestBackend) {
    let app = spawn_app(backend).await;
    for (body, message) in [
        (json!({}), "Missing parameter user_auth"),
        (
            json!({"user_auth": {"mobile": "+85251224538"}}),
            "Missing parameter user_auth[address_attributes]",
        ),
        (
            json!({"user_auth": {"mobile": "+85251224538", "address_attributes": {"district_id": "north"}}}),
            "District is not a number",
        ),
        (
            json!({"user_auth": {"mobile": "", "address_attributes": {}}}),
            "Mobile can't be blank",
        ),
        (
            json!({"user_auth": {"mobile": "+9101234567", "address_attributes": {}}}),
            "Mobile must begin with +852",
        ),
    ] {
        let reply = app.post_json(SIGNUP, &body).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(reply.body, json!({"errors": message}), "{body}");
    }
    assert_eq!(app.sms.outbox().len(), 0);
}

/// Seed: verify → 200 {jwt_token, user: {addresses, permissions, user_profile}}
/// with exactly the seed's fields.
async fn verify_returns_a_jwt_and_the_user(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let body = signed_in(&app, "+85298353103").await;
    assert_eq!(keys(&body), set(&["jwt_token", "user"]));
    let user = &body["user"];
    assert_eq!(keys(user), set(&["addresses", "permissions", "user_profile"]));
    assert_eq!(user["permissions"], json!([]));
    let address = &user["addresses"][0];
    assert_eq!(
        keys(address),
        set(&[
            "id",
            "street",
            "flat",
            "building",
            "district_id",
            "addressable_id",
            "addressable_type"
        ])
    );
    let profile = &user["user_profile"];
    assert_eq!(
        keys(profile),
        set(&["id", "first_name", "last_name", "mobile", "address_id", "permission_id"])
    );
    assert_eq!(profile["first_name"], "Jake");
    assert_eq!(profile["last_name"], "Deamon");
    assert_eq!(profile["mobile"], "98353103", "the seed shows the number without +852");
    assert_eq!(profile["address_id"], address["id"]);
    assert_eq!(profile["permission_id"], Value::Null);
    assert_eq!(address["district_id"], 1);
    assert_eq!(address["addressable_id"], profile["id"]);
    assert_eq!(address["addressable_type"], "User");

    // The JWT: HS256, with the claims the brief lists.
    let token = body["jwt_token"].as_str().unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["typ"], "at+jwt", "RFC 9068's type of access tokens");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    for claim in ["sub", "user_id", "iat", "iss", "exp", "jti"] {
        assert!(claims.get(claim).is_some(), "missing claim {claim}: {claims}");
    }
    assert_eq!(claims["user_id"], profile["id"]);
    assert_eq!(claims["sub"], profile["id"].to_string());
    assert_eq!(claims["iss"], "phonegate");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 1800);
}

/// Failed verify is 422 in this surface's shape, and says no more than needed.
async fn failed_verify_is_422(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let key = signup_seed_user(&app, "+85251224538").await;
    let code = app.last_code_to("+85251224538");
    let wrong = if code == "0000" { "1111" } else { "0000" };
    for (body, message) in [
        (json!({"otp_auth_key": key, "pin": wrong}), "Invalid pin"),
        (
            json!({"otp_auth_key": "/JqONEgEjrZefDV3ZIQsNA==", "pin": code}),
            "Invalid pin",
        ),
        (json!({"otp_auth_key": "garbage", "pin": code}), "Invalid pin"),
        (json!({"otp_auth_key": key, "pin": "12"}), "Invalid pin"),
        (json!({"otp_auth_key": key}), "Pin can't be blank"),
        (json!({"pin": code}), "Otp auth key can't be blank"),
    ] {
        let reply = app.post_json(VERIFY, &body).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(reply.body, json!({"errors": message}), "{body}");
    }
}

/// Five wrong pins kill the challenge: the sixth attempt fails even when right.
async fn five_wrong_pins_kill_the_challenge(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let key = signup_seed_user(&app, "+85251224538").await;
    let code = app.last_code_to("+85251224538");
    let wrong = if code == "0000" { "1111" } else { "0000" };
    for _ in 0..5 {
        let reply = app.post_json(VERIFY, &json!({"otp_auth_key": key, "pin": wrong})).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let reply = app.post_json(VERIFY, &json!({"otp_auth_key": key, "pin": code})).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reply.body,
        json!({"errors": "Too many failed attempts. Please request a new pin."})
    );
}

/// An expired pin is refused (time driven through the clock port).
async fn an_expired_pin_is_refused(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let key = signup_seed_user(&app, "+85251224538").await;
    app.clock.advance(Duration::from_secs(601));
    let reply = app
        .post_json(
            VERIFY,
            &json!({"otp_auth_key": key, "pin": app.last_code_to("+85251224538")}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.body, json!({"errors": "Pin has expired"}));
}

/// The otp_auth_key cycles: a new pin makes the old key and pin useless.
async fn a_new_pin_invalidates_the_old_one(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let old_key = signup_seed_user(&app, "+85251224538").await;
    let old_code = app.last_code_to("+85251224538");
    // The number has no user until a pin is verified: a second signup
    // sends the new pin.
    let reply = app
        .post_json(
            SIGNUP,
            &json!({"user_auth": {"mobile": "+85251224538", "address_attributes": {}}}),
        )
        .await;
    let new_key = reply.body["otp_auth_key"].as_str().unwrap().to_owned();
    assert_ne!(old_key, new_key);
    let reply = app
        .post_json(VERIFY, &json!({"otp_auth_key": old_key, "pin": old_code}))
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let reply = app
        .post_json(
            VERIFY,
            &json!({"otp_auth_key": new_key, "pin": app.last_code_to("+85251224538")}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

/// Security II, finding 8: a signup's names and address wait for its pin.
/// Mallory signs up a number she does not hold; its owner then confirms it
/// on the tokens surface (it is not "already taken") and signs in with it
/// on pin-auth: the owner's profile shows none of Mallory's data.
async fn an_unverified_signup_shows_nothing_to_the_owner_and_holds_no_number(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let mobile = "+85251224538";
    let reply = app
        .post_json(
            SIGNUP,
            &json!({"user_auth": {"mobile": mobile, "first_name": "Mallory", "last_name": "Mallet",
                     "address_attributes": {"street": "Mallory Street", "district_id": "9"}}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    app.create_user("owner@beyondvip.com", "owner-passphrase-7", "Olivia", "Owner")
        .await;
    let reply = app
        .form(
            "POST",
            "/api/v1/tokens.json",
            "email=owner@beyondvip.com&password=owner-passphrase-7",
        )
        .await;
    let token = reply.body["token"].as_str().unwrap().to_owned();
    let reply = app
        .form(
            "POST",
            "/api/v1/settings/send_phone_verification.json",
            &format!("auth_token={token}&phone=%2B85251224538"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let code = app.last_code_to(mobile);
    let reply = app
        .form(
            "POST",
            "/api/v1/settings/verify_phone.json",
            &format!("auth_token={token}&token={code}"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let reply = app.post_json(SEND_PIN, &json!({"mobile": mobile})).await;
    let key = reply.body["otp_auth_key"].as_str().unwrap().to_owned();
    let reply = app
        .post_json(VERIFY, &json!({"otp_auth_key": key, "pin": app.last_code_to(mobile)}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["user"]["user_profile"]["first_name"], "Olivia");
    assert_eq!(reply.body["user"]["addresses"], json!([]));
    assert!(!reply.body.to_string().contains("Mall"), "{}", reply.body);
}

/// A verified signup is the user, with the names and address it sent; a
/// later signup of the same number by anyone changes none of them.
async fn a_verified_signup_names_the_user(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let body = signed_in(&app, "+85251224538").await;
    assert_eq!(body["user"]["user_profile"]["first_name"], "Jake");
    assert_eq!(body["user"]["user_profile"]["last_name"], "Deamon");
    assert_eq!(body["user"]["addresses"].as_array().unwrap().len(), 1);
    // Before verification nothing of a second signup is applied, and after
    // it the existing user keeps its own fields.
    let reply = app
        .post_json(
            SIGNUP,
            &json!({"user_auth": {"mobile": "+85251224538", "first_name": "Mallory", "address_attributes": {}}}),
        )
        .await;
    let key = reply.body["otp_auth_key"].as_str().unwrap().to_owned();
    let reply = app
        .post_json(
            VERIFY,
            &json!({"otp_auth_key": key, "pin": app.last_code_to("+85251224538")}),
        )
        .await;
    assert_eq!(reply.body["user"]["user_profile"]["first_name"], "Jake");
}

/// A pin works once.
async fn a_pin_works_once(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let key = signup_seed_user(&app, "+85251224538").await;
    let body = json!({"otp_auth_key": key, "pin": app.last_code_to("+85251224538")});
    assert_eq!(app.post_json(VERIFY, &body).await.status, StatusCode::OK);
    assert_eq!(
        app.post_json(VERIFY, &body).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

/// Twenty parallel verifies of one fresh correct pin: exactly one 200.
async fn parallel_verifies_have_exactly_one_winner(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let key = signup_seed_user(&app, "+85251224538").await;
    let body = json!({"otp_auth_key": key, "pin": app.last_code_to("+85251224538")});
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (app, body) = (app.clone(), body.clone());
            tokio::spawn(async move { app.post_json(VERIFY, &body).await.status })
        })
        .collect();
    let mut statuses = vec![];
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::UNPROCESSABLE_ENTITY),
        "{statuses:?}"
    );
}

/// Seed: current_user_profile with the bearer JWT → the same user object.
async fn current_user_profile_with_a_bearer_token(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let body = signed_in(&app, "+85260521718").await;
    let token = body["jwt_token"].as_str().unwrap();
    let reply = app.get_with_bearer(PROFILE, token).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, body["user"]);
    assert_eq!(reply.body["user_profile"]["mobile"], "60521718");
}

/// current_user_profile without a valid token is 401.
async fn current_user_profile_needs_a_valid_token(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let body = signed_in(&app, "+85260521718").await;
    let token = body["jwt_token"].as_str().unwrap();
    let unauthorized = json!({"errors": "Unauthorized"});
    let reply = app.send(Request::get(PROFILE).body(Body::empty()).unwrap()).await;
    assert_eq!((reply.status, &reply.body), (StatusCode::UNAUTHORIZED, &unauthorized));
    // The seed's own example token (another issuer and secret) is refused.
    let seed_token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpYXQiOjE0MTc1NzkwMTQsImlzcyI6Ikdvb2RDaXR5VGVzdCIsImV4cCI6MTQxNzU4MDgxNH0.x-N_aUb3S5wcNy5i2w2WUZjEA2ud_81u8yQV0JfsT6A";
    let mut tampered = token.to_owned();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    for bad in [seed_token, tampered.as_str(), "not-a-jwt"] {
        let reply = app.get_with_bearer(PROFILE, bad).await;
        assert_eq!(
            (reply.status, &reply.body),
            (StatusCode::UNAUTHORIZED, &unauthorized),
            "{bad}"
        );
    }
    // An expired token is refused (time through the clock port).
    app.clock.advance(Duration::from_secs(1800));
    let reply = app.get_with_bearer(PROFILE, token).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

/// Seed: register_device {handle, platform} → 204; the handle is recorded.
async fn register_device_records_the_push_handle(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let body = signed_in(&app, "+85251224538").await;
    let token = body["jwt_token"].as_str().unwrap();
    for platform in ["fcm", "gcm", "aps"] {
        let reply = app
            .send(
                Request::post(REGISTER_DEVICE)
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(
                        json!({"handle": format!("h-{platform}"), "platform": platform}).to_string(),
                    ))
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{platform}: {:?}", reply.body);
        assert_eq!(reply.body, Value::Null);
    }
    let user = phonegate_domain::user::UserId::new(body["user"]["user_profile"]["id"].as_i64().unwrap());
    assert_eq!(app.store.push_registrations(user).await.unwrap().len(), 3);
}

/// register_device with another platform or no handle is 400; without a token 401.
async fn register_device_validates_its_input(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let body = signed_in(&app, "+85251224538").await;
    let token = body["jwt_token"].as_str().unwrap();
    let register = |bearer: Option<String>, body: Value| {
        let mut request = Request::post(REGISTER_DEVICE).header(header::CONTENT_TYPE, "application/json");
        if let Some(bearer) = bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {bearer}"));
        }
        request.body(Body::from(body.to_string())).unwrap()
    };
    let reply = app
        .send(register(Some(token.into()), json!({"handle": "h", "platform": "wns"})))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body, json!({"errors": "Platform must be one of fcm, gcm, aps"}));
    let reply = app.send(register(Some(token.into()), json!({"platform": "fcm"}))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body, json!({"errors": "Handle can't be blank"}));
    let reply = app
        .send(register(None, json!({"handle": "h", "platform": "fcm"})))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

/// An unusable body is a 400 in this surface's shape, never a 500.
async fn malformed_bodies_are_400(backend: TestBackend) {
    let app = spawn_app(backend).await;
    for (content_type, body) in [
        ("application/json", "{\"mobile\": "),
        ("application/json", "[\"+85261677528\"]"),
        ("application/x-www-form-urlencoded", "mobile[=1"),
    ] {
        let reply = app
            .send(
                Request::post(SEND_PIN)
                    .header(header::CONTENT_TYPE, content_type)
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(reply.body["errors"].is_string(), "{body}: {:?}", reply.body);
    }
    let huge = format!("{{\"mobile\": \"{}\"}}", "9".repeat(100_000));
    let reply = app.post_json(SEND_PIN, &serde_json::from_str(&huge).unwrap()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

/// Operational endpoints: /healthz and /readyz, with a request id.
async fn health_and_readiness(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let reply = app.send(Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers.contains_key("x-request-id"));
    let reply = app.send(Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
    // With the database gone, readiness fails but the process stays alive.
    app.store.db().close().await;
    let reply = app.send(Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let reply = app.send(Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
    // A use case with the database gone is a 503 in the surface's shape.
    let reply = app.post_json(SEND_PIN, &json!({"mobile": "+85261677528"})).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body, json!({"errors": "Service Unavailable"}));
}

/// A wrong method gets a 405 in each surface's own error shape.
async fn every_surface_answers_405_in_its_own_shape(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let get = |path: &'static str| Request::get(path).body(Body::empty()).unwrap();
    let reply = app.send(get(SEND_PIN)).await;
    assert_eq!(
        (reply.status, reply.body),
        (StatusCode::METHOD_NOT_ALLOWED, json!({"errors": "Method not allowed"}))
    );
    let reply = app.send(get("/api/phone/register")).await;
    assert_eq!(
        (reply.status, reply.body),
        (
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"detail": "Method \"GET\" not allowed."})
        )
    );
    let reply = app.send(get("/v1/auth/check_pin")).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        reply.body["res_info"],
        json!({"code": -6, "code_info": "INVALID_PARAMETER"})
    );
    let reply = app.send(get("/api/v1/tokens.json")).await;
    assert_eq!(
        (reply.status, reply.body),
        (StatusCode::METHOD_NOT_ALLOWED, json!({"error": "Method not allowed"}))
    );
}

/// Over-long names are refused rather than stored.
async fn signup_bounds_free_text(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let reply = app
        .post_json(
            SIGNUP,
            &json!({"user_auth": {"mobile": "+85251224538", "first_name": "a".repeat(256), "address_attributes": {}}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reply.body,
        json!({"errors": "First name is too long (maximum is 255 characters)"})
    );
    let reply = app
        .post_json(
            SIGNUP,
            &json!({"user_auth": {"mobile": "+85251224538", "first_name": "é".repeat(255), "address_attributes": {}}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "255 characters (not bytes) are fine");
}

on_both_backends!(
    an_unverified_signup_shows_nothing_to_the_owner_and_holds_no_number,
    a_verified_signup_names_the_user,
    every_surface_answers_405_in_its_own_shape,
    signup_bounds_free_text,
    send_pin_to_a_registered_mobile,
    send_pin_to_an_unregistered_mobile,
    send_pin_with_an_invalid_host,
    send_pin_with_an_empty_mobile,
    send_pin_with_invalid_mobiles,
    signup_creates_the_user_and_texts_a_pin,
    signup_of_an_existing_mobile_ignores_the_other_fields,
    signup_accepts_rails_form_parameters,
    signup_validates_its_parameters,
    verify_returns_a_jwt_and_the_user,
    failed_verify_is_422,
    five_wrong_pins_kill_the_challenge,
    an_expired_pin_is_refused,
    a_new_pin_invalidates_the_old_one,
    a_pin_works_once,
    parallel_verifies_have_exactly_one_winner,
    current_user_profile_with_a_bearer_token,
    current_user_profile_needs_a_valid_token,
    register_device_records_the_push_handle,
    register_device_validates_its_input,
    malformed_bodies_are_400,
    health_and_readiness,
);
