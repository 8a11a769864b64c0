//! Property tests of request decoding through the real [`Params`] extractor.
//!
//! Every request of every surface is read by [`Params`] first, so arbitrary
//! bytes in the body or query string must give parameters or a
//! [`ParamsError`] (a 4xx), never a panic or a stack overflow, and
//! well-formed parameters must decode to exactly what was sent, however
//! they were sent.
//!
//! Case counts are small so CI stays fast; `PROPTEST_CASES=10000 cargo test
//! -p phonegate-api params::props` runs a longer search. A failure prints its
//! minimal input; it becomes a plain regression test rather than a
//! persisted seed file.

use std::collections::BTreeMap;

use axum::{
    body::Body,
    extract::FromRequest as _,
    http::{Request, Uri, header::CONTENT_TYPE},
    response::IntoResponse as _,
};
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError},
};
use serde_json::{Map, Value, json};

use super::{BODY_LIMIT, MAX_NESTING, Params, ParamsError};

/// `default_cases`, or `PROPTEST_CASES` when set (for a longer local run),
/// with no failure files written into the source tree.
fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Runs the extractor on a request built from the parts.
fn extract(query: Option<&str>, content_type: Option<&[u8]>, body: Vec<u8>) -> Result<Params, ParamsError> {
    let uri = match query {
        Some(query) => format!("/p?{query}"),
        None => "/p".to_owned(),
    };
    let mut request = Request::post(uri.parse::<Uri>().expect("the test builds valid URIs"));
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    let request = request.body(Body::from(body)).expect("a valid request");
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(Params::from_request(request, &()))
}

/// Content types clients send, and some they should not.
fn content_type() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        Just(Some(b"application/json".to_vec())),
        Just(Some(b"application/json; charset=utf-8".to_vec())),
        Just(Some(b"Application/Vnd.Api+JSON".to_vec())),
        Just(Some(b"application/x-www-form-urlencoded".to_vec())),
        Just(Some(b"multipart/form-data; boundary=x".to_vec())),
        Just(Some(b"text/plain".to_vec())),
        // Header values may hold any visible byte, tab and space, and obs-text.
        prop::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..40).prop_map(Some),
    ]
}

/// Bodies: arbitrary bytes, JSON-ish and form-ish text, and JSON values.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        "[{}\\[\\]\":,0-9a-z\\\\ \t\n\u{0}-\u{1f}]{0,200}".prop_map(String::into_bytes),
        "([a-z\\[\\]%+=&;0-9]|%00|%[0-9A-F]{2}){0,120}".prop_map(String::into_bytes),
        json_value(3).prop_map(|value| value.to_string().into_bytes()),
    ]
}

/// Characters allowed in a URI's query, as `http` checks them, `%` escapes included.
fn query() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        "([a-zA-Z0-9\\[\\]=&;+._~!$'()*,:@/?-]|%[0-9a-fA-F]{2}|%){0,120}".prop_map(Some),
    ]
}

/// Arbitrary JSON without floats (serde_json reads floats with best-effort
/// precision only, so they need not round-trip exactly).
fn json_value(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..4).prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Any text without NUL: Unicode, controls, markup and very long runs.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[^\u{0}]{0,12}",
        "[\u{1}-\u{1f}\u{7f}\\[\\]&=%+\"\\\\ ]{0,8}",
        "[a-z]{300,400}",
    ]
}

/// A name Rails-style keys can carry: anything but NUL and brackets, not empty.
fn key() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z_]{1,8}", "[^\u{0}\\[\\]]{1,8}"]
}

/// Parameters a form can express: text, non-empty lists of text (`k[]=`),
/// and non-empty nested objects (`k[inner]=`), nested at most `depth` deep.
#[derive(Debug, Clone)]
enum Node {
    Text(String),
    List(Vec<String>),
    Map(BTreeMap<String, Node>),
}

fn node(depth: u32) -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        3 => text().prop_map(Node::Text),
        1 => prop::collection::vec(text(), 1..4).prop_map(Node::List),
    ];
    leaf.prop_recursive(depth, 24, 4, |inner| {
        prop::collection::btree_map(key(), inner, 1..4).prop_map(Node::Map)
    })
}

/// A form's top level: at most 4 levels deep, well within [`MAX_NESTING`].
fn form_map() -> impl Strategy<Value = BTreeMap<String, Node>> {
    prop::collection::btree_map(key(), node(3), 0..5)
}

