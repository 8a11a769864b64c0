//! The conversion series: codes sent, delivered and verified per provider
//! and destination calling code, and the pumping guard's held sends and
//! tripped prefixes.
//!
//! Calling codes and guard prefixes are digits from a bounded set (a few
//! hundred calling codes plus the configured prefixes), and providers are
//! configured names, so the series stay bounded.

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry as Families,
};

use super::{Counters, Labels, labels, register};

/// The families, registered once with the rest.
#[derive(Debug, Default)]
pub(super) struct Conversion {
    sends: Counters<2>,
    deliveries: Counters<2>,
    verifications: Counters<2>,
    held: Counters<1>,
    tripped: Family<Labels<1>, Gauge>,
}

impl Conversion {
    pub(super) fn register(families: &mut Families) -> Self {
        let conversion = Self::default();
        register(
            families,
            "otp_sends",
            "Codes a provider accepted, by provider and destination calling code.",
            conversion.sends.clone(),
        );
        register(
            families,
            "otp_deliveries",
            "Codes whose provider's receipt said they reached the number, by provider and calling code.",
            conversion.deliveries.clone(),
        );
        register(
            families,
            "otp_verifications",
            "Codes verified, by the provider that sent them (none when unknown) and calling code.",
            conversion.verifications.clone(),
        );
        register(
            families,
            "pumping_held",
            "Sends held by the pumping guard because their prefix's codes are not being verified, by prefix.",
            conversion.held.clone(),
        );
        register(
            families,
            "pumping_tripped",
            "1 while this instance's pumping guard holds sends to the prefix (low conversion), else 0.",
            conversion.tripped.clone(),
        );
        conversion
    }

    pub(super) fn sent(&self, provider: &str, calling_code: &str) {
        inc(&self.sends, provider, calling_code);
    }

    pub(super) fn delivered(&self, provider: &str, calling_code: &str) {
        inc(&self.deliveries, provider, calling_code);
    }

    pub(super) fn verified(&self, provider: &str, calling_code: &str) {
        inc(&self.verifications, provider, calling_code);
    }

    pub(super) fn held(&self, prefix: &str) {
        self.held.get_or_create(&labels(["prefix"], [prefix])).inc();
    }

    pub(super) fn tripped(&self, prefix: &str, tripped: bool) {
        self.tripped
            .get_or_create(&labels(["prefix"], [prefix]))
            .set(i64::from(tripped));
    }
}

fn inc(family: &Family<Labels<2>, Counter>, provider: &str, calling_code: &str) {
    family
        .get_or_create(&labels(["provider", "calling_code"], [provider, calling_code]))
        .inc();
}
