//! `cargo xtask tidy`: the checks that keep the workspace easy to enter.
//!
//! - **Size budget**: no Rust source file under `crates/` or `xtask/` is
//!   longer than [`LINE_BUDGET`] lines, unless [`OVER_BUDGET`] names it with
//!   the reason it is kept whole.
//! - **The architecture document is true**: in `docs/ARCHITECTURE.md`, every
//!   repository path in backticks (`crates/domain/src/phone.rs`) exists; in a
//!   crate's section of the code map, every file named by itself (`tap.rs`)
//!   is one of that crate's sources, and every module path (`sql::accounts`,
//!   `abuse::sign_in::SignInGuard`) names modules that exist, its last
//!   lower-case segment being a module or a name its parent module defines;
//!   and every workspace member has a section (`### \`crates/app\``), every
//!   section a member.
//! - **The domain speaks no surface's language**: none of the seeds' client
//!   messages ([`CLIENT_STRINGS`]) appears in code under `crates/domain/src`
//!   (comments may quote them). Each surface maps the domain's errors to its
//!   own wire text in `crates/api`.
//! - **No cycle through the ports**: a file under `crates/domain/src/ports`
//!   imports only value modules ([`PORT_IMPORTS`]), never a use case.
//! - **Docs build cleanly**: `cargo doc --no-deps --workspace` with
//!   warnings denied (run by [`crate::tidy()`]'s caller, since it needs cargo).

use std::{
    fmt,
    path::{Path, PathBuf},
};

/// Lines a source file may have, counting its unit tests.
pub const LINE_BUDGET: usize = 500;

/// Files allowed over [`LINE_BUDGET`], each with its reason.
pub const OVER_BUDGET: &[(&str, &str)] = &[
    // Source kept whole: each is one port's adapter or one use case.
    (
        "crates/domain/src/abuse.rs",
        "the SendGuard: one decision over every limit of a send, kept in one place",
    ),
    (
        "crates/domain/src/otp/engine.rs",
        "the OtpEngine: issue, check and consume, whose race rules read best together",
    ),
    // Tests of one unit or one HTTP contract: long because the contract is.
    ("crates/domain/src/abuse/tests.rs", "the SendGuard's unit tests"),
    ("crates/adapters/src/jwt/tests.rs", "the JWT adapter's unit tests"),
    (
        "crates/adapters/tests/it/rate_limit.rs",
        "both rate limiters against one contract",
    ),
    (
        "crates/adapters/tests/it/sql_store.rs",
        "the SQL store on SQLite and Postgres",
    ),
    (
        "crates/adapters/tests/it/twilio.rs",
        "Twilio's documented requests and answers",
    ),
    (
        "crates/api/tests/it/openapi_spec.rs",
        "the spec against the routes and every seed example",
    ),
    (
        "crates/app/tests/it/abuse.rs",
        "every limit, budget and lockout over HTTP",
    ),
    ("crates/app/tests/it/jwt_keys.rs", "key rotation across algorithms"),
    ("crates/app/tests/it/pin_auth_http.rs", "the pin-auth seed's contract"),
    ("crates/app/tests/it/tokens_http.rs", "the tokens seed's contract"),
    (
        "crates/app/tests/it/twilio_e2e.rs",
        "the service against a local Twilio",
    ),
];

/// Messages the seeds' clients read (or phonegate's choices in the seeds'
/// style), distinctive enough that finding one in the domain means a wire
/// text lives there. Generic words (`Unauthorized`) are left out: the
/// domain rightly names causes with them.
pub const CLIENT_STRINGS: &[&str] = &[
    // pin-auth (seed 001).
    "can't be blank",
    "Mobile must begin with",
    "Mobile is invalid",
    "Mobile must contain",
    "Invalid pin",
    "Pin has expired",
    "Otp auth key",
    "Invalid host",
    "is too long (maximum",
    "is too short (minimum",
    "Platform must be one of",
    "Too many failed",
    // phone-verify (seed 000, Django REST Framework's texts).
    "This field is required",
    "Enter a valid phone number",
    "Security code is not valid",
    "Security code has expired",
    "Security code is valid",
    // tokens (seed 002).
    "Invalid email or password",
    "User signed out",
    "Verification code sent",
    "successfully confirmed",
    "reset you password",
    "Unknown app_id",
    "must be android or ios",
    "Phone is invalid",
    "Phone number is already taken",
    "Verification code is invalid",
    // phone-login (seed 003): the envelope's code names.
    "MISSING_PARAMETER",
    "INVALID_PARAMETER",
    "INVALID_PIN",
    "PIN_EXPIRED",
    "INVALID_PHONE",
    "INVALID_ACCESS_CODE",
    "EXPIRED_ACCESS_CODE",
    "NEW_ACCESS_CODE",
    "VALID_ACCESS_CODE",
    "RETURNING_PHONE",
];

