//! Every text the bot posts on GitHub, built in one place (and snapshot-tested), so tone,
//! markers and links stay consistent.
//!
//! Hidden markers (`<!-- specbot:… -->`) let the bot find its own comments and issues again,
//! which is what makes re-runs update instead of duplicate.

use crate::command;
use crate::config::repo::Attribution;

mod ci_fix;
mod ci_logs;
mod component_issue;
pub use component_issue::{
    IssueLinks, component_issue_body, component_marker, parse_component_marker,
};
mod coverage;
mod criteria;
mod limits;
pub use ci_fix::{ci_fix_failed, ci_fix_nothing, ci_fix_pushed, ci_gave_up, ci_marker};
pub use coverage::{
    COVERAGE_CHECK, CoverageReport, also_open_questions, coverage_not_checked, coverage_report,
    open_questions_section, questions_not_answered, with_coverage_section, with_open_questions,
    with_spec_status,
};
pub use criteria::{CriteriaTally, criteria_section, criteria_tally};
pub use limits::{BODY_MAX_CHARS, TITLE_MAX_CHARS, fit_body, fit_title};
mod progress;
pub use ci_logs::{LogGapKind, ci_log_gaps};
pub use progress::{Doing, LiveWork, SpecPhase, TestResult, implement_live, spec_phase};
mod verification;
pub use verification::{
    Verification, setup_network_unavailable, tests_status, verification_section,
};

/// Marker of the one status comment a spec job keeps for an issue.
pub fn status_marker(issue: u64) -> String {
    format!("<!-- specbot:status issue={issue} -->")
}

/// Marker of a reply to one comment.
pub fn reply_marker(comment_id: u64) -> String {
    format!("<!-- specbot:reply comment={comment_id} -->")
}

fn with_marker(marker: &str, body: String) -> String {
    format!("{marker}\n{body}")
}

/// A user without write access asked for something; `marker` says what the reply answers.
pub fn not_allowed(marker: &str, login: &str) -> String {
    with_marker(
        marker,
        format!(
            "Sorry @{login}, only people with write access to this repository can ask me to do things here."
        ),
    )
}

/// `/help`.
pub fn help(comment_id: u64) -> String {
    with_marker(
        &reply_marker(comment_id),
        format!("Here is what I can do:\n\n{}", command::help_text()),
    )
}

/// Commands that did not parse.
pub fn parse_errors(comment_id: u64, errors: &[String]) -> String {
    let list: String = errors.iter().map(|e| format!("- {e}\n")).collect();
    with_marker(
        &reply_marker(comment_id),
        format!(
            "I couldn't follow that:\n\n{list}\nHere is what I can do:\n\n{}",
            command::help_text()
        ),
    )
}

/// A command that exists but is not available in this context.
pub fn not_here(comment_id: u64, command: &str, why: &str) -> String {
    with_marker(&reply_marker(comment_id), format!("`{command}`: {why}"))
}

/// `/cancel`.
pub fn cancelled(comment_id: u64, was_running: bool) -> String {
    with_marker(
        &reply_marker(comment_id),
        if was_running {
            "Stopping the running job for this issue. Nothing half-written will be pushed."
                .to_string()
        } else {
            "There is no running job for this issue to cancel.".to_string()
        },
    )
}

/// The reply to a review or `/revise` once the revision is pushed.
pub fn revised(
    marker: &str,
    head: &str,
    changes: Option<&str>,
    tokens: u64,
    cost_usd: f64,
) -> String {
    let short: String = head.chars().take(7).collect();
    let mut out = format!("{marker}\nI revised the spec in {short}.\n");
    if let Some(changes) = changes.map(str::trim).filter(|c| !c.is_empty()) {
        out.push_str("\n**What changed:**\n");
        out.push_str(&crate::prompt::sanitize::sanitize(changes));
        out.push('\n');
    }
    spend_note(&mut out, tokens, cost_usd);
    out
}

