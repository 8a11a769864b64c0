//! The outbox table: messages written with their challenge or reset, and
//! claimed by dispatchers on any instance.
//!
//! Payloads (recipient and text, which holds the code or the reset link) are
//! sealed with ChaCha20-Poly1305 under a key derived from the server secret,
//! so the table holds no live code in the clear. A claim is one statement:
//! on Postgres its row selection uses `FOR UPDATE SKIP LOCKED`, so
//! dispatchers on several instances never wait for or take each other's
//! rows; on SQLite the write lock serialises claims. A claim moves the row's
//! `next_attempt_at` to the end of its lease, which is how a crashed
//! dispatcher's rows come back by themselves.

use std::time::Duration;

use async_trait::async_trait;
use phonegate_domain::{
    StoreError, StoreResult as _,
    otp::ChallengeId,
    outbox::{
        Backlog, ClaimedMessage, DeliveryOutcome, Envelope, KindBacklog, OutboxMessage, OutboxStore, Outgoing, Via,
    },
    ports::RandomSource as _,
    time::Timestamp,
};
use sea_query::{Expr, ExprTrait as _, LockBehavior, LockType, Order, Query};

use super::{
    db::Tx,
    outbox_payload::{Sealer, StoredEnvelope},
    schema::{OtpChallenges, Outbox},
    store::SqlStore,
};
use crate::random::OsRandom;

/// Row states written here; the final ones (`sent`, `failed`, `dropped`)
/// come from [`DeliveryOutcome::state`].
pub(super) mod state {
    pub const PENDING: &str = "pending";
    pub const DECOY: &str = "decoy";
}

/// Writes `outgoing` in `tx`. Returns whether a message (not a decoy) was
/// queued, so the caller can wake the dispatchers once the transaction has
/// committed.
pub(super) async fn insert_outgoing(
    tx: &mut Tx,
    sealer: &Sealer,
    outgoing: Outgoing,
    now: Timestamp,
) -> Result<bool, StoreError> {
    match SealedRow::of(sealer, outgoing, now)? {
        Some(row) => insert_sealed(tx, &row, None).await,
        None => Ok(false),
    }
}

/// Writes `row` inside `tx`, linked to `challenge` if its message carries
/// that challenge's code; true if a dispatcher should be woken once the
/// transaction has committed.
pub(super) async fn insert_sealed(
    tx: &mut Tx,
    row: &SealedRow,
    challenge: Option<ChallengeId>,
) -> Result<bool, StoreError> {
    let insert = Query::insert()
        .into_table(Outbox::Table)
        .columns(OUTBOX_COLUMNS)
        .values_panic(row.values_with_challenge(challenge.map(ChallengeId::get).into()))
        .to_owned();
    tx.run().execute(&insert).await.op("insert_sealed")?;
    // On Postgres, a trigger on the outbox notifies the listeners of every
    // instance when (and only if) the transaction commits (migration 0005):
    // no extra round trip. Decoys notify too; a spurious wake is harmless.
    Ok(row.wakes())
}

/// The columns an outbox row is written with, in the order of
/// [`SealedRow::values`].
pub(super) const OUTBOX_COLUMNS: [Outbox; 9] = [
    Outbox::Kind,
    Outbox::Purpose,
    Outbox::State,
    Outbox::Payload,
    Outbox::Attempts,
    Outbox::NextAttemptAt,
    Outbox::NotAfter,
    Outbox::CreatedAt,
    Outbox::ChallengeId,
];

/// A row ready to be written.
pub(super) struct SealedRow {
    kind: &'static str,
    /// The message is (or, for a decoy, stands in for) a hosted start.
    hosted: bool,
    purpose: &'static str,
    state: &'static str,
    payload: Vec<u8>,
    created_at: i64,
    not_after: i64,
}

impl SealedRow {
    /// The row `outgoing` is written as, sealed; `None` for nothing to write.
    pub(super) fn of(sealer: &Sealer, outgoing: Outgoing, now: Timestamp) -> Result<Option<Self>, StoreError> {
        match outgoing {
            Outgoing::Nothing => Ok(None),
            // Sealed and written exactly like a real message, never read.
            Outgoing::Decoy(message) => Self::seal(sealer, &message, state::DECOY, now).map(Some),
            Outgoing::Message(message) => Self::seal(sealer, &message, state::PENDING, now).map(Some),
        }
    }

