//! WhatsApp as a channel: which surfaces' texts go by WhatsApp, the
//! providers that carry it, and the same code by SMS when the number has
//! no WhatsApp account.

use std::{collections::HashSet, sync::Arc};

use super::{Messenger, Mode, routes::Routes};
use crate::{
    otp::{Channel, Purpose},
    outbox::Envelope,
    ports::{DeliveryError, OutgoingSms, WhatsAppSender},
};

/// The surfaces that send their texts by WhatsApp, and the routes of the
/// providers that carry it.
#[derive(Clone)]
pub(super) struct WhatsApp {
    pub(super) routes: Routes<dyn WhatsAppSender>,
    purposes: HashSet<Purpose>,
}

impl Default for WhatsApp {
    fn default() -> Self {
        Self {
            routes: Routes::new(Vec::new(), Vec::new()),
            purposes: HashSet::new(),
        }
    }
}

impl Messenger {
    /// The same messenger, sending the texts of `purposes` as WhatsApp
    /// messages (with the same words) through `routes`; with a hosted
    /// provider, asking it for a WhatsApp message instead (Verify's
    /// `Channel=whatsapp`), so `routes` may then be empty. Calls are
    /// unchanged.
    pub fn with_whatsapp(
        self,
        routes: Routes<dyn WhatsAppSender>,
        purposes: impl IntoIterator<Item = Purpose>,
    ) -> Self {
        Self {
            whatsapp: Arc::new(WhatsApp {
                routes,
                purposes: purposes.into_iter().collect(),
            }),
            ..self
        }
    }

    /// The channel a code of `purpose` asked for by `channel` travels by:
    /// a text becomes a WhatsApp message when the surface says so.
    pub(super) fn channel_for(&self, purpose: Purpose, channel: Channel) -> Channel {
        match channel {
            Channel::Sms if self.whatsapp.purposes.contains(&purpose) => Channel::WhatsApp,
            channel => channel,
        }
    }

    /// The routes of WhatsApp messages with phonegate's own code.
    pub(super) fn whatsapp_routes(&self) -> &Routes<dyn WhatsAppSender> {
        &self.whatsapp.routes
    }

    /// The same code by SMS: a WhatsApp message becomes the text with the
    /// same words, and a hosted WhatsApp verification a hosted one by SMS
    /// (Twilio Verify sends the pending code again on the new channel).
    /// `None` for every other envelope. The receipts can call this when a
    /// provider reports later that a WhatsApp message did not arrive.
    pub fn sms_instead(envelope: &Envelope) -> Option<Envelope> {
        match envelope {
            Envelope::WhatsApp(message) => Some(Envelope::Sms(OutgoingSms {
                to: message.to.clone(),
                body: message.body.clone(),
            })),
            Envelope::Hosted {
                to,
                channel: Channel::WhatsApp,
                locale,
                fallback,
            } => Some(Envelope::Hosted {
                to: to.clone(),
                channel: Channel::Sms,
                locale: locale.clone(),
                fallback: fallback.clone(),
            }),
            _ => None,
        }
    }

    /// The SMS that replaces `envelope`, a WhatsApp message whose delivery
    /// ended with `error`, when `error` says WhatsApp cannot reach the
    /// number (it has no account there, or a final refusal of this
    /// channel) and this messenger can send the text: an SMS route for the
    /// number, or the hosted provider. An invalid number is not tried again
    /// by SMS (no channel reaches it), nor is a failure that a retry may
    /// cure (an outage, a throttle), which keeps the message on WhatsApp.
    pub fn sms_fallback(&self, envelope: &Envelope, error: &DeliveryError) -> Option<Envelope> {
        if !matches!(error, DeliveryError::NotOnChannel | DeliveryError::Rejected(_)) {
            return None;
        }
        let sms = Self::sms_instead(envelope)?;
        let can_send = match (&sms, &self.mode) {
            (Envelope::Sms(message), _) => self
                .local_routes()
                .is_some_and(|routes| !routes.sms.for_number(&message.to).is_empty()),
            (Envelope::Hosted { .. }, Mode::Hosted { .. }) => true,
            _ => false,
        };
        can_send.then_some(sms)
    }
}

#[cfg(test)]
mod tests;
