//! Reading phonegate's OpenAPI spec in tests: find the operation of a
//! request, and validate bodies against the schemas it documents (OpenAPI
//! 3.1 schemas are JSON Schema 2020-12).
//!
//! Shared by `crates/api/tests/it/openapi_spec.rs` and
//! `crates/app/tests/it/openapi_http.rs` (included there with `#[path]`).

#![allow(dead_code, reason = "each test binary uses a different part of this")]

use serde_json::{Map, Value};

/// The spec, with its component schemas ready to be `$defs` of each schema
/// validated.
#[derive(Debug)]
pub struct Spec {
    pub doc: Value,
    defs: Value,
}

/// The HTTP methods OpenAPI path items can hold, lower case as in the spec.
pub const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

impl Spec {
    pub fn new(doc: Value) -> Self {
        let mut defs = doc
            .pointer("/components/schemas")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        rewrite_refs(&mut defs);
        Self { doc, defs }
    }

    /// Every (METHOD, path template) the spec documents.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for (path, item) in self.paths() {
            for method in METHODS {
                if item.get(method).is_some() {
                    found.push((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        found
    }

    fn paths(&self) -> &Map<String, Value> {
        self.doc["paths"].as_object().expect("the spec has paths")
    }

    /// The operation serving `method` on the concrete `path` (no query): a
    /// path written out wins over a template such as `/a/{id}`.
    pub fn operation(&self, method: &str, path: &str) -> Option<(&str, &Value)> {
        let method = method.to_ascii_lowercase();
        let paths = self.paths();
        if let Some((template, item)) = paths.get_key_value(path) {
            return item.get(&method).map(|operation| (template.as_str(), operation));
        }
        paths
            .iter()
            .filter(|(template, _)| matches_template(template, path))
            .find_map(|(template, item)| item.get(&method).map(|operation| (template.as_str(), operation)))
    }

    /// The schema of the response body with `status` and `content_type`
    /// (parameters such as `; charset=…` ignored), or why there is none.
    pub fn response_schema(&self, operation: &Value, status: u16, content_type: &str) -> Result<Value, String> {
        let response = operation["responses"]
            .get(status.to_string())
            .ok_or_else(|| format!("status {status} is not documented"))?;
        let content = response
            .get("content")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("status {status} is documented without a body"))?;
        media_schema(content, content_type).ok_or_else(|| {
            format!(
                "status {status} documents {:?}, not {content_type}",
                content.keys().collect::<Vec<_>>()
            )
        })
    }

    /// Whether `status` is documented with no body.
    pub fn documents_empty(&self, operation: &Value, status: u16) -> bool {
        operation["responses"]
            .get(status.to_string())
            .is_some_and(|response| response.get("content").is_none())
    }

    /// The schema of the request body of `content_type`.
    pub fn request_schema(&self, operation: &Value, content_type: &str) -> Result<Value, String> {
        let content = operation
            .pointer("/requestBody/content")
            .and_then(Value::as_object)
            .ok_or("the operation documents no request body")?;
        media_schema(content, content_type).ok_or_else(|| format!("no request body of type {content_type}"))
    }

    /// The operation's parameters in `location` (`query`, `path`, …).
    pub fn parameters<'a>(&self, operation: &'a Value, location: &str) -> Vec<&'a Value> {
        operation
            .get("parameters")
            .and_then(Value::as_array)
            .map(|parameters| parameters.iter().filter(|p| p["in"] == location).collect())
            .unwrap_or_default()
    }

    /// Validates `instance` against `schema` (which may `$ref` component
    /// schemas), listing every error.
    pub fn validate(&self, schema: &Value, instance: &Value) -> Result<(), String> {
        let mut root = schema.clone();
        rewrite_refs(&mut root);
        let root = match root {
            Value::Object(mut object) => {
                object.insert("$defs".to_owned(), self.defs.clone());
                object.insert(
                    "$schema".to_owned(),
                    Value::String("https://json-schema.org/draft/2020-12/schema".to_owned()),
                );
                Value::Object(object)
            }
            other => other,
        };
        let validator =
            jsonschema::draft202012::new(&root).map_err(|error| format!("the schema does not compile: {error}"))?;
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|error| format!("{} (at {})", error, error.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

fn media_schema(content: &Map<String, Value>, content_type: &str) -> Option<Value> {
    let wanted = content_type.split(';').next().unwrap_or_default().trim();
    content
        .iter()
        .find(|(media, _)| media.split(';').next().unwrap_or_default().trim() == wanted)
        .map(|(_, media)| media.get("schema").cloned().unwrap_or(Value::Bool(true)))
}

/// `/a/{id}` matches `/a/1` (one non-empty segment per parameter).
pub fn matches_template(template: &str, path: &str) -> bool {
    let (template, path): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    template.len() == path.len()
        && template.iter().zip(&path).all(|(expected, actual)| {
            (expected.starts_with('{') && expected.ends_with('}') && !actual.is_empty()) || expected == actual
        })
}

/// Points `#/components/schemas/X` at `#/$defs/X`, where [`Spec::validate`]
/// puts the component schemas.
fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for (key, inner) in object.iter_mut() {
                if key == "$ref"
                    && let Value::String(target) = inner
                    && let Some(name) = target.strip_prefix("#/components/schemas/")
                {
                    *target = format!("#/$defs/{name}");
                } else {
                    rewrite_refs(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}
