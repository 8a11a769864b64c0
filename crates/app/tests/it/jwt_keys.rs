//! JWT signing keys end to end: RS256 and EdDSA tokens, the JWKS at
//! `/.well-known/jwks.json` (verified the way another service would use it),
//! key rotation across restarts on one database, and the start-up errors of
//! bad key settings.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use crate::common;

use std::{path::PathBuf, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{TestApp, spawn_app_with, try_spawn_app_with};
use http_body_util::BodyExt as _;
use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use phonegate::{
    App, Overrides, build,
    settings::{ConfigFile, JwtAlgorithmSetting, PreviousJwtKeyEntry, Settings},
};
use phonegate_adapters::{on_both_backends, sms::ConsoleEcho, testing::TestBackend};
use secrecy::SecretString;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const JWKS: &str = "/.well-known/jwks.json";
const PROFILE: &str = "/api/v1/auth/current_user_profile";
const MASTER: &str = "master-secret-0123456789abcdef0123456789";
const SIGNING_K1: &str = "signing-secret-k1-0123456789abcdef01234";
const SIGNING_K2: &str = "signing-secret-k2-0123456789abcdef01234";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../adapters/tests/fixtures/jwt")).join(name)
}

fn previous(kid: &str, algorithm: JwtAlgorithmSetting) -> PreviousJwtKeyEntry {
    PreviousJwtKeyEntry {
        kid: kid.into(),
        algorithm,
        secret: None,
        public_key_file: None,
    }
}

fn hs256_previous(kid: &str, secret: &str) -> PreviousJwtKeyEntry {
    PreviousJwtKeyEntry {
        secret: Some(SecretString::from(secret)),
        ..previous(kid, JwtAlgorithmSetting::Hs256)
    }
}

fn public_previous(kid: &str, algorithm: JwtAlgorithmSetting, file: &str) -> PreviousJwtKeyEntry {
    PreviousJwtKeyEntry {
        public_key_file: Some(fixture(file)),
        ..previous(kid, algorithm)
    }
}

/// The current key is `kid`, an asymmetric key from a fixture file.
fn asymmetric(settings: &mut Settings, kid: &str, algorithm: JwtAlgorithmSetting, file: &str) {
    settings.auth.jwt_key_id = kid.into();
    settings.auth.jwt_algorithm = algorithm;
    settings.auth.jwt_private_key_file = Some(fixture(file));
}

