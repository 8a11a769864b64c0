//! The developer console in a real browser: the `phonegate` binary with
//! the console SMS provider, Debian's Chromium headless, driven through
//! chromedriver's W3C WebDriver protocol (JSON over HTTP, with reqwest).
//! Each surface is tried as a developer would: type a number, send, read
//! the message the page shows, type its code, verify, and read the token
//! the page decoded.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver`
//! (`apt-get install -y chromium chromium-driver`; `.ci/run` installs them).

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use crate::common::process;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use process::{Server, free_port, scratch_dir};
use regex::Regex;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long the page may take to show what a step produces.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

fn require_browser() {
    for binary in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(binary).exists(),
            "{binary} is missing: the developer console's browser test needs Debian's Chromium and chromedriver; \
             install them with `apt-get install -y chromium chromium-driver` (`bash .ci/run` does)"
        );
    }
}

/// A running chromedriver in its own process group, so that dropping it
/// also ends the Chromium processes it started, even when a test fails
/// before it closes its session.
struct ChromeDriver {
    child: Child,
    port: u16,
    profile: PathBuf,
}

impl ChromeDriver {
    async fn start() -> Self {
        use std::os::unix::process::CommandExt as _;
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let driver = Self {
            child,
            port,
            profile: scratch_dir("chromium-profile"),
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http.get(format!("{}/status", driver.url())).send().await;
            if let Ok(response) = ready
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == true
            {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The group is chromedriver's own (process_group(0) above): its id
        // is chromedriver's pid, and it holds only what chromedriver started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A WebDriver session: the few commands the test needs.
struct Browser {
    http: reqwest::Client,
    session: String,
}

impl Browser {
    async fn open(driver: &ChromeDriver) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", driver.profile.display()),
                ],
            },
        }}});
        let session = command(
            &http,
            reqwest::Method::POST,
            &format!("{}/session", driver.url()),
            Some(capabilities),
        )
        .await;
        let id = session["sessionId"].as_str().expect("a session id").to_owned();
        Self {
            http,
            session: format!("{}/session/{id}", driver.url()),
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        command(
            &self.http,
            reqwest::Method::POST,
            &format!("{}{path}", self.session),
            Some(body),
        )
        .await
    }

    async fn get(&self, path: &str) -> Value {
        command(
            &self.http,
            reqwest::Method::GET,
            &format!("{}{path}", self.session),
            None,
        )
        .await
    }

    async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    async fn find(&self, css: &str) -> String {
        let element = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        element[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {element}"))
            .to_owned()
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.post(&format!("/element/{element}/click"), json!({})).await;
    }

    /// Replaces what the input `css` holds with `text`, as typed.
    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.post(&format!("/element/{element}/clear"), json!({})).await;
        self.post(&format!("/element/{element}/value"), json!({"text": text}))
            .await;
    }

    async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.get(&format!("/element/{element}/text"))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the text of `css` satisfies `ready`, and returns it; on
    /// timeout, fails with that text and the page's status line.
    async fn wait_for_text(&self, css: &str, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let text = self.text(css).await;
            if ready(&text) {
                return text;
            }
            if Instant::now() >= deadline {
                let status = self.text("#status").await;
                let result = self.text("#result").await;
                panic!("{css} never showed {what}: {text:?}\nstatus: {status:?}\nlast response: {result}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn quit(self) {
        command(&self.http, reqwest::Method::DELETE, &self.session, None).await;
    }
}

/// One WebDriver command; its `value`, or a panic with WebDriver's error.
async fn command(http: &reqwest::Client, method: reqwest::Method, url: &str, body: Option<Value>) -> Value {
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|error| panic!("WebDriver {url}: {error}"));
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert!(status.is_success(), "WebDriver {url} answered {status}: {answer}");
    answer["value"].clone()
}

/// Types a number, sends, and returns the code of the message the page
/// shows, after checking the message is the one sent to `e164`.
async fn send_code(browser: &Browser, phone: &str, e164: &str, digits: usize) -> String {
    browser.type_into("#phone", phone).await;
    browser.click("#send").await;
    let message = browser
        .wait_for_text("#message", "the message sent", |text| !text.is_empty())
        .await;
    let shape = Regex::new(&format!(
        r"^\[sms\] to {}:\nYour phonegate code is (\d{{{digits}}})$",
        regex::escape(e164)
    ))
    .unwrap();
    shape
        .captures(&message)
        .unwrap_or_else(|| panic!("unexpected message on the page: {message:?}"))[1]
        .to_owned()
}

