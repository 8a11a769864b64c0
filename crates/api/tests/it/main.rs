//! The api crate's integration tests, one binary: one module per subject,
//! sharing `common` (reading the OpenAPI spec in tests).

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

mod common;
mod openapi_spec;
