//! The issue filed for each component of a spec: the one a developer picks up, with the
//! criteria it covers quoted and linked to their anchors in the spec file at the spec's commit,
//! and the hidden marker that finds it again.

use std::sync::LazyLock;

use regex::Regex;

use crate::prompt::sanitize::{defuse_for_posting, one_line, sanitize};
use crate::spec::{Component, Requirement, anchor};

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

/// Where a component issue points beyond the component itself: the feature issue, the spec
/// file at its commit, the criteria it quotes, and its neighbours in the design.
#[derive(Debug, Clone, Copy)]
pub struct IssueLinks<'a> {
    pub parent_issue: u64,
    pub spec_path: &'a str,
    /// The spec file at the commit that holds it ([`crate::spec::spec_permalink`]); `None`
    /// where there is no commit (a local run): criteria are then named without links.
    pub spec_url: Option<&'a str>,
    /// The spec's requirements, whose criteria the issue quotes word for word.
    pub requirements: &'a [Requirement],
    /// Each dependency: its title and, once filed, its issue number.
    pub deps: &'a [(String, Option<u64>)],
    /// The components it can be built alongside ([`crate::spec::parallel_components`]): title
    /// and issue number once filed.
    pub parallel: &'a [(String, Option<u64>)],
}

/// Model-written text made safe for an issue body: sanitised (no HTML comments, so no forged
/// markers; no invisible characters) and defused like every text the bot posts (no pings, no
/// images that load).
fn issue_safe(text: &str) -> String {
    defuse_for_posting(&sanitize(text))
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

/// The body of the component's issue: the hidden marker; the feature issue and the spec
/// (linked at its commit); the criteria it covers, each linked to its anchor; the summary;
/// the criteria word for word, then the component's own; the files it touches; the tests
/// it adds; each dependency with its reason; what it can run in parallel with; and a
/// definition of done.
pub fn component_issue_body(component: &Component, at: &IssueLinks<'_>) -> String {
    let mut out = component_marker(at.parent_issue, &component.slug());
    let path = one_line(at.spec_path, 300).replace('`', "'");
    let spec = match at.spec_url {
        Some(url) => format!("[`{path}`]({url})"),
        None => format!("`{path}`"),
    };
    out.push_str(&format!(
        "\nPart of #{}, specified in {spec}.\n",
        at.parent_issue
    ));
    let covers: Vec<String> = component
        .covers
        .iter()
        .map(|id| cite(id, at.spec_url))
        .collect();
    if !covers.is_empty() {
        out.push_str(&format!("\n**Covers** {}\n", covers.join(", ")));
    }
    let summary = issue_safe(component.summary.trim());
    if !summary.trim().is_empty() {
        out.push_str("\n## Summary\n\n");
        out.push_str(summary.trim());
        out.push('\n');
    }
    out.push_str("\n## Acceptance criteria\n\n");
    if component.covers.is_empty() && component.acceptance_criteria.is_empty() {
        out.push_str("_None listed; see the specification._\n");
    }
    for id in &component.covers {
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
    for item in &component.acceptance_criteria {
        out.push_str(&format!("- [ ] {}\n", issue_safe(&one_line(item, 2_000))));
    }
    out.push_str(&work_sections(component, at));
    out.push_str(
        "\n---\nComment `/implement` on this issue to have specbot implement this component.\n",
    );
    out
}

/// Files to touch, tests to add, dependencies, parallel work and the definition of done.
fn work_sections(component: &Component, at: &IssueLinks<'_>) -> String {
    let mut out = String::new();
    if !component.touches.is_empty() {
        out.push_str("\n## Files to touch\n\n");
        for t in &component.touches {
            // In a code span mentions do not ping; comments are still removed.
            let t = sanitize(&one_line(t, 300)).replace('`', "'");
            out.push_str(&format!("- `{t}`\n"));
        }
    }
    if !component.tests.is_empty() {
        out.push_str("\n## Tests to add\n\n");
        for t in &component.tests {
            let t = issue_safe(&one_line(t, 2_000));
            let linked = CRITERION.replace_all(&t, |c: &regex::Captures| cite(&c[0], at.spec_url));
            out.push_str(&format!("- [ ] {linked}\n"));
        }
    }
    if !at.deps.is_empty() {
        out.push_str("\n## Depends on\n\n");
        for (title, number) in at.deps {
            out.push_str(&issue_item(title, *number));
            if let Some(reason) = component.reason_for(title) {
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
    let tested = if component.tests.is_empty() {
        "an automated test checks it"
    } else {
        "one of the tests above checks it"
    };
    out.push_str(&format!(
        "\n## Definition of done\n\n- [ ] Every criterion above holds, and {tested}.\n- [ ] The new tests and the repository's existing ones pass in CI.\n"
    ));
    if !component.touches.is_empty() {
        out.push_str("- [ ] The change stays within the files above, or its pull request says why it needed others.\n");
    }
    out.push_str(&format!(
        "- [ ] Where the design had to change, `{path}` says so in the same pull request.\n"
    ));
    out
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
    use crate::spec::spec_permalink;

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

    fn criterion(id: &str, text: &str) -> crate::spec::Criterion {
        crate::spec::Criterion {
            id: id.into(),
            text: text.into(),
        }
    }

    /// A component of issue 7's spec, with no requirements and no neighbours.
    fn links_of_7<'a>(spec_path: &'a str, spec_url: Option<&'a str>) -> IssueLinks<'a> {
        IssueLinks {
            parent_issue: 7,
            spec_path,
            spec_url,
            requirements: &[],
            deps: &[],
            parallel: &[],
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
        let body = component_issue_body(
            &component,
            &IssueLinks {
                requirements: &requirements,
                deps: &[("Bucket store".into(), Some(12)), ("Config".into(), None)],
                parallel: &[("Metrics".into(), Some(14))],
                ..links_of_7("specs/IMPLEMENT-7.md", Some(&url))
            },
        );
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
        let body = component_issue_body(
            &component,
            &links_of_7("docs/design notes/7.md", Some(&url)),
        );
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
        let local = component_issue_body(&component, &links_of_7("specs/IMPLEMENT-7.md", None));
        assert!(local.contains("**Covers** AC-2.1, not an id\n"), "{local}");
    }

    #[test]
    fn mentions_comments_and_images_are_defused() {
        let got = issue_safe(
            "ping @alice and mail a@b.com <!-- specbot:component parent=1 slug=x --> ![t](https://t.example/p.png)",
        );
        assert_eq!(
            got, "ping @\u{200D}alice and mail a@b.com  [t](https://t.example/p.png)",
            "the same defusing as every posted text: no ping, no forged marker, no image that loads"
        );
    }
}
