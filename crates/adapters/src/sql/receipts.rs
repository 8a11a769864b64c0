//! [`ReceiptStore`] on SQL: delivery receipts recorded on the outbox row
//! the provider's id names, and a message that did not arrive queued again
//! for another provider.

use async_trait::async_trait;
use phonegate_domain::{
    StoreError, StoreResult as _,
    outbox::Envelope,
    ports::{Receipt, ReceiptStore, ReceiptedMessage},
    time::Timestamp,
};
use sea_query::{Expr, ExprTrait as _, Query, UpdateStatement};

use super::{db::Backend, outbox::state, schema::Outbox, store::SqlStore};

/// The state of a row a provider accepted ([`DeliveryOutcome::state`]).
///
/// [`DeliveryOutcome::state`]: phonegate_domain::outbox::DeliveryOutcome::state
const SENT: &str = "sent";

/// Statuses that are the last word on a message.
const FINAL_STATUSES: [&str; 3] = ["delivered", "undelivered", "failed"];

/// Whether the row's code still works: its challenge is live, or it
/// carries no challenge's code.
const LIVE_CHALLENGE: &str = "(outbox.challenge_id IS NULL OR EXISTS (SELECT 1 FROM otp_challenges \
     WHERE otp_challenges.id = outbox.challenge_id AND otp_challenges.state = 'live'))";

#[derive(sqlx::FromRow)]
struct ReceiptRow {
    id: i64,
    kind: String,
    payload: Option<Vec<u8>>,
    not_after: i64,
    delivery_status: Option<String>,
    avoid_provider: Option<String>,
    live: bool,
}

#[async_trait]
impl ReceiptStore for SqlStore {
    async fn record_receipt(&self, receipt: &Receipt, now: Timestamp) -> Result<Option<ReceiptedMessage>, StoreError> {
        let find = Query::select()
            .columns([
                Outbox::Id,
                Outbox::Kind,
                Outbox::Payload,
                Outbox::NotAfter,
                Outbox::DeliveryStatus,
                Outbox::AvoidProvider,
            ])
            .expr_as(Expr::cust(LIVE_CHALLENGE), "live")
            .from(Outbox::Table)
            .and_where(Expr::col(Outbox::Provider).eq(receipt.provider))
            .and_where(Expr::col(Outbox::ProviderMessageId).eq(receipt.message_id.as_str()))
            .to_owned();
        let mut tx = self.db().begin().await.op("record_receipt")?;
        let row: Option<ReceiptRow> = tx.run().fetch_optional(&find).await.op("record_receipt")?;
        let Some(row) = row else {
            return Ok(None);
        };
        let status = receipt.status.as_str();
        // Receipts arrive out of order: a late `sent` does not undo
        // `delivered`.
        let stale = !receipt.status.is_final()
            && row
                .delivery_status
                .as_deref()
                .is_some_and(|recorded| FINAL_STATUSES.contains(&recorded));
        if !stale {
            let mut update = Query::update()
                .table(Outbox::Table)
                .value(Outbox::DeliveryStatus, status)
                .value(Outbox::DeliveryError, receipt.error_code.clone())
                .value(Outbox::ReceiptAt, now.unix_millis())
                .and_where(Expr::col(Outbox::Id).eq(row.id))
                .to_owned();
            if receipt.status == phonegate_domain::ports::ReceiptStatus::Delivered {
                // It arrived: nothing will need to send it again.
                update.value(Outbox::Payload, Option::<Vec<u8>>::None);
            }
            tx.run().execute(&update).await.op("record_receipt")?;
        }
        tx.commit().await.op("record_receipt")?;
        // A payload that no longer opens (another secret) cannot be resent,
        // but the receipt still counts.
        let envelope = row
            .payload
            .as_deref()
            .and_then(|sealed| self.sealer().open_envelope(&row.kind, sealed).ok());
        Ok(Some(ReceiptedMessage {
            id: row.id,
            envelope,
            not_after: Timestamp::from_unix_millis(row.not_after),
            resent: row.avoid_provider.is_some(),
            live: row.live,
        }))
    }

    async fn resend_avoiding(
        &self,
        id: i64,
        avoid: &str,
        envelope: &Envelope,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let (kind, payload) = self.sealer().seal_envelope(envelope)?;
        let now_ms = now.unix_millis();
        let mut requeue = Query::update()
            .table(Outbox::Table)
            .value(Outbox::State, state::PENDING)
            .value(Outbox::Kind, kind)
            .value(Outbox::Payload, payload)
            .value(Outbox::NextAttemptAt, now_ms)
            .value(Outbox::LeaseToken, Option::<i64>::None)
            .value(Outbox::FinishedAt, Option::<i64>::None)
            .value(Outbox::AvoidProvider, avoid)
            .value(
                Outbox::LastError,
                format!("{avoid}: the receipt said it did not arrive"),
            )
            .and_where(Expr::col(Outbox::Id).eq(id))
            .and_where(Expr::col(Outbox::State).eq(SENT))
            .and_where(Expr::col(Outbox::Provider).eq(avoid))
            .and_where(Expr::col(Outbox::AvoidProvider).is_null())
            .to_owned();
        self.requeue(&mut requeue, now).await
    }

    async fn resend_by_sms(
        &self,
        id: i64,
        sent_through: &str,
        sms: &Envelope,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let (kind, payload) = self.sealer().seal_envelope(sms)?;
        let mut requeue = Query::update()
            .table(Outbox::Table)
            .value(Outbox::State, state::PENDING)
            .value(Outbox::Kind, kind)
            .value(Outbox::Payload, payload)
            .value(Outbox::NextAttemptAt, now.unix_millis())
            .value(Outbox::LeaseToken, Option::<i64>::None)
            .value(Outbox::FinishedAt, Option::<i64>::None)
            .value(
                Outbox::LastError,
                format!("{sent_through}: WhatsApp did not reach the number"),
            )
            .and_where(Expr::col(Outbox::Id).eq(id))
            .and_where(Expr::col(Outbox::State).eq(SENT))
            .and_where(Expr::col(Outbox::Kind).eq("whatsapp"))
            .and_where(Expr::col(Outbox::Provider).eq(sent_through))
            .to_owned();
        self.requeue(&mut requeue, now).await
    }
}

impl SqlStore {
    /// Runs `requeue`, an update that puts a sent message back in the
    /// queue, if the message's code still works at `now`, and wakes the
    /// dispatchers of every instance when it did.
    async fn requeue(&self, requeue: &mut UpdateStatement, now: Timestamp) -> Result<bool, StoreError> {
        requeue
            .and_where(Expr::col(Outbox::NotAfter).gt(now.unix_millis()))
            .and_where(Expr::cust(LIVE_CHALLENGE));
        let mut tx = self.db().begin().await.op("resend_avoiding")?;
        let queued = tx.run().execute(&*requeue).await.op("resend_avoiding")? == 1;
        if queued && self.db().backend() == Backend::Postgres {
            // The notify trigger fires on inserts only: wake every
            // instance's dispatchers when this commits, as an insert would.
            tx.raw("SELECT pg_notify('phonegate_outbox', '')")
                .await
                .op("resend_avoiding")?;
        }
        tx.commit().await.op("resend_avoiding")?;
        if queued {
            self.outbox_signal().wake();
        }
        Ok(queued)
    }
}
