//! Running a test alone, although this crate's integration tests share one
//! binary and run in parallel threads of one process.
//!
//! Three kinds of test need it. A test that installs a process-wide tracing
//! subscriber to capture every log line would also capture (and be
//! confused by) the lines of every other test running beside it, and two
//! such tests cannot both install theirs. A test that measures time (the
//! timing side channels, the runtime under password load) needs the
//! machine's cores to itself, as it had when it was a binary of its own.
//! And a test that stops the machine's Postgres must not do it under the
//! feet of the others.
//!
//! [`rerun_alone`] runs the calling test again in a child process of this
//! same binary, filtered to that one test, and waits for it. While the
//! child runs, the parent holds a gate exclusively: every other test
//! starts its service ([`crate::common::spawn_app`] and
//! [`crate::common::process::Server::start`]) through a [`pass`], so
//! none of them runs while a test runs alone, and the lone test waits
//! until the ones already running have finished.

use std::{
    process::Command,
    sync::{Condvar, Mutex, MutexGuard},
    time::{Duration, Instant},
};

/// Set in the child process to the name of the test it runs alone.
const ALONE: &str = "PHONEGATE_IT_ALONE";

/// How long a new test waits for a lone test that is still waiting for the
/// running ones to finish, so that the lone test gets its turn soon. A
/// test that already holds a pass and starts a second service must not
/// wait for ever (the lone test waits for its first pass), so after this
/// it goes ahead, and the lone test waits a little longer.
const YIELD_TO_PENDING: Duration = Duration::from_secs(10);

/// Runs the test `name` of the module `module` (pass `module_path!()`) in a
/// child process, alone, and returns `true` when it passed there: the
/// caller then returns at once. Returns `false` in the child, where the
/// caller goes on with the test's body.
///
/// The child's output is printed, so `--nocapture` shows its measurements.
pub fn rerun_alone(module: &str, name: &str) -> bool {
    // `module_path!()` starts with the crate's name (`it`); the test
    // harness names tests without it.
    let path = module.split_once("::").map_or("", |(_, rest)| rest);
    let test = if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}::{name}")
    };
    if std::env::var(ALONE).is_ok_and(|running| running == test) {
        return false;
    }
    let _alone = GATE.exclusive();
    let output = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([test.as_str(), "--exact", "--test-threads=1", "--nocapture"])
        .env(ALONE, &test)
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{test}, run alone:\n{stdout}{stderr}");
    assert!(output.status.success(), "{test} failed in its own process");
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{test} did not run in its own process"
    );
    true
}

/// Held by every running service of the tests, so that no test runs alone
/// beside it.
#[derive(Debug)]
pub struct Pass(());

/// A pass for one service: waits while a test runs alone, and, for a while,
/// when one is waiting for the running tests to finish.
pub fn pass() -> Pass {
    GATE.shared()
}

impl Drop for Pass {
    fn drop(&mut self) {
        let mut state = GATE.lock();
        state.shared -= 1;
        GATE.changed.notify_all();
    }
}

/// Lets many tests run at once, or one alone.
struct Gate {
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    shared: usize,
    pending: usize,
    alone: bool,
}

static GATE: Gate = Gate {
    state: Mutex::new(State {
        shared: 0,
        pending: 0,
        alone: false,
    }),
    changed: Condvar::new(),
};

/// Ends the lone run when dropped.
struct Alone;

impl Drop for Alone {
    fn drop(&mut self) {
        GATE.lock().alone = false;
        GATE.changed.notify_all();
    }
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock left the counts
        // consistent (every change is one statement), so poisoning is
        // ignored rather than failing every later test.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn shared(&self) -> Pass {
        let started = Instant::now();
        let mut state = self.lock();
        while state.alone || (state.pending > 0 && started.elapsed() < YIELD_TO_PENDING) {
            let wait = if state.alone {
                Duration::from_millis(100)
            } else {
                YIELD_TO_PENDING.saturating_sub(started.elapsed())
            };
            state = self
                .changed
                .wait_timeout(state, wait)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        state.shared += 1;
        Pass(())
    }

    /// Waits until no other test holds a pass or runs alone, then runs alone
    /// until the returned value is dropped.
    fn exclusive(&self) -> Alone {
        let mut state = self.lock();
        state.pending += 1;
        while state.alone || state.shared > 0 {
            state = self
                .changed
                .wait_timeout(state, Duration::from_millis(100))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        state.pending -= 1;
        state.alone = true;
        Alone
    }
}