    fn seal(sealer: &Sealer, message: &OutboxMessage, state: &'static str, now: Timestamp) -> Result<Self, StoreError> {
        let decoy = state == state::DECOY;
        let kind = if decoy { "decoy" } else { message.envelope.kind() };
        let plain = serde_json::to_vec(&StoredEnvelope::from_envelope(&message.envelope))
            .map_err(|_| StoreError::new("seal_outbox_payload", "could not encode an outbox payload"))?;
        Ok(Self {
            kind,
            hosted: matches!(message.envelope, Envelope::Hosted { .. }),
            purpose: message.purpose,
            state,
            payload: sealer.seal(kind, &plain)?,
            created_at: if decoy { now } else { message.created_at }.unix_millis(),
            not_after: if decoy { now } else { message.not_after }.unix_millis(),
        })
    }

    /// The row's values, in the order of [`OUTBOX_COLUMNS`], linked to the
    /// challenge whose code it carries (an expression, because Postgres's
    /// one-statement issue names the challenge that statement inserts):
    /// the dispatcher drops the message once that challenge is no longer
    /// live.
    pub(super) fn values_with_challenge(&self, challenge: Expr) -> [Expr; 9] {
        let [kind, purpose, state, payload, attempts, next, not_after, created, _] = self.values();
        [
            kind, purpose, state, payload, attempts, next, not_after, created, challenge,
        ]
    }

    /// The row's values, in the order of [`OUTBOX_COLUMNS`].
    pub(super) fn values(&self) -> [Expr; 9] {
        [
            self.kind.into(),
            self.purpose.into(),
            self.state.into(),
            self.payload.clone().into(),
            0i32.into(),
            self.created_at.into(),
            self.not_after.into(),
            self.created_at.into(),
            Option::<i64>::None.into(),
        ]
    }

    /// Whether the row's message asks a provider to make and send its own
    /// code (Twilio Verify), which that provider must then check; decoys
    /// included, so that checking a decoy takes the path, and the time, of
    /// checking the real code it stands in for.
    pub(super) fn carries_hosted_code(&self) -> bool {
        self.hosted
    }

    /// Whether a dispatcher has something to deliver once the row commits.
    pub(super) fn wakes(&self) -> bool {
        self.state == state::PENDING
    }
}

/// Whether the row being updated carries the code of a challenge that is no
/// longer live (or no longer exists). Rows without a challenge (emails,
/// rows queued before challenges were linked) are never dead.
const DEAD_CHALLENGE: &str = "(outbox.challenge_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM otp_challenges \
     WHERE otp_challenges.id = outbox.challenge_id AND otp_challenges.state = 'live'))";

/// The state of a row dropped undelivered ([`DeliveryOutcome::Dropped`]).
const DROPPED: &str = "dropped";

/// `last_error` of a row dropped because its code stopped working.
const SUPERSEDED_ERROR: &str = "code superseded or used before delivery";

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: i64,
    state: String,
    kind: String,
    purpose: String,
    payload: Option<Vec<u8>>,
    attempts: i32,
    not_after: i64,
    created_at: i64,
    avoid_provider: Option<String>,
}

/// Purposes are `&'static str` in the domain; rows carry them as text.
fn static_purpose(purpose: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "pin_auth",
        "phone_verify",
        "phone_login",
        "phone_confirm",
        "password_reset",
    ];
    KNOWN
        .iter()
        .find(|known| **known == purpose)
        .copied()
        .unwrap_or("other")
}

impl SqlStore {
    /// The statement that makes the row `id`, still claimed under `lease`
    /// and pending, hold `envelope` (its kind and sealed payload): the
    /// same message by another channel or provider.
    fn rewrite(&self, id: i64, lease: i64, envelope: &Envelope) -> Result<sea_query::UpdateStatement, StoreError> {
        let (kind, payload) = self.sealer().seal_envelope(envelope)?;
        Ok(Query::update()
            .table(Outbox::Table)
            .value(Outbox::Kind, kind)
            .value(Outbox::Payload, payload)
            .and_where(Expr::col(Outbox::Id).eq(id))
            .and_where(Expr::col(Outbox::LeaseToken).eq(lease))
            .and_where(Expr::col(Outbox::State).eq(state::PENDING))
            .to_owned())
    }
}

