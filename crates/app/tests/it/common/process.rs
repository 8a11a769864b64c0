//! Running the real `phonegate` binary in tests: a free port, a scratch
//! working directory, and a process that is killed and cleaned up on drop.

use std::{
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A fresh, empty working directory under the system's temp dir.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("phonegate-{name}-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `phonegate serve`; killed and its directory removed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
    /// Keeps tests that must run alone from running beside this server.
    _pass: super::alone::Pass,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    /// Starts `phonegate` (serve, on embedded defaults plus `envs`) in `dir`
    /// and waits until it accepts connections.
    pub fn start(dir: PathBuf, envs: &[(&str, &str)]) -> Self {
        let pass = super::alone::pass();
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_phonegate"))
            .current_dir(&dir)
            .env("PHONEGATE__SERVER__BIND", format!("127.0.0.1:{port}"))
            .envs(envs.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self {
            child,
            port,
            dir,
            _pass: pass,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "phonegate did not start listening within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}
