//! Writes that a code's challenge and its effect share one transaction
//! for: issuing a code under the slot lock (with a pin-auth signup's fields
//! kept pending beside it), and consuming a correct code together with the
//! user, the pending signup and the access code it stands for.
//!
//! A code is never spent without its effect and never has its effect
//! without being spent: if any write fails, the transaction rolls back and
//! the challenge is still live for a retry.

use phonegate_domain::{
    StoreError, StoreResult as _,
    otp::{ChallengeId, NewChallenge},
    phone_login::{NewAccessCode, PendingAccessCode},
    user::{NewUser, PhoneVerification, User, UserId},
};
use sea_query::{Expr, ExprTrait as _, Query};

use super::{
    access_codes::access_code_insert,
    challenges::{insert_challenge, live_slot, supersede_live},
    db::{Tx, is_unique_violation},
    outbox::{SealedRow, insert_sealed},
    schema::{Addresses, OtpChallenges, PendingSignups, Users, state},
    store::{IdRow, MAX_LIVE_CONFLICTS, SqlStore},
    users::upsert_verified_in,
};

/// A pending signup as stored.
#[derive(sqlx::FromRow)]
struct PendingRow {
    first_name: Option<String>,
    last_name: Option<String>,
    has_address: bool,
    street: Option<String>,
    flat: Option<String>,
    building: Option<String>,
    district_id: Option<i64>,
    address_type: Option<String>,
}

impl SqlStore {
    /// Supersedes the live challenges of `challenge`'s purpose and phone,
    /// stores it, queues `row` linked to it and, for a signup, keeps the
    /// signup's fields pending with it: one transaction under the slot lock.
    pub(super) async fn replace_live_locked(
        &self,
        challenge: &NewChallenge,
        row: Option<&SealedRow>,
        signup: Option<&NewUser>,
    ) -> Result<ChallengeId, StoreError> {
        let wakes = row.is_some_and(SealedRow::wakes);
        let mut conflicts = 0;
        loop {
            let mut tx = self
                .db()
                .begin_locked(&live_slot(challenge))
                .await
                .op("replace_live_locked")?;
            tx.run()
                .execute(&supersede_live(challenge))
                .await
                .op("replace_live_locked")?;
            match tx.run().fetch_one::<IdRow, _>(&insert_challenge(challenge, row)).await {
                Ok(id) => {
                    let id = ChallengeId::new(id.id);
                    if let Some(signup) = signup {
                        insert_pending_signup(&mut tx, id, signup).await?;
                    }
                    if let Some(row) = row {
                        insert_sealed(&mut tx, row, Some(id)).await?;
                    }
                    tx.commit().await.op("replace_live_locked")?;
                    self.queued(wakes);
                    return Ok(id);
                }
                // A concurrent writer for the same purpose and phone slipped
                // past the slot lock (a single-statement writer, which does
                // not take it) and the unique index on live challenges caught
                // it. Run again: the newest request wins.
                Err(error) if is_unique_violation(&error) && conflicts < MAX_LIVE_CONFLICTS => {
                    conflicts += 1;
                }
                Err(error) => return Err(StoreError::new("replace_live_locked", error)),
            }
        }
    }

    /// `UserStore::consume_verifying`: the consume first, so a challenge
    /// that is no longer live writes nothing; then the user, the pending
    /// signup and the access code; all or nothing.
    pub(super) async fn consume_verifying_in_one_transaction(
        &self,
        challenge: ChallengeId,
        verification: PhoneVerification,
    ) -> Result<Option<(User, bool)>, StoreError> {
        let now = verification.verified_at;
        let mut tx = self.db().begin().await.op("consume_verifying_in_one_transaction")?;
        let consume = Query::update()
            .table(OtpChallenges::Table)
            .value(OtpChallenges::State, state::CONSUMED)
            .value(OtpChallenges::ClosedAt, now.unix_millis())
            .and_where(Expr::col(OtpChallenges::Id).eq(challenge.get()))
            .and_where(Expr::col(OtpChallenges::State).eq(state::LIVE))
            .to_owned();
        if tx
            .run()
            .execute(&consume)
            .await
            .op("consume_verifying_in_one_transaction")?
            != 1
            || (verification.requires_signup && !has_pending_signup(&mut tx, challenge).await?)
        {
            // Dropping the transaction rolls it back; nothing was written.
            return Ok(None);
        }
        let (mut user, created) = upsert_verified_in(&mut tx, &verification.phone, now).await?;
        // Only a user this verification creates takes a signup's fields: a
        // number that already has a user keeps its own (as pin-auth's
        // signup of a known number ignores them).
        if created {
            apply_pending_signup(&mut tx, challenge, &mut user, now).await?;
        }
        if let Some(code) = &verification.access_code {
            insert_access_code(&mut tx, user.id, code, now).await?;
        }
        tx.commit().await.op("consume_verifying_in_one_transaction")?;
        self.profile_changed(user.id);
        Ok(Some((user, created)))
    }
}

