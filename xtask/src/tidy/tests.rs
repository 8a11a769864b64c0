//! The checks of `tidy` on small scratch repositories written by each test.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use super::*;

/// A scratch repository with the given files, removed on drop.
struct Fixture(PathBuf);

impl Fixture {
    fn new(name: &str, files: &[(&str, &str)]) -> Self {
        let root = std::env::temp_dir().join(format!("xtask-tidy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (path, text) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Self(root)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn lines(count: usize) -> String {
    "// a line\n".repeat(count)
}

#[test]
fn files_over_the_budget_fail_unless_allowed_and_the_allow_list_only_shrinks() {
    let fixture = Fixture::new(
        "size",
        &[
            ("crates/a/src/lib.rs", &lines(10)),
            ("crates/a/src/big.rs", &lines(11)),
            ("crates/a/src/kept.rs", &lines(12)),
            ("crates/a/target/debug/build/generated.rs", &lines(50)),
            ("xtask/src/main.rs", &lines(11)),
        ],
    );
    let findings = size_budget(
        &fixture.0,
        10,
        &[
            ("crates/a/src/kept.rs", "one table"),
            ("crates/a/src/lib.rs", "was long"),
        ],
    );
    let places: Vec<&str> = findings.iter().map(|finding| finding.place.as_str()).collect();
    assert_eq!(
        places,
        ["crates/a/src/big.rs", "xtask/src/main.rs", "crates/a/src/lib.rs"]
    );
    assert!(findings[0].problem.contains("11 lines"), "{}", findings[0]);
    assert!(findings[2].problem.contains("remove it"), "{}", findings[2]);
}

#[test]
fn client_strings_in_domain_code_are_found_but_comments_may_quote_them() {
    let fixture = Fixture::new(
        "strings",
        &[
            (
                "crates/domain/src/pin_auth.rs",
                "/// Answered as \"Invalid pin\" by the surface.\n\
                 pub enum VerifyError {\n\
                 \x20   #[error(\"Invalid pin\")]\n\
                 \x20   WrongCode,\n\
                 }\n",
            ),
            (
                "crates/domain/src/phone.rs",
                "const E: &str = \"Mobile can't be blank\"; // MISSING_PARAMETER\n",
            ),
            ("crates/api/src/pin_auth.rs", "const WIRE: &str = \"Invalid pin\";\n"),
        ],
    );
    let findings = domain_strings(&fixture.0, &["Invalid pin", "can't be blank", "MISSING_PARAMETER"]);
    let found: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert_eq!(findings.len(), 3, "{found:#?}");
    assert_eq!(findings[0].place, "crates/domain/src/phone.rs:1");
    assert!(findings[0].problem.contains("can't be blank"));
    // A trailing comment on a code line is not told apart from code.
    assert!(findings[1].problem.contains("MISSING_PARAMETER"));
    assert_eq!(findings[2].place, "crates/domain/src/pin_auth.rs:3");
}

#[test]
fn the_seed_list_finds_nothing_in_clean_domain_code() {
    let code = "pub enum VerifyError { WrongCode, Expired, AttemptsSpent }\n";
    assert!(client_strings_in("x.rs", code, CLIENT_STRINGS).is_empty());
    let wire = "#[error(\"Security code is not valid\")]\n";
    assert_eq!(client_strings_in("x.rs", wire, CLIENT_STRINGS).len(), 1);
}

#[test]
fn members_are_read_from_the_manifest() {
    let manifest = "[workspace]\nresolver = \"3\"\nmembers = [\"crates/domain\", \"xtask\"]\ndefault-members = [\"crates/domain\"]\n";
    assert_eq!(workspace_members(manifest), ["crates/domain", "xtask"]);
}

fn architecture_fixture(name: &str) -> Fixture {
    Fixture::new(
        name,
        &[
            ("crates/domain/src/lib.rs", "pub mod otp;\npub mod abuse;\n"),
            ("crates/domain/src/otp.rs", "pub struct OtpEngine;\npub fn issue() {}\n"),
            ("crates/domain/src/abuse/mod.rs", "pub mod sign_in;\n"),
            ("crates/domain/src/abuse/sign_in.rs", "pub struct SignInGuard;\n"),
            ("crates/bench/src/main.rs", "mod tap;\n"),
            ("crates/bench/src/tap.rs", ""),
            ("docs/api.md", ""),
        ],
    )
}

const MEMBERS: [&str; 2] = ["crates/domain", "crates/bench"];

#[test]
fn a_true_architecture_document_passes() {
    let fixture = architecture_fixture("arch-ok");
    let doc = "# Architecture\n\nSee `docs/api.md` and `crates/domain/src/otp.rs`; \
               `crates/api/src/<surface>.rs` is a pattern; `serve` is a command.\n\n\
               ## Code map\n\n### `crates/domain`\n\n`otp::OtpEngine`, `otp::issue()`, \
               `abuse::sign_in::SignInGuard`, `lib.rs`, `PinAuth::verify`.\n\n\
               ### `crates/bench`\n\nThe tap (`tap.rs`), `main.rs`.\n\n## Invariants\n\n`otp::OtpEngine::issue` everywhere.\n";
    let members: Vec<String> = MEMBERS.map(str::to_owned).to_vec();
    let findings = architecture(&fixture.0, doc, &members);
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn stale_names_and_missing_sections_are_found() {
    let fixture = architecture_fixture("arch-stale");
    let doc = "# Architecture\n\n`crates/domain/src/ports.rs` holds the ports, `ports::Clock` too.\n\n## Code map\n\n\
               ### `crates/domain`\n\n`otp::codes`, `ports::Clock`, `abuse::phone_lockout`, `flows.rs`.\n\n\
               ### `crates/gone`\n\nNothing.\n";
    let members: Vec<String> = MEMBERS.map(str::to_owned).to_vec();
    let findings = architecture(&fixture.0, doc, &members);
    let found: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        [
            "docs/ARCHITECTURE.md:3: `crates/domain/src/ports.rs`: no such file or directory",
            "docs/ARCHITECTURE.md:3: `ports::Clock`: no such module in any crate",
            "docs/ARCHITECTURE.md:9: `otp::codes`: no such module in crates/domain/src (nor in another crate)",
            "docs/ARCHITECTURE.md:9: `ports::Clock`: no such module in crates/domain/src (nor in another crate)",
            "docs/ARCHITECTURE.md:9: `abuse::phone_lockout`: no such module in crates/domain/src (nor in another crate)",
            "docs/ARCHITECTURE.md:9: `flows.rs`: no such file in crates/domain/src",
            "docs/ARCHITECTURE.md:11: a section for `crates/gone`, which is not a workspace member",
            "docs/ARCHITECTURE.md: no section for the workspace member `crates/bench` (### `crates/bench`)",
        ]
    );
}

#[test]
fn ports_may_import_values_but_not_use_cases() {
    let text = "//! `crate::pin_auth` in a comment is fine.\n\
                use crate::{otp::secret::SecretHash, time::Timestamp, user::{User, UserId}};\n\
                use crate::{otp::engine::OtpEngine, token_auth::Account};\n\
                use super::StoreError;\n\
                fn f(_: crate::abuse::Client, _: &crate::phone::PhoneNumber) {}\n";
    let found: Vec<String> = port_imports_in("ports/x.rs", text, PORT_IMPORTS)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        found,
        [
            "ports/x.rs: a port imports `crate::otp::engine::OtpEngine`, which is not a value module",
            "ports/x.rs: a port imports `crate::token_auth::Account`, which is not a value module",
            "ports/x.rs: a port imports `crate::abuse::Client`, which is not a value module",
        ]
    );
}
