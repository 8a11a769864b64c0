//! The metrics registry behind `/metrics`: labelled counters and latency
//! histograms kept by the Prometheus project's own Rust client
//! (`prometheus-client`), which also writes the exposition.
//!
//! `prometheus-client` rather than the `metrics` facade with its exporter:
//! the facade keeps one global recorder per process, while phonegate builds
//! one registry per application (the tests run dozens side by side, and
//! each asserts its own counts). The client's registry is an ordinary
//! value, and it brings no HTTP server of its own.
//!
//! Every label value is a fixed name (a route template, a purpose, an
//! outcome, a provider's error code), never a raw path or user input, so
//! the number of series stays small and no secret can end up in a label.
//! The one value a provider chooses, its error code, is escaped on the way
//! out all the same, because the client writes label values verbatim.

use std::{fmt::Write as _, time::Duration};

use phonegate_domain::ports::Metrics;
use prometheus_client::{
    encoding::{EncodeLabelValue, LabelValueEncoder, text},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Metric, Registry as Families},
};

mod conversion;
mod exposition;
mod http;
mod receipts;

pub use exposition::{Exposition, Scrape};
pub(crate) use http::track;
use http::{Answered, LatencyLabels, RequestLabels};

/// Upper bounds (seconds) of the latency histograms' buckets: from a fast
/// database answer to a provider call that times out.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Which provider delivers each channel, for the `provider` label of
/// delivered messages (the dispatcher only knows the channel).
#[derive(Debug, Clone, Copy)]
pub struct DeliveryProviders {
    /// `console`, `twilio` or `twilio_verify`: texts and calls.
    pub sms: &'static str,
    /// `console` or `smtp`: emails.
    pub mail: &'static str,
}

/// A label value, escaped as the text formats require when written.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct Value(String);

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl EncodeLabelValue for Value {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        escape(&self.0, encoder)
    }
}

/// Writes `value` with the escapes the text formats require (`\\`, `\"`,
/// `\n`): the client writes label values verbatim.
fn escape(value: &str, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
    for character in value.chars() {
        match character {
            '\\' => encoder.write_str("\\\\")?,
            '"' => encoder.write_str("\\\"")?,
            '\n' => encoder.write_str("\\n")?,
            other => encoder.write_char(other)?,
        }
    }
    Ok(())
}

