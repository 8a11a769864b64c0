//! The statements of password sign-in's lockout and of the reset lookup
//! that precedes hashing, on [`SqlStore`] (the `AccountStore` port's
//! methods in `accounts` call these).

use phonegate_domain::{
    StoreError, StoreResult as _, abuse::sign_in::LockoutPolicy, account::Email, otp::SecretHash, time::Timestamp,
    token_auth::ResetOutcome, user::UserId,
};
use sea_query::{Expr, ExprTrait as _, Query};

use super::{
    schema::{PasswordResets, Users},
    store::{IdRow, SqlStore},
};

#[derive(sqlx::FromRow)]
struct ResetStateRow {
    user_id: i64,
    expires_at: i64,
    used_at: Option<i64>,
}

/// Milliseconds of a duration, saturated into SQL's BIGINT.
fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl SqlStore {
    /// One conditional `UPDATE` of the account's row, whatever the outcome:
    /// on a match the count and lock are cleared; otherwise the count grows
    /// by one and, from the policy's threshold on, `locked_until` is set to
    /// `now` plus the lock of the new count (a `CASE` over
    /// [`LockoutPolicy::steps`], the last step for every count beyond).
    /// Rows locked at `now` are not touched, so failures during a lock do
    /// not count and a right password does not unlock.
    pub(super) async fn settle_sign_in_row(
        &self,
        email: &Email,
        matched: bool,
        now: Timestamp,
        lockout: &LockoutPolicy,
    ) -> Result<Option<UserId>, StoreError> {
        let now_ms = now.unix_millis();
        let mut update = Query::update();
        update.table(Users::Table);
        if matched {
            update
                .value(Users::FailedSignIns, 0)
                .value(Users::LockedUntil, Option::<i64>::None);
        } else {
            let next = Expr::col(Users::FailedSignIns).add(1);
            update.value(Users::FailedSignIns, next.clone());
            let steps = lockout.steps();
            if let Some((&(last_failures, last_lock), earlier)) = steps.split_last() {
                let locked_until = earlier
                    .iter()
                    .fold(None::<sea_query::CaseStatement>, |case, &(failures, lock)| {
                        let when = next.clone().eq(i64::from(failures));
                        let until = now_ms.saturating_add(millis(lock));
                        Some(match case {
                            None => Expr::case(when, until),
                            Some(case) => case.case(when, until),
                        })
                    });
                let when = next.clone().gte(i64::from(last_failures));
                let until = now_ms.saturating_add(millis(last_lock));
                let locked_until = match locked_until {
                    None => Expr::case(when, until),
                    Some(case) => case.case(when, until),
                }
                .finally(Expr::col(Users::LockedUntil));
                update.value(Users::LockedUntil, locked_until);
            }
        }
        update
            .and_where(Expr::col(Users::Email).eq(email.as_str()))
            .and_where(
                Expr::col(Users::LockedUntil)
                    .is_null()
                    .or(Expr::col(Users::LockedUntil).lte(now_ms)),
            )
            .returning_col(Users::Id);
        let row: Option<IdRow> = self.db().run().fetch_optional(&update).await.op("settle_sign_in_row")?;
        Ok(row.map(|row| UserId::new(row.id)))
    }

    /// What completing the reset with `token_hash` would find at `now`.
    pub(super) async fn peek_password_reset(
        &self,
        token_hash: &SecretHash,
        now: Timestamp,
    ) -> Result<ResetOutcome, StoreError> {
        let find = Query::select()
            .columns([
                PasswordResets::UserId,
                PasswordResets::ExpiresAt,
                PasswordResets::UsedAt,
            ])
            .from(PasswordResets::Table)
            .and_where(Expr::col(PasswordResets::TokenHash).eq(token_hash.as_bytes().to_vec()))
            .to_owned();
        let row: Option<ResetStateRow> = self.db().run().fetch_optional(&find).await.op("peek_password_reset")?;
        Ok(match row {
            None => ResetOutcome::NotFound,
            Some(row) if row.used_at.is_some() => ResetOutcome::AlreadyUsed,
            Some(row) if now.unix_millis() >= row.expires_at => ResetOutcome::Expired,
            Some(row) => ResetOutcome::Done(UserId::new(row.user_id)),
        })
    }
}
