//! The command line: what a run measures, and the `seed` command's
//! arguments. Hand-parsed, so the harness needs no argument crate.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context as _, bail};

use crate::flows::{Flow, MAX_CLIENTS};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub smoke: bool,
    pub sqlite: bool,
    pub server: PathBuf,
    pub out: PathBuf,
    pub postgres_url: String,
    pub clients: Vec<usize>,
    pub warmup: Duration,
    pub duration: Duration,
    /// Users and expired challenges for the scale run.
    pub scale: Option<(usize, usize)>,
    /// Only these flows (by name), for profiling one path; `None` runs all.
    pub flows: Option<Vec<String>>,
}

impl Options {
    pub fn runs(&self, flow: Flow) -> bool {
        self.flows
            .as_ref()
            .is_none_or(|flows| flows.iter().any(|name| name == flow.name()))
    }

    /// The concurrency the targets are read at: 32 clients, or the nearest
    /// measured below it (the smoke run measures fewer).
    pub fn target_clients(&self) -> usize {
        self.clients
            .iter()
            .copied()
            .filter(|&n| n <= 32)
            .max()
            .unwrap_or(self.clients[0])
    }

    /// The largest concurrency measured.
    pub fn max_clients(&self) -> usize {
        self.clients.iter().copied().max().unwrap_or(1)
    }

    fn defaults() -> Self {
        Self {
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
        }
    }
}

pub const USAGE: &str = "usage: phonegate-bench [--smoke] [--sqlite] [--server PATH] [--out DIR] \
[--postgres-url URL] [--clients 1,8,32,128] [--seconds N] [--no-scale] [--flows pin-auth,profile,...]
       phonegate-bench seed --database-url URL [--users N] [--expired N]";

/// The value after the flag at `index`, which moves past it.
fn value<'a>(args: &'a [String], index: &mut usize, flag: &str) -> anyhow::Result<&'a str> {
    *index += 1;
    args.get(*index)
        .map(String::as_str)
        .with_context(|| format!("{flag} needs a value\n{USAGE}"))
}

/// The options of a benchmark run.
pub fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options::defaults();
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

/// What the `seed` command loads, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedOptions {
    pub database_url: String,
    pub users: usize,
    pub expired: usize,
}

/// The arguments of `seed` (those after the word `seed`).
pub fn parse_seed(args: &[String]) -> anyhow::Result<SeedOptions> {
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
    Ok(SeedOptions {
        database_url: url.context(USAGE)?,
        users,
        expired,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn smoke_runs_every_phase_briefly_at_two_concurrencies() {
        let options = parse(&args("--smoke --sqlite --out /tmp/x")).unwrap();
        assert!(options.smoke && options.sqlite);
        assert_eq!(options.clients, [1, 8]);
        assert_eq!(options.duration, Duration::from_millis(400));
        assert_eq!(options.scale, Some((5_000, 5_000)));
        assert_eq!(options.out, PathBuf::from("/tmp/x"));
        assert_eq!(options.target_clients(), 8);
        assert_eq!(options.max_clients(), 8);
        assert!(options.runs(Flow::SignIn));
    }

    #[test]
    fn flows_select_what_runs_and_later_flags_win() {
        let options = parse(&args(
            "--smoke --flows profile --clients 32,64 --no-scale --seconds 1.5",
        ))
        .unwrap();
        assert!(options.runs(Flow::Profile));
        assert!(!options.runs(Flow::PinAuth));
        assert_eq!(options.clients, [32, 64]);
        assert_eq!(options.target_clients(), 32);
        assert_eq!(options.scale, None);
        assert_eq!(options.duration, Duration::from_secs_f64(1.5));
        // Nothing at or below 32: the first measured concurrency.
        assert_eq!(parse(&args("--clients 64,128")).unwrap().target_clients(), 64);
    }

    #[test]
    fn bad_arguments_are_refused_with_the_usage() {
        let unknown = parse(&args("--fast")).unwrap_err().to_string();
        assert!(
            unknown.contains("unknown argument \"--fast\"") && unknown.contains("usage:"),
            "{unknown}"
        );
        assert!(parse(&args("--clients 0")).is_err());
        assert!(parse(&args("--clients 129")).is_err());
        let missing = parse(&args("--server")).unwrap_err().to_string();
        assert!(missing.starts_with("--server needs a value"), "{missing}");
    }

    #[test]
    fn seed_needs_a_database_url() {
        assert!(parse_seed(&args("--users 10")).is_err());
        assert_eq!(
            parse_seed(&args("--database-url sqlite://x --users 10")).unwrap(),
            SeedOptions {
                database_url: "sqlite://x".to_owned(),
                users: 10,
                expired: 1_000_000,
            }
        );
    }
}
