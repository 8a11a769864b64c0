//! The `phonegate` binary.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use phonegate::{
    Overrides, build, open_database,
    settings::{ConfigFile, Settings},
    telemetry,
};
use phonegate_adapters::clock::SystemClock;
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
    /// Apply database migrations and exit.
    Migrate,
    /// Manage applications (server-to-server credentials, sign-in app_ids).
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
}

#[derive(Debug, Subcommand)]
enum AppsCommand {
    /// Register an application; prints {"app_id", "auth_token"} (the token is shown only once).
    Create {
        #[arg(long)]
        name: String,
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let file = match &cli.config {
        Some(path) => ConfigFile::Explicit(path),
        None => ConfigFile::Default,
    };
    let settings = Settings::load(file).context("loading settings")?;
    telemetry::init(&settings.log);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            let db = open_database(&settings, &SystemClock).await?;
            db.close().await;
            Ok(())
        }
        Command::Apps(AppsCommand::Create { name }) => {
            let app = build(&settings, Overrides::default()).await?;
            let (application, token) = app.token_auth.create_application(&name).await?;
            print_json(&serde_json::json!({"app_id": application.app_id, "auth_token": token.expose()}));
            app.store.db().close().await;
            Ok(())
        }
        Command::Users(UsersCommand::Create {
            email,
            password,
            first_name,
            last_name,
            phone,
        }) => {
            let app = build(&settings, Overrides::default()).await?;
            let id = app
                .token_auth
                .create_user(&email, &password, first_name, last_name, phone.as_deref())
                .await?;
            print_json(&serde_json::json!({"id": id.get()}));
            app.store.db().close().await;
            Ok(())
        }
    }
}

/// The CLI's result, on stdout as one JSON object (logs go to stderr).
#[expect(clippy::print_stdout, reason = "printing the result is the command's output")]
fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let overrides = Overrides::default();
    let clock = overrides.clock.clone();
    let app = build(&settings, overrides).await?;
    let listener = TcpListener::bind(&settings.server.bind)
        .await
        .with_context(|| format!("binding {}", settings.server.bind))?;
    let background = phonegate::background::spawn(&settings, &app.store, &app.dispatcher, clock);
    tracing::info!(address = %listener.local_addr()?, sms = ?settings.sms.provider, "phonegate listening");
    axum::serve(listener, app.router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;
    // Deliveries in flight finish; queued messages wait in the outbox for
    // the next start or another instance.
    background.shutdown(std::time::Duration::from_secs(10)).await;
    app.store.db().close().await;
    tracing::info!("phonegate stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. In-flight requests then finish before
/// `serve` returns; new connections are no longer accepted.
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
