//! The `/metrics` body in the format the scraper asked for.
//!
//! `prometheus-client` writes OpenMetrics 1.0, which Prometheus asks for
//! in its `Accept` header. Everything else (`curl`, older scrapers, agents
//! that only speak the classic format) gets Prometheus' text format 0.0.4,
//! as `/metrics` always served: the two differ only in how a counter
//! family is named in its `# HELP` and `# TYPE` lines (OpenMetrics drops
//! the `_total` that its samples keep) and in the closing `# EOF`, so the
//! classic body is the OpenMetrics one with those lines rewritten. The
//! samples, their names and labels are the same in both, and whole bucket
//! bounds are written as `/metrics` always wrote them (`le="1"`).

use std::{borrow::Cow, collections::HashSet};

use axum::{
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::{EncodeGaugeValue, text},
    metrics::{
        counter::ConstCounter,
        family::Family,
        gauge::{ConstGauge, Gauge},
    },
    registry::Registry as Families,
};

use super::Registry;

/// The media type of OpenMetrics 1.0, which Prometheus asks for first.
const OPEN_METRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The media type of Prometheus' classic text format, which the page had
/// before it could be OpenMetrics.
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Values read from their owners at this scrape (the abuse counters, the
/// outbox backlog), written beside the registry's families.
#[derive(Debug)]
pub struct Scrape {
    families: Families,
}

impl Default for Scrape {
    fn default() -> Self {
        Self {
            families: Families::with_prefix("phonegate"),
        }
    }
}

impl Scrape {
    /// A counter read from its owner. `name` has neither the `phonegate_`
    /// prefix nor the `_total` suffix; both are added.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        super::register(&mut self.families, name, help, ConstCounter::new(value));
    }

    /// Gauges read from their owner, one per value of `label`. `name` has
    /// no `phonegate_` prefix.
    pub fn labelled_gauges(&mut self, name: &str, help: &str, label: &'static str, values: &[(&str, i64)]) {
        let family: Family<super::Labels<1>, Gauge> = Family::default();
        for (value, gauge) in values {
            family.get_or_create(&super::labels([label], [value])).set(*gauge);
        }
        super::register(&mut self.families, name, help, family);
    }

    /// A gauge read from its owner. `name` has no `phonegate_` prefix.
    pub fn gauge<N>(&mut self, name: &str, help: &str, value: N)
    where
        N: EncodeGaugeValue + std::fmt::Debug + Send + Sync + 'static,
    {
        super::register(&mut self.families, name, help, ConstGauge::new(value));
    }
}

/// A `/metrics` answer: a body and its media type.
#[derive(Debug)]
pub struct Exposition {
    body: String,
    content_type: &'static str,
}

impl Exposition {
    /// OpenMetrics when `headers` accept it, the classic text format
    /// otherwise.
    pub fn negotiate(headers: &HeaderMap, registry: &Registry, scrape: Scrape) -> Self {
        if accepts_open_metrics(headers) {
            Self::open_metrics(registry, scrape)
        } else {
            Self::text(registry, scrape)
        }
    }

    /// OpenMetrics 1.0, as `prometheus-client` writes it.
    pub fn open_metrics(registry: &Registry, scrape: Scrape) -> Self {
        let mut body = String::new();
        // Writing to a String cannot fail, and the encoders refuse nothing
        // this registry holds (counters, i64 and f64 gauges, histograms).
        let _ = text::encode_registry(&mut body, &scrape.families);
        let _ = registry.encode(&mut body);
        let _ = text::encode_eof(&mut body);
        let body = body
            .lines()
            .map(whole_bound)
            .fold(String::with_capacity(body.len()), |mut out, line| {
                out.push_str(&line);
                out.push('\n');
                out
            });
        Self {
            body,
            content_type: OPEN_METRICS,
        }
    }

    /// Prometheus' classic text format 0.0.4.
    pub fn text(registry: &Registry, scrape: Scrape) -> Self {
        Self {
            body: classic(&Self::open_metrics(registry, scrape).body),
            content_type: TEXT,
        }
    }

    /// The body alone, for tests and for callers that set their own
    /// headers.
    pub fn into_body(self) -> String {
        self.body
    }
}

impl IntoResponse for Exposition {
    fn into_response(self) -> Response {
        let mut response = self.body.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        // Caches between the scraper and the service must key the page by
        // the format it was asked in.
        headers.insert(header::VARY, HeaderValue::from_static("accept"));
        response
    }
}

/// The classic text format of an OpenMetrics body: counter families are
/// named with `_total` in their `# HELP` and `# TYPE` lines, as their
/// samples are, and the `# EOF` and `# UNIT` lines go.
fn classic(open_metrics: &str) -> String {
    let counters: HashSet<&str> = open_metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open_metrics.len() + 8 * counters.len());
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let descriptor = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|tag| Some((tag, line.strip_prefix(tag)?)));
        match descriptor {
            Some((tag, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(tag);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                out.push(' ');
                out.push_str(tail);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Whether an `Accept` header lists OpenMetrics with a non-zero quality.
/// Media types are case-insensitive; parameters other than `q` do not
/// matter here, as there is one OpenMetrics version to give.
fn accepts_open_metrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media_type = parts.next().unwrap_or_default();
            let quality = parts
                .filter_map(|parameter| parameter.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, value)| value.trim().parse::<f32>().unwrap_or(0.0));
            media_type.eq_ignore_ascii_case("application/openmetrics-text") && quality > 0.0
        })
}

