//! Schema migrations, one set per backend, applied at start.
//!
//! A migration is a commented SQL file embedded in the binary. Applied
//! versions are recorded in `phonegate_migrations`. The whole run happens in
//! one transaction that first takes a lock (an advisory lock on Postgres,
//! the write lock on SQLite), so several instances starting together apply
//! each migration exactly once.

use sea_query::{Expr, Iden, Query};

use super::db::{Backend, Db, DbError};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sqlite: include_str!("../../migrations/sqlite/0001_initial.sql"),
        postgres: include_str!("../../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "phone_login",
        sqlite: include_str!("../../migrations/sqlite/0002_phone_login.sql"),
        postgres: include_str!("../../migrations/postgres/0002_phone_login.sql"),
    },
    Migration {
        version: 3,
        name: "tokens",
        sqlite: include_str!("../../migrations/sqlite/0003_tokens.sql"),
        postgres: include_str!("../../migrations/postgres/0003_tokens.sql"),
    },
    Migration {
        version: 4,
        name: "outbox",
        sqlite: include_str!("../../migrations/sqlite/0004_outbox.sql"),
        postgres: include_str!("../../migrations/postgres/0004_outbox.sql"),
    },
    Migration {
        version: 5,
        name: "outbox_notify",
        sqlite: include_str!("../../migrations/sqlite/0005_outbox_notify.sql"),
        postgres: include_str!("../../migrations/postgres/0005_outbox_notify.sql"),
    },
    Migration {
        version: 6,
        name: "account_lockout",
        sqlite: include_str!("../../migrations/sqlite/0006_account_lockout.sql"),
        postgres: include_str!("../../migrations/postgres/0006_account_lockout.sql"),
    },
    Migration {
        version: 7,
        name: "flows",
        sqlite: include_str!("../../migrations/sqlite/0007_flows.sql"),
        postgres: include_str!("../../migrations/postgres/0007_flows.sql"),
    },
    Migration {
        version: 8,
        name: "providers",
        sqlite: include_str!("../../migrations/sqlite/0008_providers.sql"),
        postgres: include_str!("../../migrations/postgres/0008_providers.sql"),
    },
    Migration {
        version: 9,
        name: "delivery",
        sqlite: include_str!("../../migrations/sqlite/0009_delivery.sql"),
        postgres: include_str!("../../migrations/postgres/0009_delivery.sql"),
    },
];

#[derive(Iden)]
enum PhonegateMigrations {
    Table,
    Version,
    Name,
    AppliedAt,
}

#[derive(sqlx::FromRow)]
struct Applied {
    version: i64,
}

/// Applies every migration not yet applied. Returns how many were applied.
pub async fn migrate(db: &Db, now_millis: i64) -> Result<usize, DbError> {
    let mut tx = db.begin().await?;
    if db.backend() == Backend::Postgres {
        // Serialises concurrent starts; released when the transaction ends.
        // The number is arbitrary but fixed: "phonegat" in ASCII.
        tx.raw("SELECT pg_advisory_xact_lock(8100917815175225716)").await?;
    }
    tx.raw(
        "CREATE TABLE IF NOT EXISTS phonegate_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await?;
    let done: Vec<Applied> = tx
        .run()
        .fetch_all(
            &Query::select()
                .column(PhonegateMigrations::Version)
                .from(PhonegateMigrations::Table)
                .to_owned(),
        )
        .await?;
    let mut applied = 0;
    for migration in MIGRATIONS {
        if done.iter().any(|row| row.version == migration.version) {
            continue;
        }
        let script = match db.backend() {
            Backend::Sqlite => migration.sqlite,
            Backend::Postgres => migration.postgres,
        };
        tx.raw(script).await.map_err(|source| DbError::Migration {
            version: migration.version,
            name: migration.name,
            source,
        })?;
        tx.run()
            .execute(
                &Query::insert()
                    .into_table(PhonegateMigrations::Table)
                    .columns([
                        PhonegateMigrations::Version,
                        PhonegateMigrations::Name,
                        PhonegateMigrations::AppliedAt,
                    ])
                    .values_panic([
                        Expr::val(migration.version),
                        Expr::val(migration.name),
                        Expr::val(now_millis),
                    ])
                    .to_owned(),
            )
            .await?;
        applied += 1;
    }
    tx.commit().await?;
    Ok(applied)
}