/// What the model calls cost, in small print (nothing before the first call).
fn spend_note(out: &mut String, tokens: u64, cost_usd: f64) {
    if tokens > 0 {
        out.push_str(&format!("\n<sub>{tokens} tokens, ${cost_usd:.4}</sub>\n"));
    }
}

/// The reply when the spec PR was merged or closed while its revision was being written.
pub fn revision_abandoned(marker: &str, merged_or_closed: &str, issue: u64) -> String {
    format!(
        "{marker}\nThis spec PR was {merged_or_closed} while I was revising it, so I did not push the revision. Comment `/spec` on #{issue} to start a new spec."
    )
}

/// `/implement` before the spec is approved or merged; `trigger_label` is the repository's
/// label for a spec.
pub fn spec_not_ready(
    comment_id: u64,
    state: Option<&str>,
    pull: Option<u64>,
    trigger_label: &str,
) -> String {
    let stands = match (state, pull) {
        (None, _) => {
            format!("this issue has no spec. Label it `{trigger_label}` or comment `/spec` first.")
        }
        (Some(state), Some(pr)) => format!(
            "the spec in #{pr} is {} and not approved yet. Approve or merge it first, or comment `/implement --force` to go ahead anyway.",
            state.replace('_', " ")
        ),
        (Some(state), None) => format!(
            "the spec is {} and not approved yet. Comment `/implement --force` to go ahead anyway.",
            state.replace('_', " ")
        ),
    };
    with_marker(&reply_marker(comment_id), format!("Not yet: {stands}"))
}

