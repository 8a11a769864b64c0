//! The `phonegate` binary.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use phonegate::{
    App, Config, Overrides, build, build_from, check_settings, exposure, migrate_database,
    settings::{ConfigFile, Settings},
    telemetry,
};
use phonegate_adapters::{clock::SystemClock, sql::Backend};
use phonegate_api::server;
use phonegate_domain::{
    account::{Email, NewPassword},
    application::Revocation,
    token_auth::{AdminError, AppId, ApplicationName, NewUser, TokenAuth, UserLookup},
    user::{User, UserId},
};
use serde_json::json;
use tokio::net::TcpListener;

#[derive(Debug, Parser)]
#[command(name = "phonegate", version, about = "Self-hosted phone-number authentication")]
struct Cli {
    /// Settings file (default: phonegate.toml in the working directory, if any).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve every API surface (the default).
    Serve,
    /// Apply database migrations and exit; prints {"database", "applied"}.
    Migrate,
    /// Manage applications (server-to-server credentials, sign-in app_ids).
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Inspect the settings.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Conversion of codes per calling code and provider, last hour and
    /// last day; prints {"last_hour": [...], "last_day": [...]}.
    Stats,
}

#[derive(Debug, Subcommand)]
enum AppsCommand {
    /// Register an application; prints {"app_id", "auth_token"} (the token is shown only once).
    Create {
        #[arg(long)]
        name: String,
    },
    /// List every application, revoked ones too; prints a JSON array.
    List,
    /// Revoke an application: its auth_token, its app_id and the session
    /// tokens issued through it stop working.
    Revoke {
        #[arg(long)]
        app_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Create an email + password user; prints {"id"}.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        first_name: Option<String>,
        #[arg(long)]
        last_name: Option<String>,
        /// Any human format; read in phone.default_region.
        #[arg(long)]
        phone: Option<String>,
    },
    /// Show a user; prints {"id", "email", "phone", "first_name", "last_name"}.
    Show {
        #[command(flatten)]
        user: UserArgs,
    },
    /// Revoke every session token and access code of a user (JWTs expire
    /// by themselves); prints what was revoked.
    RevokeTokens {
        #[command(flatten)]
        user: UserArgs,
    },
}

/// Exactly one way to name a user.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct UserArgs {
    #[arg(long)]
    id: Option<i64>,
    #[arg(long)]
    email: Option<String>,
    /// Any human format; read in phone.default_region.
    #[arg(long)]
    phone: Option<String>,
}

impl UserArgs {
    /// Emails and phone numbers are read as the surfaces read them (a
    /// phone in any human format, in `phone.default_region`).
    fn lookup(&self, token_auth: &TokenAuth) -> anyhow::Result<UserLookup> {
        Ok(match (self.id, &self.email, &self.phone) {
            (Some(id), _, _) => UserLookup::Id(UserId::new(id)),
            (None, Some(email), _) => UserLookup::Email(Email::parse(email).context("--email")?),
            (None, None, Some(phone)) => UserLookup::Phone(token_auth.phones().parse(phone).context("--phone")?),
            // clap's group makes one of them required.
            (None, None, None) => UserLookup::Id(UserId::new(0)),
        })
    }
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate the settings (defaults, the file, PHONEGATE__ variables)
    /// without connecting to anything, and print which providers and
    /// backends they select. Exits non-zero, naming the key, if they are
    /// invalid.
    Check,
}

