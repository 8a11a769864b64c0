//! The real binary under password load: the admin CLI creates a user and an
//! application (one JSON object on stdout each), then 8 clients sign in
//! continuously while `/healthz` is timed. argon2 runs on hashing threads of
//! its own in the idle scheduling class, so the async workers keep answering; were hashing on the runtime, the
//! two workers of this 2-core machine would be busy hashing and `/healthz`
//! would wait tens of milliseconds. Also: an unknown email costs as much time
//! as a wrong password (both verify a hash).
//!
//! It runs alone, in a process of its own (`common::alone`), so nothing
//! else runs beside it.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use crate::common::process;

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use process::{Server, scratch_dir};

/// A costlier argon2 than the default, so that a hash on the runtime would
/// stall it far beyond scheduling noise (the stored hash carries its cost,
/// so the CLI that creates the user uses it too). The sign-in throttles and
/// the lockout are lifted: this test signs one account in from one address
/// as fast as it can, after ten wrong passwords.
const ARGON2: [(&str, &str); 5] = [
    ("PHONEGATE__AUTH__ARGON2_MEMORY_KIB", "65536"),
    ("PHONEGATE__AUTH__ARGON2_ITERATIONS", "3"),
    ("PHONEGATE__SIGN_IN__PER_IP", "1000000"),
    ("PHONEGATE__SIGN_IN__PER_EMAIL", "1000000"),
    ("PHONEGATE__SIGN_IN__LOCK_AFTER_FAILURES", "0"),
];

fn phonegate(dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_phonegate"))
        .current_dir(dir)
        .args(args)
        .envs(ARGON2)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one JSON object on stdout: {stdout}");
    serde_json::from_str(&stdout).unwrap()
}

/// One HTTP/1.1 request on a fresh connection; returns (status line, elapsed).
fn request(port: u16, method: &str, path: &str, form: &str) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.lines().next().unwrap_or_default().to_owned();
    (status, started.elapsed())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn healthz_latencies(port: u16, count: usize) -> Vec<Duration> {
    (0..count)
        .map(|_| {
            let (status, elapsed) = request(port, "GET", "/healthz", "");
            assert!(status.contains("200"), "{status}");
            std::thread::sleep(Duration::from_millis(10));
            elapsed
        })
        .collect()
}

#[test]
fn sign_ins_do_not_stall_the_runtime_and_cost_the_same_for_unknown_emails() {
    // Runs in a process of its own with nothing beside it (see `common::alone`).
    if crate::common::alone::rerun_alone(
        module_path!(),
        "sign_ins_do_not_stall_the_runtime_and_cost_the_same_for_unknown_emails",
    ) {
        return;
    }
    let dir = scratch_dir("load");
    let user = phonegate(
        &dir,
        &[
            "users",
            "create",
            "--email",
            "load@example.com",
            "--password",
            "load-passphrase-1",
            "--first-name",
            "Lo",
        ],
    );
    assert!(user["id"].as_i64().is_some(), "{user}");
    let app = phonegate(&dir, &["apps", "create", "--name", "load test"]);
    assert!(
        app["app_id"].is_string() && app["auth_token"].as_str().unwrap().len() == 22,
        "{app}"
    );
    let server = Server::start(dir, &ARGON2);
    let port = server.port;

    // Unknown email vs wrong password: same status, similar time.
    let mut wrong = vec![];
    let mut unknown = vec![];
    for _ in 0..10 {
        let (status, elapsed) = request(
            port,
            "POST",
            "/api/v1/tokens.json",
            "email=load@example.com&password=nope",
        );
        assert!(status.contains("401"), "{status}");
        wrong.push(elapsed);
        let (status, elapsed) = request(
            port,
            "POST",
            "/api/v1/tokens.json",
            "email=nobody@example.com&password=nope",
        );
        assert!(status.contains("401"), "{status}");
        unknown.push(elapsed);
    }
    let (wrong, unknown) = (median(wrong), median(unknown));
    let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
    assert!(
        (0.5..2.0).contains(&ratio),
        "unknown email {unknown:?} vs wrong password {wrong:?}"
    );

    let idle = median(healthz_latencies(port, 40));
    let stop = Arc::new(AtomicBool::new(false));
    let signed_in = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (stop, signed_in) = (stop.clone(), signed_in.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let (status, _) = request(
                        port,
                        "POST",
                        "/api/v1/tokens.json",
                        "email=load@example.com&password=load-passphrase-1",
                    );
                    assert!(status.contains("200"), "{status}");
                    signed_in.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let loaded = median(healthz_latencies(port, 40));
    // On a busy machine the sign-ins may lag; let the load reach its size.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while signed_in.load(Ordering::Relaxed) < 16 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let signed_in = signed_in.load(Ordering::Relaxed);
    assert!(signed_in >= 16, "the load ran ({signed_in} sign-ins)");
    // A few milliseconds of scheduling noise on 2 busy cores is expected;
    // hashing on the runtime would add about one hash time (tens of ms with
    // these settings).
    assert!(
        loaded <= idle + Duration::from_millis(15),
        "/healthz median {loaded:?} under 8 concurrent sign-ins vs {idle:?} idle ({signed_in} sign-ins)"
    );
    eprintln!("healthz median: idle {idle:?}, under load {loaded:?}; {signed_in} sign-ins; unknown/wrong {ratio:.2}");
}
