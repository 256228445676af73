//! Checking a committed spec file: one pure function, [`check_spec_file`], over the markdown as
//! it is on the branch (the bot's own output or a person's edit of it), returning typed
//! [`Finding`]s and the coverage of every criterion. The offline `specbot check-spec` and the
//! spec flow's gap list run this same code.
//!
//! What it reads: the level-2 headings (the RFC template's sections); under `## Requirements`,
//! `REQ-n` headings and `**AC-n.m**` bullets; under `## Non-functional requirements`, `**NFR-n**`
//! bullets; the `### Components` table under `## Traceability` (component → covers); the
//! `## Test plan` table (test → criteria); the `## Open questions` bullets.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;

use super::parse::{heading, heading_words, lines_outside_fences};

/// The sections of the template: (name, heading keywords, core).
pub const TEMPLATE_SECTIONS: &[(&str, &[&str], bool)] = &[
    ("Summary", &["summary", "overview", "tl;dr"], true),
    ("Context", &["context", "motivation", "background"], false),
    ("Goals", &["goals"], false),
    ("Requirements", &["requirements"], true),
    (
        "Design",
        &["design", "proposed solution", "architecture", "approach"],
        true,
    ),
    ("Components", &["component"], true),
    ("Alternatives considered", &["alternative"], false),
    (
        "Cross-cutting concerns",
        &["cross-cutting", "concerns", "security"],
        false,
    ),
    ("Rollout", &["rollout", "migration", "deployment"], false),
    ("Test plan", &["test plan", "testing"], false),
    ("Traceability", &["traceability"], false),
    ("Open questions", &["open questions", "unresolved"], false),
];

/// Words that promise a quality without measuring it.
pub const VAGUE_WORDS: &[&str] = &[
    "fast",
    "quick",
    "quickly",
    "robust",
    "user-friendly",
    "scalable",
    "intuitive",
    "efficient",
    "seamless",
    "seamlessly",
    "performant",
    "responsive",
    "easy",
    "simple",
    "flexible",
    "as soon as possible",
    "reasonable",
];

/// One thing a spec file check found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Finding {
    #[error("The \"{section}\" section is missing.")]
    MissingSection { section: String, core: bool },
    #[error("There are no requirements with IDs (`### REQ-1: …` under `## Requirements`).")]
    NoRequirements,
    #[error("The ID {id} is used more than once.")]
    DuplicateId { id: String },
    #[error("{id} has no acceptance criteria.")]
    RequirementWithoutCriteria { id: String },
    #[error("{id} is not covered by any component.")]
    UncoveredCriterion { id: String },
    #[error("The component \"{component}\" covers no criterion.")]
    ComponentCoversNothing { component: String },
    #[error("{place} cites {id}, which is not a criterion of this spec.")]
    UnknownId { id: String, place: String },
    #[error("The test {test} cites no criterion.")]
    TestWithoutCriterion { test: String },
    #[error("{id} is neither EARS (\"WHEN … THE SYSTEM SHALL …\") nor Given/When/Then.")]
    NotTestable { id: String },
    #[error("{id} says \"{word}\" without a number that measures it.")]
    VagueWord { id: String, word: String },
    #[error("{id} has no measurable threshold.")]
    NoThreshold { id: String },
    #[error("Open question: {text}")]
    OpenQuestion { text: String },
}

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Listed, blocks nothing.
    Note,
    /// A gap: said in the PR, the spec still lands.
    Gap,
    /// The core (summary, design, requirements, components) is unusable.
    Core,
}

impl Finding {
    pub fn severity(&self) -> Severity {
        match self {
            Finding::MissingSection { core: true, .. } | Finding::NoRequirements => Severity::Core,
            Finding::OpenQuestion { .. } => Severity::Note,
            _ => Severity::Gap,
        }
    }
}

/// One criterion and what covers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    pub criterion: String,
    /// The criterion's wording.
    pub text: String,
    pub requirement: String,
    pub components: Vec<String>,
    pub tests: Vec<String>,
}

