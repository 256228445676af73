//! A component of a spec: one follow-up issue each.
//!
//! Owns: [`Component`], its stable [`slugify`]d identity, the hidden [`component_marker`] that
//! finds its issue again, which components can be built side by side ([`parallel_components`]),
//! and [`Component::render_issue_body`]: the issue a developer picks up, with the criteria it
//! covers quoted and linked to their anchors in the spec file at the spec's commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{Requirement, anchor};
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
    /// Why it needs each of them first, by the title as written in `depends_on` (where the
    /// model said; older answers name titles only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dependency_reasons: BTreeMap<String, String>,
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

/// Where a component issue points beyond the component itself: the feature issue, the spec
/// file at its commit, the criteria it quotes, and its neighbours in the design.
#[derive(Debug, Clone, Copy)]
pub struct IssueLinks<'a> {
    pub parent_issue: u64,
    pub spec_path: &'a str,
    /// The spec file at the commit that holds it ([`spec_permalink`]); `None` where there is no
    /// commit (a local run): criteria are then named without links.
    pub spec_url: Option<&'a str>,
    /// The spec's requirements, whose criteria the issue quotes word for word.
    pub requirements: &'a [Requirement],
    /// Each dependency: its title and, once filed, its issue number.
    pub deps: &'a [(String, Option<u64>)],
    /// The components it can be built alongside ([`parallel_components`]): title and issue
    /// number once filed.
    pub parallel: &'a [(String, Option<u64>)],
}

