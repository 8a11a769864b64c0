//! Durable delivery: every text, call and email goes through an outbox.
//!
//! A use case never talks to a provider. It writes the message to the
//! outbox in the same transaction as the challenge or reset it belongs to,
//! so either both exist or neither does, and answers the client at once.
//! The [`Dispatcher`] then claims due messages (several instances share the
//! outbox; a claim is a lease, so a crashed instance's messages are taken
//! over when the lease ends), hands them to the provider, and retries
//! failures with exponential backoff until the message's `not_after`: a code
//! is never delivered after it has expired.
//!
//! Delivery is at least once: an instance that dies after the provider
//! accepted a message but before recording it leaves the message to be sent
//! again when its lease ends. Everything else (provider outages, restarts,
//! database hiccups) delays messages and loses none.

use std::{fmt, sync::Arc, time::Duration};

use crate::{
    delivery::{Delivery, Messenger},
    ports::{Clock, DeliveryError, Mailer, MessageRef, Metrics, NoMetrics, StoreError},
};

#[cfg(any(test, feature = "mocks"))]
pub use crate::ports::outbox::MockOutboxStore;
pub use crate::ports::outbox::{
    Backlog, ClaimedMessage, DeliveryOutcome, Envelope, KindBacklog, OutboxMessage, OutboxStore, Outgoing, Via,
};

/// How the dispatcher works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchSettings {
    /// How long a claim lasts. Must exceed the longest a provider call can
    /// take (timeouts and the provider client's own retries included), plus
    /// a second (a delivery that starts within `min(lease / 10, 1 s)` of
    /// its claim is not renewed first), or a slow message may be sent twice.
    pub lease: Duration,
    /// How many messages one claim takes.
    pub batch: u32,
    /// The first retry waits this long; each further one twice as long.
    pub retry_base: Duration,
    /// No retry waits longer than this.
    pub retry_max: Duration,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            batch: 8,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        }
    }
}

/// What one round of dispatching did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DispatchReport {
    pub claimed: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    pub dropped: usize,
}

/// Delivers what the outbox holds.
#[derive(Clone)]
pub struct Dispatcher {
    outbox: Arc<dyn OutboxStore>,
    messenger: Messenger,
    mailer: Arc<dyn Mailer>,
    clock: Arc<dyn Clock>,
    settings: DispatchSettings,
    metrics: Arc<dyn Metrics>,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    pub fn new(
        outbox: Arc<dyn OutboxStore>,
        messenger: Messenger,
        mailer: Arc<dyn Mailer>,
        clock: Arc<dyn Clock>,
        settings: DispatchSettings,
    ) -> Self {
        Self {
            outbox,
            messenger,
            mailer,
            clock,
            settings,
            metrics: Arc::new(NoMetrics),
        }
    }

    /// The same dispatcher, counting every delivery attempt in `metrics`.
    pub fn with_metrics(self, metrics: Arc<dyn Metrics>) -> Self {
        Self { metrics, ..self }
    }

    pub fn settings(&self) -> &DispatchSettings {
        &self.settings
    }

    /// How much is waiting.
    pub async fn backlog(&self) -> Result<Backlog, StoreError> {
        self.outbox.backlog(self.clock.now()).await
    }

    /// How much of each kind is waiting, with whether this dispatcher can
    /// deliver that kind.
    pub async fn backlog_by_kind(&self) -> Result<Vec<(KindBacklog, bool)>, StoreError> {
        let kinds = self.deliverable_kinds();
        let backlog = self.outbox.backlog_by_kind(self.clock.now()).await?;
        Ok(backlog
            .into_iter()
            .map(|entry| {
                let ours = kinds.contains(&entry.kind.as_str());
                (entry, ours)
            })
            .collect())
    }

    /// The messenger's provider circuits, for `/metrics`.
    pub fn messenger(&self) -> &Messenger {
        &self.messenger
    }

