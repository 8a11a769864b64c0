//! Request parameters, wherever the client put them.
//!
//! The clients phonegate replaces grew up on Rails and Django, which read
//! parameters from a JSON body, a form body or the query string alike, with
//! Rails-style nested form keys (`user_auth[mobile]=…`). [`Params`] does the
//! same: it merges the query string and the body into one JSON object
//! (body wins), so each handler reads fields without caring how they came.
//! [`Decoded`] goes one step further and deserializes that object into a
//! surface's typed request, whose derive is also its OpenAPI schema.

use std::marker::PhantomData;

use axum::{
    body::{Bytes, to_bytes},
    extract::{FromRequest, Request},
    http::header::CONTENT_TYPE,
    response::IntoResponse,
};
use serde::{Deserialize as _, Deserializer, de::DeserializeOwned};
use serde_json::{Map, Value};

/// The most a request body may hold. Every surface's requests are tiny.
const BODY_LIMIT: usize = 64 * 1024;
/// The deepest Rails-style nesting accepted (`a[b][c]` is 2). Parsing
/// recurses per level, so an unbounded depth would let one request exhaust
/// the stack.
const MAX_NESTING: usize = 8;

/// A request's parameters as one JSON object. `Debug` shows the names
/// only: values include codes, passwords and tokens.
#[derive(Clone, Default)]
pub struct Params(Map<String, Value>);

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Params")
            .field(&self.0.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why the parameters could not be read. Each surface turns this into a
/// 4xx in its own error shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("Request body is too large")]
    TooLarge,
    #[error("Request body is not valid JSON")]
    MalformedJson,
    #[error("Request body must be a JSON object")]
    NotAnObject,
    #[error("Request parameters are malformed")]
    MalformedForm,
    /// Postgres cannot store NUL in text, and no parameter needs it.
    #[error("Request parameters must not contain NUL characters")]
    NulCharacter,
    /// The parameters do not deserialize into the operation's request type.
    #[error("Request parameters do not have the expected types")]
    WrongTypes,
}

/// Handlers read parameters through [`Decoded`] with their surface's own
/// error, which answers in its shape; this plain 400 is only the fallback
/// axum requires of a rejection.
impl axum::response::IntoResponse for ParamsError {
    fn into_response(self) -> axum::response::Response {
        (axum::http::StatusCode::BAD_REQUEST, self.to_string()).into_response()
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ParamsError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let mut params = Map::new();
        if let Some(query) = request.uri().query() {
            merge_form(&mut params, query.as_bytes())?;
        }
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(|value| value.to_ascii_lowercase());
        let body = to_bytes(request.into_body(), BODY_LIMIT)
            .await
            .map_err(|_| ParamsError::TooLarge)?;
        merge_body(&mut params, content_type.as_deref(), &body)?;
        if params
            .iter()
            .any(|(key, value)| key.contains('\0') || contains_nul(value))
        {
            return Err(ParamsError::NulCharacter);
        }
        Ok(Self(params))
    }
}

/// A surface's typed request `T`, deserialized from the merged [`Params`];
/// a request that cannot be read is refused as `E`, the surface's own
/// error shape (each surface's `ApiError` converts [`ParamsError`]).
#[derive(Debug, Clone)]
pub(crate) struct Decoded<T, E = ParamsError>(pub(crate) T, pub(crate) PhantomData<fn() -> E>);

impl<S, T, E> FromRequest<S> for Decoded<T, E>
where
    S: Send + Sync,
    T: DeserializeOwned,
    E: From<ParamsError> + IntoResponse,
{
    type Rejection = E;

    async fn from_request(request: Request, state: &S) -> Result<Self, E> {
        let params = Params::from_request(request, state).await?;
        Ok(Self(params.decode()?, PhantomData))
    }
}

/// A field that was sent and is not blank (white space only counts as
/// blank). The surfaces answer a blank field as a missing one, each in its
/// own words.
pub(crate) fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|value| !value.trim().is_empty())
}

/// Deserializes a field the way [`Params::text`] reads it: text as it is,
/// a number or a boolean as its text, and `None` when the field is absent
/// (with `#[serde(default)]`), null, a list or an object. Surfaces whose
/// clients send numbers for codes, or junk for anything, keep answering
/// "missing" or "invalid" in their own words rather than a type error.
pub(crate) fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(text) => Some(text),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    })
}

fn merge_body(params: &mut Map<String, Value>, content_type: Option<&str>, body: &Bytes) -> Result<(), ParamsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let is_json = match content_type {
        Some(ct) if ct.starts_with("application/json") || ct.contains("+json") => true,
        Some(ct) if ct.starts_with("application/x-www-form-urlencoded") => false,
        // No or another content type: JSON if it looks like JSON (clients
        // that forget the header), else a form (curl -d).
        _ => body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'),
    };
    if is_json {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => params.extend(object),
            Ok(_) => return Err(ParamsError::NotAnObject),
            Err(_) => return Err(ParamsError::MalformedJson),
        }
    } else {
        merge_form(params, body)?;
    }
    Ok(())
}

fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(object) => object
            .iter()
            .any(|(key, value)| key.contains('\0') || contains_nul(value)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Merges `a=1&b[c]=2&d[]=3` into `params` as `{"a":"1","b":{"c":"2"},"d":["3"]}`.
fn merge_form(params: &mut Map<String, Value>, form: &[u8]) -> Result<(), ParamsError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(form).map_err(|_| ParamsError::MalformedForm)?;
    for (key, value) in pairs {
        // A pair without a name (`=`, `&=x`) names no field: Rack drops it
        // and so does the edge, rather than refusing the fields beside it.
        // Its value is still held to the rule every value is held to.
        if key.is_empty() {
            if value.contains('\0') {
                return Err(ParamsError::NulCharacter);
            }
            continue;
        }
        let (head, path) = split_key(&key).ok_or(ParamsError::MalformedForm)?;
        insert_path(params, head, &path, value)?;
    }
    Ok(())
}

/// `a[b][c]` → (`a`, [`b`, `c`]); `a[]` → (`a`, [``]).
fn split_key(key: &str) -> Option<(&str, Vec<&str>)> {
    let Some(open) = key.find('[') else {
        return (!key.is_empty()).then(|| (key, vec![]));
    };
    let head = &key[..open];
    let mut rest = &key[open..];
    let mut path = vec![];
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let close = inner.find(']')?;
        path.push(&inner[..close]);
        rest = &inner[close + 1..];
        if path.len() > MAX_NESTING {
            return None;
        }
    }
    (!head.is_empty()).then_some((head, path))
}

fn insert_path(map: &mut Map<String, Value>, head: &str, path: &[&str], value: String) -> Result<(), ParamsError> {
    match path.split_first() {
        None => {
            map.insert(head.to_owned(), Value::String(value));
            Ok(())
        }
        Some((&"", _)) => {
            let entry = map.entry(head.to_owned()).or_insert_with(|| Value::Array(vec![]));
            match entry {
                Value::Array(items) => {
                    items.push(Value::String(value));
                    Ok(())
                }
                _ => Err(ParamsError::MalformedForm),
            }
        }
        Some((next, rest)) => {
            let entry = map.entry(head.to_owned()).or_insert_with(|| Value::Object(Map::new()));
            match entry {
                Value::Object(inner) => insert_path(inner, next, rest, value),
                _ => Err(ParamsError::MalformedForm),
            }
        }
    }
}

impl Params {
    /// The parameters as the typed request `T`.
    pub(crate) fn decode<T: DeserializeOwned>(&self) -> Result<T, ParamsError> {
        T::deserialize(&self.0).map_err(|_| ParamsError::WrongTypes)
    }

    /// A string field; numbers and booleans are accepted as their text.
    /// `None` when absent or null. The surfaces read fields through typed
    /// requests and [`text`]; the tests check that both read alike.
    #[cfg(test)]
    pub fn text(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            Value::Bool(flag) => Some(flag.to_string()),
            _ => None,
        }
    }

    /// A nested object field; `None` when absent or not an object. The
    /// surfaces read nested objects through typed requests now; the tests
    /// of the extractor still read them this way.
    #[cfg(test)]
    pub fn object(&self, key: &str) -> Option<Params> {
        match self.0.get(key)? {
            Value::Object(object) => Some(Params(object.clone())),
            _ => None,
        }
    }

    /// An integer field, given as a JSON number or numeric text.
    /// `Ok(None)` when absent, null or empty; `Err(())` when not an integer.
    #[cfg(test)]
    pub fn integer(&self, key: &str) -> Result<Option<i64>, ()> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(number)) => number.as_i64().map(Some).ok_or(()),
            Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
            Some(Value::String(text)) => text.trim().parse().map(Some).map_err(|_| ()),
            Some(_) => Err(()),
        }
    }
}

