//! The end of a run: each row beside its ceiling, the targets checked, the
//! table printed and written (`latest.json`, `latest.txt`, `latest.svg`),
//! and the verdict.

use std::{process::ExitCode, time::Instant};

use phonegate::settings::Settings;
use serde_json::json;

use crate::{
    flows::{Flow, OTP_FLOWS},
    measurement::CpuTimes,
    options::Options,
    report::{self, Row, Target},
};

/// Everything the phases measured.
#[derive(Debug)]
pub struct Measurements {
    /// The flows over HTTP, by flow, then by concurrency.
    pub rows: Vec<Row>,
    /// Each OTP flow's in-process twin (its database ceiling), by flow and
    /// concurrency.
    pub ceilings: Vec<(Flow, usize, Row)>,
    /// Raw argon2 hashes per second on every core.
    pub argon2: f64,
    /// pin-auth at the target concurrency just before the sign-ins.
    pub idle: Row,
    /// The same while `sign_in_clients` clients sign in.
    pub mixed: Row,
    pub sign_in_clients: usize,
    /// The server's peak resident memory through phase 1, in MiB.
    pub peak_rss: Option<f64>,
    /// pin-auth on the database seeded large, when the scale run ran.
    pub scaled: Option<Row>,
    /// The users and challenges in the tables at the end.
    pub user_rows: i64,
    pub challenge_rows: i64,
}

