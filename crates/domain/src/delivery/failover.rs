//! One delivery through a route: its providers in order, the next one at
//! once when one fails in a way another may not, and the circuit breaker
//! skipping those that keep failing.

use std::{future::Future, sync::Arc};

use super::{Messenger, Mode, breaker::Transition, routes::Hop};
use crate::{
    otp::Channel,
    outbox::Envelope,
    ports::{DeliveryError, MessageRef, OutgoingCall, OutgoingSms, ProviderMessageId},
    time::Timestamp,
};

/// One provider's try at a message.
#[derive(Debug)]
pub struct Attempt {
    pub provider: &'static str,
    /// `None` when the provider accepted the message.
    pub error: Option<DeliveryError>,
    /// The provider's id for the message it accepted, when it gave one.
    pub message_id: Option<ProviderMessageId>,
}

/// How a delivery went: every provider tried, in order, and the result.
#[derive(Debug)]
pub struct Delivery {
    pub attempts: Vec<Attempt>,
    /// `Ok` when a provider accepted the message; otherwise the error that
    /// ended the delivery: a final one (the number refused), or the last
    /// provider's when every provider of the route failed.
    pub result: Result<(), DeliveryError>,
}

impl Delivery {
    /// The provider of the last attempt, if any was made.
    pub fn last_provider(&self) -> Option<&'static str> {
        self.attempts.last().map(|attempt| attempt.provider)
    }

    /// The id the provider that accepted the message gave it, if any.
    pub fn message_id(&self) -> Option<&ProviderMessageId> {
        self.attempts.last().and_then(|attempt| attempt.message_id.as_ref())
    }

    /// What each failed attempt said, `provider: error; …`, for the
    /// outbox's `last_error` (no secret: errors never hold one).
    pub fn errors(&self) -> String {
        self.attempts
            .iter()
            .filter_map(|attempt| {
                attempt
                    .error
                    .as_ref()
                    .map(|error| format!("{}: {error}", attempt.provider))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// This delivery's attempts followed by `then`'s, with `then`'s result.
    pub fn followed_by(mut self, then: Self) -> Self {
        self.attempts.extend(then.attempts);
        Self {
            attempts: self.attempts,
            result: then.result,
        }
    }

    fn refused(error: DeliveryError) -> Self {
        Self {
            attempts: Vec::new(),
            result: Err(error),
        }
    }
}

/// `hops` without the provider `avoid`.
fn without<T: ?Sized>(hops: &[Hop<T>], avoid: Option<&str>) -> Vec<Hop<T>> {
    hops.iter().filter(|hop| Some(hop.provider) != avoid).cloned().collect()
}

impl DeliveryError {
    /// Whether no provider can deliver the message either: the number
    /// itself was refused (or has no account on the channel: another
    /// channel may reach it, see [`Messenger::sms_fallback`]). Every other failure is the provider's (an
    /// outage, a throttle, its settings), so the next provider may succeed.
    pub const fn is_final(&self) -> bool {
        matches!(self, Self::InvalidNumber | Self::Rejected(_) | Self::NotOnChannel)
    }
}

impl Messenger {
    /// Hands a text, a call or a hosted verification, the outbox message
    /// `queued`, to the providers of its route, failing over from one to
    /// the next. Emails are not ours to send: they go to the mailer.
    pub async fn deliver(&self, envelope: &Envelope, queued: MessageRef, now: Timestamp) -> Delivery {
        self.deliver_avoiding(envelope, queued, None, now).await
    }

    /// Like [`Messenger::deliver`], skipping `avoid`: the message was sent
    /// through it before and its receipt says it did not arrive.
    pub async fn resend_avoiding(
        &self,
        envelope: &Envelope,
        queued: MessageRef,
        avoid: &str,
        now: Timestamp,
    ) -> Delivery {
        self.deliver_avoiding(envelope, queued, Some(avoid), now).await
    }

    /// Whether `envelope`'s route has a provider other than `avoid` to
    /// send it again through.
    pub fn has_provider_besides(&self, envelope: &Envelope, avoid: &str) -> bool {
        let others = |providers: Vec<&'static str>| providers.into_iter().any(|provider| provider != avoid);
        match (self.local_routes(), envelope) {
            (Some(routes), Envelope::Sms(message)) => others(
                routes
                    .sms
                    .for_number(&message.to)
                    .iter()
                    .map(|hop| hop.provider)
                    .collect(),
            ),
            (Some(routes), Envelope::Call(call)) => others(
                routes
                    .voice
                    .for_number(&call.to)
                    .iter()
                    .map(|hop| hop.provider)
                    .collect(),
            ),
            _ => false,
        }
    }

    async fn deliver_avoiding(
        &self,
        envelope: &Envelope,
        queued: MessageRef,
        avoid: Option<&str>,
        now: Timestamp,
    ) -> Delivery {
        match (&self.mode, self.local_routes(), envelope) {
            (_, Some(routes), Envelope::Sms(message)) => {
                let hops = without(routes.sms.for_number(&message.to), avoid);
                self.through("sms", &hops, now, |client| async move {
                    client.send_queued_sms(message, queued).await
                })
                .await
            }
            (_, _, Envelope::WhatsApp(message)) if !self.whatsapp_routes().is_empty() => {
                let hops = without(self.whatsapp_routes().for_number(&message.to), avoid);
                self.through("whatsapp", &hops, now, |client| async move {
                    client.send_whatsapp(message, queued).await
                })
                .await
            }
            (_, Some(routes), Envelope::Call(call)) => {
                let hops = without(routes.voice.for_number(&call.to), avoid);
                self.through("call", &hops, now, |client| async move {
                    client.place_queued_call(call, queued).await.map(|()| None)
                })
                .await
            }
            (
                Mode::Hosted { provider, .. },
                _,
                Envelope::Hosted {
                    to, channel, locale, ..
                },
            ) => {
                let hops = std::slice::from_ref(provider);
                self.through("hosted", hops, now, |client| async move {
                    client.start(to, *channel, locale).await.map(|()| None)
                })
                .await
            }
            // The dispatcher claims only the kinds this messenger can send
            // (`deliverable_kinds`), so these are a bug, not a swap.
            (_, _, envelope) => Delivery::refused(DeliveryError::Misconfigured(format!(
                "a {} message reached a messenger that cannot send it",
                envelope.kind()
            ))),
        }
    }

    /// The text or call with phonegate's own code that replaces `envelope`,
    /// a hosted verification whose start failed with `error`, when this
    /// messenger has providers for it: not after a final refusal of the
    /// number, which no provider can deliver.
    pub fn local_fallback(&self, envelope: &Envelope, error: &DeliveryError) -> Option<Envelope> {
        let Envelope::Hosted {
            to,
            channel,
            fallback: Some(text),
            ..
        } = envelope
        else {
            return None;
        };
        let routes = self.local_routes()?;
        if error.is_final() {
            return None;
        }
        match channel {
            // A hosted WhatsApp message's fallback is a text: the number
            // may not be on WhatsApp, and every local route sends texts.
            Channel::Sms | Channel::WhatsApp if !routes.sms.for_number(to).is_empty() => {
                Some(Envelope::Sms(OutgoingSms {
                    to: to.clone(),
                    body: text.clone(),
                }))
            }
            Channel::Call if !routes.voice.for_number(to).is_empty() => Some(Envelope::Call(OutgoingCall {
                to: to.clone(),
                spoken_text: text.clone(),
            })),
            _ => None,
        }
    }

    /// Tries `hops` in order with `send`, skipping providers whose circuit
    /// is open unless every one of them is (a route is never left with
    /// nothing to try), and stopping at the first success or final error.
    async fn through<T, F, Fut>(&self, channel: &'static str, hops: &[Hop<T>], now: Timestamp, mut send: F) -> Delivery
    where
        T: ?Sized,
        F: FnMut(Arc<T>) -> Fut,
        Fut: Future<Output = Result<Option<ProviderMessageId>, DeliveryError>>,
    {
        let mut order: Vec<&Hop<T>> = hops
            .iter()
            .filter(|hop| self.breaker.allows((hop.provider, channel), now))
            .collect();
        if order.is_empty() {
            order = hops.iter().collect();
        }
        let mut attempts = Vec::with_capacity(order.len());
        let mut result = Err(DeliveryError::Misconfigured("the route has no provider".into()));
        for (index, hop) in order.iter().enumerate() {
            match send(Arc::clone(&hop.client)).await {
                Ok(message_id) => {
                    self.answered(hop.provider, channel);
                    attempts.push(Attempt {
                        provider: hop.provider,
                        error: None,
                        message_id,
                    });
                    result = Ok(());
                    break;
                }
                Err(error) if error.is_final() => {
                    self.answered(hop.provider, channel);
                    attempts.push(Attempt {
                        provider: hop.provider,
                        error: Some(error.clone()),
                        message_id: None,
                    });
                    result = Err(error);
                    break;
                }
                Err(error) => {
                    self.failed(hop.provider, channel, now);
                    if let Some(next) = order.get(index + 1) {
                        tracing::warn!(
                            provider = hop.provider,
                            next = next.provider,
                            %error,
                            "provider failed; trying the next provider of the route"
                        );
                        self.metrics.failover(hop.provider, next.provider);
                    }
                    attempts.push(Attempt {
                        provider: hop.provider,
                        error: Some(error.clone()),
                        message_id: None,
                    });
                    result = Err(error);
                }
            }
        }
        Delivery { attempts, result }
    }

    fn answered(&self, provider: &'static str, channel: &'static str) {
        if self.breaker.record_answer((provider, channel)) == Some(Transition::Closed) {
            tracing::warn!(
                provider,
                channel,
                alert = "provider_circuit",
                "provider answers again; its circuit is closed"
            );
            self.metrics.provider_circuit(provider, channel, false);
        }
    }

    fn failed(&self, provider: &'static str, channel: &'static str, now: Timestamp) {
        if self.breaker.record_failure((provider, channel), now) == Some(Transition::Opened) {
            tracing::error!(
                provider,
                channel,
                alert = "provider_circuit",
                "provider keeps failing; its circuit is open and routes skip it for a cool-off"
            );
            self.metrics.provider_circuit(provider, channel, true);
        }
    }
}

#[cfg(test)]
mod tests;
