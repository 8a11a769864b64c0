//! The database handle: one type over SQLite and Postgres.
//!
//! Every query in this crate is written once with sea-query and built for
//! whichever backend the handle holds. Only this module matches on the
//! backend; the stores above it never do.

use std::{str::FromStr, time::Duration};

use sea_query::{PostgresQueryBuilder, SqliteQueryBuilder};
use sea_query_sqlx::SqlxBinder;
use sqlx::{
    AssertSqlSafe, FromRow, PgPool, Postgres, Sqlite, SqlitePool, Transaction,
    postgres::{PgConnectOptions, PgPoolOptions, PgRow},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous},
};

/// Which backend a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to open the pool.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// A pool of connections to SQLite or Postgres.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Why the database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL scheme (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("could not connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

impl Db {
    /// Opens a pool for `url` (`sqlite://…` or `postgres://…`). Does not
    /// migrate; call [`migrate`](super::migrate::migrate).
    pub async fn connect(url: &str, options: &DbOptions) -> Result<Self, DbError> {
        match Backend::of_url(url).ok_or(DbError::UnsupportedUrl)? {
            Backend::Sqlite => {
                // WAL lets readers run beside the single writer, and the busy
                // timeout makes concurrent writers queue instead of failing.
                let connect = SqliteConnectOptions::from_str(url)
                    .map_err(DbError::Connect)?
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect)
                    .await
                    .map_err(DbError::Connect)?;
                Ok(Self::Sqlite(pool))
            }
            Backend::Postgres => {
                let connect = PgConnectOptions::from_str(url).map_err(DbError::Connect)?;
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect)
                    .await
                    .map_err(DbError::Connect)?;
                Ok(Self::Postgres(pool))
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes every connection (used at shutdown and by tests).
    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }

    /// Starts a transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a transaction that reads before it writes
    /// cannot fail with a lock upgrade conflict under concurrency.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match self {
            Self::Sqlite(pool) => Ok(Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?)),
            Self::Postgres(pool) => Ok(Tx::Postgres(pool.begin().await?)),
        }
    }

    /// Starts a transaction serialised with every other one that locks the
    /// same `key` (see [`Tx::lock_key`]). On Postgres the lock is taken in
    /// the same round trip as `BEGIN`, which is why the key is written into
    /// the statement: that is done only for keys made of characters that
    /// cannot end a string literal, and any other key takes the lock with a
    /// bound parameter in a second round trip.
    pub async fn begin_locked(&self, key: &str) -> Result<Tx, sqlx::Error> {
        match self {
            Self::Postgres(pool) if is_plain_key(key) => {
                // Audited: `is_plain_key` admits no quote, backslash or
                // semicolon, so the key cannot leave its literal.
                let begin = format!("BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('{key}', 0))");
                Ok(Tx::Postgres(pool.begin_with(AssertSqlSafe(begin)).await?))
            }
            _ => {
                let mut tx = self.begin().await?;
                tx.lock_key(key).await?;
                Ok(tx)
            }
        }
    }

    /// Runs `SELECT 1`.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        }
    }
}

/// Whether `key` may be written into SQL text as a string literal: letters,
/// digits and `_ : + . -` only (lock keys are a table name, a purpose and
/// an E.164 number).
fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'+' | b'.' | b'-'))
}

/// A transaction on either backend.
#[derive(Debug)]
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    /// Runs trusted SQL text (migrations, locks) that may hold several
    /// statements and binds no values.
    pub async fn raw(&mut self, sql: &'static str) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(tx) => sqlx::raw_sql(sql).execute(&mut **tx).await.map(drop),
            Self::Postgres(tx) => sqlx::raw_sql(sql).execute(&mut **tx).await.map(drop),
        }
    }

    /// Serialises this transaction with every other one that locks the same
    /// `key`, until it ends. On Postgres this is a transaction-scoped
    /// advisory lock; on SQLite `BEGIN IMMEDIATE` already serialises all
    /// writers, so there is nothing more to do.
    pub async fn lock_key(&mut self, key: &str) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(_) => Ok(()),
            Self::Postgres(tx) => sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(key)
                .execute(&mut **tx)
                .await
                .map(drop),
        }
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(tx) => tx.commit().await,
            Self::Postgres(tx) => tx.commit().await,
        }
    }
}

