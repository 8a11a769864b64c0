//! [`ChallengeStore`] on SQL: OTP challenges, superseded, spent and
//! consumed by conditional writes.

use async_trait::async_trait;
use phonegate_domain::{
    StoreError, StoreResult as _,
    otp::{AttemptOutcome, ChallengeAttempt, ChallengeId, NewChallenge, SecretHash},
    outbox::Outgoing,
    phone::PhoneNumber,
    ports::ChallengeStore,
    time::Timestamp,
    user::UserId,
};
use sea_query::{
    Alias, CommonTableExpression, Cond, Expr, ExprTrait as _, InsertStatement, Order, Query, SubQueryStatement,
    UpdateStatement, WithClause, WithQuery,
};

use super::{
    db::{Backend, is_unique_violation},
    outbox::{OUTBOX_COLUMNS, SealedRow},
    schema::{OtpChallenges, Outbox, state},
    store::{IdRow, SqlStore},
};

#[derive(sqlx::FromRow)]
struct AttemptRow {
    id: i64,
    phone: String,
    user_id: Option<i64>,
    device_binding: Option<String>,
    code_hash: Vec<u8>,
    attempts: i32,
    max_attempts: i32,
    expires_at: i64,
    hosted: Option<bool>,
    provider: Option<String>,
}

/// The provider of the newest message of the challenge being updated that
/// a provider has tried (decoys have none), as `provider`.
const LAST_PROVIDER: &str = "(SELECT outbox.provider FROM outbox WHERE outbox.challenge_id = otp_challenges.id \
     AND outbox.provider IS NOT NULL ORDER BY outbox.id DESC LIMIT 1) AS provider";

#[derive(sqlx::FromRow)]
struct ChallengeStateRow {
    state: String,
    expires_at: i64,
}

/// The lock that serialises issuers for one purpose and phone, so that the
/// supersede-then-insert of one never interleaves with another's.
pub(super) fn live_slot(challenge: &NewChallenge) -> String {
    format!(
        "otp_challenges:{}:{}",
        challenge.purpose.as_str(),
        challenge.phone.as_str()
    )
}

/// Closes the live challenges of one purpose and phone, and any live
/// challenge with the same lookup hash (the tokens surface finds a user's
/// phone confirmation by the user, whichever phone it is for).
pub(super) fn supersede_live(challenge: &NewChallenge) -> UpdateStatement {
    Query::update()
        .table(OtpChallenges::Table)
        .value(OtpChallenges::State, state::SUPERSEDED)
        .value(OtpChallenges::ClosedAt, challenge.created_at.unix_millis())
        .and_where(Expr::col(OtpChallenges::State).eq(state::LIVE))
        .cond_where(
            Cond::any()
                .add(
                    Expr::col(OtpChallenges::Purpose)
                        .eq(challenge.purpose.as_str())
                        .and(Expr::col(OtpChallenges::Phone).eq(challenge.phone.as_str())),
                )
                .add(Expr::col(OtpChallenges::LookupHash).eq(challenge.lookup_hash.as_bytes().to_vec())),
        )
        .to_owned()
}

/// The columns a challenge is written with, in the order of [`challenge_values`].
const CHALLENGE_COLUMNS: [OtpChallenges; 14] = [
    OtpChallenges::Purpose,
    OtpChallenges::Phone,
    OtpChallenges::UserId,
    OtpChallenges::Channel,
    OtpChallenges::DeviceBinding,
    OtpChallenges::LookupHash,
    OtpChallenges::CodeHash,
    OtpChallenges::Attempts,
    OtpChallenges::MaxAttempts,
    OtpChallenges::State,
    OtpChallenges::CreatedAt,
    OtpChallenges::ExpiresAt,
    OtpChallenges::Hosted,
    OtpChallenges::SentPrefix,
];

/// The challenge's values; `message` is the row written with it, whose
/// kind says whether a provider makes (and must check) its code. The sent
/// prefix is written only with a message that is really queued, so decoys
/// and test numbers never count as sends, whatever the caller set.
fn challenge_values(challenge: &NewChallenge, message: Option<&SealedRow>) -> [Expr; 14] {
    let sent_prefix = challenge
        .sent_prefix
        .clone()
        .filter(|_| message.is_some_and(SealedRow::wakes));
    [
        challenge.purpose.as_str().into(),
        challenge.phone.as_str().into(),
        challenge.user_id.map(UserId::get).into(),
        challenge.channel.as_str().into(),
        challenge.device_binding.clone().into(),
        challenge.lookup_hash.as_bytes().to_vec().into(),
        challenge.code_hash.as_bytes().to_vec().into(),
        0i32.into(),
        i32::try_from(challenge.max_attempts).unwrap_or(i32::MAX).into(),
        state::LIVE.into(),
        challenge.created_at.unix_millis().into(),
        challenge.expires_at.unix_millis().into(),
        message.is_some_and(SealedRow::carries_hosted_code).into(),
        sent_prefix.into(),
    ]
}

