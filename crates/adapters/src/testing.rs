//! Throwaway databases for tests, on SQLite or on a real Postgres.
//!
//! Postgres tests use `DATABASE_URL` when set, else
//! `postgres://postgres@127.0.0.1:5432/test`, to create a fresh database per
//! test, which is dropped again when the [`TestDatabase`] is dropped. When no
//! server answers, they fail with a message saying how to get one: a missing
//! Postgres must never look like a pass.

use std::path::PathBuf;

use crate::random::OsRandom;
use phonegate_domain::ports::RandomSource as _;
use sqlx::{Connection as _, PgConnection};

/// Where the Postgres tests connect when `DATABASE_URL` is not set.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Files(PathBuf),
    Database { admin_url: String, name: String },
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 8];
    OsRandom.fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The server the Postgres tests use.
pub fn postgres_admin_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

async fn admin_connection(admin_url: &str) -> PgConnection {
    match PgConnection::connect(admin_url).await {
        Ok(connection) => connection,
        Err(error) => panic!(
            "The Postgres tests need a running PostgreSQL server, but {admin_url} did not answer: {error}.\n\
             Start one (on Debian: `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
             or `bash .ci/run`, which starts it), or point DATABASE_URL at a server where the user may CREATE DATABASE."
        ),
    }
}

impl TestDatabase {
    pub async fn create(backend: TestBackend) -> Self {
        match backend {
            TestBackend::Sqlite => {
                let path = std::env::temp_dir().join(format!("phonegate-test-{}.db", random_suffix()));
                Self {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    cleanup: Cleanup::Files(path),
                }
            }
            TestBackend::Postgres => {
                let admin_url = postgres_admin_url();
                let name = format!("phonegate_test_{}", random_suffix());
                let mut admin = admin_connection(&admin_url).await;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .unwrap_or_else(|error| panic!("creating test database {name}: {error}"));
                let _ = admin.close().await;
                let url = match admin_url.rsplit_once('/') {
                    Some((server, _db)) if server.contains("://") && server.len() > "postgres://".len() => {
                        format!("{server}/{name}")
                    }
                    _ => format!("{}/{name}", admin_url.trim_end_matches('/')),
                };
                Self {
                    url,
                    cleanup: Cleanup::Database { admin_url, name },
                }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Files(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Cleanup::Database { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop may run inside an async test, so the cleanup gets its
                // own thread and runtime.
                let _ = std::thread::spawn(move || {
                    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                        return;
                    };
                    runtime.block_on(async {
                        if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                            let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut admin).await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// Declares each listed async test function `fn(TestBackend)` twice: once
/// in a `sqlite` module and once in a `postgres` module.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::testing::TestBackend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::testing::TestBackend::Postgres).await;
                }
            )*
        }
    };
}

/// Makes every insert into `table` fail, as a full disk or a dropped
/// connection would, until [`allow_inserts`]: for tests that a use case
/// writes all or nothing. `table` is one of the schema's table names.
pub async fn fail_inserts(db: &crate::sql::Db, table: &'static str) {
    let trigger = format!("phonegate_test_fail_{table}");
    match db {
        crate::sql::Db::Sqlite(pool) => {
            let sql = format!(
                "CREATE TRIGGER {trigger} BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            );
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(pool)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
        }
        crate::sql::Db::Postgres(pool) => {
            let sql = format!(
                "CREATE OR REPLACE FUNCTION phonegate_test_fail() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$; \
                 CREATE TRIGGER {trigger} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION phonegate_test_fail()"
            );
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(pool)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
        }
    }
}

/// Undoes [`fail_inserts`].
pub async fn allow_inserts(db: &crate::sql::Db, table: &'static str) {
    let trigger = format!("phonegate_test_fail_{table}");
    match db {
        crate::sql::Db::Sqlite(pool) => {
            let sql = format!("DROP TRIGGER {trigger}");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(pool)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
        }
        crate::sql::Db::Postgres(pool) => {
            let sql = format!("DROP TRIGGER {trigger} ON {table}");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(pool)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
        }
    }
}
