//! The ports: every way the use cases reach outside the domain, with the
//! records that cross them.
//!
//! Each trait is shaped around what a use case needs, not around tables.
//! Stores that must write several rows at once take them in one call, so the
//! adapter can write them in one transaction; no transaction handle ever
//! crosses a port. Adapters translate library errors into the error types
//! declared here.
//!
//! Architecture invariant: a module under `ports` imports only value modules
//! (`phone`, `user`, `device`, `account`, `application`, `time`, `token` and
//! the value types of `otp`), never a use case, so the use cases depend on
//! the ports and never the other way round. Every item is re-exported here,
//! so `crate::ports::UserStore` names the same trait as
//! `crate::ports::users::UserStore`.

pub mod access_codes;
pub mod accounts;
pub mod applications;
pub mod challenges;
pub mod clock;
pub mod conversion;
pub mod delivery;
pub mod devices;
mod error;
pub mod metrics;
pub mod operations;
pub mod outbox;
pub mod passwords;
pub mod rate_limit;
pub mod receipts;
pub mod sessions;
pub mod tokens;
pub mod users;
pub mod verified_phones;

pub use self::{
    access_codes::*, accounts::*, applications::*, challenges::*, clock::*, conversion::*, delivery::*, devices::*,
    error::*, metrics::*, operations::*, outbox::*, passwords::*, rate_limit::*, receipts::*, sessions::*, tokens::*,
    users::*, verified_phones::*,
};
