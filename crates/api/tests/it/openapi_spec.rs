//! The OpenAPI spec against the routes and the seed documents.
//!
//! - The spec names exactly the routes the routers mount (the route tables
//!   of `phonegate_api::mounted_routes`, which are what mounts them), so a
//!   route added without a spec entry, or a spec entry without a route,
//!   fails here.
//! - Every example of the four seed documents (committed copies in
//!   `tests/fixtures/seeds/`, as the clients' contract was handed over)
//!   validates against the spec: each request body or query string against
//!   the operation's parameters, each response against the schema of its
//!   status. The examples are read out of the documents themselves, so a
//!   copy that drifts from the original would show in review as a fixture
//!   change.

use crate::common as support;

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};
use support::{METHODS, Spec};

fn spec() -> Spec {
    Spec::new(serde_json::to_value(phonegate_api::openapi::spec()).expect("the spec serializes"))
}

#[test]
fn the_spec_names_exactly_the_mounted_routes() {
    let mounted: Vec<(String, String)> = phonegate_api::mounted_routes()
        .into_iter()
        .map(|route| (route.method.as_str().to_owned(), route.path))
        .collect();
    let unique: BTreeSet<_> = mounted.iter().cloned().collect();
    assert_eq!(unique.len(), mounted.len(), "a route is mounted twice: {mounted:?}");
    // The tables hold every surface: a sanity floor against an empty list
    // making the comparison below vacuous.
    assert!(mounted.len() >= 25, "only {} routes in the tables", mounted.len());

    let documented: BTreeSet<(String, String)> = spec().operations().into_iter().collect();
    let undocumented: Vec<_> = unique.difference(&documented).collect();
    let unmounted: Vec<_> = documented.difference(&unique).collect();
    assert!(
        undocumented.is_empty(),
        "mounted but not in the OpenAPI spec (add #[utoipa::path] and list it in the surface's Doc): {undocumented:?}"
    );
    assert!(
        unmounted.is_empty(),
        "in the OpenAPI spec but not mounted: {unmounted:?}"
    );
}

#[test]
fn the_spec_is_openapi_3_1_with_unique_ids_and_refs_that_resolve() {
    let spec = spec();
    let doc = &spec.doc;
    assert_eq!(doc["openapi"], "3.1.0");
    let schemas = doc["components"]["schemas"].as_object().expect("component schemas");
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    let mut ids = BTreeSet::new();
    for (method, path) in spec.operations() {
        let operation = &doc["paths"][&path][method.to_ascii_lowercase()];
        let id = operation["operationId"].as_str().expect("an operationId");
        assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
        assert!(
            operation["tags"].as_array().is_some_and(|tags| tags.len() == 1),
            "{method} {path} has one tag"
        );
        let responses = operation["responses"].as_object().expect("responses");
        assert!(!responses.is_empty(), "{method} {path} documents no response");
        for parameter in spec.parameters(operation, "path") {
            let name = parameter["name"].as_str().unwrap_or_default();
            assert!(
                path.contains(&format!("{{{name}}}")),
                "{method} {path} has no {{{name}}}"
            );
        }
    }

    let mut refs = Vec::new();
    collect_refs(doc, &mut refs);
    assert!(!refs.is_empty());
    for target in refs {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {target}"));
        assert!(schemas.contains_key(name), "$ref {target} does not resolve");
    }

    // Every tokens path has its `.json` twin, as the router mounts them.
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let is_tokens = METHODS
            .iter()
            .filter_map(|method| item.get(*method))
            .any(|operation| operation["tags"][0] == "tokens");
        if is_tokens && !path.contains('{') && !path.ends_with(".json") {
            assert!(
                doc["paths"].get(format!("{path}.json")).is_some(),
                "{path}.json is missing"
            );
        }
    }
}

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, inner) in object {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => refs.push(target.clone()),
                    _ => collect_refs(inner, refs),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
        _ => {}
    }
}

