//! Event → intent → job: decides, without any I/O, which jobs a delivery queues and why.
//!
//! This runs inside the webhook request, before the `202`, so it must be cheap and pure. What
//! needs GitHub (the repository's trigger label, the sender's permission) is checked by the job
//! itself when it runs — the plan only filters out what can never matter: bots (the App
//! itself included), events nobody acts on, comments without a command.

use crate::command;
use crate::event::{Envelope, Event};
use crate::github::model::{Comment, PullRequest};
use crate::jobs::NewJob;
use crate::workflow::Workflow;
use crate::workflow::branch::BotBranch;
use crate::workflow::job::{
    CiFixRequest, CommandRequest, CoverageRequest, FeedbackSource, RepoTarget, ReviseRequest,
    SpecChange, SpecEvent, SpecRequest, SpecTrigger,
};

/// The jobs a delivery queues, and a line per decision for logs and `specbot replay`.
#[derive(Debug, Default)]
pub struct Plan {
    pub jobs: Vec<NewJob>,
    pub notes: Vec<String>,
}

impl Plan {
    fn skip(note: impl Into<String>) -> Self {
        Plan {
            jobs: Vec::new(),
            notes: vec![note.into()],
        }
    }

    fn one(job: NewJob, note: String) -> Self {
        Plan {
            jobs: vec![job],
            notes: vec![note],
        }
    }
}

/// What every planned job shares: where its delivery came from and how often it may be tried.
struct Origin<'a> {
    envelope: &'a Envelope,
    repo: RepoTarget,
    delivery_id: &'a str,
    max_attempts: i32,
}

fn target(envelope: &Envelope) -> Option<RepoTarget> {
    Some(RepoTarget {
        installation_id: envelope.installation?.id,
        owner: envelope.repository.owner.login.clone(),
        name: envelope.repository.name.clone(),
        repo_id: envelope.repository.id,
    })
}

/// Turn a decoded delivery into the jobs it queues, each tried at most `max_attempts` times.
pub fn plan(event: &Event, delivery_id: &str, max_attempts: i32) -> Plan {
    let Some(envelope) = event.envelope() else {
        return Plan::skip(format!("`{}` events queue no jobs", event.name()));
    };
    // "Re-run" on the spec coverage check: the coverage job again. It writes no commit, so
    // whoever asks (a person or an automation) cannot start a loop.
    if let Some(plan) = coverage_rerun(event, envelope, max_attempts) {
        return plan;
    }
    // CI results come from bots (GitHub Actions, the App's own push): they are not commands,
    // so the bot filter does not apply; the fix job's per-head record and cap stop loops.
    if let Some(plan) = ci_failure(event, envelope, max_attempts) {
        return plan;
    }
    // A push to a spec PR's branch (the bot's own revisions included) is checked for coverage:
    // the coverage job writes no commit, so it cannot set off another push.
    if let Some(plan) = spec_push(event, envelope, max_attempts) {
        return plan;
    }
    if envelope.sender.is_bot() {
        return Plan::skip(format!(
            "sender {} is a bot: bots never trigger anything",
            envelope.sender.login
        ));
    }
    let Some(repo) = target(envelope) else {
        return Plan::skip("delivery has no installation: the App cannot act on it");
    };
    let origin = Origin {
        envelope,
        repo,
        delivery_id,
        max_attempts,
    };
    let action = envelope.action.as_str();
    match event {
        Event::Issues { issue, label, .. } if action == "labeled" => labelled(
            &origin,
            issue.number,
            issue.is_pull_request(),
            label.as_ref(),
        ),
        Event::IssueComment {
            issue,
            comment,
            previous_body,
            ..
        } if action == "created" || action == "edited" => {
            let body = comment.body.as_deref().unwrap_or("");
            let parsed = match (action, previous_body) {
                ("edited", Some(old)) => command::added_by_edit(old, body),
                ("edited", None) => command::Parsed::default(),
                _ => command::parse(body),
            };
            if parsed.commands.is_empty() && parsed.errors.is_empty() {
                return Plan::skip(format!("comment {} holds no command", comment.id));
            }
            commented(
                &origin,
                issue.number,
                issue.is_pull_request(),
                comment,
                &parsed,
            )
        }
        Event::PullRequestReview {
            pull_request,
            review,
            ..
        } if action == "submitted" => {
            let Some(issue_number) = spec_pull_issue(pull_request, envelope) else {
                return Plan::skip("review on a pull request that is not a spec PR");
            };
            let review = Review {
                pull_number: pull_request.number,
                issue_number,
                id: review.id,
                state: &review.state,
                by: &review.user.login,
                written_at: review.submitted_at.as_deref(),
            };
            reviewed(origin, &review)
        }
        Event::PullRequest { pull_request, .. } if action == "closed" => {
            let Some(issue_number) = spec_pull_issue(pull_request, envelope) else {
                return Plan::skip("not a spec PR");
            };
            let what = match pull_request.merged {
                Some(true) => SpecChange::Merged,
                _ => SpecChange::Closed,
            };
            let (job, note) = spec_event(origin.repo, pull_request, issue_number, what, envelope);
            Plan::one(job.into_job(max_attempts), note)
        }
        other => Plan::skip(format!("`{}.{action}` queues no jobs", other.name())),
    }
}

