//! [`SqlStore`]: the domain's store ports on SQLite or Postgres.
//!
//! Each port method is one statement or one transaction. The guarantees the
//! ports promise (one winner per code, bounded attempts) come from
//! conditional `UPDATE`s whose `WHERE` clause re-checks the state, so they
//! hold under any concurrency on either backend.

use async_trait::async_trait;
use phonegate_domain::{
    StoreError, StoreResult as _,
    device::{PushHandle, PushPlatform},
    otp::{AttemptOutcome, ChallengeAttempt, ChallengeId, NewChallenge, SecretHash},
    outbox::Outgoing,
    phone::PhoneNumber,
    phone_login::{AccessCodeRecord, NewAccessCode},
    ports::{AccessCodeStore, ChallengeStore, DeviceStore, Readiness, UserStore},
    time::Timestamp,
    user::{Address, NewUser, Permission, PhoneVerification, User, UserId, UserProfile},
};
use sea_query::{
    Alias, CommonTableExpression, Cond, Expr, ExprTrait as _, InsertStatement, OnConflict, Order, Query,
    SubQueryStatement, UpdateStatement, WithClause, WithQuery,
};

use super::{
    db::{Backend, Db, Tx, is_unique_violation},
    outbox::{OUTBOX_COLUMNS, OutboxSignal, SealedRow, Sealer},
    profile_cache::ProfileCache,
    schema::{AccessCodes, Addresses, Devices, OtpChallenges, Outbox, Permissions, ServerSecrets, Users, state},
};

/// The SQL implementation of every store port.
#[derive(Debug, Clone)]
pub struct SqlStore {
    db: Db,
    sealer: Sealer,
    signal: OutboxSignal,
    profiles: ProfileCache,
}

impl SqlStore {
    /// A store whose outbox payloads are sealed with a key of this process
    /// only; the service sets the key derived from its secret with
    /// [`SqlStore::with_sealer`], so every instance can read every row.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            sealer: Sealer::ephemeral(),
            signal: OutboxSignal::default(),
            profiles: ProfileCache::new(std::time::Duration::ZERO),
        }
    }

    pub fn with_sealer(self, sealer: Sealer) -> Self {
        Self { sealer, ..self }
    }

    /// Keeps each profile read for `ttl` (see `ProfileCache`: this
    /// process's own writes are seen at once, other instances' within
    /// `ttl`). Zero, the default, reads every profile from the database.
    pub fn with_profile_cache(self, ttl: std::time::Duration) -> Self {
        Self {
            profiles: ProfileCache::new(ttl),
            ..self
        }
    }

    /// Forgets the cached profile of `user`, after a write to it committed.
    pub(super) fn profile_changed(&self, user: UserId) {
        self.profiles.forget(user);
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub(super) fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// What wakes this process's dispatchers when a message is queued.
    pub fn outbox_signal(&self) -> &OutboxSignal {
        &self.signal
    }

    /// Wakes a dispatcher after a transaction that queued a message has
    /// committed.
    pub(super) fn queued(&self, queued: bool) {
        if queued {
            self.signal.wake();
        }
    }

    /// The profile of `id` from the database.
    async fn read_profile(&self, id: UserId) -> Result<Option<UserProfile>, StoreError> {
        // One round trip for the user, their addresses and their permissions:
        // every authenticated read (current_user_profile, pin-auth's verify)
        // needs all three.
        let parts: Vec<ProfilePart> = self.db.run().fetch_all(&profile_query(id)).await.op("read_profile")?;
        let mut user = None;
        let (mut addresses, mut permissions) = (Vec::new(), Vec::new());
        for part in parts {
            match part.kind.as_str() {
                "user" => {
                    user = Some(
                        UserRow {
                            id: part.id,
                            phone: part.text1,
                            email: part.text2,
                            first_name: part.text3,
                            last_name: part.text4,
                        }
                        .into_user(),
                    );
                }
                "address" => addresses.push(Address {
                    id: part.id,
                    user_id: id,
                    street: part.text1,
                    flat: part.text2,
                    building: part.text3,
                    district_id: part.number,
                    address_type: part.text4,
                }),
                _ => permissions.push(Permission {
                    id: part.id,
                    name: part.text1.unwrap_or_default(),
                }),
            }
        }
        let Some(user) = user else {
            return Ok(None);
        };
        addresses.sort_by_key(|address| address.id);
        permissions.sort_by_key(|permission| permission.id);
        Ok(Some(UserProfile {
            user,
            addresses,
            permissions,
        }))
    }

    /// The secret named `name`, created from `fresh` if there is none yet.
    /// Concurrent callers all end up with the same value.
    pub async fn secret_or_insert(&self, name: &str, fresh: Vec<u8>, now: Timestamp) -> Result<Vec<u8>, StoreError> {
        let insert = Query::insert()
            .into_table(ServerSecrets::Table)
            .columns([ServerSecrets::Name, ServerSecrets::Value, ServerSecrets::CreatedAt])
            .values_panic([name.into(), fresh.into(), now.unix_millis().into()])
            .on_conflict(OnConflict::column(ServerSecrets::Name).do_nothing().to_owned())
            .to_owned();
        self.db.run().execute(&insert).await.op("secret_or_insert")?;
        let select = Query::select()
            .column(ServerSecrets::Value)
            .from(ServerSecrets::Table)
            .and_where(Expr::col(ServerSecrets::Name).eq(name))
            .to_owned();
        let row: SecretRow = self.db.run().fetch_one(&select).await.op("secret_or_insert")?;
        Ok(row.value)
    }
}