#[cfg(test)]
impl Params {
    /// Parameters as a JSON body would give them.
    pub(crate) fn from_json(value: Value) -> Self {
        match value {
            Value::Object(object) => Self(object),
            other => panic!("parameters are an object, not {other}"),
        }
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(content_type: Option<&str>, body: &str, query: &str) -> Result<Params, ParamsError> {
        let mut params = Map::new();
        merge_form(&mut params, query.as_bytes())?;
        merge_body(&mut params, content_type, &Bytes::from(body.to_owned()))?;
        Ok(Params(params))
    }

    #[test]
    fn json_form_and_query_read_alike() {
        let json = parse(Some("application/json"), r#"{"mobile": "+85261677528"}"#, "").unwrap();
        let form = parse(Some("application/x-www-form-urlencoded"), "mobile=%2B85261677528", "").unwrap();
        let query = parse(None, "", "mobile=%2B85261677528").unwrap();
        for params in [json, form, query] {
            assert_eq!(params.text("mobile").as_deref(), Some("+85261677528"));
        }
    }

    #[test]
    fn rails_nested_keys_become_objects() {
        let params = parse(
            None,
            "user_auth[mobile]=%2B85251224538&user_auth[address_attributes][district_id]=1&tags[]=a&tags[]=b",
            "",
        )
        .unwrap();
        let user_auth = params.object("user_auth").unwrap();
        assert_eq!(user_auth.text("mobile").as_deref(), Some("+85251224538"));
        let address = user_auth.object("address_attributes").unwrap();
        assert_eq!(address.integer("district_id"), Ok(Some(1)));
        assert_eq!(params.0["tags"], serde_json::json!(["a", "b"]));
    }

    #[test]
    fn typed_requests_read_fields_as_text_does() {
        #[derive(serde::Deserialize)]
        struct Request {
            #[serde(default, deserialize_with = "super::text")]
            a: Option<String>,
            #[serde(default, deserialize_with = "super::text")]
            b: Option<String>,
            #[serde(default, deserialize_with = "super::text")]
            missing: Option<String>,
        }
        let params = parse(Some("application/json"), r#"{"a": 711146, "b": ["x"], "c": true}"#, "").unwrap();
        let request: Request = params.decode().unwrap();
        assert_eq!(request.a, params.text("a"));
        assert_eq!(
            (request.a.as_deref(), request.b, request.missing),
            (Some("711146"), None, None)
        );
    }

    #[test]
    fn the_body_wins_over_the_query() {
        let params = parse(Some("application/json"), r#"{"a": "body"}"#, "a=query").unwrap();
        assert_eq!(params.text("a").as_deref(), Some("body"));
    }

    #[test]
    fn bad_bodies_are_reported() {
        assert_eq!(
            parse(Some("application/json"), "{", "").unwrap_err(),
            ParamsError::MalformedJson
        );
        assert_eq!(
            parse(Some("application/json"), "[1]", "").unwrap_err(),
            ParamsError::NotAnObject
        );
        assert_eq!(parse(None, "a[b=1", "").unwrap_err(), ParamsError::MalformedForm);
        assert_eq!(parse(None, "a=1&a[b]=2", "").unwrap_err(), ParamsError::MalformedForm);
    }

    #[test]
    fn pairs_without_a_name_are_dropped() {
        let params = parse(None, "=&mobile=%2B85261677528&=x", "=").unwrap();
        assert_eq!(params.text("mobile").as_deref(), Some("+85261677528"));
        assert_eq!(params.decode::<serde_json::Map<String, Value>>().unwrap().len(), 1);
        assert_eq!(
            parse(None, "mobile=1&=a%00b", "").unwrap_err(),
            ParamsError::NulCharacter
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_recursed() {
        let deep = format!("a{}=1", "[x]".repeat(20_000));
        assert_eq!(parse(None, &deep, "").unwrap_err(), ParamsError::MalformedForm);
        let fine = format!("a{}=1", "[x]".repeat(MAX_NESTING));
        assert!(parse(None, &fine, "").is_ok());
    }

    #[test]
    fn nul_characters_are_found_anywhere() {
        assert!(contains_nul(&serde_json::json!({"a": ["x", {"b": "c\u{0}"}]})));
        assert!(!contains_nul(&serde_json::json!({"a": ["x", {"b": "c"}], "n": 1})));
    }

    #[test]
    fn typed_requests_read_text_as_params_text_does() {
        #[derive(serde::Deserialize)]
        struct Request {
            #[serde(default, deserialize_with = "text")]
            a: Option<String>,
            #[serde(default, deserialize_with = "text")]
            b: Option<String>,
            #[serde(default, deserialize_with = "text")]
            c: Option<String>,
            #[serde(default, deserialize_with = "text")]
            d: Option<String>,
            #[serde(default, deserialize_with = "text")]
            e: Option<String>,
            #[serde(default, deserialize_with = "text")]
            missing: Option<String>,
        }
        let params = parse(
            Some("application/json"),
            r#"{"a": "x", "b": 5, "c": true, "d": null, "e": [1], "other": {}}"#,
            "",
        )
        .unwrap();
        let request: Request = params.decode().unwrap();
        for (key, got) in [
            ("a", request.a),
            ("b", request.b),
            ("c", request.c),
            ("d", request.d),
            ("e", request.e),
            ("missing", request.missing),
        ] {
            assert_eq!(got, params.text(key), "{key}");
        }
    }

    #[test]
    fn integers_accept_numbers_and_numeric_text_only() {
        let params = parse(
            Some("application/json"),
            r#"{"a": 5, "b": " 7 ", "c": "x", "d": "", "e": 1.5}"#,
            "",
        )
        .unwrap();
        assert_eq!(params.integer("a"), Ok(Some(5)));
        assert_eq!(params.integer("b"), Ok(Some(7)));
        assert_eq!(params.integer("c"), Err(()));
        assert_eq!(params.integer("d"), Ok(None));
        assert_eq!(params.integer("e"), Err(()));
        assert_eq!(params.integer("missing"), Ok(None));
    }
}
