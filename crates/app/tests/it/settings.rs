//! The configuration contract: built-in defaults, then the file, then
//! `PHONEGATE__SECTION__KEY` variables, with unknown keys refused.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::io::Write as _;

use phonegate::settings::{ConfigFile, MailProvider, Settings, SmsProvider};
use secrecy::ExposeSecret as _;

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn temp_file(contents: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "phonegate-settings-{}-{}.toml",
        std::process::id(),
        contents.len()
    ));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(contents.as_bytes())
        .unwrap();
    path
}

#[test]
fn defaults_match_the_brief() {
    let settings = Settings::load_with_env(ConfigFile::Default, env(&[])).unwrap();
    assert_eq!(settings.server.bind, "127.0.0.1:8080");
    assert_eq!(settings.database.url.expose_secret(), "sqlite://phonegate.db?mode=rwc");
    assert_eq!(settings.sms.provider, SmsProvider::Console);
    assert_eq!(settings.mail.provider, MailProvider::Console);
    assert_eq!(settings.twilio.api_base_url, "https://api.twilio.com");
    assert_eq!(settings.twilio.verify_base_url, "https://verify.twilio.com");
    assert!(settings.auth.jwt_secret.is_none());
    assert!(settings.security.allowed_hosts.is_empty());
    assert_eq!(settings.otp.pin_auth.length, 4);
    assert_eq!(settings.otp.pin_auth.max_attempts, 5);
    assert!(settings.is_development());
}

