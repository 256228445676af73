//! The `command` job: check that the comment's author may write, then run each command —
//! answer `/help` and parse errors, queue the spec job for `/spec`, and so on — and answer the
//! comment with one reply, however many commands it held.

use crate::command::{self, Command};
use crate::github::model::Permission;
use crate::github::{ReactOn, Repo};
use crate::messages;
use crate::workflow::Workflow;
use crate::workflow::branch::BotBranch;
use crate::workflow::job::{
    CommandRequest, FeedbackSource, ImplementRequest, ReviseRequest, SpecRequest, SpecTrigger,
    implement_job_key, spec_job_key,
};
use crate::workflow::quota;
use crate::workflow::records::{
    self, ActedRecord, ImplementationRecord, SpecRecord, SpecState, issue_key,
};
use crate::workflow::step::{JobCtx, StepResult};

impl Workflow for CommandRequest {
    const KIND: &'static str = "command";

    fn dedupe_key(&self) -> String {
        format!("command:{}:{}", self.repo.repo_id, self.comment_id)
    }

    /// The commands written on one issue or PR run in the order they were written, so that
    /// what they queue is queued in that order.
    fn serial_key(&self) -> Option<String> {
        Some(format!(
            "commands:{}#{}",
            self.repo.repo_id, self.issue_number
        ))
    }

    async fn run(self, ctx: &mut JobCtx) -> StepResult {
        run(ctx, self).await
    }
}

async fn run(ctx: &mut JobCtx, req: CommandRequest) -> StepResult {
    if ctx.is_before_memory(req.written_at.as_deref()) {
        tracing::warn!(comment = req.comment_id, written_at = ?req.written_at, "a comment older than the deliveries kept: a replay, acted on not at all");
        return Ok(());
    }
    let repo = ctx.repo(&req.repo)?;
    let marker = messages::reply_marker(req.comment_id);
    let permission = ctx.app.permission(&repo, &req.author).await?;
    if permission < Permission::Write {
        tracing::info!(author = %req.author, ?permission, "command from a user without write access");
        return quota::refuse(ctx, &repo, req.issue_number, &req.author, &marker).await;
    }
    // Acknowledge that the comment was seen.
    repo.react(ReactOn::Comment(req.comment_id), "eyes").await?;
    let mut replies: Vec<String> = Vec::new();
    if !req.errors.is_empty() {
        replies.push(messages::parse_errors(req.comment_id, &req.errors));
    }
    for cmd in req.commands.iter().flat_map(|c| command::parse(c).commands) {
        // A replayed or redelivered comment acts on nothing it already acted on.
        let key = ActedRecord::key(
            req.repo.repo_id,
            "comment",
            req.comment_id,
            &cmd.to_string(),
        );
        if ActedRecord::seen(&*ctx.app.store, &key, ctx.job.id).await? {
            tracing::info!(command = %cmd, comment = req.comment_id, "already acted on: ignored");
            continue;
        }
        if let Some(reply) = run_one(ctx, &repo, &req, cmd).await? {
            replies.push(reply);
        }
        ActedRecord::remember(&*ctx.app.store, &key, ctx.job.id, ctx.app.now()).await?;
    }
    if !replies.is_empty() {
        let body = messages::one_reply(req.comment_id, &replies);
        repo.comment_once(req.issue_number, &marker, &body).await?;
    }
    Ok(())
}

/// Run one command; what to say about it, if anything.
async fn run_one(
    ctx: &mut JobCtx,
    repo: &Repo,
    req: &CommandRequest,
    cmd: Command,
) -> StepResult<Option<String>> {
    let attempts = ctx.app.settings.jobs.max_attempts;
    let job = match &cmd {
        Command::Help => return Ok(Some(messages::help(req.comment_id))),
        Command::Cancel => return cancel(ctx, repo, req).await.map(Some),
        Command::Spec => {
            if req.is_pull_request {
                return Ok(Some(messages::spec_not_here(req.comment_id)));
            }
            SpecRequest {
                repo: req.repo.clone(),
                issue_number: req.issue_number,
                requested_by: req.author.clone(),
                trigger: SpecTrigger::Command {
                    comment_id: req.comment_id,
                },
                delivery_id: req.delivery_id.clone(),
            }
            .into_job(attempts)
        }
        Command::Revise { feedback } => {
            let Some(spec_issue) = spec_of_pull(ctx, repo, req).await? else {
                return Ok(Some(messages::revise_not_here(req.comment_id)));
            };
            ReviseRequest {
                repo: req.repo.clone(),
                pull_number: req.issue_number,
                issue_number: spec_issue,
                requested_by: req.author.clone(),
                source: FeedbackSource::Command {
                    comment_id: req.comment_id,
                    feedback: feedback.clone(),
                },
                delivery_id: req.delivery_id.clone(),
                written_at: req.written_at.clone(),
            }
            .into_job(attempts)
        }
        Command::Implement { force } => match implement(ctx, repo, req, &cmd, *force).await? {
            Ok(request) => request.into_job(attempts),
            Err(reply) => return Ok(Some(reply)),
        },
    };
    ctx.app.store.enqueue(&job, ctx.app.now()).await?;
    ctx.app.kick();
    Ok(None)
}

