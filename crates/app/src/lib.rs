//! The composition root: turns [`Settings`] into a running service by
//! choosing adapters, wiring them into the domain's use cases and handing
//! those to the HTTP routers. Nothing else in the workspace depends on every
//! crate; nothing here contains business rules.

use std::{sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use axum::Router;
use phonegate_adapters::{
    clock::SystemClock,
    jwt::{Hs256Tokens, JwtSettings},
    random::OsRandom,
    sms::{ConsoleEcho, ConsoleSms},
    sql::{Db, DbOptions, SqlStore, migrate},
};
use phonegate_api::{AllowedHosts, HttpSettings, Services};
use phonegate_domain::{
    otp::{CodeLength, OtpEngine, OtpPolicy, SecretHasher},
    phone::MobileRule,
    pin_auth::{PinAuth, PinAuthSettings},
    ports::{Clock, RandomSource, SmsSender},
};
use secrecy::{ExposeSecret as _, SecretString};

pub mod settings;
pub mod telemetry;

use settings::{CodePolicySettings, Settings, SmsProvider};

/// What tests may replace when building the service.
#[derive(Clone)]
pub struct Overrides {
    /// The clock every use case reads (tests use a manual clock).
    pub clock: Arc<dyn Clock>,
    /// Whether the console SMS sender echoes to stdout.
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
    pub store: SqlStore,
    /// The dev outbox, when `sms.provider = console`.
    pub console_sms: Option<ConsoleSms>,
}

/// Opens the database and applies pending migrations.
pub async fn open_database(settings: &Settings, clock: &dyn Clock) -> anyhow::Result<Db> {
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
    Ok(db)
}

fn code_policy(name: &str, policy: CodePolicySettings) -> anyhow::Result<OtpPolicy> {
    let Some(length) = CodeLength::new(policy.length) else {
        bail!(
            "otp.{name}.length must be between 4 and 10, not {}",
            policy.length
        );
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

/// The JWT secret: configured, or in development generated once per
/// database (and loudly warned about).
async fn jwt_secret(
    settings: &Settings,
    store: &SqlStore,
    clock: &dyn Clock,
) -> anyhow::Result<SecretString> {
    if let Some(secret) = &settings.auth.jwt_secret {
        if secret.expose_secret().len() < 32 {
            bail!("auth.jwt_secret must be at least 32 characters long");
        }
        return Ok(secret.clone());
    }
    if !settings.is_development() {
        bail!("auth.jwt_secret is required when a real SMS or mail provider is configured");
    }
    let mut fresh = vec![0u8; 32];
    OsRandom.fill(&mut fresh);
    let fresh = fresh
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into_bytes();
    let secret = store
        .secret_or_insert("dev_jwt_secret", fresh, clock.now())
        .await
        .context("reading the development JWT secret")?;
    tracing::warn!(
        "auth.jwt_secret is not set: using a random secret stored in this development database; \
         set auth.jwt_secret before deploying"
    );
    let secret =
        String::from_utf8(secret).context("the stored development JWT secret is not text")?;
    Ok(SecretString::from(secret))
}

/// Builds the whole service from settings.
pub async fn build(settings: &Settings, overrides: Overrides) -> anyhow::Result<App> {
    let clock = overrides.clock.clone();
    let db = open_database(settings, clock.as_ref()).await?;
    let store = SqlStore::new(db);
    let random: Arc<dyn RandomSource> = Arc::new(OsRandom);

    let (sms, console_sms): (Arc<dyn SmsSender>, _) = match settings.sms.provider {
        SmsProvider::Console => {
            let console = ConsoleSms::new(overrides.console_echo);
            (Arc::new(console.clone()), Some(console))
        }
        SmsProvider::Twilio | SmsProvider::TwilioVerify => {
            bail!(
                "sms.provider = {:?} is not available in this version; use \"console\"",
                settings.sms.provider
            )
        }
    };

    let secret = jwt_secret(settings, &store, clock.as_ref()).await?;
    let tokens = Arc::new(Hs256Tokens::new(
        &JwtSettings {
            secret: secret.clone(),
            issuer: settings.auth.jwt_issuer.clone(),
            ttl: Duration::from_secs(settings.auth.jwt_ttl_seconds),
            key_id: settings.auth.jwt_key_id.clone(),
        },
        random.clone(),
    ));
    // Codes and lookup keys are hashed with a key derived from the JWT
    // secret, so one secret protects both and neither use can stand in for
    // the other.
    let hasher = SecretHasher::derived(
        secret.expose_secret().as_bytes(),
        "phonegate otp hashing v1",
    );
    let store_arc = Arc::new(store.clone());
    let otp = OtpEngine::new(store_arc.clone(), clock.clone(), random.clone(), hasher);

    let pin_auth = Arc::new(PinAuth::new(
        store_arc.clone(),
        store_arc.clone(),
        sms,
        tokens,
        otp,
        PinAuthSettings {
            mobile_rule: MobileRule::new(
                settings.pin_auth.mobile_prefixes.clone(),
                settings.pin_auth.mobile_digits_after_prefix,
            ),
            policy: code_policy("pin_auth", settings.otp.pin_auth)?,
            app_name: settings.otp.app_name.clone(),
        },
    ));

    let router = phonegate_api::router(
        Services {
            pin_auth,
            readiness: store_arc,
        },
        HttpSettings {
            allowed_hosts: AllowedHosts::new(settings.security.allowed_hosts.clone()),
        },
    );
    Ok(App {
        router,
        store,
        console_sms,
    })
}
