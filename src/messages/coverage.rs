//! Texts of the spec coverage check and of the open questions: the "spec coverage" check run's
//! conclusion, title, summary and text (within GitHub's output limits); the sections the bot
//! keeps in the spec PR's body and in the status comment, between hidden markers and replaced in
//! place; and the `/implement` reply while questions are open.

use crate::prompt::sanitize::{defuse_for_posting, one_line};
use crate::spec::{Finding, Severity, SpecCheck};

/// The check run's name.
pub const COVERAGE_CHECK: &str = "spec coverage";
/// GitHub's limit for a check run's output summary and text, in characters (kept here in bytes,
/// which is never fewer).
pub const CHECK_OUTPUT_MAX: usize = 65_535;
/// What the coverage section of a PR body may take (a PR body holds at most 65,536
/// characters, and the rest of the body needs room too).
const BODY_SECTION_MAX: usize = 20_000;
/// Rows listed in a table, and questions listed, before "… and n more".
const MAX_ROWS: usize = 100;
const MAX_QUESTIONS: usize = 20;

const QUESTIONS_START: &str = "<!-- specbot:open-questions -->";
const QUESTIONS_END: &str = "<!-- /specbot:open-questions -->";
const COVERAGE_START: &str = "<!-- specbot:coverage -->";
const COVERAGE_END: &str = "<!-- /specbot:coverage -->";
const STATUS_START: &str = "<!-- specbot:spec-status -->";
const STATUS_END: &str = "<!-- /specbot:spec-status -->";

/// What the "spec coverage" check run says about one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageReport {
    /// `success` or `failure`.
    pub conclusion: &'static str,
    pub title: String,
    pub summary: String,
    pub text: String,
}

/// The spec's live status line ("in review", "approved", "merged" …): kept in the check run and
/// the spec PR's body, never committed (a commit after an approval would dismiss it).
fn status_line(state: &str) -> String {
    format!("**Spec status:** {state}\n")
}

/// The spec PR's body with the spec's live status in its section, replaced in place.
pub fn with_spec_status(body: &str, state: &str) -> String {
    let section = format!("{STATUS_START}\n{}{STATUS_END}", status_line(state));
    with_section(body, STATUS_START, STATUS_END, Some(&section))
}

/// The check run for the spec file at `path` as checked (`None`: the commit has no such file),
/// for a spec whose live status is `state`.
pub fn coverage_report(check: Option<&SpecCheck>, path: &str, state: &str) -> CoverageReport {
    let file = format!("`{}`", one_line(path, 300).replace('`', "'"));
    let Some(check) = check else {
        return CoverageReport {
            conclusion: "failure",
            title: "No spec file on this commit".into(),
            summary: format!(
                "{}\n{file} is not in this commit, so no criterion can be covered. Restore it, or comment `/spec` on the feature issue to draft it again.",
                status_line(state)
            ),
            text: String::new(),
        };
    };
    let mut summary = status_line(state) + "\n" + &coverage_summary(check, &file);
    let questions = check.open_questions();
    if !questions.is_empty() {
        summary.push_str("\n### Open questions\n\n");
        summary.push_str(&checklist(&questions));
        summary.push_str(
            "\nThey block `/implement` until they are answered (they do not fail this check).\n",
        );
    }
    let mut text = String::from("### Findings\n\n");
    for f in &check.findings {
        text.push_str(&format!(
            "- {}: {}\n",
            tag(f),
            one_line(&f.to_string(), 2_000)
        ));
    }
    if check.findings.is_empty() {
        text.push_str("None.\n");
    }
    text.push_str("\n### Coverage\n\n");
    text.push_str(&check.coverage_table());
    CoverageReport {
        conclusion: if check.passes() { "success" } else { "failure" },
        title: coverage_title(check),
        summary: fit(&defuse_for_posting(&summary), CHECK_OUTPUT_MAX),
        text: fit(&defuse_for_posting(&text), CHECK_OUTPUT_MAX),
    }
}

fn tag(f: &Finding) -> &'static str {
    match f.severity() {
        Severity::Core => "core",
        Severity::Gap => "gap",
        Severity::Note => "note",
    }
}