fn node_json(node: &Node) -> Value {
    match node {
        Node::Text(text) => Value::String(text.clone()),
        Node::List(items) => json!(items),
        Node::Map(map) => Value::Object(map_json(map)),
    }
}

fn map_json(map: &BTreeMap<String, Node>) -> Map<String, Value> {
    map.iter().map(|(key, node)| (key.clone(), node_json(node))).collect()
}

/// The `(key, value)` pairs of a form, with Rails-style nested keys.
fn form_pairs(map: &BTreeMap<String, Node>) -> Vec<(String, String)> {
    fn walk(prefix: &str, node: &Node, pairs: &mut Vec<(String, String)>) {
        match node {
            Node::Text(text) => pairs.push((prefix.to_owned(), text.clone())),
            Node::List(items) => pairs.extend(items.iter().map(|item| (format!("{prefix}[]"), item.clone()))),
            Node::Map(map) => {
                for (key, node) in map {
                    walk(&format!("{prefix}[{key}]"), node, pairs);
                }
            }
        }
    }
    let mut pairs = vec![];
    for (key, node) in map {
        walk(key, node, &mut pairs);
    }
    pairs
}

fn urlencode(map: &BTreeMap<String, Node>) -> String {
    serde_urlencoded::to_string(form_pairs(map)).expect("pairs of strings encode")
}

/// The parameters, or a test failure (not a panic, which proptest would
/// print again for every step of shrinking).
fn ok(result: Result<Params, ParamsError>) -> Result<Params, TestCaseError> {
    result.map_err(|error| TestCaseError::fail(format!("refused: {error:?}")))
}

fn nul_free(value: &Value) -> bool {
    !super::contains_nul(value)
}