/// A label on an issue: the spec job, which checks the label and the sender when it runs.
fn labelled(
    origin: &Origin<'_>,
    issue_number: u64,
    is_pull_request: bool,
    label: Option<&crate::github::model::Label>,
) -> Plan {
    let Some(label) = label else {
        return Plan::skip("labeled event without a label");
    };
    if is_pull_request {
        return Plan::skip("label added to a pull request");
    }
    let sender = &origin.envelope.sender.login;
    let input = SpecRequest {
        repo: origin.repo.clone(),
        issue_number,
        requested_by: sender.clone(),
        trigger: SpecTrigger::Label {
            name: label.name.clone(),
        },
        delivery_id: origin.delivery_id.to_string(),
    };
    let note = format!(
        "issue #{issue_number} labelled `{0}` by {sender}: spec job (runs if the repository's trigger label is `{0}` and {sender} may write)",
        label.name
    );
    Plan::one(input.into_job(origin.max_attempts), note)
}

/// A comment with commands: the command job, which checks the author when it runs.
fn commented(
    origin: &Origin<'_>,
    issue_number: u64,
    is_pull_request: bool,
    comment: &Comment,
    parsed: &command::Parsed,
) -> Plan {
    let (comment_id, author) = (comment.id, &comment.user.login);
    let commands: Vec<String> = parsed.commands.iter().map(|c| c.to_string()).collect();
    let note = format!(
        "comment {comment_id} by {author} on #{issue_number}: commands [{}]{}: command job (runs each if {author} may write)",
        commands.join(", "),
        if parsed.errors.is_empty() {
            String::new()
        } else {
            format!(" and {} unparsable", parsed.errors.len())
        },
    );
    let input = CommandRequest {
        repo: origin.repo.clone(),
        issue_number,
        is_pull_request,
        comment_id,
        author: author.to_string(),
        commands,
        errors: parsed.errors.iter().map(|e| e.to_string()).collect(),
        delivery_id: origin.delivery_id.to_string(),
        written_at: comment.updated_at.clone(),
    };
    Plan::one(input.into_job(origin.max_attempts), note)
}

/// A review submitted on a spec PR.
struct Review<'a> {
    pull_number: u64,
    issue_number: u64,
    id: u64,
    state: &'a str,
    by: &'a str,
    written_at: Option<&'a str>,
}

/// The feature issue of a spec PR: one from the bot's spec branch in this repository (a fork
/// may name its branch the same; it is never a spec PR).
fn spec_pull_issue(pull: &PullRequest, envelope: &Envelope) -> Option<u64> {
    let here = pull
        .head
        .repo
        .is_some_and(|r| r.id == envelope.repository.id);
    BotBranch::spec_issue(&pull.head.ref_name).filter(|_| here)
}

