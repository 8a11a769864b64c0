//! Whether a phone number has been verified before, for the send guard's
//! budget reserve.

use async_trait::async_trait;
use phonegate_domain::{StoreError, StoreResult as _, phone::PhoneNumber, ports::VerifiedPhones};
use sea_query::{Expr, ExprTrait as _, Query};

use super::{schema::Users, store::SqlStore};

#[async_trait]
impl VerifiedPhones for SqlStore {
    /// One lookup by the unique index on `users.phone`: a user holds the
    /// number and `phone_verified_at` is set. Every surface that checks a
    /// code for a user's phone sets it (phone-verify and phone-login through
    /// `upsert_verified_phone`, the tokens surface through
    /// `set_verified_phone`, pin-auth in the transaction that consumes its
    /// pin), and nothing clears it.
    async fn has_verified(&self, phone: &PhoneNumber) -> Result<bool, StoreError> {
        let query = Query::select()
            .column(Users::Id)
            .from(Users::Table)
            .and_where(Expr::col(Users::Phone).eq(phone.as_str()))
            .and_where(Expr::col(Users::PhoneVerifiedAt).is_not_null())
            .to_owned();
        #[derive(sqlx::FromRow)]
        struct Found {
            #[expect(dead_code, reason = "only whether a row exists matters")]
            id: i64,
        }
        let found: Option<Found> = self.db().run().fetch_optional(&query).await.op("has_verified")?;
        Ok(found.is_some())
    }
}