/// One thing a check found, at a place in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub place: String,
    pub problem: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.problem)
    }
}

fn finding(place: impl Into<String>, problem: impl Into<String>) -> Finding {
    Finding {
        place: place.into(),
        problem: problem.into(),
    }
}

/// The repository path of `path` (under `root`), with `/` separators.
fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|part| part.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Every `*.rs` file under `dir`, skipping build output and hidden
/// directories, sorted.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![];
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    pending.push(path);
                }
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Files over the budget that the allow-list does not name, and names in
/// the allow-list that are no longer over the budget (so it only shrinks).
pub fn size_budget(root: &Path, budget: usize, allowed: &[(&str, &str)]) -> Vec<Finding> {
    let mut findings = vec![];
    let mut over = vec![];
    for dir in ["crates", "xtask"] {
        for file in rust_files(&root.join(dir)) {
            let lines = std::fs::read_to_string(&file).map_or(0, |text| text.lines().count());
            if lines > budget {
                let name = relative(root, &file);
                if !allowed.iter().any(|(allowed, _)| *allowed == name) {
                    findings.push(finding(
                        &name,
                        format!(
                            "{lines} lines, over the budget of {budget}: split it by use case, or add it to \
                             OVER_BUDGET in xtask/src/tidy.rs with the reason it is one cohesive thing"
                        ),
                    ));
                }
                over.push(name);
            }
        }
    }
    for (name, _) in allowed {
        if !over.iter().any(|over| over == name) {
            findings.push(finding(
                *name,
                format!("within the budget of {budget} lines (or gone): remove it from OVER_BUDGET"),
            ));
        }
    }
    findings
}

/// Client strings in code (not comments) under `crates/domain/src`.
pub fn domain_strings(root: &Path, strings: &[&str]) -> Vec<Finding> {
    let mut findings = vec![];
    for file in rust_files(&root.join("crates/domain/src")) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        findings.extend(client_strings_in(&relative(root, &file), &text, strings));
    }
    findings
}

/// The client strings on the code lines of `text`. A line that is a
/// comment (`//`, `///`, `//!`) may quote a seed, to say what it is about.
pub fn client_strings_in(name: &str, text: &str, strings: &[&str]) -> Vec<Finding> {
    let mut findings = vec![];
    for (number, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        for string in strings {
            if line.contains(string) {
                findings.push(finding(
                    format!("{name}:{}", number + 1),
                    format!("the client string {string:?}: wire texts belong to the surface in crates/api"),
                ));
            }
        }
    }
    findings
}

/// The workspace's members, as written in the root `Cargo.toml`
/// (`members = ["crates/domain", …]`).
pub fn workspace_members(manifest: &str) -> Vec<String> {
    let Some(start) = manifest.find("members") else {
        return vec![];
    };
    let rest = &manifest[start..];
    let Some(open) = rest.find('[') else { return vec![] };
    let Some(close) = rest[open..].find(']') else {
        return vec![];
    };
    rest[open + 1..open + close]
        .split(',')
        .map(|member| member.trim().trim_matches('"').to_owned())
        .filter(|member| !member.is_empty())
        .collect()
}

/// What `docs/ARCHITECTURE.md` names that does not exist, and the members
/// it has no section for (or sections that name no member).
pub fn architecture(root: &Path, doc: &str, members: &[String]) -> Vec<Finding> {
    let mut findings = vec![];
    let mut sections = vec![];
    let mut section: Option<String> = None;
    for (number, line) in doc.lines().enumerate() {
        let place = format!("docs/ARCHITECTURE.md:{}", number + 1);
        if let Some(heading) = line.strip_prefix("### ") {
            let name = heading.trim().trim_matches('`').to_owned();
            section = members.contains(&name).then(|| name.clone());
            if heading.trim().starts_with('`') {
                if !members.contains(&name) {
                    findings.push(finding(
                        &place,
                        format!("a section for `{name}`, which is not a workspace member"),
                    ));
                }
                sections.push(name);
            }
            continue;
        }
        if line.starts_with("## ") {
            section = None;
            continue;
        }
        for name in backticked(line) {
            if let Some(problem) = check_name(root, section.as_deref(), members, name) {
                findings.push(finding(&place, problem));
            }
        }
    }
    for member in members {
        if !sections.contains(member) {
            findings.push(finding(
                "docs/ARCHITECTURE.md",
                format!("no section for the workspace member `{member}` (### `{member}`)"),
            ));
        }
    }
    findings
}

