//! What the spec says about NUL characters and the fields a request does
//! not declare.
//!
//! Clients may send fields an operation does not read (Rails forms add
//! `utf8` and `commit`, SDKs add their own), and the edge ignores them.
//! It refuses the whole request, though, when any key or value holds a NUL
//! character, at any depth: Postgres cannot store one, and no field needs
//! it. A field whose request type gives it a pattern states this there;
//! this module states it for the other text fields, and for everything
//! else as `propertyNames` and `additionalProperties` on every object
//! schema a request body reaches.

use std::collections::BTreeSet;

use utoipa::openapi::{
    OpenApi, RefOr, Schema,
    schema::{AdditionalProperties, AnyOfBuilder, ArrayBuilder, ObjectBuilder, Ref, SchemaType, Type},
};

use super::operations;

/// The name of the component that every undeclared field follows.
const UNDECLARED: &str = "UndeclaredField";
/// The pattern of text without a NUL character.
const NUL_FREE: &str = r"^[^\u0000]*$";

/// Adds the `UndeclaredField` component and, on every object schema a
/// request body reaches through `$ref` properties, refers undeclared
/// fields to it, holds property names to [`NUL_FREE`], and gives each
/// declared text field without a pattern of its own the NUL-free one.
/// Request types that nest their objects inline, or under `oneOf`, state
/// the rule themselves.
pub(super) fn state_undeclared_fields(spec: &mut OpenApi) {
    let mut pending: Vec<String> = spec
        .paths
        .paths
        .values()
        .flat_map(operations)
        .filter_map(|operation| operation.request_body.as_ref())
        .flat_map(|body| body.content.values())
        .filter_map(|content| content.schema.as_ref())
        .filter_map(component_name)
        .collect();
    let components = spec.components.get_or_insert_with(Default::default);
    let mut seen = BTreeSet::new();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(&name) else {
            continue;
        };
        pending.extend(object.properties.values().filter_map(component_name));
        for property in object.properties.values_mut() {
            if let RefOr::T(Schema::Object(field)) = property
                && is_text(&field.schema_type)
                && field.pattern.is_none()
            {
                field.pattern = Some(NUL_FREE.to_owned());
            }
        }
        object.property_names = Some(Box::new(nul_free_text()));
        object.additional_properties = Some(Box::new(AdditionalProperties::RefOr(RefOr::Ref(
            Ref::from_schema_name(UNDECLARED),
        ))));
    }
    components.schemas.insert(UNDECLARED.to_owned(), undeclared_field());
}

/// Whether a field of `schema_type` may be text.
fn is_text(schema_type: &SchemaType) -> bool {
    match schema_type {
        SchemaType::Type(kind) => *kind == Type::String,
        SchemaType::Array(kinds) => kinds.contains(&Type::String),
        SchemaType::AnyValue => false,
    }
}

/// The component a `$ref` names, if it names one.
fn component_name(schema: &RefOr<Schema>) -> Option<String> {
    match schema {
        RefOr::Ref(reference) => reference
            .ref_location
            .strip_prefix("#/components/schemas/")
            .map(str::to_owned),
        RefOr::T(_) => None,
    }
}

fn nul_free_text() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(NUL_FREE))
        .into()
}

/// Any JSON value without a NUL character in a string or a key, at any
/// depth.
fn undeclared_field() -> RefOr<Schema> {
    let itself = || Ref::from_schema_name(UNDECLARED);
    AnyOfBuilder::new()
        .description(Some(
            "A field the operation does not read: any value, without a NUL character in a \
             string or a key at any depth.",
        ))
        .item(nul_free_text())
        .item(ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Number, Type::Boolean, Type::Null])))
        .item(ArrayBuilder::new().items(itself()))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property_names(Some(nul_free_text()))
                .additional_properties(Some(AdditionalProperties::RefOr(RefOr::Ref(itself())))),
        )
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undeclared_fields_may_be_any_value_free_of_nul() {
        let text = serde_json::to_value(nul_free_text()).unwrap();
        assert_eq!(text["pattern"], NUL_FREE, "{text}");
        let field = serde_json::to_value(undeclared_field()).unwrap();
        assert_eq!(field["anyOf"].as_array().map(Vec::len), Some(4), "{field}");
        assert_eq!(
            field["anyOf"][3]["additionalProperties"]["$ref"], "#/components/schemas/UndeclaredField",
            "{field}"
        );
    }

    #[test]
    fn every_request_object_refers_its_undeclared_fields() {
        let spec = serde_json::to_value(super::super::spec()).unwrap();
        let schemas = &spec["components"]["schemas"];
        for name in [
            "PinAuthSignupRequest",
            "PinAuthSignupUser",
            "TokensSignInRequest",
            "PhoneVerifyVerifyRequest",
        ] {
            assert_eq!(
                schemas[name]["additionalProperties"]["$ref"], "#/components/schemas/UndeclaredField",
                "{name}: {}",
                schemas[name]
            );
            assert_eq!(schemas[name]["propertyNames"]["pattern"], NUL_FREE, "{name}");
        }
        // Free text without a pattern of its own gets the NUL-free one.
        assert_eq!(
            schemas["TokensSignInRequest"]["properties"]["password"]["pattern"],
            NUL_FREE
        );
        // Responses are not requests.
        assert!(schemas["TokensSignIn"].get("additionalProperties").is_none());
    }
}
