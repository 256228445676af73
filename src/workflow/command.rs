//! The `command` job: check that the comment's author may write, then run each command —
//! answer `/help` and parse errors, queue the spec job for `/spec`, and so on.

use super::implement::ImplementationRecord;
use super::spec::SpecRecord;
use super::{
    CommandRequest, FeedbackSource, ImplementRequest, JobCtx, JobInput, ReviseRequest, SpecRequest,
    SpecTrigger, StepResult,
};
use crate::command::{self, Command};
use crate::github::model::Permission;
use crate::messages;

pub async fn run(ctx: &mut JobCtx, req: CommandRequest) -> StepResult {
    let repo = ctx.repo(&req.repo)?;
    let permission = ctx.app.permission(&repo, &req.author).await?;
    if permission < Permission::Write {
        tracing::info!(author = %req.author, ?permission, "command from a user without write access");
        repo.comment_once(
            req.issue_number,
            &messages::reply_marker(req.comment_id),
            &messages::not_allowed(&messages::reply_marker(req.comment_id), &req.author),
        )
        .await?;
        return Ok(());
    }
    // Acknowledge that the comment was seen.
    repo.react_to_comment(req.comment_id, "eyes").await?;
    let reparsed: Vec<Command> = req
        .commands
        .iter()
        .flat_map(|c| command::parse(c).commands)
        .collect();
    let mut replies: Vec<String> = Vec::new();
    if !req.errors.is_empty() {
        replies.push(messages::parse_errors(req.comment_id, &req.errors));
    }
    for cmd in reparsed {
        match cmd.clone() {
            Command::Help => replies.push(messages::help(req.comment_id)),
            Command::Spec => {
                if req.is_pull_request {
                    replies.push(messages::not_here(
                        req.comment_id,
                        "/spec",
                        "comment it on the issue that describes the feature, not on a pull request.",
                    ));
                    continue;
                }
                let job = JobInput::Spec(SpecRequest {
                    repo: req.repo.clone(),
                    issue_number: req.issue_number,
                    requested_by: req.author.clone(),
                    trigger: SpecTrigger::Command {
                        comment_id: req.comment_id,
                    },
                    delivery_id: req.delivery_id.clone(),
                })
                .into_job();
                let now = ctx.app.now();
                ctx.app.store.enqueue(&job, now).await?;
                ctx.app.kick();
            }
            Command::Revise { feedback } => {
                let Some(spec_issue) = spec_of_pull(&repo, &req).await? else {
                    replies.push(messages::not_here(
                        req.comment_id,
                        "/revise",
                        "comment it on a spec pull request (one I opened from a `specbot/spec-…` branch).",
                    ));
                    continue;
                };
                let job = JobInput::Revise(ReviseRequest {
                    repo: req.repo.clone(),
                    pull_number: req.issue_number,
                    issue_number: spec_issue,
                    requested_by: req.author.clone(),
                    source: FeedbackSource::Command {
                        comment_id: req.comment_id,
                        feedback,
                    },
                    delivery_id: req.delivery_id.clone(),
                })
                .into_job();
                let now = ctx.app.now();
                ctx.app.store.enqueue(&job, now).await?;
                ctx.app.kick();
            }
            Command::Implement { force } => {
                let Some(target) = implement_target(ctx, &repo, &req).await? else {
                    replies.push(messages::not_here(
                        req.comment_id,
                        &cmd.to_string(),
                        "comment it on the feature issue, on one of its component issues, or on the spec pull request.",
                    ));
                    continue;
                };
                let record: Option<SpecRecord> = ctx
                    .app
                    .store
                    .get_record(
                        "spec",
                        &super::spec::record_key(req.repo.repo_id, target.spec_issue),
                    )
                    .await?
                    .and_then(|v| serde_json::from_value(v).ok());
                let state = record.as_ref().map(|r| r.state.as_str());
                let ready = matches!(state, Some("approved" | "merged"));
                if !ready && !force {
                    replies.push(messages::spec_not_ready(
                        req.comment_id,
                        state,
                        record.as_ref().and_then(|r| r.pull),
                    ));
                    continue;
                }
                let job = JobInput::Implement(ImplementRequest {
                    repo: req.repo.clone(),
                    issue_number: target.issue_number,
                    spec_issue: target.spec_issue,
                    component: target.component,
                    from_spec_branch: state != Some("merged"),
                    requested_by: req.author.clone(),
                    comment_id: req.comment_id,
                    delivery_id: req.delivery_id.clone(),
                })
                .into_job();
                let now = ctx.app.now();
                ctx.app.store.enqueue(&job, now).await?;
                ctx.app.kick();
            }
            Command::Cancel => {
                // The issue's spec or implementation; on an implementation PR, its issue's.
                let mut issue = req.issue_number;
                if req.is_pull_request {
                    let pull = repo.pull(req.issue_number).await?;
                    if let Some(n) = super::implement_issue_of_branch(&pull.head.ref_name) {
                        issue = n;
                    }
                }
                let now = ctx.app.now();
                let mut found = false;
                for key in [
                    super::spec_job_key(req.repo.repo_id, issue),
                    super::implement_job_key(req.repo.repo_id, issue),
                ] {
                    found |= ctx.app.store.request_cancel(&key, now).await?.is_some();
                }
                replies.push(messages::cancelled(req.comment_id, found));
            }
        }
    }
    if !replies.is_empty() {
        // One reply per comment, however many commands it held.
        let marker = messages::reply_marker(req.comment_id);
        let body = replies
            .iter()
            .map(|r| r.replacen(&marker, "", 1).trim().to_string())
            .collect::<Vec<_>>()
            .join("\n\n---\n\n");
        repo.comment_once(req.issue_number, &marker, &format!("{marker}\n{body}"))
            .await?;
    }
    Ok(())
}

