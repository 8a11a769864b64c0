//! The metrics registry behind `/metrics`: labelled counters and latency
//! histograms in memory, rendered in Prometheus' text format.
//!
//! Hand-written rather than a metrics stack: a handful of families, each a
//! mutex-guarded map from label values to a count or a histogram. Every
//! label value is a fixed name (a route template, a purpose, an outcome, a
//! provider's numeric error code), never a raw path or user input, so the
//! number of series stays small and no secret can end up in a label.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::Method,
    middleware::Next,
    response::Response,
};
use phonegate_domain::ports::Metrics;

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

/// A family of series with the same label names: one value per set of
/// label values.
#[derive(Debug)]
struct Family<V> {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    values: Mutex<BTreeMap<Vec<String>, V>>,
}

/// Counters with the same label names.
type Counters = Family<u64>;
/// Latency histograms with the same label names.
type Histograms = Family<Histogram>;

impl<V: Default> Family<V> {
    const fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Self {
            name,
            help,
            labels,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    /// Applies `change` to the value of `labels`, created at its default.
    fn update(&self, labels: &[&str], change: impl FnOnce(&mut V)) {
        debug_assert_eq!(labels.len(), self.labels.len(), "{}", self.name);
        if let Ok(mut values) = self.values.lock() {
            change(
                values
                    .entry(labels.iter().map(|&value| value.to_owned()).collect())
                    .or_default(),
            );
        }
    }

    /// Reads the value of `labels` with `read`, if there is one.
    fn read<R>(&self, labels: &[&str], read: impl FnOnce(&V) -> R) -> Option<R> {
        let key: Vec<String> = labels.iter().map(|&value| value.to_owned()).collect();
        self.values.lock().ok()?.get(&key).map(read)
    }
}

impl Counters {
    fn inc(&self, labels: &[&str]) {
        self.update(labels, |value| *value += 1);
    }

    fn get(&self, labels: &[&str]) -> u64 {
        self.read(labels, |value| *value).unwrap_or(0)
    }

    fn render(&self, out: &mut String) {
        let _ = write!(
            out,
            "# HELP {} {}\n# TYPE {} counter\n",
            self.name, self.help, self.name
        );
        if let Ok(values) = self.values.lock() {
            for (key, value) in values.iter() {
                let _ = writeln!(out, "{}{} {value}", self.name, label_set(self.labels, key, None));
            }
        }
    }
}

/// One latency histogram: per-bucket counts (not cumulative), the sum and
/// the count.
#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histograms {
    fn observe(&self, labels: &[&str], elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        self.update(labels, |histogram| {
            if let Some(bucket) = BUCKETS.iter().position(|&bound| seconds <= bound) {
                histogram.buckets[bucket] += 1;
            }
            histogram.sum += seconds;
            histogram.count += 1;
        });
    }

    fn count(&self, labels: &[&str]) -> u64 {
        self.read(labels, |histogram| histogram.count).unwrap_or(0)
    }

    fn render(&self, out: &mut String) {
        let name = self.name;
        let _ = write!(out, "# HELP {name} {}\n# TYPE {name} histogram\n", self.help);
        let Ok(values) = self.values.lock() else {
            return;
        };
        for (key, histogram) in values.iter() {
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(histogram.buckets) {
                cumulative += count;
                let le = bound.to_string();
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {cumulative}",
                    label_set(self.labels, key, Some(&le))
                );
            }
            let all = label_set(self.labels, key, Some("+Inf"));
            let plain = label_set(self.labels, key, None);
            let _ = writeln!(out, "{name}_bucket{all} {}", histogram.count);
            let _ = writeln!(out, "{name}_sum{plain} {}", histogram.sum);
            let _ = writeln!(out, "{name}_count{plain} {}", histogram.count);
        }
    }
}