/// The address of the spec file at a commit: `{html_url}/blob/{commit}/{path}`, with the
/// repository's own web address (`html_url` as GitHub gives it, so GitHub Enterprise Server
/// links to itself). A permalink: the file is on the spec branch long before it reaches the
/// default branch, and links into it keep pointing at the text they quoted.
pub fn spec_permalink(html_url: &str, commit: &str, spec_path: &str) -> String {
    let path: Vec<String> = spec_path
        .split('/')
        .map(|seg| {
            url::form_urlencoded::byte_serialize(seg.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        })
        .collect();
    format!(
        "{}/blob/{commit}/{}",
        html_url.trim_end_matches('/'),
        path.join("/")
    )
}

/// For each component, the indices of the others it can be built alongside: no chain of
/// `depends_on` leads from either to the other. Dependencies are matched by slug, as
/// [`super::dependency_order`] matches them; unknown ones are ignored.
pub fn parallel_components(components: &[Component]) -> Vec<Vec<usize>> {
    let n = components.len();
    let mut by_slug: HashMap<String, usize> = HashMap::new();
    for (i, c) in components.iter().enumerate() {
        by_slug.entry(c.slug()).or_insert(i);
    }
    // needs[i][j]: i depends on j, directly or through others.
    let mut needs = vec![vec![false; n]; n];
    for (i, c) in components.iter().enumerate() {
        for d in &c.depends_on {
            if let Some(&j) = by_slug.get(&slugify(d)) {
                needs[i][j] = true;
            }
        }
    }
    for k in 0..n {
        let via = needs[k].clone();
        for row in needs.iter_mut().filter(|row| row[k]) {
            for (need, more) in row.iter_mut().zip(&via) {
                *need |= *more;
            }
        }
    }
    (0..n)
        .map(|i| {
            (0..n)
                .filter(|&j| j != i && !needs[i][j] && !needs[j][i])
                .collect()
        })
        .collect()
}

static CRITERION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bAC-\d{1,4}\.\d{1,4}\b").expect("static regex"));

/// `- #12 Title` once filed, `- Title` before; the title made safe.
fn issue_item(title: &str, number: Option<u64>) -> String {
    let title = issue_safe(&one_line(title, 300));
    match number {
        Some(n) => format!("- #{n} {title}"),
        None => format!("- {title}"),
    }
}

impl Component {
    /// See [`slugify`].
    pub fn slug(&self) -> String {
        slugify(&self.title)
    }

    /// Why this component needs `dependency` first, if the model said.
    pub fn reason_for(&self, dependency: &str) -> Option<&str> {
        let reason = self.dependency_reasons.get(dependency).or_else(|| {
            let slug = slugify(dependency);
            self.dependency_reasons
                .iter()
                .find(|(title, _)| slugify(title) == slug)
                .map(|(_, reason)| reason)
        })?;
        Some(reason.as_str()).filter(|r| !r.trim().is_empty())
    }

    /// The body of the component's issue: the hidden marker; the feature issue and the spec
    /// (linked at its commit); the criteria it covers, each linked to its anchor; the summary;
    /// the criteria word for word, then the component's own; the files it touches; the tests
    /// it adds; each dependency with its reason; what it can run in parallel with; and a
    /// definition of done.
    pub fn render_issue_body(&self, at: &IssueLinks<'_>) -> String {
        let mut out = component_marker(at.parent_issue, &self.slug());
        let path = one_line(at.spec_path, 300).replace('`', "'");
        let spec = match at.spec_url {
            Some(url) => format!("[`{path}`]({url})"),
            None => format!("`{path}`"),
        };
        out.push_str(&format!(
            "\nPart of #{}, specified in {spec}.\n",
            at.parent_issue
        ));
        let covers: Vec<String> = self.covers.iter().map(|id| cite(id, at.spec_url)).collect();
        if !covers.is_empty() {
            out.push_str(&format!("\n**Covers** {}\n", covers.join(", ")));
        }
        let summary = issue_safe(self.summary.trim());
        if !summary.trim().is_empty() {
            out.push_str("\n## Summary\n\n");
            out.push_str(summary.trim());
            out.push('\n');
        }
        out.push_str("\n## Acceptance criteria\n\n");
        if self.covers.is_empty() && self.acceptance_criteria.is_empty() {
            out.push_str("_None listed; see the specification._\n");
        }
        for id in &self.covers {
            let text = at
                .requirements
                .iter()
                .flat_map(|r| &r.criteria)
                .find(|c| c.id == *id)
                .map_or_else(
                    || "_(not a criterion of the spec)_".to_string(),
                    |c| issue_safe(&one_line(&c.text, 2_000)),
                );
            out.push_str(&format!("- [ ] {} {text}\n", cite(id, at.spec_url)));
        }
        for item in &self.acceptance_criteria {
            out.push_str(&format!("- [ ] {}\n", issue_safe(&one_line(item, 2_000))));
        }
        out.push_str(&self.work_sections(at));
        out.push_str(
            "\n---\nComment `/implement` on this issue to have specbot implement this component.\n",
        );
        out
    }

    /// Files to touch, tests to add, dependencies, parallel work and the definition of done.
    fn work_sections(&self, at: &IssueLinks<'_>) -> String {
        let mut out = String::new();
        if !self.touches.is_empty() {
            out.push_str("\n## Files to touch\n\n");
            for t in &self.touches {
                // In a code span mentions do not ping; comments are still removed.
                let t = sanitize(&one_line(t, 300)).replace('`', "'");
                out.push_str(&format!("- `{t}`\n"));
            }
        }
        if !self.tests.is_empty() {
            out.push_str("\n## Tests to add\n\n");
            for t in &self.tests {
                let t = issue_safe(&one_line(t, 2_000));
                let linked =
                    CRITERION.replace_all(&t, |c: &regex::Captures| cite(&c[0], at.spec_url));
                out.push_str(&format!("- [ ] {linked}\n"));
            }
        }
        if !at.deps.is_empty() {
            out.push_str("\n## Depends on\n\n");
            for (title, number) in at.deps {
                out.push_str(&issue_item(title, *number));
                if let Some(reason) = self.reason_for(title) {
                    out.push_str(&format!(": {}", issue_safe(&one_line(reason, 1_000))));
                }
                out.push('\n');
            }
        }
        if !at.parallel.is_empty() {
            out.push_str("\n## Can run in parallel with\n\n");
            for (title, number) in at.parallel {
                out.push_str(&issue_item(title, *number));
                out.push('\n');
            }
        }
        let path = one_line(at.spec_path, 300).replace('`', "'");
        let tested = if self.tests.is_empty() {
            "an automated test checks it"
        } else {
            "one of the tests above checks it"
        };
        out.push_str(&format!(
            "\n## Definition of done\n\n- [ ] Every criterion above holds, and {tested}.\n- [ ] The new tests and the repository's existing ones pass in CI.\n"
        ));
        if !self.touches.is_empty() {
            out.push_str("- [ ] The change stays within the files above, or its pull request says why it needed others.\n");
        }
        out.push_str(&format!(
            "- [ ] Where the design had to change, `{path}` says so in the same pull request.\n"
        ));
        out
    }
}

/// A criterion ID as an issue shows it: linked to its anchor in the spec at its commit when it
/// is one, else as plain (safe) text.
fn cite(id: &str, spec_url: Option<&str>) -> String {
    let id = issue_safe(&one_line(id, 100));
    let whole = CRITERION
        .find(&id)
        .is_some_and(|m| m.start() == 0 && m.end() == id.len());
    match spec_url {
        Some(url) if whole => format!("[{id}]({url}#{})", anchor(&id)),
        _ => id,
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

    fn criterion(id: &str, text: &str) -> crate::spec::Criterion {
        crate::spec::Criterion {
            id: id.into(),
            text: text.into(),
        }
    }

    #[test]
    fn component_issue_body_snapshot() {
        let component = Component {
            title: "Rate limiter middleware".into(),
            summary: "A tower layer that applies per-token buckets; cc @alice.".into(),
            acceptance_criteria: vec!["Admins are exempt".into()],
            depends_on: vec!["Bucket store".into(), "Config".into()],
            dependency_reasons: [(
                "Bucket store".to_string(),
                "the layer takes tokens from its buckets".to_string(),
            )]
            .into(),
            covers: vec!["AC-1.1".into(), "AC-1.2".into()],
            touches: vec!["src/limit.rs".into(), "src/server/router.rs".into()],
            tests: vec![
                "AC-1.1: the 11th request in a second is answered 429".into(),
                "AC-1.2: `Retry-After` counts down to the next token".into(),
            ],
        };
        let requirements = [Requirement {
            id: "REQ-1".into(),
            title: "Limits".into(),
            criteria: vec![
                criterion(
                    "AC-1.1",
                    "WHEN a token sends more than 10 requests in a second THE SYSTEM SHALL answer 429",
                ),
                criterion(
                    "AC-1.2",
                    "WHEN it answers 429 THE SYSTEM SHALL send `Retry-After` in whole seconds",
                ),
            ],
            ..Requirement::default()
        }];
        let url = spec_permalink(
            "https://github.com/acme/widgets",
            "0123456789abcdef0123456789abcdef01234567",
            "specs/IMPLEMENT-7.md",
        );
        let body = component.render_issue_body(&IssueLinks {
            parent_issue: 7,
            spec_path: "specs/IMPLEMENT-7.md",
            spec_url: Some(&url),
            requirements: &requirements,
            deps: &[("Bucket store".into(), Some(12)), ("Config".into(), None)],
            parallel: &[("Metrics".into(), Some(14))],
        });
        assert!(
            body.starts_with("<!-- specbot:component parent=7 slug=rate-limiter-middleware -->\n")
        );
        insta::assert_snapshot!("component_issue_body", body);
    }

    #[test]
    fn criteria_link_to_the_spec_at_its_commit_on_the_repositorys_own_host() {
        let url = spec_permalink(
            "https://ghe.example.com/acme/widgets/",
            "abc123",
            "docs/design notes/7.md",
        );
        assert_eq!(
            url,
            "https://ghe.example.com/acme/widgets/blob/abc123/docs/design%20notes/7.md"
        );
        let component = Component {
            title: "A".into(),
            covers: vec!["AC-2.1".into(), "not an id".into()],
            tests: vec!["AC-2.1 and AC-9.9: both".into()],
            ..Component::default()
        };
        let body = component.render_issue_body(&IssueLinks {
            parent_issue: 7,
            spec_path: "docs/design notes/7.md",
            spec_url: Some(&url),
            requirements: &[],
            deps: &[],
            parallel: &[],
        });
        assert!(
            body.contains(&format!("**Covers** [AC-2.1]({url}#ac-2-1), not an id\n")),
            "{body}"
        );
        assert!(
            body.contains("- [ ] [AC-2.1](https://ghe.example.com/acme/widgets/blob/abc123/docs/design%20notes/7.md#ac-2-1) _(not a criterion of the spec)_"),
            "{body}"
        );
        assert!(
            body.contains(&format!("[AC-9.9]({url}#ac-9-9): both")),
            "{body}"
        );
        // Without a commit (a local run) the IDs are plain text.
        let local = component.render_issue_body(&IssueLinks {
            spec_url: None,
            spec_path: "specs/IMPLEMENT-7.md",
            parent_issue: 7,
            requirements: &[],
            deps: &[],
            parallel: &[],
        });
        assert!(local.contains("**Covers** AC-2.1, not an id\n"), "{local}");
    }

    #[test]
    fn components_with_no_dependency_path_either_way_run_in_parallel() {
        let comp = |title: &str, deps: &[&str]| Component {
            title: title.into(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            ..Component::default()
        };
        // tokens ← toggle → profile; docs alone; audit → toggle (so → tokens, → profile too).
        let components = [
            comp("Tokens", &[]),
            comp("Profile", &[]),
            comp("Toggle", &["tokens", "Profile"]),
            comp("Docs", &[]),
            comp("Audit", &["Toggle", "Unknown"]),
        ];
        let parallel = parallel_components(&components);
        assert_eq!(parallel[0], [1, 3]);
        assert_eq!(parallel[1], [0, 3]);
        assert_eq!(parallel[2], [3]);
        assert_eq!(parallel[3], [0, 1, 2, 4]);
        assert_eq!(parallel[4], [3]);
    }

    #[test]
    fn mentions_and_comments_are_defused() {
        let got =
            issue_safe("ping @alice and mail a@b.com <!-- specbot:component parent=1 slug=x -->");
        assert_eq!(got, "ping @&#8203;alice and mail a@b.com ");
    }
}
