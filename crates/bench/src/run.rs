//! One benchmark run, phase by phase, in the order the crate's doc gives.
//!
//! Each figure is measured right beside its ceiling, because the speed of a
//! shared machine drifts by tens of percent from one minute to the next:
//! healthz just before profile at each concurrency, each OTP flow's
//! in-process twin just after it (with the server paused, so nothing else
//! runs), the argon2 ceiling just after the sign-ins, and an idle pin-auth
//! run just before the mixed one. Then the scale run, on a database seeded
//! large, and last the summary.

use std::{
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use phonegate::{App, Overrides, settings::Settings};

use crate::{
    flows::{ClientContext, Flow, MAX_CLIENTS, OTP_FLOWS, PHONES_PER_CLIENT},
    measurement::{CpuTimes, Measured, Window, argon2_ceiling, measure_http, measure_in_process, report_http},
    options::Options,
    report::Row,
    server::{self, Prepared, Server},
    summary::{self, Measurements},
};

/// Runs every phase and writes the report; fails when a measurement had
/// no success at all.
pub async fn run(options: &Options) -> anyhow::Result<ExitCode> {
    let began = Instant::now();
    let cpu_at_start = CpuTimes::read();
    let prepared = server::prepare(options).await?;
    let at = options.target_clients();

    // Phase 1: every flow against the server, each beside its ceiling.
    let server = Server::start(options, &prepared.config, prepared.addr, "server.log").await?;
    let contexts = server::obtain_jwts(server.addr, &prepared.tap, options.max_clients()).await?;
    // The in-process service: the same settings, store and pool size as
    // the server, on the same database. Its dispatchers run only while it
    // is measured.
    let app = phonegate::build(&prepared.settings, Overrides::default()).await?;
    let live = Live {
        options,
        server: &server,
        contexts: &contexts,
    };
    let mut rows = live.healthz_and_profile().await;
    let ceilings = live.otp_flows(&prepared.settings, &app, &mut rows).await?;
    rows.extend(live.sign_ins().await);
    let argon2 = live.argon2_ceiling(&prepared)?;
    let (idle, mixed, sign_in_clients) = live.pin_auth_during_sign_ins(&prepared, at).await;
    let peak_rss = server.peak_rss_mib();
    server.stop().await?;
    app.store.db().close().await;
    sort_rows(&mut rows);

    // Phase 3: the same flow with a million users and a million expired
    // challenges in the tables.
    let scaled = scale_run(options, &prepared, &contexts, at).await?;
    let user_rows = prepared.db.rows("users").await?;
    let challenge_rows = prepared.db.rows("otp_challenges").await?;
    prepared.db.close().await;

    let measured = Measurements {
        rows,
        ceilings,
        argon2,
        idle,
        mixed,
        sign_in_clients,
        peak_rss,
        scaled,
        user_rows,
        challenge_rows,
    };
    summary::finish(options, &prepared.settings, measured, began, cpu_at_start)
}

/// The server as phase 1 drives it: its address and every client's JWT.
struct Live<'a> {
    options: &'a Options,
    server: &'a Server,
    contexts: &'a [ClientContext],
}

