//! The tokens surface's stores on [`SqlStore`]: accounts and passwords,
//! password resets, applications, and session tokens with their devices.

use async_trait::async_trait;
use phonegate_domain::{
    StoreError, StoreResult as _,
    abuse::sign_in::LockoutPolicy,
    account::{Email, PasswordHash},
    application::{Application, ApplicationListing, NewApplication, Revocation},
    otp::SecretHash,
    outbox::Outgoing,
    phone::PhoneNumber,
    ports::{AccountError, AccountStore, ApplicationStore, RevokedTokens, SessionStore},
    time::Timestamp,
    token_auth::{Account, NewAccount, NewPasswordReset, NewSession, ResetOutcome, SessionRecord},
    user::UserId,
};
use sea_query::{Expr, ExprTrait as _, Query};

use super::{
    db::is_unique_violation,
    outbox::insert_outgoing,
    schema::{AccessCodes, Applications, PasswordResets, SessionTokens, SignInDevices, Users},
    store::{IdRow, SqlStore, USER_COLUMNS, UserRow},
};

#[derive(sqlx::FromRow)]
struct AccountRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: Option<String>,
}

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

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: i64,
    user_id: i64,
    app_id: Option<String>,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct ResetRow {
    id: i64,
    user_id: i64,
    expires_at: i64,
    used_at: Option<i64>,
}

/// Which unique constraint a violation names (Postgres names it; SQLite
/// names the column in its message).
fn violates(error: &sqlx::Error, column: &str) -> bool {
    error.as_database_error().is_some_and(|db| {
        db.is_unique_violation()
            && (db.constraint().is_some_and(|c| c.contains(column)) || db.message().contains(column))
    })
}

/// A failed account write: a taken email or phone, or the failure of `op`.
fn account_error(op: &'static str, error: sqlx::Error) -> AccountError {
    if violates(&error, "email") {
        AccountError::EmailTaken
    } else if violates(&error, "phone") {
        AccountError::PhoneTaken
    } else {
        AccountError::Store(StoreError::new(op, error))
    }
}

#[async_trait]
impl AccountStore for SqlStore {
    async fn find_by_email(&self, email: &Email) -> Result<Option<Account>, StoreError> {
        let query = Query::select()
            .columns(USER_COLUMNS)
            .column(Users::PasswordHash)
            .from(Users::Table)
            .and_where(Expr::col(Users::Email).eq(email.as_str()))
            .to_owned();
        let row: Option<AccountRow> = self.db().run().fetch_optional(&query).await.op("find_by_email")?;
        Ok(row.map(|row| Account {
            user: row.user.into_user(),
            password_hash: row.password_hash.map(PasswordHash::new),
        }))
    }

    async fn create_account(&self, account: NewAccount) -> Result<UserId, AccountError> {
        let insert = Query::insert()
            .into_table(Users::Table)
            .columns([
                Users::Email,
                Users::PasswordHash,
                Users::FirstName,
                Users::LastName,
                Users::Phone,
                Users::CreatedAt,
            ])
            .values_panic([
                account.email.as_str().into(),
                account.password_hash.as_str().into(),
                account.first_name.into(),
                account.last_name.into(),
                account.phone.as_ref().map(|p| p.as_str().to_owned()).into(),
                account.created_at.unix_millis().into(),
            ])
            .returning_col(Users::Id)
            .to_owned();
        let row: IdRow = self.db().run().fetch_one(&insert).await.map_err(|error| account_error("create_account", error))?;
        Ok(UserId::new(row.id))
    }

    async fn set_verified_phone(&self, user: UserId, phone: &PhoneNumber, now: Timestamp) -> Result<(), AccountError> {
        let update = Query::update()
            .table(Users::Table)
            .value(Users::Phone, phone.as_str())
            .value(Users::PhoneVerifiedAt, now.unix_millis())
            .and_where(Expr::col(Users::Id).eq(user.get()))
            .to_owned();
        // The unique index on users.phone refuses a phone of another user.
        self.db().run().execute(&update).await.map_err(|error| account_error("set_verified_phone", error))?;
        self.profile_changed(user);
        Ok(())
    }

