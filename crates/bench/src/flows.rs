//! The flows the benchmark drives: over HTTP against the server, and the
//! same flows' use cases called in-process (the database ceiling).

use std::{sync::Arc, time::Duration, time::Instant};

use phonegate_api::Services;
use phonegate_domain::{
    abuse::Client,
    otp::{Channel, OtpCode},
    phone::{PhoneNumber, PhonePolicy},
    phone_login::{DeviceId, PinCheck, PinRequest},
    phone_verify::{SessionToken, SubmittedCode, VerifyRequest},
    token_auth::{DeviceToken, MobileOs, SignInEmail, SignInPassword, SignInRequest},
};
use serde_json::json;

use crate::{client::Conn, tap::Tap};

/// How long a client waits for its code to come out of the outbox before
/// it counts the flow as failed.
const CODE_TIMEOUT: Duration = Duration::from_secs(2);

/// Phones each client cycles through, so that concurrent clients never
/// supersede each other's codes. 128 clients × 64 phones are the pin-auth
/// users every run seeds.
pub const PHONES_PER_CLIENT: usize = 64;
pub const MAX_CLIENTS: usize = 128;
/// Users that sign in with a password, shared by the clients.
pub const SIGN_IN_USERS: usize = 128;
pub const SIGN_IN_PASSWORD: &str = "bench-password-1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// GET /healthz: the HTTP ceiling.
    Healthz,
    /// (a) pin-auth send_pin → verify.
    PinAuth,
    /// (b) phone-login phone_login → check_pin.
    PhoneLogin,
    /// (c) phone-verify register → verify.
    PhoneVerify,
    /// (d) tokens sign-in (argon2 bound).
    SignIn,
    /// (e) pin-auth current_user_profile with a JWT.
    Profile,
}

/// The OTP flows, each measured beside its in-process twin.
pub const OTP_FLOWS: [Flow; 3] = [Flow::PinAuth, Flow::PhoneLogin, Flow::PhoneVerify];

impl Flow {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Healthz => "healthz",
            Self::PinAuth => "pin-auth",
            Self::PhoneLogin => "phone-login",
            Self::PhoneVerify => "phone-verify",
            Self::SignIn => "sign-in",
            Self::Profile => "profile",
        }
    }
}

/// The phone client `client` uses on its `iteration`-th run of `flow`.
pub fn phone_for(flow: Flow, client: usize, iteration: u64) -> String {
    let slot = client % MAX_CLIENTS * PHONES_PER_CLIENT + (iteration % PHONES_PER_CLIENT as u64) as usize;
    seeded_phone(phone_prefix(flow), slot)
}

/// What the phones of `flow` begin with; six digits follow.
pub const fn phone_prefix(flow: Flow) -> &'static str {
    match flow {
        Flow::PhoneLogin => "+12063",
        Flow::PhoneVerify => "+12064",
        _ => "+85261",
    }
}

/// The `index`-th seeded user's phone of those beginning with `prefix`.
pub fn seeded_phone(prefix: &str, index: usize) -> String {
    format!("{prefix}{index:06}")
}

pub fn sign_in_email(index: usize) -> String {
    format!("bench{index}@example.com")
}

/// What one client needs besides its connection.
#[derive(Debug, Clone)]
pub struct ClientContext {
    pub index: usize,
    pub tap: Arc<Tap>,
    /// The client's JWT, for the profile flow.
    pub jwt: Option<String>,
}

/// Timings of one iteration: each request's latency in microseconds.
pub type Latencies = Vec<u32>;

fn micros(since: Instant) -> u32 {
    u32::try_from(since.elapsed().as_micros()).unwrap_or(u32::MAX)
}