#[derive(sqlx::FromRow)]
struct SecretRow {
    value: Vec<u8>,
}

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: i64,
    phone: Option<String>,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

impl UserRow {
    pub(super) fn into_user(self) -> User {
        User {
            id: UserId::new(self.id),
            // Only validated numbers are ever written, so this cannot fail;
            // a row edited by hand into garbage reads as "no phone".
            phone: self.phone.and_then(|phone| PhoneNumber::parse_e164(&phone).ok()),
            email: self.email,
            first_name: self.first_name,
            last_name: self.last_name,
        }
    }
}

/// One row of [`profile_query`]: the user, an address or a permission, in
/// columns wide enough for each (`text1`..`text4` and `number` mean what
/// the query's comments say for each kind).
#[derive(sqlx::FromRow)]
struct ProfilePart {
    kind: String,
    id: i64,
    number: Option<i64>,
    text1: Option<String>,
    text2: Option<String>,
    text3: Option<String>,
    text4: Option<String>,
}

/// The user, their addresses and their permissions as one `UNION ALL`
/// (portable to both backends, unlike JSON aggregation). The rows come in
/// no particular order; the caller sorts them.
fn profile_query(id: UserId) -> sea_query::SelectStatement {
    use sea_query::{Alias, UnionType};
    // Typed NULLs: Postgres takes each column's type from the first SELECT.
    let no_number = || Expr::cust("CAST(NULL AS BIGINT)");
    let no_text = || Expr::cust("CAST(NULL AS TEXT)");
    let columns = ["kind", "id", "number", "text1", "text2", "text3", "text4"];
    let select = |exprs: [Expr; 7]| {
        let mut select = Query::select();
        for (expr, alias) in exprs.into_iter().zip(columns) {
            select.expr_as(expr, Alias::new(alias));
        }
        select
    };
    // The user: phone, email, first name, last name.
    let mut query = select([
        Expr::val("user"),
        Expr::col((Users::Table, Users::Id)),
        no_number(),
        Expr::col((Users::Table, Users::Phone)),
        Expr::col((Users::Table, Users::Email)),
        Expr::col((Users::Table, Users::FirstName)),
        Expr::col((Users::Table, Users::LastName)),
    ])
    .from(Users::Table)
    .and_where(Expr::col((Users::Table, Users::Id)).eq(id.get()))
    .to_owned();
    // Addresses: district id; street, flat, building, address type.
    let addresses = select([
        Expr::val("address"),
        Expr::col((Addresses::Table, Addresses::Id)),
        Expr::col((Addresses::Table, Addresses::DistrictId)),
        Expr::col((Addresses::Table, Addresses::Street)),
        Expr::col((Addresses::Table, Addresses::Flat)),
        Expr::col((Addresses::Table, Addresses::Building)),
        Expr::col((Addresses::Table, Addresses::AddressType)),
    ])
    .from(Addresses::Table)
    .and_where(Expr::col((Addresses::Table, Addresses::UserId)).eq(id.get()))
    .to_owned();
    // Permissions: name.
    let permissions = select([
        Expr::val("permission"),
        Expr::col((Permissions::Table, Permissions::Id)),
        no_number(),
        Expr::col((Permissions::Table, Permissions::Name)),
        no_text(),
        no_text(),
        no_text(),
    ])
    .from(Permissions::Table)
    .and_where(Expr::col((Permissions::Table, Permissions::UserId)).eq(id.get()))
    .to_owned();
    query
        .union(UnionType::All, addresses)
        .union(UnionType::All, permissions);
    query
}

