//! Developer workflows: `cargo xtask <task>`.
//!
//! - `ci`: everything CI checks, in the order that fails fastest: formatting,
//!   the dependency-direction rules, `tidy`, clippy with warnings denied,
//!   then the whole test suite (including the Postgres runs).
//!
//! - `tidy`: the size budget of source files, `docs/ARCHITECTURE.md` against
//!   the code, the seeds' client strings in the domain, and `cargo doc`
//!   without warnings (see `tidy.rs`).
//!
//! - `bench`: builds the release binary and the harness, then runs the
//!   benchmark (`crates/bench`); `bench --smoke` runs every phase for a few
//!   seconds on the debug build, which `ci` does so the harness cannot rot.
//!
//! It shells out to cargo only, so it needs nothing beyond the toolchain.

// A developer tool: printing to stdout is what it is for.
#![allow(clippy::print_stdout)]

mod tidy;

use std::{
    env,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

/// Crates the domain must never depend on (it does no I/O).
const DOMAIN_FORBIDDEN: &[&str] = &[
    "sqlx",
    "sea-query",
    "axum",
    "hyper",
    "reqwest",
    "lettre",
    "redis",
    "tokio",
];

/// Crates the api layer must never depend on (it knows HTTP, not storage or providers).
const API_FORBIDDEN: &[&str] = &["sqlx", "sea-query", "reqwest", "lettre", "redis", "phonegate-adapters"];

fn main() -> ExitCode {
    let task = env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "ci" => ci(),
        "deps" => check_dependency_direction(),
        "tidy" => tidy(),
        "bench" => bench(&env::args().skip(2).collect::<Vec<_>>()),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\ntasks:\n  ci     fmt check, dependency rules, tidy, clippy -D warnings, all tests, bench smoke\n  deps   only the dependency-direction rules\n  tidy   file sizes, docs/ARCHITECTURE.md, client strings in the domain, cargo doc\n  bench  the benchmark (release build); --smoke for a few seconds' check, --sqlite, --no-scale"
            );
            Err("unknown task".into())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask {task}: {error}");
            ExitCode::FAILURE
        }
    }
}

fn cargo(args: &[&str]) -> Result<(), String> {
    eprintln!("$ cargo {}", args.join(" "));
    let status = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .status()
        .map_err(|error| format!("running cargo: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

fn ci() -> Result<(), String> {
    cargo(&["fmt", "--all", "--", "--check"])?;
    check_dependency_direction()?;
    tidy()?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ])?;
    // One build of every target with the features the tests unify (the
    // dev-dependencies' included), which the tests and then the smoke
    // benchmark reuse: building the two binaries on their own, as `bench`
    // does, resolves other features and rebuilt four crates here.
    cargo(&["build", "--workspace", "--all-targets", "--locked"])?;
    test_workspace()?;
    run_bench(&["--smoke".to_owned()])
}

/// Builds the server and the harness (release, or debug for `--smoke`) and
/// runs the harness against that build, passing `args` through.
fn bench(args: &[String]) -> Result<(), String> {
    let smoke = args.iter().any(|arg| arg == "--smoke");
    let mut build = vec!["build", "--locked", "-p", "phonegate", "-p", "phonegate-bench"];
    if !smoke {
        build.push("--release");
    }
    cargo(&build)?;
    run_bench(args)
}

/// Runs the harness already built in the target directory (release, or
/// debug for `--smoke`) against the server built beside it.
fn run_bench(args: &[String]) -> Result<(), String> {
    let smoke = args.iter().any(|arg| arg == "--smoke");
    let target = env::var("CARGO_TARGET_DIR").map_or_else(
        |_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        std::path::PathBuf::from,
    );
    let profile = target.join(if smoke { "debug" } else { "release" });
    let harness = profile.join("phonegate-bench");
    eprintln!("$ {} {}", harness.display(), args.join(" "));
    let status = Command::new(&harness)
        .arg("--server")
        .arg(profile.join("phonegate"))
        .arg("--out")
        .arg(target.join("bench"))
        .args(args)
        .status()
        .map_err(|error| format!("running {}: {error}", harness.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the benchmark failed ({status})"))
    }
}

/// Runs the whole test suite, streaming its output, and ends with one
/// summary line over every test binary (cargo's own last line is that of
/// whichever binary ran last, often a doc-test run with no tests).
fn test_workspace() -> Result<(), String> {
    use std::io::{BufRead as _, BufReader};

    let args = ["test", "--workspace", "--locked"];
    eprintln!("$ cargo {}", args.join(" "));
    let mut child = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|error| format!("running cargo: {error}"))?;
    let (mut passed, mut failed) = (0u64, 0u64);
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                passed += count_before(rest, " passed");
                failed += count_before(rest, " failed");
            }
        }
    }
    let status = child.wait().map_err(|error| format!("waiting for cargo: {error}"))?;
    println!("{passed} passed, {failed} failed");
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