pub(super) fn insert_challenge(challenge: &NewChallenge, message: Option<&SealedRow>) -> InsertStatement {
    Query::insert()
        .into_table(OtpChallenges::Table)
        .columns(CHALLENGE_COLUMNS)
        .values_panic(challenge_values(challenge, message))
        .returning_col(OtpChallenges::Id)
        .to_owned()
}

/// Postgres only: supersede the live challenges, insert the new one and
/// queue its message in one statement (data-modifying CTEs), which is one
/// round trip and one implicit transaction instead of five round trips.
///
/// ```sql
/// WITH superseded AS (UPDATE otp_challenges SET state = 'superseded' … RETURNING id),
///      challenge AS (INSERT INTO otp_challenges (…)
///                    SELECT … FROM (SELECT COUNT(*) FROM superseded) AS s RETURNING id),
///      queued AS (INSERT INTO outbox (…) SELECT … FROM challenge RETURNING id)
/// SELECT id FROM challenge
/// ```
///
/// The insert reads `superseded` first, so the old live row is closed
/// before the new one meets the unique index of live challenges (a row
/// updated earlier in the same transaction no longer conflicts). A
/// concurrent writer for the same slot can still commit a live row this
/// statement's snapshot does not see; the unique index then refuses this
/// one, and the caller retries under the slot lock.
fn replace_live_statement(challenge: &NewChallenge, outbox: Option<&SealedRow>) -> Result<WithQuery, StoreError> {
    let cte = |name: &str, query: SubQueryStatement| {
        CommonTableExpression::new()
            .query(query)
            .table_name(Alias::new(name))
            .to_owned()
    };
    let malformed = |_| StoreError::new("replace_live", "could not build the challenge statement");
    let superseded = supersede_live(challenge).returning_col(OtpChallenges::Id).to_owned();
    let after_superseding = Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from(Alias::new("superseded"))
        .to_owned();
    let insert = Query::insert()
        .into_table(OtpChallenges::Table)
        .columns(CHALLENGE_COLUMNS)
        .select_from(
            Query::select()
                .exprs(challenge_values(challenge, outbox))
                .from_subquery(after_superseding, Alias::new("s"))
                .to_owned(),
        )
        .map_err(malformed)?
        .returning_col(OtpChallenges::Id)
        .to_owned();
    let mut with = WithClause::new();
    with.cte(cte("superseded", superseded.into()))
        .cte(cte("challenge", insert.into()));
    if let Some(row) = outbox {
        let queue = Query::insert()
            .into_table(Outbox::Table)
            .columns(OUTBOX_COLUMNS)
            .select_from(
                Query::select()
                    .exprs(row.values_with_challenge(Expr::col(Alias::new("id"))))
                    .from(Alias::new("challenge"))
                    .to_owned(),
            )
            .map_err(malformed)?
            .returning_col(Outbox::Id)
            .to_owned();
        with.cte(cte("queued", queue.into()));
    }
    Ok(with.query(
        Query::select()
            .column(OtpChallenges::Id)
            .from(Alias::new("challenge"))
            .to_owned(),
    ))
}

#[async_trait]
impl ChallengeStore for SqlStore {
    async fn replace_live(&self, challenge: NewChallenge, outgoing: Outgoing) -> Result<ChallengeId, StoreError> {
        let row = SealedRow::of(&self.sealer, outgoing, challenge.created_at)?;
        let wakes = row.as_ref().is_some_and(SealedRow::wakes);
        if self.db.backend() == Backend::Postgres {
            let statement = replace_live_statement(&challenge, row.as_ref())?;
            match self.db.run().fetch_one::<IdRow, _>(&statement).await {
                Ok(id) => {
                    self.queued(wakes);
                    return Ok(ChallengeId::new(id.id));
                }
                // A concurrent writer for the same slot committed first (see
                // `replace_live_statement`); nothing was written, and the
                // locked transaction below serialises with the others.
                Err(error) if is_unique_violation(&error) => {}
                Err(error) => return Err(StoreError::new("replace_live", error)),
            }
        }
        self.replace_live_locked(&challenge, row.as_ref(), None).await
    }

