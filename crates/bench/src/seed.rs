//! Test data, written straight into the database with set-based SQL (a
//! million rows in seconds, not a million requests).

use anyhow::Context as _;
use sqlx::{PgPool, SqlitePool};

use crate::flows::{seeded_phone, sign_in_email};

/// A direct connection to the benchmark's database.
#[derive(Debug, Clone)]
pub enum Database {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Rows per statement: large enough to be fast, small enough that one
/// statement never holds locks for long.
const CHUNK: usize = 100_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}

fn count(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Database {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(SqlitePool::connect(url).await.context("opening SQLite")?))
        } else {
            Ok(Self::Postgres(
                PgPool::connect(url).await.context("connecting to Postgres")?,
            ))
        }
    }

    pub async fn close(&self) {
        match self {
            Self::Postgres(pool) => pool.close().await,
            Self::Sqlite(pool) => pool.close().await,
        }
    }

    /// Users `from..to` with phones `prefix` and six digits (at most a
    /// million, see [`seeded_phone`]).
    pub async fn users(&self, prefix: &str, from: usize, to: usize) -> anyhow::Result<()> {
        debug_assert_eq!(seeded_phone("+85261", 7), "+85261000007");
        let now = now_ms();
        for start in (from..to).step_by(CHUNK) {
            let end = (start + CHUNK).min(to) - 1;
            match self {
                Self::Postgres(pool) => {
                    sqlx::query(
                        "INSERT INTO users (phone, first_name, last_name, created_at) \
                         SELECT $4 || lpad(g::text, 6, '0'), 'Bench', 'User', $1 \
                         FROM generate_series($2::bigint, $3::bigint) AS g ON CONFLICT DO NOTHING",
                    )
                    .bind(now)
                    .bind(count(start))
                    .bind(count(end))
                    .bind(prefix)
                    .execute(pool)
                    .await?;
                }
                Self::Sqlite(pool) => {
                    sqlx::query(
                        "INSERT OR IGNORE INTO users (phone, first_name, last_name, created_at) \
                         WITH RECURSIVE s(g) AS (SELECT ?2 UNION ALL SELECT g + 1 FROM s WHERE g < ?3) \
                         SELECT ?4 || printf('%06d', g), 'Bench', 'User', ?1 FROM s",
                    )
                    .bind(now)
                    .bind(count(start))
                    .bind(count(end))
                    .bind(prefix)
                    .execute(pool)
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// `count` users who sign in with an email and the same password hash.
    pub async fn sign_in_users(&self, users: usize, password_hash: &str) -> anyhow::Result<()> {
        debug_assert_eq!(sign_in_email(3), "bench3@example.com");
        let now = now_ms();
        let last = count(users) - 1;
        match self {
            Self::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO users (email, password_hash, first_name, last_name, created_at) \
                     SELECT 'bench' || g || '@example.com', $1, 'Bench', 'Signer', $2 \
                     FROM generate_series(0, $3::bigint) AS g ON CONFLICT DO NOTHING",
                )
                .bind(password_hash)
                .bind(now)
                .bind(last)
                .execute(pool)
                .await?;
            }
            Self::Sqlite(pool) => {
                sqlx::query(
                    "INSERT OR IGNORE INTO users (email, password_hash, first_name, last_name, created_at) \
                     WITH RECURSIVE s(g) AS (SELECT 0 UNION ALL SELECT g + 1 FROM s WHERE g < ?3) \
                     SELECT 'bench' || g || '@example.com', ?1, 'Bench', 'Signer', ?2 FROM s",
                )
                .bind(password_hash)
                .bind(now)
                .bind(last)
                .execute(pool)
                .await?;
            }
        }
        Ok(())
    }

    /// `total` challenges that expired an hour ago and were never used (as
    /// they lie in the table until housekeeping's retention passes), spread
    /// over the three OTP surfaces, for numbers of their own.
    pub async fn expired_challenges(&self, total: usize) -> anyhow::Result<()> {
        let now = now_ms();
        for start in (0..total).step_by(CHUNK) {
            let end = (start + CHUNK).min(total) - 1;
            match self {
                Self::Postgres(pool) => {
                    sqlx::query(
                        "INSERT INTO otp_challenges (purpose, phone, channel, lookup_hash, code_hash, attempts, \
                         max_attempts, state, created_at, expires_at) \
                         SELECT (ARRAY['pin_auth', 'phone_login', 'phone_verify'])[1 + g % 3], \
                         '+8529' || lpad(g::text, 7, '0'), 'sms', sha256(('expired' || g)::bytea), \
                         sha256(('code' || g)::bytea), 0, 5, 'live', $1 - 4200000, $1 - 3600000 \
                         FROM generate_series($2::bigint, $3::bigint) AS g",
                    )
                    .bind(now)
                    .bind(count(start))
                    .bind(count(end))
                    .execute(pool)
                    .await?;
                }
                Self::Sqlite(pool) => {
                    sqlx::query(
                        "INSERT INTO otp_challenges (purpose, phone, channel, lookup_hash, code_hash, attempts, \
                         max_attempts, state, created_at, expires_at) \
                         WITH RECURSIVE s(g) AS (SELECT ?2 UNION ALL SELECT g + 1 FROM s WHERE g < ?3) \
                         SELECT CASE g % 3 WHEN 0 THEN 'pin_auth' WHEN 1 THEN 'phone_login' ELSE 'phone_verify' END, \
                         '+8529' || printf('%07d', g), 'sms', randomblob(32), randomblob(32), 0, 5, 'live', \
                         ?1 - 4200000, ?1 - 3600000 FROM s",
                    )
                    .bind(now)
                    .bind(count(start))
                    .bind(count(end))
                    .execute(pool)
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Fresh planner statistics after a bulk load.
    pub async fn analyze(&self) -> anyhow::Result<()> {
        match self {
            Self::Postgres(pool) => sqlx::query("VACUUM ANALYZE").execute(pool).await.map(drop)?,
            Self::Sqlite(pool) => sqlx::query("ANALYZE").execute(pool).await.map(drop)?,
        }
        Ok(())
    }

    /// How many rows `table` holds.
    pub async fn rows(&self, table: &str) -> anyhow::Result<i64> {
        let sql = format!("SELECT count(*) FROM {table}");
        Ok(match self {
            Self::Postgres(pool) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(pool).await?,
            Self::Sqlite(pool) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(pool).await?,
        })
    }
}

/// Creates (or re-creates) the benchmark database on the Postgres server
/// that `admin_url` reaches, and returns its URL.
pub async fn fresh_postgres_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let admin = PgPool::connect(admin_url)
        .await
        .with_context(|| format!("connecting to Postgres at {admin_url} (is it running?)"))?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await?;
    admin.close().await;
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(base, _)| base);
    Ok(format!("{base}/{name}"))
}
