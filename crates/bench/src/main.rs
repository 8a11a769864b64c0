//! `phonegate-bench`: the harness behind `cargo xtask bench`.
//!
//! It starts the release binary on a fresh database with the `null` SMS
//! provider, drives complete flows with N concurrent keep-alive clients,
//! and measures in the same run the ceilings each figure is compared with:
//! `GET /healthz` through the same client (HTTP), the flows' use cases
//! called in-process on the same database with the same pool and
//! concurrency (database), and raw argon2 hashes on every core (sign-in).
//! Absolute numbers drift on shared machines; the ratios are what to read.
//!
//! Each figure is measured right beside its ceiling, because the speed of a
//! shared machine drifts from one minute to the next: healthz just before
//! profile at each concurrency; each OTP flow beside its in-process twin,
//! run with the server paused (SIGSTOP) so nothing else runs, each pair in
//! the order A, B, B, A so that a steady drift weighs on both; the sign-ins,
//! then the argon2 ceiling; pin-auth idle, then pin-auth while sign-ins
//! hash. Last, the scale run, after seeding a million users and a million
//! expired challenges.

// A command-line tool: printing its report is its job.
#![allow(clippy::print_stdout)]

mod client;
mod flows;
mod report;
mod seed;
mod tap;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use flows::{ClientContext, Flow, MAX_CLIENTS, PHONES_PER_CLIENT, SIGN_IN_PASSWORD, SIGN_IN_USERS};
use phonegate::{
    Overrides,
    settings::{ConfigFile, Settings},
};
use phonegate_adapters::{
    password::{Argon2Memory, Argon2Settings, argon2_for, hash_with, hash_with_memory},
    random::OsRandom,
};
use report::{Row, Target};
use serde_json::json;
use tap::Tap;

/// What to run.
#[derive(Debug, Clone)]
struct Options {
    smoke: bool,
    sqlite: bool,
    server: PathBuf,
    out: PathBuf,
    postgres_url: String,
    clients: Vec<usize>,
    warmup: Duration,
    duration: Duration,
    /// Users and expired challenges for the scale run.
    scale: Option<(usize, usize)>,
    /// Only these flows (by name), for profiling one path; `None` runs all.
    flows: Option<Vec<String>>,
}

impl Options {
    fn runs(&self, flow: Flow) -> bool {
        self.flows
            .as_ref()
            .is_none_or(|flows| flows.iter().any(|name| name == flow.name()))
    }
}

const USAGE: &str = "usage: phonegate-bench [--smoke] [--sqlite] [--server PATH] [--out DIR] \
[--postgres-url URL] [--clients 1,8,32,128] [--seconds N] [--no-scale] [--flows pin-auth,profile,...]
       phonegate-bench seed --database-url URL [--users N] [--expired N]";

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("phonegate-bench: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(start(std::env::args().skip(1).collect())) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("phonegate-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn start(args: Vec<String>) -> anyhow::Result<ExitCode> {
    if args.first().map(String::as_str) == Some("seed") {
        return seed_command(&args[1..]).await.map(|()| ExitCode::SUCCESS);
    }
    let options = parse_options(&args)?;
    run(&options).await
}

fn value<'a>(args: &'a [String], index: &mut usize, flag: &str) -> anyhow::Result<&'a str> {
    *index += 1;
    args.get(*index)
        .map(String::as_str)
        .with_context(|| format!("{flag} needs a value\n{USAGE}"))
}

