//! [`SessionStore`] on SQL: the tokens surface's opaque session tokens,
//! with the devices they were issued to.

use async_trait::async_trait;
use phonegate_domain::{
    StoreError, StoreResult as _,
    otp::SecretHash,
    ports::{RevokedTokens, SessionStore},
    time::Timestamp,
    token_auth::{NewSession, SessionRecord},
    user::UserId,
};
use sea_query::{Expr, ExprTrait as _, Query};

use super::{
    db::is_unique_violation,
    schema::{AccessCodes, Applications, SessionTokens, SignInDevices},
    store::{IdRow, SqlStore},
};

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: i64,
    user_id: i64,
    app_id: Option<String>,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn create_session(&self, session: NewSession) -> Result<(), StoreError> {
        let now = session.created_at.unix_millis();
        let mut tx = self.db().begin().await.op("create_session")?;
        let device_id = match &session.device {
            None => None,
            Some(device) => {
                // A device is the user's own: another user naming the same
                // device_token (device ids are not secret) gets a device row
                // of their own and cannot revoke this user's token.
                let mut find = Query::select()
                    .column(SignInDevices::Id)
                    .from(SignInDevices::Table)
                    .and_where(Expr::col(SignInDevices::UserId).eq(session.user_id.get()))
                    .and_where(Expr::col(SignInDevices::DeviceToken).eq(device.device_token.as_str()))
                    .to_owned();
                match session.application_id {
                    Some(app) => find.and_where(Expr::col(SignInDevices::ApplicationId).eq(app)),
                    None => find.and_where(Expr::col(SignInDevices::ApplicationId).is_null()),
                };
                let existing: Option<IdRow> = tx.run().fetch_optional(&find).await.op("create_session")?;
                let mobile_os = device.mobile_os.map(|os| os.as_str());
                let id = match existing {
                    Some(row) => {
                        let update = Query::update()
                            .table(SignInDevices::Table)
                            .value(SignInDevices::MobileOs, mobile_os)
                            .value(SignInDevices::UpdatedAt, now)
                            .and_where(Expr::col(SignInDevices::Id).eq(row.id))
                            .to_owned();
                        tx.run().execute(&update).await.op("create_session")?;
                        let revoke = Query::update()
                            .table(SessionTokens::Table)
                            .value(SessionTokens::RevokedAt, now)
                            .and_where(Expr::col(SessionTokens::DeviceId).eq(row.id))
                            .and_where(Expr::col(SessionTokens::RevokedAt).is_null())
                            .to_owned();
                        tx.run().execute(&revoke).await.op("create_session")?;
                        row.id
                    }
                    None => {
                        let insert = Query::insert()
                            .into_table(SignInDevices::Table)
                            .columns([
                                SignInDevices::UserId,
                                SignInDevices::ApplicationId,
                                SignInDevices::DeviceToken,
                                SignInDevices::MobileOs,
                                SignInDevices::CreatedAt,
                                SignInDevices::UpdatedAt,
                            ])
                            .values_panic([
                                session.user_id.get().into(),
                                session.application_id.into(),
                                device.device_token.as_str().into(),
                                mobile_os.into(),
                                now.into(),
                                now.into(),
                            ])
                            .returning_col(SignInDevices::Id)
                            .to_owned();
                        let row: IdRow = tx.run().fetch_one(&insert).await.op("create_session")?;
                        row.id
                    }
                };
                Some(id)
            }
        };
        let insert = Query::insert()
            .into_table(SessionTokens::Table)
            .columns([
                SessionTokens::UserId,
                SessionTokens::DeviceId,
                SessionTokens::ApplicationId,
                SessionTokens::TokenHash,
                SessionTokens::CreatedAt,
                SessionTokens::ExpiresAt,
            ])
            .values_panic([
                session.user_id.get().into(),
                device_id.into(),
                session.application_id.into(),
                session.token_hash.as_bytes().to_vec().into(),
                now.into(),
                session.expires_at.unix_millis().into(),
            ])
            .to_owned();
        tx.run().execute(&insert).await.map_err(|error| {
            if is_unique_violation(&error) {
                StoreError::new("create_session", "session token hash collision")
            } else {
                StoreError::new("create_session", error)
            }
        })?;
        tx.commit().await.op("create_session")
    }

    async fn find_session(&self, token_hash: &SecretHash) -> Result<Option<SessionRecord>, StoreError> {
        let query = Query::select()
            .column((SessionTokens::Table, SessionTokens::Id))
            .column((SessionTokens::Table, SessionTokens::UserId))
            .expr_as(Expr::col((Applications::Table, Applications::AppId)), "app_id")
            .column((SessionTokens::Table, SessionTokens::CreatedAt))
            .column((SessionTokens::Table, SessionTokens::ExpiresAt))
            .column((SessionTokens::Table, SessionTokens::RevokedAt))
            .from(SessionTokens::Table)
            .left_join(
                Applications::Table,
                Expr::col((Applications::Table, Applications::Id))
                    .equals((SessionTokens::Table, SessionTokens::ApplicationId)),
            )
            .and_where(Expr::col((SessionTokens::Table, SessionTokens::TokenHash)).eq(token_hash.as_bytes().to_vec()))
            .to_owned();
        let row: Option<SessionRow> = self.db().run().fetch_optional(&query).await.op("find_session")?;
        Ok(row.map(|row| SessionRecord {
            id: row.id,
            user_id: UserId::new(row.user_id),
            application_id: row.app_id,
            created_at: Timestamp::from_unix_millis(row.created_at),
            expires_at: Timestamp::from_unix_millis(row.expires_at),
            revoked: row.revoked_at.is_some(),
        }))
    }

    async fn end_session(&self, id: i64, push_token: Option<String>, now: Timestamp) -> Result<(), StoreError> {
        let mut tx = self.db().begin().await.op("end_session")?;
        let revoke = Query::update()
            .table(SessionTokens::Table)
            .value(SessionTokens::RevokedAt, now.unix_millis())
            .and_where(Expr::col(SessionTokens::Id).eq(id))
            .and_where(Expr::col(SessionTokens::RevokedAt).is_null())
            .returning_col(SessionTokens::UserId)
            .to_owned();
        #[derive(sqlx::FromRow)]
        struct Revoked {
            user_id: i64,
        }
        let revoked: Option<Revoked> = tx.run().fetch_optional(&revoke).await.op("end_session")?;
        if let (Some(revoked), Some(push_token)) = (revoked, push_token) {
            self.remove_push_handle(&mut tx, UserId::new(revoked.user_id), &push_token)
                .await?;
        }
        tx.commit().await.op("end_session")
    }

    async fn revoke_user_tokens(&self, user: UserId, now: Timestamp) -> Result<RevokedTokens, StoreError> {
        let mut tx = self.db().begin().await.op("revoke_user_tokens")?;
        let sessions = Query::update()
            .table(SessionTokens::Table)
            .value(SessionTokens::RevokedAt, now.unix_millis())
            .and_where(Expr::col(SessionTokens::UserId).eq(user.get()))
            .and_where(Expr::col(SessionTokens::RevokedAt).is_null())
            .to_owned();
        let session_tokens = tx.run().execute(&sessions).await.op("revoke_user_tokens")?;
        let codes = Query::update()
            .table(AccessCodes::Table)
            .value(AccessCodes::RevokedAt, now.unix_millis())
            .and_where(Expr::col(AccessCodes::UserId).eq(user.get()))
            .and_where(Expr::col(AccessCodes::RevokedAt).is_null())
            .to_owned();
        let access_codes = tx.run().execute(&codes).await.op("revoke_user_tokens")?;
        tx.commit().await.op("revoke_user_tokens")?;
        Ok(RevokedTokens {
            session_tokens,
            access_codes,
        })
    }
}
