//! SQL storage for SQLite and Postgres, written once with sea-query.

mod accounts;
pub mod db;
mod migrate;
mod schema;
mod store;

pub use db::{Backend, Db, DbError, DbOptions};
pub use migrate::migrate;
pub use store::SqlStore;