fn parse_options(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        smoke: false,
        sqlite: false,
        server: PathBuf::from("target/release/phonegate"),
        out: PathBuf::from("target/bench"),
        postgres_url: std::env::var("BENCH_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        clients: vec![1, 8, 32, 128],
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(3),
        scale: Some((1_000_000, 1_000_000)),
        flows: None,
    };
    let mut index = 0;
    while index < args.len() {
        match args[index].as_str() {
            "--smoke" => {
                // A few seconds: every phase runs, briefly and small, so the
                // harness cannot rot. The figures mean nothing.
                options.smoke = true;
                options.clients = vec![1, 8];
                options.warmup = Duration::from_millis(100);
                options.duration = Duration::from_millis(400);
                options.scale = Some((5_000, 5_000));
            }
            "--sqlite" => options.sqlite = true,
            "--flows" => {
                options.flows = Some(
                    value(args, &mut index, "--flows")?
                        .split(',')
                        .map(str::to_owned)
                        .collect(),
                );
            }
            "--no-scale" => options.scale = None,
            "--server" => options.server = PathBuf::from(value(args, &mut index, "--server")?),
            "--out" => options.out = PathBuf::from(value(args, &mut index, "--out")?),
            "--postgres-url" => options.postgres_url = value(args, &mut index, "--postgres-url")?.to_owned(),
            "--seconds" => {
                let seconds: f64 = value(args, &mut index, "--seconds")?.parse().context("--seconds")?;
                options.duration = Duration::from_secs_f64(seconds);
            }
            "--clients" => {
                options.clients = value(args, &mut index, "--clients")?
                    .split(',')
                    .map(|n| n.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--clients")?;
                if options.clients.iter().any(|&n| n == 0 || n > MAX_CLIENTS) {
                    bail!("--clients must be between 1 and {MAX_CLIENTS}");
                }
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
        index += 1;
    }
    Ok(options)
}

/// `seed`: bulk-loads users and expired challenges into an existing,
/// migrated database (for profiling by hand; the run seeds its own).
async fn seed_command(args: &[String]) -> anyhow::Result<()> {
    let (mut url, mut users, mut expired) = (None, 1_000_000, 1_000_000);
    let mut index = 0;
    while index < args.len() {
        match args[index].as_str() {
            "--database-url" => url = Some(value(args, &mut index, "--database-url")?.to_owned()),
            "--users" => users = value(args, &mut index, "--users")?.parse()?,
            "--expired" => expired = value(args, &mut index, "--expired")?.parse()?,
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
        index += 1;
    }
    let url = url.context(USAGE)?;
    let db = seed::Database::connect(&url).await?;
    let started = Instant::now();
    db.users(flows::phone_prefix(Flow::PinAuth), 0, users).await?;
    db.expired_challenges(expired).await?;
    db.analyze().await?;
    println!(
        "seeded {users} users and {expired} expired challenges in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    db.close().await;
    Ok(())
}

/// One measurement's raw results.
#[derive(Debug, Default)]
struct Measured {
    latencies: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    seconds: f64,
}

impl Measured {
    fn row(mut self, flow: &str, clients: usize) -> Row {
        if let Some(error) = &self.first_error {
            eprintln!("  {flow} @{clients}: {} errors, the first: {error}", self.errors);
        }
        let (p50_ms, p99_ms) = report::percentiles(&mut self.latencies);
        Row {
            flow: flow.to_owned(),
            clients,
            rps: self.latencies.len() as f64 / self.seconds,
            p50_ms,
            p99_ms,
            errors: self.errors,
            ceiling: None,
        }
    }
}

impl Measured {
    /// The two halves of one measurement as one.
    fn merge(mut self, other: Self) -> Self {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.first_error = self.first_error.or(other.first_error);
        self.seconds += other.seconds;
        self
    }
}

/// The measuring window shared by every client of one measurement: work
/// finished during the warm-up or after the end is not counted.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    fn new(options: &Options) -> Self {
        Self::lasting(options, options.duration)
    }

    /// Half a measurement: one of the four parts of an A-B-B-A pair.
    fn half(options: &Options) -> Self {
        Self::lasting(options, options.duration / 2)
    }

    fn lasting(options: &Options, duration: Duration) -> Self {
        let start = Instant::now() + options.warmup;
        Self {
            start,
            end: start + duration,
        }
    }
}

#[derive(Debug, Default)]
struct ClientTally {
    latencies: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

impl ClientTally {
    /// Counts one iteration if it ended inside the window; a failure is
    /// counted even if it ended after it (a slow failure is still one).
    fn record(&mut self, window: Window, outcome: Result<(), String>, latencies: &mut Vec<u32>) {
        let now = Instant::now();
        match outcome {
            Ok(()) if now >= window.start && now < window.end => self.latencies.append(latencies),
            Ok(()) => {}
            Err(error) if now >= window.start => {
                self.errors += 1;
                self.first_error.get_or_insert(error);
            }
            Err(_) => {}
        }
        latencies.clear();
    }
}

async fn gather(window: Window, tasks: Vec<tokio::task::JoinHandle<ClientTally>>) -> Measured {
    let mut measured = Measured {
        seconds: (window.end - window.start).as_secs_f64(),
        ..Measured::default()
    };
    for task in tasks {
        match task.await {
            Ok(tally) => {
                measured.latencies.extend(tally.latencies);
                measured.errors += tally.errors;
                if measured.first_error.is_none() {
                    measured.first_error = tally.first_error;
                }
            }
            Err(error) => {
                measured.errors += 1;
                measured.first_error.get_or_insert(error.to_string());
            }
        }
    }
    measured
}

/// `clients` connections running `flow` against the server.
async fn measure_http(
    flow: Flow,
    clients: usize,
    addr: SocketAddr,
    contexts: &[ClientContext],
    window: Window,
) -> Measured {
    let tasks = (0..clients)
        .map(|index| {
            let context = contexts[index].clone();
            tokio::spawn(async move {
                let mut conn = client::Conn::new(addr);
                let mut tally = ClientTally::default();
                let mut latencies = Vec::with_capacity(2);
                let mut iteration = 0u64;
                while Instant::now() < window.end {
                    let outcome = flows::http_iteration(flow, &context, &mut conn, iteration, &mut latencies).await;
                    tally.record(window, outcome, &mut latencies);
                    iteration += 1;
                }
                tally
            })
        })
        .collect();
    gather(window, tasks).await
}

/// The table row of one HTTP measurement, printed as it is taken.
fn report_http(flow: Flow, clients: usize, measured: Measured) -> Row {
    let row = measured.row(flow.name(), clients);
    println!(
        "  {:<14} @{clients:<3} {:>8.0} req/s  p99 {:.2} ms",
        flow.name(),
        row.rps,
        row.p99_ms
    );
    row
}

/// `clients` tasks calling `flow`'s use cases in-process.
async fn measure_in_process(
    flow: Flow,
    clients: usize,
    services: &phonegate_api::Services,
    contexts: &[ClientContext],
    window: Window,
) -> Measured {
    let tasks = (0..clients)
        .map(|index| {
            let (context, services) = (contexts[index].clone(), services.clone());
            tokio::spawn(async move {
                let mut tally = ClientTally::default();
                let mut latencies = Vec::with_capacity(2);
                let mut iteration = 0u64;
                while Instant::now() < window.end {
                    let outcome =
                        flows::in_process_iteration(flow, &services, &context, iteration, &mut latencies).await;
                    tally.record(window, outcome, &mut latencies);
                    iteration += 1;
                }
                tally
            })
        })
        .collect();
    gather(window, tasks).await
}

/// Raw argon2 hashes per second with the configured parameters, one
/// thread per core, nothing else running.
fn argon2_ceiling(settings: Argon2Settings, options: &Options) -> anyhow::Result<f64> {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let argon2 = argon2_for(settings).map_err(anyhow::Error::msg)?;
    let window = Window::new(options);
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            let argon2 = argon2.clone();
            std::thread::spawn(move || {
                // As the server's hashing threads do: memory kept between hashes.
                let mut memory = Argon2Memory::default();
                let mut hashes = 0u64;
                loop {
                    let _ = hash_with_memory(&argon2, &OsRandom, SIGN_IN_PASSWORD.as_bytes(), &mut memory);
                    let now = Instant::now();
                    if now >= window.end {
                        return hashes;
                    }
                    if now >= window.start {
                        hashes += 1;
                    }
                }
            })
        })
        .collect();
    let hashes: u64 = threads.into_iter().map(|thread| thread.join().unwrap_or(0)).sum();
    Ok(hashes as f64 / options.duration.as_secs_f64())
}

/// The server under test, a child process.
#[derive(Debug)]
struct Server {
    child: tokio::process::Child,
    addr: SocketAddr,
}

impl Server {
    async fn start(options: &Options, config: &Path, addr: SocketAddr, log_name: &str) -> anyhow::Result<Self> {
        let log = std::fs::File::create(options.out.join(log_name)).context("creating the server log")?;
        let child = tokio::process::Command::new(&options.server)
            .arg("--config")
            .arg(config)
            .arg("serve")
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", options.server.display()))?;
        let server = Self { child, addr };
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut conn = client::Conn::new(addr);
        loop {
            if let Ok(response) = conn.get("/healthz", &[]).await
                && response.status == 200
            {
                return Ok(server);
            }
            if Instant::now() > deadline {
                bail!(
                    "the server did not become healthy; see {}",
                    options.out.join(log_name).display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server's peak resident memory so far, in MiB (`VmHWM`).
    fn peak_rss_mib(&self) -> Option<f64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    }

    /// Freezes the server (SIGSTOP) while a ceiling is measured, so that it
    /// takes no CPU; its connections stay open and idle.
    fn pause(&self) -> anyhow::Result<()> {
        self.signal("-STOP")
    }

    /// Lets a paused server run again (SIGCONT).
    fn resume(&self) -> anyhow::Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.child.id().context("the server has exited")?;
        let status = std::process::Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .context("running kill")?;
        anyhow::ensure!(status.success(), "kill {signal} {pid} failed");
        Ok(())
    }

    /// SIGTERM, then waits for the graceful shutdown.
    async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = tokio::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await?;
        }
        Ok(())
    }
}

/// The machine's CPU time so far, from the first line of `/proc/stat`
/// (Linux), in clock ticks.
#[derive(Debug, Clone, Copy)]
struct CpuTimes {
    total: u64,
    steal: u64,
}

impl CpuTimes {
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        // user nice system idle iowait irq softirq steal
        Some(Self {
            total: fields.iter().sum(),
            steal: *fields.get(7)?,
        })
    }

    /// The share of the CPU time since `start` that the hypervisor gave to
    /// other guests.
    fn steal_share_since(&self, start: &Self) -> f64 {
        let total = self.total.saturating_sub(start.total).max(1);
        self.steal.saturating_sub(start.steal) as f64 / total as f64
    }
}

fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// The server's settings: the shipped defaults, except what a benchmark
/// must change. Rate limits and the SMS budget stay in force (their cost is
/// part of every send) but are set so high that they never refuse.
fn config_text(database_url: &str, addr: SocketAddr, tap: SocketAddr) -> String {
    format!(
        r#"# Written by phonegate-bench for one run.
[server]
bind = "{addr}"

[database]
url = "{database_url}"

[sms]
provider = "null"
null_tap = "{tap}"

[auth]
jwt_secret = "phonegate-bench-secret-0123456789abcdef"
jwt_hs256_key = "phonegate-bench-hs256-key-0123456789abcdef"

[rate_limit]
sends_per_phone = 1000000000
sends_per_phone_per_day = 1000000000
sends_per_ip = 1000000000
checks_per_ip = 1000000000

[rate_limit.resend_cooldown_seconds]
pin_auth = 0
phone_verify = 0
phone_login = 0
phone_confirm = 0

[abuse]
hourly_sms_budget = 1000000000
country_hourly_sms_budget = 1000000000

[sign_in]
per_ip = 1000000000
per_email = 1000000000
token_checks_per_ip = 1000000000
hashing_queue_per_thread = 1000000
"#
    )
}

async fn migrate(options: &Options, config: &Path) -> anyhow::Result<()> {
    let output = tokio::process::Command::new(&options.server)
        .arg("--config")
        .arg(config)
        .arg("migrate")
        .output()
        .await
        .with_context(|| format!("running {} migrate", options.server.display()))?;
    if !output.status.success() {
        bail!("migrate failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}

/// A JWT for each client, from one pin-auth flow each.
async fn obtain_jwts(addr: SocketAddr, tap: &Arc<Tap>, clients: usize) -> anyhow::Result<Vec<ClientContext>> {
    let mut conn = client::Conn::new(addr);
    let mut contexts = Vec::with_capacity(clients);
    for index in 0..clients {
        // A phone of the client's own block that its flows reach last.
        let phone = flows::phone_for(Flow::PinAuth, index, PHONES_PER_CLIENT as u64 - 1);
        let code = tap.expect(&phone);
        let reply = conn
            .post_json("/api/v1/auth/send_pin", &json!({"mobile": phone}))
            .await?;
        let key = reply.json()["otp_auth_key"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("send_pin gave no key: HTTP {} {}", reply.status, reply.json()))?;
        let pin = code.code(Duration::from_secs(10)).await.map_err(anyhow::Error::msg)?;
        let reply = conn
            .post_json("/api/v1/auth/verify", &json!({"otp_auth_key": key, "pin": pin}))
            .await?;
        let jwt = reply.json()["jwt_token"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("verify gave no jwt_token: HTTP {}", reply.status))?;
        contexts.push(ClientContext {
            index,
            tap: tap.clone(),
            jwt: Some(jwt),
        });
    }
    Ok(contexts)
}

/// The concurrency the targets are read at: 32 clients, or the nearest
/// measured below it (the smoke run measures fewer).
fn target_clients(options: &Options) -> usize {
    options
        .clients
        .iter()
        .copied()
        .filter(|&n| n <= 32)
        .max()
        .unwrap_or(options.clients[0])
}

const OTP_FLOWS: [Flow; 3] = [Flow::PinAuth, Flow::PhoneLogin, Flow::PhoneVerify];

#[expect(clippy::too_many_lines, reason = "the phases of one run, in order")]
async fn run(options: &Options) -> anyhow::Result<ExitCode> {
    let began = Instant::now();
    let cpu_at_start = CpuTimes::read();
    std::fs::create_dir_all(&options.out)?;
    let tap = Tap::bind()?;
    let database_url = if options.sqlite {
        let path = std::path::absolute(options.out.join("bench.db"))?;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        format!("sqlite://{}?mode=rwc", path.display())
    } else {
        seed::fresh_postgres_database(&options.postgres_url, "phonegate_bench").await?
    };
    let addr = free_port()?;
    let config = options.out.join("phonegate-bench.toml");
    std::fs::write(&config, config_text(&database_url, addr, tap.addr()))?;
    let settings = Settings::load(ConfigFile::Explicit(&config)).context("loading the bench settings")?;
    let argon2_settings = Argon2Settings {
        memory_kib: settings.auth.argon2_memory_kib,
        iterations: settings.auth.argon2_iterations,
        parallelism: settings.auth.argon2_parallelism,
    };

    println!(
        "preparing: {} database, seeding users",
        if options.sqlite { "SQLite" } else { "Postgres" }
    );
    migrate(options, &config).await?;
    let db = seed::Database::connect(&database_url).await?;
    // Every OTP flow's phones belong to users already, as most sign-ins'
    // do, so that the server and its in-process twin run the same
    // statements from the first request (a new phone-login or
    // phone-verify user is created by its first check instead).
    for flow in OTP_FLOWS {
        db.users(flows::phone_prefix(flow), 0, MAX_CLIENTS * PHONES_PER_CLIENT)
            .await?;
    }
    let password_hash = hash_with(
        &argon2_for(argon2_settings).map_err(anyhow::Error::msg)?,
        &OsRandom,
        SIGN_IN_PASSWORD.as_bytes(),
    )
    .map_err(anyhow::Error::msg)?;
    db.sign_in_users(SIGN_IN_USERS, &password_hash).await?;
    db.analyze().await?;

    let mut rows: Vec<Row> = Vec::new();
    let max_clients = options.clients.iter().copied().max().unwrap_or(1);
    let at = target_clients(options);

    // Phase 1: every flow against the server, each measured right beside
    // its ceiling. The machine's speed drifts by tens of percent from one
    // minute to the next on shared cores, so a figure and its ceiling are
    // measured back to back: healthz just before profile at each
    // concurrency, each OTP flow's in-process twin just after it (with the
    // server paused, so nothing else runs), the argon2 ceiling just after
    // the sign-ins, and an idle pin-auth run just before the mixed one.
    let server = Server::start(options, &config, addr, "server.log").await?;
    let contexts = obtain_jwts(server.addr, &tap, max_clients).await?;
    // The in-process service: the same settings, store and pool size as
    // the server, on the same database. Its dispatchers run only while it
    // is measured.
    let app = phonegate::build(&settings, Overrides::default()).await?;
    let mut ceilings = Vec::new();
    let http = |flow: Flow, clients: usize| measure_http(flow, clients, server.addr, &contexts, Window::new(options));
    let http_half =
        |flow: Flow, clients: usize| measure_http(flow, clients, server.addr, &contexts, Window::half(options));
    for &clients in &options.clients {
        // healthz is profile's ceiling, so it runs whenever profile does,
        // in the order healthz, profile, profile, healthz (each half as
        // long), so that a drift in the machine's speed during the four
        // parts weighs on both alike.
        if options.runs(Flow::Profile) {
            let healthz = http_half(Flow::Healthz, clients).await;
            let profile = http_half(Flow::Profile, clients).await;
            let profile = profile.merge(http_half(Flow::Profile, clients).await);
            let healthz = healthz.merge(http_half(Flow::Healthz, clients).await);
            rows.push(report_http(Flow::Healthz, clients, healthz));
            rows.push(report_http(Flow::Profile, clients, profile));
        } else if options.runs(Flow::Healthz) {
            rows.push(report_http(Flow::Healthz, clients, http(Flow::Healthz, clients).await));
        }
    }
    for flow in OTP_FLOWS.into_iter().filter(|&flow| options.runs(flow)) {
        for &clients in &options.clients {
            // Over HTTP, in-process, in-process, over HTTP (each half as
            // long), so that a drift in the machine's speed weighs on the
            // flow and its ceiling alike.
            let over_http = http_half(flow, clients).await;
            server.pause()?;
            let background = phonegate::background::spawn(
                &settings,
                &app.store,
                &app.dispatcher,
                Arc::new(phonegate_adapters::clock::SystemClock),
            );
            let in_process = || measure_in_process(flow, clients, &app.services, &contexts, Window::half(options));
            let measured = in_process().await.merge(in_process().await);
            background.shutdown(Duration::from_secs(10)).await;
            server.resume()?;
            rows.push(report_http(
                flow,
                clients,
                over_http.merge(http_half(flow, clients).await),
            ));
            let row = measured.row(&format!("{} in-process (db ceiling)", flow.name()), clients);
            println!("  {:<14} @{clients:<3} {:>8.0} req/s in-process", flow.name(), row.rps);
            ceilings.push((flow, clients, row));
        }
    }
    if options.runs(Flow::SignIn) {
        for &clients in &options.clients {
            rows.push(report_http(Flow::SignIn, clients, http(Flow::SignIn, clients).await));
        }
    }
    server.pause()?;
    let argon2 = argon2_ceiling(argon2_settings, options)?;
    server.resume()?;
    println!("  argon2 ceiling: {argon2:.1} hashes/s");
    // OTP flows while sign-ins keep every core hashing, against the same
    // flow idle just before.
    let sign_in_clients = 8.min(max_clients);
    // Sign-in clients of their own (their index picks their user and device).
    let signers: Vec<ClientContext> = (0..sign_in_clients)
        .map(|offset| ClientContext {
            index: at + offset,
            tap: tap.clone(),
            jwt: None,
        })
        .collect();
    let idle = http(Flow::PinAuth, at).await.row("pin-auth before sign-ins", at);
    let window = Window::new(options);
    let (otp, _) = tokio::join!(
        measure_http(Flow::PinAuth, at, server.addr, &contexts, window),
        measure_http(Flow::SignIn, sign_in_clients, server.addr, &signers, window),
    );
    let mixed = otp.row("pin-auth during sign-ins", at);
    println!(
        "  pin-auth with {sign_in_clients} clients signing in: p99 {:.2} ms (idle just before: {:.2} ms)",
        mixed.p99_ms, idle.p99_ms
    );
    let peak_rss = server.peak_rss_mib();
    server.stop().await?;
    app.store.db().close().await;
    // Rows in the table's order: by flow, then by concurrency.
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

    // Phase 3: the same flow with a million users and a million expired
    // challenges in the tables.
    let scaled = match options.scale {
        Some((users, expired)) => {
            println!("seeding {users} users and {expired} expired challenges");
            let seeding = Instant::now();
            db.users(
                flows::phone_prefix(Flow::PinAuth),
                MAX_CLIENTS * PHONES_PER_CLIENT,
                users,
            )
            .await?;
            db.expired_challenges(expired).await?;
            db.analyze().await?;
            println!("  seeded in {:.1}s", seeding.elapsed().as_secs_f64());
            let server = Server::start(options, &config, addr, "server-scale.log").await?;
            let measured = measure_http(Flow::PinAuth, at, server.addr, &contexts, Window::new(options)).await;
            server.stop().await?;
            let label = format!("pin-auth, {}k users + {}k expired", users / 1000, expired / 1000);
            Some(measured.row(&label, at))
        }
        None => None,
    };
    let user_rows = db.rows("users").await?;
    let challenge_rows = db.rows("otp_challenges").await?;
    db.close().await;

    // Attach each row's ceiling.
    let find = |flow: &str, clients: usize| {
        rows.iter()
            .find(|row| row.flow == flow && row.clients == clients)
            .map(|row| row.rps)
    };
    let healthz: Vec<(usize, f64)> = options
        .clients
        .iter()
        .map(|&c| (c, find("healthz", c).unwrap_or(0.0)))
        .collect();
    let empty_pin_auth = find("pin-auth", at);
    let idle_pin_auth_p99 = idle.p99_ms;
    for row in &mut rows {
        let flow = row.flow.clone();
        row.ceiling = match flow.as_str() {
            "profile" => healthz
                .iter()
                .find(|(c, _)| *c == row.clients)
                .map(|(_, rps)| ("http".to_owned(), *rps)),
            "sign-in" => Some(("argon2".to_owned(), argon2)),
            "pin-auth" | "phone-login" | "phone-verify" => ceilings
                .iter()
                .find(|(f, c, _)| f.name() == flow && *c == row.clients)
                .map(|(_, _, ceiling)| ("db".to_owned(), ceiling.rps)),
            _ => None,
        };
    }
    let mut all_rows = rows.clone();
    all_rows.extend(ceilings.iter().map(|(_, _, row)| row.clone()));
    all_rows.push(Row {
        flow: "argon2 (sign-in ceiling)".into(),
        clients: std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
        rps: argon2,
        p50_ms: 0.0,
        p99_ms: 0.0,
        errors: 0,
        ceiling: None,
    });
    all_rows.push(idle.clone());
    all_rows.push(mixed.clone());
    if let Some(mut scaled) = scaled.clone() {
        scaled.ceiling = empty_pin_auth.map(|rps| ("empty db".to_owned(), rps));
        all_rows.push(scaled);
    }

    // The targets.
    let mut targets = Vec::new();
    let row_at = |flow: &str| rows.iter().find(|row| row.flow == flow && row.clients == at);
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
    let best_sign_in = rows
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
    if idle_pin_auth_p99 > 0.0 {
        targets.push(Target {
            name: format!(
                "pin-auth @{at} p99 during {sign_in_clients} clients' sign-ins, over its idle p99 just before"
            ),
            value: mixed.p99_ms / idle_pin_auth_p99,
            limit: 2.0,
            at_least: false,
            unit: "×",
        });
    }
    if let (Some(scaled), Some(empty)) = (&scaled, empty_pin_auth) {
        targets.push(Target {
            name: format!("pin-auth @{at} with {user_rows} users and {challenge_rows} challenges, over empty"),
            value: scaled.rps / empty,
            limit: 0.80,
            at_least: true,
            unit: "",
        });
    }
    if let Some(rss) = peak_rss {
        targets.push(Target {
            name: format!("server peak RSS through the {max_clients}-client runs"),
            value: rss,
            limit: 64.0,
            at_least: false,
            unit: " MiB",
        });
    }

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
        "cores": std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
        "pool_size": settings.database.max_connections,
        "seconds_per_measurement": options.duration.as_secs_f64(),
        "warmup_seconds": options.warmup.as_secs_f64(),
        "target_clients": at,
        "peak_rss_mib": peak_rss,
        "elapsed_seconds": elapsed,
        "cpu_steal_share": steal,
        "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    });
    let json = report::to_json(&all_rows, &targets, context);
    std::fs::write(options.out.join("latest.json"), serde_json::to_string_pretty(&json)?)?;
    std::fs::write(options.out.join("latest.txt"), format!("{table}\n{targets_text}"))?;
    let mut series = Vec::new();
    for flow in [
        "healthz",
        "pin-auth",
        "phone-login",
        "phone-verify",
        "sign-in",
        "profile",
    ] {
        let points: Vec<(usize, f64)> = rows
            .iter()
            .filter(|row| row.flow == flow)
            .map(|row| (row.clients, row.rps))
            .collect();
        series.push(report::Series {
            name: flow.to_owned(),
            dashed: false,
            points,
        });
        let ceiling: Vec<(usize, f64)> = ceilings
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
    std::fs::write(options.out.join("latest.svg"), report::chart(&series))?;
    println!(
        "wrote {0}/latest.json, {0}/latest.txt and {0}/latest.svg",
        options.out.display()
    );

    let errors: u64 = all_rows.iter().map(|row| row.errors).sum();
    if errors > 0 {
        eprintln!(
            "{errors} flows failed; see the first errors above and the server logs in {}",
            options.out.display()
        );
    }
    // A measurement in which nothing succeeded means the harness (or the
    // service) is broken; that fails the run, the smoke run in CI included.
    // Isolated failures (a code slow to arrive on a loaded CI machine) are
    // reported above but do not.
    let broken: Vec<String> = all_rows
        .iter()
        .filter(|row| row.rps <= 0.0)
        .map(|row| format!("{} @{}", row.flow, row.clients))
        .collect();
    if !broken.is_empty() {
        eprintln!("nothing succeeded in: {}", broken.join(", "));
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
