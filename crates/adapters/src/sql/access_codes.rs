//! [`AccessCodeStore`] on SQL: phone-login's access codes, stored only as
//! keyed hashes.

use async_trait::async_trait;
use phonegate_domain::{
    StoreError, StoreResult as _,
    otp::SecretHash,
    phone::PhoneNumber,
    phone_login::{AccessCodeRecord, NewAccessCode},
    ports::AccessCodeStore,
    time::Timestamp,
    user::UserId,
};
use sea_query::{Expr, ExprTrait as _, Query};

use super::{
    schema::{AccessCodes, Users},
    store::SqlStore,
};

#[derive(sqlx::FromRow)]
struct AccessCodeRow {
    user_id: i64,
    phone: Option<String>,
    device_id: String,
    expires_at: i64,
    revoked_at: Option<i64>,
}

/// The statement that stores an access code, shared by the port method and
/// the transaction that consumes a PIN (`sql::verified`).
pub(super) fn access_code_insert(code: &NewAccessCode) -> sea_query::InsertStatement {
    Query::insert()
        .into_table(AccessCodes::Table)
        .columns([
            AccessCodes::UserId,
            AccessCodes::CodeHash,
            AccessCodes::DeviceId,
            AccessCodes::CreatedAt,
            AccessCodes::ExpiresAt,
        ])
        .values_panic([
            code.user_id.get().into(),
            code.code_hash.as_bytes().to_vec().into(),
            code.device_id.clone().into(),
            code.created_at.unix_millis().into(),
            code.expires_at.unix_millis().into(),
        ])
        .to_owned()
}

#[async_trait]
impl AccessCodeStore for SqlStore {
    async fn insert_access_code(&self, code: NewAccessCode) -> Result<(), StoreError> {
        self.db
            .run()
            .execute(&access_code_insert(&code))
            .await
            .op("insert_access_code")?;
        Ok(())
    }

    async fn find_access_code(&self, code_hash: &SecretHash) -> Result<Option<AccessCodeRecord>, StoreError> {
        let query = Query::select()
            .column((AccessCodes::Table, AccessCodes::UserId))
            .column((Users::Table, Users::Phone))
            .column((AccessCodes::Table, AccessCodes::DeviceId))
            .column((AccessCodes::Table, AccessCodes::ExpiresAt))
            .column((AccessCodes::Table, AccessCodes::RevokedAt))
            .from(AccessCodes::Table)
            .inner_join(
                Users::Table,
                Expr::col((Users::Table, Users::Id)).equals((AccessCodes::Table, AccessCodes::UserId)),
            )
            .and_where(Expr::col((AccessCodes::Table, AccessCodes::CodeHash)).eq(code_hash.as_bytes().to_vec()))
            .to_owned();
        let row: Option<AccessCodeRow> = self.db.run().fetch_optional(&query).await.op("find_access_code")?;
        Ok(row.map(|row| AccessCodeRecord {
            user_id: UserId::new(row.user_id),
            phone: row.phone.and_then(|phone| PhoneNumber::parse_e164(&phone).ok()),
            device_id: row.device_id,
            expires_at: Timestamp::from_unix_millis(row.expires_at),
            revoked: row.revoked_at.is_some(),
        }))
    }
}
