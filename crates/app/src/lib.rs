//! The composition root: turns [`Settings`] into a running service by
//! choosing adapters, wiring them into the domain's use cases and handing
//! those to the HTTP routers. Nothing else in the workspace depends on every
//! crate; nothing here contains business rules.

use std::{sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use axum::Router;
use phonegate_adapters::{
    clock::SystemClock,
    mail::{ConsoleMailer, SmtpMailer},
    password::{Argon2Passwords, Argon2Settings},
    password_screen::ZxcvbnScreen,
    random::OsRandom,
    rate_limit::{InMemoryRateLimiter, RedisRateLimiter},
    sms::{ConsoleEcho, ConsoleProvider, NullProvider},
    sql::{Backend, Db, DbOptions, Sealer, SqlStore, migrate},
    twilio::{TwilioClient, TwilioSettings as TwilioClientSettings},
};
use phonegate_api::{
    AllowedHosts, ClientIpSource, HttpSettings, Services,
    console::{DevMessage, DevOutbox},
    metrics::{DeliveryProviders, Registry},
};
use phonegate_domain::{
    abuse::{AbuseCounters, AbuseSettings, SendGuard, phone_lockout::PhoneLockout, sign_in::SignInGuard},
    delivery::{MessageTemplates, Messenger},
    otp::{CodeLength, OtpEngine, OtpPolicy, Purpose, SecretHasher, TestNumbers},
    outbox::{DispatchSettings, Dispatcher},
    phone::{MobileRule, PhoneNumber, PhonePolicy},
    phone_login::{PhoneLogin, PhoneLoginSettings},
    phone_verify::{PhoneVerify, PhoneVerifySettings},
    pin_auth::{PinAuth, PinAuthSettings},
    ports::{Clock, HostedVerification, Mailer, Metrics, RandomSource, SmsSender, TokenIssuer, VoiceCaller},
    rate_limit::{RateLimiter, RateRule},
    token_auth::{TokenAuth, TokenAuthPorts, TokenAuthSettings},
};
use secrecy::{ExposeSecret as _, SecretString};

pub mod background;
pub mod exposure;
mod instrumented;
mod jwt_keys;
mod lockout;
mod secrets;
pub mod settings;
mod sign_in;
pub mod telemetry;

use instrumented::Instrumented;
use settings::{CodePolicySettings, MailProvider, Settings, SmsProvider};

/// What tests may replace when building the service.
#[derive(Clone)]
pub struct Overrides {
    /// The clock every use case reads (tests use a manual clock).
    pub clock: Arc<dyn Clock>,
    /// Whether the console provider echoes to stdout.
    pub console_echo: ConsoleEcho,
}

impl Default for Overrides {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            console_echo: ConsoleEcho::Stdout,
        }
    }
}

impl std::fmt::Debug for Overrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overrides")
            .field("console_echo", &self.console_echo)
            .finish_non_exhaustive()
    }
}

/// A built service: the router plus handles that the binary and tests need.
#[derive(Debug)]
pub struct App {
    pub router: Router,
    /// The admin listener's router (`/metrics`), when `server.admin_bind`
    /// is set; `router` then does not serve those routes.
    pub admin_router: Option<Router>,
    /// The use cases behind the router (the benchmark's in-process
    /// database ceiling calls them without HTTP).
    pub services: Services,
    pub store: SqlStore,
    /// The dev outbox, when `sms.provider = console`.
    pub console: Option<ConsoleProvider>,
    /// The configured test numbers (their use count is read by tests).
    pub test_numbers: Arc<TestNumbers>,
    /// The dev mail outbox, when `mail.provider = console`.
    pub console_mail: Option<ConsoleMailer>,
    /// The tokens surface's use cases, for the admin CLI.
    pub token_auth: Arc<TokenAuth>,
    /// Delivers what the outbox holds; `serve` runs it in the background
    /// ([`background::spawn`]), tests drive it directly.
    pub dispatcher: Dispatcher,
    /// Refusals by the rate limits and the SMS-pumping guard.
    pub abuse_counters: Arc<AbuseCounters>,
    /// Deliveries, verifications, provider calls and HTTP requests, as
    /// `/metrics` reports them.
    pub metrics: Arc<Registry>,
}

/// The console providers' messages, for the developer console.
struct ConsoleOutbox {
    sms: ConsoleProvider,
    mail: Option<ConsoleMailer>,
}

