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
//!
//! `options` reads the command line, `server` prepares the database and
//! runs the service under test, `measurement` drives the clients and turns
//! their tallies into rows, `run` holds the phases in order and `summary`
//! compares, prints and writes the results.

// A command-line tool: printing its report is its job.
#![allow(clippy::print_stdout)]

mod client;
mod flows;
mod measurement;
mod options;
mod report;
mod run;
mod seed;
mod server;
mod summary;
mod tap;

use std::{process::ExitCode, time::Instant};

use flows::Flow;

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
    let options = options::parse(&args)?;
    run::run(&options).await
}

/// `seed`: bulk-loads users and expired challenges into an existing,
/// migrated database (for profiling by hand; the run seeds its own).
async fn seed_command(args: &[String]) -> anyhow::Result<()> {
    let options::SeedOptions {
        database_url,
        users,
        expired,
    } = options::parse_seed(args)?;
    let db = seed::Database::connect(&database_url).await?;
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
