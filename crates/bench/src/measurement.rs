//! Measuring: clients driving a flow inside a shared window, the tallies
//! they gather into rows, and the ceilings measured without the server
//! (argon2 on every core, the machine's stolen CPU time).

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use phonegate_adapters::{
    password::{Argon2Memory, Argon2Settings, argon2_for, hash_with_memory},
    random::OsRandom,
};

use crate::{
    client,
    flows::{self, ClientContext, Flow, SIGN_IN_PASSWORD},
    options::Options,
    report::{self, Row},
};

/// One measurement's raw results.
#[derive(Debug, Default)]
pub struct Measured {
    latencies: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    seconds: f64,
}

impl Measured {
    pub fn row(mut self, flow: &str, clients: usize) -> Row {
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
    pub fn merge(mut self, other: Self) -> Self {
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
pub struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    pub fn new(options: &Options) -> Self {
        Self::lasting(options, options.duration)
    }

    /// Half a measurement: one of the four parts of an A-B-B-A pair.
    pub fn half(options: &Options) -> Self {
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
pub async fn measure_http(
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
pub fn report_http(flow: Flow, clients: usize, measured: Measured) -> Row {
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
pub async fn measure_in_process(
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
pub fn argon2_ceiling(settings: Argon2Settings, options: &Options) -> anyhow::Result<f64> {
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

/// The machine's CPU time so far, from the first line of `/proc/stat`
/// (Linux), in clock ticks.
#[derive(Debug, Clone, Copy)]
pub struct CpuTimes {
    total: u64,
    steal: u64,
}

impl CpuTimes {
    pub fn read() -> Option<Self> {
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
    pub fn steal_share_since(&self, start: &Self) -> f64 {
        let total = self.total.saturating_sub(start.total).max(1);
        self.steal.saturating_sub(start.steal) as f64 / total as f64
    }
}