/// One line: how the spec stands.
fn coverage_title(check: &SpecCheck) -> String {
    let total = check.coverage.len();
    let uncovered = check.uncovered().count();
    let questions = check.open_questions().len();
    let asked = match questions {
        0 => String::new(),
        1 => "; 1 open question".into(),
        n => format!("; {n} open questions"),
    };
    if check.core_unusable() {
        format!("The spec's core is unusable{asked}")
    } else if uncovered > 0 {
        format!("{uncovered} of {total} criteria not covered{asked}")
    } else {
        format!("All {total} criteria covered{asked}")
    }
}

/// How many criteria are covered, the table of those that are not, and what makes the core
/// unusable.
fn coverage_summary(check: &SpecCheck, file: &str) -> String {
    let total = check.coverage.len();
    let covered = total - check.uncovered().count();
    let mut out = format!(
        "**{covered} of {total}** acceptance criteria in {file} are covered by a component.\n"
    );
    let core: Vec<&Finding> = check
        .findings
        .iter()
        .filter(|f| f.severity() == Severity::Core)
        .collect();
    if !core.is_empty() {
        out.push_str("\n### The core is unusable\n\n");
        for f in core {
            out.push_str(&format!("- {f}\n"));
        }
    }
    let uncovered: Vec<_> = check.uncovered().collect();
    if !uncovered.is_empty() {
        out.push_str("\n### Not covered by any component\n\n| Criterion | Requirement | Criterion text |\n| --- | --- | --- |\n");
        for c in uncovered.iter().take(MAX_ROWS) {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                cell(&c.criterion),
                cell(&c.requirement),
                cell(&c.text)
            ));
        }
        if uncovered.len() > MAX_ROWS {
            out.push_str(&format!("\n… and {} more.\n", uncovered.len() - MAX_ROWS));
        }
        out.push_str("\nA component covers a criterion when its row of the `### Components` table under `## Traceability` cites the criterion's ID.\n");
    }
    out
}

fn cell(text: &str) -> String {
    one_line(text, 1_000).replace('|', "\\|")
}

/// The check run of a commit whose coverage could not be checked (the job failed for good):
/// red, saying why and how to check again, so that a required check never waits unexplained.
pub fn coverage_not_checked(error: &str) -> CoverageReport {
    CoverageReport {
        conclusion: "failure",
        title: "The coverage could not be checked".into(),
        summary: format!(
            "specbot stopped on: {}\n\n**Re-run** this check, or push a commit to the spec branch, to check again; `specbot check-spec <file>` checks the spec file on your machine.",
            defuse_for_posting(&one_line(error, 2_000))
        ),
        text: String::new(),
    }
}

/// `text` cut to at most `max` characters, on a line boundary where there is one, saying so.
fn fit(text: &str, max: usize) -> String {
    const CUT: &str = "\n\n… (cut here: GitHub shows at most 65,535 characters; `specbot check-spec` on the file prints everything)\n";
    super::limits::cut_to(text, max, CUT).into_owned()
}

/// The questions as an unticked checklist (the first ones, then how many more).
fn checklist(questions: &[String]) -> String {
    let mut out = String::new();
    for q in questions.iter().take(MAX_QUESTIONS) {
        out.push_str(&format!(
            "- [ ] {}\n",
            defuse_for_posting(&one_line(q, 2_000))
        ));
    }
    if questions.len() > MAX_QUESTIONS {
        out.push_str(&format!(
            "- … and {} more\n",
            questions.len() - MAX_QUESTIONS
        ));
    }
    out
}

/// How open questions are resolved: `/revise` with the answers (on the spec PR, when it is
/// still open), ticking or deleting them in the file.
fn how_to_resolve(pull: Option<u64>, spec_path: &str, file_ref: &str) -> String {
    let file = format!("`{}`", one_line(spec_path, 300).replace('`', "'"));
    let tick =
        format!("tick (`- [x]`) or delete them under `## Open questions` in {file} on {file_ref}");
    match pull {
        Some(pr) => format!(
            "Answer them with `/revise <your answers>` on #{pr} (the revision drops the questions it answers), or {tick}."
        ),
        None => format!("To resolve them, {tick}."),
    }
}

/// The open-questions section of the spec PR's body and the status comment, between its
/// markers: empty (only the markers) when there are none. `pull` is the spec PR (`None` in the
/// PR's own body).
pub fn open_questions_section(questions: &[String], pull: Option<u64>, spec_path: &str) -> String {
    if questions.is_empty() {
        return format!("{QUESTIONS_START}\n{QUESTIONS_END}");
    }
    let revise_on = match pull {
        Some(pr) => format!("on #{pr}"),
        None => "on this pull request".into(),
    };
    let file = format!("`{}`", one_line(spec_path, 300).replace('`', "'"));
    format!(
        "{QUESTIONS_START}\n**Open questions** (`/implement` waits until they are answered):\n\n{}\nAnswer them with `/revise <your answers>` {revise_on} (the revision drops the questions it answers), or tick (`- [x]`) or delete them under `## Open questions` in {file}. This list follows the file.\n{QUESTIONS_END}",
        checklist(questions)
    )
}