/// Progress of a spec job, as the status comment shows it.
#[derive(Debug, Clone, Default)]
pub struct SpecStatus {
    pub issue: u64,
    pub stage: SpecStage,
    pub pr: Option<(u64, String)>,
    pub components: Vec<(u64, String)>,
    pub tokens: u64,
    pub cost_usd: f64,
    pub config_problems: Vec<String>,
    pub error: Option<String>,
    /// The spec's open questions and its file, shown once it is ready.
    pub open_questions: Vec<String>,
    pub spec_path: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SpecStage {
    #[default]
    Drafting,
    Validating,
    Committing,
    FilingIssues,
    Done,
    Failed,
    Cancelled,
}

/// The status comment on the feature issue, edited in place as the job goes.
pub fn spec_status(s: &SpecStatus) -> String {
    let mut out = String::new();
    out.push_str(&status_marker(s.issue));
    out.push('\n');
    match s.stage {
        SpecStage::Drafting => out.push_str("📝 Drafting a specification for this issue…\n"),
        SpecStage::Validating => out.push_str("🔎 Checking the draft specification…\n"),
        SpecStage::Committing => out.push_str("📦 Committing the specification…\n"),
        SpecStage::FilingIssues => out.push_str("🗂️ Filing one issue per component…\n"),
        SpecStage::Done => out.push_str("✅ The specification is ready for review.\n"),
        SpecStage::Failed => out.push_str("❌ I could not draft a specification.\n"),
        SpecStage::Cancelled => out.push_str(
            "⏹️ Cancelled. Nothing half-written was pushed; comment `/spec` to start again.\n",
        ),
    }
    what_went_wrong(&mut out, s.error.as_deref(), s.pr.is_some(), SPEC_AGAIN);
    if let Some((number, url)) = &s.pr {
        out.push_str(&format!("\n**Spec PR:** #{number} ({url})\n"));
    }
    if !s.components.is_empty() {
        out.push_str("\n**Components:**\n");
        for (number, title) in &s.components {
            out.push_str(&format!("- #{number} {title}\n"));
        }
    }
    if s.stage == SpecStage::Done {
        let pull = s.pr.as_ref().map(|p| p.0);
        out.push('\n');
        out.push_str(&open_questions_section(
            &s.open_questions,
            pull,
            &s.spec_path,
        ));
        out.push('\n');
    }
    spend_note(&mut out, s.tokens, s.cost_usd);
    config_problems(&mut out, &s.config_problems);
    out
}

/// A status comment's failure: what went wrong, then how to try again.
/// How a status comment says to try again: before the job's pull request exists, and after.
struct TryAgain {
    no_pr: &'static str,
    with_pr: &'static str,
}

const SPEC_AGAIN: TryAgain = TryAgain {
    no_pr: "Nothing was committed. Comment `/spec` to try again.\n",
    with_pr: "Comment `/spec` to try again: it continues where this run stopped, without duplicating anything.\n",
};

const IMPLEMENT_AGAIN: TryAgain = TryAgain {
    no_pr: "Nothing was pushed. Comment `/implement` to try again.\n",
    with_pr: "Comment `/implement` to try again: it updates the same branch and pull request.\n",
};

/// The error a job stopped on, if any, and how to try again.
fn what_went_wrong(out: &mut String, error: Option<&str>, has_pr: bool, again: TryAgain) {
    let Some(error) = error else { return };
    out.push_str(&format!("\n**What went wrong:** {error}\n\n"));
    out.push_str(if has_pr { again.with_pr } else { again.no_pr });
}

/// The spec PR's description. `Refs`, not `Closes`: merging a spec must not close the issue.
/// Its open questions sit between markers, kept up to date by the coverage job.
pub fn spec_pull_body(
    issue: u64,
    spec_path: &str,
    components: &[crate::spec::Component],
    dropped: &[String],
    gaps: &[String],
    open_questions: &[String],
) -> String {
    let mut out = format!(
        "Refs #{issue}\n\nThis PR adds the implementation specification for #{issue} at `{spec_path}`, drafted by specbot from the issue and the repository's context.\n\n"
    );
    if !components.is_empty() {
        out.push_str("**Components** (each filed as a sub-issue of the feature issue):\n");
        for c in components {
            out.push_str(&format!("- {}\n", c.title));
        }
        out.push('\n');
    }
    if !dropped.is_empty() {
        out.push_str("**Not included**: these optional artifacts were still unusable after one repair round, so they were left out and the spec stands without them:\n");
        for reason in dropped {
            out.push_str(&format!("- {reason}\n"));
        }
        out.push('\n');
    }
    if !gaps.is_empty() {
        out.push_str("**Gaps** (what the spec check still found after one repair round; `specbot check-spec` on the file shows the same):\n");
        for gap in gaps {
            out.push_str(&format!("- {gap}\n"));
        }
        out.push('\n');
    }
    out.push_str(&open_questions_section(open_questions, None, spec_path));
    out.push_str("\n\n");
    out.push_str(
        "Review it like any other PR: **Request changes** (or comment `/revise <what to change>`) and I will revise it. Once it is merged, comment `/implement` on the issue.\n",
    );
    out
}

/// Where GitHub has no sub-issues: a task list of the components in the parent's body,
/// replaced (not appended) on every run.
pub fn with_task_list(
    body: &str,
    components: &std::collections::BTreeMap<String, (u64, u64)>,
) -> String {
    const START: &str = "<!-- specbot:components -->";
    const END: &str = "<!-- /specbot:components -->";
    let mut kept = body.to_string();
    if let (Some(s), Some(e)) = (kept.find(START), kept.find(END))
        && s < e
    {
        kept.replace_range(s..e + END.len(), "");
    }
    let mut list = format!("{START}\n**Components**\n");
    for (number, _) in components.values() {
        list.push_str(&format!("- [ ] #{number}\n"));
    }
    list.push_str(END);
    format!("{}\n\n{list}", kept.trim_end())
}

/// Marker of the one status comment an implementation keeps on its issue.
pub fn implement_marker(issue: u64) -> String {
    format!("<!-- specbot:implement-status issue={issue} -->")
}

/// Progress of an implementation job, as its status comment shows it.
#[derive(Debug, Clone, Default)]
pub struct ImplementStatus {
    pub issue: u64,
    pub stage: ImplementStage,
    /// Where the spec was read: (path, ref).
    pub spec: Option<(String, String)>,
    /// The component's title, for a component issue.
    pub component: Option<String>,
    pub pr: Option<(u64, String)>,
    pub tokens: u64,
    pub cost_usd: f64,
    pub error: Option<String>,
    /// Comments (and an issue description) by people without write access that the engineer
    /// was not shown.
    pub left_out: usize,
    /// The test command and whether the bot's last run of it passed.
    pub test: Option<crate::agent::TestChoice>,
    pub tests_pass: Option<bool>,
    /// Files of the repository the engineer's snapshot left out (too large), with why.
    pub left_out_files: Vec<String>,
    /// What is wrong in `.github/specbot.yml` (defaults used).
    pub config_problems: Vec<String>,
    /// The criteria of the scope done, once the engineer finished (`None`: a spec without IDs).
    pub criteria: Option<CriteriaTally>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ImplementStage {
    #[default]
    Working,
    Done,
    Failed,
    Cancelled,
}

pub fn implement_status(s: &ImplementStatus) -> String {
    let mut out = format!("{}\n", implement_marker(s.issue));
    let what = match &s.component {
        Some(title) => format!("the component **{}**", one_line(title)),
        None => "the spec".to_string(),
    };
    match s.stage {
        ImplementStage::Working => out.push_str(&format!(
            "🛠️ Implementing {what}… I will open a pull request when the code and its tests are written.\n"
        )),
        ImplementStage::Done => match &s.criteria {
            Some(tally) => out.push_str(&format!(
                "✅ Implemented {what}: {}.\n",
                criteria::tally_line(tally)
            )),
            None => out.push_str(&format!("✅ Implemented {what}.\n")),
        },
        ImplementStage::Failed => out.push_str(&format!("❌ I could not implement {what}.\n")),
        ImplementStage::Cancelled => out.push_str(
            "⏹️ Cancelled. Nothing was pushed; comment `/implement` to start again.\n",
        ),
    }
    what_went_wrong(
        &mut out,
        s.error.as_deref(),
        s.pr.is_some(),
        IMPLEMENT_AGAIN,
    );
    if let Some((path, git_ref)) = &s.spec {
        out.push_str(&format!("\n**Spec:** `{path}` on `{git_ref}`\n"));
    }
    match s.left_out {
        0 => {}
        1 => out.push_str(
            "\n1 comment from someone without write access was left out of the engineer's input: \
             it works from the approved spec, the repository and what maintainers wrote.\n",
        ),
        n => out.push_str(&format!(
            "\n{n} comments from people without write access were left out of the engineer's \
             input: it works from the approved spec, the repository and what maintainers wrote.\n"
        )),
    }
    if let Some((number, url)) = &s.pr {
        out.push_str(&format!("\n**Pull request:** #{number} ({url})\n"));
    }
    out.push_str(&tests_status(s.test.as_ref(), s.tests_pass));
    if !s.left_out_files.is_empty() {
        out.push_str("\n**Left out of the engineer's snapshot** (it could not read them):\n");
        for f in s.left_out_files.iter().take(20) {
            out.push_str(&format!("- {}\n", one_line(f)));
        }
    }
    spend_note(&mut out, s.tokens, s.cost_usd);
    config_problems(&mut out, &s.config_problems);
    out
}

fn config_problems(out: &mut String, problems: &[String]) {
    if !problems.is_empty() {
        out.push_str(&format!(
            "\n**Problems in `{}`** (defaults used):\n",
            crate::config::repo::PATH
        ));
        for p in problems {
            out.push_str(&format!("- {p}\n"));
        }
    }
}

/// What an implementation PR's description is made of.
#[derive(Debug, Clone, Default)]
pub struct ImplementPull {
    pub issue: u64,
    pub spec_issue: u64,
    pub spec_path: String,
    pub spec_ref: String,
    pub component: Option<String>,
    pub summary: String,
    /// The criteria the PR answers for, from the spec file (empty: a spec without IDs).
    pub scope: Vec<crate::spec::Criterion>,
    /// The criteria as the engineer reported them.
    pub criteria: Vec<crate::agent::CriterionMet>,
    /// (path, deleted)
    pub files: Vec<(String, bool)>,
    pub refusals: Vec<crate::agent::Refusal>,
    pub skipped: Vec<crate::agent::SkippedEntry>,
    pub model: String,
    pub steps: u32,
    pub tokens: u64,
    pub cost_usd: Option<f64>,
    /// What the bot ran (`None`: leave the section out, e.g. a body built before it existed).
    pub verification: Option<Verification>,
}

fn one_line(text: &str) -> String {
    let flat = crate::prompt::sanitize::sanitize(text).replace(['\n', '\r'], " ");
    flat.chars().take(300).collect()
}

/// The implementation PR's description: `Closes #n`, the spec, each acceptance criterion with
/// its status, files and tests, the files, what the guardrails refused, what the bot ran, and
/// the model's tokens and cost.
pub fn implement_pull_body(p: &ImplementPull) -> String {
    let mut out = format!("<!-- specbot:implementation issue={} -->\n", p.issue);
    out.push_str(&format!("Closes #{}\n\n", p.issue));
    let what = match &p.component {
        Some(title) => format!("the component **{}** of the spec", one_line(title)),
        None => "the spec".to_string(),
    };
    out.push_str(&format!(
        "This PR implements {what} for #{} (`{}` on `{}`), written by specbot's engineer. Review it like any other PR; CI failures on it get up to the configured number of fix rounds.\n\n",
        p.spec_issue, p.spec_path, p.spec_ref
    ));
    let summary = model_text(p.summary.trim());
    if !summary.is_empty() {
        out.push_str("## Summary\n\n");
        out.push_str(&summary.chars().take(4000).collect::<String>());
        out.push_str("\n\n");
    }
    out.push_str(&criteria_section(&p.scope, &p.criteria, &p.files));
    out.push_str(&format!("## Files changed ({})\n\n", p.files.len()));
    for (path, deleted) in p.files.iter().take(200) {
        let path = one_line(path).replace('`', "'");
        if *deleted {
            out.push_str(&format!("- `{path}` (deleted)\n"));
        } else {
            out.push_str(&format!("- `{path}`\n"));
        }
    }
    if p.files.len() > 200 {
        out.push_str(&format!("- … and {} more\n", p.files.len() - 200));
    }
    out.push('\n');
    if !p.refusals.is_empty() {
        out.push_str("## Refused by the guardrails\n\nThe engineer asked for these and was told no (it was asked to adapt):\n\n");
        for r in p.refusals.iter().take(30) {
            let path = r
                .path
                .as_deref()
                .map(|x| format!(" `{}`", one_line(x).replace('`', "'")))
                .unwrap_or_default();
            out.push_str(&format!("- `{}`{path}: {}\n", r.tool, one_line(&r.reason)));
        }
        out.push('\n');
    }
    if !p.skipped.is_empty() {
        out.push_str(&format!(
            "<details><summary>{} repository entries were not in the engineer's snapshot</summary>\n\n",
            p.skipped.len()
        ));
        for e in p.skipped.iter().take(30) {
            out.push_str(&format!(
                "- `{}`: {}\n",
                one_line(&e.path).replace('`', "'"),
                one_line(&e.reason)
            ));
        }
        out.push_str("\n</details>\n\n");
    }
    if let Some(v) = &p.verification {
        out.push_str(&verification_section(v));
    }
    let cost = p
        .cost_usd
        .map(|c| format!("${c:.4}"))
        .unwrap_or_else(|| "cost unknown".into());
    out.push_str(&format!(
        "<sub>{} · {} steps · {} tokens · {cost}</sub>\n",
        one_line(&p.model),
        p.steps,
        p.tokens
    ));
    out
}

/// Text the model wrote, as the bot posts it: sanitised, mentions defused, images as links.
fn model_text(text: &str) -> String {
    crate::prompt::sanitize::defuse_for_posting(&crate::prompt::sanitize::sanitize(text))
}

/// Marker of the reply to a label added by someone who may not (one per delivery).
pub fn delivery_reply_marker(delivery_id: &str) -> String {
    format!("<!-- specbot:reply delivery={delivery_id} -->")
}

/// Marker of the reply to a review.
pub fn review_reply_marker(review_id: u64) -> String {
    format!("<!-- specbot:reply review={review_id} -->")
}

/// The one reply to a comment, however many commands it held: each command's answer without
/// its own marker, under the comment's marker.
pub fn one_reply(comment_id: u64, replies: &[String]) -> String {
    let marker = reply_marker(comment_id);
    let body = replies
        .iter()
        .map(|r| r.replacen(&marker, "", 1).trim().to_string())
        .collect::<Vec<_>>()
        .join("\n\n---\n\n");
    with_marker(&marker, body)
}

/// `/spec` on a pull request.
pub fn spec_not_here(comment_id: u64) -> String {
    not_here(
        comment_id,
        "/spec",
        "comment it on the issue that describes the feature, not on a pull request.",
    )
}

/// `/revise` off a spec pull request.
pub fn revise_not_here(comment_id: u64) -> String {
    not_here(
        comment_id,
        "/revise",
        "comment it on a spec pull request (one I opened from a `specbot/spec-…` branch).",
    )
}

/// `/implement` where there is nothing to implement.
pub fn implement_not_here(comment_id: u64, command: &str) -> String {
    not_here(
        comment_id,
        command,
        "comment it on the feature issue, on one of its component issues, or on the spec pull request.",
    )
}

/// The commit that adds a spec.
pub fn spec_commit(issue: u64, title: &str) -> String {
    format!("Spec for #{issue}: {title}")
}

/// The spec PR's title (the issue's title cut to 200 characters: GitHub takes 256 at most).
pub fn spec_pull_title(issue: u64, title: &str) -> String {
    format!("Spec: {} (#{issue})", single_line(title))
}

/// The commit that revises a spec: the first line of what changed, or a plain subject.
pub fn revision_commit(issue: u64, changes: Option<&str>) -> String {
    let summary = changes
        .and_then(|c| c.lines().next())
        .unwrap_or("address review feedback");
    format!(
        "Revise spec for #{issue}: {}",
        summary.chars().take(60).collect::<String>()
    )
}

/// A revision asked for on a spec PR that is merged or closed.
pub fn spec_finished(marker: &str, state: &str, issue: u64) -> String {
    with_marker(
        marker,
        format!(
            "This spec PR is {state}, so I won't revise it. Comment `/spec` on #{issue} to start a new spec."
        ),
    )
}

/// A review with nothing to act on.
pub fn no_feedback(marker: &str) -> String {
    with_marker(
        marker,
        "The review has no comments I could act on, so I left the spec as it is.".to_string(),
    )
}

/// A revision failed for good.
pub fn revision_failed(marker: &str, error: &str) -> String {
    with_marker(
        marker,
        format!(
            "❌ I could not revise the spec: {error}\n\nNothing was pushed. Ask again with `/revise <what to change>`."
        ),
    )
}

/// Marker of the note on a component issue that a revision dropped.
pub fn component_dropped_marker(spec_pull: u64) -> String {
    format!("<!-- specbot:removed spec-pr={spec_pull} -->")
}

/// The note on a component issue that a revision dropped.
pub fn component_dropped(spec_pull: u64) -> String {
    with_marker(
        &component_dropped_marker(spec_pull),
        format!(
            "This component is no longer part of the spec after the revision in #{spec_pull}. Closing it; reopen it if that was a mistake."
        ),
    )
}

/// Marker of the note on a component issue that a revision brought back.
pub fn component_restored_marker() -> String {
    "<!-- specbot:restored -->".to_string()
}

/// The note on a component issue that a revision brought back after an earlier one dropped it.
pub fn component_restored() -> String {
    with_marker(
        &component_restored_marker(),
        "This component is part of the spec again after a later revision. Reopened, with its description brought up to date.".to_string(),
    )
}

/// `/implement` where the spec is not where it should be.
pub fn no_spec_at(path: &str, git_ref: &str, spec_issue: u64, trigger_label: &str) -> String {
    format!(
        "there is no spec at `{path}` on `{git_ref}`: label #{spec_issue} `{trigger_label}` or comment `/spec` there first"
    )
}

/// The engineer stopped without changing anything.
pub fn engineer_changed_nothing(summary: &str) -> String {
    format!(
        "the engineer finished without changing any file. Its summary: {}",
        model_text(summary).chars().take(500).collect::<String>()
    )
}

/// The implementation PR's title (and its commit's subject).
pub fn implement_title(issue: u64, title: &str) -> String {
    format!("Implement #{issue}: {}", single_line(title))
}

/// The subject of a CI fix round's commit.
pub fn ci_fix_subject(issue: u64, attempt: u32) -> String {
    format!("Fix CI for #{issue} (attempt {attempt})")
}

/// Subject, the summary's first paragraph, the spec reference and the attribution trailer.
pub fn commit_message(
    subject: &str,
    summary: &str,
    spec_issue: u64,
    model: &str,
    attribution: Attribution,
) -> String {
    let subject: String = subject.chars().take(72).collect();
    let first: String = crate::prompt::sanitize::sanitize(summary)
        .split("\n\n")
        .next()
        .unwrap_or("")
        .chars()
        .take(1000)
        .collect();
    let mut out = format!("{subject}\n\n");
    if !first.trim().is_empty() {
        out.push_str(first.trim());
        out.push_str("\n\n");
    }
    out.push_str(&format!("Refs #{spec_issue}\n"));
    let model = single_line(model);
    match attribution {
        Attribution::AssistedBy => out.push_str(&format!("Assisted-by: {model} via specbot\n")),
        Attribution::CoAuthoredBy => out.push_str(&format!(
            "Co-authored-by: {model} via specbot <specbot@users.noreply.github.com>\n"
        )),
        Attribution::None => {}
    }
    out
}

fn single_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ").chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_snapshot() {
        insta::assert_snapshot!("not_allowed", not_allowed(&reply_marker(11), "rita"));
        insta::assert_snapshot!(
            "parse_errors",
            parse_errors(
                12,
                &["I don't know `/implment` — did you mean `/implement`?".into()]
            )
        );
        insta::assert_snapshot!(
            "not_here",
            not_here(13, "/spec", "comment it on the issue.")
        );
        insta::assert_snapshot!(
            "revision_abandoned",
            revision_abandoned("<!-- specbot:revise:14 -->", "merged", 7)
        );
    }