#[test]
fn the_spec_s_own_examples_validate() {
    let spec = spec();
    let mut checked = 0;
    for (name, schema) in spec.doc["components"]["schemas"].as_object().expect("schemas") {
        if let Some(example) = schema.get("example") {
            spec.validate(schema, example)
                .unwrap_or_else(|error| panic!("the example of schema {name}: {error}"));
            checked += 1;
        }
    }
    for (method, path) in spec.operations() {
        let operation = &spec.doc["paths"][&path][method.to_ascii_lowercase()];
        for (status, response) in operation["responses"].as_object().expect("responses") {
            for (media, content) in response.get("content").and_then(Value::as_object).into_iter().flatten() {
                if let Some(example) = content.get("example") {
                    let schema = content.get("schema").cloned().unwrap_or(Value::Bool(true));
                    spec.validate(&schema, example)
                        .unwrap_or_else(|error| panic!("{method} {path} {status} {media} example: {error}"));
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 15, "only {checked} examples in the spec");
}

/// One request/response example from a seed document.
#[derive(Debug)]
struct Example {
    seed: &'static str,
    method: String,
    /// The path, without the query.
    path: String,
    request: Request,
    status: u16,
    response: Option<Value>,
}

#[derive(Debug)]
enum Request {
    None,
    Json(Value),
    Form(Vec<(String, String)>),
    Query(Vec<(String, String)>),
}

const SEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seeds");

fn seed(name: &str) -> String {
    std::fs::read_to_string(format!("{SEEDS}/{name}"))
        .unwrap_or_else(|error| panic!("reading the seed copy {name}: {error}"))
}

/// Seed 000 (reStructuredText): `::` blocks name the request line, each
/// `.. code:: json` block after **Example**/**Request** is a request and
/// after **Response** (and its `Status:` line) a response.
fn phone_verify_examples() -> Vec<Example> {
    let text = seed("000_0f1169802498dcfa.txt");
    let lines: Vec<&str> = text.lines().collect();
    let (mut method, mut path, mut status) = (String::new(), String::new(), 0);
    let (mut in_response, mut request) = (false, None);
    let mut examples = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index].trim();
        if let Some((verb, target)) = line.split_once(' ')
            && ["GET", "POST", "PUT", "DELETE"].contains(&verb)
            && target.starts_with('/')
        {
            (method, path) = (verb.to_owned(), target.to_owned());
        } else if let Some(code) = line.strip_prefix("Status: ") {
            status = code[..3].parse().expect("a status code");
        } else if line == "**Response**" {
            in_response = true;
        } else if line == "**Request**" || line == "**Example**" {
            in_response = false;
        } else if line == ".. code:: json" {
            let mut block = String::new();
            index += 1;
            while index < lines.len() && (lines[index].trim().is_empty() || lines[index].starts_with("    ")) {
                block.push_str(lines[index]);
                block.push('\n');
                index += 1;
            }
            let value: Value = serde_json::from_str(&block).expect("a JSON block");
            if in_response {
                examples.push(Example {
                    seed: "000",
                    method: method.clone(),
                    path: path.clone(),
                    request: request.take().map_or(Request::None, Request::Json),
                    status,
                    response: Some(value),
                });
            } else {
                request = Some(value);
            }
            continue;
        }
        index += 1;
    }
    examples
}

/// Seed 001: one line per example, `METHOD /path [request JSON] STATUS
/// response JSON`.
fn pin_auth_examples() -> Vec<Example> {
    let text = seed("001_8e1c7570600edf92.txt");
    let mut examples = Vec::new();
    for line in text.lines() {
        for verb in ["GET", "POST", "PUT", "DELETE"] {
            let marker = format!("{verb} /api/");
            let Some(start) = line.find(&marker) else { continue };
            let rest = &line[start + verb.len() + 1..];
            let (path, mut rest) = rest.split_once(' ').expect("a path and more");
            rest = rest.trim_start();
            let mut request = Request::None;
            if rest.starts_with('{') {
                let (value, used) = json_prefix(rest);
                request = Request::Json(value);
                rest = rest[used..].trim_start();
            }
            let status = rest[..3].parse().expect("a status after the request");
            rest = rest[3..].trim_start();
            let response = rest.starts_with('{').then(|| json_prefix(rest).0);
            examples.push(Example {
                seed: "001",
                method: verb.to_owned(),
                path: path.to_owned(),
                request,
                status,
                response,
            });
        }
    }
    examples
}

/// The JSON value at the start of `text`, and how many bytes it took.
fn json_prefix(text: &str) -> (Value, usize) {
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let value = values.next().expect("a JSON value").expect("valid JSON");
    (value, values.byte_offset())
}

/// Seed 002 (prose): each `###` section has a `method:`, a `url:`, a
/// `{ message: "…" }` response and a `curl` example of the request. The
/// sign-in response is given as types only; [`SIGN_IN_RESPONSE`] is an
/// instance of them.
fn tokens_examples() -> Vec<Example> {
    let text = seed("002_7bc564ce6ff03296.txt");
    let mut examples = Vec::new();
    for section in text.split("\n### ").skip(1) {
        let method = section
            .lines()
            .find_map(|line| line.trim().strip_prefix("method: "))
            .expect("a method line")
            .to_owned();
        let curl = section
            .lines()
            .find_map(|line| line.trim().strip_prefix("$ curl "))
            .expect("a curl example");
        let (form, url) = parse_curl(curl);
        let path = url
            .strip_prefix("https://beyondvip.com")
            .expect("the seed's host")
            .to_owned();
        let response = section
            .lines()
            .find_map(|line| {
                let inner = line.trim().strip_prefix("{ message: ")?.strip_suffix(" }")?;
                Some(json!({"message": serde_json::from_str::<String>(inner).expect("a quoted message")}))
            })
            .unwrap_or_else(|| {
                assert!(section.contains("user_info: {"), "a section without a response");
                SIGN_IN_RESPONSE.clone()
            });
        examples.push(Example {
            seed: "002",
            method,
            path,
            request: Request::Form(form),
            status: 200,
            response: Some(response),
        });
    }
    examples
}

/// An instance of the seed's sign-in response types (`token: string`,
/// `user_info: {id: integer, first_name: string, last_name: string}`).
static SIGN_IN_RESPONSE: std::sync::LazyLock<Value> = std::sync::LazyLock::new(
    || json!({"token": "4RhR6aDOzHyyqHC8BAbYfA", "user_info": {"id": 1, "first_name": "Admin", "last_name": "User"}}),
);

/// `-X METHOD -d k=v -d k="v" URL` → (fields, URL).
fn parse_curl(command: &str) -> (Vec<(String, String)>, String) {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in command.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            _ => word.push(c),
        }
    }
    words.push(word);
    let mut form = Vec::new();
    let mut words = words.into_iter();
    let mut url = String::new();
    while let Some(word) = words.next() {
        match word.as_str() {
            "-X" => {
                words.next();
            }
            "-d" => {
                let field = words.next().expect("a field after -d");
                let (name, value) = field.split_once('=').expect("name=value");
                form.push((name.to_owned(), value.to_owned()));
            }
            _ => url = word,
        }
    }
    (form, url)
}