/// The feature issue of the spec PR the command was said on (`None` off a spec PR).
async fn spec_of_pull(repo: &crate::github::Repo, req: &CommandRequest) -> StepResult<Option<u64>> {
    if !req.is_pull_request {
        return Ok(None);
    }
    let pull = repo.pull(req.issue_number).await?;
    Ok(super::spec_issue_of_branch(&pull.head.ref_name))
}

/// What `/implement` said where would implement.
struct ImplementTarget {
    /// The issue the PR will close.
    issue_number: u64,
    spec_issue: u64,
    component: Option<String>,
}

/// On the feature issue: the whole spec. On a component issue (found by its marker): that
/// component. On the spec PR: the whole spec. On an implementation PR: what it implements
/// (a re-run). Anywhere else: `None`.
async fn implement_target(
    ctx: &JobCtx,
    repo: &crate::github::Repo,
    req: &CommandRequest,
) -> StepResult<Option<ImplementTarget>> {
    if req.is_pull_request {
        let pull = repo.pull(req.issue_number).await?;
        let branch = &pull.head.ref_name;
        if let Some(spec_issue) = super::spec_issue_of_branch(branch) {
            return Ok(Some(ImplementTarget {
                issue_number: spec_issue,
                spec_issue,
                component: None,
            }));
        }
        if let Some(issue) = super::implement_issue_of_branch(branch) {
            let record: Option<ImplementationRecord> = ctx
                .app
                .store
                .get_record(
                    "implementation",
                    &super::spec::record_key(req.repo.repo_id, issue),
                )
                .await?
                .and_then(|v| serde_json::from_value(v).ok());
            return Ok(record.map(|r| ImplementTarget {
                issue_number: issue,
                spec_issue: r.spec_issue,
                component: r.component,
            }));
        }
        return Ok(None);
    }
    let issue = repo.issue(req.issue_number).await?;
    Ok(Some(
        match crate::spec::parse_component_marker(issue.body.as_deref().unwrap_or("")) {
            Some((parent, slug)) => ImplementTarget {
                issue_number: req.issue_number,
                spec_issue: parent,
                component: Some(slug),
            },
            None => ImplementTarget {
                issue_number: req.issue_number,
                spec_issue: req.issue_number,
                component: None,
            },
        },
    ))
}
