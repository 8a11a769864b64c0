//! [`AccountStore`] on [`SqlStore`]: the tokens surface's accounts and
//! passwords, sign-in lockout and password resets. Applications and session
//! tokens have their own files.

use async_trait::async_trait;
use phonegate_domain::{
    StoreError, StoreResult as _,
    abuse::sign_in::LockoutPolicy,
    account::{Email, PasswordHash},
    otp::SecretHash,
    outbox::Outgoing,
    phone::PhoneNumber,
    ports::{AccountError, AccountStore},
    time::Timestamp,
    token_auth::{Account, NewAccount, NewPasswordReset, ResetOutcome},
    user::UserId,
};
use sea_query::{Expr, ExprTrait as _, Query};

use super::{
    outbox::insert_outgoing,
    schema::{AccessCodes, PasswordResets, SessionTokens, Users},
    store::{IdRow, SqlStore, USER_COLUMNS, UserRow},
};

#[derive(sqlx::FromRow)]
struct AccountRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: Option<String>,
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
        let row: IdRow = self
            .db()
            .run()
            .fetch_one(&insert)
            .await
            .map_err(|error| account_error("create_account", error))?;
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
        self.db()
            .run()
            .execute(&update)
            .await
            .map_err(|error| account_error("set_verified_phone", error))?;
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