impl DevOutbox for ConsoleOutbox {
    fn messages(&self) -> Vec<DevMessage> {
        let texts = self.sms.outbox().into_iter().map(|message| DevMessage {
            id: format!("phone-{}", message.id),
            channel: message.channel.to_owned(),
            to: message.to,
            body: message.body,
        });
        let mails = self.mail.iter().flat_map(ConsoleMailer::outbox).map(|mail| DevMessage {
            id: format!("mail-{}", mail.id),
            channel: "mail".to_owned(),
            to: mail.to,
            body: format!("{}\n\n{}", mail.subject, mail.text_body),
        });
        texts.chain(mails).collect()
    }
}

/// Opens the database and applies pending migrations.
pub async fn open_database(settings: &Settings, clock: &dyn Clock) -> anyhow::Result<Db> {
    Ok(migrate_database(settings, clock).await?.0)
}

/// Opens the database and applies pending migrations; returns it with how
/// many migrations were applied (`phonegate migrate` reports it).
pub async fn migrate_database(settings: &Settings, clock: &dyn Clock) -> anyhow::Result<(Db, usize)> {
    let url = settings.database.url.expose_secret();
    let db = Db::connect(
        url,
        &DbOptions {
            max_connections: settings.database.max_connections,
            acquire_timeout: Duration::from_secs(5),
        },
    )
    .await
    .context("opening the database (database.url)")?;
    let applied = migrate(&db, clock.now().unix_millis())
        .await
        .context("migrating the database")?;
    tracing::info!(backend = ?db.backend(), applied, "database ready");
    Ok((db, applied))
}

fn code_policy(name: &str, policy: CodePolicySettings) -> anyhow::Result<OtpPolicy> {
    let Some(length) = CodeLength::new(policy.length) else {
        bail!("otp.{name}.length must be between 4 and 10, not {}", policy.length);
    };
    if policy.max_attempts == 0 {
        bail!("otp.{name}.max_attempts must be at least 1");
    }
    if policy.ttl_seconds == 0 {
        bail!("otp.{name}.ttl_seconds must be at least 1");
    }
    Ok(OtpPolicy {
        length,
        ttl: Duration::from_secs(policy.ttl_seconds),
        max_attempts: policy.max_attempts,
    })
}