/// `{a="x",b="y"}` (with `le` last for histogram buckets), values escaped
/// as the text format requires; empty when there are no labels.
fn label_set(names: &[&str], values: &[String], le: Option<&str>) -> String {
    let mut pairs: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(name, value)| format!("{name}=\"{}\"", escape(value)))
        .collect();
    if let Some(le) = le {
        pairs.push(format!("le=\"{le}\""));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Every counter and histogram phonegate keeps, besides the abuse counters
/// and the outbox backlog that `/metrics` reads from their owners.
#[derive(Debug)]
pub struct Registry {
    providers: DeliveryProviders,
    messages_sent: Counters,
    delivery_failures: Counters,
    verifications: Counters,
    provider_latency: Histograms,
    provider_errors: Counters,
    provider_error_codes: Counters,
    http_requests: Counters,
    http_latency: Histograms,
    phone_locks: Counters,
}

impl Registry {
    pub fn new(providers: DeliveryProviders) -> Self {
        Self {
            providers,
            messages_sent: Counters::new(
                "phonegate_messages_sent_total",
                "Codes (texts, calls) and reset emails a provider accepted, by surface, channel and provider.",
                &["surface", "channel", "provider"],
            ),
            delivery_failures: Counters::new(
                "phonegate_delivery_failures_total",
                "Delivery attempts that did not send: retry (will be tried again), failed (refused for good), dropped (expired first).",
                &["surface", "channel", "provider", "outcome"],
            ),
            verifications: Counters::new(
                "phonegate_verifications_total",
                "Code checks by surface and outcome (verified, wrong_code, not_found, expired, exhausted, closed, refused, locked, error).",
                &["surface", "outcome"],
            ),
            provider_latency: Histograms::new(
                "phonegate_provider_request_duration_seconds",
                "How long calls to the SMS, voice, verification and mail providers took, retries included.",
                &["provider", "operation"],
            ),
            provider_errors: Counters::new(
                "phonegate_provider_errors_total",
                "Provider calls that failed, by error (invalid_number, rejected, rate_limited, misconfigured, unavailable).",
                &["provider", "operation", "error"],
            ),
            provider_error_codes: Counters::new(
                "phonegate_provider_error_codes_total",
                "Errors a provider answered, by its own error code (Twilio's 21211, 20003, ...; http_<status> without one).",
                &["provider", "operation", "code"],
            ),
            http_requests: Counters::new(
                "phonegate_http_requests_total",
                "HTTP requests by route template, method and status.",
                &["route", "method", "status"],
            ),
            http_latency: Histograms::new(
                "phonegate_http_request_duration_seconds",
                "How long HTTP requests took to answer, by route template.",
                &["route"],
            ),
            phone_locks: Counters::new(
                "phonegate_phone_locks_total",
                "Phone numbers locked out of code checks and sends after too many wrong codes, by the surface of the check that locked them.",
                &["surface"],
            ),
        }
    }

    /// Records one answered HTTP request. `route` is the matched route
    /// template (`/api/v1/tokens/{id}`), never the request's own path.
    pub fn http_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.http_requests.inc(&[route, method, &status.to_string()]);
        self.http_latency.observe(&[route], elapsed);
    }

    /// Appends every family in Prometheus' text format to `out`.
    pub fn render(&self, out: &mut String) {
        self.messages_sent.render(out);
        self.delivery_failures.render(out);
        self.verifications.render(out);
        self.provider_latency.render(out);
        self.provider_errors.render(out);
        self.provider_error_codes.render(out);
        self.http_requests.render(out);
        self.http_latency.render(out);
        self.phone_locks.render(out);
    }

    /// Messages sent on `surface` by `channel` through `provider`.
    pub fn messages_sent(&self, surface: &str, channel: &str, provider: &str) -> u64 {
        self.messages_sent.get(&[surface, channel, provider])
    }

    /// Code checks on `surface` that ended with `outcome`.
    pub fn verifications(&self, surface: &str, outcome: &str) -> u64 {
        self.verifications.get(&[surface, outcome])
    }

    /// Provider calls timed for `provider` and `operation`.
    pub fn provider_calls(&self, provider: &str, operation: &str) -> u64 {
        self.provider_latency.count(&[provider, operation])
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
    fn delivery(&self, purpose: &'static str, kind: &'static str, outcome: &'static str) {
        let (channel, provider) = self.channel_of(kind);
        if outcome == "sent" {
            self.messages_sent.inc(&[purpose, channel, provider]);
        } else {
            self.delivery_failures.inc(&[purpose, channel, provider, outcome]);
        }
    }

    fn code_check(&self, purpose: &'static str, outcome: &'static str) {
        self.verifications.inc(&[purpose, outcome]);
    }

    fn provider_call(&self, provider: &'static str, operation: &'static str, elapsed: Duration, outcome: &'static str) {
        self.provider_latency.observe(&[provider, operation], elapsed);
        if outcome != "ok" {
            self.provider_errors.inc(&[provider, operation, outcome]);
        }
    }

    fn provider_error_code(&self, provider: &'static str, operation: &'static str, code: &str) {
        self.provider_error_codes.inc(&[provider, operation, code]);
    }

    fn phone_locked(&self, purpose: &'static str) {
        self.phone_locks.inc(&[purpose]);
    }
}

/// The method as a label: the standard ones by name, anything else as
/// `other`, so that made-up methods cannot add series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware counting every request by its matched route template (or
/// `unmatched`), method and status, and timing it. It must be added with
/// `Router::layer`, which wraps each route, so that the route is known.
pub(crate) async fn track(State(registry): State<Arc<Registry>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    registry.http_request(&route, method, response.status().as_u16(), started.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        Registry::new(DeliveryProviders {
            sms: "twilio",
            mail: "smtp",
        })
    }

    #[test]
    fn deliveries_are_counted_by_surface_channel_and_provider() {
        let registry = registry();
        registry.delivery("pin_auth", "sms", "sent");
        registry.delivery("pin_auth", "sms", "sent");
        registry.delivery("phone_login", "call", "sent");
        registry.delivery("password_reset", "mail", "sent");
        registry.delivery("pin_auth", "sms", "retry");
        assert_eq!(registry.messages_sent("pin_auth", "sms", "twilio"), 2);
        assert_eq!(registry.messages_sent("phone_login", "call", "twilio"), 1);
        assert_eq!(registry.messages_sent("password_reset", "mail", "smtp"), 1);
        let mut text = String::new();
        registry.render(&mut text);
        assert!(
            text.contains(
                "phonegate_delivery_failures_total{surface=\"pin_auth\",channel=\"sms\",provider=\"twilio\",outcome=\"retry\"} 1"
            ),
            "{text}"
        );
    }

    #[test]
    fn histograms_render_cumulative_buckets_sum_and_count() {
        let registry = registry();
        registry.provider_call("twilio", "send_sms", Duration::from_millis(30), "ok");
        registry.provider_call("twilio", "send_sms", Duration::from_millis(700), "unavailable");
        registry.provider_call("twilio", "send_sms", Duration::from_secs(60), "unavailable");
        let mut text = String::new();
        registry.render(&mut text);
        let series = "phonegate_provider_request_duration_seconds_bucket{provider=\"twilio\",operation=\"send_sms\"";
        assert!(text.contains(&format!("{series},le=\"0.025\"}} 0")), "{text}");
        assert!(text.contains(&format!("{series},le=\"0.05\"}} 1")), "{text}");
        assert!(text.contains(&format!("{series},le=\"1\"}} 2")), "{text}");
        assert!(text.contains(&format!("{series},le=\"30\"}} 2")), "{text}");
        assert!(text.contains(&format!("{series},le=\"+Inf\"}} 3")), "{text}");
        assert!(
            text.contains(
                "phonegate_provider_request_duration_seconds_count{provider=\"twilio\",operation=\"send_sms\"} 3"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "phonegate_provider_errors_total{provider=\"twilio\",operation=\"send_sms\",error=\"unavailable\"} 2"
            ),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            label_set(&["a"], &["x\"y\\z\n".to_owned()], None),
            "{a=\"x\\\"y\\\\z\\n\"}"
        );
        assert_eq!(label_set(&[], &[], None), "");
    }
}