    #[test]
    fn spec_pull_body_says_what_was_left_out() {
        let components = [crate::spec::Component {
            title: "Theme store".into(),
            ..Default::default()
        }];
        insta::assert_snapshot!(
            "spec_pull_body_dropped",
            spec_pull_body(
                7,
                "specs/IMPLEMENT-7.md",
                &components,
                &[
                    "The Mermaid diagram is not usable: it does not start with a diagram type."
                        .into()
                ],
                &[],
                &[],
            )
        );
    }

    #[test]
    fn implementation_snapshots() {
        let mut s = ImplementStatus {
            issue: 7,
            spec: Some(("specs/IMPLEMENT-7.md".into(), "main".into())),
            ..Default::default()
        };
        insta::assert_snapshot!("implement_working", implement_status(&s));
        s.stage = ImplementStage::Done;
        s.pr = Some((12, "https://github.com/acme/widgets/pull/12".into()));
        s.tokens = 5400;
        s.cost_usd = 0.0312;
        insta::assert_snapshot!("implement_done", implement_status(&s));
        let body = implement_pull_body(&ImplementPull {
            issue: 9,
            spec_issue: 7,
            spec_path: "specs/IMPLEMENT-7.md".into(),
            spec_ref: "main".into(),
            component: Some("Token store".into()),
            summary: "Adds the token store and its tests.".into(),
            scope: vec![],
            criteria: vec![crate::agent::CriterionMet {
                criterion: "Tokens expire | after 1 h".into(),
                how_met: "`expire()` and `tests/store.rs`".into(),
                ..Default::default()
            }],
            files: vec![("src/store.rs".into(), false), ("old.rs".into(), true)],
            refusals: vec![crate::agent::Refusal {
                tool: "write_file".into(),
                path: Some(".github/workflows/ci.yml".into()),
                reason: "a GitHub Actions workflow".into(),
            }],
            skipped: vec![],
            model: "claude-sonnet-4-5".into(),
            steps: 6,
            tokens: 12000,
            cost_usd: Some(0.12),
            verification: None,
        });
        insta::assert_snapshot!("implement_pull_body", body);
        insta::assert_snapshot!(
            "ci_gave_up",
            ci_gave_up("abc", 2, &["test (ubuntu)".into(), "lint".into()])
        );
    }