/// The configured test numbers, refused with a real SMS provider unless the
/// deployment explicitly allows them.
fn test_numbers(settings: &Settings) -> anyhow::Result<TestNumbers> {
    let otp = &settings.otp;
    let exact = otp
        .test_numbers
        .iter()
        .map(|entry| {
            PhoneNumber::parse_e164(&entry.number)
                .map(|phone| (phone, entry.code.clone()))
                .map_err(|error| anyhow::anyhow!("otp.test_numbers: {:?} is not E.164: {error}", entry.number))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let prefixes = otp
        .test_prefixes
        .iter()
        .map(|entry| {
            let digits = entry.prefix.strip_prefix('+').unwrap_or_default();
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                bail!("otp.test_prefixes: {:?} must be + and digits", entry.prefix);
            }
            Ok((entry.prefix.clone(), entry.code.clone()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let numbers = TestNumbers::new(exact, prefixes).map_err(|error| anyhow::anyhow!("otp: {error}"))?;
    if !numbers.is_empty() {
        if settings.sms.provider != SmsProvider::Console && !otp.allow_test_numbers_in_production {
            bail!(
                "otp.test_numbers / otp.test_prefixes are configured with a real SMS provider; \
                 set otp.allow_test_numbers_in_production = true if that is intended"
            );
        }
        tracing::warn!(
            numbers = otp.test_numbers.len(),
            prefixes = otp.test_prefixes.len(),
            "test numbers are enabled: they accept a fixed code and receive nothing"
        );
    }
    Ok(numbers)
}

fn phone_policy(
    settings: &Settings,
    surface: &str,
    regions: &[String],
    prefixes: &[String],
) -> anyhow::Result<PhonePolicy> {
    PhonePolicy::new(&settings.phone.default_region, regions, prefixes.to_vec())
        .map_err(|error| anyhow::anyhow!("{surface} / phone.default_region: {error}"))
}

/// The Twilio client from `[twilio]`.
fn twilio_client(settings: &Settings) -> anyhow::Result<TwilioClient> {
    let twilio = &settings.twilio;
    let sid = twilio
        .account_sid
        .clone()
        .context("twilio.account_sid is required with a Twilio provider")?;
    let token = twilio
        .auth_token
        .clone()
        .context("twilio.auth_token is required with a Twilio provider")?;
    let mut client = TwilioClientSettings::new(sid, token);
    client.from_number = twilio.from_number.clone();
    client.messaging_service_sid = twilio.messaging_service_sid.clone();
    client.verify_service_sid = twilio.verify_service_sid.clone();
    client.api_base_url = twilio.api_base_url.clone();
    client.verify_base_url = twilio.verify_base_url.clone();
    client.timeout = Duration::from_secs(twilio.timeout_seconds);
    client.voice_language = twilio.voice_language.clone();
    client.max_attempts = twilio.max_attempts;
    client.retry_base_delay = Duration::from_millis(twilio.retry_base_delay_ms);
    if settings.sms.provider == SmsProvider::TwilioVerify && twilio.verify_service_sid.is_none() {
        bail!("twilio.verify_service_sid is required when sms.provider = \"twilio_verify\"");
    }
    if settings.sms.provider == SmsProvider::Twilio
        && twilio.from_number.is_none()
        && twilio.messaging_service_sid.is_none()
    {
        bail!("twilio.from_number (or twilio.messaging_service_sid) is required when sms.provider = \"twilio\"");
    }
    TwilioClient::new(client).map_err(|error| anyhow::anyhow!("[twilio]: {error}"))
}

/// The purpose a settings table names by its surface (`pin_auth`,
/// `phone_verify`, `phone_login`, `phone_confirm`); `section` names the table
/// in the error.
fn surface_purpose(section: &str, surface: &str) -> anyhow::Result<Purpose> {
    Ok(match surface {
        "pin_auth" => Purpose::PinAuth,
        "phone_verify" => Purpose::PhoneVerify,
        "phone_login" => Purpose::PhoneLogin,
        "phone_confirm" => Purpose::PhoneConfirm,
        other => bail!("{section}.{other}: unknown surface (pin_auth, phone_verify, phone_login or phone_confirm)"),
    })
}

/// The message templates of `messages.locale`.
fn message_templates(settings: &Settings) -> anyhow::Result<MessageTemplates> {
    let locale = &settings.messages.locale;
    let set = settings
        .messages
        .templates
        .get(locale)
        .with_context(|| format!("messages.locale = {locale:?} has no [messages.templates.{locale}]"))?;
    let mut templates = MessageTemplates {
        sms: set.sms.clone(),
        voice: set.voice.clone(),
        ..MessageTemplates::english()
    };
    for (surface, overrides) in &set.surfaces {
        let purpose = surface_purpose(&format!("messages.templates.{locale}.surfaces"), surface)?;
        if let Some(sms) = &overrides.sms {
            templates.sms_by_purpose.insert(purpose, sms.clone());
        }
        if let Some(voice) = &overrides.voice {
            templates.voice_by_purpose.insert(purpose, voice.clone());
        }
    }
    templates
        .validate()
        .map_err(|error| anyhow::anyhow!("messages.templates.{locale}: {error}"))?;
    Ok(templates)
}

/// The benchmarks' `null` provider. It is refused unless mail stays on the
/// console as well: a deployment that sends people mail is a real one, and
/// a real deployment must never drop its codes.
fn null_provider(settings: &Settings) -> anyhow::Result<NullProvider> {
    if settings.mail.provider != MailProvider::Console {
        anyhow::bail!(
            "sms.provider = \"null\" drops every code and is for benchmarks only; it needs mail.provider = \"console\""
        );
    }
    let tap = settings
        .sms
        .null_tap
        .as_deref()
        .map(|tap| tap.parse::<std::net::SocketAddr>())
        .transpose()
        .context("sms.null_tap must be an address such as 127.0.0.1:9999")?;
    let null = NullProvider::new(tap).map_err(|error| anyhow::anyhow!("sms.null_tap: {error}"))?;
    tracing::warn!("sms.provider = null: every SMS and call is dropped (benchmarks only)");
    Ok(null)
}

/// Builds the whole service from settings.
pub async fn build(settings: &Settings, overrides: Overrides) -> anyhow::Result<App> {
    let clock = overrides.clock.clone();
    let db = open_database(settings, clock.as_ref()).await?;
    let store = SqlStore::new(db).with_profile_cache(Duration::from_millis(settings.database.profile_cache_ms));
    let random: Arc<dyn RandomSource> = Arc::new(OsRandom);
    let test_numbers = Arc::new(test_numbers(settings)?);

    let registry = Arc::new(Registry::new(DeliveryProviders {
        sms: settings.sms.provider.as_str(),
        mail: settings.mail.provider.as_str(),
    }));
    let metrics: Arc<dyn Metrics> = registry.clone();
    let sms_provider = settings.sms.provider.as_str();
    // Every provider is wrapped so that its calls are timed and its
    // failures counted, whichever provider it is.
    let instrument_sms = |sender: Arc<dyn SmsSender>| -> Arc<dyn SmsSender> {
        Arc::new(Instrumented::new(sender, sms_provider, metrics.clone()))
    };
    let instrument_voice = |caller: Arc<dyn VoiceCaller>| -> Arc<dyn VoiceCaller> {
        Arc::new(Instrumented::new(caller, sms_provider, metrics.clone()))
    };
    let app_name = settings.otp.app_name.clone();
    let (messenger, hosted, console): (Messenger, Option<Arc<dyn HostedVerification>>, _) = match settings.sms.provider
    {
        SmsProvider::Console => {
            let console = ConsoleProvider::new(overrides.console_echo);
            let messenger = Messenger::new(
                instrument_sms(Arc::new(console.clone())),
                instrument_voice(Arc::new(console.clone())),
                app_name,
            );
            (messenger, None, Some(console))
        }
        SmsProvider::Twilio => {
            let client = Arc::new(twilio_client(settings)?.with_metrics(metrics.clone()));
            let messenger = Messenger::new(instrument_sms(client.clone()), instrument_voice(client), app_name);
            (messenger, None, None)
        }
        SmsProvider::Null => {
            let null = Arc::new(null_provider(settings)?);
            let messenger = Messenger::new(instrument_sms(null.clone()), instrument_voice(null), app_name);
            (messenger, None, None)
        }
        SmsProvider::TwilioVerify => {
            let client = Arc::new(twilio_client(settings)?.with_metrics(metrics.clone()));
            let hosted: Arc<dyn HostedVerification> =
                Arc::new(Instrumented::new(client, sms_provider, metrics.clone()));
            let locale = settings.twilio.verify_locale.clone();
            (Messenger::hosted(hosted.clone(), locale, app_name), Some(hosted), None)
        }
    };
    let messenger = messenger.with_templates(message_templates(settings)?);
    // With Twilio Verify, Twilio generates the codes with the length set on
    // the Verify service, so every surface uses that length.
    let code_policy = |name: &str, mut policy: CodePolicySettings| {
        if settings.sms.provider == SmsProvider::TwilioVerify {
            policy.length = settings.twilio.verify_code_length;
        }
        code_policy(name, policy)
    };

    let (mailer, console_mail): (Arc<dyn Mailer>, _) = match settings.mail.provider {
        MailProvider::Console => {
            let console = ConsoleMailer::new(overrides.console_echo);
            (Arc::new(console.clone()), Some(console))
        }
        MailProvider::Smtp => (Arc::new(smtp_mailer(settings)?), None),
    };
    let mailer: Arc<dyn Mailer> = Arc::new(Instrumented::new(
        mailer,
        settings.mail.provider.as_str(),
        metrics.clone(),
    ));
    let passwords = Arc::new(
        Argon2Passwords::new(
            Argon2Settings {
                memory_kib: settings.auth.argon2_memory_kib,
                iterations: settings.auth.argon2_iterations,
                parallelism: settings.auth.argon2_parallelism,
            },
            random.clone(),
        )
        .map_err(|error| anyhow::anyhow!("auth.argon2_*: {error}"))?
        .with_queue_per_thread(settings.sign_in.hashing_queue_per_thread),
    );

    let secret = secrets::master_secret(settings, &store, clock.as_ref()).await?;
    // Outbox payloads (codes, reset links) are sealed under a key derived
    // from the same secret, so every instance can read every row.
    let sealing_key = secrets::sealing_key(&secret);
    let store = store.with_sealer(Sealer::new(*sealing_key.expose_secret()));
    // One limiter for every limit, so sign-in limits and the cap on wrong
    // codes per number hold across instances exactly as the send limits do.
    // Phone numbers and emails enter its keys (and so Redis) only as hashes
    // under a key derived from the master secret: the same on every
    // instance, useless without the secret.
    let limiter = rate_limiter(settings).await?;
    let limiter_keys = SecretHasher::derived(secret.expose_secret().as_bytes(), "phonegate rate-limit keys v1");
    let guard = SendGuard::new(limiter.clone(), abuse_settings(settings)?, limiter_keys.clone())
        .with_verified_phones(Arc::new(store.clone()));
    // The in-memory limiter forgets its least recently used keys when full,
    // and anyone can fill it (one key per made-up email at sign-in). A lock
    // is written once and then only read, so in a shared limiter it would
    // be the first key forgotten: the lockout gets a limiter of its own,
    // whose keys only wrong codes against real challenges (bounded by the
    // SMS budgets) create. Redis forgets nothing before its window ends.
    let lockout_limiter = match settings.rate_limit.redis_url {
        Some(_) => limiter.clone(),
        None => rate_limiter(settings).await?,
    };
    let lockout = PhoneLockout::new(
        lockout_limiter,
        lockout::lockout_settings(settings)?,
        limiter_keys.clone(),
    );
    let abuse_counters = guard.counters().clone();
    let sign_in_guard =
        SignInGuard::new(limiter, sign_in::limits(settings)?, limiter_keys).with_counters(abuse_counters.clone());
    // JWTs are signed with keys of their own, never with the master secret;
    // only tokens signed before the upgrade are verified with it, for a while.
    let hs256_key = secrets::hs256_key(settings, &secret)?;
    for warning in secrets::master_reuse_warnings(settings, &secret) {
        tracing::warn!("{warning}");
    }
    let legacy = secrets::legacy_tokens(settings, &store, &secret, clock.now()).await?;
    let tokens: Arc<dyn TokenIssuer> = Arc::new(jwt_keys::token_issuer(
        &settings.auth,
        hs256_key.key(),
        Some(legacy),
        random.clone(),
    )?);
    // Codes, lookup keys and stored tokens are hashed with a key derived
    // from the master secret `auth.jwt_secret` (under its own label, so
    // neither use can stand in for the other), never from the signing keys:
    // rotating signing keys leaves every stored hash valid.
    let hasher = secrets::hasher(&secret);
    let store_arc = Arc::new(store.clone());
    let mut otp = OtpEngine::new(store_arc.clone(), clock.clone(), random.clone(), hasher)
        .with_test_numbers(test_numbers.clone())
        .with_guard(guard)
        .with_lockout(lockout)
        .with_metrics(metrics.clone());
    if let Some(hosted) = hosted {
        otp = otp.with_hosted(hosted);
    }

    let pin_auth = Arc::new(PinAuth::new(
        store_arc.clone(),
        store_arc.clone(),
        messenger.clone(),
        tokens.clone(),
        otp.clone(),
        PinAuthSettings {
            mobile_rule: MobileRule::new(
                settings.pin_auth.mobile_prefixes.clone(),
                settings.pin_auth.mobile_digits_after_prefix,
            ),
            policy: code_policy("pin_auth", settings.otp.pin_auth)?,
        },
    ));
    let phone_verify = Arc::new(PhoneVerify::new(
        store_arc.clone(),
        messenger.clone(),
        tokens.clone(),
        otp.clone(),
        PhoneVerifySettings {
            phones: phone_policy(
                settings,
                "phone_verify",
                &settings.phone_verify.allowed_regions,
                &settings.phone_verify.allowed_prefixes,
            )?,
            policy: code_policy("phone_verify", settings.otp.phone_verify)?,
        },
    ));
    let phone_login = Arc::new(
        PhoneLogin::new(
            store_arc.clone(),
            store_arc.clone(),
            messenger.clone(),
            otp.clone(),
            PhoneLoginSettings {
                phones: phone_policy(
                    settings,
                    "phone_login",
                    &settings.phone_login.allowed_regions,
                    &settings.phone_login.allowed_prefixes,
                )?,
                policy: code_policy("phone_login", settings.otp.phone_login)?,
                access_code_ttl: Duration::from_secs(settings.phone_login.access_code_ttl_seconds),
            },
        )
        .with_sign_in_guard(sign_in_guard.clone()),
    );

    let token_auth = Arc::new(
        TokenAuth::new(
            TokenAuthPorts {
                users: store_arc.clone(),
                accounts: store_arc.clone(),
                sessions: store_arc.clone(),
                applications: store_arc.clone(),
                access_codes: store_arc.clone(),
                passwords,
                screen: Arc::new(ZxcvbnScreen),
                tokens: tokens.clone(),
                outbox: store_arc.clone(),
                messenger: messenger.clone(),
            },
            otp,
            TokenAuthSettings {
                phones: phone_policy(settings, "tokens", &[], &[])?,
                phone_policy: code_policy("phone_confirm", settings.otp.phone_confirm)?,
                session_ttl: Duration::from_secs(settings.auth.session_ttl_seconds),
                reset_ttl: Duration::from_secs(settings.mail.reset_ttl_seconds),
                reset_url_template: settings.mail.reset_url_template.clone(),
                app_name: settings.otp.app_name.clone(),
            },
        )
        .with_sign_in_guard(sign_in_guard),
    );

    let dispatcher = Dispatcher::new(
        store_arc.clone(),
        messenger,
        mailer,
        clock.clone(),
        DispatchSettings {
            lease: Duration::from_secs(settings.outbox.lease_seconds.max(1)),
            batch: settings.outbox.batch.max(1),
            retry_base: Duration::from_millis(settings.outbox.retry_base_ms.max(1)),
            retry_max: Duration::from_secs(settings.outbox.retry_max_seconds.max(1)),
        },
    )
    .with_metrics(metrics);
    let services = Services {
        pin_auth,
        phone_verify,
        phone_login,
        token_auth: token_auth.clone(),
        readiness: store_arc,
        tokens,
        metrics: phonegate_api::ops::MetricSources {
            abuse: abuse_counters.clone(),
            outbox: dispatcher.clone(),
            registry: registry.clone(),
        },
        // The developer console shows codes, so it exists only when no
        // real SMS provider is configured.
        dev_outbox: console.clone().map(|sms| {
            Arc::new(ConsoleOutbox {
                sms,
                mail: console_mail.clone(),
            }) as Arc<dyn DevOutbox>
        }),
    };
    let http = HttpSettings {
        allowed_hosts: AllowedHosts::new(settings.security.allowed_hosts.clone()),
        reset_response_floor: Duration::from_millis(settings.mail.reset_min_response_ms),
        client_ip: ClientIpSource {
            header: client_ip_header(settings)?,
            trusted_proxies: exposure::trusted_proxies(settings)?,
        },
        request_timeout: Some(Duration::from_secs(settings.server.request_timeout_seconds.max(1))),
        admin_listener: settings.server.admin_bind.is_some(),
    };
    let admin_router = http
        .admin_listener
        .then(|| phonegate_api::admin_router(services.clone(), http.clone()));
    let router = phonegate_api::router(services.clone(), http);
    Ok(App {
        router,
        admin_router,
        services,
        store,
        console,
        test_numbers,
        console_mail,
        token_auth,
        dispatcher,
        abuse_counters,
        metrics: registry,
    })
}

/// The SMTP mailer from `[mail]` (no connection is made until a mail is sent).
fn smtp_mailer(settings: &Settings) -> anyhow::Result<SmtpMailer> {
    let url = settings
        .mail
        .smtp_url
        .as_ref()
        .context("mail.smtp_url is required when mail.provider = \"smtp\"")?;
    SmtpMailer::new(
        url.expose_secret(),
        &settings.mail.from,
        Duration::from_secs(settings.mail.timeout_seconds),
    )
    .map_err(|error| anyhow::anyhow!(error))
}

/// `security.client_ip_header` as a header name.
fn client_ip_header(settings: &Settings) -> anyhow::Result<Option<axum::http::HeaderName>> {
    settings
        .security
        .client_ip_header
        .as_deref()
        .map(|name| {
            axum::http::HeaderName::try_from(name)
                .map_err(|_| anyhow::anyhow!("security.client_ip_header: {name:?} is not a header name"))
        })
        .transpose()
}

/// What `phonegate config check` found: the adapters the settings would
/// use. Serialised as the command's output.
#[derive(Debug, serde::Serialize)]
pub struct ConfigReport {
    /// `sqlite` or `postgres`.
    pub database: &'static str,
    /// Who sends texts: `console`, `twilio` or `twilio_verify`.
    pub sms: &'static str,
    /// Who places calls: the same as `sms`.
    pub voice: &'static str,
    /// Who makes and checks the codes: `phonegate` or `twilio_verify`.
    pub codes: &'static str,
    /// `console` or `smtp`.
    pub mail: &'static str,
    /// Where the rate limits count: `memory` (one instance) or `redis`.
    pub rate_limit: &'static str,
    /// The current JWT signing key's algorithm and id, and how many
    /// previous keys still verify.
    pub jwt_algorithm: &'static str,
    /// Where the HS256 key comes from: `set` (`auth.jwt_hs256_key`),
    /// derived from the master secret (development only), or `unused`.
    pub jwt_hs256_key: &'static str,
    pub jwt_key_id: String,
    pub jwt_previous_keys: usize,
    /// `text` or `json`.
    pub log_format: &'static str,
    /// Settings that work but deserve a second look.
    pub warnings: Vec<String>,
}

/// Validates `settings` as `build` would, without connecting to anything
/// (no database, Redis, SMTP or Twilio connection; key files are read), and
/// says which adapters they select. The error names the offending key.
pub fn check_settings(settings: &Settings) -> anyhow::Result<ConfigReport> {
    let mut warnings = vec![];
    let database = match Backend::of_url(settings.database.url.expose_secret()) {
        Some(Backend::Sqlite) => "sqlite",
        Some(Backend::Postgres) => "postgres",
        None => bail!(
            "database.url must start with sqlite: or postgres:// (the value is not shown: it may hold a password)"
        ),
    };
    if settings.database.max_connections == 0 {
        bail!("database.max_connections must be at least 1");
    }
    let test_numbers = test_numbers(settings)?;
    if !test_numbers.is_empty() {
        warnings.push("otp.test_numbers / otp.test_prefixes are enabled: they accept a fixed code".to_owned());
    }
    if settings.sms.provider == SmsProvider::Null {
        null_provider(settings)?;
    } else if settings.sms.provider != SmsProvider::Console {
        twilio_client(settings)?;
        let twilio = &settings.twilio;
        let longest_call = twilio
            .timeout_seconds
            .saturating_mul(u64::from(twilio.max_attempts.max(1)));
        if settings.outbox.lease_seconds <= longest_call {
            warnings.push(format!(
                "outbox.lease_seconds ({}) should exceed twilio.timeout_seconds × twilio.max_attempts ({longest_call}), \
                 or a slow message may be sent twice",
                settings.outbox.lease_seconds
            ));
        }
    }
    message_templates(settings)?;
    if settings.mail.provider == MailProvider::Smtp {
        smtp_mailer(settings)?;
    }
    for (name, policy) in [
        ("pin_auth", settings.otp.pin_auth),
        ("phone_verify", settings.otp.phone_verify),
        ("phone_login", settings.otp.phone_login),
        ("phone_confirm", settings.otp.phone_confirm),
    ] {
        let mut policy = policy;
        if settings.sms.provider == SmsProvider::TwilioVerify {
            policy.length = settings.twilio.verify_code_length;
        }
        code_policy(name, policy)?;
    }
    phone_policy(
        settings,
        "phone_verify",
        &settings.phone_verify.allowed_regions,
        &settings.phone_verify.allowed_prefixes,
    )?;
    phone_policy(
        settings,
        "phone_login",
        &settings.phone_login.allowed_regions,
        &settings.phone_login.allowed_prefixes,
    )?;
    abuse_settings(settings)?;
    sign_in::limits(settings)?;
    lockout::lockout_settings(settings)?;
    warnings.extend(lockout::guessing_warnings(settings));
    client_ip_header(settings)?;
    warnings.extend(exposure::check(settings)?);
    let rate_limit = match &settings.rate_limit.redis_url {
        Some(url) => {
            RedisRateLimiter::check_url(url.expose_secret())
                .map_err(|error| anyhow::anyhow!("rate_limit.redis_url: {}", error.report()))?;
            "redis"
        }
        None => "memory",
    };
    if rate_limit == "memory" && database == "postgres" {
        warnings.push(
            "rate_limit.redis_url is not set: each instance counts its own limits; set it when running several instances"
                .to_owned(),
        );
    }
    // The master secret and the HS256 key: checked as `build` does; in
    // development, where `build` would generate a master secret, a
    // placeholder stands in so that the JWT key settings are still checked.
    let secret = match secrets::configured_master(settings)? {
        Some(secret) => secret,
        None if settings.is_development() => {
            warnings.push("auth.jwt_secret is not set: a random one is kept in the development database".to_owned());
            SecretString::from("a placeholder for config check only, never used".to_owned())
        }
        None => bail!("auth.jwt_secret is required when a real SMS or mail provider is configured"),
    };
    let hs256_key = secrets::hs256_key(settings, &secret)?;
    warnings.extend(secrets::master_reuse_warnings(settings, &secret));
    jwt_keys::token_issuer(&settings.auth, hs256_key.key(), None, Arc::new(OsRandom))?;
    tracing_subscriber::EnvFilter::try_new(&settings.log.filter)
        .map_err(|error| anyhow::anyhow!("log.filter: {error}"))?;
    let sms = settings.sms.provider.as_str();
    Ok(ConfigReport {
        database,
        sms,
        voice: sms,
        codes: if settings.sms.provider == SmsProvider::TwilioVerify {
            "twilio_verify"
        } else {
            "phonegate"
        },
        mail: settings.mail.provider.as_str(),
        rate_limit,
        jwt_algorithm: settings.auth.jwt_algorithm.as_str(),
        jwt_hs256_key: hs256_key.describe(),
        jwt_key_id: settings.auth.jwt_key_id.clone(),
        jwt_previous_keys: settings.auth.jwt_previous_keys.len(),
        log_format: settings.log.format.as_str(),
        warnings,
    })
}

/// The rate limiter: Redis when `rate_limit.redis_url` is set (instances
/// share the counts), memory otherwise.
async fn rate_limiter(settings: &Settings) -> anyhow::Result<Arc<dyn RateLimiter>> {
    let limits = &settings.rate_limit;
    Ok(match &limits.redis_url {
        Some(url) => Arc::new(
            RedisRateLimiter::connect(url.expose_secret(), &limits.redis_key_prefix)
                .await
                .map_err(|error| anyhow::anyhow!("rate_limit.redis_url: {}", error.report()))?,
        ),
        None => Arc::new(InMemoryRateLimiter::with_max_keys(limits.max_memory_keys)),
    })
}

/// The limits and the SMS-pumping guard from `[rate_limit]` and `[abuse]`.
fn abuse_settings(settings: &Settings) -> anyhow::Result<AbuseSettings> {
    let limits = &settings.rate_limit;
    let abuse = &settings.abuse;
    let rule = |limit: u32, seconds: u64| RateRule::new(limit, Duration::from_secs(seconds.max(1)));
    let mut resend_cooldown = std::collections::HashMap::new();
    for (surface, seconds) in &limits.resend_cooldown_seconds {
        let purpose = surface_purpose("rate_limit.resend_cooldown_seconds", surface)?;
        resend_cooldown.insert(purpose, Duration::from_secs(*seconds));
    }
    if abuse.returning_reserve_percent > 100 {
        bail!(
            "abuse.returning_reserve_percent: {} is not a share of the budget (0 to 100)",
            abuse.returning_reserve_percent
        );
    }
    if limits.max_memory_keys < 1000 {
        bail!(
            "rate_limit.max_memory_keys: {} is too few to hold one instance's counts (at least 1000)",
            limits.max_memory_keys
        );
    }
    for code in abuse.country_hourly_sms_budgets.keys() {
        if code.is_empty() || code.len() > 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            bail!("abuse.country_hourly_sms_budgets: {code:?} is not a calling code (digits, e.g. \"44\")");
        }
    }
    Ok(AbuseSettings {
        sends_per_phone: rule(limits.sends_per_phone, limits.sends_per_phone_window_seconds),
        sends_per_phone_daily: rule(limits.sends_per_phone_per_day, 86_400),
        resend_cooldown,
        sends_per_ip: rule(limits.sends_per_ip, limits.sends_per_ip_window_seconds),
        checks_per_ip: rule(limits.checks_per_ip, limits.checks_per_ip_window_seconds),
        // A /48 limit of 0 means none; it shares the per-IP windows.
        sends_per_ipv6_48: (limits.sends_per_ipv6_48 > 0)
            .then(|| rule(limits.sends_per_ipv6_48, limits.sends_per_ip_window_seconds)),
        checks_per_ipv6_48: (limits.checks_per_ipv6_48 > 0)
            .then(|| rule(limits.checks_per_ipv6_48, limits.checks_per_ip_window_seconds)),
        destinations: PhonePolicy::new(
            &settings.phone.default_region,
            &abuse.allowed_regions,
            abuse.allowed_prefixes.clone(),
        )
        .map_err(|error| anyhow::anyhow!("abuse.allowed_regions: {error}"))?,
        require_mobile_for_sms: abuse.require_mobile_for_sms,
        hourly_budget: (abuse.hourly_sms_budget > 0).then_some(abuse.hourly_sms_budget),
        country_hourly_budget: (abuse.country_hourly_sms_budget > 0).then_some(abuse.country_hourly_sms_budget),
        country_budgets: abuse.country_hourly_sms_budgets.clone().into_iter().collect(),
        returning_reserve_percent: abuse.returning_reserve_percent,
        fail_open: limits.fail_open,
    })
}