/// Seed 003 (Slate markdown): each ```http block is a request, and the
/// ```json block after it is its 200 answer.
fn phone_login_examples() -> Vec<Example> {
    let text = seed("003_a30689f2346b1367.txt");
    let mut examples = Vec::new();
    let mut pending = None;
    for block in text.split("```").skip(1).step_by(2) {
        let (language, body) = block.split_once('\n').expect("a fenced block");
        match language.trim() {
            "http" => {
                let request_line = body.lines().next().expect("a request line");
                let mut parts = request_line.split(' ');
                let (method, target) = (parts.next().expect("a method"), parts.next().expect("a target"));
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                let query = form_pairs(query);
                pending = Some((method.to_owned(), path.to_owned(), query));
            }
            "json" => {
                let (method, path, query) = pending.take().expect("an http block before each json block");
                examples.push(Example {
                    seed: "003",
                    method,
                    path,
                    request: if query.is_empty() {
                        Request::None
                    } else {
                        Request::Query(query)
                    },
                    status: 200,
                    response: Some(serde_json::from_str(body).expect("a JSON answer")),
                });
            }
            _ => {}
        }
    }
    examples
}

fn form_pairs(query: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(query).expect("a query string")
}

fn form_object(pairs: &[(String, String)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), Value::String(value.clone())))
            .collect(),
    )
}

