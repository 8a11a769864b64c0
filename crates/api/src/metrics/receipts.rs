//! The series of what happens after a provider accepts a message: its
//! delivery receipts, resends through another provider when a receipt says
//! it did not arrive, and codes sent by SMS instead when the number is not
//! on WhatsApp.
//!
//! Providers, outcomes and channels are fixed names, so the series stay
//! bounded.

use prometheus_client::registry::Registry as Families;

use super::{Counters, labels, register};

/// The families, registered once with the rest.
#[derive(Debug, Default)]
pub(super) struct AfterSend {
    receipts: Counters<2>,
    undelivered_resends: Counters<2>,
    channel_fallbacks: Counters<2>,
}

impl AfterSend {
    pub(super) fn register(families: &mut Families) -> Self {
        let after = Self::default();
        register(
            families,
            "receipts",
            "Providers' delivery receipts, by provider and outcome: recorded, resent (it said the message did not \
             arrive and it went again through another provider), unknown (no message has its id), bad_signature \
             (refused with 403) or malformed.",
            after.receipts.clone(),
        );
        register(
            families,
            "undelivered_resends",
            "Messages a receipt said did not arrive, sent again through another provider of their route.",
            after.undelivered_resends.clone(),
        );
        register(
            families,
            "channel_fallbacks",
            "Codes that could not reach their number on a channel (not a WhatsApp user) and were sent by another \
             (SMS) instead.",
            after.channel_fallbacks.clone(),
        );
        after
    }

    pub(super) fn receipt(&self, provider: &str, outcome: &str) {
        self.receipts
            .get_or_create(&labels(["provider", "outcome"], [provider, outcome]))
            .inc();
    }

    pub(super) fn undelivered_resend(&self, from: &str, to: &str) {
        self.undelivered_resends
            .get_or_create(&labels(["from", "to"], [from, to]))
            .inc();
    }

    pub(super) fn channel_fallback(&self, from: &str, to: &str) {
        self.channel_fallbacks
            .get_or_create(&labels(["from", "to"], [from, to]))
            .inc();
    }
}