/// `body` with its open-questions section replaced in place (added at the end when missing).
pub fn with_open_questions(
    body: &str,
    questions: &[String],
    pull: Option<u64>,
    spec_path: &str,
) -> String {
    let section = open_questions_section(questions, pull, spec_path);
    with_section(body, QUESTIONS_START, QUESTIONS_END, Some(&section))
}

/// The spec PR's body with the coverage section: the report, when the check run could not be
/// created for want of the `checks: write` permission; removed (`None`) once it can.
pub fn with_coverage_section(body: &str, head: &str, report: Option<&CoverageReport>) -> String {
    let Some(report) = report else {
        return with_section(body, COVERAGE_START, COVERAGE_END, None);
    };
    let short: String = head.chars().take(7).collect();
    let inner = fit(
        &format!(
            "### Spec coverage\n\n**{}** at {short}.\n\n{}",
            defuse_for_posting(&report.title),
            report.summary
        ),
        BODY_SECTION_MAX,
    );
    let section = format!(
        "{COVERAGE_START}\n{}\n\nℹ️ This belongs in the \"{COVERAGE_CHECK}\" check, but this installation has not accepted the App's `checks: write` permission yet, so it is shown here. An owner of this account or organisation can accept the updated permissions under *Settings → GitHub Apps → Configure*.\n{COVERAGE_END}",
        inner.trim_end()
    );
    with_section(body, COVERAGE_START, COVERAGE_END, Some(&section))
}

/// `body` with the section between `start` and `end` replaced in place by `section` (which
/// holds both markers), added at the end when there is none, or removed when `section` is
/// `None`.
pub fn with_section(body: &str, start: &str, end: &str, section: Option<&str>) -> String {
    let found = body
        .find(start)
        .and_then(|s| body[s..].find(end).map(|e| (s, s + e + end.len())));
    match (found, section) {
        (Some((s, e)), Some(section)) => format!("{}{section}{}", &body[..s], &body[e..]),
        (Some((s, e)), None) => {
            format!("{}{}", body[..s].trim_end(), &body[e..])
        }
        (None, Some(section)) => format!("{}\n\n{section}", body.trim_end()),
        (None, None) => body.to_string(),
    }
}

/// `/implement` while the spec has open questions: they are listed, with how to resolve them.
/// `file_ref` names where the file is read (`the spec branch`, `` `main` ``).
pub fn questions_not_answered(
    comment_id: u64,
    questions: &[String],
    pull: Option<u64>,
    spec_path: &str,
    file_ref: &str,
) -> String {
    let count = match questions.len() {
        1 => "an open question".to_string(),
        n => format!("{n} open questions"),
    };
    super::with_marker(
        &super::reply_marker(comment_id),
        format!(
            "Not yet: the spec has {count}:\n\n{}\n{} Or comment `/implement --force` to go ahead anyway.",
            checklist(questions),
            how_to_resolve(pull, spec_path, file_ref)
        ),
    )
}