async fn has_pending_signup(tx: &mut Tx, challenge: ChallengeId) -> Result<bool, StoreError> {
    let select = Query::select()
        .column(PendingSignups::ChallengeId)
        .from(PendingSignups::Table)
        .and_where(Expr::col(PendingSignups::ChallengeId).eq(challenge.get()))
        .to_owned();
    let row: Option<ChallengeIdRow> = tx.run().fetch_optional(&select).await.op("has_pending_signup")?;
    Ok(row.is_some())
}

#[derive(sqlx::FromRow)]
struct ChallengeIdRow {
    #[allow(dead_code, reason = "only its presence is read")]
    challenge_id: i64,
}

async fn insert_pending_signup(tx: &mut Tx, challenge: ChallengeId, signup: &NewUser) -> Result<(), StoreError> {
    let address = signup.address.clone().unwrap_or_default();
    let insert = Query::insert()
        .into_table(PendingSignups::Table)
        .columns([
            PendingSignups::ChallengeId,
            PendingSignups::FirstName,
            PendingSignups::LastName,
            PendingSignups::HasAddress,
            PendingSignups::Street,
            PendingSignups::Flat,
            PendingSignups::Building,
            PendingSignups::DistrictId,
            PendingSignups::AddressType,
        ])
        .values_panic([
            challenge.get().into(),
            signup.first_name.clone().into(),
            signup.last_name.clone().into(),
            signup.address.is_some().into(),
            address.street.into(),
            address.flat.into(),
            address.building.into(),
            address.district_id.into(),
            address.address_type.into(),
        ])
        .to_owned();
    tx.run().execute(&insert).await.op("insert_pending_signup")?;
    Ok(())
}

/// Gives the new `user` the names and address its challenge's signup asked
/// for, if the challenge came from a signup.
async fn apply_pending_signup(
    tx: &mut Tx,
    challenge: ChallengeId,
    user: &mut User,
    now: phonegate_domain::time::Timestamp,
) -> Result<(), StoreError> {
    let select = Query::select()
        .columns([
            PendingSignups::FirstName,
            PendingSignups::LastName,
            PendingSignups::HasAddress,
            PendingSignups::Street,
            PendingSignups::Flat,
            PendingSignups::Building,
            PendingSignups::DistrictId,
            PendingSignups::AddressType,
        ])
        .from(PendingSignups::Table)
        .and_where(Expr::col(PendingSignups::ChallengeId).eq(challenge.get()))
        .to_owned();
    let Some(pending) = tx
        .run()
        .fetch_optional::<PendingRow, _>(&select)
        .await
        .op("apply_pending_signup")?
    else {
        return Ok(());
    };
    let names = Query::update()
        .table(Users::Table)
        .value(Users::FirstName, pending.first_name.clone())
        .value(Users::LastName, pending.last_name.clone())
        .and_where(Expr::col(Users::Id).eq(user.id.get()))
        .to_owned();
    tx.run().execute(&names).await.op("apply_pending_signup")?;
    user.first_name = pending.first_name;
    user.last_name = pending.last_name;
    if pending.has_address {
        let insert_address = Query::insert()
            .into_table(Addresses::Table)
            .columns([
                Addresses::UserId,
                Addresses::Street,
                Addresses::Flat,
                Addresses::Building,
                Addresses::DistrictId,
                Addresses::AddressType,
                Addresses::CreatedAt,
            ])
            .values_panic([
                user.id.get().into(),
                pending.street.into(),
                pending.flat.into(),
                pending.building.into(),
                pending.district_id.into(),
                pending.address_type.into(),
                now.unix_millis().into(),
            ])
            .to_owned();
        tx.run().execute(&insert_address).await.op("apply_pending_signup")?;
    }
    Ok(())
}

async fn insert_access_code(
    tx: &mut Tx,
    user: UserId,
    code: &PendingAccessCode,
    now: phonegate_domain::time::Timestamp,
) -> Result<(), StoreError> {
    let insert = access_code_insert(&NewAccessCode {
        user_id: user,
        code_hash: code.code_hash.clone(),
        device_id: code.device_id.clone(),
        created_at: now,
        expires_at: code.expires_at,
    });
    tx.run().execute(&insert).await.op("insert_access_code")?;
    Ok(())
}