fn expect_ok(what: &str, response: &crate::client::Response) -> Result<serde_json::Value, String> {
    if response.status == 200 {
        Ok(response.json())
    } else {
        Err(format!(
            "{what}: HTTP {} {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        ))
    }
}

fn text(value: &serde_json::Value, key: &str) -> Result<String, String> {
    value[key]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no {key} in {value}"))
}

/// One iteration of `flow` over HTTP; pushes each request's latency.
pub async fn http_iteration(
    flow: Flow,
    context: &ClientContext,
    conn: &mut Conn,
    iteration: u64,
    latencies: &mut Latencies,
) -> Result<(), String> {
    let io = |error: std::io::Error| error.to_string();
    match flow {
        Flow::Healthz => {
            let started = Instant::now();
            let response = conn.get("/healthz", &[]).await.map_err(io)?;
            latencies.push(micros(started));
            expect_ok("healthz", &response)?;
        }
        Flow::PinAuth => {
            let phone = phone_for(flow, context.index, iteration);
            let code = context.tap.expect(&phone);
            let started = Instant::now();
            let response = conn
                .post_json("/api/v1/auth/send_pin", &json!({"mobile": phone}))
                .await
                .map_err(io)?;
            latencies.push(micros(started));
            let key = text(&expect_ok("send_pin", &response)?, "otp_auth_key")?;
            let pin = code.code(CODE_TIMEOUT).await?;
            let started = Instant::now();
            let response = conn
                .post_json("/api/v1/auth/verify", &json!({"otp_auth_key": key, "pin": pin}))
                .await
                .map_err(io)?;
            latencies.push(micros(started));
            expect_ok("verify", &response)?;
        }
        Flow::PhoneLogin => {
            let phone = phone_for(flow, context.index, iteration);
            let device = format!("bench-{}", context.index);
            let code = context.tap.expect(&phone);
            let started = Instant::now();
            let response = conn
                .post_json(
                    "/v1/auth/phone_login",
                    &json!({"phone_number": phone, "device_id": device}),
                )
                .await
                .map_err(io)?;
            latencies.push(micros(started));
            expect_ok("phone_login", &response)?;
            let pin = code.code(CODE_TIMEOUT).await?;
            let started = Instant::now();
            let response = conn
                .post_json(
                    "/v1/auth/check_pin",
                    &json!({"phone_number": phone, "device_id": device, "verify_pin": pin}),
                )
                .await
                .map_err(io)?;
            latencies.push(micros(started));
            let body = expect_ok("check_pin", &response)?;
            if body["res_content"]["access_code"].as_str().is_none() {
                return Err(format!("check_pin: no access code in {body}"));
            }
        }
        Flow::PhoneVerify => {
            let phone = phone_for(flow, context.index, iteration);
            let code = context.tap.expect(&phone);
            let started = Instant::now();
            let response = conn
                .post_json("/api/phone/register", &json!({"phone_number": phone}))
                .await
                .map_err(io)?;
            latencies.push(micros(started));
            let token = text(&expect_ok("register", &response)?, "session_token")?;
            let pin = code.code(CODE_TIMEOUT).await?;
            let started = Instant::now();
            let response = conn
                .post_json(
                    "/api/phone/verify",
                    &json!({"phone_number": phone, "security_code": pin, "session_token": token}),
                )
                .await
                .map_err(io)?;
            latencies.push(micros(started));
            expect_ok("phone verify", &response)?;
        }
        Flow::SignIn => {
            let body = format!(
                "email={}&password={SIGN_IN_PASSWORD}&device_token=bench-device-{}&mobile_os=ios",
                sign_in_email(context.index % SIGN_IN_USERS),
                context.index
            );
            let started = Instant::now();
            let response = conn.post_form("/api/v1/tokens.json", &body).await.map_err(io)?;
            latencies.push(micros(started));
            text(&expect_ok("sign in", &response)?, "token")?;
        }
        Flow::Profile => {
            let jwt = context.jwt.as_deref().ok_or("no JWT for this client")?;
            let bearer = format!("Bearer {jwt}");
            let started = Instant::now();
            let response = conn
                .get("/api/v1/auth/current_user_profile", &[("Authorization", &bearer)])
                .await
                .map_err(io)?;
            latencies.push(micros(started));
            expect_ok("current_user_profile", &response)?;
        }
    }
    Ok(())
}

/// One iteration of `flow`'s use cases, called in-process: the same
/// statements through the same store and pool, without HTTP or JSON. Codes
/// still come through the outbox, the dispatcher and the tap, as they do
/// for the server.
pub async fn in_process_iteration(
    flow: Flow,
    services: &Services,
    context: &ClientContext,
    iteration: u64,
    latencies: &mut Latencies,
) -> Result<(), String> {
    let client = Client::new(Some(std::net::IpAddr::from([127, 0, 0, 1])));
    let phone = phone_for(flow, context.index, iteration);
    match flow {
        Flow::PinAuth => {
            let code = context.tap.expect(&phone);
            let settings = services.pin_auth.settings();
            let mobile = settings
                .mobile_rule
                .parse(&phone)
                .map_err(|error| format!("send_pin: {error}"))?;
            let started = Instant::now();
            let key = services
                .pin_auth
                .send_pin(&mobile, &client)
                .await
                .map_err(|error| format!("send_pin: {error}"))?;
            latencies.push(micros(started));
            let pin = code.code(CODE_TIMEOUT).await?;
            let started = Instant::now();
            let pin = settings.parse_pin(&pin).map_err(|error| format!("verify: {error}"))?;
            services
                .pin_auth
                .verify(&key, &pin, &client)
                .await
                .map_err(|error| format!("verify: {error}"))?;
            latencies.push(micros(started));
        }
        Flow::PhoneLogin => {
            let device = format!("bench-{}", context.index);
            let code = context.tap.expect(&phone);
            let started = Instant::now();
            let request = PinRequest {
                phone: parse_phone(services.phone_login.phones(), &phone)?,
                device: DeviceId::parse(&device).map_err(|error| format!("device id: {error}"))?,
                channel: Channel::Sms,
            };
            services
                .phone_login
                .phone_login(request, &client)
                .await
                .map_err(|error| format!("phone_login: {error}"))?;
            latencies.push(micros(started));
            let pin = code.code(CODE_TIMEOUT).await?;
            let started = Instant::now();
            let check = PinCheck {
                phone: parse_phone(services.phone_login.phones(), &phone)?,
                device: DeviceId::parse(&device).map_err(|error| format!("device id: {error}"))?,
                pin: OtpCode::parse(&pin, services.phone_login.pin_length()).ok_or("check_pin: a malformed PIN")?,
            };
            services
                .phone_login
                .check_pin(check, &client)
                .await
                .map_err(|error| format!("check_pin: {error}"))?;
            latencies.push(micros(started));
        }
        Flow::PhoneVerify => {
            let code = context.tap.expect(&phone);
            let started = Instant::now();
            let number = parse_phone(services.phone_verify.phones(), &phone)?;
            let token = services
                .phone_verify
                .register(&number, &client)
                .await
                .map_err(|error| format!("register: {error}"))?;
            latencies.push(micros(started));
            let pin = code.code(CODE_TIMEOUT).await?;
            let started = Instant::now();
            services
                .phone_verify
                .verify(
                    VerifyRequest {
                        phone: parse_phone(services.phone_verify.phones(), &phone)?,
                        code: SubmittedCode::parse(&pin, services.phone_verify.code_length()),
                        session_token: SessionToken::parse(token.expose())
                            .map_err(|error| format!("session token: {error}"))?,
                    },
                    &client,
                )
                .await
                .map_err(|error| format!("phone verify: {error}"))?;
            latencies.push(micros(started));
        }
        Flow::SignIn => {
            let email = sign_in_email(context.index % SIGN_IN_USERS);
            let device = format!("bench-device-{}", context.index);
            let started = Instant::now();
            services
                .token_auth
                .sign_in(
                    SignInRequest {
                        email: SignInEmail::parse(&email).map_err(|error| format!("sign in: {error}"))?,
                        password: SignInPassword::parse(SIGN_IN_PASSWORD)
                            .map_err(|error| format!("sign in: {error}"))?,
                        device_token: DeviceToken::parse(&device).ok(),
                        mobile_os: Some(MobileOs::Ios),
                        app_id: None,
                    },
                    &client,
                )
                .await
                .map_err(|error| format!("sign in: {error}"))?;
            latencies.push(micros(started));
        }
        Flow::Healthz | Flow::Profile => return Err(format!("{} has no in-process form", flow.name())),
    }
    Ok(())
}

/// `phone` read as the surfaces' edge reads it.
fn parse_phone(phones: &PhonePolicy, phone: &str) -> Result<PhoneNumber, String> {
    phones.parse(phone).map_err(|error| format!("phone number: {error}"))
}
