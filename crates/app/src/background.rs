//! The service's background work: outbox dispatchers, the Postgres
//! notification listener that wakes them, and housekeeping.
//!
//! Dispatchers sleep until a message is queued (in this process, or on any
//! instance through Postgres `NOTIFY`) or their poll interval passes (for
//! retries that came due and rows left by an instance that died), so
//! delivery starts within milliseconds without busy polling.

use std::{sync::Arc, time::Duration};

use phonegate_adapters::sql::{OutboxSignal, SqlStore, forward_notifications};
use phonegate_domain::{
    outbox::Dispatcher,
    ports::{Clock, Housekeeping as _},
};
use tokio::{sync::watch, task::JoinSet};

use crate::settings::Settings;

/// Running background tasks.
#[derive(Debug)]
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Background {
    /// Asks every task to stop after its current round and waits up to
    /// `grace` for them; a delivery in flight is finished, not abandoned.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        let drained = tokio::time::timeout(grace, async { while self.tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!("background tasks did not stop in time; abandoning them (their claims expire)");
            self.tasks.abort_all();
        }
    }
}

/// Starts the dispatchers, the notification listener and housekeeping.
pub fn spawn(settings: &Settings, store: &SqlStore, dispatcher: &Dispatcher, clock: Arc<dyn Clock>) -> Background {
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let signal = store.outbox_signal().clone();
    let poll = Duration::from_millis(settings.outbox.poll_interval_ms.max(10));
    for worker in 0..settings.outbox.workers.max(1) {
        tasks.spawn(supervise_dispatcher(
            worker,
            dispatcher.clone(),
            signal.clone(),
            poll,
            stopped.clone(),
        ));
    }
    tasks.spawn(forward_notifications(store.db().clone(), signal, stopped.clone()));
    if settings.housekeeping.interval_seconds > 0 {
        tasks.spawn(housekeeping_loop(
            store.clone(),
            clock,
            Duration::from_secs(settings.housekeeping.interval_seconds),
            Duration::from_secs(settings.housekeeping.retention_seconds),
            stopped,
        ));
    }
    Background { stop, tasks }
}

/// The wait before a panicked dispatcher is restarted, doubled after each
/// further panic up to [`MAX_RESTART_BACKOFF`], so a panic on every message
/// does not spin.
const RESTART_BACKOFF: Duration = Duration::from_millis(100);
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(10);

/// Aborts the task when dropped, so a supervisor that is itself aborted (a
/// shutdown that ran out of time) takes its worker with it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs worker `worker`'s dispatch loop in a task of its own and restarts it
/// if it panics: a bug or a misbehaving provider client must not stop
/// delivery for the rest of the process's life. The panic is logged with
/// the worker's index but not its payload, which could quote a message.
/// The message whose delivery panicked stays claimed until its lease ends,
/// then is tried again like any other.
async fn supervise_dispatcher(
    worker: u32,
    dispatcher: Dispatcher,
    signal: OutboxSignal,
    poll: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut panics: u32 = 0;
    loop {
        let mut run = AbortOnDrop(tokio::spawn(dispatch_loop(
            worker,
            dispatcher.clone(),
            signal.clone(),
            poll,
            stop.clone(),
        )));
        match (&mut run.0).await {
            Ok(()) => return,
            Err(error) if error.is_panic() => {
                panics = panics.saturating_add(1);
                let backoff = RESTART_BACKOFF
                    .saturating_mul(1u32 << panics.saturating_sub(1).min(10))
                    .min(MAX_RESTART_BACKOFF);
                tracing::error!(
                    worker,
                    panics,
                    restart_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                    "outbox dispatcher panicked; restarting it"
                );
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => {}
                }
                if *stop.borrow() {
                    return;
                }
            }
            // Cancelled: the runtime is shutting down.
            Err(_) => return,
        }
    }
}

/// How old the oldest waiting message may get before the backlog is
/// reported.
const BACKLOG_ALERT_AGE: Duration = Duration::from_secs(30);

async fn dispatch_loop(
    worker: u32,
    dispatcher: Dispatcher,
    signal: OutboxSignal,
    poll: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut last_backlog_check = tokio::time::Instant::now();
    while !*stop.borrow() {
        match dispatcher.dispatch_due().await {
            // More may be due: go on without waiting.
            Ok(report) if report.claimed > 0 => continue,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(worker, error = %error.report(), "outbox unavailable; dispatch will be retried")
            }
        }
        // One worker reports a backlog (a provider outage, say) while it lasts.
        if worker == 0 && last_backlog_check.elapsed() >= BACKLOG_ALERT_AGE {
            last_backlog_check = tokio::time::Instant::now();
            if let Ok(kinds) = dispatcher.backlog_by_kind().await {
                for (entry, ours) in kinds {
                    let backlog = entry.backlog;
                    if backlog.oldest_age.is_none_or(|age| age < BACKLOG_ALERT_AGE) {
                        continue;
                    }
                    let oldest_age_s = backlog.oldest_age.map_or(0, |age| age.as_secs());
                    if ours {
                        tracing::warn!(
                            kind = entry.kind.as_str(),
                            pending = backlog.pending,
                            oldest_age_s,
                            "outbox backlog: deliveries are delayed"
                        );
                    } else {
                        // This instance does not claim them; if no instance
                        // of the fleet can, they wait until they expire.
                        tracing::warn!(
                            kind = entry.kind.as_str(),
                            pending = backlog.pending,
                            oldest_age_s,
                            alert = "undeliverable_kind",
                            "outbox holds messages of a kind this instance has no provider for; is an instance \
                             that can send them running?"
                        );
                    }
                }
            }
        }
        tokio::select! {
            () = signal.woken() => {}
            () = tokio::time::sleep(poll) => {}
            _ = stop.changed() => {}
        }
    }
}

async fn housekeeping_loop(
    store: SqlStore,
    clock: Arc<dyn Clock>,
    interval: Duration,
    retention: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        let now = clock.now();
        let cutoff = phonegate_domain::time::Timestamp::from_unix_millis(
            now.unix_millis()
                .saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX)),
        );
        match store.purge(cutoff).await {
            Ok(report) if report.total() > 0 => tracing::info!(
                challenges = report.challenges,
                session_tokens = report.session_tokens,
                access_codes = report.access_codes,
                password_resets = report.password_resets,
                outbox = report.outbox,
                "housekeeping purged expired rows"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error.report(), "housekeeping failed; will retry"),
        }
        if let Err(error) = store.forget_expired_payloads(now).await {
            tracing::warn!(error = %error.report(), "could not drop expired outbox payloads; will retry");
        }
    }
}