/// A bucket sample with a whole-number bound written as `/metrics` always
/// wrote it (`le="1"`, where the client writes `le="1.0"`): Prometheus 2
/// stores the label as it reads it, so the other spelling would start new
/// series under every dashboard that names a bound. Prometheus 3 reads
/// both as the same bound. The client writes `le` first in a bucket's
/// labels.
fn whole_bound(line: &str) -> Cow<'_, str> {
    const BOUND: &str = "_bucket{le=\"";
    let Some(start) = line.find(BOUND).map(|at| at + BOUND.len()) else {
        return Cow::Borrowed(line);
    };
    let Some(length) = line[start..].find('"') else {
        return Cow::Borrowed(line);
    };
    match line[start..start + length].strip_suffix(".0") {
        Some(whole) if !whole.is_empty() && whole.bytes().all(|byte| byte.is_ascii_digit()) => {
            Cow::Owned(format!("{}{whole}{}", &line[..start], &line[start + length..]))
        }
        _ => Cow::Borrowed(line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::DeliveryProviders;
    use phonegate_domain::ports::Metrics as _;

    fn registry() -> Registry {
        let registry = Registry::new(DeliveryProviders {
            sms: "console",
            mail: "console",
        });
        registry.code_check("pin_auth", "verified");
        registry.provider_call("console", "send_sms", std::time::Duration::from_millis(3), "ok");
        registry
    }

    fn scrape() -> Scrape {
        let mut scrape = Scrape::default();
        scrape.counter("rate_limited", "Refused by a limit.", 4);
        scrape.gauge("outbox_pending", "Messages waiting.", 2_i64);
        scrape
    }

    #[test]
    fn open_metrics_names_counter_families_without_total_and_ends_with_eof() {
        let body = Exposition::open_metrics(&registry(), scrape()).into_body();
        assert!(
            body.contains("# TYPE phonegate_rate_limited counter\nphonegate_rate_limited_total 4\n"),
            "{body}"
        );
        assert!(body.contains("# TYPE phonegate_verifications counter\n"), "{body}");
        assert!(
            body.contains("# TYPE phonegate_outbox_pending gauge\nphonegate_outbox_pending 2\n"),
            "{body}"
        );
        assert!(body.ends_with("# EOF\n"), "{body}");
    }

    #[test]
    fn the_classic_format_names_counter_families_as_their_samples() {
        let body = Exposition::text(&registry(), scrape()).into_body();
        assert!(
            body.contains(
                "# HELP phonegate_rate_limited_total Refused by a limit.\n\
                 # TYPE phonegate_rate_limited_total counter\nphonegate_rate_limited_total 4\n"
            ),
            "{body}"
        );
        assert!(
            body.contains(
                "# TYPE phonegate_verifications_total counter\n\
                 phonegate_verifications_total{surface=\"pin_auth\",outcome=\"verified\"} 1\n"
            ),
            "{body}"
        );
        // Whole bucket bounds read as they always did, in both formats; the
        // others as written.
        assert!(
            Exposition::open_metrics(&registry(), scrape())
                .into_body()
                .contains("phonegate_provider_request_duration_seconds_bucket{le=\"1\",provider=\"console\"")
        );
        assert!(
            body.contains("phonegate_provider_request_duration_seconds_bucket{le=\"1\",provider=\"console\""),
            "{body}"
        );
        assert!(
            body.contains("phonegate_provider_request_duration_seconds_bucket{le=\"0.005\",provider=\"console\""),
            "{body}"
        );
        // Gauges and histograms keep their names.
        assert!(body.contains("# TYPE phonegate_outbox_pending gauge\n"), "{body}");
        assert!(
            body.contains("# TYPE phonegate_provider_request_duration_seconds histogram\n"),
            "{body}"
        );
        assert!(!body.contains("# EOF"), "{body}");
        // Every sample is in both.
        let samples = |body: &str| -> Vec<String> {
            body.lines()
                .filter(|line| !line.starts_with('#'))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(
            samples(&body),
            samples(&Exposition::open_metrics(&registry(), scrape()).into_body())
        );
    }

    #[test]
    fn prometheus_asking_for_open_metrics_gets_it() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,\
                 text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            ),
        );
        let response = Exposition::negotiate(&headers, &registry(), scrape()).into_response();
        assert_eq!(response.headers()[header::CONTENT_TYPE], OPEN_METRICS);
        assert_eq!(response.headers()[header::VARY], "accept");
        let response = Exposition::negotiate(&HeaderMap::new(), &registry(), scrape()).into_response();
        assert_eq!(response.headers()[header::CONTENT_TYPE], TEXT);
        for refusing in [
            "application/openmetrics-text;q=0, text/plain",
            "text/plain;version=0.0.4, application/openmetrics-text; Q=0.0",
            "application/openmetrics-textual",
        ] {
            headers.insert(header::ACCEPT, HeaderValue::from_static(refusing));
            let response = Exposition::negotiate(&headers, &registry(), scrape()).into_response();
            assert_eq!(response.headers()[header::CONTENT_TYPE], TEXT, "{refusing}");
        }
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("Application/OpenMetrics-Text; version=1.0.0"),
        );
        let response = Exposition::negotiate(&headers, &registry(), scrape()).into_response();
        assert_eq!(response.headers()[header::CONTENT_TYPE], OPEN_METRICS);
    }
}
