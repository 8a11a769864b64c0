//! [`ApplicationStore`] on SQL: registered applications and their
//! revocation.

use async_trait::async_trait;
use phonegate_domain::{
    StoreError, StoreResult as _,
    application::{Application, ApplicationListing, NewApplication, Revocation},
    otp::SecretHash,
    ports::ApplicationStore,
    time::Timestamp,
};
use sea_query::{Expr, ExprTrait as _, Query};

use super::{
    schema::{Applications, SessionTokens},
    store::{IdRow, SqlStore},
};

#[derive(sqlx::FromRow)]
struct ApplicationRow {
    id: i64,
    app_id: String,
    name: String,
}

impl From<ApplicationRow> for Application {
    fn from(row: ApplicationRow) -> Self {
        Self {
            id: row.id,
            app_id: row.app_id,
            name: row.name,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ApplicationListingRow {
    id: i64,
    app_id: String,
    name: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

#[async_trait]
impl ApplicationStore for SqlStore {
    async fn create_application(&self, application: NewApplication) -> Result<Application, StoreError> {
        let insert = Query::insert()
            .into_table(Applications::Table)
            .columns([
                Applications::AppId,
                Applications::Name,
                Applications::AuthTokenHash,
                Applications::CreatedAt,
            ])
            .values_panic([
                application.app_id.clone().into(),
                application.name.clone().into(),
                application.auth_token_hash.as_bytes().to_vec().into(),
                application.created_at.unix_millis().into(),
            ])
            .returning_col(Applications::Id)
            .to_owned();
        let row: IdRow = self.db().run().fetch_one(&insert).await.op("create_application")?;
        Ok(Application {
            id: row.id,
            app_id: application.app_id,
            name: application.name,
        })
    }

    async fn find_application(&self, app_id: &str) -> Result<Option<Application>, StoreError> {
        let query = Query::select()
            .columns([Applications::Id, Applications::AppId, Applications::Name])
            .from(Applications::Table)
            .and_where(Expr::col(Applications::AppId).eq(app_id))
            .and_where(Expr::col(Applications::RevokedAt).is_null())
            .to_owned();
        let row: Option<ApplicationRow> = self.db().run().fetch_optional(&query).await.op("find_application")?;
        Ok(row.map(Application::from))
    }

    async fn find_application_by_token(&self, token_hash: &SecretHash) -> Result<Option<Application>, StoreError> {
        let query = Query::select()
            .columns([Applications::Id, Applications::AppId, Applications::Name])
            .from(Applications::Table)
            .and_where(Expr::col(Applications::AuthTokenHash).eq(token_hash.as_bytes().to_vec()))
            .and_where(Expr::col(Applications::RevokedAt).is_null())
            .to_owned();
        let row: Option<ApplicationRow> = self
            .db()
            .run()
            .fetch_optional(&query)
            .await
            .op("find_application_by_token")?;
        Ok(row.map(Application::from))
    }

    async fn list_applications(&self) -> Result<Vec<ApplicationListing>, StoreError> {
        let query = Query::select()
            .columns([
                Applications::Id,
                Applications::AppId,
                Applications::Name,
                Applications::CreatedAt,
                Applications::RevokedAt,
            ])
            .from(Applications::Table)
            .order_by(Applications::Id, sea_query::Order::Asc)
            .to_owned();
        let rows: Vec<ApplicationListingRow> = self.db().run().fetch_all(&query).await.op("list_applications")?;
        Ok(rows
            .into_iter()
            .map(|row| ApplicationListing {
                application: Application {
                    id: row.id,
                    app_id: row.app_id,
                    name: row.name,
                },
                created_at: Timestamp::from_unix_millis(row.created_at),
                revoked_at: row.revoked_at.map(Timestamp::from_unix_millis),
            })
            .collect())
    }

    async fn revoke_application(&self, app_id: &str, now: Timestamp) -> Result<Revocation, StoreError> {
        let mut tx = self.db().begin().await.op("revoke_application")?;
        // Conditional, so two concurrent revocations report one revocation.
        let revoke = Query::update()
            .table(Applications::Table)
            .value(Applications::RevokedAt, now.unix_millis())
            .and_where(Expr::col(Applications::AppId).eq(app_id))
            .and_where(Expr::col(Applications::RevokedAt).is_null())
            .returning_col(Applications::Id)
            .to_owned();
        let Some(revoked) = tx
            .run()
            .fetch_optional::<IdRow, _>(&revoke)
            .await
            .op("revoke_application")?
        else {
            let exists = Query::select()
                .column(Applications::Id)
                .from(Applications::Table)
                .and_where(Expr::col(Applications::AppId).eq(app_id))
                .to_owned();
            let found: Option<IdRow> = tx.run().fetch_optional(&exists).await.op("revoke_application")?;
            return Ok(if found.is_some() {
                Revocation::AlreadyRevoked
            } else {
                Revocation::NotFound
            });
        };
        let sessions = Query::update()
            .table(SessionTokens::Table)
            .value(SessionTokens::RevokedAt, now.unix_millis())
            .and_where(Expr::col(SessionTokens::ApplicationId).eq(revoked.id))
            .and_where(Expr::col(SessionTokens::RevokedAt).is_null())
            .to_owned();
        let session_tokens = tx.run().execute(&sessions).await.op("revoke_application")?;
        tx.commit().await.op("revoke_application")?;
        Ok(Revocation::Revoked { session_tokens })
    }
}
