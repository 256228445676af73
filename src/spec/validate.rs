//! Validating a parsed answer before anything is committed or filed.
//!
//! Owns: [`validate`], [`ValidationProblem`], [`dependency_order`], [`repair_prompt`] and the
//! artifact format checks. Every problem's message is plain English, written to be read both by
//! the model (in the repair prompt) and by a person (in the failure comment).
//!
//! The rules:
//! - the specification is non-empty and at most [`MAX_SPEC_BYTES`];
//! - it has the [`REQUIRED_SECTIONS`] as markdown headings (any level, numbering ignored),
//!   each with some content under it:
//!   a summary (`Summary`, `Executive summary`, `Overview`, `TL;DR`), a design (`Design`,
//!   `Detailed design`, `Proposed solution`, `Architecture`, `Approach`), and a section for the
//!   components or the acceptance criteria;
//! - 1 to [`MAX_COMPONENTS`] components, each with a non-empty title of at most 200 characters
//!   and at least one acceptance criterion; titles unique (compared by slug);
//!   `depends_on` names known components and has no cycles;
//! - each enabled artifact is present and at most [`MAX_ARTIFACT_BYTES`]; the OpenAPI artifact
//!   parses as YAML (with budgets) and has `openapi: 3.x`, an `info` mapping and a `paths`
//!   mapping (or, as OpenAPI 3.1 allows, `webhooks`); the Mermaid diagram starts with a known
//!   diagram type after optional `%%` comments, directives and `---` front matter. Artifacts
//!   that were not enabled are not checked (see [`super::SpecAnswer::retain_artifacts`]).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::fmt::Display;

use serde_json::Value;

use super::parse::{heading, heading_words, lines_outside_fences};
use super::{ArtifactKind, Component, SpecAnswer, slugify};

/// Largest specification, in bytes.
pub const MAX_SPEC_BYTES: usize = 200 * 1024;
/// Largest artifact, in bytes.
pub const MAX_ARTIFACT_BYTES: usize = 200 * 1024;
/// Most components (each becomes an issue).
pub const MAX_COMPONENTS: usize = 30;
/// Longest component title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// The sections a specification must have: (name used in messages, heading keywords).
pub const REQUIRED_SECTIONS: &[(&str, &[&str])] = &[
    ("Summary", &["summary", "overview", "tl;dr"]),
    (
        "Design",
        &["design", "proposed solution", "architecture", "approach"],
    ),
    (
        "Components (or Acceptance criteria)",
        &["component", "acceptance criteria"],
    ),
];

/// The Mermaid diagram types accepted as the first word of a diagram.
pub const MERMAID_TYPES: &[&str] = &[
    "flowchart",
    "graph",
    "sequenceDiagram",
    "classDiagram",
    "classDiagram-v2",
    "stateDiagram",
    "stateDiagram-v2",
    "erDiagram",
    "journey",
    "gantt",
    "pie",
    "quadrantChart",
    "requirementDiagram",
    "gitGraph",
    "C4Context",
    "C4Container",
    "C4Component",
    "C4Dynamic",
    "C4Deployment",
    "mindmap",
    "timeline",
    "zenuml",
    "sankey",
    "sankey-beta",
    "xychart",
    "xychart-beta",
    "block",
    "block-beta",
    "packet",
    "packet-beta",
    "kanban",
    "architecture",
    "architecture-beta",
    "radar-beta",
    "treemap-beta",
];

