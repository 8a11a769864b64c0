//! Checking answers: never a 5xx, and every error in its surface's own
//! shape.

use super::*;

/// An answer: status, whether it has a request id, and the body as JSON
/// (`Null` when empty; `Err` with the text when not JSON).
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) request_id: bool,
    pub(super) body: Result<Value, String>,
}

/// Sends `request`, then delivers what it queued (codes go out through the
/// outbox), as `TestApp::send` does.
pub(super) async fn send(app: &TestApp, request: Request<Body>) -> Answer {
    let response = app.router.clone().oneshot(request).await.unwrap();
    app.deliver_outbox().await;
    let status = response.status();
    let request_id = response.headers().contains_key("x-request-id");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_slice(&bytes).map_err(|_| String::from_utf8_lossy(&bytes).into_owned())
    };
    Answer {
        status,
        request_id,
        body,
    }
}

pub(super) fn is_string(value: Option<&Value>) -> bool {
    value.is_some_and(Value::is_string)
}

/// Whether `body` is an error in `surface`'s own shape.
pub(super) fn error_shape(surface: Surface, status: StatusCode, body: &Value) -> bool {
    let Some(object) = body.as_object() else {
        // Only the ops endpoints, which have no error shape of their own,
        // answer a wrong method with axum's empty 405.
        return surface == Surface::Ops && body.is_null() && status == StatusCode::METHOD_NOT_ALLOWED;
    };
    match surface {
        // {"errors": "…"}
        Surface::PinAuth => object.len() == 1 && is_string(object.get("errors")),
        // {"detail": "…"} or {"<field>": ["…"], …}
        Surface::PhoneVerify => {
            (object.len() == 1 && is_string(object.get("detail")))
                || (!object.is_empty()
                    && object.values().all(|messages| {
                        messages
                            .as_array()
                            .is_some_and(|messages| !messages.is_empty() && messages.iter().all(Value::is_string))
                    }))
        }
        Surface::PhoneLogin => envelope(body),
        // {"error": "…"}
        Surface::Tokens => object.len() == 1 && is_string(object.get("error")),
        Surface::Ops => false,
    }
}

/// `{"res_info": {"code": <int>, "code_info": "…"}, "res_content"?: …}`.
pub(super) fn envelope(body: &Value) -> bool {
    let Some(object) = body.as_object() else {
        return false;
    };
    let info_ok = object.get("res_info").and_then(Value::as_object).is_some_and(|info| {
        info.len() == 2 && info.get("code").is_some_and(Value::is_i64) && is_string(info.get("code_info"))
    });
    info_ok && object.keys().all(|key| key == "res_info" || key == "res_content")
}

pub(super) fn check(case: &Case, answer: &Answer) -> Result<(), TestCaseError> {
    let surface = case.route().surface;
    let context = || format!("{} {} -> {} {:?}", case.method, case.path(), answer.status, answer.body);
    prop_assert!(answer.status.as_u16() < 500, "a server error: {}", context());
    prop_assert!(answer.request_id, "no x-request-id: {}", context());
    let body = match &answer.body {
        Ok(body) => body,
        Err(text) => return Err(TestCaseError::fail(format!("not JSON ({text:?}): {}", context()))),
    };
    prop_assert_ne!(
        answer.status,
        StatusCode::NOT_FOUND,
        "a mounted route answered 404: {}",
        context()
    );
    if answer.status.is_client_error() {
        prop_assert!(
            error_shape(surface, answer.status, body),
            "not in the surface's error shape: {}",
            context()
        );
    } else if surface == Surface::PhoneLogin {
        prop_assert!(envelope(body), "not in the envelope: {}", context());
    } else if answer.status == StatusCode::NO_CONTENT {
        prop_assert!(body.is_null(), "a body with 204: {}", context());
    } else {
        prop_assert!(body.is_object(), "not a JSON object: {}", context());
    }
    // The wrong method is refused with 405, whatever else is wrong.
    if !case.route().methods.contains(&case.method.as_str()) && !shadowed(case) {
        prop_assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{}", context());
    }
    Ok(())
}

/// Whether a `/api/v1/tokens/{user_id}` path is really another tokens
/// route (`/api/v1/tokens/reset`), whose methods then apply.
pub(super) fn shadowed(case: &Case) -> bool {
    let path = case.path();
    case.route().path.contains("{user_id}")
        && ["reset", "reset.json", "introspect", "introspect.json"].contains(&path.rsplit('/').next().unwrap_or(""))
}
