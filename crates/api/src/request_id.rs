//! Which `x-request-id` a request keeps.
//!
//! A client's id is kept, so that a request can be followed from the
//! client's logs into ours, but only when it is short and plain: the id is
//! written into every log line of the request and echoed in the response,
//! so a long or odd one could flood the logs, forge log fields or break a
//! log parser. Any other id is removed before [`SetRequestIdLayer`] runs,
//! which then makes a fresh one; the response's `x-request-id` shows which
//! was used.
//!
//! [`SetRequestIdLayer`]: tower_http::request_id::SetRequestIdLayer

use axum::http::{HeaderName, Request};

/// The header, as `tower_http`'s `x_request_id` layers name it.
fn x_request_id() -> HeaderName {
    HeaderName::from_static("x-request-id")
}

/// The longest client id kept.
pub(crate) const MAX_LEN: usize = 64;

/// Whether a client-sent id is kept: 1 to 64 characters of
/// `[A-Za-z0-9._-]` (a UUID, a ULID, a hex trace id all qualify).
pub(crate) fn is_acceptable(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
}

/// Removes the request's `x-request-id` unless it is exactly one
/// acceptable value (two ids would leave which one is logged to chance).
pub(crate) fn drop_unacceptable<B>(mut request: Request<B>) -> Request<B> {
    let mut values = request.headers().get_all(x_request_id()).iter();
    let keep = match (values.next(), values.next()) {
        (None, _) => return request,
        (Some(only), None) => is_acceptable(only.as_bytes()),
        (Some(_), Some(_)) => false,
    };
    if !keep {
        request.headers_mut().remove(x_request_id());
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_short_ids_are_kept_and_anything_else_is_not() {
        for id in [
            "a",
            "0f8c2a4e-6b1d-4a55-9a0e-3c1f2b7d9e10",
            "01HZY3K4J5Q6R7S8T9V0W1X2Y3",
            "trace.span_1-2",
            &"x".repeat(64),
        ] {
            assert!(is_acceptable(id.as_bytes()), "{id}");
        }
        for id in [
            "",
            &"x".repeat(65),
            "with space",
            "new\\nline",
            "level=error msg=forged",
            "quote\"",
            "ünï",
            "semi;colon",
        ] {
            assert!(!is_acceptable(id.as_bytes()), "{id}");
        }
    }

    #[test]
    fn a_bad_or_repeated_id_is_removed() {
        let request = |ids: &[&str]| {
            let mut builder = Request::builder();
            for id in ids {
                builder = builder.header("x-request-id", *id);
            }
            drop_unacceptable(builder.body(()).unwrap())
        };
        assert_eq!(request(&["abc-123"]).headers()["x-request-id"], "abc-123");
        assert!(!request(&["a b"]).headers().contains_key("x-request-id"));
        assert!(!request(&["abc", "def"]).headers().contains_key("x-request-id"));
        assert!(!request(&[]).headers().contains_key("x-request-id"));
    }
}