proptest! {
    #![proptest_config(config(512))]

    /// Arbitrary bytes under any content type and any query string give
    /// parameters without NUL, or an error that is a 4xx.
    #[test]
    fn arbitrary_requests_never_panic(query in query(), content_type in content_type(), body in body()) {
        prop_assume!(query.as_ref().is_none_or(|query| format!("/p?{query}").parse::<Uri>().is_ok()));
        match extract(query.as_deref(), content_type.as_deref(), body) {
            Ok(params) => prop_assert!(params.0.iter().all(|(key, value)| !key.contains('\0') && nul_free(value))),
            Err(error) => prop_assert!(error.into_response().status().is_client_error()),
        }
    }

    /// Rails-style keys nested deeper than the limit are refused (400), as
    /// form body or query, at any depth, without recursing per level.
    #[test]
    fn deep_form_keys_are_refused(depth in prop_oneof![0usize..=2 * MAX_NESTING, 0usize..20_000], array in any::<bool>(), in_query in any::<bool>()) {
        let key = format!("a{}{}", "[x]".repeat(depth), if array { "[]" } else { "" });
        let form = format!("{key}=1");
        let result = if in_query {
            extract(Some(&form), None, vec![])
        } else {
            extract(None, Some(b"application/x-www-form-urlencoded"), form.into_bytes())
        };
        let path_length = depth + usize::from(array);
        if path_length <= MAX_NESTING {
            prop_assert!(result.is_ok(), "depth {path_length}: {result:?}");
        } else {
            prop_assert_eq!(result.as_ref().err(), Some(&ParamsError::MalformedForm));
            prop_assert!(ParamsError::MalformedForm.into_response().status().is_client_error());
        }
    }

    /// Deeply nested JSON is read up to serde_json's recursion limit and
    /// refused beyond it, never overflowing the stack.
    #[test]
    // At most 10,000 levels: six bytes each stay under the body limit.
    fn deep_json_is_refused(depth in prop_oneof![0usize..200, 0usize..10_000], arrays in any::<bool>()) {
        let (open, close) = if arrays { ("[", "]") } else { ("{\"a\":", "}") };
        let body = format!("{{\"a\":{}1{}}}", open.repeat(depth), close.repeat(depth));
        let result = extract(None, Some(b"application/json"), body.into_bytes());
        if depth < 100 {
            prop_assert!(result.is_ok(), "depth {depth}: {result:?}");
        } else if depth > 200 {
            prop_assert_eq!(result.err(), Some(ParamsError::MalformedJson));
        }
    }

    /// A NUL anywhere (key or value, however deep, JSON, form or query) is refused.
    #[test]
    fn nul_is_refused_anywhere(map in form_map(), seed in any::<prop::sample::Index>(), in_key in any::<bool>(), how in 0..3) {
        let mut pairs = form_pairs(&map);
        if pairs.is_empty() {
            pairs.push(("z".to_owned(), "z".to_owned()));
        }
        let (key, value) = seed.get_mut(&mut pairs);
        if in_key {
            key.insert(0, '\0');
        } else {
            value.push('\0');
        }
        let result = match how {
            0 => extract(Some(&serde_urlencoded::to_string(&pairs).unwrap()), None, vec![]),
            1 => extract(None, None, serde_urlencoded::to_string(&pairs).unwrap().into_bytes()),
            _ => {
                // The same pairs as a JSON object, with the NUL in a nested value or key.
                let mut object = map_json(&map);
                let (key, value) = if in_key { ("k\u{0}", "v") } else { ("k", "v\u{0}") };
                let mut leaf = Map::new();
                leaf.insert(key.to_owned(), Value::String(value.to_owned()));
                object.insert("nested".to_owned(), json!({"inner": [leaf]}));
                extract(None, Some(b"application/json"), Value::Object(object).to_string().into_bytes())
            }
        };
        prop_assert_eq!(result.err(), Some(ParamsError::NulCharacter));
    }

    /// Form parameters, flat or nested, decode to what was encoded, whether
    /// they come as a form body (with or without its content type) or as the
    /// query string.
    #[test]
    fn forms_round_trip(map in form_map(), how in 0..4) {
        let encoded = urlencode(&map);
        let params = match how {
            0 => extract(Some(&encoded), None, vec![]),
            1 => extract(None, Some(b"application/x-www-form-urlencoded"), encoded.into_bytes()),
            2 => extract(None, None, encoded.into_bytes()),
            _ => extract(None, Some(b"text/plain"), encoded.into_bytes()),
        };
        let params = ok(params)?;
        prop_assert_eq!(&params.0, &map_json(&map));
        for (key, node) in &map {
            match node {
                Node::Text(text) => prop_assert_eq!(params.text(key), Some(text.clone())),
                Node::List(_) => prop_assert_eq!(params.text(key), None),
                Node::Map(inner) => prop_assert_eq!(params.object(key).map(|object| object.0), Some(map_json(inner))),
            }
        }
    }

    /// JSON objects decode to themselves, and the body wins over the query
    /// string key by key.
    #[test]
    fn json_round_trips_and_wins_over_the_query(
        object in prop::collection::btree_map(text(), json_value(3), 0..6),
        query in form_map(),
        content_type in prop::sample::select(vec![None, Some(&b"application/json"[..]), Some(b"text/plain")]),
    ) {
        let object: Map<String, Value> = object.into_iter().collect();
        let body = Value::Object(object.clone()).to_string().into_bytes();
        let params = ok(extract(Some(&urlencode(&query)), content_type, body))?;
        let mut expected = map_json(&query);
        expected.extend(object);
        prop_assert_eq!(params.0, expected);
    }

    /// A JSON body that is not an object is refused, not read as a form.
    #[test]
    fn json_that_is_not_an_object_is_refused(
        value in prop_oneof![json_value(0), prop::collection::vec(json_value(2), 0..4).prop_map(Value::Array)],
    ) {
        let result = extract(None, Some(b"application/json"), value.to_string().into_bytes());
        prop_assert_eq!(result.err(), Some(ParamsError::NotAnObject));
    }

    /// Integers read from numbers and numeric text alike.
    #[test]
    fn integers_read_from_numbers_and_text(number in any::<i64>(), padding in "[ ]{0,2}") {
        let body = json!({"n": number, "t": format!("{padding}{number}{padding}")}).to_string();
        let params = ok(extract(None, Some(b"application/json"), body.into_bytes()))?;
        prop_assert_eq!(params.integer("n"), Ok(Some(number)));
        prop_assert_eq!(params.integer("t"), Ok(Some(number)));
        let form = ok(extract(Some(&format!("n={number}")), None, vec![]))?;
        prop_assert_eq!(form.integer("n"), Ok(Some(number)));
    }
}

/// Bodies over the limit are refused as too large, just past it as well.
#[test]
fn bodies_over_the_limit_are_refused() {
    for size in [BODY_LIMIT + 1, BODY_LIMIT * 4] {
        let result = extract(None, None, vec![b'a'; size]);
        assert_eq!(result.unwrap_err(), ParamsError::TooLarge, "{size} bytes");
    }
    let fits = format!("a={}", "b".repeat(BODY_LIMIT - 2));
    assert_eq!(
        extract(None, None, fits.into_bytes())
            .unwrap()
            .text("a")
            .map(|a| a.len()),
        Some(BODY_LIMIT - 2)
    );
}
