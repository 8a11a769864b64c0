//! [`ConversionStore`] on SQL: codes sent per destination prefix and how
//! many were verified, read from the challenges (and, for providers and
//! receipts, their outbox rows), the same statements on both backends.

use async_trait::async_trait;
use phonegate_domain::{
    StoreError, StoreResult as _,
    ports::{ConversionRow, ConversionStore, PrefixCounts},
    time::Timestamp,
};
use sea_query::{Expr, ExprTrait as _, Func, IntoColumnRef, JoinType, Query, SimpleExpr};

use super::{
    schema::{OtpChallenges, Outbox, state},
    store::SqlStore,
};

/// What a receipt says of a message that reached the number.
const DELIVERED: &str = "delivered";

#[derive(sqlx::FromRow)]
struct CountsRow {
    sent: i64,
    verified: i64,
    recent: i64,
}

#[derive(sqlx::FromRow)]
struct ConversionSqlRow {
    prefix: String,
    provider: Option<String>,
    sent: i64,
    delivered: i64,
    verified: i64,
}

/// `SUM(CASE WHEN condition THEN 1 ELSE 0 END)`, 0 over no rows: a count
/// of the rows meeting `condition`, an integer on both backends.
fn count_where(condition: SimpleExpr) -> SimpleExpr {
    let case = Expr::case(condition, Expr::cust("1")).finally(Expr::cust("0"));
    Func::coalesce([Func::sum(case).into(), Expr::cust("0")]).into()
}

fn col(table: OtpChallenges, column: OtpChallenges) -> Expr {
    Expr::col((table, column).into_column_ref())
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

#[async_trait]
impl ConversionStore for SqlStore {
    /// One range scan of the partial index on `(sent_prefix, created_at)`.
    async fn prefix_counts(
        &self,
        prefix: &str,
        since: Timestamp,
        recent_since: Timestamp,
    ) -> Result<PrefixCounts, StoreError> {
        let query = Query::select()
            .expr_as(Func::count(Expr::col(OtpChallenges::Id)), "sent")
            .expr_as(
                count_where(Expr::col(OtpChallenges::State).eq(state::CONSUMED)),
                "verified",
            )
            .expr_as(
                count_where(Expr::col(OtpChallenges::CreatedAt).gte(recent_since.unix_millis())),
                "recent",
            )
            .from(OtpChallenges::Table)
            .and_where(Expr::col(OtpChallenges::SentPrefix).eq(prefix))
            .and_where(Expr::col(OtpChallenges::CreatedAt).gte(since.unix_millis()))
            .to_owned();
        let row: CountsRow = self.db().run().fetch_one(&query).await.op("prefix_counts")?;
        Ok(PrefixCounts {
            sent: count(row.sent),
            verified: count(row.verified),
            recent: count(row.recent),
        })
    }

    /// The challenges sent since `since`, each joined to its real (not
    /// decoy) outbox row for the provider and the receipt.
    async fn conversion(&self, since: Timestamp) -> Result<Vec<ConversionRow>, StoreError> {
        let challenges = OtpChallenges::Table;
        let query = Query::select()
            .expr_as(col(challenges, OtpChallenges::SentPrefix), "prefix")
            .expr_as(Expr::col((Outbox::Table, Outbox::Provider)), "provider")
            .expr_as(Func::count(col(challenges, OtpChallenges::Id)), "sent")
            .expr_as(
                count_where(Expr::col((Outbox::Table, Outbox::DeliveryStatus)).eq(DELIVERED)),
                "delivered",
            )
            .expr_as(
                count_where(col(challenges, OtpChallenges::State).eq(state::CONSUMED)),
                "verified",
            )
            .from(challenges)
            .join(
                JoinType::LeftJoin,
                Outbox::Table,
                Expr::col((Outbox::Table, Outbox::ChallengeId))
                    .equals((challenges, OtpChallenges::Id))
                    .and(Expr::col((Outbox::Table, Outbox::Kind)).ne("decoy")),
            )
            .and_where(col(challenges, OtpChallenges::SentPrefix).is_not_null())
            .and_where(col(challenges, OtpChallenges::CreatedAt).gte(since.unix_millis()))
            .group_by_col((challenges, OtpChallenges::SentPrefix))
            .group_by_col((Outbox::Table, Outbox::Provider))
            .to_owned();
        let rows: Vec<ConversionSqlRow> = self.db().run().fetch_all(&query).await.op("conversion")?;
        let mut rows: Vec<ConversionRow> = rows
            .into_iter()
            .map(|row| ConversionRow {
                prefix: row.prefix,
                provider: row.provider,
                sent: count(row.sent),
                delivered: count(row.delivered),
                verified: count(row.verified),
            })
            .collect();
        // Sorted here: the backends order NULL providers differently.
        rows.sort_by(|a, b| (&a.prefix, &a.provider).cmp(&(&b.prefix, &b.provider)));
        Ok(rows)
    }
}
