//! What waits in the outbox, in all and by kind, for `/metrics` and the
//! dispatcher's warning about messages no instance can deliver.

use phonegate_domain::{
    StoreError, StoreResult as _,
    outbox::{Backlog, KindBacklog},
    time::Timestamp,
};
use sea_query::{Expr, ExprTrait as _, Func, Order, Query};

use super::{outbox::state, schema::Outbox, store::SqlStore};

#[derive(sqlx::FromRow)]
struct BacklogRow {
    pending: i64,
    oldest: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct KindRow {
    kind: String,
    pending: i64,
    oldest: Option<i64>,
}

fn backlog_of(now: Timestamp, pending: i64, oldest: Option<i64>) -> Backlog {
    Backlog {
        pending: u64::try_from(pending).unwrap_or(0),
        oldest_age: oldest.map(|oldest| now.since(Timestamp::from_unix_millis(oldest))),
    }
}

pub(super) async fn backlog(store: &SqlStore, now: Timestamp) -> Result<Backlog, StoreError> {
    let query = Query::select()
        .expr_as(Func::count(Expr::col(Outbox::Id)), "pending")
        .expr_as(Func::min(Expr::col(Outbox::CreatedAt)), "oldest")
        .from(Outbox::Table)
        .and_where(Expr::col(Outbox::State).eq(state::PENDING))
        .to_owned();
    let row: BacklogRow = store.db().run().fetch_one(&query).await.op("backlog")?;
    Ok(backlog_of(now, row.pending, row.oldest))
}

pub(super) async fn backlog_by_kind(store: &SqlStore, now: Timestamp) -> Result<Vec<KindBacklog>, StoreError> {
    let query = Query::select()
        .column(Outbox::Kind)
        .expr_as(Func::count(Expr::col(Outbox::Id)), "pending")
        .expr_as(Func::min(Expr::col(Outbox::CreatedAt)), "oldest")
        .from(Outbox::Table)
        .and_where(Expr::col(Outbox::State).eq(state::PENDING))
        .group_by_col(Outbox::Kind)
        .order_by(Outbox::Kind, Order::Asc)
        .to_owned();
    let rows: Vec<KindRow> = store.db().run().fetch_all(&query).await.op("backlog_by_kind")?;
    Ok(rows
        .into_iter()
        .map(|row| KindBacklog {
            kind: row.kind,
            backlog: backlog_of(now, row.pending, row.oldest),
        })
        .collect())
}
