//! The `command` job: check that the comment's author may write, then run each command —
//! answer `/help` and parse errors, queue the spec job for `/spec`, and so on.

use super::spec::SpecRecord;
use super::{
    CommandRequest, FeedbackSource, JobCtx, JobInput, ReviseRequest, SpecRequest, SpecTrigger,
    StepResult,
};
use crate::command::{self, Command};
use crate::github::types::Permission;
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
                // Which spec: the PR's, or the issue's own.
                let spec_issue = spec_of_pull(&repo, &req).await?.unwrap_or(req.issue_number);
                let record: Option<SpecRecord> = ctx
                    .app
                    .store
                    .get_record(
                        "spec",
                        &super::spec::record_key(req.repo.repo_id, spec_issue),
                    )
                    .await?
                    .and_then(|v| serde_json::from_value(v).ok());
                let ready = record
                    .as_ref()
                    .is_some_and(|r| matches!(r.state.as_str(), "approved" | "merged"));
                if !ready && !force {
                    replies.push(messages::spec_not_ready(
                        req.comment_id,
                        record.as_ref().map(|r| r.state.as_str()),
                        record.as_ref().and_then(|r| r.pull),
                    ));
                } else {
                    replies.push(messages::not_here(
                        req.comment_id,
                        &cmd.to_string(),
                        "implementing specs is not available in this version of specbot yet.",
                    ));
                }
            }
            Command::Cancel => {
                let key = super::spec_job_key(req.repo.repo_id, req.issue_number);
                let now = ctx.app.now();
                let found = ctx.app.store.request_cancel(&key, now).await?;
                replies.push(messages::cancelled(req.comment_id, found.is_some()));
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