/// The result of [`check_spec_file`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpecCheck {
    pub findings: Vec<Finding>,
    pub coverage: Vec<Coverage>,
}

impl SpecCheck {
    /// Every criterion covered and the core usable.
    pub fn passes(&self) -> bool {
        !self.findings.iter().any(|f| {
            f.severity() == Severity::Core || matches!(f, Finding::UncoveredCriterion { .. })
        })
    }

    /// The core is unusable.
    pub fn core_unusable(&self) -> bool {
        self.findings.iter().any(|f| f.severity() == Severity::Core)
    }

    /// The gaps, as sentences.
    pub fn gaps(&self) -> Vec<String> {
        self.findings
            .iter()
            .filter(|f| f.severity() == Severity::Gap)
            .map(ToString::to_string)
            .collect()
    }

    /// The criteria no component covers.
    pub fn uncovered(&self) -> impl Iterator<Item = &Coverage> {
        self.coverage.iter().filter(|c| c.components.is_empty())
    }

    /// The open questions (the unticked items of `## Open questions`), in the file's order.
    pub fn open_questions(&self) -> Vec<String> {
        self.findings
            .iter()
            .filter_map(|f| match f {
                Finding::OpenQuestion { text } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    /// The findings and the coverage table, as `specbot check-spec` prints them.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let tag = match f.severity() {
                Severity::Core => "core",
                Severity::Gap => "gap",
                Severity::Note => "note",
            };
            out.push_str(&format!("{tag}: {f}\n"));
        }
        out.push('\n');
        out.push_str(&self.coverage_table());
        let covered = self.coverage.len() - self.uncovered().count();
        out.push_str(&format!(
            "\n{covered} of {} criteria covered; {}\n",
            self.coverage.len(),
            if self.passes() { "passes" } else { "fails" }
        ));
        out
    }

    /// Every criterion with its requirement, components and tests, as a markdown table.
    pub fn coverage_table(&self) -> String {
        let mut out = String::from(
            "| Criterion | Requirement | Components | Tests |\n| --- | --- | --- | --- |\n",
        );
        for c in &self.coverage {
            let or_dash = |v: &[String]| {
                if v.is_empty() {
                    "—".to_string()
                } else {
                    v.join(", ")
                }
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                c.criterion,
                c.requirement,
                or_dash(&c.components),
                or_dash(&c.tests)
            ));
        }
        out
    }
}

static REQ: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bREQ-\d{1,4}\b").expect("static regex"));
static AC_BULLET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[-*+]\s+(?:<a id=[^>]{0,80}></a>)?\*\*(AC-\d{1,4}\.\d{1,4})\*\*\s*(.*)$")
        .expect("static regex")
});
static NFR_BULLET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[-*+]\s+(?:<a id=[^>]{0,80}></a>)?\*\*(NFR-\d{1,4})\*\*\s*(.*)$")
        .expect("static regex")
});
static AC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bAC-\d{1,4}\.\d{1,4}\b").expect("static regex"));
static NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\d").expect("static regex"));

/// The document read into its parts.
#[derive(Default)]
pub(super) struct Parsed {
    sections: Vec<String>,
    /// (requirement ID, criteria (ID, text)).
    pub(super) requirements: Vec<(String, Vec<(String, String)>)>,
    nfrs: Vec<(String, String)>,
    /// (component, cited IDs).
    pub(super) components: Vec<(String, Vec<String>)>,
    /// (test, cited IDs).
    tests: Vec<(String, Vec<String>)>,
    open_questions: Vec<String>,
}

/// The cells of a table row, without the header or separator rows.
fn row_cells(line: &str) -> Option<Vec<String>> {
    let t = line.trim();
    if !t.starts_with('|') || t.starts_with("| ---") || t.starts_with("|---") {
        return None;
    }
    let inner = t.trim_start_matches('|').trim_end_matches('|');
    Some(
        inner
            .split(" | ")
            .map(|c| c.trim().replace("\\|", "|"))
            .collect(),
    )
}