/// The label set of a family with `N` labels: each name with its value.
type Labels<const N: usize> = [(&'static str, Value); N];

/// Builds a label set from names and values given side by side.
fn labels<const N: usize>(names: [&'static str; N], values: [&str; N]) -> Labels<N> {
    let mut values = values.into_iter();
    names.map(|name| (name, Value::from(values.next().unwrap_or_default())))
}

/// Counters with `N` labels.
type Counters<const N: usize> = Family<Labels<N>, Counter>;

/// Latency histograms with `N` labels, all with [`BUCKETS`].
type Histograms<const N: usize> = Family<Labels<N>, Histogram, fn() -> Histogram>;

fn histograms<const N: usize>() -> Histograms<N> {
    Histograms::new_with_constructor(|| Histogram::new(BUCKETS))
}

/// Every counter and histogram phonegate keeps, besides the abuse counters
/// and the outbox backlog that `/metrics` reads from their owners at each
/// scrape (see [`Exposition`]).
#[derive(Debug)]
pub struct Registry {
    providers: DeliveryProviders,
    families: Families,
    messages_sent: Counters<3>,
    delivery_failures: Counters<4>,
    verifications: Counters<2>,
    provider_latency: Histograms<2>,
    provider_errors: Counters<3>,
    provider_error_codes: Counters<3>,
    http_requests: Family<RequestLabels, Counter>,
    http_latency: Family<LatencyLabels, Histogram, fn() -> Histogram>,
    phone_locks: Counters<1>,
    provider_attempts: Counters<3>,
    failovers: Counters<2>,
    circuits_open: Family<Labels<2>, Gauge>,
    circuit_changes: Counters<3>,
    conversion: conversion::Conversion,
    after_send: receipts::AfterSend,
}

/// Registers `metric` under `help`, a sentence. prometheus-client ends
/// every help text with a full stop of its own, so the sentence's is
/// dropped here rather than doubled on the page.
fn register(families: &mut Families, name: &str, help: &str, metric: impl Metric) {
    families.register(name, help.strip_suffix('.').unwrap_or(help), metric);
}

impl Registry {
    pub fn new(providers: DeliveryProviders) -> Self {
        // Counters are registered without `_total`: the client adds it to
        // the samples, so the series are named as they always were.
        let mut families = Families::with_prefix("phonegate");
        let messages_sent = Counters::default();
        register(
            &mut families,
            "messages_sent",
            "Codes (texts, calls) and reset emails a provider accepted, by surface, channel and provider.",
            messages_sent.clone(),
        );
        let delivery_failures = Counters::default();
        register(
            &mut families,
            "delivery_failures",
            "Delivery attempts that did not send: retry (will be tried again), failed (refused for good), \
             dropped (expired first).",
            delivery_failures.clone(),
        );
        let verifications = Counters::default();
        register(
            &mut families,
            "verifications",
            "Code checks by surface and outcome (verified, wrong_code, not_found, expired, exhausted, closed, \
             refused, locked, error).",
            verifications.clone(),
        );
        let provider_latency = histograms();
        register(
            &mut families,
            "provider_request_duration_seconds",
            "How long calls to the SMS, voice, verification and mail providers took, retries included.",
            provider_latency.clone(),
        );
        let provider_errors = Counters::default();
        register(
            &mut families,
            "provider_errors",
            "Provider calls that failed, by error (invalid_number, rejected, rate_limited, misconfigured, \
             unavailable).",
            provider_errors.clone(),
        );
        let provider_error_codes = Counters::default();
        register(
            &mut families,
            "provider_error_codes",
            "Errors a provider answered, by its own error code (Twilio's 21211, 20003, ...; http_<status> \
             without one).",
            provider_error_codes.clone(),
        );
        let http_requests = Family::default();
        register(
            &mut families,
            "http_requests",
            "HTTP requests by route template, method and status.",
            http_requests.clone(),
        );
        let http_latency: Family<LatencyLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(BUCKETS));
        register(
            &mut families,
            "http_request_duration_seconds",
            "How long HTTP requests took to answer, by route template.",
            http_latency.clone(),
        );
        let phone_locks = Counters::default();
        register(
            &mut families,
            "phone_locks",
            "Phone numbers locked out of code checks and sends after too many wrong codes, by the surface of \
             the check that locked them.",
            phone_locks.clone(),
        );
        let provider_attempts = Counters::default();
        register(
            &mut families,
            "provider_attempts",
            "Calls to each SMS, voice, verification and mail provider, by operation and outcome (ok or the error).",
            provider_attempts.clone(),
        );
        let failovers = Counters::default();
        register(
            &mut families,
            "provider_failovers",
            "Messages moved at once from a failing provider to the next provider of their route.",
            failovers.clone(),
        );
        let circuits_open = Family::default();
        register(
            &mut families,
            "provider_circuit_open",
            "1 from when a provider's circuit for a channel opens (it failed too often in a row and routes skip it) until an attempt after the cool-off gets an answer, else 0.",
            circuits_open.clone(),
        );
        let circuit_changes = Counters::default();
        register(
            &mut families,
            "provider_circuit_changes",
            "Providers' circuits opening and closing.",
            circuit_changes.clone(),
        );
        let conversion = conversion::Conversion::register(&mut families);
        let after_send = receipts::AfterSend::register(&mut families);
        Self {
            after_send,
            providers,
            conversion,
            families,
            provider_attempts,
            failovers,
            circuits_open,
            circuit_changes,
            messages_sent,
            delivery_failures,
            verifications,
            provider_latency,
            provider_errors,
            provider_error_codes,
            http_requests,
            http_latency,
            phone_locks,
        }
    }

    /// Records one answered HTTP request, by its matched route template
    /// (`/api/v1/tokens/{id}`), never the request's own path.
    fn http_request(&self, answered: Answered) {
        self.http_requests.get_or_create(&answered.requests).inc();
        self.http_latency
            .get_or_create(&answered.latency)
            .observe(answered.seconds);
    }

    /// Appends every family of this registry to `out` in OpenMetrics' text
    /// format, without the closing `# EOF` (see [`Exposition`]).
    fn encode(&self, out: &mut String) -> std::fmt::Result {
        text::encode_registry(out, &self.families)
    }

    /// The channel and provider of an outbox envelope kind.
    fn channel_of(&self, kind: &'static str) -> (&'static str, &'static str) {
        match kind {
            "sms" | "hosted_sms" => ("sms", self.providers.sms),
            "call" | "hosted_call" => ("call", self.providers.sms),
            "mail" => ("mail", self.providers.mail),
            other => (other, "unknown"),
        }
    }
}

impl Metrics for Registry {
    fn delivery(
        &self,
        purpose: &'static str,
        kind: &'static str,
        provider: Option<&'static str>,
        outcome: &'static str,
    ) {
        let (channel, configured) = self.channel_of(kind);
        let provider = provider.unwrap_or(configured);
        if outcome == "sent" {
            self.messages_sent
                .get_or_create(&labels(
                    ["surface", "channel", "provider"],
                    [purpose, channel, provider],
                ))
                .inc();
        } else {
            self.delivery_failures
                .get_or_create(&labels(
                    ["surface", "channel", "provider", "outcome"],
                    [purpose, channel, provider, outcome],
                ))
                .inc();
        }
    }

    fn code_check(&self, purpose: &'static str, outcome: &'static str) {
        self.verifications
            .get_or_create(&labels(["surface", "outcome"], [purpose, outcome]))
            .inc();
    }

    fn provider_call(&self, provider: &'static str, operation: &'static str, elapsed: Duration, outcome: &'static str) {
        self.provider_attempts
            .get_or_create(&labels(
                ["provider", "operation", "outcome"],
                [provider, operation, outcome],
            ))
            .inc();
        self.provider_latency
            .get_or_create(&labels(["provider", "operation"], [provider, operation]))
            .observe(elapsed.as_secs_f64());
        if outcome != "ok" {
            self.provider_errors
                .get_or_create(&labels(
                    ["provider", "operation", "error"],
                    [provider, operation, outcome],
                ))
                .inc();
        }
    }

    fn provider_error_code(&self, provider: &'static str, operation: &'static str, code: &str) {
        self.provider_error_codes
            .get_or_create(&labels(["provider", "operation", "code"], [provider, operation, code]))
            .inc();
    }

    fn phone_locked(&self, purpose: &'static str) {
        self.phone_locks.get_or_create(&labels(["surface"], [purpose])).inc();
    }

    fn receipt(&self, provider: &'static str, outcome: &'static str) {
        self.after_send.receipt(provider, outcome);
    }

    fn undelivered_resend(&self, from: &str, to: &'static str) {
        self.after_send.undelivered_resend(from, to);
    }

    fn failover(&self, from: &'static str, to: &'static str) {
        self.failovers.get_or_create(&labels(["from", "to"], [from, to])).inc();
    }

    fn channel_fallback(&self, from: &'static str, to: &'static str) {
        self.after_send.channel_fallback(from, to);
    }

    fn provider_circuit(&self, provider: &'static str, channel: &'static str, open: bool) {
        self.circuits_open
            .get_or_create(&labels(["provider", "channel"], [provider, channel]))
            .set(i64::from(open));
        let change = if open { "opened" } else { "closed" };
        self.circuit_changes
            .get_or_create(&labels(["provider", "channel", "change"], [provider, channel, change]))
            .inc();
    }

    fn code_sent(&self, provider: &'static str, calling_code: &str) {
        self.conversion.sent(provider, calling_code);
    }

    fn code_delivered(&self, provider: &'static str, calling_code: &str) {
        self.conversion.delivered(provider, calling_code);
    }

    fn code_verified(&self, provider: &str, calling_code: &str) {
        self.conversion.verified(provider, calling_code);
    }

    fn pumping_held(&self, prefix: &str) {
        self.conversion.held(prefix);
    }

    fn pumping_tripped(&self, prefix: &str, tripped: bool) {
        self.conversion.tripped(prefix, tripped);
    }
}

#[cfg(test)]
mod tests;
