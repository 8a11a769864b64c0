//! The ports check of `tidy`: a port imports only value modules.

use std::path::Path;

use super::{Finding, finding, relative, rust_files};

/// The domain modules a port may import: values, never a use case, so the
/// module graph has no cycle through `ports`. `otp` counts only through its
/// value modules (`otp::code`, `otp::secret`), not its engine.
pub const PORT_IMPORTS: &[&str] = &[
    "ports",
    "phone",
    "user",
    "device",
    "account",
    "application",
    "time",
    "token",
    "otp::code",
    "otp::secret",
];

/// Every `crate::…` path in the files under `crates/domain/src/ports` that
/// does not start with one of `allowed`.
pub fn port_imports(root: &Path, allowed: &[&str]) -> Vec<Finding> {
    let mut findings = vec![];
    for file in rust_files(&root.join("crates/domain/src/ports")) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        findings.extend(port_imports_in(&relative(root, &file), &text, allowed));
    }
    findings
}

/// [`port_imports`] for one file's text: each `crate::` path, with use
/// groups (`crate::{a::B, c::{d::E}}`) expanded, is checked against
/// `allowed`.
pub fn port_imports_in(name: &str, text: &str, allowed: &[&str]) -> Vec<Finding> {
    let code: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut findings = vec![];
    let mut rest = code.as_str();
    while let Some(start) = rest.find("crate::") {
        let tail = &rest[start + "crate::".len()..];
        let tree = use_tree(tail);
        for path in expand_use_tree(tree) {
            let ok = allowed
                .iter()
                .any(|prefix| path == *prefix || path.starts_with(&format!("{prefix}::")));
            if !ok {
                findings.push(finding(
                    name,
                    format!("a port imports `crate::{path}`, which is not a value module"),
                ));
            }
        }
        rest = &tail[tree.len()..];
    }
    findings
}

/// The use tree at the start of `text`: a path, possibly ending in a
/// braced group, up to the first character outside it.
fn use_tree(text: &str) -> &str {
    let mut depth = 0usize;
    for (index, character) in text.char_indices() {
        match character {
            '{' => depth += 1,
            '}' if depth == 0 => return &text[..index],
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..=index];
                }
            }
            ',' | ';' | ' ' | '\n' | '(' | ')' | '<' | '>' | '&' if depth == 0 => return &text[..index],
            _ => {}
        }
    }
    text
}

/// The paths a use tree names, without whitespace: `a::{b::C, d}` gives
/// `a::b::C` and `a::d`.
fn expand_use_tree(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return if tree.is_empty() { vec![] } else { vec![tree] };
    };
    let prefix = &tree[..open];
    let inner = tree[open + 1..].strip_suffix('}').unwrap_or(&tree[open + 1..]);
    let mut items = vec![];
    let mut depth = 0usize;
    let mut start = 0;
    for (index, character) in inner.char_indices() {
        match character {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&inner[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|item| !item.is_empty())
        .flat_map(expand_use_tree)
        .map(|path| format!("{prefix}{path}"))
        .collect()
}
