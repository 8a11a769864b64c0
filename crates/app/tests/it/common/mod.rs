//! `spawn_app`: the real service, built by the same code as `phonegate
//! serve`, on a throwaway database, driven through its router.

pub mod alone;
pub mod process;

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use http_body_util::BodyExt as _;
use phonegate::{Overrides, build, settings::Settings};
use phonegate_adapters::{
    clock::ManualClock,
    sms::{ConsoleEcho, ConsoleProvider},
    sql::SqlStore,
    testing::{TestBackend, TestDatabase},
};
use secrecy::SecretString;
use serde_json::Value;
use tower::ServiceExt as _;

#[derive(Debug)]
pub struct TestApp {
    pub router: Router,
    pub sms: ConsoleProvider,
    pub clock: ManualClock,
    pub store: SqlStore,
    pub test_numbers: std::sync::Arc<phonegate_domain::otp::TestNumbers>,
    pub mail: phonegate_adapters::mail::ConsoleMailer,
    pub token_auth: std::sync::Arc<phonegate_domain::token_auth::TokenAuth>,
    /// Delivers the outbox: [`TestApp::send`] runs it after every request,
    /// so a test sees a message as soon as the request that queued it
    /// returns, as it would a moment later from the background dispatchers.
    pub dispatcher: phonegate_domain::outbox::Dispatcher,
    pub abuse_counters: std::sync::Arc<phonegate_domain::abuse::AbuseCounters>,
    _database: TestDatabase,
    /// Keeps tests that must run alone from running beside this service.
    _pass: alone::Pass,
}

/// A response, with its body parsed as JSON (`Value::Null` if empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