fn main() -> anyhow::Result<()> {
    // Before the runtime starts any thread: the allocator settings apply to
    // the arenas threads get when they first allocate.
    phonegate_adapters::memory::tune_allocator();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let file = match &cli.config {
        Some(path) => ConfigFile::Explicit(path),
        None => ConfigFile::Default,
    };
    let loaded = Settings::load(file);
    let command = match cli.command {
        // Checking reports invalid settings rather than failing to load them.
        Some(Command::Config(ConfigCommand::Check)) => return config_check(cli.config.as_deref(), loaded),
        command => command.unwrap_or(Command::Serve),
    };
    let settings = loaded.context("loading settings")?;
    telemetry::init(&settings.log);
    match command {
        Command::Serve => Box::pin(serve(settings)).await,
        Command::Migrate => {
            let (db, applied) = migrate_database(&settings, &SystemClock).await?;
            let database = match db.backend() {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgres",
            };
            db.close().await;
            print_json(&json!({"database": database, "applied": applied}));
            Ok(())
        }
        Command::Config(ConfigCommand::Check) => config_check(cli.config.as_deref(), Ok(settings)),
        Command::Stats => {
            let (db, _) = migrate_database(&settings, &SystemClock).await?;
            let store = phonegate_adapters::sql::SqlStore::new(db);
            let now = phonegate_domain::ports::Clock::now(&SystemClock);
            let report = phonegate::stats::conversion_report(&store, now).await;
            store.db().close().await;
            print_json(&report?);
            Ok(())
        }
        Command::Apps(command) => {
            let app = build(&settings, Overrides::default()).await?;
            let result = apps(&app, command).await;
            app.store.db().close().await;
            result
        }
        Command::Users(command) => {
            let app = build(&settings, Overrides::default()).await?;
            let result = users(&app, command).await;
            app.store.db().close().await;
            result
        }
    }
}

/// `phonegate config check`: the report on stdout, or the error (naming the
/// key) on stderr and a failing exit status.
fn config_check(path: Option<&std::path::Path>, loaded: Result<Settings, config::ConfigError>) -> anyhow::Result<()> {
    let file = path.map_or_else(
        || {
            std::path::Path::new("phonegate.toml")
                .exists()
                .then(|| "phonegate.toml".to_owned())
        },
        |path| Some(path.display().to_string()),
    );
    let settings = loaded.context("the settings are invalid")?;
    let report = check_settings(&settings).context("the settings are invalid")?;
    let mut output = serde_json::to_value(&report)?;
    output["ok"] = json!(true);
    output["file"] = json!(file);
    print_json(&output);
    Ok(())
}

async fn apps(app: &App, command: AppsCommand) -> anyhow::Result<()> {
    match command {
        AppsCommand::Create { name } => {
            let name = ApplicationName::parse(&name).context("the name can't be blank")?;
            let (application, token) = app.token_auth.admin().create_application(&name).await?;
            print_json(&json!({"app_id": application.app_id, "auth_token": token.expose()}));
        }
        AppsCommand::List => {
            let listed: Vec<_> = app
                .token_auth
                .admin()
                .list_applications()
                .await?
                .into_iter()
                .map(|listing| {
                    json!({
                        "app_id": listing.application.app_id,
                        "name": listing.application.name,
                        "created_at": listing.created_at.unix_seconds(),
                        "revoked_at": listing.revoked_at.map(|at| at.unix_seconds()),
                    })
                })
                .collect();
            print_json(&json!(listed));
        }
        AppsCommand::Revoke { app_id } => match app
            .token_auth
            .admin()
            .revoke_application(&AppId::parse(&app_id).context("the app_id can't be blank")?)
            .await?
        {
            Revocation::Revoked { session_tokens } => print_json(&json!({
                "app_id": app_id,
                "revoked": true,
                "session_tokens_revoked": session_tokens,
            })),
            Revocation::AlreadyRevoked => print_json(&json!({
                "app_id": app_id,
                "revoked": true,
                "already_revoked": true,
                "session_tokens_revoked": 0,
            })),
            Revocation::NotFound => bail!("no application has app_id {app_id:?}"),
        },
    }
    Ok(())
}

