//! Event → intent → job: decides, without any I/O, which jobs a delivery queues and why.
//!
//! This runs inside the webhook request, before the `202`, so it must be cheap and pure. What
//! needs GitHub (the repository's trigger label, the sender's permission) is checked by the job
//! itself when it runs — the plan only filters out what can never matter: bots (the App
//! itself included), events nobody acts on, comments without a command.

use crate::command;
use crate::event::{Envelope, Event};
use crate::jobs::NewJob;
use crate::workflow::{CommandRequest, JobInput, RepoTarget, SpecRequest, SpecTrigger};

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
        other => Plan::skip(format!(
            "`{}.{}` queues no jobs",
            other.name(),
            envelope.action
        )),
    }
}