async fn verify(browser: &Browser, code: &str) -> String {
    browser.type_into("#code", code).await;
    browser.click("#verify").await;
    browser
        .wait_for_text("#status", "the verification's outcome", |text| {
            text == "Verified." || text.contains("answered")
        })
        .await;
    browser.text("#token").await
}

async fn choose_surface(browser: &Browser, surface: &str) {
    browser.click(&format!("#surface option[value=\"{surface}\"]")).await;
    let help = browser.text("#surface-help").await;
    assert!(!help.is_empty(), "the page explains the {surface} surface");
}

/// A user of the tokens surface, made with the admin CLI on the server's
/// database, as the page tells the developer to.
fn create_user(server: &Server, email: &str, password: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_phonegate"))
        .current_dir(&server.dir)
        .args(["users", "create", "--email", email, "--password", password])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "users create: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_developer_tries_every_surface_in_the_console_page() {
    require_browser();
    let server = Server::start(scratch_dir("console-browser"), &[]);
    let driver = ChromeDriver::start().await;
    let browser = Browser::open(&driver).await;
    browser.goto(&format!("http://127.0.0.1:{}/", server.port)).await;
    let title = browser.get("/title").await;
    assert_eq!(title, "phonegate developer console");

    // pin-auth (the page's first surface): signup, pin, JWT decoded.
    let pin = send_code(&browser, "+85251224538", "+85251224538", 4).await;
    let token = verify(&browser, &pin).await;
    for expected in [
        "jwt_token (JWT, decoded",
        "\"alg\": \"HS256\"",
        "\"kid\": \"k1\"",
        "\"iss\": \"phonegate\"",
        "\"aud\": \"phonegate:access\"",
        "exp = 20",
    ] {
        assert!(
            token.contains(expected),
            "{expected:?} not in the decoded token:\n{token}"
        );
    }
    let result = browser.text("#result").await;
    assert!(result.starts_with("200 /api/v1/auth/verify"), "{result}");
    assert!(result.contains("\"mobile\": \"51224538\""), "{result}");

    // phone-verify: the session token (a JWT) decoded, then verified.
    choose_surface(&browser, "phone-verify").await;
    let code = send_code(&browser, "+1 206 372 1234", "+12063721234", 6).await;
    let before = browser.text("#token").await;
    assert!(before.contains("session_token (not verified yet)"), "{before}");
    let token = verify(&browser, &code).await;
    assert!(token.starts_with("Security code is valid."), "{token}");
    assert!(token.contains("\"phone_number\": \"+12063721234\""), "{token}");
    assert!(token.contains("\"aud\": \"phonegate:phone-verify\""), "{token}");

    // phone-login, with a wrong PIN first: the page shows the refusal.
    choose_surface(&browser, "phone-login").await;
    let pin = send_code(&browser, "(206) 372-1235", "+12063721235", 5).await;
    let wrong: String = pin
        .chars()
        .map(|digit| char::from_digit((digit.to_digit(10).unwrap() + 1) % 10, 10).unwrap())
        .collect();
    verify(&browser, &wrong).await;
    let status = browser.text("#status").await;
    assert_eq!(status, "/v1/auth/check_pin answered 401");
    assert!(browser.text("#result").await.contains("INVALID_PIN"));
    let token = verify(&browser, &pin).await;
    let access_code =
        Regex::new(r"^access_code \(opaque\):\n[0-9a-f]{32}\nexpiry: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$").unwrap();
    assert!(access_code.is_match(&token), "{token}");

    // tokens: sign in (an opaque session token), then confirm a phone.
    create_user(&server, "dev@example.com", "correct-horse-battery");
    choose_surface(&browser, "tokens").await;
    browser.type_into("#email", "dev@example.com").await;
    browser.type_into("#password", "correct-horse-battery").await;
    browser.click("#signin").await;
    let session = browser
        .wait_for_text("#session", "the session token", |text| !text.is_empty())
        .await;
    assert!(session.starts_with("session token (opaque):\n"), "{session}");
    let code = send_code(&browser, "(206) 372-1236", "+12063721236", 4).await;
    let token = verify(&browser, &code).await;
    assert!(token.starts_with("Your number was successfully confirmed."), "{token}");
    assert!(token.contains("session token (opaque)"), "{token}");

    // The outbox panel lists every message, newest first.
    browser.click("#refresh").await;
    let outbox = browser
        .wait_for_text("#outbox", "the four messages", |text| text.lines().count() >= 4)
        .await;
    assert!(outbox.lines().next().unwrap().contains("to +12063721236"), "{outbox}");

    browser.quit().await;
}
