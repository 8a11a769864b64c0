//! The domain crate's integration tests, one binary with one module per
//! subject.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

mod phone_props;
