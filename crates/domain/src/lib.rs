//! The pure core of phonegate.
//!
//! This crate holds the entities (users, OTP challenges, tokens, devices,
//! applications), the use cases that existing clients drive through the API
//! surfaces, and the **ports**: the traits through which the use cases reach
//! everything outside (stores, SMS senders, the clock, randomness, token
//! signing). It performs no I/O itself and depends on no I/O crate, so every
//! use case can be unit-tested with mocks of its ports.
//!
//! Secrets (codes, lookup keys, tokens) are carried in types whose `Debug`
//! output is redacted, so that a stray `{:?}` in a log line cannot leak them.

pub mod abuse;
pub mod account;
pub mod application;
pub mod delivery;
pub mod device;
pub mod otp;
pub mod outbox;
pub mod phone;
pub mod phone_login;
pub mod phone_verify;
pub mod pin_auth;
pub mod ports;
pub mod rate_limit;
pub mod time;
pub mod token;
pub mod token_auth;
pub mod user;

pub use ports::{StoreError, StoreResult};

#[cfg(test)]
mod test_support;
