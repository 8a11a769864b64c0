//! Waking dispatchers when a message is queued: in this process at once,
//! and on every instance through Postgres `LISTEN/NOTIFY` (a trigger on the
//! outbox notifies when, and only if, the inserting transaction commits).

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;

/// The Postgres `LISTEN` channel on which new messages are announced.
pub const OUTBOX_CHANNEL: &str = "phonegate_outbox";

/// Wakes the dispatchers of this process.
#[derive(Debug, Clone, Default)]
pub struct OutboxSignal(Arc<Notify>);

impl OutboxSignal {
    /// Wakes one waiting dispatcher, or the next one to wait.
    pub fn wake(&self) {
        self.0.notify_one();
    }

    /// Waits until woken.
    pub async fn woken(&self) {
        self.0.notified().await;
    }
}

/// Forwards Postgres notifications of new outbox messages (from any
/// instance) to this process's dispatchers, reconnecting after failures,
/// until `stop` turns true. Does nothing on SQLite, which serves one process.
pub async fn forward_notifications(db: super::Db, signal: OutboxSignal, mut stop: tokio::sync::watch::Receiver<bool>) {
    let super::Db::Postgres(pool) = db else {
        return;
    };
    while !*stop.borrow() {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for outbox notifications; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        if let Err(error) = listener.listen(OUTBOX_CHANNEL).await {
            tracing::warn!(%error, "cannot listen for outbox notifications; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Messages queued while we were not listening are found by the
        // dispatchers' periodic poll; wake one now in case.
        signal.wake();
        loop {
            tokio::select! {
                received = listener.recv() => match received {
                    Ok(_) => signal.wake(),
                    Err(error) => {
                        tracing::warn!(%error, "outbox notifications interrupted; reconnecting");
                        break;
                    }
                },
                _ = stop.changed() => return,
            }
        }
    }
}