pub(super) fn parse(file: &str) -> Parsed {
    let mut p = Parsed::default();
    let mut section = String::new();
    let mut sub = String::new();
    for line in lines_outside_fences(file) {
        if let Some((level, text)) = heading(line) {
            let words = heading_words(text);
            if level <= 2 {
                section = words.clone();
                sub.clear();
                if level == 2 {
                    p.sections.push(words);
                }
            } else {
                sub = words;
                if section == "requirements"
                    && let Some(id) = REQ.find(text)
                {
                    p.requirements.push((id.as_str().to_string(), Vec::new()));
                }
            }
            continue;
        }
        let t = line.trim();
        match section.as_str() {
            "requirements" => {
                if let Some(c) = AC_BULLET.captures(t)
                    && let Some(r) = p.requirements.last_mut()
                {
                    r.1.push((c[1].to_string(), c[2].to_string()));
                }
            }
            "non-functional requirements" => {
                if let Some(c) = NFR_BULLET.captures(t) {
                    p.nfrs.push((c[1].to_string(), c[2].to_string()));
                }
            }
            "traceability" if sub == "components" => {
                if let Some(cells) = row_cells(t).filter(|c| c.len() >= 2 && c[0] != "Component") {
                    let ids = AC
                        .find_iter(&cells[1])
                        .map(|m| m.as_str().to_string())
                        .collect();
                    p.components.push((cells[0].clone(), ids));
                }
            }
            "test plan" => {
                if let Some(cells) = row_cells(t).filter(|c| c.len() >= 2 && c[0] != "Test") {
                    let ids = cells[1..]
                        .iter()
                        .flat_map(|c| {
                            AC.find_iter(c)
                                .map(|m| m.as_str().to_string())
                                .collect::<Vec<_>>()
                        })
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    p.tests.push((cells[0].clone(), ids));
                }
            }
            "open questions" => {
                if let Some(question) = open_question(t) {
                    p.open_questions.push(question.to_string());
                }
            }
            _ => {}
        }
    }
    p
}

/// An open question: a bullet of `## Open questions` that is not ticked (`- [x]` or `- [X]`
/// resolves it, as GitHub renders both as a ticked box).
fn open_question(line: &str) -> Option<&str> {
    let item = line.strip_prefix(['-', '*', '+'])?.trim();
    let lower = item.get(..3).map(str::to_ascii_lowercase);
    if lower.as_deref() == Some("[x]") {
        return None;
    }
    let item = item.strip_prefix("[ ]").unwrap_or(item).trim();
    (!item.is_empty()).then_some(item)
}

/// Whether a criterion is in EARS or Given/When/Then form.
fn testable(text: &str) -> bool {
    let l = text.to_lowercase();
    l.contains(" shall ") || (l.contains("given ") && l.contains("when ") && l.contains("then "))
}

/// The first vague word in a text that has no number in it.
fn vague(text: &str) -> Option<&'static str> {
    if NUMBER.is_match(text) {
        return None;
    }
    let l = format!(" {} ", text.to_lowercase());
    VAGUE_WORDS.iter().copied().find(|w| {
        l.match_indices(w).any(|(i, _)| {
            let before = l[..i].chars().last().is_none_or(|c| !c.is_alphanumeric());
            let after = l[i + w.len()..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric() && c != '-');
            before && after
        })
    })
}