impl Live<'_> {
    async fn http(&self, flow: Flow, clients: usize) -> Measured {
        measure_http(
            flow,
            clients,
            self.server.addr,
            self.contexts,
            Window::new(self.options),
        )
        .await
    }

    /// Half a measurement, for the A-B-B-A pairs.
    async fn http_half(&self, flow: Flow, clients: usize) -> Measured {
        measure_http(
            flow,
            clients,
            self.server.addr,
            self.contexts,
            Window::half(self.options),
        )
        .await
    }

    /// healthz is profile's ceiling, so it runs whenever profile does, in
    /// the order healthz, profile, profile, healthz (each half as long), so
    /// that a drift in the machine's speed during the four parts weighs on
    /// both alike.
    async fn healthz_and_profile(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        for &clients in &self.options.clients {
            if self.options.runs(Flow::Profile) {
                let healthz = self.http_half(Flow::Healthz, clients).await;
                let profile = self.http_half(Flow::Profile, clients).await;
                let profile = profile.merge(self.http_half(Flow::Profile, clients).await);
                let healthz = healthz.merge(self.http_half(Flow::Healthz, clients).await);
                rows.push(report_http(Flow::Healthz, clients, healthz));
                rows.push(report_http(Flow::Profile, clients, profile));
            } else if self.options.runs(Flow::Healthz) {
                rows.push(report_http(
                    Flow::Healthz,
                    clients,
                    self.http(Flow::Healthz, clients).await,
                ));
            }
        }
        rows
    }

    /// Each OTP flow over HTTP (into `rows`) and its in-process twin (the
    /// database ceiling, returned), in the order over HTTP, in-process,
    /// in-process, over HTTP (each half as long), so that a drift in the
    /// machine's speed weighs on the flow and its ceiling alike.
    async fn otp_flows(
        &self,
        settings: &Settings,
        app: &App,
        rows: &mut Vec<Row>,
    ) -> anyhow::Result<Vec<(Flow, usize, Row)>> {
        let mut ceilings = Vec::new();
        for flow in OTP_FLOWS.into_iter().filter(|&flow| self.options.runs(flow)) {
            for &clients in &self.options.clients {
                let over_http = self.http_half(flow, clients).await;
                self.server.pause()?;
                let background = phonegate::background::spawn(
                    settings,
                    &app.store,
                    &app.dispatcher,
                    Arc::new(phonegate_adapters::clock::SystemClock),
                );
                let in_process =
                    || measure_in_process(flow, clients, &app.services, self.contexts, Window::half(self.options));
                let measured = in_process().await.merge(in_process().await);
                background.shutdown(Duration::from_secs(10)).await;
                self.server.resume()?;
                rows.push(report_http(
                    flow,
                    clients,
                    over_http.merge(self.http_half(flow, clients).await),
                ));
                let row = measured.row(&format!("{} in-process (db ceiling)", flow.name()), clients);
                println!("  {:<14} @{clients:<3} {:>8.0} req/s in-process", flow.name(), row.rps);
                ceilings.push((flow, clients, row));
            }
        }
        Ok(ceilings)
    }

    /// Password sign-ins at each concurrency (argon2 bound).
    async fn sign_ins(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        if self.options.runs(Flow::SignIn) {
            for &clients in &self.options.clients {
                rows.push(report_http(
                    Flow::SignIn,
                    clients,
                    self.http(Flow::SignIn, clients).await,
                ));
            }
        }
        rows
    }

    /// Raw argon2 hashes on every core, right after the sign-ins, with the
    /// server paused.
    fn argon2_ceiling(&self, prepared: &Prepared) -> anyhow::Result<f64> {
        self.server.pause()?;
        let argon2 = argon2_ceiling(prepared.argon2, self.options)?;
        self.server.resume()?;
        println!("  argon2 ceiling: {argon2:.1} hashes/s");
        Ok(argon2)
    }

    /// pin-auth at `at` clients while sign-ins keep every core hashing,
    /// against the same flow idle just before: the idle row, the mixed row
    /// and how many clients signed in.
    async fn pin_auth_during_sign_ins(&self, prepared: &Prepared, at: usize) -> (Row, Row, usize) {
        let sign_in_clients = 8.min(self.options.max_clients());
        // Sign-in clients of their own (their index picks their user and device).
        let signers: Vec<ClientContext> = (0..sign_in_clients)
            .map(|offset| ClientContext {
                index: at + offset,
                tap: prepared.tap.clone(),
                jwt: None,
            })
            .collect();
        let idle = self.http(Flow::PinAuth, at).await.row("pin-auth before sign-ins", at);
        let window = Window::new(self.options);
        let (otp, _) = tokio::join!(
            measure_http(Flow::PinAuth, at, self.server.addr, self.contexts, window),
            measure_http(Flow::SignIn, sign_in_clients, self.server.addr, &signers, window),
        );
        let mixed = otp.row("pin-auth during sign-ins", at);
        println!(
            "  pin-auth with {sign_in_clients} clients signing in: p99 {:.2} ms (idle just before: {:.2} ms)",
            mixed.p99_ms, idle.p99_ms
        );
        (idle, mixed, sign_in_clients)
    }
}

/// Rows in the table's order: by flow, then by concurrency.
fn sort_rows(rows: &mut [Row]) {
    let order = [
        Flow::Healthz,
        Flow::PinAuth,
        Flow::PhoneLogin,
        Flow::PhoneVerify,
        Flow::SignIn,
        Flow::Profile,
    ];
    rows.sort_by_key(|row| {
        (
            order
                .iter()
                .position(|flow| flow.name() == row.flow)
                .unwrap_or(order.len()),
            row.clients,
        )
    });
}

/// Seeds the scale run's users and expired challenges, then measures
/// pin-auth at `at` clients against a freshly started server.
async fn scale_run(
    options: &Options,
    prepared: &Prepared,
    contexts: &[ClientContext],
    at: usize,
) -> anyhow::Result<Option<Row>> {
    let Some((users, expired)) = options.scale else {
        return Ok(None);
    };
    println!("seeding {users} users and {expired} expired challenges");
    let seeding = Instant::now();
    let db = &prepared.db;
    db.users(
        crate::flows::phone_prefix(Flow::PinAuth),
        MAX_CLIENTS * PHONES_PER_CLIENT,
        users,
    )
    .await?;
    db.expired_challenges(expired).await?;
    db.analyze().await?;
    println!("  seeded in {:.1}s", seeding.elapsed().as_secs_f64());
    let server = Server::start(options, &prepared.config, prepared.addr, "server-scale.log").await?;
    let measured = measure_http(Flow::PinAuth, at, server.addr, contexts, Window::new(options)).await;
    server.stop().await?;
    let label = format!("pin-auth, {}k users + {}k expired", users / 1000, expired / 1000);
    Ok(Some(measured.row(&label, at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(flow: &str, clients: usize) -> Row {
        Row {
            flow: flow.to_owned(),
            clients,
            rps: 1.0,
            p50_ms: 0.0,
            p99_ms: 0.0,
            errors: 0,
            ceiling: None,
        }
    }

    #[test]
    fn rows_sort_by_flow_then_concurrency() {
        let mut rows = vec![
            row("profile", 1),
            row("healthz", 8),
            row("pin-auth", 8),
            row("healthz", 1),
            row("pin-auth", 1),
        ];
        sort_rows(&mut rows);
        let order: Vec<(&str, usize)> = rows.iter().map(|row| (row.flow.as_str(), row.clients)).collect();
        assert_eq!(
            order,
            [
                ("healthz", 1),
                ("healthz", 8),
                ("pin-auth", 1),
                ("pin-auth", 8),
                ("profile", 1)
            ]
        );
    }
}