/// "Request changes" revises the spec; "Approve" moves its state; other reviews do nothing.
fn reviewed(origin: Origin<'_>, review: &Review<'_>) -> Plan {
    let note = |kind: &str| {
        format!(
            "{} review by {} on spec PR #{}: {kind} job",
            review.state, review.by, review.pull_number
        )
    };
    match review.state.to_ascii_lowercase().as_str() {
        "changes_requested" => {
            let input = ReviseRequest {
                repo: origin.repo,
                pull_number: review.pull_number,
                issue_number: review.issue_number,
                requested_by: review.by.to_string(),
                source: FeedbackSource::Review {
                    review_id: review.id,
                },
                delivery_id: origin.delivery_id.to_string(),
                written_at: review.written_at.map(str::to_string),
            };
            Plan::one(
                input.into_job(origin.max_attempts),
                note(ReviseRequest::KIND),
            )
        }
        "approved" => {
            let input = SpecEvent {
                repo: origin.repo,
                pull_number: review.pull_number,
                issue_number: review.issue_number,
                what: SpecChange::Approved,
                by: review.by.to_string(),
            };
            Plan::one(input.into_job(origin.max_attempts), note(SpecEvent::KIND))
        }
        other => Plan::skip(format!(
            "`{other}` review on spec PR #{}: nothing to do",
            review.pull_number
        )),
    }
}

/// A spec PR moved (merged, closed, reopened): the spec_event job, and why.
fn spec_event(
    repo: RepoTarget,
    pull: &PullRequest,
    issue_number: u64,
    what: SpecChange,
    envelope: &Envelope,
) -> (SpecEvent, String) {
    let note = format!("spec PR #{} {}: spec_event job", pull.number, what.as_str());
    let input = SpecEvent {
        repo,
        pull_number: pull.number,
        issue_number,
        what,
        by: envelope.sender.login.clone(),
    };
    (input, note)
}

/// A spec PR opened, pushed to (`synchronize`) or reopened, by anyone (the bot included) →
/// the coverage job for its head; a reopening by a person also moves the spec's state.
fn spec_push(event: &Event, envelope: &Envelope, max_attempts: i32) -> Option<Plan> {
    let Event::PullRequest { pull_request, .. } = event else {
        return None;
    };
    let action = envelope.action.as_str();
    if !matches!(action, "opened" | "synchronize" | "reopened") {
        return None;
    }
    let issue_number = spec_pull_issue(pull_request, envelope)?;
    let Some(repo) = target(envelope) else {
        return Some(Plan::skip(
            "delivery has no installation: the App cannot act on it",
        ));
    };
    let head = &pull_request.head.sha;
    let coverage = CoverageRequest {
        repo: repo.clone(),
        pull_number: pull_request.number,
        issue_number,
        head_sha: head.clone(),
        rerun: false,
    };
    let mut plan = Plan::one(
        coverage.into_job(max_attempts),
        format!(
            "spec PR #{} {action} at {}: coverage job",
            pull_request.number,
            head.chars().take(7).collect::<String>()
        ),
    );
    if action == "reopened" && !envelope.sender.is_bot() {
        let what = SpecChange::Reopened;
        let (job, note) = spec_event(repo, pull_request, issue_number, what, envelope);
        plan.jobs.push(job.into_job(max_attempts));
        plan.notes.push(note);
    }
    Some(plan)
}

/// "Re-run" on the spec coverage check of a spec PR (GitHub's `check_run` `rerequested`), or
/// "Re-run all checks" of its suite (`check_suite` `rerequested`) → the coverage job for that
/// commit, which writes the run again.
fn coverage_rerun(event: &Event, envelope: &Envelope, max_attempts: i32) -> Option<Plan> {
    if envelope.action != "rerequested" {
        return None;
    }
    let (pulls, head_sha) = match event {
        Event::CheckRun { check_run, .. } if check_run.name == crate::messages::COVERAGE_CHECK => {
            (&check_run.pull_requests, &check_run.head_sha)
        }
        Event::CheckSuite { check_suite, .. } => {
            (&check_suite.pull_requests, &check_suite.head_sha)
        }
        _ => return None,
    };
    // The pull requests of the commit name its branch (a fork's list is empty).
    let pull = pulls.first();
    let branch = pull.map_or("", |p| p.head.ref_name.as_str());
    let (Some(issue_number), Some(pull)) = (BotBranch::spec_issue(branch), pull) else {
        return Some(Plan::skip(format!(
            "re-run on `{branch}`, not a spec PR's branch"
        )));
    };
    let Some(repo) = target(envelope) else {
        return Some(Plan::skip(
            "delivery has no installation: the App cannot act on it",
        ));
    };
    let coverage = CoverageRequest {
        repo,
        pull_number: pull.number,
        issue_number,
        head_sha: head_sha.clone(),
        rerun: true,
    };
    Some(Plan::one(
        coverage.into_job(max_attempts),
        format!("re-run of the coverage check of spec PR #{}", pull.number),
    ))
}