#[async_trait]
impl OutboxStore for SqlStore {
    async fn enqueue_decoy(&self, decoy: OutboxMessage, now: Timestamp) -> Result<(), StoreError> {
        // It stands in for a password reset, which writes two rows (the
        // reset and its email) in one transaction: so does this.
        let row = SealedRow::seal(self.sealer(), &decoy, state::DECOY, now)?;
        let mut tx = self.db().begin().await.op("enqueue_decoy")?;
        insert_sealed(&mut tx, &row, None).await?;
        insert_sealed(&mut tx, &row, None).await?;
        tx.commit().await.op("enqueue_decoy")
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
        kinds: &[&'static str],
    ) -> Result<Vec<ClaimedMessage>, StoreError> {
        let mut token = [0u8; 8];
        OsRandom.fill(&mut token);
        let lease_token = i64::from_be_bytes(token);
        let now_ms = now.unix_millis();
        let due = Query::select()
            .column(Outbox::Id)
            .from(Outbox::Table)
            .and_where(Expr::col(Outbox::State).eq(state::PENDING))
            .and_where(Expr::col(Outbox::NextAttemptAt).lte(now_ms))
            // Only what this instance's providers can send, so that in a
            // fleet whose instances have different providers each message
            // waits for one that can; and anything expired, so that
            // someone drops it.
            .and_where(
                Expr::col(Outbox::Kind)
                    .is_in(kinds.iter().copied())
                    .or(Expr::col(Outbox::NotAfter).lte(now_ms)),
            )
            .order_by(Outbox::NextAttemptAt, Order::Asc)
            .order_by(Outbox::Id, Order::Asc)
            .limit(u64::from(limit))
            // Postgres only; the SQLite builder leaves it out, and SQLite's
            // single writer serialises claims anyway.
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .to_owned();
        // A text or call whose challenge is no longer live (a newer code
        // superseded it, it was used, or housekeeping purged it) carries a
        // code that cannot work: the claim itself drops it, so it is never
        // sent and its sealed payload goes at once. Every SET expression
        // reads the row as it was before the update, on both backends.
        let unless_dead = |dead: &str, otherwise: &str| {
            Expr::cust(format!("CASE WHEN {DEAD_CHALLENGE} THEN {dead} ELSE {otherwise} END"))
        };
        let claim = Query::update()
            .table(Outbox::Table)
            .value(Outbox::Attempts, Expr::col(Outbox::Attempts).add(1))
            .value(Outbox::LeaseToken, unless_dead("NULL", &lease_token.to_string()))
            .value(Outbox::NextAttemptAt, now.plus(lease).unix_millis())
            .value(Outbox::State, unless_dead(&format!("'{DROPPED}'"), "state"))
            .value(Outbox::Payload, unless_dead("NULL", "payload"))
            .value(Outbox::FinishedAt, unless_dead(&now_ms.to_string(), "finished_at"))
            .value(
                Outbox::LastError,
                unless_dead(&format!("'{SUPERSEDED_ERROR}'"), "last_error"),
            )
            .and_where(Expr::col(Outbox::Id).in_subquery(due))
            .returning(Query::returning().columns([
                Outbox::Id,
                Outbox::State,
                Outbox::Kind,
                Outbox::Purpose,
                Outbox::Payload,
                Outbox::Attempts,
                Outbox::NotAfter,
                Outbox::CreatedAt,
                Outbox::AvoidProvider,
            ]))
            .to_owned();
        let mut rows: Vec<ClaimedRow> = self.db().run().fetch_all(&claim).await.op("claim_due")?;
        rows.sort_by_key(|row| row.id);
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            if row.state == DROPPED {
                tracing::info!(
                    id = row.id,
                    kind = row.kind.as_str(),
                    purpose = row.purpose.as_str(),
                    "code superseded or used before delivery; message dropped"
                );
                continue;
            }
            let envelope = row
                .payload
                .as_deref()
                .ok_or_else(|| StoreError::new("claim_due", "an outbox row has no payload"))
                .and_then(|sealed| self.sealer().open_envelope(&row.kind, sealed));
            let envelope = match envelope {
                Ok(envelope) => envelope,
                Err(error) => {
                    // A row no instance can read (sealed under another
                    // secret): fail it rather than retry it forever.
                    tracing::error!(id = row.id, error = %error.report(), "unreadable outbox row; marked failed");
                    self.finish(
                        row.id,
                        lease_token,
                        DeliveryOutcome::Failed {
                            error: error.to_string(),
                        },
                        Via::default(),
                        now,
                    )
                    .await?;
                    continue;
                }
            };
            claimed.push(ClaimedMessage {
                id: row.id,
                lease: lease_token,
                attempts: u32::try_from(row.attempts).unwrap_or(0),
                message: OutboxMessage {
                    envelope,
                    purpose: static_purpose(&row.purpose),
                    created_at: Timestamp::from_unix_millis(row.created_at),
                    not_after: Timestamp::from_unix_millis(row.not_after),
                },
                avoid: row.avoid_provider,
            });
        }
        Ok(claimed)
    }

