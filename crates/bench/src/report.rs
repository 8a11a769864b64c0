//! The results: the printed table, `latest.json` and the chart.

use std::fmt::Write as _;

use serde_json::json;

/// One measured row: a flow (or a ceiling) at one concurrency.
#[derive(Debug, Clone)]
pub struct Row {
    pub flow: String,
    pub clients: usize,
    /// Requests per second (for the argon2 ceiling: hashes per second).
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    /// What the figure is compared with, and that ceiling's figure.
    pub ceiling: Option<(String, f64)>,
}

impl Row {
    pub fn ratio(&self) -> Option<f64> {
        self.ceiling
            .as_ref()
            .filter(|(_, ceiling)| *ceiling > 0.0)
            .map(|(_, ceiling)| self.rps / ceiling)
    }
}

/// A target the issue sets, checked against this run.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub value: f64,
    /// `≥ limit` when `at_least`, else `≤ limit`.
    pub limit: f64,
    pub at_least: bool,
    pub unit: &'static str,
}

impl Target {
    pub fn met(&self) -> bool {
        if self.at_least {
            self.value >= self.limit
        } else {
            self.value <= self.limit
        }
    }
}

/// Latency percentiles (ms) of microsecond samples.
pub fn percentiles(samples: &mut [u32]) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    samples.sort_unstable();
    let at = |q: f64| {
        let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        f64::from(samples[index]) / 1000.0
    };
    (at(0.50), at(0.99))
}

pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:>7} {:>10} {:>8} {:>8} {:>7} {:>26} {:>6}",
        "flow", "clients", "req/s", "p50 ms", "p99 ms", "errors", "ceiling (req/s)", "ratio"
    );
    for row in rows {
        let ceiling = row
            .ceiling
            .as_ref()
            .map_or_else(String::new, |(kind, rps)| format!("{kind} {rps:.0}"));
        let ratio = row.ratio().map_or_else(String::new, |ratio| format!("{ratio:.2}"));
        let _ = writeln!(
            out,
            "{:<28} {:>7} {:>10.0} {:>8.2} {:>8.2} {:>7} {:>26} {:>6}",
            row.flow, row.clients, row.rps, row.p50_ms, row.p99_ms, row.errors, ceiling, ratio
        );
    }
    out
}

pub fn targets_text(targets: &[Target]) -> String {
    let mut out = String::new();
    for target in targets {
        let verdict = if target.met() { "ok  " } else { "MISS" };
        let relation = if target.at_least { "≥" } else { "≤" };
        let _ = writeln!(
            out,
            "[{verdict}] {}: {:.2}{} ({relation} {}{})",
            target.name, target.value, target.unit, target.limit, target.unit
        );
    }
    out
}

pub fn to_json(rows: &[Row], targets: &[Target], context: serde_json::Value) -> serde_json::Value {
    json!({
        "context": context,
        "results": rows.iter().map(|row| json!({
            "flow": row.flow,
            "clients": row.clients,
            "requests_per_second": row.rps,
            "p50_ms": row.p50_ms,
            "p99_ms": row.p99_ms,
            "errors": row.errors,
            "ceiling": row.ceiling.as_ref().map(|(kind, rps)| json!({"kind": kind, "requests_per_second": rps})),
            "ratio": row.ratio(),
        })).collect::<Vec<_>>(),
        "targets": targets.iter().map(|target| json!({
            "name": target.name,
            "value": target.value,
            "limit": target.limit,
            "at_least": target.at_least,
            "unit": target.unit,
            "met": target.met(),
        })).collect::<Vec<_>>(),
    })
}

const COLOURS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// One line of the chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    /// Ceilings are dashed.
    pub dashed: bool,
    /// (clients, requests/s).
    pub points: Vec<(usize, f64)>,
}

/// Throughput against concurrency, one line per series, on a log-scaled
/// client axis.
pub fn chart(series: &[Series]) -> String {
    let (width, height, left, right, top, bottom) = (760.0, 440.0, 70.0, 190.0, 30.0, 50.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let clients: Vec<usize> = {
        let mut all: Vec<usize> = series.iter().flat_map(|line| line.points.iter().map(|p| p.0)).collect();
        all.sort_unstable();
        all.dedup();
        all
    };
    let max_rps = series
        .iter()
        .flat_map(|line| line.points.iter().map(|p| p.1))
        .fold(1.0_f64, f64::max)
        * 1.1;
    let (min_log, max_log) = (
        (clients.first().copied().unwrap_or(1) as f64).log2(),
        (clients.last().copied().unwrap_or(2) as f64).log2().max(1.0),
    );
    let x = |c: usize| left + ((c as f64).log2() - min_log) / (max_log - min_log).max(1.0) * plot_w;
    let y = |rps: f64| top + plot_h - rps / max_rps * plot_h;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="18" text-anchor="middle" font-size="14">phonegate: requests/s vs concurrent clients (dashed: ceilings)</text>"#,
        left + plot_w / 2.0
    );
    for step in 0..=5 {
        let rps = max_rps * f64::from(step) / 5.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{rps:.0}</text>"##,
            left + plot_w,
            left - 6.0,
            y(rps) + 4.0,
            y = y(rps)
        );
    }
    for &c in &clients {
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{top}" y2="{}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle">{c}</text>"##,
            top + plot_h,
            top + plot_h + 16.0,
            x = x(c)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">clients</text>"#,
        left + plot_w / 2.0,
        height - 10.0
    );
    for (index, Series { name, dashed, points }) in series.iter().enumerate() {
        let colour = COLOURS[index / 2 % COLOURS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|&(c, rps)| format!("{:.1},{:.1}", x(c), y(rps)))
            .collect();
        let dash = if *dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>"#,
            path.join(" ")
        );
        let legend_y = top + 16.0 * index as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{}" x2="{}" y1="{legend_y}" y2="{legend_y}" stroke="{colour}" stroke-width="2"{dash}/><text x="{}" y="{}">{name}</text>"#,
            width - right + 10.0,
            width - right + 34.0,
            width - right + 40.0,
            legend_y + 4.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let mut samples: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(percentiles(&mut samples), (50.0, 99.0));
        assert_eq!(percentiles(&mut []), (0.0, 0.0));
    }

    #[test]
    fn ratios_and_targets() {
        let row = Row {
            flow: "pin-auth".into(),
            clients: 32,
            rps: 600.0,
            p50_ms: 1.0,
            p99_ms: 2.0,
            errors: 0,
            ceiling: Some(("db".into(), 1000.0)),
        };
        assert_eq!(row.ratio(), Some(0.6));
        let target = Target {
            name: "x".into(),
            value: 0.6,
            limit: 0.6,
            at_least: true,
            unit: "",
        };
        assert!(target.met());
        assert!(table(&[row]).contains("db 1000"));
    }

    #[test]
    fn the_chart_is_an_svg_with_one_line_per_series() {
        let svg = chart(&[
            Series {
                name: "pin-auth".into(),
                dashed: false,
                points: vec![(1, 10.0), (8, 50.0)],
            },
            Series {
                name: "pin-auth db".into(),
                dashed: true,
                points: vec![(1, 20.0), (8, 90.0)],
            },
        ]);
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("stroke-dasharray"));
    }
}
