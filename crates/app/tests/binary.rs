//! The real `phonegate` binary: starts on its embedded defaults (SQLite,
//! console SMS), serves, and on SIGTERM lets an in-flight request finish
//! before it exits cleanly.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

mod process;

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    process::{Child, Command},
    time::{Duration, Instant},
};

use process::{Server, scratch_dir};

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