/// One thing wrong with an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationProblem {
    #[error("The specification is empty.")]
    EmptySpecification,
    #[error("The specification is {bytes} bytes long; keep it under {max} bytes.")]
    SpecificationTooLarge { bytes: usize, max: usize },
    #[error(
        "The specification has no \"{section}\" section (a markdown heading such as `## {section}`)."
    )]
    MissingSection { section: String },
    #[error("The \"{section}\" section is empty: write its content under the heading.")]
    EmptySection { section: String },
    #[error("There are no components: list at least one independently implementable component.")]
    NoComponents,
    #[error("There are {count} components; split the work into at most {max}.")]
    TooManyComponents { count: usize, max: usize },
    #[error("Component {index} has no title.")]
    EmptyComponentTitle { index: usize },
    #[error("The component title \"{title}\" is longer than {max} characters.")]
    ComponentTitleTooLong { title: String, max: usize },
    #[error("The component \"{title}\" has no acceptance criteria.")]
    MissingAcceptanceCriteria { title: String },
    #[error("Two components are called \"{title}\"; component titles must be unique.")]
    DuplicateComponent { title: String },
    #[error(
        "The component \"{component}\" depends on \"{dependency}\", which is not one of the components; use the exact title of another component."
    )]
    UnknownDependency {
        component: String,
        dependency: String,
    },
    #[error("The components depend on each other in a cycle: {}.", titles.join(" → "))]
    DependencyCycle { titles: Vec<String> },
    #[error("The {} artifact is missing; it was asked for.", kind.title())]
    MissingArtifact { kind: ArtifactKind },
    #[error("The {} artifact is {bytes} bytes long; keep it under {max} bytes.", kind.title())]
    ArtifactTooLarge {
        kind: ArtifactKind,
        bytes: usize,
        max: usize,
    },
    #[error("The OpenAPI artifact is not usable: {reason}.")]
    InvalidOpenApi { reason: String },
    #[error("The Mermaid diagram is not usable: {reason}.")]
    InvalidDiagram { reason: String },
}

/// Why the components cannot be put in dependency order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DependencyError {
    #[error(
        "the component \"{component}\" depends on \"{dependency}\", which is not one of the components"
    )]
    UnknownDependency {
        component: String,
        dependency: String,
    },
    #[error("the components depend on each other in a cycle: {}", titles.join(" → "))]
    Cycle { titles: Vec<String> },
}