#[derive(sqlx::FromRow)]
pub(super) struct IdRow {
    pub(super) id: i64,
}

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
}

#[derive(sqlx::FromRow)]
struct ChallengeStateRow {
    state: String,
    expires_at: i64,
}

/// How often a write that raced a concurrent one for the same live slot is
/// run again before giving up.
pub(super) const MAX_LIVE_CONFLICTS: u32 = 3;

pub(super) const USER_COLUMNS: [Users; 5] = [Users::Id, Users::Phone, Users::Email, Users::FirstName, Users::LastName];

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
const CHALLENGE_COLUMNS: [OtpChallenges; 12] = [
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
];

fn challenge_values(challenge: &NewChallenge) -> [Expr; 12] {
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
    ]
}

pub(super) fn insert_challenge(challenge: &NewChallenge) -> InsertStatement {
    Query::insert()
        .into_table(OtpChallenges::Table)
        .columns(CHALLENGE_COLUMNS)
        .values_panic(challenge_values(challenge))
        .returning_col(OtpChallenges::Id)
        .to_owned()
}

/// A new user who has just verified `phone` at `now` (the caller adds what
/// happens when the phone has a user already).
fn insert_verified_phone(phone: &PhoneNumber, now: Timestamp) -> InsertStatement {
    Query::insert()
        .into_table(Users::Table)
        .columns([Users::Phone, Users::PhoneVerifiedAt, Users::CreatedAt])
        .values_panic([
            phone.as_str().into(),
            now.unix_millis().into(),
            now.unix_millis().into(),
        ])
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
                .exprs(challenge_values(challenge))
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
impl UserStore for SqlStore {
    async fn find_by_phone(&self, phone: &PhoneNumber) -> Result<Option<User>, StoreError> {
        let query = Query::select()
            .columns(USER_COLUMNS)
            .from(Users::Table)
            .and_where(Expr::col(Users::Phone).eq(phone.as_str()))
            .to_owned();
        let row: Option<UserRow> = self.db.run().fetch_optional(&query).await.op("find_by_phone")?;
        Ok(row.map(UserRow::into_user))
    }

    async fn profile(&self, id: UserId) -> Result<Option<UserProfile>, StoreError> {
        let pending = match self.profiles.get(id) {
            Ok(cached) => return Ok(Some(cached)),
            Err(pending) => pending,
        };
        let profile = self.read_profile(id).await?;
        if let Some(profile) = &profile {
            self.profiles.keep(id, pending, profile);
        }
        Ok(profile)
    }

    async fn store_signup(
        &self,
        signup: NewUser,
        challenge: NewChallenge,
        outgoing: Outgoing,
    ) -> Result<ChallengeId, StoreError> {
        let row = SealedRow::of(&self.sealer, outgoing, challenge.created_at)?;
        self.replace_live_locked(&challenge, row.as_ref(), Some(&signup)).await
    }

    async fn consume_verifying(
        &self,
        challenge: ChallengeId,
        verification: PhoneVerification,
    ) -> Result<Option<(User, bool)>, StoreError> {
        self.consume_verifying_in_one_transaction(challenge, verification).await
    }

    async fn upsert_verified_phone(&self, phone: &PhoneNumber, now: Timestamp) -> Result<(User, bool), StoreError> {
        if self.db.backend() == Backend::Postgres {
            // One round trip: the statement is its own transaction.
            let row: UpsertedRow = self
                .db
                .run()
                .fetch_one(&upsert_verified_statement(phone, now))
                .await
                .op("upsert_verified_phone")?;
            return Ok((row.user.into_user(), row.created));
        }
        let mut tx = self.db.begin().await.op("upsert_verified_phone")?;
        let (user, created) = upsert_verified_in(&mut tx, phone, now).await?;
        tx.commit().await.op("upsert_verified_phone")?;
        Ok((user, created))
    }
}

/// Postgres only: insert the user of a verified phone, or mark the existing
/// one verified (keeping the first verification time), and return the row.
/// A row this statement inserted has no xmax; one it updated carries this
/// transaction's id there.
fn upsert_verified_statement(phone: &PhoneNumber, now: Timestamp) -> InsertStatement {
    insert_verified_phone(phone, now)
        .on_conflict(
            OnConflict::column(Users::Phone)
                .value(
                    Users::PhoneVerifiedAt,
                    Expr::cust("COALESCE(users.phone_verified_at, excluded.phone_verified_at)"),
                )
                .to_owned(),
        )
        .returning(
            Query::returning().exprs(
                USER_COLUMNS
                    .into_iter()
                    .map(Expr::col)
                    .chain([Expr::cust("(xmax = 0) AS created")]),
            ),
        )
        .to_owned()
}

/// [`UserStore::upsert_verified_phone`] inside `tx`: one statement on
/// Postgres, three on SQLite (which has no `xmax` to tell an insert from an
/// update).
pub(super) async fn upsert_verified_in(
    tx: &mut Tx,
    phone: &PhoneNumber,
    now: Timestamp,
) -> Result<(User, bool), StoreError> {
    if matches!(tx, Tx::Postgres(_)) {
        let row: UpsertedRow = tx
            .run()
            .fetch_one(&upsert_verified_statement(phone, now))
            .await
            .op("upsert_verified_in")?;
        return Ok((row.user.into_user(), row.created));
    }
    let insert = insert_verified_phone(phone, now)
        .on_conflict(OnConflict::column(Users::Phone).do_nothing().to_owned())
        .to_owned();
    let created = tx.run().execute(&insert).await.op("upsert_verified_in")? == 1;
    if !created {
        let verify = Query::update()
            .table(Users::Table)
            .value(Users::PhoneVerifiedAt, now.unix_millis())
            .and_where(Expr::col(Users::Phone).eq(phone.as_str()))
            .and_where(Expr::col(Users::PhoneVerifiedAt).is_null())
            .to_owned();
        tx.run().execute(&verify).await.op("upsert_verified_in")?;
    }
    let select = Query::select()
        .columns(USER_COLUMNS)
        .from(Users::Table)
        .and_where(Expr::col(Users::Phone).eq(phone.as_str()))
        .to_owned();
    let row: UserRow = tx.run().fetch_one(&select).await.op("upsert_verified_in")?;
    Ok((row.into_user(), created))
}

#[derive(sqlx::FromRow)]
pub(super) struct UpsertedRow {
    #[sqlx(flatten)]
    user: UserRow,
    created: bool,
}

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
            .returning(Query::returning().columns([
                OtpChallenges::Id,
                OtpChallenges::Phone,
                OtpChallenges::UserId,
                OtpChallenges::DeviceBinding,
                OtpChallenges::CodeHash,
                OtpChallenges::Attempts,
                OtpChallenges::MaxAttempts,
                OtpChallenges::ExpiresAt,
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

#[async_trait]
impl Readiness for SqlStore {
    async fn check(&self) -> Result<(), StoreError> {
        self.db.ping().await.op("check")
    }
}

impl SqlStore {
    /// Removes `user`'s push registration `handle` (any platform), inside `tx`.
    pub(super) async fn remove_push_handle(
        &self,
        tx: &mut super::db::Tx,
        user: UserId,
        handle: &str,
    ) -> Result<(), StoreError> {
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

    /// Grants `name` to `user` (admin tooling; pin-auth lists permissions).
    pub async fn grant_permission(&self, user: UserId, name: &str) -> Result<(), StoreError> {
        let insert = Query::insert()
            .into_table(Permissions::Table)
            .columns([Permissions::UserId, Permissions::Name])
            .values_panic([user.get().into(), name.into()])
            .on_conflict(
                OnConflict::columns([Permissions::UserId, Permissions::Name])
                    .do_nothing()
                    .to_owned(),
            )
            .to_owned();
        self.db.run().execute(&insert).await.op("grant_permission")?;
        self.profile_changed(user);
        Ok(())
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