/// `/implement`: the job to queue, or the reply saying why not (not here, or not yet).
async fn implement(
    ctx: &JobCtx,
    repo: &Repo,
    req: &CommandRequest,
    cmd: &Command,
    force: bool,
) -> StepResult<Result<ImplementRequest, String>> {
    let Some(target) = implement_target(ctx, repo, req).await? else {
        return Ok(Err(messages::implement_not_here(
            req.comment_id,
            &cmd.to_string(),
        )));
    };
    let key = issue_key(req.repo.repo_id, target.spec_issue);
    let record: Option<SpecRecord> = records::load(&*ctx.app.store, &key).await?;
    let state = record.as_ref().map(|r| r.state);
    if !force && let Some(reply) = not_yet(repo, req, record.as_ref()).await? {
        return Ok(Err(reply));
    }
    Ok(Ok(ImplementRequest {
        repo: req.repo.clone(),
        issue_number: target.issue_number,
        spec_issue: target.spec_issue,
        component: target.component,
        from_spec_branch: state != Some(SpecState::Merged),
        requested_by: req.author.clone(),
        comment_id: req.comment_id,
        delivery_id: req.delivery_id.clone(),
    }))
}

/// Why `/implement` without `--force` waits, if it does: the spec is not approved or merged
/// yet, or it has open questions (those of the record; once merged, those of the file on the
/// default branch, where no spec PR follows it any more).
async fn not_yet(
    repo: &Repo,
    req: &CommandRequest,
    record: Option<&SpecRecord>,
) -> StepResult<Option<String>> {
    let state = record.map(|r| r.state);
    let accepted = state.is_some_and(SpecState::is_accepted);
    let mut questions = record.map(|r| r.open_questions.clone()).unwrap_or_default();
    let mut file_ref = "the spec branch".to_string();
    let merged = record.filter(|r| r.state == SpecState::Merged && !r.path.is_empty());
    if accepted && questions.is_empty() && merged.is_none() {
        return Ok(None);
    }
    let info = repo.info().await?;
    if let Some(r) = merged {
        file_ref = format!("`{}`", info.default_branch.replace('`', "'"));
        questions = match repo.file(&r.path, &info.default_branch).await? {
            Some(text) => crate::spec::check_spec_file(&text).open_questions(),
            None => Vec::new(),
        };
    }
    if accepted && questions.is_empty() {
        return Ok(None);
    }
    // `/revise` answers them while the spec PR is open.
    let pull = record
        .filter(|r| !r.state.is_finished())
        .and_then(|r| r.pull);
    let path = record.map(|r| r.path.as_str()).unwrap_or_default();
    if accepted {
        return Ok(Some(messages::questions_not_answered(
            req.comment_id,
            &questions,
            pull,
            path,
            &file_ref,
        )));
    }
    let (config, _) = crate::workflow::step::load_config(repo, &info.default_branch).await?;
    Ok(Some(
        messages::spec_not_ready(
            req.comment_id,
            state.map(SpecState::words),
            record.and_then(|r| r.pull),
            &config.trigger_label,
        ) + &messages::also_open_questions(&questions, pull, path, &file_ref),
    ))
}

/// `/cancel`: the issue's spec or implementation job; on an implementation PR, its issue's.
async fn cancel(ctx: &JobCtx, repo: &Repo, req: &CommandRequest) -> StepResult<String> {
    let mut issue = req.issue_number;
    if req.is_pull_request {
        let pull = repo.pull(req.issue_number).await?;
        if let Some(n) = BotBranch::implemented_issue(&pull.head.ref_name) {
            issue = n;
        }
    }
    let now = ctx.app.now();
    let mut found = false;
    for key in [
        spec_job_key(req.repo.repo_id, issue),
        implement_job_key(req.repo.repo_id, issue),
    ] {
        found |= ctx.app.store.request_cancel(&key, now).await?.is_some();
    }
    Ok(messages::cancelled(req.comment_id, found))
}

/// The feature issue of the spec PR the command was said on (`None` off a spec PR).
async fn spec_of_pull(ctx: &JobCtx, repo: &Repo, req: &CommandRequest) -> StepResult<Option<u64>> {
    if !req.is_pull_request {
        return Ok(None);
    }
    let pull = repo.pull(req.issue_number).await?;
    let Some(spec_issue) = BotBranch::spec_issue(&pull.head.ref_name) else {
        return Ok(None);
    };
    Ok(is_spec_pull(ctx, req, spec_issue)
        .await?
        .then_some(spec_issue))
}

/// Whether the PR the command was said on is the one the bot opened for `spec_issue`'s spec
/// (a fork's PR may copy the branch name, never the recorded PR number).
async fn is_spec_pull(ctx: &JobCtx, req: &CommandRequest, spec_issue: u64) -> StepResult<bool> {
    let key = issue_key(req.repo.repo_id, spec_issue);
    let record: Option<SpecRecord> = records::load(&*ctx.app.store, &key).await?;
    Ok(record.is_some_and(|r| r.pull == Some(req.issue_number)))
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
    repo: &Repo,
    req: &CommandRequest,
) -> StepResult<Option<ImplementTarget>> {
    if req.is_pull_request {
        let pull = repo.pull(req.issue_number).await?;
        return match BotBranch::parse(&pull.head.ref_name) {
            Some(BotBranch::Spec(spec_issue)) if is_spec_pull(ctx, req, spec_issue).await? => {
                Ok(Some(ImplementTarget {
                    issue_number: spec_issue,
                    spec_issue,
                    component: None,
                }))
            }
            Some(BotBranch::Implementation(issue)) => {
                let key = issue_key(req.repo.repo_id, issue);
                let record: Option<ImplementationRecord> =
                    records::load(&*ctx.app.store, &key).await?;
                let ours = |r: &ImplementationRecord| r.pull == Some(req.issue_number);
                Ok(record.filter(ours).map(|r| ImplementTarget {
                    issue_number: issue,
                    spec_issue: r.spec_issue,
                    component: r.component,
                }))
            }
            _ => Ok(None),
        };
    }
    let issue = repo.issue(req.issue_number).await?;
    let body = issue.body.as_deref().unwrap_or("");
    Ok(Some(match crate::messages::parse_component_marker(body) {
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
    }))
}
