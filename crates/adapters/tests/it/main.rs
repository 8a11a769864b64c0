//! The adapters crate's integration tests, one binary with one module per
//! adapter (linking one binary instead of six is most of their build time).

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

mod admin_store;
mod conversion;
mod http_provider;
mod log_capture;
mod outbox;
mod outbox_receipts;
mod outbox_routes;
mod plivo;
mod rate_limit;
mod smtp;
mod sql_store;
mod telnyx;
mod twilio;
mod vonage;
