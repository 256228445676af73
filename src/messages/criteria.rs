//! The implementation PR's "Acceptance criteria" section and the status comment's tally: every
//! criterion of the scope (read from the spec file) held against what the engineer reported in
//! `finish`. The model's report is its word, never trusted: a criterion of the scope it did not
//! report, or reported not done, is listed as not done; an ID outside the scope is flagged and
//! not counted; a file it names that the change did not touch is marked. A spec without IDs has
//! no scope, and its free-text criteria are shown as the model wrote them.

use std::collections::BTreeSet;

use crate::agent::{CriterionMet, CriterionStatus};
use crate::spec::Criterion;

/// The section stops adding rows past this many characters (a PR body holds 65,536); the
/// criteria left are then listed by ID and status.
const MAX_SECTION_CHARS: usize = 24_000;
/// Files, and tests, shown per criterion.
const MAX_REFS_SHOWN: usize = 10;
/// Reports outside the scope listed.
const MAX_FLAGGED: usize = 20;

/// How many criteria of the scope the engineer reports done, and which are not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CriteriaTally {
    pub done: usize,
    pub total: usize,
    /// IDs not reported, or reported not done, in the spec's order.
    pub not_done: Vec<String>,
}

/// The first report on `id`.
fn report_on<'a>(id: &str, reported: &'a [CriterionMet]) -> Option<&'a CriterionMet> {
    reported.iter().find(|r| r.id == id)
}

fn is_done(report: Option<&CriterionMet>) -> bool {
    report.is_some_and(|r| r.status == CriterionStatus::Done)
}

/// The tally over the scope; `None` for a spec without IDs (nothing to count against).
pub fn criteria_tally(scope: &[Criterion], reported: &[CriterionMet]) -> Option<CriteriaTally> {
    if scope.is_empty() {
        return None;
    }
    let not_done: Vec<String> = scope
        .iter()
        .filter(|c| !is_done(report_on(&c.id, reported)))
        .map(|c| c.id.clone())
        .collect();
    Some(CriteriaTally {
        done: scope.len() - not_done.len(),
        total: scope.len(),
        not_done,
    })
}

/// "1 of 2 criteria done" (and which are not), for the status comment.
pub(super) fn tally_line(t: &CriteriaTally) -> String {
    let noun = if t.total == 1 {
        "criterion"
    } else {
        "criteria"
    };
    let mut out = format!("{} of {} {noun} done", t.done, t.total);
    if !t.not_done.is_empty() {
        let shown: Vec<&str> = t.not_done.iter().take(20).map(String::as_str).collect();
        let more = t.not_done.len() - shown.len();
        out.push_str(&format!("; not done: {}", shown.join(", ")));
        if more > 0 {
            out.push_str(&format!(" and {more} more"));
        }
    }
    out
}

/// Text for one table cell: one line of at most `max` characters, defused, pipes escaped.
fn cell(text: &str, max: usize) -> String {
    let line: String = super::one_line(text).chars().take(max).collect();
    crate::prompt::sanitize::defuse_for_posting(&line).replace('|', "\\|")
}

/// A path as the model may write it (`./src/a.rs`, `` `src/a.rs:12` ``), as the change names it.
fn plain_path(path: &str) -> &str {
    let p = path.trim().trim_matches('`').trim();
    let p = p.trim_start_matches("./").trim_start_matches('/');
    match p.rsplit_once(':') {
        Some((file, line)) if !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) => file,
        _ => p,
    }
}

/// The files a criterion names, each marked when the change did not touch it.
fn files_cell(files: &[String], changed: &BTreeSet<&str>) -> String {
    refs_cell(files, |f| {
        let shown = format!("`{}`", cell(plain_path(f), 120).replace('`', "'"));
        if changed.contains(plain_path(f)) {
            shown
        } else {
            format!("{shown} ⚠️ not among the files changed")
        }
    })
}