/// What a "not approved yet" reply adds when the spec also has open questions.
pub fn also_open_questions(
    questions: &[String],
    pull: Option<u64>,
    spec_path: &str,
    file_ref: &str,
) -> String {
    if questions.is_empty() {
        return String::new();
    }
    format!(
        "\n\nIt also has open questions, which `/implement` waits for too:\n\n{}\n{}",
        checklist(questions),
        how_to_resolve(pull, spec_path, file_ref)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "# T\n\n## Summary\nS\n\n## Requirements\n\n### REQ-1: R\n\n- **AC-1.1** WHEN a THE SYSTEM SHALL b\n- **AC-1.2** WHEN c THE SYSTEM SHALL d | e\n\n## Design\nD\n\n## Components\nC\n\n## Traceability\n\n### Components\n\n| Component | Covers | Touches | Tests |\n| --- | --- | --- | --- |\n| Store | [AC-1.1](#ac-1-1) | — | — |\n\n## Open questions\n\n- [ ] Which @team owns it?\n- [x] Settled already\n";

    #[test]
    fn the_check_run_names_what_is_not_covered_and_the_questions() {
        let check = crate::spec::check_spec_file(SPEC);
        let report = coverage_report(Some(&check), "specs/IMPLEMENT-7.md", "in review");
        assert_eq!(report.conclusion, "failure");
        insta::assert_snapshot!("coverage_title_red", report.title);
        insta::assert_snapshot!("coverage_summary_red", report.summary);
        let covered = SPEC.replace("[AC-1.1](#ac-1-1)", "AC-1.1, AC-1.2");
        let green = coverage_report(
            Some(&crate::spec::check_spec_file(&covered)),
            "x.md",
            "in review",
        );
        assert_eq!(green.conclusion, "success");
        assert_eq!(green.title, "All 2 criteria covered; 1 open question");
        let missing = coverage_report(None, "specs/IMPLEMENT-7.md", "in review");
        assert_eq!(missing.conclusion, "failure");
        assert!(
            missing
                .summary
                .contains("`specs/IMPLEMENT-7.md` is not in this commit")
        );
    }

    #[test]
    fn output_is_cut_within_githubs_limit_on_a_character_boundary() {
        let long = "é".repeat(40_000) + "\n" + &"ü".repeat(40_000);
        let cut = fit(&long, CHECK_OUTPUT_MAX);
        assert!(cut.chars().count() <= CHECK_OUTPUT_MAX);
        assert!(
            cut.ends_with("prints everything)\n"),
            "{}",
            &cut[cut.len() - 200..]
        );
        assert_eq!(fit("short", CHECK_OUTPUT_MAX), "short");
        let rows = SPEC.replace(
            "- **AC-1.2**",
            &(1..=3000)
                .map(|i| {
                    format!(
                        "- **AC-1.{}** WHEN x THE SYSTEM SHALL {}\n",
                        i + 2,
                        "y".repeat(50)
                    )
                })
                .collect::<String>(),
        );
        let report = coverage_report(
            Some(&crate::spec::check_spec_file(&rows)),
            "x.md",
            "in review",
        );
        assert!(
            report.text.chars().count() <= CHECK_OUTPUT_MAX,
            "{}",
            report.text.chars().count()
        );
        assert!(
            report.summary.contains("… and 2900 more."),
            "{}",
            report.summary
        );
    }

    #[test]
    fn sections_are_replaced_in_place_never_duplicated() {
        let body = "Refs #7\n\nIntro.\n\n<!-- specbot:open-questions -->\n<!-- /specbot:open-questions -->\n\nReview it.";
        let questions = vec!["Who owns it?".to_string()];
        let once = with_open_questions(body, &questions, None, "specs/IMPLEMENT-7.md");
        let twice = with_open_questions(&once, &questions, None, "specs/IMPLEMENT-7.md");
        assert_eq!(once, twice);
        assert_eq!(once.matches(QUESTIONS_START).count(), 1);
        assert!(once.ends_with("Review it."), "{once}");
        insta::assert_snapshot!("pull_body_open_questions", once);
        assert_eq!(
            with_open_questions(&once, &[], None, "specs/IMPLEMENT-7.md"),
            body
        );

        let report = coverage_report(None, "specs/IMPLEMENT-7.md", "in review");
        let with = with_coverage_section(body, "0123456789", Some(&report));
        let again = with_coverage_section(&with, "0123456789", Some(&report));
        assert_eq!(with, again);
        assert_eq!(with.matches(COVERAGE_START).count(), 1);
        insta::assert_snapshot!("pull_body_coverage_fallback", &with[body.len()..]);
        assert_eq!(with_coverage_section(&with, "0123456789", None), body);
    }

    #[test]
    fn implement_waits_for_open_questions() {
        let questions = vec!["Who owns it?".to_string(), "Which region?".to_string()];
        insta::assert_snapshot!(
            "implement_open_questions",
            questions_not_answered(
                17,
                &questions,
                Some(8),
                "specs/IMPLEMENT-7.md",
                "the spec branch"
            )
        );
        let merged =
            questions_not_answered(17, &questions[..1], None, "specs/IMPLEMENT-7.md", "`main`");
        assert!(
            merged.contains("an open question") && !merged.contains("/revise"),
            "{merged}"
        );
        assert!(merged.contains("on `main`"), "{merged}");
        assert_eq!(
            also_open_questions(&[], Some(8), "x.md", "the spec branch"),
            ""
        );
    }
}