#[test]
fn the_file_overrides_defaults_and_the_environment_overrides_the_file() {
    let path = temp_file(
        "[server]\nbind = \"0.0.0.0:9000\"\n[sms]\nprovider = \"twilio\"\n[security]\nallowed_hosts = [\"from-file.com\"]\n",
    );
    let settings = Settings::load_with_env(
        ConfigFile::Explicit(&path),
        env(&[
            ("PHONEGATE__SERVER__BIND", "127.0.0.1:7000"),
            ("PHONEGATE__SECURITY__ALLOWED_HOSTS", "a.example.com,b.example.com"),
            ("PHONEGATE__AUTH__JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("UNRELATED", "ignored"),
        ]),
    )
    .unwrap();
    assert_eq!(settings.server.bind, "127.0.0.1:7000");
    assert_eq!(settings.sms.provider, SmsProvider::Twilio, "from the file");
    assert_eq!(settings.security.allowed_hosts, vec!["a.example.com", "b.example.com"]);
    assert_eq!(
        settings.auth.jwt_secret.as_ref().map(|s| s.expose_secret().to_owned()),
        Some("0123456789abcdef0123456789abcdef".to_owned())
    );
    assert!(!settings.is_development());
    std::fs::remove_file(path).unwrap();
}

#[test]
fn environment_values_stay_text_and_lists_split_on_commas() {
    let settings = Settings::load_with_env(
        ConfigFile::Default,
        env(&[
            ("PHONEGATE__TWILIO__FROM_NUMBER", "+15005550006"),
            ("PHONEGATE__AUTH__JWT_SECRET", "12345678901234567890123456789012345"),
            ("PHONEGATE__PHONE_VERIFY__ALLOWED_PREFIXES", "+1206"),
            ("PHONEGATE__DATABASE__MAX_CONNECTIONS", "7"),
            ("PHONEGATE__OTP__ALLOW_TEST_NUMBERS_IN_PRODUCTION", "true"),
        ]),
    )
    .unwrap();
    assert_eq!(settings.twilio.from_number.as_deref(), Some("+15005550006"));
    assert_eq!(
        settings
            .auth
            .jwt_secret
            .as_ref()
            .map(|s| s.expose_secret().to_owned())
            .as_deref(),
        Some("12345678901234567890123456789012345")
    );
    assert_eq!(settings.phone_verify.allowed_prefixes, vec!["+1206"]);
    assert_eq!(settings.database.max_connections, 7);
    assert!(settings.otp.allow_test_numbers_in_production);
    let error = Settings::load_with_env(ConfigFile::Default, env(&[("PHONEGATE__SERVER__BNID", "x")]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("bnid"), "{error}");
}

#[test]
fn an_unknown_key_is_refused_by_name() {
    let path = temp_file("[server]\nbnid = \"0.0.0.0:9000\"\n");
    let error = Settings::load_with_env(ConfigFile::Explicit(&path), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("bnid"), "{error}");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_named_config_file_must_exist() {
    let missing = std::path::Path::new("/nonexistent/phonegate.toml");
    assert!(Settings::load_with_env(ConfigFile::Explicit(missing), env(&[])).is_err());
}

#[test]
fn a_bad_provider_name_is_refused() {
    let error = Settings::load_with_env(
        ConfigFile::Default,
        env(&[("PHONEGATE__SMS__PROVIDER", "carrier-pigeon")]),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("carrier-pigeon"), "{error}");
}

#[test]
fn the_example_file_loads_and_matches_the_defaults() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../phonegate.example.toml");
    let settings = Settings::load_with_env(ConfigFile::Explicit(std::path::Path::new(example)), env(&[])).unwrap();
    let defaults = Settings::defaults().unwrap();
    assert_eq!(format!("{settings:?}"), format!("{defaults:?}"));
}

/// The example names every key: the ones with a default are set (it loads
/// on its own, without the built-in defaults under it), and the optional
/// ones are shown commented out.
#[test]
fn the_example_file_names_every_key() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../phonegate.example.toml");
    let alone = config::Config::builder()
        .add_source(config::File::from(std::path::Path::new(example)).format(config::FileFormat::Toml))
        .build()
        .unwrap()
        .try_deserialize::<Settings>();
    assert!(
        alone.is_ok(),
        "a key is missing from the example: {}",
        alone.unwrap_err()
    );
    let text = std::fs::read_to_string(example).unwrap();
    for optional in [
        "account_sid",
        "auth_token",
        "from_number",
        "messaging_service_sid",
        "verify_service_sid",
        "smtp_url",
        "jwt_secret",
        "jwt_hs256_key",
        "jwt_private_key_file",
        "client_ip_header",
        "admin_bind",
        "redis_url",
    ] {
        assert!(
            text.contains(&format!("\n# {optional} = ")),
            "{optional} is not shown in the example"
        );
    }
    // Every key that is set has a comment above it or above its group.
    let mut commented = false;
    for line in text.lines() {
        if line.starts_with('#') {
            commented = true;
        } else if line.trim().is_empty() || line.starts_with('[') {
            commented = line.starts_with('[') && commented;
        } else if line.contains(" = ") {
            assert!(commented, "no comment above {line:?}");
        }
    }
}

/// `config check` warns about every surface whose codes are shorter than 6
/// digits (the seeds' 4 and 5 stay the defaults), names Twilio Verify's
/// length when Twilio makes the codes, and checks `[lockout]`.
#[test]
fn config_check_warns_about_short_codes_and_checks_the_lockout() {
    let mut settings = Settings::defaults().unwrap();
    assert_eq!(
        (
            settings.lockout.failed_checks,
            settings.lockout.window_seconds,
            settings.lockout.lock_seconds
        ),
        (10, 86_400, 86_400)
    );
    let warnings = phonegate::check_settings(&settings).unwrap().warnings;
    let about = |key: &str| warnings.iter().filter(|w| w.starts_with(key)).count();
    assert_eq!(about("otp.pin_auth.length is 4:"), 1, "{warnings:?}");
    assert_eq!(about("otp.phone_login.length is 5:"), 1, "{warnings:?}");
    assert_eq!(about("otp.phone_confirm.length is 4:"), 1, "{warnings:?}");
    assert_eq!(about("otp.phone_verify.length"), 0, "6 digits: {warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("NIST SP 800-63B")), "{warnings:?}");
    assert_eq!(about("lockout."), 0, "{warnings:?}");

    for surface in [
        &mut settings.otp.pin_auth,
        &mut settings.otp.phone_login,
        &mut settings.otp.phone_confirm,
    ] {
        surface.length = 6;
    }
    settings.lockout.failed_checks = 0;
    settings.lockout.window_seconds = 0;
    let warnings = phonegate::check_settings(&settings).unwrap().warnings;
    assert!(!warnings.iter().any(|w| w.contains(".length is")), "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w.starts_with("lockout.failed_checks is 0")),
        "{warnings:?}"
    );

    settings.lockout.failed_checks = 10;
    let error = phonegate::check_settings(&settings).unwrap_err().to_string();
    assert!(error.contains("lockout.window_seconds"), "{error}");
    settings.lockout.window_seconds = 60;
    settings.lockout.lock_seconds = 0;
    let error = phonegate::check_settings(&settings).unwrap_err().to_string();
    assert!(error.contains("lockout.lock_seconds"), "{error}");
}
