//! SQL storage for SQLite and Postgres, written once with sea-query.

mod accounts;
pub mod db;
mod housekeeping;
mod migrate;
mod outbox;
mod profile_cache;
mod schema;
mod sign_in;
mod store;
mod verified;
mod verified_phones;

pub use db::{Backend, Db, DbError, DbOptions};
pub use migrate::migrate;
pub use outbox::{OUTBOX_CHANNEL, OutboxSignal, Sealer, forward_notifications};
pub use store::SqlStore;
