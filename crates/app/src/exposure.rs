//! The settings that decide what the service exposes to the network and
//! how: listeners and their limits, the developer console's reach, which
//! proxies may name the client, and links and credentials that leave the
//! machine. `phonegate serve` checks them before it binds anything, and
//! `phonegate config check` runs the same checks ([`check`]).

use std::{net::SocketAddr, time::Duration};

use anyhow::bail;
use phonegate_api::{TrustedProxies, server::ServerLimits};
use secrecy::ExposeSecret as _;

use crate::settings::{MailProvider, Settings, SmsProvider};

/// Validates the settings of this module; returns the warnings
/// (settings that work but deserve a second look). Errors name the key.
pub fn check(settings: &Settings) -> anyhow::Result<Vec<String>> {
    let mut warnings = vec![];
    let server = &settings.server;
    if settings.uses_provider(SmsProvider::Console)
        && settings.security.allowed_hosts.is_empty()
        && !is_loopback_bind(&server.bind)
    {
        bail!(
            "server.bind = {:?} is not a loopback address, and with sms.provider = \"console\" the developer \
             console shows every code to whoever reaches it: bind to 127.0.0.1, or set security.allowed_hosts \
             to the hosts the console may answer on",
            server.bind
        );
    }
    if let Some(admin) = &server.admin_bind {
        if admin.trim() == server.bind.trim() || same_socket_address(admin, &server.bind) {
            bail!("server.admin_bind must differ from server.bind (it is a second listener)");
        }
        if !is_loopback_bind(admin) {
            warnings.push(format!(
                "server.admin_bind = {admin:?} is not a loopback address: /metrics is unauthenticated, make sure \
                 only your monitoring can reach it"
            ));
        }
    }
    for (key, value) in [
        ("server.header_read_timeout_seconds", server.header_read_timeout_seconds),
        ("server.request_timeout_seconds", server.request_timeout_seconds),
        ("server.max_connections", u64::from(server.max_connections)),
    ] {
        if value == 0 {
            bail!("{key} must be at least 1");
        }
    }
    trusted_proxies(settings)?;
    if settings.security.client_ip_header.is_some() && settings.security.trusted_proxies.is_empty() {
        warnings.push(
            "security.client_ip_header is set without security.trusted_proxies: the header is believed from any \
             peer, so clients must not be able to reach phonegate except through your proxy"
                .to_owned(),
        );
    }
    if has_real_provider(settings) {
        let template = &settings.mail.reset_url_template;
        if !template
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
        {
            bail!(
                "mail.reset_url_template must be an https:// URL with a real SMS or mail provider: the reset \
                 token in it opens the account"
            );
        }
    }
    if settings.mail.provider == MailProvider::Smtp
        && let Some(url) = &settings.mail.smtp_url
        && sends_credentials_in_clear(url.expose_secret())
    {
        bail!(
            "mail.smtp_url has credentials but no TLS: use smtps://…:465 or add ?tls=required (the value is \
             not shown: it holds a password)"
        );
    }
    Ok(warnings)
}

/// Whether a provider that reaches real people is configured: any SMS or
/// voice provider but the console and `null`, or SMTP for mail. (`null`
/// drops everything and needs the console mailer, so it is not one.)
fn has_real_provider(settings: &Settings) -> bool {
    settings
        .providers_in_use()
        .iter()
        .any(|provider| !matches!(provider, SmsProvider::Console | SmsProvider::Null))
        || settings.mail.provider == MailProvider::Smtp
}

/// Whether an SMTP URL carries a user or password over a connection that
/// may not be encrypted: anything but `smtps://` or `smtp://…?tls=required`
/// (`tls=opportunistic` falls back to plain text when an attacker strips
/// STARTTLS). An unparseable URL is left to the mailer's own check.
fn sends_credentials_in_clear(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else {
        return false;
    };
    let has_credentials = !url.username().is_empty() || url.password().is_some();
    let encrypted = url.scheme() == "smtps"
        || (url.scheme() == "smtp"
            && url
                .query_pairs()
                .any(|(key, value)| key == "tls" && value == "required"));
    has_credentials && !encrypted
}

/// Whether a listen address (`127.0.0.1:8080`, `[::1]:8080`,
/// `localhost:8080`) accepts connections from this machine only. `0.0.0.0`
/// and `[::]` listen on every interface; any other name may resolve to
/// anything, so it counts as not loopback.
fn is_loopback_bind(bind: &str) -> bool {
    if let Ok(address) = bind.trim().parse::<SocketAddr>() {
        return address.ip().to_canonical().is_loopback();
    }
    bind.trim()
        .rsplit_once(':')
        .is_some_and(|(host, _port)| host.eq_ignore_ascii_case("localhost"))
}

fn same_socket_address(a: &str, b: &str) -> bool {
    match (a.trim().parse::<SocketAddr>(), b.trim().parse::<SocketAddr>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `security.trusted_proxies`, parsed.
pub fn trusted_proxies(settings: &Settings) -> anyhow::Result<TrustedProxies> {
    TrustedProxies::parse(&settings.security.trusted_proxies)
        .map_err(|error| anyhow::anyhow!("security.trusted_proxies: {error}"))
}

/// The limits of each listener, from `[server]`.
pub fn server_limits(settings: &Settings) -> ServerLimits {
    let server = &settings.server;
    ServerLimits {
        header_read_timeout: Duration::from_secs(server.header_read_timeout_seconds.max(1)),
        max_connections: server.max_connections.max(1),
        shutdown_grace: Duration::from_secs(server.shutdown_grace_seconds),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_binds() {
        for bind in [
            "127.0.0.1:8080",
            "127.0.0.2:1",
            "[::1]:8080",
            "localhost:8080",
            "LOCALHOST:1",
        ] {
            assert!(is_loopback_bind(bind), "{bind}");
        }
        for bind in [
            "0.0.0.0:8080",
            "[::]:8080",
            "192.0.2.2:8080",
            "example.com:80",
            "localhost.evil:1",
        ] {
            assert!(!is_loopback_bind(bind), "{bind}");
        }
    }

    #[test]
    fn credentials_need_tls() {
        for url in [
            "smtp://user:pass@mail.example:587",
            "smtp://user@mail.example:25",
            "smtp://user:pass@mail.example:587?tls=opportunistic",
        ] {
            assert!(sends_credentials_in_clear(url), "{url}");
        }
        for url in [
            "smtps://user:pass@mail.example:465",
            "smtp://user:pass@mail.example:587?tls=required",
            "smtp://127.0.0.1:2525",
        ] {
            assert!(!sends_credentials_in_clear(url), "{url}");
        }
    }
}
