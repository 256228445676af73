//! A component of a spec: one follow-up issue each.
//!
//! Owns: [`Component`], its stable [`slugify`]d identity, the hidden [`component_marker`] that
//! finds its issue again, and [`Component::render_issue_body`].

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::prompt::sanitize::{one_line, sanitize};

/// One component of the design.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    pub title: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub acceptance_criteria: Vec<String>,
    /// Titles of the components this one depends on.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// The acceptance criterion IDs (`AC-1.2`) this component satisfies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub covers: Vec<String>,
    /// Files or modules it touches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub touches: Vec<String>,
    /// Tests it adds, each citing the criteria it checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<String>,
}

/// Longest slug, in bytes (before the hash suffix of a non-ASCII title).
const MAX_SLUG: usize = 60;

/// A stable, marker-safe identifier from a title: lowercase ASCII letters and digits, runs of
/// anything else as one `-`, at most 60 characters, trimmed of `-`. A title with no ASCII letter
/// or digit (`"日本語"`) becomes `c-` and 16 hex digits of its FNV-1a hash; a title with some
/// non-ASCII letters gets 8 hex digits of that hash appended (`"Çafé"` ≠ `"Cafe"`), so slugs stay
/// stable and distinct. Titles that differ only in case or punctuation share a slug.
pub fn slugify(title: &str) -> String {
    let mut slug = String::new();
    let mut dash = false;
    for c in title.trim().chars() {
        if c.is_ascii_alphanumeric() {
            if dash && !slug.is_empty() {
                slug.push('-');
            }
            dash = false;
            slug.push(c.to_ascii_lowercase());
            if slug.len() >= MAX_SLUG {
                break;
            }
        } else {
            dash = true;
        }
    }
    let non_ascii = title.chars().any(|c| c.is_alphanumeric() && !c.is_ascii());
    if slug.is_empty() || non_ascii {
        let hash = fnv1a(title.trim().to_lowercase().as_bytes());
        if slug.is_empty() {
            return format!("c-{hash:016x}");
        }
        return format!("{slug}-{:08x}", hash >> 32);
    }
    slug
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The hidden marker in a component issue's body: `<!-- specbot:component parent=7 slug=x -->`.
pub fn component_marker(parent_issue: u64, slug: &str) -> String {
    format!("<!-- specbot:component parent={parent_issue} slug={slug} -->")
}

static MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<!-- specbot:component parent=(\d{1,12}) slug=([a-z0-9-]{1,80}) -->")
        .expect("static regex")
});

/// The (parent issue, slug) of a component issue, from the marker in its body.
pub fn parse_component_marker(body: &str) -> Option<(u64, String)> {
    let caps = MARKER.captures(body)?;
    Some((caps[1].parse().ok()?, caps[2].to_string()))
}

static MENTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(^|[^\w`@/])@([A-Za-z0-9])").expect("static regex"));

/// Model-written text made safe for an issue body: sanitised (no HTML comments, so no forged
/// markers; no invisible characters) and with `@mentions` defused (`@&#8203;name`), so a
/// component never pings people.
pub fn issue_safe(text: &str) -> String {
    let clean = sanitize(text);
    MENTION.replace_all(&clean, "${1}@&#8203;${2}").into_owned()
}

impl Component {
    /// See [`slugify`].
    pub fn slug(&self) -> String {
        slugify(&self.title)
    }

    /// The body of the component's issue: the hidden marker, a line linking the parent issue
    /// and the spec, the summary, the acceptance criteria as a task list, and the dependencies
    /// (`(title, Some(issue number))` once filed, `None` before).
    pub fn render_issue_body(
        &self,
        parent_issue: u64,
        spec_path: &str,
        deps: &[(String, Option<u64>)],
    ) -> String {
        let mut out = component_marker(parent_issue, &self.slug());
        out.push_str(&format!(
            "\nPart of #{parent_issue}, specified in `{}`.\n",
            one_line(spec_path, 300).replace('`', "'")
        ));
        let summary = issue_safe(self.summary.trim());
        if !summary.trim().is_empty() {
            out.push_str("\n## Summary\n\n");
            out.push_str(summary.trim());
            out.push('\n');
        }
        out.push_str("\n## Acceptance criteria\n\n");
        if self.acceptance_criteria.is_empty() {
            out.push_str("_None listed; see the specification._\n");
        }
        for item in &self.acceptance_criteria {
            out.push_str(&format!("- [ ] {}\n", issue_safe(&one_line(item, 2_000))));
        }
        if !deps.is_empty() {
            out.push_str("\n## Depends on\n\n");
            for (title, number) in deps {
                let title = issue_safe(&one_line(title, 300));
                match number {
                    Some(n) => out.push_str(&format!("- #{n} ({title})\n")),
                    None => out.push_str(&format!("- {title}\n")),
                }
            }
        }
        out.push_str(
            "\n---\nComment `/implement` on this issue to have specbot implement this component.\n",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_issue_is_recognised_by_its_marker() {
        let body = format!("Part of #7\n\n{}\n", component_marker(7, "token-store"));
        assert_eq!(
            parse_component_marker(&body),
            Some((7, "token-store".to_string()))
        );
        assert_eq!(parse_component_marker("no marker"), None);
        assert_eq!(
            parse_component_marker("<!-- specbot:component parent=99999999999999999999 slug=x -->"),
            None
        );
    }

    #[test]
    fn slug_table() {
        let cases = [
            ("Auth Service", "auth-service"),
            ("  auth   service!! ", "auth-service"),
            ("Auth-Service", "auth-service"),
            ("API v2: /users endpoint", "api-v2-users-endpoint"),
        ];
        for (title, want) in cases {
            assert_eq!(slugify(title), want, "{title}");
        }
        let accented = slugify("Ünïcode Çafé");
        assert!(
            accented.starts_with("n-code-af-") && accented.len() == 18,
            "{accented}"
        );
        assert_ne!(slugify("Çafé"), slugify("Cafe"));
        let cjk = slugify("日本語");
        assert!(cjk.starts_with("c-") && cjk.len() == 18, "{cjk}");
        assert_ne!(cjk, slugify("中文"));
        assert!(slugify(&"x".repeat(500)).len() <= MAX_SLUG);
        assert!(slugify("").starts_with("c-"));
    }

    #[test]
    fn component_issue_body_snapshot() {
        let component = Component {
            title: "Rate limiter middleware".into(),
            summary: "A tower layer that applies per-token buckets; cc @alice.".into(),
            acceptance_criteria: vec![
                "Returns 429 with `Retry-After` after 10 req/s".into(),
                "Admins are exempt".into(),
            ],
            depends_on: vec!["Bucket store".into(), "Config".into()],
            ..Component::default()
        };
        let body = component.render_issue_body(
            7,
            "specs/IMPLEMENT-7.md",
            &[("Bucket store".into(), Some(12)), ("Config".into(), None)],
        );
        assert!(
            body.starts_with("<!-- specbot:component parent=7 slug=rate-limiter-middleware -->\n")
        );
        insta::assert_snapshot!("component_issue_body", body);
    }

    #[test]
    fn mentions_and_comments_are_defused() {
        let got =
            issue_safe("ping @alice and mail a@b.com <!-- specbot:component parent=1 slug=x -->");
        assert_eq!(got, "ping @&#8203;alice and mail a@b.com ");
    }
}