fn refs_cell(items: &[String], show: impl Fn(&String) -> String) -> String {
    if items.is_empty() {
        return "—".into();
    }
    let mut out: Vec<String> = items.iter().take(MAX_REFS_SHOWN).map(show).collect();
    if items.len() > MAX_REFS_SHOWN {
        out.push(format!("… {} more", items.len() - MAX_REFS_SHOWN));
    }
    out.join("<br>")
}

fn status_cell(report: Option<&CriterionMet>) -> String {
    match report {
        None => "❌ **not done**: the engineer did not report it".into(),
        Some(r) if r.status == CriterionStatus::NotDone => {
            format!("❌ **not done**: {}", cell(&r.reason, 300))
        }
        Some(_) => "✅ done".into(),
    }
}

/// One row: the criterion, its status, its files, its tests, how it is met.
fn row(criterion: &str, report: Option<&CriterionMet>, changed: &BTreeSet<&str>) -> String {
    let (files, tests, how) = match report {
        Some(r) => (
            files_cell(&r.files, changed),
            refs_cell(&r.tests, |t| cell(t, 120)),
            if r.how_met.trim().is_empty() {
                "—".into()
            } else {
                cell(&r.how_met, 300)
            },
        ),
        None => ("—".into(), "—".into(), "—".into()),
    };
    format!(
        "| {criterion} | {} | {files} | {tests} | {how} |\n",
        status_cell(report)
    )
}

const TABLE_HEAD: &str =
    "| Criterion | Status | Files | Tests | How it is met |\n| --- | --- | --- | --- | --- |\n";

/// The PR body's "Acceptance criteria" section (empty when there is nothing to show).
/// `files` are the change's (path, deleted).
pub fn criteria_section(
    scope: &[Criterion],
    reported: &[CriterionMet],
    files: &[(String, bool)],
) -> String {
    let changed: BTreeSet<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    if scope.is_empty() {
        return free_text_section(reported, &changed);
    }
    let Some(tally) = criteria_tally(scope, reported) else {
        return String::new();
    };
    let mut out = format!(
        "## Acceptance criteria\n\n**{}**, as the engineer reports them. The files and tests are \
         its words too; a file it names that this change does not touch is marked. Whether tests \
         ran and pass is said under \"Verification\", from specbot's own records.\n\n{TABLE_HEAD}",
        tally_line(&CriteriaTally {
            not_done: Vec::new(),
            ..tally.clone()
        })
    );
    let mut left = Vec::new();
    for c in scope {
        let report = report_on(&c.id, reported);
        if out.len() > MAX_SECTION_CHARS {
            let status = if is_done(report) { "done" } else { "not done" };
            left.push(format!("{} ({status})", cell(&c.id, 20)));
            continue;
        }
        let criterion = format!("**{}** {}", cell(&c.id, 20), cell(&c.text, 200));
        out.push_str(&row(&criterion, report, &changed));
    }
    out.push('\n');
    if !left.is_empty() {
        out.push_str(&format!(
            "{} more criteria, not shown for space: {}.\n\n",
            left.len(),
            left.join(", ")
        ));
    }
    out.push_str(&outside_scope(scope, reported));
    out
}

/// Reports the scope does not explain: IDs that are not criteria of it, reports without an ID,
/// and second reports on one ID.
fn outside_scope(scope: &[Criterion], reported: &[CriterionMet]) -> String {
    let ids: BTreeSet<&str> = scope.iter().map(|c| c.id.as_str()).collect();
    let mut seen = BTreeSet::new();
    let mut flagged = Vec::new();
    for r in reported {
        let how = cell(&r.how_met, 200);
        if r.id.is_empty() {
            flagged.push(format!("- \"{}\" (no ID): {how}", cell(&r.criterion, 200)));
        } else if !ids.contains(r.id.as_str()) {
            flagged.push(format!(
                "- `{}`, not a criterion of this scope: {how}",
                cell(&r.id, 40).replace('`', "'")
            ));
        } else if !seen.insert(r.id.as_str()) {
            flagged.push(format!(
                "- `{}` again (only its first report is in the table): {how}",
                r.id
            ));
        }
    }
    if flagged.is_empty() {
        return String::new();
    }
    let more = flagged.len().saturating_sub(MAX_FLAGGED);
    flagged.truncate(MAX_FLAGGED);
    let mut out = String::from(
        "**Flagged:** the engineer also reported these, which the table does not count:\n\n",
    );
    out.push_str(&flagged.join("\n"));
    if more > 0 {
        out.push_str(&format!("\n- … and {more} more"));
    }
    out.push_str("\n\n");
    out
}

