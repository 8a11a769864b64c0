//! Purging rows that can never be used again.

use async_trait::async_trait;
use phonegate_domain::{
    StoreError, StoreResult as _,
    ports::{Housekeeping, PurgeReport},
    time::Timestamp,
};
use sea_query::{Cond, Expr, ExprTrait as _, Iden, IntoIden, Query, SimpleExpr};

use super::{
    outbox::state as outbox_state,
    schema::{AccessCodes, OtpChallenges, Outbox, PasswordResets, SessionTokens},
    store::SqlStore,
};

/// Rows deleted per statement: small enough that no statement holds locks
/// for long, large enough that a backlog of millions clears in minutes.
const BATCH: u64 = 5_000;
/// Batches per table per purge; the rest waits for the next run.
const MAX_BATCHES: u32 = 200;

impl SqlStore {
    /// Deletes rows of `table` matching `condition`, in batches by id.
    async fn purge_table<T: Iden + Copy + 'static>(&self, table: T, id: T, condition: Cond) -> Result<u64, StoreError> {
        let mut total = 0;
        for _ in 0..MAX_BATCHES {
            let batch = Query::select()
                .column(id)
                .from(table)
                .cond_where(condition.clone())
                .limit(BATCH)
                .to_owned();
            let delete = Query::delete()
                .from_table(table.into_iden())
                .and_where(Expr::col(id).in_subquery(batch))
                .to_owned();
            let deleted = self.db().run().execute(&delete).await.op("purge_table")?;
            total += deleted;
            if deleted < BATCH {
                break;
            }
        }
        Ok(total)
    }
}

fn before(column: impl IntoIden, cutoff: i64) -> SimpleExpr {
    Expr::col(column.into_iden()).lt(cutoff)
}

#[async_trait]
impl Housekeeping for SqlStore {
    async fn purge(&self, cutoff: Timestamp) -> Result<PurgeReport, StoreError> {
        let cutoff = cutoff.unix_millis();
        let challenges = self
            .purge_table(
                OtpChallenges::Table,
                OtpChallenges::Id,
                Cond::all().add(before(OtpChallenges::ExpiresAt, cutoff)),
            )
            .await?;
        let session_tokens = self
            .purge_table(
                SessionTokens::Table,
                SessionTokens::Id,
                Cond::any()
                    .add(before(SessionTokens::ExpiresAt, cutoff))
                    .add(before(SessionTokens::RevokedAt, cutoff)),
            )
            .await?;
        let access_codes = self
            .purge_table(
                AccessCodes::Table,
                AccessCodes::Id,
                Cond::any()
                    .add(before(AccessCodes::ExpiresAt, cutoff))
                    .add(before(AccessCodes::RevokedAt, cutoff)),
            )
            .await?;
        let password_resets = self
            .purge_table(
                PasswordResets::Table,
                PasswordResets::Id,
                Cond::all().add(before(PasswordResets::ExpiresAt, cutoff)),
            )
            .await?;
        let outbox = self
            .purge_table(
                Outbox::Table,
                Outbox::Id,
                Cond::any()
                    .add(
                        Expr::col(Outbox::State)
                            .ne(outbox_state::PENDING)
                            .and(before(Outbox::CreatedAt, cutoff)),
                    )
                    .add(
                        Expr::col(Outbox::State)
                            .eq(outbox_state::PENDING)
                            .and(before(Outbox::NotAfter, cutoff)),
                    ),
            )
            .await?;
        Ok(PurgeReport {
            challenges,
            session_tokens,
            access_codes,
            password_resets,
            outbox,
        })
    }

    async fn forget_expired_payloads(&self, now: Timestamp) -> Result<u64, StoreError> {
        let forget = Query::update()
            .table(Outbox::Table)
            .value(Outbox::Payload, Option::<Vec<u8>>::None)
            .and_where(Expr::col(Outbox::State).eq("sent"))
            .and_where(Expr::col(Outbox::Payload).is_not_null())
            .and_where(Expr::col(Outbox::NotAfter).lt(now.unix_millis()))
            .to_owned();
        self.db().run().execute(&forget).await.op("forget_expired_payloads")
    }
}