    async fn reissue_locally(&self, id: i64, lease: i64, envelope: &Envelope) -> Result<bool, StoreError> {
        let rewrite = self.rewrite(id, lease, envelope)?;
        let mut tx = self.db().begin().await.op("reissue_locally")?;
        if tx.run().execute(&rewrite).await.op("reissue_locally")? != 1 {
            return Ok(false);
        }
        let local_code = Query::update()
            .table(OtpChallenges::Table)
            .value(OtpChallenges::Hosted, false)
            .and_where(
                Expr::col(OtpChallenges::Id).in_subquery(
                    Query::select()
                        .column(Outbox::ChallengeId)
                        .from(Outbox::Table)
                        .and_where(Expr::col(Outbox::Id).eq(id))
                        .to_owned(),
                ),
            )
            .to_owned();
        tx.run().execute(&local_code).await.op("reissue_locally")?;
        tx.commit().await.op("reissue_locally")?;
        Ok(true)
    }

    async fn switch_channel(&self, id: i64, lease: i64, envelope: &Envelope) -> Result<bool, StoreError> {
        let rewrite = self.rewrite(id, lease, envelope)?;
        Ok(self.db().run().execute(&rewrite).await.op("switch_channel")? == 1)
    }

    async fn extend_lease(&self, id: i64, lease: i64, until: Timestamp) -> Result<bool, StoreError> {
        let extend = Query::update()
            .table(Outbox::Table)
            .value(Outbox::NextAttemptAt, until.unix_millis())
            .and_where(Expr::col(Outbox::Id).eq(id))
            .and_where(Expr::col(Outbox::LeaseToken).eq(lease))
            .and_where(Expr::col(Outbox::State).eq(state::PENDING))
            .to_owned();
        Ok(self.db().run().execute(&extend).await.op("extend_lease")? == 1)
    }

    async fn finish(
        &self,
        id: i64,
        lease: i64,
        outcome: DeliveryOutcome,
        via: Via,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let receipts_expected = via.message_id.is_some();
        let mut update = Query::update()
            .table(Outbox::Table)
            .value(Outbox::State, outcome.state())
            .value(Outbox::LeaseToken, Option::<i64>::None)
            .value(Outbox::Provider, via.provider)
            .value(
                Outbox::ProviderMessageId,
                via.message_id.as_ref().map(|id| id.as_str().to_owned()),
            )
            .and_where(Expr::col(Outbox::Id).eq(id))
            .and_where(Expr::col(Outbox::LeaseToken).eq(lease))
            .and_where(Expr::col(Outbox::State).eq(state::PENDING))
            .to_owned();
        match outcome {
            DeliveryOutcome::Sent if receipts_expected => {
                // A receipt may yet say the text did not arrive, and then
                // it goes again through another provider: the sealed
                // payload stays until a receipt says it was delivered, or
                // housekeeping finds it expired.
                update
                    .value(Outbox::FinishedAt, now.unix_millis())
                    .value(Outbox::LastError, Option::<String>::None);
            }
            DeliveryOutcome::Sent => {
                // The payload is no longer needed: drop the code now rather
                // than when housekeeping deletes the row.
                update
                    .value(Outbox::FinishedAt, now.unix_millis())
                    .value(Outbox::Payload, Option::<Vec<u8>>::None)
                    .value(Outbox::LastError, Option::<String>::None);
            }
            DeliveryOutcome::Retry { at, error } => {
                update
                    .value(Outbox::NextAttemptAt, at.unix_millis())
                    .value(Outbox::LastError, error);
            }
            DeliveryOutcome::Failed { error } | DeliveryOutcome::Dropped { error } => {
                update
                    .value(Outbox::FinishedAt, now.unix_millis())
                    .value(Outbox::Payload, Option::<Vec<u8>>::None)
                    .value(Outbox::LastError, error);
            }
        }
        let changed = self.db().run().execute(&update).await.op("finish")?;
        if changed == 0 {
            tracing::warn!(id, "outbox lease lost before the outcome was recorded");
        }
        Ok(())
    }

    async fn backlog(&self, now: Timestamp) -> Result<Backlog, StoreError> {
        super::outbox_backlog::backlog(self, now).await
    }

    async fn backlog_by_kind(&self, now: Timestamp) -> Result<Vec<KindBacklog>, StoreError> {
        super::outbox_backlog::backlog_by_kind(self, now).await
    }
}