/// The texts between pairs of backticks on one line.
fn backticked(line: &str) -> impl Iterator<Item = &str> {
    line.split('`').skip(1).step_by(2)
}

/// Whether `name` looks like a placeholder or a pattern, not a real name.
fn is_pattern(name: &str) -> bool {
    name.contains(['<', '>', '{', '}', '*', '…', '|', ' '])
}

/// Why `name`, backticked in the document (in the section of `section`, if
/// any), names nothing that exists; `None` when it does or is not a name
/// this check understands.
fn check_name(root: &Path, section: Option<&str>, members: &[String], name: &str) -> Option<String> {
    let name = name.trim_end_matches("()");
    if is_pattern(name) || name.is_empty() {
        return None;
    }
    let is_path = ["crates/", "xtask/", "docs/"]
        .iter()
        .any(|prefix| name.starts_with(prefix));
    if is_path {
        let path = name.split("::").next().unwrap_or(name);
        return (!root.join(path).exists()).then(|| format!("`{name}`: no such file or directory"));
    }
    if name.contains('/') {
        return None;
    }
    // A file named alone is looked for in the section's crate only.
    if let Some(file) = name.strip_suffix(".rs") {
        let section = section?;
        let found = rust_files(&root.join(section).join("src"))
            .iter()
            .any(|path| path.file_stem().is_some_and(|stem| stem == file));
        return (!found).then(|| format!("`{name}`: no such file in {section}/src"));
    }
    let segments: Vec<&str> = name.split("::").collect();
    if segments.len() < 2 || !segments[0].starts_with(|c: char| c.is_ascii_lowercase()) {
        return None;
    }
    if !segments.iter().all(|segment| is_identifier(segment)) {
        return None;
    }
    // A module path may name a module of another crate than the section's
    // (the api's section speaks of the domain's ports), so any member's
    // modules will do.
    let resolves = |crate_dir: &str| module_path_exists(&root.join(crate_dir).join("src"), &segments);
    if members.iter().any(|member| resolves(member)) {
        return None;
    }
    Some(match section {
        Some(section) => format!("`{name}`: no such module in {section}/src (nor in another crate)"),
        None => format!("`{name}`: no such module in any crate"),
    })
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !text.starts_with(|c: char| c.is_ascii_digit())
}

/// The source file of module `name` in `dir`, if it exists.
fn module_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(format!("{name}.rs")), dir.join(name).join("mod.rs")]
        .into_iter()
        .find(|path| path.is_file())
}

/// Whether `segments` (`["sql", "accounts"]`, `["jwt", "SigningKey"]`)
/// resolve under the crate's `src` directory: the leading lower-case
/// segments are modules, except that the last one may instead be a name
/// its parent module's files define; an upper-case segment (a type) ends
/// the check.
fn module_path_exists(src: &Path, segments: &[&str]) -> bool {
    let mut dir = src.to_path_buf();
    let mut parent: Option<PathBuf> = None;
    for (index, segment) in segments.iter().enumerate() {
        if segment.starts_with(|c: char| c.is_ascii_uppercase()) {
            return index > 0;
        }
        match module_file(&dir, segment) {
            Some(file) => {
                parent = Some(file);
                dir = dir.join(segment);
            }
            None if index + 1 == segments.len() && index > 0 => {
                // The last segment: a function, constant or re-export of
                // the parent module (or of a file of its directory).
                let mut files = vec![];
                files.extend(parent.clone());
                files.extend(rust_files(&dir));
                return files
                    .iter()
                    .any(|file| std::fs::read_to_string(file).is_ok_and(|text| defines_word(&text, segment)));
            }
            None => return false,
        }
    }
    true
}

/// Whether `word` occurs in `text` as a whole identifier.
fn defines_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let part = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        !part(before) && !part(after)
    })
}

mod ports;

#[cfg(test)]
pub use ports::port_imports_in;
pub use ports::{PORT_IMPORTS, port_imports};

#[cfg(test)]
mod tests;
