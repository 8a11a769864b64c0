//! The real `phonegate` binary's admin commands: `migrate`, `apps
//! create|list|revoke`, `users create|show|revoke-tokens` and `config
//! check`, each printing one JSON value on stdout, or failing with a
//! non-zero status and a message that names what is wrong.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use crate::common::process;

use std::{path::Path, process::Command};

use process::scratch_dir;
use serde_json::Value;

/// What a command did: its exit status, stdout parsed as JSON (`Null` if it
/// is not), and stderr.
pub(crate) struct Run {
    pub(crate) success: bool,
    pub(crate) stdout: Value,
    raw_stdout: String,
    pub(crate) stderr: String,
}

/// Runs `phonegate args…` in `dir` on the embedded defaults (SQLite file
/// `phonegate.db` in `dir`, console providers).
pub(crate) fn run(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_phonegate"))
        .current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let raw_stdout = String::from_utf8(output.stdout).unwrap();
    Run {
        success: output.status.success(),
        stdout: serde_json::from_str(raw_stdout.trim()).unwrap_or(Value::Null),
        raw_stdout,
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

pub(crate) fn ok(dir: &Path, args: &[&str]) -> Value {
    let run = run(dir, args);
    assert!(
        run.success,
        "phonegate {args:?} failed: {}\nstdout: {}",
        run.stderr, run.raw_stdout
    );
    assert_ne!(run.stdout, Value::Null, "not JSON: {}", run.raw_stdout);
    run.stdout
}

fn fails(dir: &Path, args: &[&str]) -> String {
    let run = run(dir, args);
    assert!(!run.success, "phonegate {args:?} should fail: {}", run.raw_stdout);
    run.stderr
}

#[test]
fn stats_prints_the_last_hour_and_day() {
    let dir = scratch_dir("cli-stats");
    let stats = ok(&dir, &["stats"]);
    assert_eq!(stats["last_hour"], serde_json::json!([]), "{stats}");
    assert_eq!(stats["last_day"], serde_json::json!([]), "{stats}");
}

#[test]
fn migrate_apps_and_users() {
    let dir = scratch_dir("cli");
    let migrated = ok(&dir, &["migrate"]);
    assert_eq!(migrated["database"], "sqlite");
    assert!(migrated["applied"].as_u64().unwrap() >= 1, "{migrated}");
    assert_eq!(ok(&dir, &["migrate"])["applied"], 0, "migrations apply once");

    let created = ok(&dir, &["apps", "create", "--name", "mobile"]);
    let app_id = created["app_id"].as_str().unwrap().to_owned();
    assert!(created["auth_token"].as_str().unwrap().len() >= 20);
    ok(&dir, &["apps", "create", "--name", "backend"]);
    let listed = ok(&dir, &["apps", "list"]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["app_id"], app_id.as_str());
    assert_eq!(listed[0]["name"], "mobile");
    assert!(listed[0]["revoked_at"].is_null());
    assert!(listed[0]["created_at"].as_i64().unwrap() > 1_700_000_000);
    assert!(listed[0].get("auth_token").is_none(), "the token is shown only once");

    let revoked = ok(&dir, &["apps", "revoke", "--app-id", &app_id]);
    assert_eq!(revoked["revoked"], true);
    assert_eq!(revoked["session_tokens_revoked"], 0);
    let listed = ok(&dir, &["apps", "list"]);
    assert!(listed[0]["revoked_at"].as_i64().is_some(), "{listed}");
    assert!(listed[1]["revoked_at"].is_null(), "{listed}");
    assert_eq!(
        ok(&dir, &["apps", "revoke", "--app-id", &app_id])["already_revoked"],
        true
    );
    let error = fails(&dir, &["apps", "revoke", "--app-id", "no-such-app"]);
    assert!(error.contains("no-such-app"), "{error}");

    let user = ok(
        &dir,
        &[
            "users",
            "create",
            "--email",
            "ops@example.com",
            "--password",
            "Ops-Pass-123",
            "--first-name",
            "Op",
            "--phone",
            "(206) 372-1234",
        ],
    );
    let id = user["id"].as_i64().unwrap();
    let shown = ok(&dir, &["users", "show", "--email", "OPS@example.com"]);
    assert_eq!(shown["id"], id);
    assert_eq!(shown["phone"], "+12063721234");
    assert_eq!(shown["first_name"], "Op");
    assert!(shown.get("password_hash").is_none());
    assert_eq!(ok(&dir, &["users", "show", "--phone", "+1 206-372-1234"])["id"], id);
    assert_eq!(
        ok(&dir, &["users", "show", "--id", &id.to_string()])["email"],
        "ops@example.com"
    );
    let error = fails(&dir, &["users", "show", "--email", "nobody@example.com"]);
    assert!(error.contains("no such user"), "{error}");
    // Exactly one way to name the user.
    fails(&dir, &["users", "show"]);
    fails(&dir, &["users", "show", "--id", "1", "--email", "ops@example.com"]);

    // A common password is refused in the words the reset page uses.
    let error = fails(
        &dir,
        &[
            "users",
            "create",
            "--email",
            "eve@example.com",
            "--password",
            "iloveyou",
        ],
    );
    assert!(
        error.contains("Password is too common. Please choose a less common password."),
        "{error}"
    );

    let revoked = ok(&dir, &["users", "revoke-tokens", "--phone", "(206)372-1234"]);
    assert_eq!(revoked["id"], id);
    assert_eq!(revoked["session_tokens_revoked"], 0);
    assert_eq!(revoked["access_codes_revoked"], 0);
    let _ = std::fs::remove_dir_all(dir);
}

pub(crate) fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

#[test]
fn config_check_passes_the_example_and_names_a_bad_key() {
    let dir = scratch_dir("config-check");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../phonegate.example.toml");
    let report = ok(&dir, &["config", "check", "--config", example]);
    assert_eq!(report["ok"], true);
    assert_eq!(report["database"], "sqlite");
    assert_eq!(report["sms"], "console");
    assert_eq!(report["voice"], "console");
    assert_eq!(report["codes"], "phonegate");
    assert_eq!(report["mail"], "console");
    assert_eq!(report["rate_limit"], "memory");
    assert_eq!(report["jwt_algorithm"], "HS256");
    assert_eq!(
        report["jwt_hs256_key"],
        "derived from auth.jwt_secret (development only)"
    );
    assert!(report["file"].as_str().unwrap().ends_with("phonegate.example.toml"));
    // The seeds' 4- and 5-digit codes work, with a warning each.
    let warnings = report["warnings"].to_string();
    for key in [
        "otp.pin_auth.length",
        "otp.phone_login.length",
        "otp.phone_confirm.length",
    ] {
        assert!(warnings.contains(key), "{key} in {warnings}");
    }
    assert!(
        !dir.join("phonegate.db").exists(),
        "nothing was connected to or created"
    );

    // A misspelt key is refused by name.
    let typo = write(&dir, "typo.toml", "[server]\nbnid = \"0.0.0.0:8080\"\n");
    let error = fails(&dir, &["config", "check", "--config", &typo]);
    assert!(error.contains("bnid"), "{error}");
    let typo = write(&dir, "section.toml", "[rate_limits]\nsends_per_phone = 3\n");
    let error = fails(&dir, &["config", "check", "--config", &typo]);
    assert!(error.contains("rate_limits"), "{error}");
    // So are values that load but cannot work.
    let short = write(&dir, "short.toml", "[otp.pin_auth]\nlength = 2\n");
    let error = fails(&dir, &["config", "check", "--config", &short]);
    assert!(error.contains("otp.pin_auth.length"), "{error}");
    let twilio = write(&dir, "twilio.toml", "[sms]\nprovider = \"twilio\"\n");
    let error = fails(&dir, &["config", "check", "--config", &twilio]);
    assert!(
        error.contains("auth.jwt_secret") || error.contains("twilio."),
        "{error}"
    );
    let missing = fails(&dir, &["config", "check", "--config", "/nonexistent/phonegate.toml"]);
    assert!(missing.contains("/nonexistent/phonegate.toml"), "{missing}");

    // A production setup is described without connecting to anything (the
    // hosts below do not exist) and without echoing a secret.
    let production = write(
        &dir,
        "production.toml",
        r#"
[database]
url = "postgres://phonegate:db-password-canary@db.invalid:5432/phonegate"
[sms]
provider = "twilio_verify"
[twilio]
account_sid = "AC00000000000000000000000000000000"
auth_token = "twilio-token-canary"
verify_service_sid = "VA00000000000000000000000000000000"
[mail]
provider = "smtp"
smtp_url = "smtps://user:smtp-password-canary@smtp.invalid:465"
from = "phonegate <no-reply@example.com>"
reset_url_template = "https://example.com/reset-password?token={token}"
[auth]
jwt_secret = "jwt-secret-canary-that-is-long-enough-0123456789"
jwt_hs256_key = "jwt-hs256-key-canary-0123456789abcdef"
[rate_limit]
redis_url = "redis://:redis-password-canary@redis.invalid:6379"
[log]
format = "json"
"#,
    );
    let run = run(&dir, &["config", "check", "--config", &production]);
    assert!(run.success, "{}", run.stderr);
    let report = run.stdout;
    assert_eq!(report["database"], "postgres");
    assert_eq!(report["sms"], "twilio_verify");
    assert_eq!(report["codes"], "twilio_verify");
    assert_eq!(report["mail"], "smtp");
    assert_eq!(report["rate_limit"], "redis");
    assert_eq!(report["log_format"], "json");
    assert_eq!(report["jwt_hs256_key"], "set");
    // Twilio Verify makes every code, 6 digits long by default.
    assert!(
        !report["warnings"].to_string().contains(".length"),
        "{}",
        report["warnings"]
    );
    for canary in [
        "db-password",
        "twilio-token",
        "smtp-password",
        "jwt-secret",
        "jwt-hs256-key",
        "redis-password",
    ] {
        assert!(!run.raw_stdout.contains(canary), "{canary} in {}", run.raw_stdout);
        assert!(!run.stderr.contains(canary), "{canary} in {}", run.stderr);
    }
    // A wrong secret-bearing value is named without being echoed.
    let bad_url = write(
        &dir,
        "bad-url.toml",
        "[database]\nurl = \"mysql://root:mysql-password-canary@db/phonegate\"\n",
    );
    let error = fails(&dir, &["config", "check", "--config", &bad_url]);
    assert!(error.contains("database.url"), "{error}");
    assert!(!error.contains("mysql-password-canary"), "{error}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The master secret and the HS256 key: outside development HS256 needs its
/// own key, at least 32 bytes, never the master secret, and neither may be
/// a long secret made of few characters. Each refusal names the key and
/// echoes no secret.
#[test]
fn config_check_refuses_a_missing_short_shared_or_monotonous_jwt_key() {
    let dir = scratch_dir("config-check-keys");
    let master = "master-canary-0123456789abcdefghijklmnop";
    let production = |auth: &str| {
        format!(
            "[sms]\nprovider = \"twilio\"\n[twilio]\naccount_sid = \"AC00000000000000000000000000000000\"\n\
             auth_token = \"twilio-token\"\nfrom_number = \"+15005550006\"\n[mail]\nreset_url_template = \"https://example.com/reset?token={{token}}\"\n[auth]\n{auth}\n"
        )
    };
    let cases = [
        (
            format!("jwt_secret = \"{master}\""),
            "auth.jwt_hs256_key is required with auth.jwt_algorithm = \"HS256\"",
        ),
        (
            format!("jwt_secret = \"{master}\"\njwt_hs256_key = \"hs256-canary-short\""),
            "auth.jwt_hs256_key: an HS256 secret must be at least 32 bytes",
        ),
        (
            format!("jwt_secret = \"{master}\"\njwt_hs256_key = \"{master}\""),
            "auth.jwt_hs256_key must not be auth.jwt_secret",
        ),
        (
            format!(
                "jwt_secret = \"{master}\"\njwt_hs256_key = \"hs256-canary-hs256-canary-hs256-canary\""
            ),
            "auth.jwt_hs256_key has too little variety",
        ),
        (
            "jwt_secret = \"abcabcabcabcabcabcabcabcabcabcabcabc\"\njwt_hs256_key = \"hs256-canary-0123456789abcdefghij\""
                .to_owned(),
            "auth.jwt_secret has too little variety",
        ),
    ];
    for (index, (auth, expected)) in cases.iter().enumerate() {
        let file = write(&dir, &format!("keys-{index}.toml"), &production(auth));
        let error = fails(&dir, &["config", "check", "--config", &file]);
        assert!(error.contains(expected), "expected {expected:?} in: {error}");
        for canary in ["master-canary", "hs256-canary", "abcabc"] {
            assert!(!error.contains(canary), "{canary} in {error}");
        }
    }
    // The same settings with their own, varied HS256 key pass; a previous
    // key that is the master secret is reported as a warning.
    let good = format!(
        "jwt_secret = \"{master}\"\njwt_hs256_key = \"hs256-canary-0123456789abcdefghij\"\n\
         jwt_previous_keys = [{{ kid = \"k0\", algorithm = \"HS256\", secret = \"{master}\" }}]"
    );
    let file = write(&dir, "keys-good.toml", &production(&good));
    let report = ok(&dir, &["config", "check", "--config", &file]);
    assert_eq!(report["jwt_hs256_key"], "set");
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|warning| warning
            .as_str()
            .unwrap()
            .contains("auth.jwt_previous_keys[0] (kid \"k0\") is auth.jwt_secret")),
        "{warnings:?}"
    );
    // A random hex secret (`openssl rand -hex 32`) may lack some of the 16
    // hex digits: this one has 13, and is accepted.
    let hex = "a8e69b9654e2de41b5a96d95b11a82e62980c1eabe66d6b9be91159dc10dd5cb";
    let file = write(
        &dir,
        "keys-hex.toml",
        &production(&format!(
            "jwt_secret = \"{hex}\"\njwt_hs256_key = \"hs256-canary-0123456789abcdefghij\""
        )),
    );
    ok(&dir, &["config", "check", "--config", &file]);
}

/// What would expose codes, reset links or credentials is refused by
/// `config check` (and, by the same checks, by `serve`), naming the key
/// and never echoing a secret.
#[test]
fn config_check_refuses_settings_that_expose_secrets() {
    let dir = scratch_dir("config-exposure");
    let real = r#"
[sms]
provider = "twilio"
[twilio]
account_sid = "AC00000000000000000000000000000000"
auth_token = "twilio-token-canary"
from_number = "+15005550006"
[auth]
jwt_secret = "jwt-secret-canary-that-is-long-enough-0123456789"
jwt_hs256_key = "hs256-key-canary-0123456789abcdefghijkl"
"#;
    // A reset link over plain http with a real provider.
    let http = write(&dir, "http.toml", real);
    let error = fails(&dir, &["config", "check", "--config", &http]);
    assert!(error.contains("mail.reset_url_template"), "{error}");
    let https = write(
        &dir,
        "https.toml",
        &format!("{real}[mail]\nreset_url_template = \"https://example.com/reset?token={{token}}\"\n"),
    );
    ok(&dir, &["config", "check", "--config", &https]);

    // SMTP credentials without TLS; with TLS they are fine.
    let smtp = |name: &str, url: &str| {
        write(
            &dir,
            name,
            &format!(
                "[mail]\nprovider = \"smtp\"\nsmtp_url = \"{url}\"\nreset_url_template = \"https://example.com/r?t={{token}}\"\n\
                 [auth]\njwt_secret = \"jwt-secret-canary-that-is-long-enough-0123456789\"\n\
                 jwt_hs256_key = \"hs256-key-canary-0123456789abcdefghijkl\"\n"
            ),
        )
    };
    for url in [
        "smtp://user:smtp-password-canary@smtp.invalid:587",
        "smtp://user:smtp-password-canary@smtp.invalid:587?tls=opportunistic",
    ] {
        let run = run(&dir, &["config", "check", "--config", &smtp("plain.toml", url)]);
        assert!(!run.success, "{url} was accepted");
        assert!(run.stderr.contains("mail.smtp_url"), "{}", run.stderr);
        assert!(!run.stderr.contains("smtp-password-canary"), "{}", run.stderr);
    }
    for url in [
        "smtp://user:smtp-password-canary@smtp.invalid:587?tls=required",
        "smtps://user:smtp-password-canary@smtp.invalid:465",
        "smtp://127.0.0.1:2525",
    ] {
        ok(&dir, &["config", "check", "--config", &smtp("tls.toml", url)]);
    }

    // The developer console on every interface, unless its hosts are named.
    let public = write(&dir, "public.toml", "[server]\nbind = \"0.0.0.0:8080\"\n");
    let error = fails(&dir, &["config", "check", "--config", &public]);
    for key in ["server.bind", "sms.provider", "security.allowed_hosts"] {
        assert!(error.contains(key), "{key}: {error}");
    }
    let named = write(
        &dir,
        "named.toml",
        "[server]\nbind = \"0.0.0.0:8080\"\n[security]\nallowed_hosts = [\"dev.example.com\"]\n",
    );
    ok(&dir, &["config", "check", "--config", &named]);

    // The edge's own keys are checked too.
    let proxies = write(
        &dir,
        "proxies.toml",
        "[security]\ntrusted_proxies = [\"10.0.0.0/8\", \"lb.internal\"]\n",
    );
    let error = fails(&dir, &["config", "check", "--config", &proxies]);
    assert!(
        error.contains("security.trusted_proxies") && error.contains("lb.internal"),
        "{error}"
    );
    let same = write(&dir, "same.toml", "[server]\nadmin_bind = \"127.0.0.1:8080\"\n");
    let error = fails(&dir, &["config", "check", "--config", &same]);
    assert!(error.contains("server.admin_bind"), "{error}");
    let zero = write(&dir, "zero.toml", "[server]\nmax_connections = 0\n");
    let error = fails(&dir, &["config", "check", "--config", &zero]);
    assert!(error.contains("server.max_connections"), "{error}");
    let header_only = write(
        &dir,
        "header.toml",
        "[security]\nclient_ip_header = \"X-Forwarded-For\"\n",
    );
    let report = ok(&dir, &["config", "check", "--config", &header_only]);
    assert!(
        report["warnings"].to_string().contains("security.trusted_proxies"),
        "{report}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
