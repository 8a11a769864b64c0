//! The OpenAPI 3.1 description of every surface and the operational
//! endpoints, served at `/openapi.json` and browsable with Swagger UI at
//! `/docs`.
//!
//! Each surface module documents its own operations (`#[utoipa::path]` on
//! the handlers) and the shapes of its bodies, in its own error shape, and
//! exposes them as its `Doc`; [`spec`] merges them. The tokens surface's
//! paths also answer with a `.json` suffix, and the spec lists those twins
//! as paths of their own (operation ids ending in `_json`), so that the spec
//! names exactly the routes that are mounted. Swagger UI's own pages under
//! `/docs` are not API and are not in the spec.

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::header::CONTENT_TYPE,
    response::{IntoResponse, Response},
};
use utoipa::{
    Modify, OpenApi,
    openapi::{
        PathItem,
        path::Operation,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};
use utoipa_swagger_ui::{Config, SwaggerUi};

mod undeclared;

use crate::{
    console, ops, phone_login, phone_verify, pin_auth, receipts,
    routes::{MountedRoute, Routes},
    tokens,
};

/// Where the spec is served.
pub const SPEC_PATH: &str = "/openapi.json";
/// Where Swagger UI is served.
pub const DOCS_PATH: &str = "/docs";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "phonegate",
        description = "Phone-number authentication: the four APIs existing clients speak \
            (pin-auth, phone-verify, phone-login, tokens) and the operational endpoints.\n\n\
            Every surface reads its parameters from a JSON body, a form body (`curl -d`, Rails-style \
            nested keys such as `user_auth[mobile]`) or the query string alike, and answers errors in \
            its own shape. A method a path does not serve gets 405 in that shape."
    ),
    paths(serve_spec),
    modifiers(&BearerAuth),
    tags(
        (name = "pin-auth", description = "Sign in with a 4-digit pin texted to a mobile; JWT bearer auth; \
            push registration. Errors: `{\"errors\": \"…\"}`."),
        (name = "phone-verify", description = "Verify a phone number with a texted security code and a \
            session token. Errors in Django REST Framework's shapes: `{\"<field>\": [\"…\"]}`, \
            `{\"non_field_errors\": [\"…\"]}`, `{\"detail\": \"…\"}`."),
        (name = "phone-login", description = "Log in a device by a PIN texted or called to a phone, for an \
            access code. Every answer is the envelope `{\"res_info\": {\"code\", \"code_info\"}, \
            \"res_content\"?}`."),
        (name = "tokens", description = "Email and password sign-in with device tokens, sign-out, password \
            reset by email, phone verification of a signed-in user, and token introspection for servers. \
            Every path also answers with a `.json` suffix. Errors: `{\"error\": \"…\"}`."),
        (name = "ops", description = "Liveness, readiness, metrics, the JWKS, providers' delivery receipts and this \
            document."),
        (name = "console", description = "The developer console, served only with the console SMS provider."),
    )
)]
struct ApiDoc;

/// Declares the bearer JWT that pin-auth's authenticated operations name.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("The `jwt_token` from `POST /api/v1/auth/verify`."))
                    .build(),
            ),
        );
    }
}

/// The whole spec.
pub fn spec() -> utoipa::openapi::OpenApi {
    let mut spec = ApiDoc::openapi();
    for part in [
        pin_auth::Doc::openapi(),
        phone_verify::Doc::openapi(),
        phone_login::Doc::openapi(),
        tokens::Doc::openapi(),
        ops::Doc::openapi(),
        receipts::Doc::openapi(),
        console::Doc::openapi(),
    ] {
        spec.merge(part);
    }
    add_json_twins(&mut spec);
    undeclared::state_undeclared_fields(&mut spec);
    spec
}

/// Lists `<path>.json` after each tokens path without a path parameter (a
/// `{user_id}` takes the suffix into the parameter itself).
fn add_json_twins(spec: &mut utoipa::openapi::OpenApi) {
    let paths = std::mem::take(&mut spec.paths.paths);
    for (path, item) in paths {
        let twin = (is_tokens(&item) && !path.contains('{')).then(|| json_twin(&item));
        let twin_path = format!("{path}.json");
        spec.paths.paths.insert(path, item);
        if let Some(twin) = twin {
            spec.paths.paths.insert(twin_path, twin);
        }
    }
}

fn is_tokens(item: &PathItem) -> bool {
    operations(item).any(|operation| {
        operation
            .tags
            .as_ref()
            .is_some_and(|tags| tags.iter().any(|tag| tag == tokens::TAG))
    })
}

fn json_twin(item: &PathItem) -> PathItem {
    let mut twin = item.clone();
    for operation in operations_mut(&mut twin) {
        operation.operation_id = operation.operation_id.take().map(|id| format!("{id}_json"));
        operation.summary = operation.summary.take().map(|summary| format!("{summary} (`.json`)"));
    }
    twin
}

fn operations(item: &PathItem) -> impl Iterator<Item = &Operation> {
    [
        &item.get,
        &item.put,
        &item.post,
        &item.delete,
        &item.options,
        &item.head,
        &item.patch,
        &item.trace,
    ]
    .into_iter()
    .flatten()
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

fn routes() -> Routes<Bytes> {
    Routes::new().get(SPEC_PATH, serve_spec)
}

/// The routes [`router`] mounts through the route table (Swagger UI's pages
/// under [`DOCS_PATH`] are not in it).
pub fn mounted() -> Vec<MountedRoute> {
    routes().table().to_vec()
}

/// `/openapi.json` and Swagger UI at `/docs` (its assets are compiled in:
/// the `vendored` feature, nothing is downloaded).
pub fn router() -> Router {
    let json = serde_json::to_vec(&spec()).expect("the OpenAPI spec is plain data and always serializes");
    routes()
        .into_router()
        .with_state(Bytes::from(json))
        .merge(SwaggerUi::new(DOCS_PATH).config(Config::from(SPEC_PATH)))
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "ops_openapi",
    tag = "ops",
    summary = "This OpenAPI document",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = serde_json::Value,
        content_type = "application/json"))
)]
async fn serve_spec(State(json): State<Bytes>) -> Response {
    ([(CONTENT_TYPE, "application/json")], json).into_response()
}

/// Whether `instance` validates against the component schema `name` of the
/// served spec: the request types' tests check that the spec and the edge
/// accept the same requests.
#[cfg(test)]
pub(crate) fn spec_accepts(name: &str, instance: &serde_json::Value) -> bool {
    let spec = serde_json::to_value(spec()).expect("the spec serializes");
    let root = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{name}"),
        "components": spec["components"],
    });
    jsonschema::draft202012::new(&root)
        .expect("the schema compiles")
        .is_valid(instance)
}