    /// The wait before attempt `attempts + 1`, after `attempts` failed ones.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(20);
        self.settings
            .retry_base
            .saturating_mul(1u32 << doublings)
            .min(self.settings.retry_max)
    }

    /// Claims one batch of due messages and delivers each. The caller runs
    /// this in a loop, waking on new messages or a timer.
    pub async fn dispatch_due(&self) -> Result<DispatchReport, StoreError> {
        let claimed = self
            .outbox
            .claim_due(
                self.clock.now(),
                self.settings.lease,
                self.settings.batch,
                &self.deliverable_kinds(),
            )
            .await?;
        let mut report = DispatchReport {
            claimed: claimed.len(),
            ..DispatchReport::default()
        };
        let claimed_at = self.clock.now();
        // A claim that is this young still has nearly all of its lease: the
        // delivery can start without a renewal. Fast providers deliver a
        // whole batch within it, so a message costs one statement (its
        // finish) and a share of the claim.
        let renew_after = (self.settings.lease / 10).min(Duration::from_secs(1));
        for message in claimed {
            let (id, lease) = (message.id, message.lease);
            let now = self.clock.now();
            if now.since(claimed_at) > renew_after {
                // The batch's earlier deliveries took time: make sure the
                // claim still holds, and runs a full lease from now, before
                // sending.
                match self.outbox.extend_lease(id, lease, now.plus(self.settings.lease)).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(
                            id,
                            "outbox lease lost before delivery; another dispatcher has the message"
                        );
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!(id, error = %error.report(), "could not extend an outbox lease; the message waits for its lease to end");
                        continue;
                    }
                }
            }
            let (purpose, kind) = (message.message.purpose, message.message.envelope.kind());
            let (outcome, via) = self.attempt(message).await;
            let provider = via.provider;
            let counted = match &outcome {
                DeliveryOutcome::Sent => {
                    report.sent += 1;
                    "sent"
                }
                DeliveryOutcome::Retry { .. } => {
                    report.retried += 1;
                    "retry"
                }
                DeliveryOutcome::Failed { .. } => {
                    report.failed += 1;
                    "failed"
                }
                DeliveryOutcome::Dropped { .. } => {
                    report.dropped += 1;
                    "dropped"
                }
            };
            self.metrics.delivery(purpose, kind, provider, counted);
            // A failed record leaves the message to be retried when its lease
            // ends; the rest of the batch goes on.
            if let Err(error) = self.outbox.finish(id, lease, outcome, via, self.clock.now()).await {
                tracing::warn!(id, error = %error.report(), "could not record a delivery outcome; the message will be retried");
            }
        }
        Ok(report)
    }

    /// Turns a hosted verification whose start failed into a text or call
    /// with phonegate's own code (`local`), recorded before it is sent so
    /// that the check compares that code whichever instance serves it, and
    /// sends it through the local routes. `failed` is the hosted attempt.
    async fn reissue_locally(
        &self,
        id: i64,
        lease: i64,
        local: Envelope,
        queued: MessageRef,
        failed: Delivery,
    ) -> Delivery {
        match self.outbox.reissue_locally(id, lease, &local).await {
            Ok(true) => {
                tracing::warn!(
                    id,
                    purpose = queued.purpose,
                    "the hosted provider could not start a verification; sending phonegate's own code instead"
                );
                let then = self.messenger.deliver(&local, queued, self.clock.now()).await;
                failed.followed_by(then)
            }
            Ok(false) => {
                tracing::warn!(id, "outbox lease lost before a local code replaced the hosted one");
                failed
            }
            Err(error) => {
                tracing::warn!(id, error = %error.report(), "could not replace a hosted code with a local one; will retry");
                failed
            }
        }
    }

    /// Sends `sms`, the same code by SMS, after WhatsApp could not reach
    /// the number (`failed`): the row becomes the SMS first (kind `sms`,
    /// or `hosted_sms` for a Verify start), so that a retry sends it that
    /// way, then it is sent at once through the SMS route.
    async fn send_by_sms(&self, id: i64, lease: i64, sms: Envelope, queued: MessageRef, failed: Delivery) -> Delivery {
        match self.outbox.switch_channel(id, lease, &sms).await {
            Ok(true) => {
                tracing::warn!(
                    id,
                    purpose = queued.purpose,
                    kind = sms.kind(),
                    "WhatsApp cannot reach the number; sending the same code by SMS"
                );
                self.metrics.channel_fallback("whatsapp", "sms");
                let then = self.messenger.deliver(&sms, queued, self.clock.now()).await;
                failed.followed_by(then)
            }
            Ok(false) => {
                tracing::warn!(id, "outbox lease lost before a WhatsApp message became an SMS");
                failed
            }
            Err(error) => {
                tracing::warn!(id, error = %error.report(), "could not turn a WhatsApp message into an SMS; will retry");
                // The row is still the WhatsApp message, whose refusal is
                // final: a retry (WhatsApp again, then this fallback) is
                // what gets the code to the number.
                Delivery {
                    result: Err(DeliveryError::Unavailable("could not switch the message to SMS".into())),
                    ..failed
                }
            }
        }
    }

    /// Counts a code a provider accepted, for conversion per provider and
    /// calling code, and a resend after a receipt said it did not arrive.
    fn count_sent(&self, envelope: &Envelope, delivery: &Delivery, avoided: Option<&str>) {
        let (Some(provider), Some(to)) = (delivery.last_provider(), envelope.recipient()) else {
            return;
        };
        self.metrics.code_sent(provider, crate::abuse::calling_code(to));
        if let Some(from) = avoided {
            tracing::warn!(
                from,
                to = provider,
                "a message that did not arrive was sent again through another provider"
            );
            self.metrics.undelivered_resend(from, provider);
        }
    }

    /// The outbox kinds this dispatcher can deliver: what its messenger's
    /// providers can send, and mail.
    pub fn deliverable_kinds(&self) -> Vec<&'static str> {
        let mut kinds = self.messenger.deliverable_kinds();
        kinds.push("mail");
        kinds
    }

    /// One delivery attempt (through every provider of the message's route
    /// if need be), what it means for the message, and the provider that
    /// was tried last.
    async fn attempt(&self, claimed: ClaimedMessage) -> (DeliveryOutcome, Via) {
        let ClaimedMessage {
            id,
            lease,
            attempts,
            message,
            avoid,
        } = claimed;
        let kind = message.envelope.kind();
        let purpose = message.purpose;
        if self.clock.now() >= message.not_after {
            tracing::warn!(id, kind, purpose, attempts, "message expired before delivery; dropped");
            let dropped = DeliveryOutcome::Dropped {
                error: "expired before delivery".into(),
            };
            return (dropped, Via::default());
        }
        let (result, via, errors) = match &message.envelope {
            Envelope::Mail(mail) => {
                let result = self.mailer.send(mail).await;
                let errors = result.as_ref().err().map(ToString::to_string).unwrap_or_default();
                (result, Via::default(), errors)
            }
            envelope => {
                let queued = MessageRef { id, purpose };
                let now = self.clock.now();
                let mut delivery = match &avoid {
                    Some(avoid) => self.messenger.resend_avoiding(envelope, queued, avoid, now).await,
                    None => self.messenger.deliver(envelope, queued, now).await,
                };
                if let Err(error) = &delivery.result
                    && let Some(local) = self.messenger.local_fallback(envelope, error)
                {
                    delivery = self.reissue_locally(id, lease, local, queued, delivery).await;
                } else if let Err(error) = &delivery.result
                    && let Some(sms) = self.messenger.sms_fallback(envelope, error)
                {
                    delivery = self.send_by_sms(id, lease, sms, queued, delivery).await;
                }
                if delivery.result.is_ok() {
                    self.count_sent(envelope, &delivery, avoid.as_deref());
                }
                let via = Via {
                    provider: delivery.last_provider(),
                    message_id: delivery.message_id().cloned(),
                };
                let errors = delivery.errors();
                (delivery.result, via, errors)
            }
        };
        let provider = via.provider;
        let now = self.clock.now();
        let waited = now.since(message.created_at).as_millis() as u64;
        let provider_label = provider.unwrap_or("mailer");
        let error = match result {
            Ok(()) => {
                tracing::info!(
                    id,
                    kind,
                    purpose,
                    attempts,
                    provider = provider_label,
                    waited_ms = waited,
                    "message delivered"
                );
                return (DeliveryOutcome::Sent, via);
            }
            Err(error) => error,
        };
        let retry_after = match &error {
            DeliveryError::InvalidNumber | DeliveryError::Rejected(_) | DeliveryError::NotOnChannel => {
                tracing::warn!(id, kind, purpose, attempts, provider = provider_label, %error, "provider refused the message for good");
                return (DeliveryOutcome::Failed { error: errors }, via);
            }
            DeliveryError::RateLimited { retry_after } => retry_after.unwrap_or_default().max(self.backoff(attempts)),
            DeliveryError::Misconfigured(_) => {
                // Wrong credentials do not heal by themselves, but the row
                // survives a restart with fixed settings: retry slowly.
                tracing::error!(id, kind, purpose, attempts, provider = provider_label, %error, "provider misconfigured");
                self.settings.retry_max
            }
            DeliveryError::Unavailable(_) => self.backoff(attempts),
        };
        let at = now.plus(retry_after);
        if at >= message.not_after {
            tracing::error!(id, kind, purpose, attempts, provider = provider_label, %error, "delivery failed and the message expires before a retry; dropped");
            return (DeliveryOutcome::Dropped { error: errors }, via);
        }
        tracing::warn!(
            id,
            kind,
            purpose,
            attempts,
            provider = provider_label,
            retry_in_ms = retry_after.as_millis() as u64,
            %error,
            "delivery failed; will retry"
        );
        (DeliveryOutcome::Retry { at, error: errors }, via)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod whatsapp_tests;
