//! [`DeviceStore`] on SQL: devices' push registrations.

use async_trait::async_trait;
use phonegate_domain::{
    StoreError, StoreResult as _,
    device::{PushHandle, PushPlatform},
    ports::DeviceStore,
    time::Timestamp,
    user::UserId,
};
use sea_query::{Expr, ExprTrait as _, OnConflict, Order, Query};

use super::{db::Tx, schema::Devices, store::SqlStore};

#[async_trait]
impl DeviceStore for SqlStore {
    async fn register_push(
        &self,
        user: UserId,
        platform: PushPlatform,
        handle: &PushHandle,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let upsert = Query::insert()
            .into_table(Devices::Table)
            .columns([
                Devices::UserId,
                Devices::Platform,
                Devices::PushHandle,
                Devices::CreatedAt,
                Devices::UpdatedAt,
            ])
            .values_panic([
                user.get().into(),
                platform.as_str().into(),
                handle.as_str().into(),
                now.unix_millis().into(),
                now.unix_millis().into(),
            ])
            .on_conflict(
                OnConflict::columns([Devices::Platform, Devices::PushHandle])
                    .update_columns([Devices::UserId, Devices::UpdatedAt])
                    .to_owned(),
            )
            .to_owned();
        self.db.run().execute(&upsert).await.op("register_push")?;
        Ok(())
    }
}

impl SqlStore {
    /// Removes `user`'s push registration `handle` (any platform), inside `tx`.
    pub(super) async fn remove_push_handle(&self, tx: &mut Tx, user: UserId, handle: &str) -> Result<(), StoreError> {
        let delete = Query::delete()
            .from_table(Devices::Table)
            .and_where(Expr::col(Devices::UserId).eq(user.get()))
            .and_where(Expr::col(Devices::PushHandle).eq(handle))
            .to_owned();
        tx.run().execute(&delete).await.op("remove_push_handle")?;
        Ok(())
    }
}

/// Reads for tests and admin tooling that the ports do not need.
impl SqlStore {
    /// The push registrations of `user` as `(platform, handle)`.
    pub async fn push_registrations(&self, user: UserId) -> Result<Vec<(String, String)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            platform: String,
            push_handle: String,
        }
        let query = Query::select()
            .columns([Devices::Platform, Devices::PushHandle])
            .from(Devices::Table)
            .and_where(Expr::col(Devices::UserId).eq(user.get()))
            .order_by(Devices::Id, Order::Asc)
            .to_owned();
        let rows: Vec<Row> = self.db.run().fetch_all(&query).await.op("push_registrations")?;
        Ok(rows.into_iter().map(|r| (r.platform, r.push_handle)).collect())
    }
}