/// In `ok. 44 passed; 0 failed; …`, the number before `label`.
fn count_before(summary: &str, label: &str) -> u64 {
    summary
        .split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(label)
        })
        .and_then(|number| number.trim().parse().ok())
        .unwrap_or(0)
}

/// The dependencies of `package` of the given kinds (`normal` or
/// `normal,dev`), transitively.
fn dependencies_of(package: &str, kinds: &str) -> Result<Vec<String>, String> {
    let output = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "tree", "--locked", "-p", package, "-e", kinds, "--prefix", "none", "--format", "{p}",
        ])
        .output()
        .map_err(|error| format!("running cargo tree: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo tree -p {package} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// Cargo enforces the direction of dependencies; this checks the rules that
/// cargo cannot express: which third-party crates each layer may reach.
fn check_dependency_direction() -> Result<(), String> {
    // The domain is held to the rule even in its tests; the api only in what
    // it ships (its tests may use anything).
    for (package, kinds, forbidden) in [
        ("phonegate-domain", "normal,dev", DOMAIN_FORBIDDEN),
        ("phonegate-api", "normal", API_FORBIDDEN),
    ] {
        let found: Vec<String> = dependencies_of(package, kinds)?
            .into_iter()
            .filter(|name| forbidden.contains(&name.as_str()))
            .collect();
        if !found.is_empty() {
            return Err(format!(
                "{package} must not depend on {found:?} (see docs/ARCHITECTURE.md)"
            ));
        }
        eprintln!("dependency rules: {package} ok");
    }
    Ok(())
}

/// The repository's root (this crate is `xtask/` in it).
fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The checks of `tidy.rs`, then `cargo doc` with warnings denied. Every
/// check runs and reports before the task fails, so one run lists
/// everything to fix.
fn tidy() -> Result<(), String> {
    let root = repository_root();
    let read =
        |path: &str| std::fs::read_to_string(root.join(path)).map_err(|error| format!("reading {path}: {error}"));
    let members = tidy::workspace_members(&read("Cargo.toml")?);
    let mut failed = vec![];
    let mut report = |check: &str, findings: Vec<tidy::Finding>| {
        if findings.is_empty() {
            eprintln!("tidy: {check} ok");
            return;
        }
        eprintln!("tidy: {check} FAILED, {} finding(s):", findings.len());
        for finding in &findings {
            eprintln!("  {finding}");
        }
        failed.push(check.to_owned());
    };
    report(
        "size budget",
        tidy::size_budget(&root, tidy::LINE_BUDGET, tidy::OVER_BUDGET),
    );
    report(
        "docs/ARCHITECTURE.md",
        tidy::architecture(&root, &read("docs/ARCHITECTURE.md")?, &members),
    );
    report(
        "client strings in the domain",
        tidy::domain_strings(&root, tidy::CLIENT_STRINGS),
    );
    report(
        "ports import only value modules",
        tidy::port_imports(&root, tidy::PORT_IMPORTS),
    );
    let doc = ["doc", "--no-deps", "--workspace", "--locked"];
    eprintln!("$ RUSTDOCFLAGS=\"-D warnings\" cargo {}", doc.join(" "));
    let status = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(doc)
        .env("RUSTDOCFLAGS", "-D warnings")
        .status()
        .map_err(|error| format!("running cargo: {error}"))?;
    if !status.success() {
        failed.push("cargo doc".to_owned());
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("tidy failed: {}", failed.join(", ")))
    }
}
