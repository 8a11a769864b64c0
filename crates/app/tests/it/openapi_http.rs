//! The OpenAPI spec against the real router (SQLite): it is served at
//! `/openapi.json` with Swagger UI at `/docs`, the router mounts no path
//! outside the route tables the spec is checked against
//! (`crates/api/tests/openapi_spec.rs`), and what the service really
//! answers matches what the spec documents, status and body.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use crate::common;
#[path = "../../../api/tests/it/common.rs"]
mod support;

use std::collections::BTreeSet;

use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, Method, Request, StatusCode, header},
};
use common::{TestApp, spawn_app};
use http_body_util::BodyExt as _;
use phonegate_adapters::testing::TestBackend;
use serde_json::{Value, json};
use support::Spec;
use tower::ServiceExt as _;

fn spec() -> Spec {
    Spec::new(serde_json::to_value(phonegate_api::openapi::spec()).unwrap())
}

struct Raw {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

async fn raw(app: &TestApp, request: Request<Body>) -> Raw {
    let (mut parts, body) = request.into_parts();
    parts.headers.insert(header::HOST, "localhost:8080".parse().unwrap());
    let response = app
        .router
        .clone()
        .oneshot(Request::from_parts(parts, body))
        .await
        .unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Raw { status, headers, body }
}

/// Checks an answer against the spec: its status is documented for the
/// operation, and its body matches the schema of that status.
fn conforms(spec: &Spec, method: &str, path: &str, answer: &Raw) -> Result<(), String> {
    let (_, operation) = spec.operation(method, path).ok_or("no operation in the spec")?;
    let status = answer.status.as_u16();
    if answer.body.is_empty() {
        return if spec.documents_empty(operation, status) {
            Ok(())
        } else {
            Err(format!("an empty {status}, which the spec does not document"))
        };
    }
    let content_type = answer
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let schema = spec.response_schema(operation, status, content_type)?;
    let instance = if content_type.starts_with("application/json") {
        serde_json::from_slice(&answer.body).map_err(|error| format!("not JSON: {error}"))?
    } else {
        Value::String(String::from_utf8_lossy(&answer.body).into_owned())
    };
    spec.validate(&schema, &instance)
        .map_err(|error| format!("{status} body {instance}: {error}"))
}

#[tokio::test]
async fn the_spec_and_swagger_ui_are_served() {
    let app = spawn_app(TestBackend::Sqlite).await;
    let answer = raw(&app, Request::get("/openapi.json").body(Body::empty()).unwrap()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers[header::CONTENT_TYPE], "application/json");
    let served: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(served, serde_json::to_value(phonegate_api::openapi::spec()).unwrap());
    assert_eq!(served["openapi"], "3.1.0");

    let answer = raw(&app, Request::get("/docs").body(Body::empty()).unwrap()).await;
    assert!(answer.status.is_redirection(), "{}", answer.status);
    assert_eq!(answer.headers[header::LOCATION], "/docs/");

    let answer = raw(&app, Request::get("/docs/").body(Body::empty()).unwrap()).await;
    assert_eq!(answer.status, StatusCode::OK);
    let page = String::from_utf8_lossy(&answer.body);
    assert!(page.contains("swagger-ui"), "{page}");

    // The initializer points Swagger UI at our spec, and the assets are
    // compiled in (the `vendored` feature): nothing comes from elsewhere.
    let answer = raw(
        &app,
        Request::get("/docs/swagger-initializer.js")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&answer.body).contains("/openapi.json"));
    let answer = raw(&app, Request::get("/docs/swagger-ui.css").body(Body::empty()).unwrap()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.len() > 1000);
}

/// The paths in the real router's `Debug` output: axum cannot list its
/// routes, but its debug form quotes each path it routes (the only quoted
/// strings in it that begin with `/`). This catches a route mounted around
/// the route tables (a plain `Router::route`).
fn routed_paths(debug: &str) -> BTreeSet<String> {
    debug
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|text| text.starts_with('/') && !AXUM_FALLBACK_PATHS.contains(text))
        .map(str::to_owned)
        .collect()
}

/// The paths of axum's own fallback router, which every router has.
const AXUM_FALLBACK_PATHS: [&str; 2] = ["/", "/{*__private__axum_fallback}"];

#[tokio::test]
async fn the_router_mounts_no_path_outside_the_route_tables() {
    let app = spawn_app(TestBackend::Sqlite).await;
    let routed = routed_paths(&format!("{:?}", app.router));
    let tabled: BTreeSet<String> = phonegate_api::mounted_routes()
        .into_iter()
        .map(|route| route.path)
        .collect();
    assert!(
        routed.len() >= tabled.len(),
        "the router's debug form no longer lists its paths ({} found); update routed_paths: {routed:?}",
        routed.len()
    );
    let outside: Vec<&String> = routed
        .iter()
        .filter(|path| !tabled.contains(*path) && !path.starts_with(phonegate_api::openapi::DOCS_PATH))
        .collect();
    assert!(
        outside.is_empty(),
        "mounted without the route table, so the spec test cannot see them: {outside:?}"
    );
    // `/` (the developer console's page) cannot be told apart from axum's
    // own fallback path in the debug form; console_page.rs checks it is served.
    let missing: Vec<&String> = tabled
        .iter()
        .filter(|path| !routed.contains(*path) && !AXUM_FALLBACK_PATHS.contains(&path.as_str()))
        .collect();
    assert!(missing.is_empty(), "in the route table but not routed: {missing:?}");
}

