//! [`UserStore`] on SQL: users, their profiles (with addresses and
//! permissions) and the users that verified phones create.

use async_trait::async_trait;
use phonegate_domain::{
    StoreError, StoreResult as _,
    otp::{ChallengeId, NewChallenge},
    outbox::Outgoing,
    phone::PhoneNumber,
    ports::UserStore,
    time::Timestamp,
    user::{Address, NewUser, Permission, PhoneVerification, User, UserId, UserProfile},
};
use sea_query::{Expr, ExprTrait as _, InsertStatement, OnConflict, Query};

use super::{
    db::{Backend, Tx},
    outbox::SealedRow,
    schema::{Addresses, Permissions, Users},
    store::{SqlStore, USER_COLUMNS, UserRow},
};

impl SqlStore {
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
