//! Event → intent → job: decides, without any I/O, which jobs a delivery queues and why.
//!
//! This runs inside the webhook request, before the `202`, so it must be cheap and pure. What
//! needs GitHub (the repository's trigger label, the sender's permission) is checked by the job
//! itself when it runs — the plan only filters out what can never matter: bots (the App
//! itself included), events nobody acts on, comments without a command.

use crate::command;
use crate::event::{Envelope, Event};
use crate::jobs::NewJob;
use crate::workflow::{
    CiFixRequest, CommandRequest, FeedbackSource, JobInput, RepoTarget, ReviseRequest, SpecEvent,
    SpecRequest, SpecTrigger, implement_issue_of_branch, spec_issue_of_branch,
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
}

/// Default attempts for a job (a job's own errors decide whether a retry makes sense).
pub const MAX_ATTEMPTS: i32 = 3;

fn target(envelope: &Envelope) -> Option<RepoTarget> {
    Some(RepoTarget {
        installation_id: envelope.installation?.id,
        owner: envelope.repository.owner.login.clone(),
        name: envelope.repository.name.clone(),
        repo_id: envelope.repository.id,
    })
}

/// Turn a decoded delivery into the jobs it queues.
pub fn plan(event: &Event, delivery_id: &str) -> Plan {
    let Some(envelope) = event.envelope() else {
        return Plan::skip(format!("`{}` events queue no jobs", event.name()));
    };
    // CI results come from bots (GitHub Actions, the App's own push): they are not commands,
    // so the bot filter does not apply; the fix job's per-head record and cap stop loops.
    if let Some(plan) = ci_failure(event, envelope) {
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
    match event {
        Event::Issues { issue, label, .. } if envelope.action == "labeled" => {
            let Some(label) = label else {
                return Plan::skip("labeled event without a label");
            };
            if issue.is_pull_request() {
                return Plan::skip("label added to a pull request");
            }
            let input = JobInput::Spec(SpecRequest {
                repo: repo.clone(),
                issue_number: issue.number,
                requested_by: envelope.sender.login.clone(),
                trigger: SpecTrigger::Label {
                    name: label.name.clone(),
                },
                delivery_id: delivery_id.to_string(),
            });
            Plan {
                notes: vec![format!(
                    "issue #{} labelled `{}` by {}: spec job (runs if the repository's trigger label is `{}` and {} may write)",
                    issue.number,
                    label.name,
                    envelope.sender.login,
                    label.name,
                    envelope.sender.login
                )],
                jobs: vec![input.into_job()],
            }
        }
        Event::IssueComment {
            issue,
            comment,
            previous_body,
            ..
        } if envelope.action == "created" || envelope.action == "edited" => {
            let body = comment.body.as_deref().unwrap_or("");
            let parsed = match (envelope.action.as_str(), previous_body) {
                ("edited", Some(old)) => command::added_by_edit(old, body),
                ("edited", None) => command::Parsed::default(),
                _ => command::parse(body),
            };
            if parsed.commands.is_empty() && parsed.errors.is_empty() {
                return Plan::skip(format!("comment {} holds no command", comment.id));
            }
            let input = JobInput::Command(CommandRequest {
                repo,
                issue_number: issue.number,
                is_pull_request: issue.is_pull_request(),
                comment_id: comment.id,
                author: comment.user.login.clone(),
                commands: parsed.commands.iter().map(|c| c.to_string()).collect(),
                errors: parsed.errors.iter().map(|e| e.to_string()).collect(),
                delivery_id: delivery_id.to_string(),
            });
            Plan {
                notes: vec![format!(
                    "comment {} by {} on #{}: commands [{}]{}: command job (runs each if {} may write)",
                    comment.id,
                    comment.user.login,
                    issue.number,
                    parsed
                        .commands
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    if parsed.errors.is_empty() {
                        String::new()
                    } else {
                        format!(" and {} unparsable", parsed.errors.len())
                    },
                    comment.user.login
                )],
                jobs: vec![input.into_job()],
            }
        }
        Event::PullRequestReview {
            pull_request,
            review,
            ..
        } if envelope.action == "submitted" => {
            let Some(issue_number) = spec_issue_of_branch(&pull_request.head.ref_name) else {
                return Plan::skip("review on a pull request that is not a spec PR");
            };
            let input = match review.state.to_ascii_lowercase().as_str() {
                "changes_requested" => JobInput::Revise(ReviseRequest {
                    repo,
                    pull_number: pull_request.number,
                    issue_number,
                    requested_by: review.user.login.clone(),
                    source: FeedbackSource::Review {
                        review_id: review.id,
                    },
                    delivery_id: delivery_id.to_string(),
                }),
                "approved" => JobInput::SpecEvent(SpecEvent {
                    repo,
                    pull_number: pull_request.number,
                    issue_number,
                    what: "approved".into(),
                }),
                other => {
                    return Plan::skip(format!(
                        "`{other}` review on spec PR #{}: nothing to do",
                        pull_request.number
                    ));
                }
            };
            Plan {
                notes: vec![format!(
                    "{} review by {} on spec PR #{}: {} job",
                    review.state,
                    review.user.login,
                    pull_request.number,
                    input.kind()
                )],
                jobs: vec![input.into_job()],
            }
        }
        Event::PullRequest { pull_request, .. }
            if envelope.action == "closed" || envelope.action == "reopened" =>
        {
            let Some(issue_number) = spec_issue_of_branch(&pull_request.head.ref_name) else {
                return Plan::skip("not a spec PR");
            };
            let what = match (envelope.action.as_str(), pull_request.merged) {
                ("closed", Some(true)) => "merged",
                ("closed", _) => "closed",
                _ => "reopened",
            };
            let input = JobInput::SpecEvent(SpecEvent {
                repo,
                pull_number: pull_request.number,
                issue_number,
                what: what.into(),
            });
            Plan {
                notes: vec![format!(
                    "spec PR #{} {what}: spec_event job",
                    pull_request.number
                )],
                jobs: vec![input.into_job()],
            }
        }
        other => Plan::skip(format!(
            "`{}.{}` queues no jobs",
            other.name(),
            envelope.action
        )),
    }
}

/// A completed, failed check suite or check run on an implementation branch → one CI-fix job.
fn ci_failure(event: &Event, envelope: &Envelope) -> Option<Plan> {
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
    let Some(issue_number) = implement_issue_of_branch(&branch) else {
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
    let input = JobInput::CiFix(CiFixRequest {
        repo,
        branch: branch.clone(),
        issue_number,
        head_sha: sha.clone(),
    });
    Some(Plan {
        notes: vec![format!(
            "{what} `{conclusion}` on `{branch}` at {}: ci_fix job (one round per head, capped)",
            sha.chars().take(7).collect::<String>()
        )],
        jobs: vec![input.into_job()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let plan = plan(&comment_event("/spec\n/help", "User", "created", None), "d");
        assert_eq!(plan.jobs.len(), 1);
        assert_eq!(plan.jobs[0].kind, "command");
        assert_eq!(plan.jobs[0].dedupe_key.as_deref(), Some("command:42:55"));
        let JobInput::Command(req) = JobInput::from_payload(&plan.jobs[0].payload).unwrap() else {
            panic!("command job")
        };
        assert_eq!(req.commands, vec!["/spec", "/help"]);
    }

    #[test]
    fn chatter_and_bots_queue_nothing() {
        assert!(
            plan(&comment_event("thanks!", "User", "created", None), "d")
                .jobs
                .is_empty()
        );
        assert!(
            plan(&comment_event("/spec", "Bot", "created", None), "d")
                .jobs
                .is_empty()
        );
        assert!(
            plan(&comment_event("> /spec", "User", "created", None), "d")
                .jobs
                .is_empty()
        );
    }

    #[test]
    fn an_edit_runs_only_what_it_added() {
        let p = plan(
            &comment_event("/spec\n/help", "User", "edited", Some("/spec")),
            "d",
        );
        let JobInput::Command(req) = JobInput::from_payload(&p.jobs[0].payload).unwrap() else {
            panic!("command job")
        };
        assert_eq!(req.commands, vec!["/help"]);
        assert!(
            plan(
                &comment_event("/spec", "User", "edited", Some("/spec")),
                "d"
            )
            .jobs
            .is_empty()
        );
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
        let p = plan(
            &failed_check_run("specbot/implement-9", "failure", "Bot"),
            "d",
        );
        assert_eq!(p.jobs.len(), 1, "{:?}", p.notes);
        let JobInput::CiFix(req) = JobInput::from_payload(&p.jobs[0].payload).unwrap() else {
            panic!("ci_fix job")
        };
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
                plan(&failed_check_run(branch, conclusion, "User"), "d")
                    .jobs
                    .is_empty(),
                "{branch} {conclusion}"
            );
        }
    }
}