    #[test]
    fn status_comment_snapshots() {
        let mut s = SpecStatus {
            issue: 7,
            ..SpecStatus::default()
        };
        insta::assert_snapshot!("status_drafting", spec_status(&s));
        s.stage = SpecStage::Done;
        s.pr = Some((9, "https://github.com/acme/widgets/pull/9".into()));
        s.components = vec![(10, "Theme tokens".into()), (11, "Toggle".into())];
        s.tokens = 12_345;
        s.cost_usd = 0.1234;
        s.config_problems = vec![
            "`trigger_lable` is not a setting (did you mean `trigger_label`?), so it was ignored."
                .into(),
        ];
        insta::assert_snapshot!("status_done", spec_status(&s));
        s.open_questions = vec!["Which team owns the theme tokens?".into()];
        s.spec_path = "specs/IMPLEMENT-7.md".into();
        insta::assert_snapshot!("status_done_open_questions", spec_status(&s));
        let failed = SpecStatus {
            issue: 7,
            stage: SpecStage::Failed,
            error: Some("the model's answer was not a usable specification".into()),
            ..SpecStatus::default()
        };
        insta::assert_snapshot!("status_failed", spec_status(&failed));
    }

    #[test]
    fn review_and_command_replies_snapshot() {
        insta::assert_snapshot!("help", help(14));
        insta::assert_snapshot!("cancelled_running", cancelled(15, true));
        insta::assert_snapshot!("cancelled_idle", cancelled(15, false));
        insta::assert_snapshot!(
            "revised",
            revised(
                "<!-- specbot:reply review=9 -->",
                "0123456789abcdef",
                Some("Added a high-contrast variant.\nDropped component 2."),
                4321,
                0.0123
            )
        );
        insta::assert_snapshot!(
            "not_ready_no_spec",
            spec_not_ready(16, None, None, "needs-spec")
        );
        assert!(spec_not_ready(16, None, None, "spec-me").contains("Label it `spec-me`"));
        insta::assert_snapshot!(
            "not_ready_in_review",
            spec_not_ready(16, Some("in_review"), Some(8), "needs-spec")
        );
    }

    #[test]
    fn task_list_is_replaced_not_appended() {
        let mut comps = std::collections::BTreeMap::new();
        comps.insert("a".to_string(), (10, 100));
        let once = with_task_list("Feature text", &comps);
        comps.insert("b".to_string(), (11, 101));
        let twice = with_task_list(&once, &comps);
        assert_eq!(
            twice.matches("<!-- specbot:components -->").count(),
            1,
            "{twice}"
        );
        assert!(twice.contains("- [ ] #10") && twice.contains("- [ ] #11"));
        assert!(twice.starts_with("Feature text"));
    }
}