async fn users(app: &App, command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Create {
            email,
            password,
            first_name,
            last_name,
            phone,
        } => {
            let user = NewUser {
                email: Email::parse(&email).context("--email")?,
                password: NewPassword::parse(&password).context("--password")?,
                first_name,
                last_name,
                phone: phone
                    .map(|phone| app.token_auth.phones().parse(&phone))
                    .transpose()
                    .context("--phone")?,
            };
            let id = match app.token_auth.admin().create_user(user).await {
                // The operator gets the words a client of the reset page gets.
                Err(AdminError::CommonPassword) => {
                    bail!("Password is too common. Please choose a less common password.")
                }
                created => created?,
            };
            print_json(&json!({"id": id.get()}));
        }
        UsersCommand::Show { user } => {
            let lookup = user.lookup(&app.token_auth)?;
            let found = app
                .token_auth
                .admin()
                .find_user(&lookup)
                .await?
                .context("no such user")?;
            print_json(&user_json(&found));
        }
        UsersCommand::RevokeTokens { user } => {
            let lookup = user.lookup(&app.token_auth)?;
            let (found, revoked) = app
                .token_auth
                .admin()
                .revoke_user_tokens(&lookup)
                .await?
                .context("no such user")?;
            print_json(&json!({
                "id": found.id.get(),
                "session_tokens_revoked": revoked.session_tokens,
                "access_codes_revoked": revoked.access_codes,
            }));
        }
    }
    Ok(())
}

fn user_json(user: &User) -> serde_json::Value {
    json!({
        "id": user.id.get(),
        "email": user.email,
        "phone": user.phone.as_ref().map(|phone| phone.as_str()),
        "first_name": user.first_name,
        "last_name": user.last_name,
    })
}

/// The CLI's result, on stdout as one JSON value (logs go to stderr).
#[expect(clippy::print_stdout, reason = "printing the result is the command's output")]
fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    // Before anything is opened or bound, the settings are checked as
    // `config check` checks them: a developer console on a public address,
    // an http reset link or SMTP credentials in the clear are refused here.
    let config = Config::for_serving(&settings).context("the settings are invalid or unsafe to serve")?;
    for warning in config.exposure_warnings() {
        tracing::warn!("{warning}");
    }
    let overrides = Overrides::default();
    let clock = overrides.clock.clone();
    let app = Box::pin(build_from(config, overrides)).await?;
    let limits = exposure::server_limits(&settings);
    // The admin listener is bound first, so that once the public one
    // accepts connections both are up.
    let admin = match (&settings.server.admin_bind, app.admin_router.clone()) {
        (Some(bind), Some(router)) => {
            let listener = TcpListener::bind(bind)
                .await
                .with_context(|| format!("binding server.admin_bind {bind}"))?;
            tracing::info!(address = %listener.local_addr()?, "admin listener (/metrics)");
            Some((listener, router))
        }
        _ => None,
    };
    let listener = TcpListener::bind(&settings.server.bind)
        .await
        .with_context(|| format!("binding {}", settings.server.bind))?;
    let background = phonegate::background::spawn(&settings, &app.store, &app.dispatcher, clock);
    tracing::info!(address = %listener.local_addr()?, sms = ?settings.sms_default_route(), "phonegate listening");
    // One signal stops both listeners.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stopped| *stopped).await;
        }
    };
    let public = server::serve(listener, app.router, limits, until_stopped());
    let admin = async {
        match admin {
            Some((listener, router)) => server::serve(listener, router, limits, until_stopped()).await,
            None => Ok(()),
        }
    };
    let (public, admin) = tokio::join!(public, admin);
    public.context("serving HTTP")?;
    admin.context("serving the admin listener")?;
    // Deliveries in flight finish; queued messages wait in the outbox for
    // the next start or another instance.
    background.shutdown(std::time::Duration::from_secs(10)).await;
    app.store.db().close().await;
    tracing::info!("phonegate stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. In-flight requests then finish (within
/// `server.shutdown_grace_seconds`) before `serve` returns; new
/// connections are no longer accepted.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