/// A completed, failed check suite or check run on an implementation branch → one CI-fix job.
fn ci_failure(event: &Event, envelope: &Envelope, max_attempts: i32) -> Option<Plan> {
    let (branch, sha, conclusion, what) = match event {
        Event::CheckSuite { check_suite, .. } => (
            check_suite.head_branch.clone(),
            check_suite.head_sha.clone(),
            check_suite.conclusion.clone(),
            "check suite",
        ),
        Event::CheckRun { check_run, .. } => (
            check_run
                .check_suite
                .as_ref()
                .and_then(|s| s.head_branch.clone()),
            check_run.head_sha.clone(),
            check_run.conclusion.clone(),
            "check run",
        ),
        _ => return None,
    };
    if envelope.action != "completed" {
        return Some(Plan::skip(format!(
            "{what} {}: nothing to do",
            envelope.action
        )));
    }
    let branch = branch.unwrap_or_default();
    let Some(issue_number) = BotBranch::implemented_issue(&branch) else {
        return Some(Plan::skip(format!(
            "{what} on `{branch}`, not an implementation branch"
        )));
    };
    let conclusion = conclusion.unwrap_or_default();
    if !crate::github::model::is_failing_conclusion(&conclusion) {
        return Some(Plan::skip(format!(
            "{what} on `{branch}` concluded `{conclusion}`: nothing to fix"
        )));
    }
    let Some(repo) = target(envelope) else {
        return Some(Plan::skip(
            "delivery has no installation: the App cannot act on it",
        ));
    };
    let note = format!(
        "{what} `{conclusion}` on `{branch}` at {}: ci_fix job (one round per head, capped)",
        sha.chars().take(7).collect::<String>()
    );
    let input = CiFixRequest {
        repo,
        branch,
        issue_number,
        head_sha: sha,
    };
    Some(Plan::one(input.into_job(max_attempts), note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan_of(event: &Event, delivery_id: &str) -> Plan {
        plan(event, delivery_id, 3)
    }

    fn comment_event(body: &str, sender_type: &str, action: &str, previous: Option<&str>) -> Event {
        let mut p = json!({
            "action": action,
            "issue": {"id": 1, "number": 7, "title": "T", "body": "", "user": {"login": "alice", "id": 1, "type": "User"}},
            "comment": {"id": 55, "body": body, "user": {"login": "alice", "id": 1, "type": sender_type}},
            "repository": {"id": 42, "name": "widgets", "full_name": "acme/widgets", "owner": {"login": "acme", "id": 9, "type": "Organization"}},
            "sender": {"login": if sender_type == "Bot" { "specbot[bot]" } else { "alice" }, "id": 1, "type": sender_type},
            "installation": {"id": 77}
        });
        if let Some(old) = previous {
            p["changes"] = json!({"body": {"from": old}});
        }
        Event::parse("issue_comment", &serde_json::to_vec(&p).unwrap())
    }

    #[test]
    fn a_command_comment_queues_one_command_job() {
        let plan = plan_of(&comment_event("/spec\n/help", "User", "created", None), "d");
        assert_eq!(plan.jobs.len(), 1);
        assert_eq!(plan.jobs[0].kind, "command");
        assert_eq!(plan.jobs[0].dedupe_key.as_deref(), Some("command:42:55"));
        let req: CommandRequest = serde_json::from_value(plan.jobs[0].payload.clone()).unwrap();
        assert_eq!(req.commands, vec!["/spec", "/help"]);
    }

    #[test]
    fn chatter_and_bots_queue_nothing() {
        assert!(
            plan_of(&comment_event("thanks!", "User", "created", None), "d")
                .jobs
                .is_empty()
        );
        assert!(
            plan_of(&comment_event("/spec", "Bot", "created", None), "d")
                .jobs
                .is_empty()
        );
        assert!(
            plan_of(&comment_event("> /spec", "User", "created", None), "d")
                .jobs
                .is_empty()
        );
    }

    #[test]
    fn an_edit_runs_only_what_it_added() {
        let p = plan_of(
            &comment_event("/spec\n/help", "User", "edited", Some("/spec")),
            "d",
        );
        let req: CommandRequest = serde_json::from_value(p.jobs[0].payload.clone()).unwrap();
        assert_eq!(req.commands, vec!["/help"]);
        assert!(
            plan_of(
                &comment_event("/spec", "User", "edited", Some("/spec")),
                "d"
            )
            .jobs
            .is_empty()
        );
    }

    /// GitHub's own `pull_request` example for `action`, moved onto `branch` (of a fork when
    /// not `here`).
    fn pull_event(action: &str, branch: &str, here: bool, sender_type: &str) -> Event {
        let fixture = match action {
            "synchronize" => {
                include_str!("../tests/fixtures/github-webhooks/pull_request.synchronize.1.json")
            }
            "reopened" => {
                include_str!("../tests/fixtures/github-webhooks/pull_request.reopened.1.json")
            }
            _ => include_str!("../tests/fixtures/github-webhooks/pull_request.opened.1.json"),
        };
        let mut p: serde_json::Value = serde_json::from_str(fixture).unwrap();
        p["action"] = json!(action);
        p["pull_request"]["head"]["ref"] = json!(branch);
        p["pull_request"]["head"]["repo"]["id"] = if here {
            p["repository"]["id"].clone()
        } else {
            json!(1)
        };
        p["sender"]["type"] = json!(sender_type);
        p["installation"] = json!({"id": 77});
        Event::parse("pull_request", &serde_json::to_vec(&p).unwrap())
    }

    #[test]
    fn a_push_to_a_spec_pr_queues_its_coverage_check_whoever_pushed() {
        for (action, sender) in [
            ("synchronize", "Bot"),
            ("synchronize", "User"),
            ("opened", "Bot"),
        ] {
            let p = plan_of(&pull_event(action, "specbot/spec-9", true, sender), "d");
            assert_eq!(p.jobs.len(), 1, "{action} by a {sender}: {:?}", p.notes);
            assert_eq!(p.jobs[0].kind, "coverage");
            let req: CoverageRequest = serde_json::from_value(p.jobs[0].payload.clone()).unwrap();
            assert_eq!(req.issue_number, 9);
            let key = p.jobs[0].dedupe_key.clone().unwrap();
            assert!(
                key.ends_with(&format!("@{}", req.head_sha)),
                "one job per head: {key}"
            );
        }
        // Reopened by a person: the state moves too; by the bot (the spec job), only the check.
        let p = plan_of(&pull_event("reopened", "specbot/spec-9", true, "User"), "d");
        let kinds: Vec<&str> = p.jobs.iter().map(|j| j.kind.as_str()).collect();
        assert_eq!(kinds, ["coverage", "spec_event"]);
        let p = plan_of(&pull_event("reopened", "specbot/spec-9", true, "Bot"), "d");
        assert_eq!(p.jobs.len(), 1);
        // Not a spec PR (another branch, or a fork's branch of the same name): nothing.
        for (branch, here) in [("feature/x", true), ("specbot/spec-9", false)] {
            let p = plan_of(&pull_event("synchronize", branch, here, "User"), "d");
            assert!(p.jobs.is_empty(), "{branch} (here: {here}): {:?}", p.notes);
        }
    }

    #[test]
    fn the_coverage_check_run_on_a_spec_branch_queues_no_ci_fix() {
        let mut run = failed_check_run("specbot/spec-9", "failure", "Bot");
        if let Event::CheckRun { check_run, .. } = &mut run {
            check_run.name = "spec coverage".into();
        }
        assert!(plan_of(&run, "d").jobs.is_empty());
    }

    /// GitHub's own `check_run.completed` example, moved onto an implementation branch.
    fn failed_check_run(branch: &str, conclusion: &str, sender_type: &str) -> Event {
        let mut p: serde_json::Value = serde_json::from_str(include_str!(
            "../tests/fixtures/github-webhooks/check_run.completed.1.json"
        ))
        .unwrap();
        p["check_run"]["check_suite"]["head_branch"] = json!(branch);
        p["check_run"]["conclusion"] = json!(conclusion);
        p["sender"]["type"] = json!(sender_type);
        p["installation"] = json!({"id": 77});
        Event::parse("check_run", &serde_json::to_vec(&p).unwrap())
    }

    #[test]
    fn a_failed_check_on_an_implementation_branch_queues_one_fix_even_from_a_bot() {
        let p = plan_of(
            &failed_check_run("specbot/implement-9", "failure", "Bot"),
            "d",
        );
        assert_eq!(p.jobs.len(), 1, "{:?}", p.notes);
        assert_eq!(p.jobs[0].kind, "ci_fix");
        let req: CiFixRequest = serde_json::from_value(p.jobs[0].payload.clone()).unwrap();
        assert_eq!(req.issue_number, 9);
        assert_eq!(req.branch, "specbot/implement-9");
        assert!(
            p.jobs[0]
                .dedupe_key
                .as_deref()
                .unwrap()
                .starts_with("ci_fix:")
        );
        for (branch, conclusion) in [
            ("specbot/implement-9", "success"),
            ("specbot/implement-9", "neutral"),
            ("feature/x", "failure"),
            ("specbot/spec-9", "failure"),
        ] {
            assert!(
                plan_of(&failed_check_run(branch, conclusion, "User"), "d")
                    .jobs
                    .is_empty(),
                "{branch} {conclusion}"
            );
        }
    }

    /// GitHub's own `check_run.rerequested` example: someone pressed "Re-run".
    fn rerequested(name: &str, pull_branch: Option<&str>) -> Event {
        let mut p: serde_json::Value = serde_json::from_str(include_str!(
            "../tests/fixtures/github-webhooks/check_run.rerequested.1.json"
        ))
        .unwrap();
        p["check_run"]["name"] = json!(name);
        if let Some(branch) = pull_branch {
            let sha = p["check_run"]["head_sha"].clone();
            p["check_run"]["pull_requests"] = json!([{
                "id": 1, "number": 12, "url": "https://api.github.com/repos/o/r/pulls/12",
                "head": {"ref": branch, "sha": sha, "repo": {"id": 1, "url": "u", "name": "r"}},
                "base": {"ref": "main", "sha": sha, "repo": {"id": 1, "url": "u", "name": "r"}}
            }]);
        }
        p["installation"] = json!({"id": 77});
        Event::parse("check_run", &serde_json::to_vec(&p).unwrap())
    }

    #[test]
    fn a_rerun_of_the_coverage_check_queues_the_coverage_job_again() {
        let p = plan_of(&rerequested("spec coverage", Some("specbot/spec-9")), "d");
        assert_eq!(p.jobs.len(), 1, "{:?}", p.notes);
        assert_eq!(p.jobs[0].kind, "coverage");
        let req: CoverageRequest = serde_json::from_value(p.jobs[0].payload.clone()).unwrap();
        assert_eq!((req.issue_number, req.pull_number), (9, 12));
        assert!(req.rerun);
        for event in [
            // GitHub's example as sent: another App's check on `master`, no pull request.
            rerequested("randscape", None),
            rerequested("spec coverage", None),
            rerequested("spec coverage", Some("specbot/implement-9")),
            rerequested("tests", Some("specbot/spec-9")),
        ] {
            assert!(plan_of(&event, "d").jobs.is_empty(), "{event:?}");
        }
    }

    #[test]
    fn re_running_all_checks_of_a_spec_commit_queues_the_coverage_job_again() {
        let mut p: serde_json::Value = serde_json::from_str(include_str!(
            "../tests/fixtures/github-webhooks/check_suite.rerequested.1.json"
        ))
        .unwrap();
        p["installation"] = json!({"id": 77});
        let event =
            |p: &serde_json::Value| Event::parse("check_suite", &serde_json::to_vec(p).unwrap());
        assert!(
            plan_of(&event(&p), "d").jobs.is_empty(),
            "GitHub's example: not a spec PR"
        );
        let sha = p["check_suite"]["head_sha"].clone();
        p["check_suite"]["pull_requests"] = json!([{
            "id": 1, "number": 12, "url": "https://api.github.com/repos/o/r/pulls/12",
            "head": {"ref": "specbot/spec-9", "sha": sha, "repo": {"id": 1, "url": "u", "name": "r"}},
            "base": {"ref": "main", "sha": sha, "repo": {"id": 1, "url": "u", "name": "r"}}
        }]);
        let plan = plan_of(&event(&p), "d");
        assert_eq!(plan.jobs.len(), 1, "{:?}", plan.notes);
        assert_eq!(plan.jobs[0].kind, "coverage");
    }
}