/// A spec without IDs: the criteria as the model wrote them. Reports of the old kind (done, no
/// files, no tests) keep the old two-column table.
fn free_text_section(reported: &[CriterionMet], changed: &BTreeSet<&str>) -> String {
    if reported.is_empty() {
        return String::new();
    }
    let plain = reported
        .iter()
        .all(|r| r.status == CriterionStatus::Done && r.files.is_empty() && r.tests.is_empty());
    let mut out = String::from("## Acceptance criteria\n\n");
    out.push_str(if plain {
        "| Criterion | How it is met |\n| --- | --- |\n"
    } else {
        TABLE_HEAD
    });
    for r in reported.iter().take(50) {
        let criterion = match (r.id.as_str(), r.criterion.trim()) {
            ("", text) => cell(text, 300),
            (id, "") => format!("**{}**", cell(id, 20)),
            (id, text) => format!("**{}** {}", cell(id, 20), cell(text, 300)),
        };
        if plain {
            out.push_str(&format!("| {criterion} | {} |\n", cell(&r.how_met, 300)));
        } else {
            out.push_str(&row(&criterion, Some(r), changed));
        }
    }
    if reported.len() > 50 {
        out.push_str(&format!("\n… and {} more.\n", reported.len() - 50));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn criterion(id: &str, text: &str) -> Criterion {
        Criterion {
            id: id.into(),
            text: text.into(),
        }
    }

    fn scope() -> Vec<Criterion> {
        vec![
            criterion(
                "AC-1.1",
                "WHEN the user picks dark THE SYSTEM SHALL apply it",
            ),
            criterion(
                "AC-1.2",
                "WHEN the page reloads THE SYSTEM SHALL keep the theme",
            ),
            criterion("AC-2.1", "WHEN clicked THE SYSTEM SHALL cycle | themes"),
        ]
    }

    fn done(id: &str, files: &[&str], tests: &[&str]) -> CriterionMet {
        CriterionMet {
            id: id.into(),
            how_met: format!("{id} is met by the change"),
            files: files.iter().map(|f| f.to_string()).collect(),
            tests: tests.iter().map(|t| t.to_string()).collect(),
            ..CriterionMet::default()
        }
    }

    fn changed() -> Vec<(String, bool)> {
        vec![
            ("src/theme.rs".into(), false),
            ("tests/theme.rs".into(), false),
        ]
    }

    #[test]
    fn every_criterion_of_the_scope_has_a_row() {
        let reported = vec![
            done(
                "AC-1.1",
                &["./src/theme.rs", "src/other.rs"],
                &["tests/theme.rs::dark"],
            ),
            CriterionMet {
                status: CriterionStatus::NotDone,
                reason: "needs the profile API".into(),
                ..done("AC-2.1", &[], &[])
            },
            done("AC-9.9", &["src/theme.rs"], &[]),
            CriterionMet {
                criterion: "The toggle persists.".into(),
                how_met: "saved in localStorage".into(),
                ..CriterionMet::default()
            },
            done("AC-1.1", &[], &[]),
        ];
        insta::assert_snapshot!(
            "criteria_by_id",
            criteria_section(&scope(), &reported, &changed())
        );
        assert_eq!(
            criteria_tally(&scope(), &reported),
            Some(CriteriaTally {
                done: 1,
                total: 3,
                not_done: vec!["AC-1.2".into(), "AC-2.1".into()],
            })
        );
    }

    #[test]
    fn a_spec_without_ids_keeps_the_free_text_table() {
        let old = vec![CriterionMet {
            criterion: "Tokens expire | after 1 h".into(),
            how_met: "`expire()` and `tests/store.rs`".into(),
            ..CriterionMet::default()
        }];
        insta::assert_snapshot!(
            "criteria_free_text",
            criteria_section(&[], &old, &changed())
        );
        assert_eq!(criteria_tally(&[], &old), None);
        assert_eq!(criteria_section(&[], &[], &changed()), "");
        // Files and statuses without IDs get the full table, files still held to the change.
        let richer = vec![CriterionMet {
            criterion: "Tokens expire".into(),
            status: CriterionStatus::NotDone,
            reason: "no clock in tests".into(),
            files: vec!["src/clock.rs".into()],
            ..CriterionMet::default()
        }];
        let section = criteria_section(&[], &richer, &changed());
        assert!(section.contains("| Tokens expire | ❌ **not done**: no clock in tests | `src/clock.rs` ⚠️ not among the files changed |"), "{section}");
    }

    #[test]
    fn a_long_scope_stays_within_the_body_and_names_what_it_left_out() {
        let long = "x".repeat(5_000);
        let scope: Vec<Criterion> = (1..=150)
            .map(|i| criterion(&format!("AC-{i}.1"), &long))
            .collect();
        let reported: Vec<CriterionMet> = (1..=150)
            .map(|i| CriterionMet {
                how_met: long.clone(),
                files: vec![long.clone(); 20],
                tests: vec![long.clone(); 20],
                ..done(&format!("AC-{i}.1"), &[], &[])
            })
            .collect();
        let section = criteria_section(&scope, &reported, &changed());
        assert!(section.chars().count() < 50_000, "{}", section.len());
        assert!(section.contains("more criteria, not shown for space"));
        assert!(section.contains("AC-150.1 (done)"));
    }

    /// The whole PR body: the table between the summary and the files, the verification after.
    #[test]
    fn the_pull_request_body_by_id() {
        use crate::agent::{RunKind, TestChoice};
        use crate::messages::verification::tests::run;
        let body = crate::messages::implement_pull_body(&crate::messages::ImplementPull {
            issue: 3,
            spec_issue: 1,
            spec_path: "specs/IMPLEMENT-1.md".into(),
            spec_ref: "main".into(),
            component: Some("Theme toggle".into()),
            summary: "Adds the theme toggle and its tests.".into(),
            scope: scope()[..2].to_vec(),
            criteria: vec![
                done("AC-1.1", &["src/theme.rs"], &["tests/theme.rs"]),
                done("AC-2.1", &["src/theme.rs"], &[]),
            ],
            files: changed(),
            model: "claude-sonnet-4-5".into(),
            steps: 7,
            tokens: 15000,
            cost_usd: Some(0.15),
            verification: Some(crate::messages::Verification {
                runs: vec![run(RunKind::Test, 0, "test result: ok. 2 passed\n")],
                test: Some(TestChoice {
                    command: "sh test.sh".into(),
                    detected: None,
                }),
                tests_pass: Some(true),
                not_run: None,
            }),
            ..Default::default()
        });
        insta::assert_snapshot!("implement_pull_body_by_id", body);
        let status = crate::messages::implement_status(&crate::messages::ImplementStatus {
            issue: 3,
            stage: crate::messages::ImplementStage::Done,
            component: Some("Theme toggle".into()),
            pr: Some((4, "https://github.com/acme/widgets/pull/4".into())),
            criteria: criteria_tally(&scope()[..2], &[done("AC-1.1", &[], &[])]),
            ..Default::default()
        });
        insta::assert_snapshot!("implement_done_by_id", status);
    }

    #[test]
    fn the_tally_reads_as_a_sentence() {
        let t = criteria_tally(&scope(), &[done("AC-1.1", &[], &[])]).expect("a scope");
        assert_eq!(
            tally_line(&t),
            "1 of 3 criteria done; not done: AC-1.2, AC-2.1"
        );
        let one = criteria_tally(&scope()[..1], &[done("AC-1.1", &[], &[])]).expect("a scope");
        assert_eq!(tally_line(&one), "1 of 1 criterion done");
    }
}
