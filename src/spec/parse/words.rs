//! Cleaning the words a model writes: titles without numbering or emphasis, list items without
//! bullets, "none" in its spellings, and a revision's note of what changed (kept in the parsed
//! answer).

use crate::prompt::sanitize::{one_line, strip_invisible};
use crate::spec::{Artifacts, Component, SpecAnswer};

pub(super) fn is_none_word(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().trim_end_matches('.'),
        "none" | "n/a" | "-" | "nothing"
    )
}

/// A title: one line, no markdown emphasis or code ticks, no numbering, at most 500 chars.
pub(super) fn clean_title(s: &str) -> String {
    let line = one_line(s, 500);
    let mut t = line
        .trim()
        .trim_matches(|c| c == '*' || c == '`' || c == '_')
        .trim();
    // "1. Title", "1) Title", "Component 2: Title"
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && digits < 4 {
        let rest = &t[digits..];
        if let Some(r) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(')')) {
            t = r.trim();
        }
    }
    let lower = t.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("component")
        && let Some(colon) = rest.find(':')
        && rest[..colon]
            .trim()
            .chars()
            .all(|c| c.is_ascii_alphanumeric())
    {
        t = t["component".len() + colon + 1..].trim();
    }
    t.trim_matches(|c| c == '*' || c == '`' || c == '_')
        .trim()
        .to_string()
}

pub(super) fn strip_bullet(s: &str) -> &str {
    let t = s.trim();
    let t = t
        .strip_prefix("- ")
        .or_else(|| t.strip_prefix("* "))
        .or_else(|| t.strip_prefix("+ "))
        .unwrap_or(t)
        .trim_start();
    let t = ["[ ] ", "[x] ", "[X] "]
        .iter()
        .find_map(|p| t.strip_prefix(p))
        .unwrap_or(t);
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && digits < 4 {
        let rest = &t[digits..];
        if let Some(r) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return r.trim();
        }
    }
    t.trim()
}

/// The answer as parsed, with a revision's note of what changed (`changes`: invisible
/// characters removed, trimmed, `None` if empty); nothing is dropped yet.
pub(super) fn parsed_answer(
    specification: String,
    components: Vec<Component>,
    artifacts: Artifacts,
    changes: Option<&str>,
) -> SpecAnswer {
    SpecAnswer {
        specification,
        components,
        artifacts,
        changes: changes
            .map(|t| strip_invisible(t).trim().to_string())
            .filter(|t| !t.is_empty()),
        ..SpecAnswer::default()
    }
}
