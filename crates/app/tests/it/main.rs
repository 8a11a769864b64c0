//! The app crate's integration tests, one binary: one module per subject,
//! sharing `common` (the real service on a throwaway database, the real
//! binary in a scratch directory, and running a test alone).
//!
//! One binary links once instead of twenty-one times. The tests run in
//! parallel threads of one process; the few that need the process or the
//! machine to themselves (a process-wide log capture, timing measurements)
//! rerun themselves alone in a child process (`common::alone`).

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

mod common;

mod abuse;
mod admin;
mod binary;
mod cli;
mod config_routes;
mod console_browser;
mod console_page;
mod fleet_e2e;
mod fuzz_routes;
mod jwt_keys;
mod many_instances;
mod metrics;
mod no_secrets_in_logs;
mod openapi_http;
mod phone_login_http;
mod phone_verify_http;
mod pin_auth_http;
mod postgres_restart;
mod providers_e2e;
mod pumping;
mod receipts_e2e;
mod settings;
mod sign_in_load;
mod timing;
mod tokens_http;
mod twilio_e2e;
mod whatsapp_e2e;
