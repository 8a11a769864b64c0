//! SQL storage for SQLite and Postgres, written once with sea-query.

mod access_codes;
mod accounts;
mod applications;
mod challenges;
mod conversion;
pub mod db;
mod devices;
mod housekeeping;
mod migrate;
mod outbox;
mod outbox_backlog;
mod outbox_notify;
mod outbox_payload;
mod profile_cache;
mod receipts;
mod schema;
mod sessions;
mod sign_in;
mod store;
mod users;
mod verified;
mod verified_phones;

pub use db::{Backend, Db, DbError, DbOptions};
pub use migrate::migrate;
pub use outbox_notify::{OUTBOX_CHANNEL, OutboxSignal, forward_notifications};
pub use outbox_payload::Sealer;
pub use store::SqlStore;