#[test]
fn every_seed_example_validates_against_the_spec() {
    let examples: Vec<Example> = [
        phone_verify_examples(),
        pin_auth_examples(),
        tokens_examples(),
        phone_login_examples(),
    ]
    .into_iter()
    .flatten()
    .collect();
    // The parsers found every example the documents hold.
    let mut per_seed: HashMap<&str, usize> = HashMap::new();
    for example in &examples {
        *per_seed.entry(example.seed).or_default() += 1;
    }
    assert_eq!(
        per_seed,
        HashMap::from([("000", 2), ("001", 8), ("002", 5), ("003", 3)]),
        "{examples:#?}"
    );

    let spec = spec();
    let mut failures = Vec::new();
    for example in &examples {
        if let Err(error) = check(&spec, example) {
            failures.push(format!(
                "seed {} {} {} → {}: {error}",
                example.seed, example.method, example.path, example.status
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "seed examples that the spec refuses:\n{}",
        failures.join("\n")
    );
}

fn check(spec: &Spec, example: &Example) -> Result<(), String> {
    let (_, operation) = spec
        .operation(&example.method, &example.path)
        .ok_or("no operation in the spec")?;
    match &example.request {
        Request::None => {}
        Request::Json(body) => {
            let schema = spec.request_schema(operation, "application/json")?;
            spec.validate(&schema, body)
                .map_err(|error| format!("request: {error}"))?;
        }
        Request::Form(pairs) => {
            let schema = spec.request_schema(operation, "application/x-www-form-urlencoded")?;
            spec.validate(&schema, &form_object(pairs))
                .map_err(|error| format!("form request: {error}"))?;
        }
        Request::Query(pairs) => {
            let parameters = spec.parameters(operation, "query");
            for (name, value) in pairs {
                let parameter = parameters
                    .iter()
                    .find(|parameter| parameter["name"] == name.as_str())
                    .ok_or_else(|| format!("query parameter {name} is not documented"))?;
                let schema = parameter.get("schema").cloned().unwrap_or(Value::Bool(true));
                spec.validate(&schema, &Value::String(value.clone()))
                    .map_err(|error| format!("query parameter {name}: {error}"))?;
            }
            for parameter in parameters.iter().filter(|parameter| parameter["required"] == true) {
                if !pairs.iter().any(|(name, _)| parameter["name"] == name.as_str()) {
                    return Err(format!("required query parameter {} is missing", parameter["name"]));
                }
            }
        }
    }
    match &example.response {
        Some(body) => {
            let schema = spec.response_schema(operation, example.status, "application/json")?;
            spec.validate(&schema, body)
                .map_err(|error| format!("response: {error}"))
        }
        None if spec.documents_empty(operation, example.status) => Ok(()),
        None => Err("an empty response where the spec documents a body".to_owned()),
    }
}

#[test]
fn the_validator_refuses_what_the_spec_does_not_allow() {
    // Guards the test above against a validator that accepts anything.
    let spec = spec();
    let (_, operation) = spec.operation("POST", "/api/v1/auth/send_pin").expect("send_pin");
    let schema = spec
        .response_schema(operation, 200, "application/json")
        .expect("a 200 body");
    assert!(spec.validate(&schema, &json!({"otp_auth_key": "k"})).is_ok());
    assert!(spec.validate(&schema, &json!({"otp_auth_key": 5})).is_err());
    assert!(spec.validate(&schema, &json!({})).is_err());
    let (_, operation) = spec.operation("POST", "/api/phone/verify").expect("verify");
    let schema = spec
        .response_schema(operation, 400, "application/json")
        .expect("a 400 body");
    assert!(
        spec.validate(&schema, &json!({"non_field_errors": ["Security code is not valid"]}))
            .is_ok()
    );
    assert!(
        spec.validate(&schema, &json!({"detail": "Invalid host header."}))
            .is_ok()
    );
    assert!(
        spec.validate(&schema, &json!({"non_field_errors": "not a list"}))
            .is_err()
    );
    assert!(spec.operation("DELETE", "/api/v1/tokens/1.json").is_some());
    assert!(spec.operation("GET", "/api/v1/tokens/1").is_none());
}