/// Check a committed spec file (see the module docs).
pub fn check_spec_file(file: &str) -> SpecCheck {
    let p = parse(file);
    let mut findings = Vec::new();
    for (name, keywords, core) in TEMPLATE_SECTIONS {
        if !p
            .sections
            .iter()
            .any(|h| keywords.iter().any(|k| h.contains(k)))
        {
            findings.push(Finding::MissingSection {
                section: (*name).to_string(),
                core: *core,
            });
        }
    }
    if p.requirements.is_empty() {
        findings.push(Finding::NoRequirements);
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let all_ids = p
        .requirements
        .iter()
        .flat_map(|(r, cs)| std::iter::once(r.as_str()).chain(cs.iter().map(|c| c.0.as_str())))
        .chain(p.nfrs.iter().map(|n| n.0.as_str()));
    for id in all_ids {
        *seen.entry(id).or_insert(0) += 1;
    }
    for (id, n) in &seen {
        if *n > 1 {
            findings.push(Finding::DuplicateId {
                id: (*id).to_string(),
            });
        }
    }
    let criteria: BTreeSet<&str> = p
        .requirements
        .iter()
        .flat_map(|(_, cs)| cs.iter().map(|c| c.0.as_str()))
        .collect();
    for (id, cs) in &p.requirements {
        if cs.is_empty() {
            findings.push(Finding::RequirementWithoutCriteria { id: id.clone() });
        }
        for (cid, text) in cs {
            if !testable(text) {
                findings.push(Finding::NotTestable { id: cid.clone() });
            }
            if let Some(word) = vague(text) {
                findings.push(Finding::VagueWord {
                    id: cid.clone(),
                    word: word.into(),
                });
            }
        }
    }
    for (id, text) in &p.nfrs {
        let threshold = text.rsplit_once("Threshold:").map(|t| t.1).unwrap_or(text);
        if !NUMBER.is_match(threshold) {
            findings.push(Finding::NoThreshold { id: id.clone() });
        } else if let Some(word) = vague(&text.replace(threshold, "")) {
            findings.push(Finding::VagueWord {
                id: id.clone(),
                word: word.into(),
            });
        }
    }
    let coverage = coverage(&p, &mut findings);
    references(&p, &criteria, &mut findings);
    findings.extend(
        p.open_questions
            .into_iter()
            .filter(|q| !q.eq_ignore_ascii_case("none."))
            .map(|text| Finding::OpenQuestion { text }),
    );
    SpecCheck { findings, coverage }
}

/// Each criterion with the components and tests that cite it; an uncovered one is a finding.
fn coverage(p: &Parsed, findings: &mut Vec<Finding>) -> Vec<Coverage> {
    let mut coverage = Vec::new();
    for (rid, cs) in &p.requirements {
        for (cid, text) in cs {
            let components: Vec<String> = p
                .components
                .iter()
                .filter(|(_, ids)| ids.contains(cid))
                .map(|(c, _)| c.clone())
                .collect();
            let tests = p
                .tests
                .iter()
                .filter(|(_, ids)| ids.contains(cid))
                .map(|(t, _)| t.clone())
                .collect();
            if components.is_empty() {
                findings.push(Finding::UncoveredCriterion { id: cid.clone() });
            }
            coverage.push(Coverage {
                criterion: cid.clone(),
                text: text.clone(),
                requirement: rid.clone(),
                components,
                tests,
            });
        }
    }
    coverage
}

/// Components that cover nothing, tests that cite nothing, and IDs that name no criterion.
fn references(p: &Parsed, criteria: &BTreeSet<&str>, findings: &mut Vec<Finding>) {
    for (component, ids) in &p.components {
        if ids.is_empty() {
            findings.push(Finding::ComponentCoversNothing {
                component: component.clone(),
            });
        }
        for id in ids.iter().filter(|id| !criteria.contains(id.as_str())) {
            findings.push(Finding::UnknownId {
                id: id.clone(),
                place: format!("The component \"{component}\""),
            });
        }
    }
    for (test, ids) in &p.tests {
        if ids.is_empty() {
            findings.push(Finding::TestWithoutCriterion { test: test.clone() });
        }
        for id in ids.iter().filter(|id| !criteria.contains(id.as_str())) {
            findings.push(Finding::UnknownId {
                id: id.clone(),
                place: format!("The test {test}"),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_questions_are_the_unticked_items_of_their_section_only() {
        let file = "## Open questions\n\n- [ ] Who owns it?\n- [x] Settled.\n- [X] Settled too.\n* Which region?\n- [ ] What about [x] here?\nNone.\n\n## Noticed injection attempts\n\n- The issue said to add a question that stops everything.\n";
        assert_eq!(
            check_spec_file(file).open_questions(),
            ["Who owns it?", "Which region?", "What about [x] here?"]
        );
    }
}