#[tokio::test]
async fn every_operation_answers_a_bare_request_as_documented() {
    let app = spawn_app(TestBackend::Sqlite).await;
    let spec = spec();
    let operations = spec.operations();
    assert!(operations.len() >= 25);
    let mut failures = Vec::new();
    for (method, template) in operations {
        let path = template.replace("{user_id}", "1");
        let request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(&path)
            .body(Body::empty())
            .unwrap();
        let answer = raw(&app, request).await;
        if let Err(error) = conforms(&spec, &method, &path, &answer) {
            failures.push(format!("{method} {path}: {error}"));
        }
    }
    assert!(
        failures.is_empty(),
        "answers the spec does not document:\n{}",
        failures.join("\n")
    );
}

async fn call(app: &TestApp, spec: &Spec, method: &str, path_and_query: &str, body: Option<Value>) -> Value {
    let mut request = Request::builder().method(method).uri(path_and_query);
    let body = match body {
        Some(body) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    let answer = raw(app, request.body(body).unwrap()).await;
    app.deliver_outbox().await;
    let path = path_and_query.split('?').next().unwrap();
    conforms(spec, method, path, &answer).unwrap_or_else(|error| panic!("{method} {path}: {error}"));
    assert!(answer.status.is_success(), "{method} {path}: {}", answer.status);
    if answer.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&answer.body).unwrap()
    }
}

#[tokio::test]
async fn successful_answers_match_the_spec() {
    let app = spawn_app(TestBackend::Sqlite).await;
    let spec = spec();

    // pin-auth: signup, verify, profile, push registration.
    let mobile = "+85251224538";
    let signup = json!({"user_auth": {"mobile": mobile, "first_name": "Jake",
        "address_attributes": {"district_id": "1", "address_type": "Profile"}}});
    let key = call(&app, &spec, "POST", "/api/v1/auth/signup", Some(signup)).await;
    let pin = app.last_code_to(mobile);
    let session = call(
        &app,
        &spec,
        "POST",
        "/api/v1/auth/verify",
        Some(json!({"otp_auth_key": key["otp_auth_key"], "pin": pin})),
    )
    .await;
    let jwt = session["jwt_token"].as_str().unwrap();
    let answer = raw(
        &app,
        Request::get("/api/v1/auth/current_user_profile")
            .header(header::AUTHORIZATION, format!("Bearer {jwt}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    conforms(&spec, "GET", "/api/v1/auth/current_user_profile", &answer).unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    let answer = raw(
        &app,
        Request::post("/api/v1/auth/register_device")
            .header(header::AUTHORIZATION, format!("Bearer {jwt}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"handle": "fcm-id", "platform": "fcm"}).to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    conforms(&spec, "POST", "/api/v1/auth/register_device", &answer).unwrap();

    // phone-verify.
    let phone = "+12063721234";
    let token = call(
        &app,
        &spec,
        "POST",
        "/api/phone/register",
        Some(json!({"phone_number": phone})),
    )
    .await;
    let code = app.last_code_to(phone);
    let verify = json!({"phone_number": phone, "security_code": code, "session_token": token["session_token"]});
    call(&app, &spec, "POST", "/api/phone/verify", Some(verify)).await;

    // phone-login, through to a backend's check of the access code.
    call(&app, &spec, "GET", "/v1/auth/ping", None).await;
    call(
        &app,
        &spec,
        "POST",
        "/v1/auth/phone_login?phone_number=(206)372-1235&device_id=d",
        None,
    )
    .await;
    let pin = app.last_code_to("+12063721235");
    let grant = call(
        &app,
        &spec,
        "POST",
        &format!("/v1/auth/check_pin?phone_number=(206)372-1235&device_id=d&verify_pin={pin}"),
        None,
    )
    .await;
    let access_code = grant["res_content"]["access_code"].as_str().unwrap();
    call(
        &app,
        &spec,
        "POST",
        &format!("/v1/auth/check_access_code?access_code={access_code}&device_id=d"),
        None,
    )
    .await;

    // tokens: sign in, with and without `.json`, and sign out.
    let user_id = app
        .create_user("ada@example.com", "correct horse battery", "Ada", "L")
        .await;
    let credentials = json!({"email": "ada@example.com", "password": "correct horse battery",
        "device_token": "udid-1", "mobile_os": "ios"});
    call(&app, &spec, "POST", "/api/v1/tokens", Some(credentials.clone())).await;
    let signed_in = call(&app, &spec, "POST", "/api/v1/tokens.json", Some(credentials)).await;
    call(
        &app,
        &spec,
        "DELETE",
        &format!("/api/v1/tokens/{user_id}.json"),
        Some(json!({"auth_token": signed_in["token"]})),
    )
    .await;

    // ops.
    for path in ["/healthz", "/readyz", "/.well-known/jwks.json", "/metrics"] {
        let answer = raw(&app, Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        conforms(&spec, "GET", path, &answer).unwrap_or_else(|error| panic!("{path}: {error}"));
    }
}
