//! Wiring: turns a checked [`Config`] into a running service by opening
//! the stores, building the domain's use cases on the chosen adapters and
//! handing those to the HTTP routers.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::Router;
use phonegate_adapters::{
    clock::SystemClock,
    mail::ConsoleMailer,
    password::Argon2Passwords,
    password_screen::ZxcvbnScreen,
    random::OsRandom,
    rate_limit::{InMemoryRateLimiter, RedisRateLimiter},
    sms::{ConsoleEcho, ConsoleProvider},
    sql::{Db, DbOptions, Sealer, SqlStore, migrate},
};
use phonegate_api::{
    AllowedHosts, HttpSettings, Services,
    console::DevOutbox,
    metrics::{DeliveryProviders, Registry},
};
use phonegate_domain::{
    abuse::{AbuseCounters, SendGuard, phone_lockout::PhoneLockout, pumping::PumpingGuard, sign_in::SignInGuard},
    delivery::breaker::BreakerSettings,
    otp::{OtpEngine, SecretHasher, TestNumbers},
    outbox::{DispatchSettings, Dispatcher},
    phone_login::{PhoneLogin, PhoneLoginSettings},
    phone_verify::{PhoneVerify, PhoneVerifySettings},
    pin_auth::{PinAuth, PinAuthSettings},
    ports::{Clock, Metrics, RandomSource, TokenIssuer},
    rate_limit::RateLimiter,
    token_auth::{TokenAuth, TokenAuthPorts, TokenAuthSettings},
};
use secrecy::ExposeSecret as _;

use crate::{
    config::Config,
    jwt_keys,
    providers::{self, ConsoleOutbox, Delivery, MessengerParts},
    receipts, secrets,
    settings::Settings,
};

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
    /// ([`crate::background::spawn`]), tests drive it directly.
    pub dispatcher: Dispatcher,
    /// Refusals by the rate limits and the SMS-pumping guard.
    pub abuse_counters: Arc<AbuseCounters>,
    /// Deliveries, verifications, provider calls and HTTP requests, as
    /// `/metrics` reports them.
    pub metrics: Arc<Registry>,
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

/// Checks `settings` ([`Config::new`]) and builds the whole service.
pub async fn build(settings: &Settings, overrides: Overrides) -> anyhow::Result<App> {
    Box::pin(build_from(Config::new(settings)?, overrides)).await
}

/// Builds the whole service from checked settings.
pub async fn build_from(config: Config, overrides: Overrides) -> anyhow::Result<App> {
    let Config {
        settings,
        test_numbers,
        sms,
        templates,
        mail,
        codes,
        phones,
        mobile_rule,
        abuse,
        pumping,
        sign_in,
        lockout,
        client_ip,
        argon2,
        ..
    } = config;
    let settings = &settings;
    let clock = overrides.clock.clone();
    let db = open_database(settings, clock.as_ref()).await?;
    let store = SqlStore::new(db).with_profile_cache(Duration::from_millis(settings.database.profile_cache_ms));
    let random: Arc<dyn RandomSource> = Arc::new(OsRandom);
    let test_numbers = Arc::new(test_numbers);

    let registry = Arc::new(Registry::new(DeliveryProviders {
        sms: settings
            .sms_default_route()
            .first()
            .map_or("none", |provider| provider.as_str()),
        mail: settings.mail.provider.as_str(),
    }));
    let metrics: Arc<dyn Metrics> = registry.clone();
    let Delivery {
        messenger,
        hosted,
        verify_checks,
        console,
    } = providers::messenger(
        sms,
        MessengerParts {
            app_name: settings.otp.app_name.clone(),
            verify_locale: settings.twilio.verify_locale.clone(),
            templates,
            breaker: BreakerSettings {
                failures: settings.sms.breaker_failures,
                cool_off: Duration::from_secs(settings.sms.breaker_cool_off_seconds.max(1)),
            },
            echo: overrides.console_echo,
            metrics: &metrics,
        },
    );
    let (mailer, console_mail) =
        providers::mailer(mail, settings.mail.provider.as_str(), overrides.console_echo, &metrics);
    let passwords = Arc::new(
        Argon2Passwords::new(argon2, random.clone())
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
    let guard =
        SendGuard::new(limiter.clone(), abuse, limiter_keys.clone()).with_verified_phones(Arc::new(store.clone()));
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
    let lockout = PhoneLockout::new(lockout_limiter, lockout, limiter_keys.clone());
    let abuse_counters = guard.counters().clone();
    let sign_in_guard = SignInGuard::new(limiter, sign_in, limiter_keys).with_counters(abuse_counters.clone());
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
    // Counted from the challenges, so every instance on the database holds
    // the same prefixes.
    let pumping = PumpingGuard::new(store_arc.clone(), pumping)
        .with_verified_phones(store_arc.clone())
        .with_metrics(metrics.clone());
    let mut otp = OtpEngine::new(store_arc.clone(), clock.clone(), random.clone(), hasher)
        .with_test_numbers(test_numbers.clone())
        .with_guard(guard)
        .with_pumping(pumping)
        .with_lockout(lockout)
        .with_metrics(metrics.clone());
    if let Some(hosted) = hosted {
        otp = otp.with_hosted(hosted);
    } else if let Some(verify) = verify_checks {
        otp = otp.with_hosted_checks(verify);
    }

    let pin_auth = Arc::new(PinAuth::new(
        store_arc.clone(),
        store_arc.clone(),
        messenger.clone(),
        tokens.clone(),
        otp.clone(),
        PinAuthSettings {
            mobile_rule,
            policy: codes.pin_auth,
        },
    ));
    let phone_verify = Arc::new(PhoneVerify::new(
        store_arc.clone(),
        messenger.clone(),
        tokens.clone(),
        otp.clone(),
        PhoneVerifySettings {
            phones: phones.phone_verify,
            policy: codes.phone_verify,
        },
    ));
    let phone_login = Arc::new(
        PhoneLogin::new(
            store_arc.clone(),
            store_arc.clone(),
            messenger.clone(),
            otp.clone(),
            PhoneLoginSettings {
                phones: phones.phone_login,
                policy: codes.phone_login,
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
                phones: phones.tokens,
                phone_policy: codes.phone_confirm,
                session_ttl: Duration::from_secs(settings.auth.session_ttl_seconds),
                reset_ttl: Duration::from_secs(settings.mail.reset_ttl_seconds),
                reset_url_template: settings.mail.reset_url_template.clone(),
                app_name: settings.otp.app_name.clone(),
            },
        )
        .with_sign_in_guard(sign_in_guard),
    );

    let receipt_readers = receipts::readers(settings, &clock)?;
    let receipts = receipts::endpoint(
        receipts::public_url(settings)?,
        receipts::ReceiptParts {
            store: store_arc.clone(),
            messenger: messenger.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
            readers: receipt_readers,
        },
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
        receipts,
    };
    let http = HttpSettings {
        allowed_hosts: AllowedHosts::new(settings.security.allowed_hosts.clone()),
        reset_response_floor: Duration::from_millis(settings.mail.reset_min_response_ms),
        client_ip,
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