/// Indices of `components` ordered so that every component comes after the ones it depends on;
/// among the free ones, the original order is kept. Dependencies are matched by slug (so case
/// and punctuation do not matter); with duplicate titles the first one counts.
pub fn dependency_order(components: &[Component]) -> Result<Vec<usize>, DependencyError> {
    let mut by_slug: HashMap<String, usize> = HashMap::new();
    for (i, c) in components.iter().enumerate() {
        by_slug.entry(c.slug()).or_insert(i);
    }
    let mut deps: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); components.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); components.len()];
    for (i, c) in components.iter().enumerate() {
        for d in &c.depends_on {
            let Some(&j) = by_slug.get(&slugify(d)) else {
                return Err(DependencyError::UnknownDependency {
                    component: c.title.clone(),
                    dependency: d.clone(),
                });
            };
            if deps[i].insert(j) {
                dependents[j].push(i);
            }
        }
    }
    let mut waiting: Vec<usize> = deps.iter().map(BTreeSet::len).collect();
    let mut ready: BinaryHeap<Reverse<usize>> = (0..components.len())
        .filter(|i| waiting[*i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(components.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &k in &dependents[i] {
            waiting[k] -= 1;
            if waiting[k] == 0 {
                ready.push(Reverse(k));
            }
        }
    }
    if order.len() == components.len() {
        return Ok(order);
    }
    // Every component still waiting has a dependency still waiting: walk those to a repeat.
    let start = (0..components.len()).find(|i| waiting[*i] > 0).unwrap_or(0);
    let mut seen: HashMap<usize, usize> = HashMap::new();
    let mut path = Vec::new();
    let mut at = start;
    while let Some(next) = (!seen.contains_key(&at)).then_some(at) {
        seen.insert(next, path.len());
        path.push(next);
        match deps[next].iter().find(|d| waiting[**d] > 0) {
            Some(&d) => at = d,
            None => break,
        }
    }
    let from = seen.get(&at).copied().unwrap_or(0);
    let mut titles: Vec<String> = path[from..]
        .iter()
        .map(|i| components[*i].title.clone())
        .collect();
    if let Some(first) = titles.first().cloned() {
        titles.push(first);
    }
    Err(DependencyError::Cycle { titles })
}

/// Lowercased heading texts of a markdown document, outside code fences.
fn headings(markdown: &str) -> Vec<String> {
    lines_outside_fences(markdown)
        .filter_map(heading)
        .map(|(_, text)| heading_words(text))
        .collect()
}

impl ValidationProblem {
    /// The optional artifact this problem is about, if it is about one.
    pub fn artifact(&self) -> Option<ArtifactKind> {
        match self {
            ValidationProblem::MissingArtifact { kind }
            | ValidationProblem::ArtifactTooLarge { kind, .. } => Some(*kind),
            ValidationProblem::InvalidOpenApi { .. } => Some(ArtifactKind::OpenApi),
            ValidationProblem::InvalidDiagram { .. } => Some(ArtifactKind::Diagram),
            _ => None,
        }
    }
}

/// After the repair round: when every problem left is about an optional artifact, leave those
/// artifacts out (each problem recorded in [`SpecAnswer::dropped`]) so that the spec still
/// lands. `false`, and nothing changed, when any problem is about the spec itself.
pub fn drop_unusable_artifacts(answer: &mut SpecAnswer, problems: &[ValidationProblem]) -> bool {
    if problems.is_empty() || problems.iter().any(|p| p.artifact().is_none()) {
        return false;
    }
    for p in problems {
        if let Some(kind) = p.artifact() {
            *answer.artifacts.get_mut(kind) = None;
            answer.dropped.push(p.to_string());
        }
    }
    true
}

/// A specification without a section for its components (or acceptance criteria) that came
/// with structured components gets a `## Components` section rendered from them.
pub fn complete_components_section(answer: &mut SpecAnswer) -> &SpecAnswer {
    let Some((_, keywords)) = REQUIRED_SECTIONS.last() else {
        return answer;
    };
    let found = headings(&answer.specification);
    if answer.components.is_empty()
        || answer.specification.trim().is_empty()
        || found.iter().any(|h| keywords.iter().any(|k| h.contains(k)))
    {
        return answer;
    }
    let mut section = String::from("\n\n## Components\n");
    for (i, c) in answer.components.iter().enumerate() {
        section.push_str(&format!("\n### {}. {}\n", i + 1, c.title.trim()));
        if !c.summary.trim().is_empty() {
            section.push_str(&format!("\n{}\n", c.summary.trim()));
        }
        if !c.depends_on.is_empty() {
            section.push_str(&format!("\nDepends on: {}.\n", c.depends_on.join(", ")));
        }
        let criteria: Vec<&str> = c
            .acceptance_criteria
            .iter()
            .map(|a| a.trim())
            .filter(|a| !a.is_empty())
            .collect();
        if !criteria.is_empty() {
            section.push_str("\nAcceptance criteria:\n");
            for a in criteria {
                section.push_str(&format!("- {a}\n"));
            }
        }
    }
    answer.specification = format!("{}{section}", answer.specification.trim_end());
    answer
}

/// The headings (as [`headings`] words) with some content under them: a non-blank line before
/// the next heading of the same or a higher level (code blocks count as content).
fn filled_headings(markdown: &str) -> Vec<String> {
    let mut filled = Vec::new();
    // The open headings: (level, words, has content).
    let mut open: Vec<(usize, String, bool)> = Vec::new();
    let mut in_fence = false;
    for line in markdown.lines() {
        let t = line.trim_start();
        let fence = t.starts_with("```") || t.starts_with("~~~");
        if !in_fence
            && !fence
            && let Some((level, text)) = heading(line)
        {
            while open.last().is_some_and(|(l, _, _)| *l >= level) {
                if let Some((_, words, true)) = open.pop() {
                    filled.push(words);
                }
            }
            open.push((level, heading_words(text), false));
            continue;
        }
        if fence {
            in_fence = !in_fence;
        }
        if !t.is_empty() {
            for o in &mut open {
                o.2 = true;
            }
        }
    }
    filled.extend(open.into_iter().filter(|o| o.2).map(|o| o.1));
    filled
}

/// Check an answer against the rules in the module docs; all problems at once.
pub fn validate(
    answer: &SpecAnswer,
    enabled_artifacts: &[ArtifactKind],
) -> Result<(), Vec<ValidationProblem>> {
    let mut problems = Vec::new();
    let spec = answer.specification.trim();
    if spec.is_empty() {
        problems.push(ValidationProblem::EmptySpecification);
    } else {
        if spec.len() > MAX_SPEC_BYTES {
            problems.push(ValidationProblem::SpecificationTooLarge {
                bytes: spec.len(),
                max: MAX_SPEC_BYTES,
            });
        }
        let found = headings(spec);
        let filled = filled_headings(spec);
        for (section, keywords) in REQUIRED_SECTIONS {
            let matches = |h: &String| keywords.iter().any(|k| h.contains(k));
            if !found.iter().any(matches) {
                problems.push(ValidationProblem::MissingSection {
                    section: (*section).to_string(),
                });
            } else if !filled.iter().any(matches) {
                problems.push(ValidationProblem::EmptySection {
                    section: (*section).to_string(),
                });
            }
        }
    }

    let components = &answer.components;
    if components.is_empty() {
        problems.push(ValidationProblem::NoComponents);
    } else if components.len() > MAX_COMPONENTS {
        problems.push(ValidationProblem::TooManyComponents {
            count: components.len(),
            max: MAX_COMPONENTS,
        });
    }
    let mut slugs: HashMap<String, usize> = HashMap::new();
    for (i, c) in components.iter().enumerate() {
        let title = c.title.trim();
        if title.is_empty() {
            problems.push(ValidationProblem::EmptyComponentTitle { index: i + 1 });
            continue;
        }
        if title.chars().count() > MAX_TITLE_CHARS {
            problems.push(ValidationProblem::ComponentTitleTooLong {
                title: crate::prompt::sanitize::truncate_chars(title, 60).to_string() + "…",
                max: MAX_TITLE_CHARS,
            });
        }
        if c.acceptance_criteria.iter().all(|a| a.trim().is_empty()) {
            problems.push(ValidationProblem::MissingAcceptanceCriteria {
                title: title.to_string(),
            });
        }
        let count = slugs.entry(c.slug()).or_insert(0);
        *count += 1;
        if *count == 2 {
            problems.push(ValidationProblem::DuplicateComponent {
                title: title.to_string(),
            });
        }
    }
    let mut unknown = false;
    for c in components {
        for d in &c.depends_on {
            if !slugs.contains_key(&slugify(d)) {
                unknown = true;
                problems.push(ValidationProblem::UnknownDependency {
                    component: c.title.clone(),
                    dependency: d.clone(),
                });
            }
        }
    }
    if !unknown && let Err(DependencyError::Cycle { titles }) = dependency_order(components) {
        problems.push(ValidationProblem::DependencyCycle { titles });
    }

    for kind in ArtifactKind::ALL {
        if !enabled_artifacts.contains(&kind) {
            continue;
        }
        let Some(text) = answer.artifacts.get(kind).filter(|t| !t.trim().is_empty()) else {
            problems.push(ValidationProblem::MissingArtifact { kind });
            continue;
        };
        if text.len() > MAX_ARTIFACT_BYTES {
            problems.push(ValidationProblem::ArtifactTooLarge {
                kind,
                bytes: text.len(),
                max: MAX_ARTIFACT_BYTES,
            });
            continue;
        }
        match kind {
            ArtifactKind::OpenApi => {
                if let Err(reason) = check_openapi(text) {
                    problems.push(ValidationProblem::InvalidOpenApi { reason });
                }
            }
            ArtifactKind::Diagram => {
                if let Err(reason) = check_mermaid(text) {
                    problems.push(ValidationProblem::InvalidDiagram { reason });
                }
            }
            ArtifactKind::TestPlan | ArtifactKind::RolloutPlan => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Parse YAML under tight budgets (an artifact is small; aliases are not needed).
fn parse_yaml(text: &str) -> Result<Value, String> {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = 200_000;
    budget.max_nodes = 100_000;
    budget.max_depth = 64;
    budget.max_aliases = 100;
    budget.max_anchors = 100;
    budget.max_documents = 1;
    budget.max_total_scalar_bytes = 4 * MAX_ARTIFACT_BYTES;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    serde_saphyr::from_str_with_options::<Value>(text, options).map_err(|e| {
        let message = e.to_string();
        let first = message.lines().next().unwrap_or("").trim().to_string();
        format!(
            "it is not valid YAML ({})",
            crate::prompt::sanitize::truncate_chars(&first, 200)
        )
    })
}

/// `openapi: 3.x`, `info` and `paths` (or `webhooks`) — see the module docs.
pub fn check_openapi(text: &str) -> Result<(), String> {
    let value = parse_yaml(text)?;
    let Some(doc) = value.as_object() else {
        return Err("it is not a YAML mapping with `openapi`, `info` and `paths` keys".into());
    };
    let version = match doc.get("openapi") {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ if doc.contains_key("swagger") => {
            return Err("it is Swagger 2.0; write OpenAPI 3.1 (`openapi: 3.1.0`)".into());
        }
        _ => return Err("the `openapi` version field is missing (write `openapi: 3.1.0`)".into()),
    };
    if !version.starts_with("3.") {
        return Err(format!(
            "the `openapi` version is `{version}`; it must be 3.x (3.1.0)"
        ));
    }
    if !doc.get("info").is_some_and(Value::is_object) {
        return Err("the `info` object (title, version) is missing".into());
    }
    let has_paths = doc
        .get("paths")
        .is_some_and(|p| p.is_object() || p.is_null());
    let has_webhooks = doc.get("webhooks").is_some_and(Value::is_object);
    if !has_paths && !has_webhooks {
        return Err("the `paths` object is missing".into());
    }
    Ok(())
}

/// The first word after comments, directives and front matter is a known diagram type.
pub fn check_mermaid(text: &str) -> Result<(), String> {
    let mut lines = text.lines().map(str::trim);
    let mut in_front_matter = false;
    let mut first = None;
    let mut seen_any = false;
    for line in lines.by_ref() {
        if in_front_matter {
            if line == "---" {
                in_front_matter = false;
            }
            continue;
        }
        if line.is_empty() || line.starts_with("%%") {
            continue;
        }
        if line == "---" && !seen_any {
            in_front_matter = true;
            seen_any = true;
            continue;
        }
        first = Some(line);
        break;
    }
    let Some(line) = first else {
        return Err("it has no diagram".into());
    };
    if line.starts_with("```") {
        return Err("it is wrapped in a code fence; give only the Mermaid source".into());
    }
    let word = line
        .split(|c: char| c.is_whitespace() || c == ';' || c == ':')
        .next()
        .unwrap_or("");
    if MERMAID_TYPES.contains(&word) {
        Ok(())
    } else {
        Err(format!(
            "it starts with `{}`, not a Mermaid diagram type (such as `flowchart TD`, `sequenceDiagram`, `classDiagram`, `erDiagram` or `C4Context`)",
            crate::prompt::sanitize::one_line(word, 40).replace('`', "'")
        ))
    }
}

/// The follow-up message asking the model to fix its answer.
pub fn repair_prompt<P: Display>(problems: &[P]) -> String {
    let mut out =
        String::from("Your answer could not be used as it is. Please fix these problems:\n\n");
    for p in problems {
        out.push_str(&format!("- {p}\n"));
    }
    out.push_str(
        "\nThen give the complete answer again, in the same format as before (call the submit_spec tool again if you used it; otherwise the <specification> and <components> blocks and every requested artifact). Do not answer with only the changes.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Artifacts;

    fn comp(title: &str, deps: &[&str]) -> Component {
        Component {
            title: title.into(),
            summary: "s".into(),
            acceptance_criteria: vec!["works".into()],
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            ..Component::default()
        }
    }

    #[test]
    fn an_empty_required_section_is_a_problem() {
        let mut a = good();
        a.specification =
            "# X\n## Summary\n\n## Proposed Solution\n### Parts\nd\n## Components\n```\nc\n```\n"
                .into();
        let problems = validate(&a, &[]).expect_err("the summary is empty");
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            text,
            ["The \"Summary\" section is empty: write its content under the heading."]
        );
    }

    fn good() -> SpecAnswer {
        SpecAnswer {
            specification: "# X\n## 1. Executive Summary\ns\n## 4. Proposed Solution\nd\n## Components\nc\n".into(),
            components: vec![comp("Store", &[]), comp("API", &["store"])],
            artifacts: Artifacts {
                diagram: Some("%% c\n---\ntitle: x\n---\nflowchart TD\nA-->B".into()),
                openapi: Some("openapi: 3.1.0\ninfo:\n  title: x\n  version: '1'\npaths:\n  /a:\n    get:\n      responses:\n        200:\n          description: ok\n".into()),
                test_plan: None,
                rollout_plan: None,
            },
            changes: None,
            ..SpecAnswer::default()
        }
    }

    #[test]
    fn a_good_answer_passes() {
        assert_eq!(
            validate(&good(), &[ArtifactKind::Diagram, ArtifactKind::OpenApi]),
            Ok(())
        );
    }

    #[test]
    fn problems_table() {
        type Edit = fn(&mut SpecAnswer);
        let cases: Vec<(Edit, ValidationProblem)> = vec![
            (
                |a| a.specification = " ".into(),
                ValidationProblem::EmptySpecification,
            ),
            (
                |a| a.specification = "## Summary\n## Components\n```\n## Design\n```".into(),
                ValidationProblem::MissingSection {
                    section: "Design".into(),
                },
            ),
            (|a| a.components.clear(), ValidationProblem::NoComponents),
            (
                |a| a.components[0].title = " ".into(),
                ValidationProblem::EmptyComponentTitle { index: 1 },
            ),
            (
                |a| a.components[1].acceptance_criteria.clear(),
                ValidationProblem::MissingAcceptanceCriteria {
                    title: "API".into(),
                },
            ),
            (
                |a| a.components.push(comp("api", &[])),
                ValidationProblem::DuplicateComponent {
                    title: "api".into(),
                },
            ),
            (
                |a| a.components[1].depends_on.push("Cache".into()),
                ValidationProblem::UnknownDependency {
                    component: "API".into(),
                    dependency: "Cache".into(),
                },
            ),
            (
                |a| a.components[0].depends_on.push("API".into()),
                ValidationProblem::DependencyCycle {
                    titles: vec!["Store".into(), "API".into(), "Store".into()],
                },
            ),
            (
                |a| a.artifacts.diagram = None,
                ValidationProblem::MissingArtifact {
                    kind: ArtifactKind::Diagram,
                },
            ),
            (
                |a| a.artifacts.diagram = Some("```mermaid\ngraph TD\n```".into()),
                ValidationProblem::InvalidDiagram {
                    reason: "it is wrapped in a code fence; give only the Mermaid source".into(),
                },
            ),
            (
                |a| a.artifacts.openapi = Some("swagger: '2.0'\ninfo: {}\npaths: {}".into()),
                ValidationProblem::InvalidOpenApi {
                    reason: "it is Swagger 2.0; write OpenAPI 3.1 (`openapi: 3.1.0`)".into(),
                },
            ),
            (
                |a| a.artifacts.openapi = Some("openapi: 3.1.0\ninfo: {title: x}\n".into()),
                ValidationProblem::InvalidOpenApi {
                    reason: "the `paths` object is missing".into(),
                },
            ),
        ];
        for (edit, want) in cases {
            let mut answer = good();
            edit(&mut answer);
            let problems = validate(&answer, &[ArtifactKind::Diagram, ArtifactKind::OpenApi])
                .expect_err("invalid");
            assert!(problems.contains(&want), "want {want:?}, got {problems:?}");
        }
    }

    #[test]
    fn bad_yaml_is_a_problem_not_a_panic() {
        for text in [
            "openapi: [",
            "a: &a [*a, *a]",
            "- 1\n- 2",
            "openapi: 2.0\ninfo: {}\npaths: {}",
            &"[".repeat(10_000),
            "a: &a [1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]",
            "",
        ] {
            assert!(check_openapi(text).is_err(), "{text}");
        }
        assert!(check_openapi("openapi: 3.0.3\ninfo: {title: t, version: v}\npaths: {}").is_ok());
        assert!(
            check_openapi("openapi: 3.1.0\ninfo: {title: t, version: v}\nwebhooks: {}").is_ok()
        );
    }

    #[test]
    fn mermaid_table() {
        let ok = [
            "flowchart TD\nA-->B",
            "graph LR;A-->B",
            "%%{init: {'theme': 'dark'}}%%\nsequenceDiagram\nA->>B: hi",
            "---\ntitle: T\n---\nstateDiagram-v2\n[*] --> A",
            "\n\nC4Context\ntitle x",
            "erDiagram",
            "pie title Pets",
        ];
        for text in ok {
            assert_eq!(check_mermaid(text), Ok(()), "{text}");
        }
        for text in [
            "",
            "%% only a comment",
            "A-->B",
            "Flowchart TD",
            "---\ntitle: x",
        ] {
            assert!(check_mermaid(text).is_err(), "{text}");
        }
    }

    #[test]
    fn dependency_order_table() {
        let order = dependency_order(&[
            comp("C", &["b"]),
            comp("A", &[]),
            comp("B", &["A"]),
            comp("D", &[]),
        ]);
        assert_eq!(order, Ok(vec![1, 2, 0, 3]));
        assert_eq!(dependency_order(&[]), Ok(vec![]));
        assert_eq!(
            dependency_order(&[comp("A", &["A"])]),
            Err(DependencyError::Cycle {
                titles: vec!["A".into(), "A".into()]
            })
        );
        assert_eq!(
            dependency_order(&[comp("A", &["Z"])]),
            Err(DependencyError::UnknownDependency {
                component: "A".into(),
                dependency: "Z".into()
            })
        );
        // A long chain, reversed: linear-ish and correct.
        let chain: Vec<Component> = (0..2_000)
            .map(|i| {
                if i == 1_999 {
                    comp(&format!("n{i}"), &[])
                } else {
                    comp(&format!("n{i}"), &[&format!("n{}", i + 1)])
                }
            })
            .collect();
        let order = dependency_order(&chain).expect("acyclic");
        assert_eq!(order.first(), Some(&1_999));
        assert_eq!(order.last(), Some(&0));
    }

    #[test]
    fn repair_prompt_lists_problems() {
        let text = repair_prompt(&[
            ValidationProblem::NoComponents,
            ValidationProblem::EmptySpecification,
        ]);
        assert!(text.contains("- There are no components"));
        assert!(text.contains("- The specification is empty."));
        // As the workflow calls it: with the problems already turned into strings.
        let strings: Vec<String> = vec!["x".to_string()];
        let from_strings = repair_prompt(&strings);
        assert!(from_strings.contains("- x\n"));
    }
}
