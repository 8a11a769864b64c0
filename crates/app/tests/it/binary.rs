//! The real `phonegate` binary: starts on its embedded defaults (SQLite,
//! console SMS), serves, and on SIGTERM lets an in-flight request finish
//! before it exits cleanly. Also its network edge: the refusal to show the
//! developer console on a public address, the admin listener, and the
//! limits a slow or greedy client meets.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use crate::common::process;

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use process::{Server, free_port, scratch_dir};

fn start() -> Server {
    let server = Server::start(scratch_dir("binary"), &[]);
    let response = get(server.port, "/healthz").unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    server
}

fn get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

fn wait_for_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "phonegate did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serves_on_embedded_defaults_and_shuts_down_gracefully() {
    let mut server = start();
    let ready = get(server.port, "/readyz").unwrap();
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(
        server.dir.join("phonegate.db").exists(),
        "the default SQLite database was created"
    );

    // A request whose body is still arriving when SIGTERM comes...
    let body = r#"{"mobile": "+85261677528"}"#;
    let (first, rest) = body.split_at(10);
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(
        stream,
        "POST /api/v1/auth/send_pin HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
        body.len()
    )
    .unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(300));
    // ...is still answered in full.
    stream.write_all(rest.as_bytes()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut response = vec![0u8; 4096];
    let read = stream.read(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response[..read]);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("otp_auth_key"), "{response}");
    drop(stream);

    let exit = wait_for_exit(&mut server.child, Duration::from_secs(10));
    assert!(exit.success(), "{exit:?}");
    // New connections are refused once it has stopped.
    assert!(get(server.port, "/healthz").is_err());
}

/// With the console SMS provider (the default) on an address other
/// machines reach and no `security.allowed_hosts`, `serve` refuses to
/// start, naming the keys, before it binds anything.
#[test]
fn refuses_the_console_on_a_public_bind_without_allowed_hosts() {
    let dir = scratch_dir("public-console");
    let mut child = Command::new(env!("CARGO_BIN_EXE_phonegate"))
        .current_dir(&dir)
        .arg("serve")
        .env("PHONEGATE__SERVER__BIND", format!("0.0.0.0:{}", free_port()))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            // Not left running on every interface when the test fails.
            let _ = child.kill();
            let _ = child.wait();
            panic!("phonegate served on 0.0.0.0 with the developer console");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(!status.success(), "it served: {stderr}");
    for key in ["server.bind", "sms.provider", "security.allowed_hosts"] {
        assert!(stderr.contains(key), "{key} is not named: {stderr}");
    }
    assert!(!dir.join("phonegate.db").exists(), "it stopped before opening anything");
    let _ = std::fs::remove_dir_all(dir);
}

/// With `server.admin_bind`, `/metrics` is served there and not on the
/// public listener, which keeps everything else.
#[test]
fn metrics_move_to_the_admin_listener() {
    let admin_port = free_port();
    let admin = format!("127.0.0.1:{admin_port}");
    let server = Server::start(scratch_dir("admin-bind"), &[("PHONEGATE__SERVER__ADMIN_BIND", &admin)]);
    let public = get(server.port, "/metrics").unwrap();
    assert!(public.starts_with("HTTP/1.1 404"), "{public}");
    let metrics = get(admin_port, "/metrics").unwrap();
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(metrics.contains("phonegate_http_requests_total"), "{metrics}");
    // Probes and the API stay public; the admin listener has only the
    // operator routes.
    assert!(get(server.port, "/healthz").unwrap().starts_with("HTTP/1.1 200"));
    assert!(get(server.port, "/openapi.json").unwrap().starts_with("HTTP/1.1 200"));
    assert!(get(admin_port, "/healthz").unwrap().starts_with("HTTP/1.1 404"));

    // Without it, /metrics is public as before.
    let server = Server::start(scratch_dir("no-admin-bind"), &[]);
    assert!(get(server.port, "/metrics").unwrap().starts_with("HTTP/1.1 200"));
}

/// Reads what the server sends until it closes the connection, waiting
/// at most `within` for each read. `Err` if a read timed out (the
/// connection was left open).
fn read_until_closed(stream: &mut TcpStream, within: Duration) -> std::io::Result<String> {
    stream.set_read_timeout(Some(within))?;
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => {}
        // A reset is a close too.
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(error) => return Err(error),
    }
    Ok(String::from_utf8_lossy(&received).into_owned())
}

/// A client that sends half a request head is disconnected after
/// `server.header_read_timeout_seconds`; one that sends its head but not
/// all of its body gets 408 after `server.request_timeout_seconds`.
#[test]
fn slow_clients_are_cut_off() {
    let server = Server::start(
        scratch_dir("slow-clients"),
        &[
            ("PHONEGATE__SERVER__HEADER_READ_TIMEOUT_SECONDS", "1"),
            ("PHONEGATE__SERVER__REQUEST_TIMEOUT_SECONDS", "1"),
        ],
    );
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(stream, "GET /healthz HTTP/1.1\r\nHost: loc").unwrap();
    stream.flush().unwrap();
    // Far longer than the timeout: the server, not this deadline, ends it.
    let answer = read_until_closed(&mut stream, Duration::from_secs(20))
        .expect("the server closes a connection whose head does not come");
    assert!(!answer.contains("200 OK"), "{answer}");

    let body = r#"{"mobile": "+85261677528"}"#;
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(
        stream,
        "POST /api/v1/auth/send_pin HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        &body[..10]
    )
    .unwrap();
    stream.flush().unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut answer = [0u8; 512];
    let read = stream.read(&mut answer).expect("the server answers");
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

/// One keep-alive `GET /healthz` on `stream`; returns the status line.
fn healthz_on(stream: &mut TcpStream) -> String {
    write!(stream, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    // The head, then the body of Content-Length bytes.
    loop {
        let read = stream.read(&mut buffer).unwrap();
        assert!(read > 0, "closed early: {}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            if body.len() >= length {
                return head.lines().next().unwrap().to_owned();
            }
        }
    }
}

/// With `server.max_connections = 2`, a third connection is not served
/// while two are open, and is served as soon as one of them closes.
#[test]
fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let server = Server::start(
        scratch_dir("max-connections"),
        &[
            ("PHONEGATE__SERVER__MAX_CONNECTIONS", "2"),
            // The held connections stay idle between requests meanwhile.
            ("PHONEGATE__SERVER__HEADER_READ_TIMEOUT_SECONDS", "120"),
        ],
    );
    let mut first = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    assert!(healthz_on(&mut first).starts_with("HTTP/1.1 200"));
    let mut second = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    assert!(healthz_on(&mut second).starts_with("HTTP/1.1 200"));

    // The kernel completes the handshake, but the server does not take the
    // connection: its request gets no answer.
    let mut third = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(
        third,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    third.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut byte = [0u8; 1];
    let waiting = third.read(&mut byte).unwrap_err();
    assert!(
        matches!(
            waiting.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{waiting:?}"
    );
    // The open ones are still served.
    assert!(healthz_on(&mut second).starts_with("HTTP/1.1 200"));

    drop(first);
    let answer = read_until_closed(&mut third, Duration::from_secs(20)).expect("served once a slot is free");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
