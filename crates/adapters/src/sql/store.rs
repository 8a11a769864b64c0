//! [`SqlStore`]: the domain's store ports on SQLite or Postgres.
//!
//! Each port method is one statement or one transaction. The guarantees the
//! ports promise (one winner per code, bounded attempts) come from
//! conditional `UPDATE`s whose `WHERE` clause re-checks the state, so they
//! hold under any concurrency on either backend.
//!
//! This file holds the store itself and what every port's file shares; each
//! port is implemented in its own file (`users`, `challenges`, `devices`,
//! `access_codes`, `accounts`, `applications`, `outbox`, …). Store errors
//! carry the `sqlx::Error` as their source: database messages name
//! constraints and SQL, never bound values, so the text is safe for logs.

use async_trait::async_trait;
use phonegate_domain::{
    StoreError, StoreResult as _,
    phone::PhoneNumber,
    ports::Readiness,
    time::Timestamp,
    user::{User, UserId},
};
use sea_query::{Expr, ExprTrait as _, OnConflict, Query};

use super::{
    db::Db,
    outbox_notify::OutboxSignal,
    outbox_payload::Sealer,
    profile_cache::ProfileCache,
    schema::{ServerSecrets, Users},
};

/// The SQL implementation of every store port.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pub(super) db: Db,
    pub(super) sealer: Sealer,
    signal: OutboxSignal,
    pub(super) profiles: ProfileCache,
}

impl SqlStore {
    /// A store whose outbox payloads are sealed with a key of this process
    /// only; the service sets the key derived from its secret with
    /// [`SqlStore::with_sealer`], so every instance can read every row.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            sealer: Sealer::ephemeral(),
            signal: OutboxSignal::default(),
            profiles: ProfileCache::new(std::time::Duration::ZERO),
        }
    }

    pub fn with_sealer(self, sealer: Sealer) -> Self {
        Self { sealer, ..self }
    }

    /// Keeps each profile read for `ttl` (see `ProfileCache`: this
    /// process's own writes are seen at once, other instances' within
    /// `ttl`). Zero, the default, reads every profile from the database.
    pub fn with_profile_cache(self, ttl: std::time::Duration) -> Self {
        Self {
            profiles: ProfileCache::new(ttl),
            ..self
        }
    }

    /// Forgets the cached profile of `user`, after a write to it committed.
    pub(super) fn profile_changed(&self, user: UserId) {
        self.profiles.forget(user);
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub(super) fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// What wakes this process's dispatchers when a message is queued.
    pub fn outbox_signal(&self) -> &OutboxSignal {
        &self.signal
    }

    /// Wakes a dispatcher after a transaction that queued a message has
    /// committed.
    pub(super) fn queued(&self, queued: bool) {
        if queued {
            self.signal.wake();
        }
    }

    /// The secret named `name`, created from `fresh` if there is none yet.
    /// Concurrent callers all end up with the same value.
    pub async fn secret_or_insert(&self, name: &str, fresh: Vec<u8>, now: Timestamp) -> Result<Vec<u8>, StoreError> {
        let insert = Query::insert()
            .into_table(ServerSecrets::Table)
            .columns([ServerSecrets::Name, ServerSecrets::Value, ServerSecrets::CreatedAt])
            .values_panic([name.into(), fresh.into(), now.unix_millis().into()])
            .on_conflict(OnConflict::column(ServerSecrets::Name).do_nothing().to_owned())
            .to_owned();
        self.db.run().execute(&insert).await.op("secret_or_insert")?;
        let select = Query::select()
            .column(ServerSecrets::Value)
            .from(ServerSecrets::Table)
            .and_where(Expr::col(ServerSecrets::Name).eq(name))
            .to_owned();
        let row: SecretRow = self.db.run().fetch_one(&select).await.op("secret_or_insert")?;
        Ok(row.value)
    }
}

#[derive(sqlx::FromRow)]
struct SecretRow {
    value: Vec<u8>,
}

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    pub(super) id: i64,
    pub(super) phone: Option<String>,
    pub(super) email: Option<String>,
    pub(super) first_name: Option<String>,
    pub(super) last_name: Option<String>,
}

impl UserRow {
    pub(super) fn into_user(self) -> User {
        User {
            id: UserId::new(self.id),
            // Only validated numbers are ever written, so this cannot fail;
            // a row edited by hand into garbage reads as "no phone".
            phone: self.phone.and_then(|phone| PhoneNumber::parse_e164(&phone).ok()),
            email: self.email,
            first_name: self.first_name,
            last_name: self.last_name,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct IdRow {
    pub(super) id: i64,
}

/// How often a write that raced a concurrent one for the same live slot is
/// run again before giving up.
pub(super) const MAX_LIVE_CONFLICTS: u32 = 3;

pub(super) const USER_COLUMNS: [Users; 5] = [Users::Id, Users::Phone, Users::Email, Users::FirstName, Users::LastName];

#[async_trait]
impl Readiness for SqlStore {
    async fn check(&self) -> Result<(), StoreError> {
        self.db.ping().await.op("check")
    }
}