pub async fn spawn_app(backend: TestBackend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Lifts the per-phone limits, cooldowns and budgets, so the functional
/// tests can send a number as many codes as their scenario needs (the
/// manual clock does not move by itself). [`spawn_app_with_limits`] keeps
/// the shipped limits, for the tests of the limits themselves.
pub fn relax_limits(settings: &mut Settings) {
    settings.rate_limit.sends_per_phone = 10_000;
    settings.rate_limit.sends_per_phone_per_day = 100_000;
    settings.rate_limit.sends_per_ip = 10_000;
    settings.rate_limit.checks_per_ip = 10_000;
    settings.rate_limit.sends_per_ipv6_48 = 10_000;
    settings.rate_limit.checks_per_ipv6_48 = 10_000;
    for cooldown in settings.rate_limit.resend_cooldown_seconds.values_mut() {
        *cooldown = 0;
    }
    settings.abuse.hourly_sms_budget = 0;
    settings.abuse.country_hourly_sms_budget = 0;
    // The sign-in throttles too; the account lockout stays.
    settings.sign_in.per_ip = 10_000;
    settings.sign_in.per_email = 10_000;
    settings.sign_in.token_checks_per_ip = 10_000;
    // Functional tests send many codes they never verify; the pumping
    // guard has tests of its own (`pumping.rs`) that turn it back on.
    settings.abuse.pumping.enabled = false;
}

/// Like [`spawn_app_with`], with the shipped limits in force.
pub async fn spawn_app_with_limits(backend: TestBackend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    build_test_app(backend, configure).await.expect("the service builds")
}

/// Like [`spawn_app`], after `configure` has adjusted the settings.
pub async fn spawn_app_with(backend: TestBackend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    try_spawn_app_with(backend, configure)
        .await
        .expect("the service builds")
}

/// Like [`spawn_app_with`], returning why the service refused to build.
pub async fn try_spawn_app_with(
    backend: TestBackend,
    configure: impl FnOnce(&mut Settings),
) -> Result<TestApp, String> {
    build_test_app(backend, |settings| {
        relax_limits(settings);
        configure(settings);
    })
    .await
}

async fn build_test_app(backend: TestBackend, configure: impl FnOnce(&mut Settings)) -> Result<TestApp, String> {
    let pass = alone::pass();
    let database = TestDatabase::create(backend).await;
    let mut settings = Settings::defaults().expect("the built-in defaults load");
    settings.database.url = SecretString::from(database.url.clone());
    settings.database.max_connections = 8;
    configure(&mut settings);
    let clock = ManualClock::starting_now();
    let app = build(
        &settings,
        Overrides {
            clock: std::sync::Arc::new(clock.clone()),
            console_echo: ConsoleEcho::Silent,
        },
    )
    .await
    .map_err(|error| format!("{error:#}"))?;
    Ok(TestApp {
        router: app.router,
        sms: app.console.expect("the console provider is the default"),
        test_numbers: app.test_numbers,
        mail: app.console_mail.expect("the console mailer is the default"),
        token_auth: app.token_auth,
        dispatcher: app.dispatcher,
        abuse_counters: app.abuse_counters,
        clock,
        store: app.store,
        _database: database,
        _pass: pass,
    })
}

impl TestApp {
    /// Runs the dispatcher until nothing is due (or the database is gone,
    /// as in the tests of outages).
    pub async fn deliver_outbox(&self) {
        while let Ok(report) = self.dispatcher.dispatch_due().await
            && report.claimed > 0
        {}
    }

    /// Sends `request` (a Host header is added if missing, as every real
    /// HTTP/1.1 client sends one).
    pub async fn send(&self, mut request: Request<Body>) -> Reply {
        if !request.headers().contains_key(header::HOST) {
            request
                .headers_mut()
                .insert(header::HOST, "localhost:8080".parse().unwrap());
        }
        let response = self.router.clone().oneshot(request).await.unwrap();
        self.deliver_outbox().await;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        Reply { status, headers, body }
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.send(
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    pub async fn post_form(&self, path: &str, form: &str) -> Reply {
        self.send(
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form.to_owned()))
                .unwrap(),
        )
        .await
    }

    pub async fn get_with_bearer(&self, path: &str, token: &str) -> Reply {
        self.send(
            Request::get(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// The code in the last text message sent to `phone`.
    pub fn last_code_to(&self, phone: &str) -> String {
        let message = self
            .sms
            .last_to(phone)
            .unwrap_or_else(|| panic!("no message was sent to {phone}"));
        message
            .body
            .rsplit(' ')
            .next()
            .expect("the message ends with the code")
            .to_owned()
    }

    /// The code read aloud in the last call to `phone`
    /// ("Your … code is 1, 2, 3, 4, 5. Again, …" gives "12345").
    pub fn last_spoken_code_to(&self, phone: &str) -> String {
        let message = self
            .sms
            .last_to(phone)
            .unwrap_or_else(|| panic!("no call was made to {phone}"));
        assert_eq!(message.channel, "call");
        let spoken = message.body.split(" code is ").nth(1).expect("the call reads the code");
        spoken.split('.').next().unwrap().split(", ").collect()
    }

    /// A POST with parameters in the query string and an empty body, as the
    /// phone-login seed's examples send them.
    pub async fn post_query(&self, path_and_query: &str) -> Reply {
        self.send(Request::post(path_and_query).body(Body::empty()).unwrap())
            .await
    }

    /// A request with a form body and any method (curl -X METHOD -d …).
    pub async fn form(&self, method: &str, path: &str, form: &str) -> Reply {
        self.send(
            Request::builder()
                .method(method)
                .uri(path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form.to_owned()))
                .unwrap(),
        )
        .await
    }

    /// Creates an email + password user as `phonegate users create` does.
    pub async fn create_user(&self, email: &str, password: &str, first: &str, last: &str) -> i64 {
        self.token_auth
            .admin()
            .create_user(new_user(email, password, Some(first), Some(last)))
            .await
            .unwrap()
            .get()
    }

    /// Registers an application as `phonegate apps create` does.
    pub async fn create_application(
        &self,
        name: &str,
    ) -> (
        phonegate_domain::application::Application,
        phonegate_domain::token_auth::OpaqueToken,
    ) {
        let name = phonegate_domain::token_auth::ApplicationName::parse(name).unwrap();
        self.token_auth.admin().create_application(&name).await.unwrap()
    }

    /// Logs `phone_query` in through phone-login on device `d` and returns
    /// the access code; `e164` is where the PIN is texted.
    pub async fn phone_login_access_code(&self, phone_query: &str, e164: &str) -> String {
        self.post_query(&format!("/v1/auth/phone_login?phone_number={phone_query}&device_id=d"))
            .await;
        let pin = self.last_code_to(e164);
        let reply = self
            .post_query(&format!(
                "/v1/auth/check_pin?phone_number={phone_query}&device_id=d&verify_pin={pin}"
            ))
            .await;
        reply.body["res_content"]["access_code"].as_str().unwrap().to_owned()
    }

    /// Creates a user with a verified `phone` directly in the store.
    pub async fn store_user(&self, phone: &str) {
        use phonegate_domain::ports::{Clock as _, UserStore as _};
        let phone = phonegate_domain::phone::PhoneNumber::parse_e164(phone).unwrap();
        self.store
            .upsert_verified_phone(&phone, self.clock.now())
            .await
            .unwrap();
    }

    pub fn messages_to(&self, phone: &str) -> usize {
        self.sms.outbox().iter().filter(|m| m.to == phone).count()
    }
}

/// A user for the admin use cases, its values parsed as the CLI parses them.
pub fn new_user(
    email: &str,
    password: &str,
    first: Option<&str>,
    last: Option<&str>,
) -> phonegate_domain::token_auth::NewUser {
    phonegate_domain::token_auth::NewUser {
        email: phonegate_domain::account::Email::parse(email).unwrap(),
        password: phonegate_domain::account::NewPassword::parse(password).unwrap(),
        first_name: first.map(str::to_owned),
        last_name: last.map(str::to_owned),
        phone: None,
    }
}