    async fn create_password_reset(&self, reset: NewPasswordReset, mail: Outgoing) -> Result<(), StoreError> {
        let insert = Query::insert()
            .into_table(PasswordResets::Table)
            .columns([
                PasswordResets::UserId,
                PasswordResets::TokenHash,
                PasswordResets::CreatedAt,
                PasswordResets::ExpiresAt,
            ])
            .values_panic([
                reset.user_id.get().into(),
                reset.token_hash.as_bytes().to_vec().into(),
                reset.created_at.unix_millis().into(),
                reset.expires_at.unix_millis().into(),
            ])
            .to_owned();
        // Only the newest link works: an older one may sit in a mailbox that
        // is no longer the user's alone.
        let supersede = Query::update()
            .table(PasswordResets::Table)
            .value(PasswordResets::UsedAt, reset.created_at.unix_millis())
            .and_where(Expr::col(PasswordResets::UserId).eq(reset.user_id.get()))
            .and_where(Expr::col(PasswordResets::UsedAt).is_null())
            .to_owned();
        let mut tx = self.db().begin().await.op("create_password_reset")?;
        tx.run().execute(&supersede).await.op("create_password_reset")?;
        tx.run().execute(&insert).await.op("create_password_reset")?;
        let queued = insert_outgoing(&mut tx, self.sealer(), mail, reset.created_at).await?;
        tx.commit().await.op("create_password_reset")?;
        self.queued(queued);
        Ok(())
    }

    async fn complete_password_reset(
        &self,
        token_hash: &SecretHash,
        new_password: &PasswordHash,
        now: Timestamp,
    ) -> Result<ResetOutcome, StoreError> {
        let mut tx = self.db().begin().await.op("complete_password_reset")?;
        let find = Query::select()
            .columns([
                PasswordResets::Id,
                PasswordResets::UserId,
                PasswordResets::ExpiresAt,
                PasswordResets::UsedAt,
            ])
            .from(PasswordResets::Table)
            .and_where(Expr::col(PasswordResets::TokenHash).eq(token_hash.as_bytes().to_vec()))
            .to_owned();
        let Some(reset) = tx
            .run()
            .fetch_optional::<ResetRow, _>(&find)
            .await
            .op("complete_password_reset")?
        else {
            return Ok(ResetOutcome::NotFound);
        };
        if reset.used_at.is_some() {
            return Ok(ResetOutcome::AlreadyUsed);
        }
        if now.unix_millis() >= reset.expires_at {
            return Ok(ResetOutcome::Expired);
        }
        // Conditional, so two concurrent completions cannot both use it.
        let mark_used = Query::update()
            .table(PasswordResets::Table)
            .value(PasswordResets::UsedAt, now.unix_millis())
            .and_where(Expr::col(PasswordResets::Id).eq(reset.id))
            .and_where(Expr::col(PasswordResets::UsedAt).is_null())
            .to_owned();
        if tx.run().execute(&mark_used).await.op("complete_password_reset")? != 1 {
            return Ok(ResetOutcome::AlreadyUsed);
        }
        let set_password = Query::update()
            .table(Users::Table)
            .value(Users::PasswordHash, new_password.as_str())
            .value(Users::FailedSignIns, 0)
            .value(Users::LockedUntil, Option::<i64>::None)
            .and_where(Expr::col(Users::Id).eq(reset.user_id))
            .to_owned();
        tx.run().execute(&set_password).await.op("complete_password_reset")?;
        // Whoever knew the old password may hold a phone-login access code
        // of the account too; a reset ends those with the sessions.
        let revoke_codes = Query::update()
            .table(AccessCodes::Table)
            .value(AccessCodes::RevokedAt, now.unix_millis())
            .and_where(Expr::col(AccessCodes::UserId).eq(reset.user_id))
            .and_where(Expr::col(AccessCodes::RevokedAt).is_null())
            .to_owned();
        tx.run().execute(&revoke_codes).await.op("complete_password_reset")?;
        let revoke_sessions = Query::update()
            .table(SessionTokens::Table)
            .value(SessionTokens::RevokedAt, now.unix_millis())
            .and_where(Expr::col(SessionTokens::UserId).eq(reset.user_id))
            .and_where(Expr::col(SessionTokens::RevokedAt).is_null())
            .to_owned();
        tx.run().execute(&revoke_sessions).await.op("complete_password_reset")?;
        tx.commit().await.op("complete_password_reset")?;
        Ok(ResetOutcome::Done(UserId::new(reset.user_id)))
    }

    async fn find_password_reset(&self, token_hash: &SecretHash, now: Timestamp) -> Result<ResetOutcome, StoreError> {
        self.peek_password_reset(token_hash, now).await
    }

    async fn settle_sign_in(
        &self,
        email: &Email,
        password_matched: bool,
        now: Timestamp,
        lockout: &LockoutPolicy,
    ) -> Result<Option<UserId>, StoreError> {
        self.settle_sign_in_row(email, password_matched, now, lockout).await
    }
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
        let row: Option<ApplicationRow> = self.db().run().fetch_optional(&query).await.op("find_application_by_token")?;
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
