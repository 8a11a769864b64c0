//! Implementations of phonegate's ports.
//!
//! - [`sql`]: users, challenges and devices on SQLite or Postgres, through one
//!   sea-query layer, with per-backend migrations.
//! - [`sms`]: the console SMS sender for development (and tests).
//! - [`twilio`]: SMS, voice calls and Verify through Twilio's HTTP API.
//! - [`plivo`]: SMS through Plivo's Message API, one attempt per message.
//! - [`telnyx`]: SMS through Telnyx's Messages API, one attempt per message.
//! - [`vonage`]: SMS through Vonage's SMS API and calls through its Voice API.
//! - [`http_provider`]: SMS and calls as signed JSON POSTs to any HTTP endpoint.
//! - Delivery receipts: [`twilio::TwilioReceiptReader`],
//!   [`vonage::VonageReceiptReader`] and [`http_provider::HttpReceiptReader`]
//!   verify and read each vendor's signed receipts.
//! - [`webhook_signature`]: Standard Webhooks signing and verification.
//! - [`jwt`]: JWTs (HS256, RS256, EdDSA) with a current key and previous keys for rotation.
//! - [`rate_limit`]: sliding-window rate limiters, in memory for one
//!   instance or in Redis for several.
//! - [`memory`]: the allocator settings the binary applies at start.
//! - [`clock`] and [`random`]: the system clock and the OS CSPRNG, plus a
//!   manual clock for tests.
//!
//! Adapters translate library errors into the domain's error types; nothing
//! from sqlx, jsonwebtoken, reqwest or redis crosses a port.

pub mod clock;
pub mod http_provider;
pub mod jwt;
pub mod mail;
pub mod memory;
pub mod password;
pub mod password_screen;
pub mod plivo;
pub mod random;
pub mod rate_limit;
pub mod sms;
pub mod sql;
pub mod telnyx;
#[cfg(feature = "testing")]
pub mod testing;
pub mod twilio;
mod vendor_http;
pub mod vonage;
pub mod webhook_signature;