/// Compares, prints and writes what the run measured; the exit code says
/// whether every measurement had at least one success.
pub fn finish(
    options: &Options,
    settings: &Settings,
    mut measured: Measurements,
    began: Instant,
    cpu_at_start: Option<CpuTimes>,
) -> anyhow::Result<ExitCode> {
    attach_ceilings(options, &mut measured);
    let all_rows = all_rows(options, &measured);
    let targets = targets(options, &measured);

    let elapsed = began.elapsed().as_secs_f64();
    let table = report::table(&all_rows);
    let targets_text = report::targets_text(&targets);
    println!("\n{table}\n{targets_text}");
    // On a virtual machine whose host is oversubscribed, a share of the CPU
    // time is "stolen" by other guests; it says how far to trust this run's
    // absolute figures (the ratios are measured side by side).
    let steal = cpu_at_start
        .zip(CpuTimes::read())
        .map(|(start, end)| end.steal_share_since(&start));
    match steal {
        Some(share) => println!(
            "finished in {elapsed:.0}s; {:.0}% of the CPU time was stolen by the hypervisor",
            share * 100.0
        ),
        None => println!("finished in {elapsed:.0}s"),
    }

    let context = json!({
        "smoke": options.smoke,
        "backend": if options.sqlite { "sqlite" } else { "postgres" },
        "cores": cores(),
        "pool_size": settings.database.max_connections,
        "seconds_per_measurement": options.duration.as_secs_f64(),
        "warmup_seconds": options.warmup.as_secs_f64(),
        "target_clients": options.target_clients(),
        "peak_rss_mib": measured.peak_rss,
        "elapsed_seconds": elapsed,
        "cpu_steal_share": steal,
        "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    });
    let json = report::to_json(&all_rows, &targets, context);
    std::fs::write(options.out.join("latest.json"), serde_json::to_string_pretty(&json)?)?;
    std::fs::write(options.out.join("latest.txt"), format!("{table}\n{targets_text}"))?;
    std::fs::write(options.out.join("latest.svg"), report::chart(&series(&measured)))?;
    println!(
        "wrote {0}/latest.json, {0}/latest.txt and {0}/latest.svg",
        options.out.display()
    );
    Ok(verdict(options, &all_rows))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// Gives each row the ceiling it is read against: healthz for profile at
/// the same concurrency, argon2 for sign-in, the in-process twin for each
/// OTP flow.
fn attach_ceilings(options: &Options, measured: &mut Measurements) {
    let find = |flow: &str, clients: usize| {
        measured
            .rows
            .iter()
            .find(|row| row.flow == flow && row.clients == clients)
            .map(|row| row.rps)
    };
    let healthz: Vec<(usize, f64)> = options
        .clients
        .iter()
        .map(|&c| (c, find("healthz", c).unwrap_or(0.0)))
        .collect();
    for row in &mut measured.rows {
        let flow = row.flow.clone();
        row.ceiling = match flow.as_str() {
            "profile" => healthz
                .iter()
                .find(|(c, _)| *c == row.clients)
                .map(|(_, rps)| ("http".to_owned(), *rps)),
            "sign-in" => Some(("argon2".to_owned(), measured.argon2)),
            "pin-auth" | "phone-login" | "phone-verify" => measured
                .ceilings
                .iter()
                .find(|(f, c, _)| f.name() == flow && *c == row.clients)
                .map(|(_, _, ceiling)| ("db".to_owned(), ceiling.rps)),
            _ => None,
        };
    }
}

/// pin-auth's throughput at the target concurrency on the empty database:
/// the scale run's ceiling.
fn empty_pin_auth(options: &Options, measured: &Measurements) -> Option<f64> {
    let at = options.target_clients();
    measured
        .rows
        .iter()
        .find(|row| row.flow == "pin-auth" && row.clients == at)
        .map(|row| row.rps)
}

/// The table's rows: the flows, then the ceilings and the special runs.
fn all_rows(options: &Options, measured: &Measurements) -> Vec<Row> {
    let mut all_rows = measured.rows.clone();
    all_rows.extend(measured.ceilings.iter().map(|(_, _, row)| row.clone()));
    all_rows.push(Row {
        flow: "argon2 (sign-in ceiling)".into(),
        clients: cores(),
        rps: measured.argon2,
        p50_ms: 0.0,
        p99_ms: 0.0,
        errors: 0,
        ceiling: None,
    });
    all_rows.push(measured.idle.clone());
    all_rows.push(measured.mixed.clone());
    if let Some(mut scaled) = measured.scaled.clone() {
        scaled.ceiling = empty_pin_auth(options, measured).map(|rps| ("empty db".to_owned(), rps));
        all_rows.push(scaled);
    }
    all_rows
}

/// The targets the issues set, read at the target concurrency.
fn targets(options: &Options, measured: &Measurements) -> Vec<Target> {
    let at = options.target_clients();
    let mut targets = Vec::new();
    let row_at = |flow: &str| measured.rows.iter().find(|row| row.flow == flow && row.clients == at);
    for flow in OTP_FLOWS {
        if let Some(row) = row_at(flow.name()) {
            targets.push(Target {
                name: format!("{} @{at}: share of the database ceiling", flow.name()),
                value: row.ratio().unwrap_or(0.0),
                limit: 0.60,
                at_least: true,
                unit: "",
            });
            targets.push(Target {
                name: format!("{} @{at}: p99", flow.name()),
                value: row.p99_ms,
                limit: 10.0,
                at_least: false,
                unit: " ms",
            });
        }
    }
    if let Some(row) = row_at("profile") {
        targets.push(Target {
            name: format!("profile (JWT read) @{at}: share of the HTTP ceiling"),
            value: row.ratio().unwrap_or(0.0),
            limit: 0.50,
            at_least: true,
            unit: "",
        });
    }
    let best_sign_in = measured
        .rows
        .iter()
        .filter(|row| row.flow == "sign-in")
        .filter_map(Row::ratio)
        .fold(0.0, f64::max);
    targets.push(Target {
        name: "sign-in: share of the argon2 ceiling (best concurrency)".into(),
        value: best_sign_in,
        limit: 0.85,
        at_least: true,
        unit: "",
    });
    let idle_pin_auth_p99 = measured.idle.p99_ms;
    if idle_pin_auth_p99 > 0.0 {
        targets.push(Target {
            name: format!(
                "pin-auth @{at} p99 during {} clients' sign-ins, over its idle p99 just before",
                measured.sign_in_clients
            ),
            value: measured.mixed.p99_ms / idle_pin_auth_p99,
            limit: 2.0,
            at_least: false,
            unit: "×",
        });
    }
    if let (Some(scaled), Some(empty)) = (&measured.scaled, empty_pin_auth(options, measured)) {
        targets.push(Target {
            name: format!(
                "pin-auth @{at} with {} users and {} challenges, over empty",
                measured.user_rows, measured.challenge_rows
            ),
            value: scaled.rps / empty,
            limit: 0.80,
            at_least: true,
            unit: "",
        });
    }
    if let Some(rss) = measured.peak_rss {
        targets.push(Target {
            name: format!("server peak RSS through the {}-client runs", options.max_clients()),
            value: rss,
            limit: 64.0,
            at_least: false,
            unit: " MiB",
        });
    }
    targets
}

/// The chart's lines: each flow's throughput by concurrency, and each OTP
/// flow's database ceiling dashed beside it.
fn series(measured: &Measurements) -> Vec<report::Series> {
    let mut series = Vec::new();
    for flow in [
        "healthz",
        "pin-auth",
        "phone-login",
        "phone-verify",
        "sign-in",
        "profile",
    ] {
        let points: Vec<(usize, f64)> = measured
            .rows
            .iter()
            .filter(|row| row.flow == flow)
            .map(|row| (row.clients, row.rps))
            .collect();
        series.push(report::Series {
            name: flow.to_owned(),
            dashed: false,
            points,
        });
        let ceiling: Vec<(usize, f64)> = measured
            .ceilings
            .iter()
            .filter(|(f, _, _)| f.name() == flow)
            .map(|(_, clients, row)| (*clients, row.rps))
            .collect();
        if !ceiling.is_empty() {
            series.push(report::Series {
                name: format!("{flow} db ceiling"),
                dashed: true,
                points: ceiling,
            });
        }
    }
    series
}

/// A measurement in which nothing succeeded means the harness (or the
/// service) is broken; that fails the run, the smoke run in CI included.
/// Isolated failures (a code slow to arrive on a loaded CI machine) are
/// reported but do not.
fn verdict(options: &Options, all_rows: &[Row]) -> ExitCode {
    let errors: u64 = all_rows.iter().map(|row| row.errors).sum();
    if errors > 0 {
        eprintln!(
            "{errors} flows failed; see the first errors above and the server logs in {}",
            options.out.display()
        );
    }
    let broken: Vec<String> = all_rows
        .iter()
        .filter(|row| row.rps <= 0.0)
        .map(|row| format!("{} @{}", row.flow, row.clients))
        .collect();
    if !broken.is_empty() {
        eprintln!("nothing succeeded in: {}", broken.join(", "));
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