/// A row type that decodes from both backends.
pub trait AnyRow: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}
impl<T> AnyRow for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

/// Builds `$stmt` for the backend of `$target` and runs `$run` on it: the
/// one place where a statement meets a backend. `$target` is a `Db` (runs
/// on the pool) or a `Tx` (runs inside the transaction).
macro_rules! on_backend {
    ($target:expr, $stmt:expr, |$sql:ident, $values:ident, $exec:ident| $run:expr) => {
        match $target {
            Target::Db(Db::Sqlite(pool)) => {
                let ($sql, $values) = $stmt.build_sqlx(SqliteQueryBuilder);
                let $exec = pool;
                $run
            }
            Target::Db(Db::Postgres(pool)) => {
                let ($sql, $values) = $stmt.build_sqlx(PostgresQueryBuilder);
                let $exec = pool;
                $run
            }
            Target::Tx(Tx::Sqlite(tx)) => {
                let ($sql, $values) = $stmt.build_sqlx(SqliteQueryBuilder);
                let $exec = &mut **tx;
                $run
            }
            Target::Tx(Tx::Postgres(tx)) => {
                let ($sql, $values) = $stmt.build_sqlx(PostgresQueryBuilder);
                let $exec = &mut **tx;
                $run
            }
        }
    };
}

/// Where a statement runs: on the pool, or inside a transaction.
#[derive(Debug)]
pub enum Target<'a> {
    Db(&'a Db),
    Tx(&'a mut Tx),
}

impl Target<'_> {
    /// Executes a statement and returns the number of rows it affected.
    pub async fn execute<S: SqlxBinder>(self, stmt: &S) -> Result<u64, sqlx::Error> {
        on_backend!(self, stmt, |sql, values, exec| {
            sqlx::query_with(AssertSqlSafe(sql), values)
                .execute(exec)
                .await
                .map(|done| done.rows_affected())
        })
    }

    /// Fetches at most one row.
    pub async fn fetch_optional<T: AnyRow, S: SqlxBinder>(self, stmt: &S) -> Result<Option<T>, sqlx::Error> {
        on_backend!(self, stmt, |sql, values, exec| {
            sqlx::query_as_with(AssertSqlSafe(sql), values)
                .fetch_optional(exec)
                .await
        })
    }

    /// Fetches exactly one row.
    pub async fn fetch_one<T: AnyRow, S: SqlxBinder>(self, stmt: &S) -> Result<T, sqlx::Error> {
        on_backend!(self, stmt, |sql, values, exec| {
            sqlx::query_as_with(AssertSqlSafe(sql), values).fetch_one(exec).await
        })
    }

    /// Fetches every row.
    pub async fn fetch_all<T: AnyRow, S: SqlxBinder>(self, stmt: &S) -> Result<Vec<T>, sqlx::Error> {
        on_backend!(self, stmt, |sql, values, exec| {
            sqlx::query_as_with(AssertSqlSafe(sql), values).fetch_all(exec).await
        })
    }
}

impl Db {
    /// Statements on the pool, outside any transaction.
    pub fn run(&self) -> Target<'_> {
        Target::Db(self)
    }
}

impl Tx {
    /// Statements inside this transaction.
    pub fn run(&mut self) -> Target<'_> {
        Target::Tx(self)
    }
}

/// Whether `error` is a unique-constraint violation.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|db| db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::is_plain_key;

    #[test]
    fn only_keys_that_cannot_break_out_of_a_literal_are_plain() {
        assert!(is_plain_key("otp_challenges:pin_auth:+85261234567"));
        for bad in ["", "a'b", "a\\b", "a;b", "a b", "é"] {
            assert!(!is_plain_key(bad), "{bad}");
        }
    }
}
