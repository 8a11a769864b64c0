//! `phonegate config check` on routes (issue 16): the routes it resolved,
//! printed longest prefix first, and the routes it refuses.

use crate::{
    cli::{ok, run, write},
    common::process::scratch_dir,
};

/// Issue 16: `config check` prints the routes it resolved, longest prefix
/// first, and refuses a route no provider of it can serve as asked.
#[test]
fn config_check_prints_the_resolved_routes() {
    let dir = scratch_dir("config-routes");
    let routed = write(
        &dir,
        "routed.toml",
        r#"
[sms]
providers = ["twilio", "vonage"]
[[sms.routes]]
prefix = "+44"
providers = ["vonage", "twilio"]
sender = "Acme"
[[sms.routes]]
prefix = "+447"
providers = ["vonage"]
[twilio]
account_sid = "AC00000000000000000000000000000000"
auth_token = "twilio-token"
from_number = "+15005550006"
[vonage]
api_key = "abcd1234"
api_secret = "vonage-secret"
from = "+15005550007"
[auth]
jwt_secret = "jwt-secret-that-is-long-enough-0123456789"
jwt_hs256_key = "a-routes-test-hs256-key-0123456789abcdef"
[mail]
reset_url_template = "https://example.com/reset-password?token={token}"
"#,
    );
    let report = ok(&dir, &["config", "check", "--config", &routed]);
    assert_eq!(report["sms"], "twilio, vonage");
    assert_eq!(report["voice"], "twilio", "Vonage has no Voice API application here");
    assert_eq!(
        report["sms_routes"],
        serde_json::json!([
            {"prefix": "+447", "providers": ["vonage"], "sender": null},
            {"prefix": "+44", "providers": ["vonage", "twilio"], "sender": "Acme"},
            {"prefix": "default", "providers": ["twilio", "vonage"], "sender": null},
        ])
    );
    let run_with =
        |name: &str, contents: String| run(&dir, &["config", "check", "--config", &write(&dir, name, &contents)]);
    let text = std::fs::read_to_string(&routed).unwrap();
    // Vonage cannot send through a Twilio Messaging Service.
    let refused = run_with(
        "messaging-service.toml",
        text.replace("sender = \"Acme\"", "sender = \"MG0123456789abcdef0123456789abcdef\""),
    );
    assert!(!refused.success);
    assert!(refused.stderr.contains("vonage cannot send from"), "{}", refused.stderr);
    // The United States refuse alphanumeric sender IDs.
    let refused = run_with("alpha-us.toml", text.replace("prefix = \"+44\"", "prefix = \"+1\""));
    assert!(!refused.success);
    assert!(
        refused.stderr.contains("refuse alphanumeric sender IDs"),
        "{}",
        refused.stderr
    );
    // Twilio Verify makes its own codes: it can only lead the default route.
    let refused = run_with(
        "verify-in-route.toml",
        text.replace(
            "providers = [\"twilio\", \"vonage\"]\n[[",
            "providers = [\"vonage\", \"twilio_verify\"]\n[[",
        ),
    );
    assert!(!refused.success);
    assert!(refused.stderr.contains("twilio_verify"), "{}", refused.stderr);
    // Calls to numbers no voice route matches need a default voice route,
    // or an instance would claim them and fail them as misconfigured.
    let refused = run_with(
        "voice-without-default.toml",
        text.replace("providers = [\"twilio\", \"vonage\"]\n[[", "provider = \"vonage\"\n[[")
            + "[[voice.routes]]\nprefix = \"+1\"\nproviders = [\"twilio\"]\n",
    );
    assert!(!refused.success);
    assert!(
        refused.stderr.contains("need a default voice route"),
        "{}",
        refused.stderr
    );
    let _ = std::fs::remove_dir_all(dir);
}