fn jwt_header(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Signs up on pin-auth and verifies the pin: returns the JWT.
async fn sign_in(app: &TestApp, mobile: &str) -> String {
    let reply = app
        .post_json(
            "/api/v1/auth/signup",
            &json!({"user_auth": {"mobile": mobile, "address_attributes": {}}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let key = reply.body["otp_auth_key"].as_str().unwrap().to_owned();
    let reply = app
        .post_json(
            "/api/v1/auth/verify",
            &json!({"otp_auth_key": key, "pin": app.last_code_to(mobile)}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["jwt_token"].as_str().unwrap().to_owned()
}

/// The served JWKS checks a token as another service would: the key its
/// `kid` names, with that key's algorithm, phonegate's issuer and audience.
fn verify_with_jwks(jwks: &Value, token: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    let set: JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let header = jsonwebtoken::decode_header(token)?;
    let jwk = set
        .find(header.kid.as_deref().unwrap())
        .expect("the token's kid is in the JWKS");
    let algorithm = jwk.common.key_algorithm.unwrap().to_string().parse().unwrap();
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&["phonegate"]);
    validation.set_audience(&["phonegate:access"]);
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk)?, &validation).map(|data| data.claims)
}

/// RS256 and EdDSA: tokens carry the key's alg and kid, work as bearer
/// tokens, and verify with the served JWKS, which lists the current and the
/// previous public keys (never an HS256 secret) and may be cached.
async fn jwks_publishes_the_public_keys_that_verify_tokens(backend: TestBackend) {
    for (algorithm, kid, alg, private, previous_file, previous_alg) in [
        (
            JwtAlgorithmSetting::Rs256,
            "r1",
            "RS256",
            "rsa-a.pem",
            "ed25519-b.pub.pem",
            JwtAlgorithmSetting::EdDsa,
        ),
        (
            JwtAlgorithmSetting::EdDsa,
            "e1",
            "EdDSA",
            "ed25519-a.pem",
            "rsa-b.pub.pem",
            JwtAlgorithmSetting::Rs256,
        ),
    ] {
        let app = spawn_app_with(backend, |settings| {
            settings.auth.jwt_secret = Some(SecretString::from(MASTER));
            asymmetric(settings, kid, algorithm, private);
            settings.auth.jwt_previous_keys = vec![
                public_previous("old-public", previous_alg, previous_file),
                hs256_previous("old-hs", MASTER),
            ];
        })
        .await;
        let reply = app.send(Request::get(JWKS).body(Body::empty()).unwrap()).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.headers[header::CACHE_CONTROL], "public, max-age=300");
        assert!(
            reply.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let keys = reply.body["keys"].as_array().unwrap();
        let listed: Vec<_> = keys.iter().map(|key| (&key["kid"], &key["alg"], &key["use"])).collect();
        assert_eq!(
            listed,
            [
                (&json!(kid), &json!(alg), &json!("sig")),
                (
                    &json!("old-public"),
                    &json!(if alg == "RS256" { "EdDSA" } else { "RS256" }),
                    &json!("sig")
                )
            ],
            "{alg}"
        );
        for key in keys {
            let mut fields: Vec<&str> = key.as_object().unwrap().keys().map(String::as_str).collect();
            fields.sort_unstable();
            match key["kty"].as_str().unwrap() {
                "RSA" => assert_eq!(fields, ["alg", "e", "kid", "kty", "n", "use"]),
                "OKP" => {
                    assert_eq!(fields, ["alg", "crv", "kid", "kty", "use", "x"]);
                    assert_eq!(key["crv"], "Ed25519");
                }
                other => panic!("unexpected kty {other}"),
            }
        }
        assert!(!reply.body.to_string().contains(MASTER), "no secret is published");

        let token = sign_in(&app, "+85251224538").await;
        let header = jwt_header(&token);
        assert_eq!((&header["alg"], &header["kid"]), (&json!(alg), &json!(kid)));
        assert_eq!(app.get_with_bearer(PROFILE, &token).await.status, StatusCode::OK);
        let claims = verify_with_jwks(&reply.body, &token).unwrap();
        assert_eq!(claims["iss"], "phonegate");
        // A flipped signature is refused by the JWKS too: the check has teeth.
        let mut tampered = token.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(verify_with_jwks(&reply.body, &tampered).is_err());
        assert_eq!(
            app.get_with_bearer(PROFILE, &tampered).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}

/// With HS256 keys only (the default) the key set is empty.
async fn jwks_is_empty_with_hs256_keys(backend: TestBackend) {
    let app = spawn_app_with(backend, |settings| {
        settings.auth.jwt_previous_keys = vec![hs256_previous("k0", MASTER)];
    })
    .await;
    let reply = app.send(Request::get(JWKS).body(Body::empty()).unwrap()).await;
    assert_eq!((reply.status, reply.body), (StatusCode::OK, json!({"keys": []})));
}

/// The service built from `settings` on `app`'s database and clock: the
/// same deployment restarted with another configuration.
async fn restart(app: &TestApp, database_url: &SecretString, configure: impl FnOnce(&mut Settings)) -> App {
    let mut settings = Settings::defaults().unwrap();
    settings.database.url = database_url.clone();
    settings.database.max_connections = 4;
    settings.auth.jwt_secret = Some(SecretString::from(MASTER));
    configure(&mut settings);
    build(
        &settings,
        Overrides {
            clock: Arc::new(app.clock.clone()),
            console_echo: ConsoleEcho::Silent,
        },
    )
    .await
    .unwrap()
}

async fn call(router: &Router, mut request: Request<Body>) -> (StatusCode, Value) {
    request
        .headers_mut()
        .insert(header::HOST, "localhost:8080".parse().unwrap());
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn profile_status(router: &Router, token: &str) -> StatusCode {
    let request = Request::get(PROFILE)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    call(router, request).await.0
}

fn post_json(path: &str, body: &Value) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

const PHONE: &str = "+12063721234";

/// phone-verify's register on `app`: the session token and the code texted.
async fn register(app: &App) -> (String, String) {
    let (status, body) = call(
        &app.router,
        post_json("/api/phone/register", &json!({"phone_number": PHONE})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    // The code goes out through the outbox, which `serve` drains in the
    // background and this test drains by hand.
    while let Ok(report) = app.dispatcher.dispatch_due().await
        && report.claimed > 0
    {}
    let message = app.console.as_ref().unwrap().last_to(PHONE).unwrap();
    let code = message.body.rsplit(' ').next().unwrap().to_owned();
    (body["session_token"].as_str().unwrap().to_owned(), code)
}

/// phone-verify's verify on `router`: 200, or 400 when the session token
/// or the code is refused.
async fn verify_phone(router: &Router, session: &str, code: &str) -> StatusCode {
    let body = json!({"phone_number": PHONE, "security_code": code, "session_token": session});
    call(router, post_json("/api/phone/verify", &body)).await.0
}

/// Rotation without logging anyone out: k1 (HS256 under
/// `auth.jwt_hs256_key`) → k2 (HS256 under another `auth.jwt_hs256_key`)
/// with k1 previous → k3 (EdDSA) with only k2 previous. Each restart keeps
/// the tokens of the keys still configured and refuses those of removed
/// keys; a phone-verify flow started under one key finishes under the next,
/// since the hashing key of codes stays derived from the unchanged
/// `auth.jwt_secret`.
async fn rotation_keeps_old_tokens_until_their_key_is_removed(backend: TestBackend) {
    let mut database_url = None;
    let k1 = spawn_app_with(backend, |settings| {
        settings.auth.jwt_secret = Some(SecretString::from(MASTER));
        settings.auth.jwt_hs256_key = Some(SecretString::from(SIGNING_K1));
        database_url = Some(settings.database.url.clone());
    })
    .await;
    let database_url = database_url.unwrap();
    let k1_token = sign_in(&k1, "+85251224538").await;
    assert_eq!(jwt_header(&k1_token)["kid"], "k1");
    let reply = k1
        .post_json("/api/phone/register", &json!({"phone_number": PHONE}))
        .await;
    let k1_session = reply.body["session_token"].as_str().unwrap().to_owned();
    let k1_code = k1.last_code_to(PHONE);

    let k2 = restart(&k1, &database_url, |settings| {
        settings.auth.jwt_key_id = "k2".into();
        settings.auth.jwt_hs256_key = Some(SecretString::from(SIGNING_K2));
        settings.auth.jwt_previous_keys = vec![hs256_previous("k1", SIGNING_K1)];
    })
    .await;
    assert_eq!(
        profile_status(&k2.router, &k1_token).await,
        StatusCode::OK,
        "k1's token still works"
    );
    assert_eq!(verify_phone(&k2.router, &k1_session, &k1_code).await, StatusCode::OK);
    let (k2_session, k2_code) = register(&k2).await;
    let header = jwt_header(&k2_session);
    assert_eq!(
        (&header["kid"], &header["alg"]),
        (&json!("k2"), &json!("HS256")),
        "new tokens are signed by the current key, not by k1"
    );

    let k3 = restart(&k1, &database_url, |settings| {
        asymmetric(settings, "k3", JwtAlgorithmSetting::EdDsa, "ed25519-a.pem");
        settings.auth.jwt_previous_keys = vec![hs256_previous("k2", SIGNING_K2)];
    })
    .await;
    assert_eq!(
        profile_status(&k3.router, &k1_token).await,
        StatusCode::UNAUTHORIZED,
        "k1 is gone, so are its tokens"
    );
    assert_eq!(verify_phone(&k3.router, &k2_session, &k2_code).await, StatusCode::OK);
    let (k3_session, k3_code) = register(&k3).await;
    assert_eq!(jwt_header(&k3_session)["kid"], "k3");
    // The first deployment, which knows k1 only, refuses k3's token with
    // the right code; k3 itself then accepts it, so the token was at fault.
    assert_eq!(
        verify_phone(&k1.router, &k3_session, &k3_code).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(verify_phone(&k3.router, &k3_session, &k3_code).await, StatusCode::OK);
}

// The master secret and the HS256 key are two settings: backends verifying
// JWTs hold the HS256 key, which signs every new token, and never the
// master secret, from which the hashing and sealing keys are derived.

const HS256_KEY: &str = "the-hs256-key-0123456789abcdefghijkl";
const ACCESS: &str = "phonegate:access";
const PHONE_SESSION: &str = "phonegate:phone-verify";

/// Checks `token` as a backend holding the HS256 key `key` would.
fn verify_hs256(token: &str, key: &str, audience: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_issuer(&["phonegate"]);
    validation.set_audience(&[audience]);
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_secret(key.as_bytes()), &validation).map(|data| data.claims)
}

fn is_bad_signature(result: Result<Value, jsonwebtoken::errors::Error>) -> bool {
    matches!(result, Err(error) if *error.kind() == jsonwebtoken::errors::ErrorKind::InvalidSignature)
}

fn claims_of(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// `claims` as the version before the upgrade signed them: HS256 with the
/// raw master secret, kid `k1`, the generic `typ: JWT`.
fn signed_as_before_the_upgrade(claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("k1".into());
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(MASTER.as_bytes()),
    )
    .unwrap()
}

/// phonegate's JWTs verify with `auth.jwt_hs256_key` and not with the
/// master secret `auth.jwt_secret`.
async fn jwts_are_signed_with_the_hs256_key_and_not_the_master(backend: TestBackend) {
    let app = spawn_app_with(backend, |settings| {
        settings.auth.jwt_secret = Some(SecretString::from(MASTER));
        settings.auth.jwt_hs256_key = Some(SecretString::from(HS256_KEY));
    })
    .await;
    let access = sign_in(&app, "+85251224538").await;
    assert_eq!(verify_hs256(&access, HS256_KEY, ACCESS).unwrap()["iss"], "phonegate");
    assert!(is_bad_signature(verify_hs256(&access, MASTER, ACCESS)));
    let reply = app
        .post_json("/api/phone/register", &json!({"phone_number": PHONE}))
        .await;
    let session = reply.body["session_token"].as_str().unwrap();
    assert_eq!(
        verify_hs256(session, HS256_KEY, PHONE_SESSION).unwrap()["phone_number"],
        PHONE
    );
    assert!(is_bad_signature(verify_hs256(session, MASTER, PHONE_SESSION)));
}

/// In development, with neither key set, the HS256 key is derived from the
/// master secret (the random one kept in the database) with HKDF-SHA256
/// under its own label, written as hex: not the master secret itself.
async fn in_development_the_hs256_key_is_derived_from_the_master(backend: TestBackend) {
    use phonegate_domain::ports::Clock as _;
    let app = spawn_app_with(backend, |_| {}).await;
    let access = sign_in(&app, "+85251224538").await;
    let master = app
        .store
        .secret_or_insert(
            "dev_jwt_secret",
            b"not used: the secret exists".to_vec(),
            app.clock.now(),
        )
        .await
        .unwrap();
    let master = String::from_utf8(master).unwrap();
    let mut okm = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(None, master.as_bytes())
        .expand(b"phonegate jwt hs256 v1", &mut okm)
        .unwrap();
    let derived: String = okm.iter().map(|b| format!("{b:02x}")).collect();
    assert_ne!(derived, master);
    assert!(verify_hs256(&access, &derived, ACCESS).is_ok());
    assert!(is_bad_signature(verify_hs256(&access, &master, ACCESS)));
}

/// The upgrade: tokens that the version before signed with the raw master
/// secret keep working for one token lifetime after this database first
/// ran the upgraded version, and not after it, restarts included; the
/// master secret never signs.
async fn tokens_signed_with_the_raw_master_verify_for_one_token_lifetime(backend: TestBackend) {
    use phonegate_domain::ports::Clock as _;
    let mut database_url = None;
    let app = spawn_app_with(backend, |settings| {
        settings.auth.jwt_secret = Some(SecretString::from(MASTER));
        settings.auth.jwt_hs256_key = Some(SecretString::from(HS256_KEY));
        database_url = Some(settings.database.url.clone());
    })
    .await;
    let database_url = database_url.unwrap();
    let current = sign_in(&app, "+85251224538").await;
    let user_id = claims_of(&current)["user_id"].as_i64().unwrap();
    let access_before_the_upgrade = |now: i64| {
        signed_as_before_the_upgrade(&json!({
            "sub": user_id.to_string(), "user_id": user_id, "iat": now, "nbf": now, "exp": now + 1800,
            "iss": "phonegate", "aud": ACCESS, "jti": "0123456789abcdef0123456789abcdef",
        }))
    };
    let now = app.clock.now().unix_seconds();
    assert_eq!(
        app.get_with_bearer(PROFILE, &access_before_the_upgrade(now))
            .await
            .status,
        StatusCode::OK
    );
    // The same claims typed as the upgraded version types them: the master
    // secret verifies no token of the upgraded version.
    let header = jsonwebtoken::decode_header(&current).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let typed_with_master = jsonwebtoken::encode(
        &header,
        &claims_of(&access_before_the_upgrade(now)),
        &jsonwebtoken::EncodingKey::from_secret(MASTER.as_bytes()),
    )
    .unwrap();
    assert_eq!(
        app.get_with_bearer(PROFILE, &typed_with_master).await.status,
        StatusCode::UNAUTHORIZED
    );

    // One token lifetime (auth.jwt_ttl_seconds, the longer one) later, a
    // token signed with the master secret is refused, even one that has
    // not expired, and a restart does not open the window again.
    app.clock.advance(Duration::from_secs(1800));
    let now = app.clock.now().unix_seconds();
    assert_eq!(
        app.get_with_bearer(PROFILE, &access_before_the_upgrade(now))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let restarted = restart(&app, &database_url, |settings| {
        settings.auth.jwt_hs256_key = Some(SecretString::from(HS256_KEY));
    })
    .await;
    assert_eq!(
        profile_status(&restarted.router, &access_before_the_upgrade(now)).await,
        StatusCode::UNAUTHORIZED
    );
    let fresh = sign_in(&app, "+85251224538").await;
    assert_eq!(profile_status(&restarted.router, &fresh).await, StatusCode::OK);
}

/// A phone-verify flow begun before the upgrade finishes after it: the
/// code hashed and the SMS sealed in the outbox before are read with the
/// same keys (derived from the master secret, as before), and the session
/// token signed with the raw master secret still verifies.
async fn codes_and_outbox_rows_from_before_the_upgrade_still_work(backend: TestBackend) {
    let mut database_url = None;
    let before = spawn_app_with(backend, |settings| {
        settings.auth.jwt_secret = Some(SecretString::from(MASTER));
        database_url = Some(settings.database.url.clone());
    })
    .await;
    let database_url = database_url.unwrap();
    // Registered, and the SMS left sealed in the outbox (no dispatcher runs).
    let (status, body) = call(
        &before.router,
        post_json("/api/phone/register", &json!({"phone_number": PHONE})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    let session = signed_as_before_the_upgrade(&claims_of(body["session_token"].as_str().unwrap()));

    let after = restart(&before, &database_url, |settings| {
        settings.auth.jwt_hs256_key = Some(SecretString::from(HS256_KEY));
    })
    .await;
    while let Ok(report) = after.dispatcher.dispatch_due().await
        && report.claimed > 0
    {}
    let message = after
        .console
        .as_ref()
        .unwrap()
        .last_to(PHONE)
        .expect("the sealed SMS was read");
    let code = message.body.rsplit(' ').next().unwrap().to_owned();
    assert_eq!(verify_phone(&after.router, &session, &code).await, StatusCode::OK);
}

on_both_backends!(
    jwks_publishes_the_public_keys_that_verify_tokens,
    jwks_is_empty_with_hs256_keys,
    rotation_keeps_old_tokens_until_their_key_is_removed,
    jwts_are_signed_with_the_hs256_key_and_not_the_master,
    in_development_the_hs256_key_is_derived_from_the_master,
    tokens_signed_with_the_raw_master_verify_for_one_token_lifetime,
    codes_and_outbox_rows_from_before_the_upgrade_still_work,
);

// Start-up errors name the setting at fault.

async fn refused(configure: impl FnOnce(&mut Settings)) -> String {
    try_spawn_app_with(TestBackend::Sqlite, configure)
        .await
        .expect_err("the service refuses to start")
}

#[tokio::test]
async fn an_asymmetric_key_needs_a_readable_private_key_file() {
    for algorithm in [JwtAlgorithmSetting::Rs256, JwtAlgorithmSetting::EdDsa] {
        let error = refused(|settings| settings.auth.jwt_algorithm = algorithm).await;
        assert!(error.contains("auth.jwt_private_key_file is required"), "{error}");
        let error = refused(|settings| {
            settings.auth.jwt_algorithm = algorithm;
            settings.auth.jwt_private_key_file = Some(fixture("missing.pem"));
        })
        .await;
        assert!(
            error.contains("auth.jwt_private_key_file") && error.contains("missing.pem"),
            "{error}"
        );
        let error = refused(|settings| {
            settings.auth.jwt_algorithm = algorithm;
            // A directory cannot be read as a file.
            settings.auth.jwt_private_key_file = Some(fixture(""));
        })
        .await;
        assert!(error.contains("auth.jwt_private_key_file: cannot read"), "{error}");
    }
}

#[tokio::test]
async fn unusable_key_files_are_refused_with_the_reason() {
    let cases: [(JwtAlgorithmSetting, &str, &str); 4] = [
        (JwtAlgorithmSetting::Rs256, "rsa-1024.pem", "at least 2048"),
        (
            JwtAlgorithmSetting::Rs256,
            "rsa-a.pub.pem",
            "expected a PEM private key",
        ),
        (
            JwtAlgorithmSetting::EdDsa,
            "rsa-a.pem",
            "not a usable EdDSA private key",
        ),
        (JwtAlgorithmSetting::EdDsa, "README.md", "no PEM block"),
    ];
    for (algorithm, file, reason) in cases {
        let error = refused(|settings| asymmetric(settings, "k", algorithm, file)).await;
        assert!(
            error.contains("auth.jwt_private_key_file") && error.contains(reason),
            "{file}: {error}"
        );
        assert!(!error.contains("MII"), "no key material in errors: {error}");
    }
}

#[tokio::test]
async fn settings_of_the_wrong_algorithm_are_refused() {
    let error = refused(|settings| settings.auth.jwt_private_key_file = Some(fixture("ed25519-a.pem"))).await;
    assert!(error.contains("auth.jwt_private_key_file is only used with"), "{error}");
    let error = refused(|settings| {
        asymmetric(settings, "e1", JwtAlgorithmSetting::EdDsa, "ed25519-a.pem");
        settings.auth.jwt_hs256_key = Some(SecretString::from(SIGNING_K2));
    })
    .await;
    assert!(error.contains("auth.jwt_hs256_key is only used with"), "{error}");
    let error = refused(|settings| settings.auth.jwt_hs256_key = Some(SecretString::from("short"))).await;
    assert!(
        error.contains("auth.jwt_hs256_key: an HS256 secret must be at least 32"),
        "{error}"
    );
    let error = refused(|settings| settings.auth.jwt_key_id = String::new()).await;
    assert!(error.contains("auth.jwt_key_id must not be empty"), "{error}");
}

#[tokio::test]
async fn bad_previous_keys_are_refused_by_index_and_kid() {
    let cases: Vec<(PreviousJwtKeyEntry, &str)> = vec![
        (
            previous("k0", JwtAlgorithmSetting::Hs256),
            "auth.jwt_previous_keys[0] (kid \"k0\"): secret is required",
        ),
        (
            hs256_previous("k0", "short"),
            "auth.jwt_previous_keys[0] (kid \"k0\").secret: an HS256 secret must be at least 32",
        ),
        (
            PreviousJwtKeyEntry {
                public_key_file: Some(fixture("rsa-a.pub.pem")),
                ..hs256_previous("k0", MASTER)
            },
            "public_key_file is for RS256 and EdDSA keys",
        ),
        (
            previous("k0", JwtAlgorithmSetting::EdDsa),
            "auth.jwt_previous_keys[0] (kid \"k0\"): public_key_file is required",
        ),
        (
            public_previous("k0", JwtAlgorithmSetting::Rs256, "rsa-a.pem"),
            "-pubout",
        ),
        (
            public_previous("k0", JwtAlgorithmSetting::EdDsa, "missing.pub.pem"),
            "auth.jwt_previous_keys[0] (kid \"k0\").public_key_file: cannot read",
        ),
        (hs256_previous("k1", MASTER), "the kid \"k1\" is used twice"),
        (
            hs256_previous("", MASTER),
            "auth.jwt_previous_keys[0].kid must not be empty",
        ),
    ];
    for (entry, expected) in cases {
        let error = refused(|settings| settings.auth.jwt_previous_keys = vec![entry]).await;
        assert!(error.contains(expected), "expected {expected:?} in: {error}");
        assert!(!error.contains(MASTER), "{error}");
    }
}

// Settings files.

#[test]
fn key_settings_load_from_a_config_file() {
    let path = std::env::temp_dir().join(format!("phonegate-jwt-keys-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        r#"
[auth]
jwt_key_id = "k2"
jwt_algorithm = "EdDSA"
jwt_private_key_file = "/etc/phonegate/k2.pem"
jwt_previous_keys = [
  { kid = "k1", algorithm = "HS256", secret = "0123456789abcdef0123456789abcdef" },
  { kid = "k0", algorithm = "RS256", public_key_file = "/etc/phonegate/k0.pub.pem" },
]
"#,
    )
    .unwrap();
    let settings = Settings::load_with_env(ConfigFile::Explicit(&path), Vec::new()).unwrap();
    std::fs::remove_file(&path).unwrap();
    let auth = &settings.auth;
    assert_eq!(auth.jwt_algorithm, JwtAlgorithmSetting::EdDsa);
    assert_eq!(auth.jwt_private_key_file, Some(PathBuf::from("/etc/phonegate/k2.pem")));
    let kids: Vec<_> = auth
        .jwt_previous_keys
        .iter()
        .map(|key| (key.kid.as_str(), key.algorithm))
        .collect();
    assert_eq!(
        kids,
        [("k1", JwtAlgorithmSetting::Hs256), ("k0", JwtAlgorithmSetting::Rs256)]
    );
    assert!(
        !format!("{settings:?}").contains("0123456789abcdef"),
        "secrets are redacted in Debug"
    );

    let defaults = Settings::defaults().unwrap();
    assert_eq!(defaults.auth.jwt_algorithm, JwtAlgorithmSetting::Hs256);
    assert_eq!(defaults.auth.jwt_key_id, "k1");
    assert!(defaults.auth.jwt_previous_keys.is_empty());
    assert!(defaults.auth.jwt_private_key_file.is_none() && defaults.auth.jwt_hs256_key.is_none());
}

/// `auth.jwt_signing_secret`, the HS256 key's former name, is still read.
#[test]
fn the_former_name_of_the_hs256_key_is_still_read() {
    let path = std::env::temp_dir().join(format!("phonegate-jwt-former-{}.toml", std::process::id()));
    std::fs::write(&path, format!("[auth]\njwt_signing_secret = \"{SIGNING_K2}\"\n")).unwrap();
    let settings = Settings::load_with_env(ConfigFile::Explicit(&path), Vec::new()).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(settings.auth.jwt_hs256_key.is_some());
}

#[test]
fn key_settings_from_the_environment() {
    let env = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>()
    };
    let settings = Settings::load_with_env(
        ConfigFile::Default,
        env(&[
            ("PHONEGATE__AUTH__JWT_ALGORITHM", "RS256"),
            ("PHONEGATE__AUTH__JWT_PRIVATE_KEY_FILE", "/run/secrets/jwt.pem"),
        ]),
    )
    .unwrap();
    assert_eq!(settings.auth.jwt_algorithm, JwtAlgorithmSetting::Rs256);
    assert_eq!(
        settings.auth.jwt_private_key_file,
        Some(PathBuf::from("/run/secrets/jwt.pem"))
    );
    let error = Settings::load_with_env(ConfigFile::Default, env(&[("PHONEGATE__AUTH__JWT_ALGORITHM", "ES256")]))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("ES256") && error.contains("auth.jwt_algorithm"),
        "{error}"
    );
    // A list of tables cannot be written as one variable: refused by name,
    // without echoing the value (which may hold a secret).
    let error = Settings::load_with_env(
        ConfigFile::Default,
        env(&[(
            "PHONEGATE__AUTH__JWT_PREVIOUS_KEYS",
            r#"[{kid="k1",algorithm="HS256",secret="0123456789abcdef0123456789abcdef"}]"#,
        )]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("auth.jwt_previous_keys can only be set in the config file"),
        "{error}"
    );
    assert!(!error.contains("0123456789abcdef"), "{error}");
}