    async fn spend_attempt(&self, lookup_hash: &SecretHash, now: Timestamp) -> Result<AttemptOutcome, StoreError> {
        let lookup = lookup_hash.as_bytes().to_vec();
        // One round trip in the common case: the WHERE clause re-checks
        // every condition, so concurrent attempts are counted exactly.
        let spend = Query::update()
            .table(OtpChallenges::Table)
            .value(OtpChallenges::Attempts, Expr::col(OtpChallenges::Attempts).add(1))
            .and_where(Expr::col(OtpChallenges::LookupHash).eq(lookup.clone()))
            .and_where(Expr::col(OtpChallenges::State).eq(state::LIVE))
            .and_where(Expr::col(OtpChallenges::ExpiresAt).gt(now.unix_millis()))
            .and_where(Expr::col(OtpChallenges::Attempts).lt(Expr::col(OtpChallenges::MaxAttempts)))
            // The provider that last tried the challenge's message, for
            // the conversion metrics: one indexed look-up (outbox_challenge)
            // in the same statement, so a check costs no extra round trip.
            .returning(Query::returning().exprs([
                Expr::col(OtpChallenges::Id),
                Expr::col(OtpChallenges::Phone),
                Expr::col(OtpChallenges::UserId),
                Expr::col(OtpChallenges::DeviceBinding),
                Expr::col(OtpChallenges::CodeHash),
                Expr::col(OtpChallenges::Attempts),
                Expr::col(OtpChallenges::MaxAttempts),
                Expr::col(OtpChallenges::ExpiresAt),
                Expr::col(OtpChallenges::Hosted),
                Expr::cust(LAST_PROVIDER),
            ]))
            .to_owned();
        if let Some(row) = self
            .db
            .run()
            .fetch_optional::<AttemptRow, _>(&spend)
            .await
            .op("spend_attempt")?
        {
            let phone = PhoneNumber::parse_e164(&row.phone)
                .map_err(|_| StoreError::new("spend_attempt", format!("challenge {} has a malformed phone", row.id)))?;
            return Ok(AttemptOutcome::Spent(ChallengeAttempt {
                id: ChallengeId::new(row.id),
                phone,
                user_id: row.user_id.map(UserId::new),
                device_binding: row.device_binding,
                code_hash: SecretHash::from_bytes(row.code_hash),
                attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
                max_attempts: u32::try_from(row.max_attempts).unwrap_or(0),
                expires_at: Timestamp::from_unix_millis(row.expires_at),
                hosted: row.hosted,
                provider: row.provider,
            }));
        }
        // Nothing was spent: find out why, for the caller's error message,
        // from the latest challenge with this lookup hash.
        let why = Query::select()
            .columns([OtpChallenges::State, OtpChallenges::ExpiresAt])
            .from(OtpChallenges::Table)
            .and_where(Expr::col(OtpChallenges::LookupHash).eq(lookup))
            .order_by(OtpChallenges::Id, Order::Desc)
            .limit(1)
            .to_owned();
        let row: Option<ChallengeStateRow> = self.db.run().fetch_optional(&why).await.op("spend_attempt")?;
        Ok(match row {
            None => AttemptOutcome::NotFound,
            Some(row) if row.state != state::LIVE => AttemptOutcome::Closed,
            Some(row) if row.expires_at <= now.unix_millis() => AttemptOutcome::Expired,
            Some(_) => AttemptOutcome::Exhausted,
        })
    }

    async fn consume(&self, id: ChallengeId, now: Timestamp) -> Result<bool, StoreError> {
        let consume = Query::update()
            .table(OtpChallenges::Table)
            .value(OtpChallenges::State, state::CONSUMED)
            .value(OtpChallenges::ClosedAt, now.unix_millis())
            .and_where(Expr::col(OtpChallenges::Id).eq(id.get()))
            .and_where(Expr::col(OtpChallenges::State).eq(state::LIVE))
            .to_owned();
        let affected = self.db.run().execute(&consume).await.op("consume")?;
        Ok(affected == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonegate_domain::otp::{Channel, Purpose};
    use sea_query::PostgresQueryBuilder;

    #[test]
    fn the_postgres_issue_statement_closes_the_old_challenge_before_inserting_and_queues_once() {
        let challenge = NewChallenge {
            purpose: Purpose::PinAuth,
            phone: PhoneNumber::parse_e164("+85261234567").unwrap(),
            user_id: None,
            channel: Channel::Sms,
            device_binding: None,
            lookup_hash: SecretHash::from_bytes(vec![1; 32]),
            code_hash: SecretHash::from_bytes(vec![2; 32]),
            max_attempts: 5,
            created_at: Timestamp::from_unix_millis(1),
            expires_at: Timestamp::from_unix_millis(2),
            sent_prefix: Some("852".into()),
        };
        let (sql, _) = replace_live_statement(&challenge, None)
            .unwrap()
            .build(PostgresQueryBuilder);
        assert!(
            sql.starts_with(r#"WITH "superseded" AS (UPDATE "otp_challenges""#),
            "{sql}"
        );
        assert!(
            sql.contains(r#"FROM (SELECT COUNT(*) FROM "superseded") AS "s" RETURNING "id")"#),
            "the insert reads the superseded rows first: {sql}"
        );
        assert!(!sql.contains(r#""outbox""#), "nothing to queue: {sql}");
        assert!(sql.ends_with(r#"SELECT "id" FROM "challenge""#), "{sql}");
    }
}
