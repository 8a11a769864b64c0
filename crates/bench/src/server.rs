//! The service under test: its database and configuration, the release
//! binary started as a child process, and the JWTs its clients read with.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use phonegate::settings::{ConfigFile, Settings};
use phonegate_adapters::{
    password::{Argon2Settings, argon2_for, hash_with},
    random::OsRandom,
};
use serde_json::json;

use crate::{
    client,
    flows::{self, ClientContext, Flow, MAX_CLIENTS, OTP_FLOWS, PHONES_PER_CLIENT, SIGN_IN_PASSWORD, SIGN_IN_USERS},
    options::Options,
    seed,
    tap::Tap,
};

/// What every phase starts from: a migrated, seeded database, the
/// configuration file the server reads, and the same settings loaded here.
#[derive(Debug)]
pub struct Prepared {
    pub tap: Arc<Tap>,
    pub addr: SocketAddr,
    pub config: PathBuf,
    pub settings: Settings,
    pub argon2: Argon2Settings,
    /// A direct connection for seeding and counting rows.
    pub db: seed::Database,
}

/// Creates the database (a fresh Postgres database, or a new SQLite file),
/// writes the configuration, migrates with the server binary itself, and
/// seeds the users every flow signs in as.
pub async fn prepare(options: &Options) -> anyhow::Result<Prepared> {
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
    let argon2 = Argon2Settings {
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
        &argon2_for(argon2).map_err(anyhow::Error::msg)?,
        &OsRandom,
        SIGN_IN_PASSWORD.as_bytes(),
    )
    .map_err(anyhow::Error::msg)?;
    db.sign_in_users(SIGN_IN_USERS, &password_hash).await?;
    db.analyze().await?;
    Ok(Prepared {
        tap,
        addr,
        config,
        settings,
        argon2,
        db,
    })
}

/// The server under test, a child process.
#[derive(Debug)]
pub struct Server {
    child: tokio::process::Child,
    pub addr: SocketAddr,
}

impl Server {
    pub async fn start(options: &Options, config: &Path, addr: SocketAddr, log_name: &str) -> anyhow::Result<Self> {
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
    pub fn peak_rss_mib(&self) -> Option<f64> {
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
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("-STOP")
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) -> anyhow::Result<()> {
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
    pub async fn stop(mut self) -> anyhow::Result<()> {
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

# The pumping guard still reads its counts on every send, but a floor of
# 0 % never trips it (send-only phases verify nothing).
[abuse.pumping]
min_conversion_percent = 0

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
pub async fn obtain_jwts(addr: SocketAddr, tap: &Arc<Tap>, clients: usize) -> anyhow::Result<Vec<ClientContext>> {
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
